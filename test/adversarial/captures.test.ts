// The standing adversarial suite for captures: ≥ 2,000 mutated captures per run (seeded mutator,
// test/adversarial/capture-mutator.ts) made from the corpora (corpora/ and ../shared/corpora when
// present). Every one goes through `pcap info` in-process (main(), the code path the CLI runs), a
// sample through `replay` in-process, and batches through real `natlab` processes: 0 crashes,
// 0 stack traces, every exit 0 or 2. NATLAB_ADVERSARIAL_SEED=N runs another campaign; a failure
// names the seed, the source file and the mutation, and keeps the file.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePcapng } from '../../src/pcap/pcapng-writer.ts';
import { readCapture } from '../../src/pcap/reader.ts';
import { layoutOf, mutateCapture, MUTATION_KINDS } from './capture-mutator.ts';
import { NATLAB_BIN, runInProcess, STACK_TRACE_RE } from '../helpers/cli.ts';

const SEED = Number(process.env.NATLAB_ADVERSARIAL_SEED ?? 20261204);
const FILES = 2000;
/** In-process replays (model engine) of the mutated files, every k-th. */
const REPLAY_SAMPLE = 150;
/** Real processes: `pcap info` over a batch of files each, and single replays. */
const SPAWN_INFO_BATCH = 50;
const SPAWN_REPLAYS = 12;
const SPAWN_CONCURRENCY = 3;
const SHARED = process.env.NATLAB_SHARED_CORPORA ?? join('..', 'shared', 'corpora');

const tmp = mkdtempSync(join(tmpdir(), 'natlab-adversarial-'));
let keep = false;
afterAll(() => {
  if (!keep) rmSync(tmp, { recursive: true, force: true });
});

interface Mutant {
  file: string;
  source: string;
  seed: number;
  what: string;
}
const mutants: Mutant[] = [];

function captures(dir: string, out: string[], depth = 0): string[] {
  if (!existsSync(dir) || depth > 8) return out;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) captures(p, out, depth + 1);
    else if (/\.(pcap|pcapng|cap|trace)$/i.test(e) && st.size <= 1 << 20) out.push(p);
  }
  return out;
}

/** A pcapng made of a corpus pcap's records, so pcapng structure is mutated even without the shared corpora. */
async function asPcapng(path: string): Promise<Uint8Array> {
  const recs = [];
  let linkType = 1;
  for await (const r of readCapture(path)) {
    linkType = r.linkType;
    recs.push({
      tsSec: Math.floor(r.timeUs / 1e6),
      tsNsec: (r.timeUs % 1e6) * 1000,
      data: r.data,
      comment: recs.length % 3 === 0 ? 'c' : '',
    });
  }
  return encodePcapng(recs, {
    interfaces: [
      { linkType, name: 'eth0' },
      { linkType: 101, name: 'raw' },
    ],
  });
}

function why(m: Mutant): string {
  return `seed ${m.seed} (campaign ${SEED}) of ${m.source}: ${m.what}; file kept: ${m.file}`;
}

beforeAll(async () => {
  const sources = [...captures('corpora', []), ...captures(SHARED, [])].sort();
  const inputs: Array<{ name: string; bytes: Uint8Array }> = sources.map((s) => ({
    name: s,
    bytes: new Uint8Array(readFileSync(s)),
  }));
  // Every generated corpus input also as pcapng (two interfaces, comments): pcapng structure is
  // mutated even where the shared corpora (which hold the real pcapng files) are absent.
  const generated = readdirSync('corpora/generated')
    .map((d) => join('corpora/generated', d, 'input.pcap'))
    .filter((g) => existsSync(g))
    .sort();
  for (const g of generated) {
    const ng = { name: `${g} (as pcapng)`, bytes: await asPcapng(g) };
    inputs.push(ng, ng, ng); // weighted: pcapng is the format tools write today
  }
  expect(inputs.length).toBeGreaterThan(10);
  mkdirSync(join(tmp, 'm'));
  for (let i = 0; i < FILES; i++) {
    const seed = (SEED + i) >>> 0;
    const src = inputs[i % inputs.length];
    const other = inputs[(i * 7 + 3) % inputs.length];
    const m = mutateCapture(src.bytes, other.bytes, seed);
    const file = join(
      tmp,
      'm',
      `${String(i).padStart(4, '0')}.${layoutOf(m.bytes).kind === 'pcapng' ? 'pcapng' : 'pcap'}`,
    );
    writeFileSync(file, m.bytes);
    mutants.push({ file, source: src.name, seed, what: m.what });
  }
}, 120_000);

describe(`adversarial captures (campaign seed ${SEED})`, () => {
  it(`the mutator is seeded and covers every operator`, () => {
    const a = new Uint8Array(readFileSync('corpora/generated/icmp-unreachable/input.pcap'));
    const b = new Uint8Array(readFileSync('corpora/generated/dns-udp/input.pcap'));
    expect(mutateCapture(a, b, 7).bytes).toEqual(mutateCapture(a, b, 7).bytes);
    expect(mutants.length).toBe(FILES);
    // The stacked operators are named in `what`: every operator kind shows up in a campaign.
    const words = new Set(mutants.flatMap((m) => m.what.split('; ').map((w) => w.split(/[ :]/)[0])));
    expect(words.size).toBeGreaterThanOrEqual(Math.min(MUTATION_KINDS, 8));
    expect(mutants.filter((m) => m.file.endsWith('.pcapng')).length).toBeGreaterThan(20);
  });

  it(`pcap info, in-process, on all ${FILES} files: exit 0 or 2, no crash, no stack trace`, async () => {
    const bad: string[] = [];
    const codes = new Map<number | null, number>();
    for (const m of mutants) {
      const r = await runInProcess(['pcap', 'info', m.file]);
      codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      if (r.crash) bad.push(`crash ${r.crash.stack?.split('\n').slice(0, 3).join(' | ')}: ${why(m)}`);
      else if (r.code !== 0 && r.code !== 2) bad.push(`exit ${r.code}: ${why(m)}`);
      else if (STACK_TRACE_RE.test(r.stderr)) bad.push(`stack trace in stderr: ${why(m)}`);
      else if (r.code === 2 && !/^natlab pcap info: .+/m.test(r.stderr))
        bad.push(`exit 2 without a message: ${why(m)}`);
    }
    if (bad.length) keep = true;
    expect(bad.slice(0, 10)).toEqual([]);
    // The mutations are neither all fatal nor all harmless: both outcomes are exercised.
    expect(codes.get(0) ?? 0).toBeGreaterThan(FILES / 10);
    expect(codes.get(2) ?? 0).toBeGreaterThan(FILES / 10);
  }, 300_000);

  it(`replay --engines model, in-process, on every ${Math.floor(FILES / REPLAY_SAMPLE)}th file: exit 0 or 2, no crash`, async () => {
    const bad: string[] = [];
    const step = Math.floor(FILES / REPLAY_SAMPLE);
    for (let i = 0; i < FILES; i += step) {
      const m = mutants[i];
      const r = await runInProcess([
        'replay',
        '--in',
        m.file,
        '--out',
        join(tmp, 'replay'),
        '--engines',
        'model',
        '--no-progress',
      ]);
      if (r.crash) bad.push(`crash ${r.crash.stack?.split('\n').slice(0, 3).join(' | ')}: ${why(m)}`);
      else if (r.code !== 0 && r.code !== 2) bad.push(`exit ${r.code}: ${why(m)}`);
      else if (STACK_TRACE_RE.test(r.stderr)) bad.push(`stack trace in stderr: ${why(m)}`);
    }
    if (bad.length) keep = true;
    expect(bad.slice(0, 10)).toEqual([]);
  }, 300_000);

  it('real natlab processes: pcap info batches over all files, and replays on model,core', async () => {
    const jobs: Array<{ argv: string[]; files: Mutant[] }> = [];
    for (let i = 0; i < FILES; i += SPAWN_INFO_BATCH) {
      const files = mutants.slice(i, i + SPAWN_INFO_BATCH);
      jobs.push({ argv: ['pcap', 'info', ...files.map((m) => m.file)], files });
    }
    const step = Math.floor(FILES / SPAWN_REPLAYS);
    for (let i = 1; i < FILES; i += step) {
      const m = mutants[i];
      jobs.push({
        argv: [
          'replay',
          '--in',
          m.file,
          '--out',
          join(tmp, `spawn-replay-${i}`),
          '--engines',
          'model,core',
          '--no-progress',
        ],
        files: [m],
      });
    }
    const bad: string[] = [];
    const run = (j: (typeof jobs)[number]) =>
      new Promise<void>((resolve) => {
        const p = spawn(process.execPath, [NATLAB_BIN, ...j.argv], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d) => (err += String(d)));
        const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
        p.on('close', (code, signal) => {
          clearTimeout(timer);
          const where =
            j.files.length === 1
              ? why(j.files[0])
              : `one of ${relative(tmp, j.files[0].file)}..${relative(tmp, j.files[j.files.length - 1].file)} (campaign ${SEED})`;
          if (signal) bad.push(`killed by ${signal} (hang?): ${where}`);
          else if (code !== 0 && code !== 2) bad.push(`exit ${code}: ${where}: ${err.slice(0, 300)}`);
          else if (STACK_TRACE_RE.test(err)) bad.push(`stack trace: ${where}: ${err.slice(0, 300)}`);
          resolve();
        });
      });
    const queue = [...jobs];
    await Promise.all(
      Array.from({ length: SPAWN_CONCURRENCY }, async () => {
        for (let j = queue.shift(); j; j = queue.shift()) await run(j);
      }),
    );
    if (bad.length) keep = true;
    expect(bad.slice(0, 10)).toEqual([]);
    expect(jobs.length).toBeGreaterThanOrEqual(FILES / SPAWN_INFO_BATCH + SPAWN_REPLAYS - 1);
  }, 600_000);
});
