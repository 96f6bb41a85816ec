// natlab replay end to end on the reference model: ingress, one-sided re-addressing, counters,
// output captures (checked by tshark), differences between engines, bad input.
import { plantedNatClash } from '../helpers/planted.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReplay, type EngineFactory } from '../../src/diff/replay/replay.ts';
import { makeEngine, engineAvailable } from '../../src/diff/engines.ts';
import { scenarioForCapture } from '../../src/diff/replay/scenario.ts';
import { generatedInput } from '../../src/diff/replay/corpus.ts';
import { scriptedCaptures } from '../../src/traffic/scripted.ts';
import { loadOpenScenario, loadScenario } from '../../src/scenario/index.ts';
import { encodePcap, readCapture } from '../../src/pcap/index.ts';
import { buildEthernet, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { parseIpv4Addr } from '../../src/packet/addr.ts';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../src/packet/constants.ts';
import { InputError } from '../../src/spec/errors.ts';
import { HAVE_TSHARK, tsharkCheck } from '../helpers/tshark.ts';
import { main } from '../../src/cli/main.ts';

const HAVE_MODEL = await engineAvailable('model');
const SHARED = process.env.NATLAB_SHARED_CORPORA ?? join(import.meta.dirname, '..', '..', '..', 'shared', 'corpora');
const HAVE_SHARED = existsSync(SHARED);

let dir: string;
const caps = new Map<string, string>();
const scripted = scriptedCaptures();
const twoApps = () =>
  loadScenario(join(import.meta.dirname, '..', '..', 'corpora', 'generated', 'port-collision', 'scenario.yaml'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natlab-replay-test-'));
  for (const c of scripted) {
    const p = join(dir, `${c.name}.pcap`);
    await writeFile(p, generatedInput(c));
    caps.set(c.name, p);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function frames(path: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const r of readCapture(path)) out.push(new Uint8Array(r.data));
  return out;
}

describe.skipIf(!HAVE_MODEL)('natlab replay (model engine)', () => {
  it('one-sided TCP capture: every far-side frame is re-addressed and delivered; outputs per egress', async () => {
    const out = join(dir, 'tcp');
    const { report } = await runReplay({
      input: caps.get('tcp-sessions')!,
      outDir: out,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model'],
    });
    const m = report.engines[0];
    expect(report.input.records).toBe(33);
    expect(report.input.fed).toBe(33);
    expect(report.input.toPrivate).toBe(9);
    expect(m.readdressed).toEqual({ flow: 9, elasticIp: 0, unmapped: 0 });
    expect(m.delivered).toBe(33);
    expect(m.dropped).toBe(0);
    expect(m.sessionsCreated).toBe(3); // the three connections through the NAT instance
    expect(m.outputs.internet.frames).toBe(19);
    expect(m.outputs.app.frames).toBe(9);
    expect(m.outputs.web.frames).toBe(5);
    expect(report.exitCode).toBe(0);
    expect((await readdir(join(out, 'model'))).sort()).toEqual([
      'app-10.0.1.10.pcap',
      'internet.pcap',
      'nat-10.0.0.10.pcap',
      'web-10.0.0.20.pcap',
    ]);
    // Replies reach app on its private address, from the server it talked to.
    const app = await frames(join(out, 'model', 'app-10.0.1.10.pcap'));
    expect(app).toHaveLength(9);
    for (const f of app) expect([...f.subarray(14 + 16, 14 + 20)]).toEqual([10, 0, 1, 10]);
    // Nothing private leaves to the internet.
    for (const f of await frames(join(out, 'model', 'internet.pcap'))) expect(f[14 + 12]).not.toBe(10);
  });

  it.runIf(HAVE_TSHARK)('output captures open in tshark with correct checksums', async () => {
    // (tshark starts slowly: two captures, non-empty outputs only)
    for (const name of ['tcp-sessions', 'port-collision']) {
      const out = join(dir, `tshark-${name}`);
      const sc = name === 'port-collision' ? twoApps() : loadOpenScenario();
      await runReplay({ input: caps.get(name)!, outDir: out, scenario: sc, scenarioHow: 'test', engines: ['model'] });
      for (const f of await readdir(join(out, 'model'))) {
        if ((await frames(join(out, 'model', f))).length === 0) continue;
        const r = await tsharkCheck(join(out, 'model', f));
        expect(r.problems, `${name}/${f}`).toEqual([]);
      }
    }
  });

  it('raw IP output link type', async () => {
    const out = join(dir, 'raw');
    await runReplay({
      input: caps.get('ping')!,
      outDir: out,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model'],
      outputLinkType: LINKTYPE_RAW,
    });
    let n = 0;
    for await (const r of readCapture(join(out, 'model', 'internet.pcap'))) {
      expect(r.linkType).toBe(LINKTYPE_RAW);
      expect(r.data[0] >> 4).toBe(4);
      n++;
    }
    expect(n).toBeGreaterThan(0);
  });

  it('per-point pcaps with a story sink (--format pcap --junit) hold every output, as without one', async () => {
    // Regression: with a sink and no annotated capture, the outputs were counted but never written.
    const run = async (out: string, withSink: boolean) => {
      const stories: number[] = [];
      const { report } = await runReplay({
        input: caps.get('ping')!,
        outDir: out,
        outputFormat: 'pcap',
        scenario: loadOpenScenario(),
        scenarioHow: 'test',
        engines: ['model', 'core'],
        workers: 0,
        sinks: withSink ? [{ packet: (s) => stories.push(s.input) }] : [],
      });
      return { report, stories };
    };
    const plain = await run(join(dir, 'sink-none'), false);
    const sunk = await run(join(dir, 'sink-junit'), true);
    expect(sunk.stories.length).toBe(sunk.report.input.records);
    for (const engine of ['model', 'core'])
      for (const f of ['internet.pcap', 'app-10.0.1.10.pcap']) {
        const a = await frames(join(dir, 'sink-none', engine, f));
        const b = await frames(join(dir, 'sink-junit', engine, f));
        expect(b, `${engine}/${f}`).toEqual(a);
        const e = plain.report.engines.find((x) => x.engine === engine)!;
        expect(a.length).toBe(Object.values(e.outputs).find((o) => o.file.endsWith(f))!.frames);
      }
  });

  it('traceroute: the NAT instance answers TTL 1 itself; far-side ICMP errors are re-addressed through the quoted flow', async () => {
    const { report } = await runReplay({
      input: caps.get('traceroute')!,
      outDir: null,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model'],
      keepResults: true,
    });
    const m = report.engines[0];
    expect(m.droppedByReason['ttl-exceeded']).toBe(2);
    expect(m.generated).toBe(2);
    expect(m.readdressed.flow).toBe(4); // 2 time exceeded + 2 port unreachable
    expect(m.readdressed.unmapped).toBe(0);
  });

  it('port collision: two private hosts on one source port get distinct public ports; replies reach each', async () => {
    const { kept } = await runReplay({
      input: caps.get('port-collision')!,
      outDir: null,
      scenario: twoApps(),
      scenarioHow: 'test',
      engines: ['model'],
      keepResults: true,
    });
    const rows = kept!.model;
    const syns = rows.filter((r) => r.outputs[0]?.frame.includes(' S ttl'));
    expect(syns).toHaveLength(2);
    const port = (s: string) => /203\.0\.113\.10:(\d+)/.exec(s)?.[1];
    expect(port(syns[0].outputs[0].frame)).not.toBe(port(syns[1].outputs[0].frame));
    const toApp2 = rows.filter((r) => r.outputs.some((o) => o.egress === 'app2'));
    expect(toApp2.length).toBeGreaterThanOrEqual(5);
    expect(rows.every((r) => r.fate === 'delivered')).toBe(true);
  });

  it('bad input among good: counted before the engines or dropped by them; good packets around come through', async () => {
    const { report, kept } = await runReplay({
      input: caps.get('malformed-mix')!,
      outDir: null,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model'],
      keepResults: true,
    });
    const i = report.input;
    expect(i.records).toBe(20);
    expect(i.notFed).toMatchObject({
      'not-ipv4 (ethertype 0x0806)': 1,
      'not-ipv4 (ethertype 0x86dd)': 1,
      'malformed: truncated-link-header': 1,
      'malformed: truncated-ip-header': 1,
    });
    expect(
      Object.entries(i.notFed)
        .filter(([k]) => k.startsWith('no-ingress'))
        .reduce((a, [, v]) => a + v, 0),
    ).toBe(3);
    expect(i.clampedTimestamps).toBe(1);
    const m = report.engines[0];
    expect(m.droppedByReason.malformed).toBeGreaterThanOrEqual(5); // 2 counted + bad checksum, length, IHL
    expect(m.droppedByReason.fragment).toBe(1);
    expect(m.droppedByReason['no-ingress']).toBe(3);
    // the 6 echo packets and the DNS exchange are delivered
    const rows = kept!.model;
    const good = rows.filter((r) => r.outputs.some((o) => o.frame.startsWith('icmp') && o.frame.includes('echo')));
    expect(good).toHaveLength(6);
    expect(
      rows.filter((r) => r.outputs.some((o) => o.frame.includes(':53 ') || o.frame.includes(':53500'))).length,
    ).toBe(2);
  });

  it('sessions created counts conntrack entries, not NEW packets: a retransmitted SYN makes no second session', async () => {
    const A = parseIpv4Addr;
    const syn = buildTcp({
      src: A('10.0.1.10'),
      dst: A('198.51.100.7'),
      sport: 41000,
      dport: 443,
      flags: 0x02,
      seq: 1000,
    });
    const path = join(dir, 'syn-retransmit.pcap');
    await writeFile(
      path,
      encodePcap(
        [0, 1, 3].map((s) => ({ tsSec: 1_700_000_000 + s, tsNsec: 0, data: syn })),
        { linkType: LINKTYPE_RAW },
      ),
    );
    const { report } = await runReplay({
      input: path,
      outDir: null,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model'],
    });
    const m = report.engines[0];
    expect(m.ct.NEW).toBe(3); // every SYN before a reply is NEW (Linux too)
    expect(m.sessionsCreated).toBe(1);
    expect(m.conntrackAtEnd).toBe(1);
  });

  it('a truncated final record is a warning: every packet before it is replayed, exit 0', async () => {
    const bytes = await readFile(caps.get('ping')!);
    const cut = join(dir, 'ping-cut.pcap');
    await writeFile(cut, bytes.subarray(0, bytes.length - 10));
    const { report } = await runReplay({
      input: cut,
      outDir: null,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model'],
    });
    expect(report.input.records).toBe(13);
    expect(report.input.warnings.join()).toMatch(/truncated/i);
    expect(report.engines[0].delivered).toBe(13);
    expect(report.exitCode).toBe(0);
  });

  it('unsupported link types and non-captures are InputErrors naming the file', async () => {
    const bad = join(dir, 'text.pcap');
    await writeFile(bad, 'this is not a capture\n');
    await expect(
      runReplay({ input: bad, outDir: null, scenario: loadOpenScenario(), scenarioHow: 'test', engines: ['model'] }),
    ).rejects.toThrow(InputError);
    await expect(
      runReplay({
        input: join(dir, 'missing.pcap'),
        outDir: null,
        scenario: loadOpenScenario(),
        scenarioHow: 'test',
        engines: ['model'],
      }),
    ).rejects.toThrow(/missing\.pcap/);
  });

  it.runIf(HAVE_SHARED)(
    'pcapng input with a timestamp past 2106 (real capture): replayed, output timestamps clamped and said so',
    async () => {
      const p = join(SHARED, 'tcpdump', 'time_2106_overflow.pcapng');
      const c = await scenarioForCapture(p, '192.168.0.0/16');
      const out = join(dir, 'pcapng');
      const { report } = await runReplay({
        input: p,
        outDir: out,
        scenario: c.scenario,
        scenarioHow: c.how,
        engines: ['model'],
      });
      expect(report.input.format).toBe('pcapng');
      expect(report.input.records).toBe(1);
      expect(report.engines[0].delivered).toBe(1);
      expect(report.differences.notes.join()).toMatch(/clamped/);
      expect((await frames(join(out, 'model', 'internet.pcap'))).length).toBe(1);
    },
  );

  it('--inside builds the scenario around the capture: inside hosts become instances, one-sided replies re-addressed', async () => {
    const ip = parseIpv4Addr;
    const q = buildUdp({
      src: ip('192.168.7.20'),
      dst: ip('9.9.9.9'),
      sport: 5000,
      dport: 53,
      payload: new Uint8Array(20),
    });
    const a = buildUdp({
      src: ip('9.9.9.9'),
      dst: ip('192.168.7.20'),
      sport: 53,
      dport: 5000,
      payload: new Uint8Array(40),
    });
    const p = join(dir, 'inside.pcap');
    await writeFile(
      p,
      encodePcap(
        [q, a].map((d, k) => ({ tsSec: 100, tsNsec: k * 1000, data: buildEthernet(d) })),
        { linkType: LINKTYPE_ETHERNET },
      ),
    );
    const c = await scenarioForCapture(p, '192.168.0.0/16');
    expect(c.hosts.inside).toEqual([ip('192.168.7.20')]);
    expect(c.scenario.instances.some((i) => i.privateIp === ip('192.168.7.20'))).toBe(true);
    const { report } = await runReplay({
      input: p,
      outDir: null,
      scenario: c.scenario,
      scenarioHow: c.how,
      engines: ['model'],
    });
    expect(report.engines[0].readdressed.flow).toBe(1);
    expect(report.engines[0].delivered).toBe(2);
    expect(report.engines[0].translated).toBe(2);
  });

  it('--inside with no inside host in the capture still builds a scenario (internet-only traffic)', async () => {
    const ip = parseIpv4Addr;
    const d = buildUdp({ src: ip('8.8.4.4'), dst: ip('1.1.1.1'), sport: 5000, dport: 53 });
    const p = join(dir, 'outside-only.pcap');
    await writeFile(p, encodePcap([{ tsSec: 1, tsNsec: 0, data: buildEthernet(d) }], { linkType: LINKTYPE_ETHERNET }));
    const c = await scenarioForCapture(p, '10.0.0.0/8,192.168.0.0/16');
    expect(c.hosts.inside).toEqual([]);
    const { report } = await runReplay({
      input: p,
      outDir: null,
      scenario: c.scenario,
      scenarioHow: c.how,
      engines: ['model'],
    });
    expect(report.input.fromInternet).toBe(1);
    expect(report.engines[0].droppedByReason['igw-unknown-dst']).toBe(1);
  });

  it('two engines: agreement, and a difference reported with input and output packet numbers', async () => {
    const ok = await runReplay({
      input: caps.get('dns-udp')!,
      outDir: null,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model', 'model'],
    });
    expect(ok.report.agree).toBe(true);
    expect(ok.report.exitCode).toBe(0);
    // A broken engine: the model, but dropping input #5 with nat-clash.
    const factory: EngineFactory = plantedNatClash(5);
    const out = join(dir, 'diff');
    const bad = await runReplay({
      input: caps.get('dns-udp')!,
      outDir: out,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model', 'broken'],
      engineFactory: factory,
    });
    expect(bad.report.exitCode).toBe(1);
    const d = bad.report.differences.first[0];
    expect(d.input).toBe(5);
    expect(d.message).toMatch(/nat-clash/);
    expect(d.outputs.model).toEqual([{ file: 'model/internet.pcap', n: 3 }]);
    expect(d.outputs.broken).toEqual([]);
    // the referenced output really is that packet
    const f = (await frames(join(out, 'model', 'internet.pcap')))[2];
    expect([f[14 + 9], (f[14 + 20 + 2] << 8) | f[14 + 21 + 2]]).toEqual([17, 53]);
  });

  it('an engine refusing the input part-way: exit 2, the packets before are reported', async () => {
    const refusing: EngineFactory = async (name, sc, o) => {
      const inner = await makeEngine('model', sc, o);
      let calls = 0;
      return {
        name,
        async process(batch) {
          if (++calls > 3) throw new InputError('kernel engine: needs 300 s of real waiting');
          return inner.process(batch);
        },
        advance: (t) => inner.advance(t),
        conntrack: () => inner.conntrack(),
        natCounters: () => inner.natCounters(),
        close: () => inner.close(),
      };
    };
    const { report } = await runReplay({
      input: caps.get('dns-udp')!,
      outDir: null,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['slow'],
      engineFactory: refusing,
      chunkSize: 2,
    });
    expect(report.exitCode).toBe(2);
    expect(report.input.error).toMatch(/300 s of real waiting.*replay stopped/);
    expect(report.engines[0].packetsIn).toBeGreaterThan(0);
    expect(report.engines[0].packetsIn).toBeLessThan(10);
  });

  it('CLI: exit 0 on agreement with report.json and summary; exit 2 on a missing capture', async () => {
    const out = join(dir, 'cli');
    const logs: string[] = [];
    const w = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => (logs.push(String(s)), true)) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main([
        'replay',
        '--scenario',
        'vpc-nat-instance-open',
        '--in',
        caps.get('ping')!,
        '--out',
        out,
        '--engines',
        'model',
      ]);
    } finally {
      process.stdout.write = w;
    }
    expect(code).toBe(0);
    expect(logs.join('')).toMatch(/pps/);
    const rep = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(rep.engines[0].engine).toBe('model');
    const e = process.stderr.write.bind(process.stderr);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await main(['replay', '--in', join(dir, 'nope.pcap'), '--out', out, '--engines', 'model'])).toBe(2);
      expect(await main(['replay', '--in', caps.get('ping')!, '--engines', 'model'])).toBe(2);
    } finally {
      process.stderr.write = e;
    }
  });
});
