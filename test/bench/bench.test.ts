// natlab bench: workload generators, profiles, report/compare logic, charts, and a CLI smoke run
// with tiny sizes (structure of the JSON only — never speed).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkKernelPrerequisites } from '../../src/oracle/index.ts';
import { PacketView, parseIpv4, PARSE_OK } from '../../src/packet/parse.ts';
import { verifyIpv4Header, verifyL4Checksum } from '../../src/packet/checksum.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/packet/constants.ts';
import { InputError } from '../../src/spec/errors.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { BUILTIN_PROFILES, loadProfile, validateProfile } from '../../src/traffic/profile.ts';
import {
  EstablishedWorkload,
  FlowSpace,
  FLOW_ICMP,
  FLOW_TCP,
  FLOW_UDP,
  MixedWorkload,
  SetupWorkload,
  ZipfSampler,
  benchScenario,
  permutation,
  writeFlowPacket,
  type FrameColumns,
} from '../../src/traffic/workload.ts';
import { compareReports } from '../../bench/report.ts';
import { makeFigure } from '../../bench/figures.ts';
import { latencyChart, scalingChart, throughputChart } from '../../bench/svg.ts';
import { LatencyRecorder } from '../../bench/latency.ts';
import { measureSetup } from '../../bench/core-throughput.ts';
import type { BenchReport } from '../../bench/suite.ts';
import { command, parseCount } from '../../src/cli/cmd-bench.ts';
import { UsageError } from '../../src/cli/args.ts';

function cols(n: number): FrameColumns {
  return {
    arena: new Uint8Array(n * 1600),
    off: new Int32Array(n),
    len: new Int32Array(n),
    ingress: new Int32Array(n),
    timeUs: new Float64Array(n),
  };
}

/** Minimal XML well-formedness check: balanced tags, quoted attributes, one root. */
function checkXml(text: string): void {
  const body = text.replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let roots = 0;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    const between = body.slice(last, m.index);
    if (/[<>]/.test(between)) throw new Error(`stray markup near: ${between.slice(0, 60)}`);
    last = re.lastIndex;
    const [, close, name, , self] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (/[<>]/.test(body.slice(last))) throw new Error('stray markup at the end');
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

describe('workload generators', () => {
  const sc = benchScenario(loadOpenScenario(), 1 << 20);
  const fs = new FlowSpace(sc);
  const pv = new PacketView();

  it('write valid IPv4 packets with correct checksums for every protocol and phase', () => {
    const c = cols(1);
    for (const kind of [FLOW_UDP, FLOW_TCP, FLOW_ICMP]) {
      for (const phase of [0, 1, 2, 3]) {
        for (const len of [28, 46, 333, 1500]) {
          const n = writeFlowPacket(fs, c, 0, 0, 1000, kind, 12345, phase, len);
          const st = parseIpv4(c.arena, 0, n, pv);
          expect(st, `kind ${kind} phase ${phase} len ${len}`).toBe(PARSE_OK);
          expect(pv.proto).toBe(kind === FLOW_UDP ? PROTO_UDP : kind === FLOW_TCP ? PROTO_TCP : PROTO_ICMP);
          expect(verifyIpv4Header(c.arena, pv)).toBe(true);
          expect(verifyL4Checksum(c.arena, pv)).toBe(true);
          // Phase 1 is the reply, addressed to the NAT's Elastic IP from the internet.
          expect(c.ingress[0] === 0).toBe(phase === 1);
          if (phase === 1) expect(pv.dst).toBe(fs.natPublic);
          else expect(pv.src).toBe(fs.insideAddr);
          if (phase === 3) expect(n).toBe(Math.max(len, kind === FLOW_TCP ? 40 : 28));
        }
      }
    }
  });

  it('give consecutive flows distinct, spread source ports (equal shares per worker)', () => {
    const seen = new Set<number>();
    let odd = 0;
    let outside = 0;
    for (let id = 0; id < 64512; id++) {
      const p = fs.sport(id);
      if (p < 1024 || p > 65535) outside++;
      seen.add(p);
      odd += p & 1;
    }
    expect(outside).toBe(0);
    expect(seen.size).toBe(64512);
    expect(odd).toBe(32256);
    // Tuples stay distinct past the port range.
    const t = (id: number) => `${fs.sport(id)} ${fs.remote(id)} ${fs.dport(id)}`;
    expect(t(5)).not.toBe(t(5 + 64512));
  });

  it('set-up sends out and reply first, the third packets 2.5 s later (UDP ASSURED needs > 2 s)', () => {
    const wl = new EstablishedWorkload(fs, 4, 1);
    const src = wl.setup();
    const c = cols(12);
    let off = 0;
    for (let i = 0; i < 12; i++) off += src.next(c, i, off, 1000);
    expect(src.remaining).toBe(0);
    expect(Array.from(c.timeUs)).toEqual([...Array(8).fill(1000_000), ...Array(4).fill(3500_000)]);
    expect(Array.from(c.ingress.slice(0, 8)).map((x) => (x === 0 ? 'in' : 'out'))).toEqual([
      'out',
      'in',
      'out',
      'in',
      'out',
      'in',
      'out',
      'in',
    ]);
  });

  it('stream every session once per pass in a seeded order', () => {
    const wl = new EstablishedWorkload(fs, 100, 3);
    const src = wl.stream(0);
    const c = cols(1);
    const ports = new Set<number>();
    for (let k = 0; k < 100; k++) {
      src.next(c, 0, 0, 5000);
      parseIpv4(c.arena, 0, c.len[0], pv);
      ports.add(pv.sport);
    }
    expect(ports.size).toBe(100);
    expect(Array.from(permutation(10, 3))).toEqual(Array.from(permutation(10, 3)));
    expect(Array.from(permutation(10, 3))).not.toEqual(Array.from(permutation(10, 4)));
  });

  it('session setup opens a new flow with every packet', () => {
    const wl = new SetupWorkload(fs, 0);
    const src = wl.stream();
    const c = cols(1);
    const keys = new Set<string>();
    for (let k = 0; k < 2000; k++) {
      src.next(c, 0, 0, 1000);
      parseIpv4(c.arena, 0, c.len[0], pv);
      keys.add(`${pv.sport} ${pv.dst} ${pv.dport}`);
    }
    expect(keys.size).toBe(2000);
    expect(wl.used).toBe(2000);
  });

  it('session setup into a prefilled table: the measured flows are new ones, beside the prefill', async () => {
    // measureSetup throws unless every prefill flow and every measured flow takes the slow path
    // (a measured flow that reused a prefill tuple would find its session: the fast path).
    const r = await measureSetup({ flows: 600, runs: 1, prefill: 3000, prefault: false });
    expect(r.prefill).toBe(3000);
    expect(r.runsPerSec).toHaveLength(1);
    expect(r.runsPerSec[0]).toBeGreaterThan(0);
    expect(r.cpuSessionsPerSec).toBeGreaterThan(0);
  });
  it('mixed traffic follows the profile: new-flow share, protocol mix, sizes', () => {
    const p = structuredClone(BUILTIN_PROFILES.find((x) => x.name === 'imix-zipf')!);
    p.flows = 1000;
    const wl = new MixedWorkload(fs, p, 1);
    const src = wl.stream();
    const c = cols(1);
    const N = 20000;
    const sizes = new Map<number, number>();
    for (let k = 0; k < N; k++) {
      const n = src.next(c, 0, 0, 5000);
      sizes.set(n, (sizes.get(n) ?? 0) + 1);
    }
    const cnt = wl.counts;
    expect(cnt.newFlows + cnt.tcp + cnt.udp + cnt.icmp).toBe(N);
    expect(cnt.newFlows / N).toBeGreaterThan(0.01);
    expect(cnt.newFlows / N).toBeLessThan(0.03);
    // Zipf popularity: per-flow protocol, weighted by popularity; TCP dominates with an 80% mix.
    expect(cnt.tcp).toBeGreaterThan(cnt.udp);
    expect(sizes.get(1500) ?? 0).toBeGreaterThan(0);
    expect(sizes.get(576) ?? 0).toBeGreaterThan(sizes.get(1500) ?? 0);
  });

  it('Zipf sampler: rank 0 most popular, top share grows with s', () => {
    const z1 = new ZipfSampler(1000, 1);
    const z0 = new ZipfSampler(1000, 0);
    expect(z0.topShare(10)).toBeCloseTo(0.01, 5);
    expect(z1.topShare(10)).toBeGreaterThan(0.3);
    expect(z1.sample(0)).toBe(0);
    expect(z1.sample(0.999999)).toBe(999);
  });
});

describe('traffic profiles', () => {
  it('validates fields and names the file and field in errors', () => {
    expect(() => validateProfile({ name: 'x', mix: { tcp: 1 }, sizes: [46], flows: 10, bogus: 1 }, 'p.yaml')).toThrow(
      /p\.yaml: bogus: unknown field/,
    );
    expect(() => validateProfile({ name: 'x', mix: { tcp: 0, udp: 0 }, sizes: [46], flows: 10 }, 'p.yaml')).toThrow(
      /mix: the shares sum to 0/,
    );
    expect(() =>
      validateProfile({ name: 'x', mix: { tcp: 1 }, sizes: [{ bytes: 9000 }], flows: 10 }, 'p.yaml'),
    ).toThrow(/sizes\[0\]\.bytes: 9000 is outside/);
    expect(() =>
      validateProfile({ name: 'x', mix: { tcp: 1 }, sizes: [46], flows: 10, popularity: 'pareto' }, 'p.yaml'),
    ).toThrow(InputError);
    const p = validateProfile(
      {
        name: 'x',
        mix: { tcp: 3, udp: 1 },
        sizes: [46, { bytes: 1500, weight: 2 }],
        flows: 10,
        popularity: { zipf: 1.2 },
      },
      'p.yaml',
    );
    expect(p.mix).toEqual({ tcp: 0.75, udp: 0.25, icmp: 0 });
    expect(p.popularity).toEqual({ kind: 'zipf', s: 1.2 });
  });

  it('loads built-in names and files; unknown names are input errors', async () => {
    expect((await loadProfile('churn')).newFlowShare).toBe(0.2);
    await expect(loadProfile('/nonexistent/profile.yaml')).rejects.toThrow(/not a built-in profile/);
  });

  it('parses counts like the CLI (1k, 64k, 1M)', () => {
    expect(parseCount('1k', 'x', 1, 1e9)).toBe(1024);
    expect(parseCount('64k', 'x', 1, 1e9)).toBe(65536);
    expect(parseCount('1M', 'x', 1, 1e9)).toBe(1048576);
    expect(parseCount('5000', 'x', 1, 1e9)).toBe(5000);
    expect(() => parseCount('1G', 'x', 1, 1e9)).toThrow(UsageError);
    expect(() => parseCount('0', 'x', 1, 1e9)).toThrow(/outside/);
  });
});

function fakeReport(fig: Array<[string, number[], boolean]>): BenchReport {
  return {
    kind: 'natlab-bench',
    version: 1,
    date: '2026-01-01T00:00:00.000Z',
    machine: { cpu: 'x', cores: 2, node: 'v20', commit: 'abc' },
    parameters: {},
    durationSec: 1,
    load: { start: [0, 0, 0], end: [0, 0, 0] },
    results: [],
    micro: [],
    notes: [],
    figures: fig.map(([id, samples, hib]) =>
      makeFigure({ id, workload: 'w', label: id, unit: hib ? 'Mpps' : 'ns/packet', samples, higherIsBetter: hib }),
    ),
  };
}

describe('compare', () => {
  it('overlapping ranges are no change; otherwise faster/slower by the median', () => {
    const a = fakeReport([
      ['t', [10, 11, 12], true],
      ['u', [10, 11, 12], true],
      ['v', [10, 11, 12], true],
      ['ns', [100, 110], false],
      ['gone', [1], true],
    ]);
    const b = fakeReport([
      ['t', [11.5, 13, 14], true],
      ['u', [13, 14, 15], true],
      ['v', [5, 6, 7], true],
      ['ns', [80, 90], false],
      ['new', [1], true],
    ]);
    const r = compareReports(a, b);
    const v = Object.fromEntries(r.changes.map((c) => [c.id, c.verdict]));
    expect(v).toEqual({ t: 'no change', u: 'faster', v: 'slower', ns: 'faster' });
    expect(r.changes.find((c) => c.id === 'u')!.pct).toBeCloseTo(((14 - 11) / 11) * 100, 5);
    expect(r.onlyA).toEqual(['gone']);
    expect(r.onlyB).toEqual(['new']);
  });
});

describe('charts', () => {
  it('are well-formed SVG with a series per worker count', () => {
    const figs: Array<[string, number[], boolean]> = [];
    for (const s of [1024, 65536, 1 << 20])
      for (const w of [1, 2]) figs.push([`established/sessions=${s}/workers=${w}/mpps`, [w * 3, w * 4, w * 5], true]);
    const r = fakeReport(figs);
    for (const f of r.figures) {
      const m = /sessions=(\d+)\/workers=(\d+)/.exec(f.id)!;
      f.sessions = Number(m[1]);
      f.workers = Number(m[2]);
      f.engine = 'core';
    }
    r.machine.cpu = 'CPU <&> "quoted"';
    const t = throughputChart(r)!;
    const s = scalingChart(r)!;
    for (const svg of [t, s]) {
      checkXml(svg);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    }
    expect(t).toContain('core, 2 workers');
    expect(t).toContain('1M');
    expect(t).toContain('CPU &lt;&amp;&gt; &quot;quoted&quot;');
    expect(s).toContain('ideal');
    expect(() => checkXml('<svg><g></svg>')).toThrow();
  });

  it('latency: percentiles per workload on a log scale; none for results without latency', () => {
    const r = fakeReport([]);
    expect(latencyChart(r)).toBeNull();
    const rec = new LatencyRecorder(2000);
    for (let i = 0; i < 2000; i++) rec.record(0, (i + 1) / 1000, 4096); // 1..2000 µs
    const l = rec.stats()!;
    expect(l.batchUs).toEqual({ p50: 1000, p99: 1980, p999: 1998, max: 2000 });
    expect(l.nsPerPacket.max).toBeCloseTo((2000 * 1000) / 4096, 6);
    r.results.push(
      { workload: 'established', engine: 'core', workers: 2, sessions: 1 << 20, latency: l } as never,
      { workload: 'setup', engine: 'core', workers: 1, sessions: null } as never,
    );
    const svg = latencyChart(r)!;
    checkXml(svg);
    expect(svg).toContain('1M·2w');
    expect(svg).not.toContain('setup·1w');
    for (const name of ['p50', 'p99', 'p99.9', 'max']) expect(svg).toContain(`>${name}</text>`);
    // log scale: whole decades around the values, 1 ms to 10 ms
    for (const t of ['1000', '10000'])
      expect(svg).toMatch(new RegExp(`text-anchor="end" dominant-baseline="middle" fill="#444">${t}</text>`));
    expect(svg).not.toMatch(/fill="#444">100<\/text>/);
    const full = new LatencyRecorder(1);
    full.record(0, 1, 1);
    full.record(0, 2, 1);
    expect(full.dropped).toBe(1);
    expect(new LatencyRecorder(4).stats()).toBeNull();
  });
});

/** Runs fn with process.stdout/stderr writes collected into `logs` instead of printed. */
async function quiet<T>(fn: () => Promise<T>, logs: string[] = []): Promise<T> {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const grab = ((s: string | Uint8Array) => (logs.push(String(s)), true)) as typeof process.stdout.write;
  process.stdout.write = grab;
  process.stderr.write = grab;
  try {
    return await fn();
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

describe('natlab bench (CLI smoke run, tiny sizes)', () => {
  it('runs every workload at 1 and 2 workers and writes a JSON with the expected structure', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlab-bench-test-'));
    try {
      const profile = join(dir, 'tiny.yaml');
      await writeFile(
        profile,
        'name: tiny\nnewFlowShare: 0.1\nmix: {tcp: 2, udp: 1, icmp: 1}\nsizes: [46, {bytes: 576, weight: 2}]\nflows: 300\npopularity: {zipf: 1}\n',
      );
      const json = join(dir, 'r.json');
      const out = join(dir, 'out');
      const code = await quiet(() =>
        command.run([
          '--quick',
          '--workers',
          '1,2',
          '--sessions',
          '1k',
          '--runs',
          '1',
          '--min-run-ms',
          '1',
          '--setup-flows',
          '1k',
          '--mixed-packets',
          '1k',
          '--replay-packets',
          '512',
          '--replay-large-packets',
          '2k',
          '--replay-model-packets',
          '1k',
          '--profile',
          profile,
          '--no-kernel',
          '--no-micro',
          '--no-progress',
          '--json',
          json,
          '--out',
          out,
        ]),
      );
      expect(code).toBe(0);
      const r = JSON.parse(await readFile(json, 'utf8')) as BenchReport;
      expect(r.kind).toBe('natlab-bench');
      expect(r.machine).toMatchObject({ cores: expect.any(Number), node: process.version });
      expect(typeof (r.machine as Record<string, unknown>).cpu).toBe('string');
      expect(typeof (r.machine as Record<string, unknown>).commit).toBe('string');
      expect(r.parameters).toMatchObject({ quick: true, workers: [1, 2], sessions: [1024], runs: 1 });
      const ids = r.figures.map((f) => f.id);
      for (const id of [
        'established/sessions=1024/workers=1/mpps',
        'established/sessions=1024/workers=2/mpps',
        'established/sessions=1024/workers=1/ns',
        'established/sessions=1024/bytes-per-session',
        'established/sessions=1024/workers=2/scaling',
        'setup/workers=1/sessions-per-s',
        'setup/workers=2/sessions-per-s',
        // into a table kept below 64k (each run's sessions expired before the next)
        'setup/workers=1/small-table/sessions-per-s',
        'setup/workers=2/small-table/sessions-per-s',
        'mixed/profile=tiny/workers=1/mpps',
        'mixed/profile=tiny/workers=2/gbps',
        'replay/core/workers=1/mpps',
        'replay/model/mpps',
        'established/sessions=1024/model/mpps',
        'setup/model/sessions-per-s',
        'established/sessions=1024/model/ratio-to-core-workers=2',
        'replay/model/ratio-to-core-workers=1',
        // --engines model,core against the model alone on the same packets
        'replay/model/raw-mpps',
        // ... and on the longer capture
        'replay/long/model/raw-mpps',
        'replay/long/model+core/workers=1/mpps',
        'replay/long/model+core/ratio-to-model-raw',
        'replay/model+core/workers=1/mpps',
        'replay/model+core/ratio-to-model-raw',
      ])
        expect(ids, id).toContain(id);
      // The replay against the I/O floor on the same file: tcpdump -r X -w Y, and replay --out.
      if (spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0) {
        for (const id of [
          'replay/tcpdump/mpps',
          'replay/core/out/workers=1/mpps',
          'replay/tcpdump/ratio-to-core-workers=1',
          'replay/core/out/one-sided/workers=1/mpps',
          'replay/tcpdump/ratio-to-core-one-sided-workers=1',
          // the large capture (here 2k stream packets), against tcpdump on it
          'replay/large/tcpdump/mpps',
          'replay/large/core/out/workers=2/mpps',
          'replay/large/tcpdump/ratio-to-core-workers=2',
          'replay/large/core/out/one-sided/workers=1/mpps',
          'replay/large/tcpdump/ratio-to-core-one-sided-workers=2',
        ])
          expect(ids, id).toContain(id);
        const large = r.results.find((x) => x.workload === 'replay' && x.notes.large === 1 && x.engine === 'core')!;
        expect(large.packetsPerRun).toBeGreaterThan(2048);
        expect(large.notes.wallMs as number).toBeGreaterThan(0);
      }
      for (const f of r.figures) {
        expect(f.samples.length, f.id).toBeGreaterThan(0);
        expect(f.min, f.id).toBeLessThanOrEqual(f.median);
        expect(f.median, f.id).toBeLessThanOrEqual(f.max);
        expect(f.median, f.id).toBeGreaterThan(0);
      }
      for (const res of r.results) {
        expect(res.input.length, `${res.workload}/${res.engine}`).toBeGreaterThan(20);
        expect(res.measured.length).toBeGreaterThan(20);
      }
      // Which scenario the workloads ran on is in the report (results/ history: the unfiltered VPC).
      expect(r.notes.some((n) => n.startsWith('scenario: vpc-nat-instance-open '))).toBe(true);
      const est = r.results.find((x) => x.workload === 'established' && x.engine === 'core' && x.workers === 2)!;
      // The CPUs the process actually got: over the whole run, and during the timed 2-worker runs
      // (all threads' CPU time over wall time; at most the machine's cores, with some clock slack).
      const cores = (r.machine as { cores: number }).cores;
      expect(r.processCpu?.cpusGot).toBeGreaterThan(0);
      expect(r.processCpu!.cpusGot).toBeLessThanOrEqual(cores * 1.1);
      expect(est.notes.cpusGot as number).toBeGreaterThan(0);
      expect(est.notes.cpusGot as number).toBeLessThanOrEqual(cores * 1.1);
      expect(est.notes.streamCheck).toBe(
        '1024/1024 delivered'.replace('1024/1024', `${est.notes.preloadedPackets}/${est.notes.preloadedPackets}`),
      );
      // Per-batch latency of the pool runs: percentiles present and ordered; not on the model's results.
      const withLatency = r.results.filter((x) => x.latency);
      expect(withLatency.map((x) => `${x.workload}/${x.workers}`).sort()).toEqual([
        'established/1',
        'established/2',
        'setup/1',
        'setup/2',
      ]);
      for (const x of withLatency) {
        const l = x.latency!;
        expect(l.batches, x.workload).toBeGreaterThan(0);
        for (const p of [l.batchUs, l.nsPerPacket]) {
          expect(p.p50, x.workload).toBeGreaterThan(0);
          expect(p.p50).toBeLessThanOrEqual(p.p99);
          expect(p.p99).toBeLessThanOrEqual(p.p999);
          expect(p.p999).toBeLessThanOrEqual(p.max);
        }
      }
      const files = (await readdir(out)).sort();
      expect(files.some((f) => /^bench-.*\.json$/.test(f))).toBe(true);
      expect(files).toContain('latency.svg');
      checkXml(await readFile(join(out, 'latency.svg'), 'utf8'));
      expect(files).toContain('README.md');
      expect(files).toContain('throughput.svg');
      expect(files).toContain('scaling.svg');
      checkXml(await readFile(join(out, 'throughput.svg'), 'utf8'));
      const readme = await readFile(join(out, 'README.md'), 'utf8');
      expect(readme).toContain('## Established-flow throughput');
      expect(readme).toContain('![throughput](throughput.svg)');
      expect(readme).toContain('## Per-batch latency (through the worker pool)');
      expect(readme).toContain('![latency](latency.svg)');
      // model,core's ratio reads with the CPUs the process got for it
      expect(readme).toMatch(/model,core per run: wall [\d.]+ ms; CPU main thread .* the process got \d+\.\d\d CPUs\./);
      expect(readme).toMatch(/model,core on the longer capture per run: wall [\d.]+ ms/);
      expect(readme).toMatch(/core, 1 worker\(s\), table 0 to \d+/);
      expect(readme).toContain('model,core (core 1 worker), longer capture (');
      // compare a run with itself: every figure "no change".
      const logs: string[] = [];
      expect(await quiet(() => command.run(['compare', json, json]), logs)).toBe(0);
      expect(logs.join('')).toMatch(/0 faster\/better, 0 slower\/worse/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('rejects bad options and bad result files', async () => {
    await expect(command.run(['--sessions', '1x'])).rejects.toThrow(UsageError);
    await expect(command.run(['--workloads', 'nope'])).rejects.toThrow(/unknown workload 'nope'/);
    await expect(command.run(['compare', 'only-one.json'])).rejects.toThrow(UsageError);
    const dir = await mkdtemp(join(tmpdir(), 'natlab-bench-test-'));
    try {
      await writeFile(join(dir, 'x.json'), '{"kind":"other"}');
      await expect(command.run(['compare', join(dir, 'x.json'), join(dir, 'x.json')])).rejects.toThrow(
        /not a natlab bench result/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const KERNEL = await checkKernelPrerequisites();

describe.skipIf(!KERNEL.ok)(
  `natlab bench kernel baseline (needs root and tools${KERNEL.ok ? '' : `; missing: ${KERNEL.missing.join(', ')}`})`,
  () => {
    it('measures the kernel oracle on a short run and reports it as a ratio to the core', async () => {
      const { defaultOptions, runBench } = await import('../../bench/suite.ts');
      const o = defaultOptions(true);
      o.profile = await loadProfile('imix-zipf');
      o.workloads = ['established', 'setup'];
      o.workers = [1];
      o.sessions = [1024];
      o.runs = 1;
      o.minRunSec = 0.001;
      o.setupPerRun = 1024;
      o.model = false;
      o.micro = false;
      o.kernelPackets = 8;
      o.kernelSinglePackets = 4;
      const r = await runBench(o);
      const ids = r.figures.map((f) => f.id);
      expect(ids).toContain('established/kernel/mpps');
      expect(ids).toContain('setup/kernel/sessions-per-s');
      expect(ids).toContain('established/kernel/ratio-to-core-workers=1');
      const k = r.results.find((x) => x.engine === 'kernel' && x.workload === 'established')!;
      expect(k.measured).toMatch(/veth/);
      expect(k.notes.delivered).toBe(8);
      // The one-at-a-time path measured beside it, for the fast path's factor.
      const single = r.results.find(
        (x) => x.engine === 'kernel' && x.workload === 'established' && x.notes.injection === 'single',
      )!;
      expect(single.packetsPerRun).toBe(4);
      expect(single.samples[0]).toBeGreaterThan(0);
    }, 120_000);
  },
);
