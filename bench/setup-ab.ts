// Session setup, two code versions in one process: `npx tsx bench/setup-ab.ts --old DIR [--new DIR]`
//
// An A/B harness for changes to the core's new-flow path (docs/core.md "Session 7"). DIR is a
// source tree with src/ — e.g. an older commit extracted with
//   git archive <commit> src | tar -x -C tmp/old-<commit>
// (--new defaults to this tree; the scenario object is this tree's). Each version gets its own
// Dataplane on this thread over its own pre-faulted tables of the bench's scenario
// (vpc-nat-instance-open), warmed up on itself (--warm new flows, then expired by advancing the
// clock past the UDP timeout), then prefilled with S sessions (UDP app → 198.18.x.y:53, a fresh
// source port or destination each: bench/core-throughput.ts's setup tuples). V8 flags are per
// process: both versions run with the budget the first one's createCoreShared sets (src/core/
// v8-inlining.ts); compare such settings in separate processes. The measured part is rounds of
// one slice of new flows per version, the order alternating per round; CPU time per slice
// (process.cpuUsage: robust to other processes sharing the cores), medians and the median of the
// per-round ratios. The tables grow by rounds × slice sessions over the run (stated in the output).
//
// Options: --sessions 4096,65536  --rounds 48 (+ --skip 8 uncounted first)  --slice 512  --layout record
//          --warm 65536  --verbose (every round)  --json; with `node --expose-gc --import tsx` a full GC
//          precedes the rounds.

import { execSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildUdp, parseIpv4Addr } from '../src/packet/index.ts';
import { loadOpenScenario } from '../src/scenario/index.ts';
import { C_USED } from '../src/core/bench-api.ts';
import { resultFate, resultOutCount } from '../src/spec/frame-batch.ts';
import { FATE_DELIVERED } from '../src/spec/reasons.ts';

const APP_POINT = 3;
const APP = parseIpv4Addr('10.0.1.10');
const REMOTE_BASE = parseIpv4Addr('198.18.0.0');
const CHUNK = 256;
const PAYLOAD = new Uint8Array(18);
/** The prefill's time (ms): past the warm-up flows' UDP timeout (30 s). */
const T_PREFILL = 200_000;

// biome-ignore lint/suspicious/noExplicitAny: the versions' modules are loaded by path (their types may differ).
type Mod = any;

interface Version {
  name: string;
  api: Mod;
}

async function loadVersion(name: string, dir: string): Promise<Version> {
  const at = (p: string) => pathToFileURL(resolve(dir, p)).href;
  return {
    name,
    api: await import(at('src/core/bench-api.ts')),
  };
}

/** Flow s's tuple: the source port cycles over 60000, the destination moves on after each cycle. */
function flowFrame(s: number): Uint8Array {
  const sport = 1024 + (s % 60000);
  const dst = (REMOTE_BASE + Math.floor(s / 60000)) >>> 0;
  return buildUdp({ src: APP, dst, sport, dport: 53, payload: PAYLOAD });
}

/** Flows [from, from + n) as CoreBatches of CHUNK packets at time `ms` (built by the version's own API). */
function batches(v: Version, from: number, n: number, ms: number): Mod[] {
  const out: Mod[] = [];
  for (let c = 0; c < n; c += CHUNK) {
    const k = Math.min(CHUNK, n - c);
    const io = v.api.createCoreBatch(k, k * 64);
    const b = io.batch;
    let off = 0;
    for (let j = 0; j < k; j++) {
      const f = flowFrame(from + c + j);
      b.arena.set(f, off);
      b.off[j] = off;
      b.len[j] = f.length;
      b.ingress[j] = APP_POINT;
      b.timeUs[j] = ms * 1000;
      off = (off + f.length + 7) & ~7;
    }
    b.count = k;
    out.push(io);
  }
  return out;
}

function run(dp: Mod, ios: Mod[]): void {
  for (const io of ios) dp.processBatch(io.batch, io.out, io.idx, 0, io.batch.count);
}

/** Every packet delivered with one output (each created its session). */
function check(ios: Mod[], what: string): void {
  for (const io of ios)
    for (let k = 0; k < io.batch.count; k++) {
      const w = io.out.result[k];
      if (resultFate(w) !== FATE_DELIVERED || resultOutCount(w) !== 1)
        throw new Error(`setup-ab: ${what}: packet ${k} not delivered`);
    }
}

function median(xs: number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
}

function makeDataplane(v: Version, cap: number, layout: string): Mod {
  const sc = loadOpenScenario(); // this tree's: the scenario object is the versions' common input
  sc.conntrack.max = cap;
  const shared = v.api.createCoreShared(sc, { workers: 1, seed: 1, layout, prefault: true });
  return new v.api.Dataplane(shared, 0);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (k: string, d: string): string => {
    const i = args.indexOf(k);
    return i >= 0 && args[i + 1] ? args[i + 1] : d;
  };
  const oldDir = get('--old', '');
  if (oldDir === '') {
    console.error(
      'setup-ab: --old DIR is required (a source tree with src/, e.g. git archive <commit> src | tar -x -C DIR)',
    );
    process.exit(2);
  }
  const sizes = get('--sessions', '4096,65536').split(',').map(Number);
  const rounds = Number(get('--rounds', '48'));
  const slice = Number(get('--slice', '512'));
  const warm = Number(get('--warm', '65536'));
  const skip = Number(get('--skip', '8'));
  const verbose = args.includes('--verbose');
  const layout = get('--layout', 'record');
  const json = args.includes('--json');
  const versions = [await loadVersion('old', oldDir), await loadVersion('new', get('--new', '.'))];
  const load = () => execSync('cat /proc/loadavg').toString().split(' ').slice(0, 3).join(' ');
  const report: unknown[] = [];
  if (!json) console.log(`load ${load()}; layout ${layout}; slices of ${slice} new flows, ${rounds} rounds`);
  for (const S of sizes) {
    const cap = Math.max(warm, S + (rounds + skip) * slice) + 1024;
    // The measured Dataplanes. Each is warmed up itself (JIT: the slow path needs tens of
    // thousands of packets; a fresh instance after a throw-away one deoptimises on its objects'
    // maps and V8 recompiles on background threads, whose CPU time process.cpuUsage counts): the
    // warm-up flows then expire (advance past the UDP timeout), and S sessions are set up.
    const dps = versions.map((v) => {
      const dp = makeDataplane(v, cap, layout);
      const ios = batches(v, 0, warm, 0);
      run(dp, ios);
      check(ios, `${v.name} warm-up`);
      for (let k = 0; k < 64; k++) dp.advance(T_PREFILL);
      if (dp.tables.ctl[dp.tables.cBase + C_USED] !== 0) throw new Error('setup-ab: the warm-up flows did not expire');
      const pre = batches(v, warm, S, T_PREFILL);
      run(dp, pre);
      check(pre, `${v.name} prefill`);
      return dp;
    });
    const slices = versions.map((v) => {
      const all: Mod[][] = [];
      for (let r = 0; r < rounds + skip; r++) all.push(batches(v, warm + S + r * slice, slice, T_PREFILL + 1000));
      return all;
    });
    const ns: number[][] = versions.map(() => []);
    const ratios: number[] = [];
    (globalThis as { gc?: () => void }).gc?.();
    for (let r = 0; r < rounds + skip; r++) {
      const order = r & 1 ? [1, 0] : [0, 1];
      for (const x of order) {
        const c0 = process.cpuUsage();
        run(dps[x], slices[x][r]);
        const c = process.cpuUsage(c0);
        ns[x].push(((c.user + c.system) * 1000) / slice);
      }
      ratios.push(ns[0][ns[0].length - 1] / ns[1][ns[1].length - 1]);
      if (r < skip) {
        // The first rounds after the set-up run slow (the fresh tables' first touches by this code,
        // collection of the set-up's garbage): run, not counted.
        ns[0].pop();
        ns[1].pop();
        ratios.pop();
      }
    }
    if (verbose)
      for (let r = 0; r < ns[0].length; r++)
        console.log(`  round ${r + skip}: ${ns[0][r].toFixed(0)} ${ns[1][r].toFixed(0)}`);
    versions.forEach((v, x) => {
      for (const ios of slices[x]) check(ios, `${v.name} measured`);
    });
    const m = ns.map(median);
    const last = ns[0].length;
    const row = {
      sessions: S,
      grownTo: S + (rounds + skip) * slice,
      counted: last,
      nsOld: m[0],
      nsNew: m[1],
      perCpuSecOld: 1e9 / m[0],
      perCpuSecNew: 1e9 / m[1],
      speedup: median(ratios),
      load: load(),
    };
    report.push(row);
    if (!json)
      console.log(
        `${String(S).padStart(8)} → ${row.grownTo} sessions: old ${m[0].toFixed(0)} ns (${(row.perCpuSecOld / 1e6).toFixed(3)} M/CPU-s)  new ${m[1].toFixed(0)} ns (${(row.perCpuSecNew / 1e6).toFixed(3)} M/CPU-s)  ×${row.speedup.toFixed(3)} (median round ratio)  load ${row.load}`,
      );
  }
  if (json) console.log(JSON.stringify(report, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
