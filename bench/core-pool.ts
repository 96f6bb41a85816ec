// End-to-end worker throughput of the core's pool: 1 vs 2 workers on established flows, and the
// cost of a batch hand-over. Run: npx tsx bench/core-pool.ts [--flows N] [--batch N] [--runs N]
// (writes results/core-pool-<stamp>.json).
//
// What is measured (measurePool): the time from posting the first descriptor to the completion of
// the last, for `batches` batches of `batchSize` pre-loaded packets, with up to `depth` batches in
// flight per worker (pipelined: a worker takes its next descriptor without waiting for main).
// Inside: the ring hand-over (post, wake-up, completion signal, main's wait) and each worker's
// Dataplane.processBatch over its share (parse, lookup, composed rewrite, output copy, result
// columns). Not inside: copying frames into the arena, dispatchWorker and the per-worker index
// lists (computed once when the batches are pre-loaded: batches are re-used), and turning results
// into PacketResult objects (the engine adapter's job). Sessions are created by one warm-up pass
// over every batch before timing, so every timed packet is ESTABLISHED.
//
// Frames: 46-byte IPv4 UDP packets (20 IP + 8 UDP + 18 payload = a 64-byte Ethernet frame with its
// 14-byte header and 4-byte FCS) from the built-in scenario's app server (10.0.1.10, a different
// source port per flow) to internet hosts 198.51.100.0/24 port 53, through the NAT instance
// (MASQUERADE to 10.0.0.10) and the IGW (to 203.0.113.10).

import { PROTO_UDP } from '../src/packet/constants.ts';
import { buildUdp } from '../src/packet/build.ts';
import { loadBuiltinScenario } from '../src/scenario/index.ts';
import { FATE_DELIVERED } from '../src/spec/reasons.ts';
import { instancePoint, type Scenario } from '../src/spec/scenario.ts';
import { dispatchWorker } from '../src/core/dispatch.ts';
import { type BatchIO, createBatchIO, createCoreShared } from '../src/core/layout.ts';
import { CorePool } from '../src/core/pool.ts';
import { OP_PROCESS, RING_SLOTS } from '../src/core/ring.ts';
import { writeBenchResult } from './results.ts';

export interface PoolBenchOptions {
  /** Worker counts to measure (default [1, 2]). */
  workers?: number[];
  /** Established flows (default 1024). */
  flows?: number;
  /** Packets per batch (default 4096). */
  batchSize?: number;
  /** Timed batches per run (default: enough for ~8 M packets). */
  batches?: number;
  /** Runs per worker count; the median is reported (default 5). */
  runs?: number;
  /** Batches in flight per worker (default 2: double buffering). */
  depth?: number;
  /** Worker polls before sleeping (CorePool spin). */
  spin?: number;
  log?: (line: string) => void;
}

export interface PoolRun {
  workers: number;
  flows: number;
  batchSize: number;
  packets: number;
  /** Median over runs. */
  mpps: number;
  nsPerPacket: number;
  runsMpps: number[];
  /** Packets per worker in the timed runs (dispatch balance). */
  perWorker: number[];
}

export interface PoolBenchResult {
  runs: PoolRun[];
  /** Mpps with the most workers / Mpps with one (target ≥ 1.7 for 2 workers). */
  ratio: number | null;
  handover: HandoverResult[];
}

const FRAME_PAYLOAD = 18; // 46-byte IPv4 packets

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function flowPacket(scenario: Scenario, i: number): Uint8Array {
  const app = scenario.instances.find((x) => x.name === 'app') ?? scenario.instances[scenario.instances.length - 1];
  // 64 ports per destination host keeps each worker's share of source ports realistic.
  const dst = (0xc6336400 | (1 + ((i >> 6) % 254))) >>> 0; // 198.51.100.1..254
  const sport = 1024 + (((i & 63) * 1009 + (i >> 6) * 7) % 64000);
  return buildUdp({ src: app.privateIp, dst, sport, dport: 53, payload: new Uint8Array(FRAME_PAYLOAD) });
}

interface Loaded {
  ios: BatchIO[];
  idx: Int32Array[];
  /** Per batch, per worker: [first, count). */
  shares: Int32Array[];
}

/** Pre-load ceil(flows / batchSize) batches (at least 2), packets cycling over the flows. */
function preload(scenario: Scenario, shared: ReturnType<typeof createCoreShared>, W: number, flows: number, batchSize: number): Loaded {
  const nb = Math.max(2, Math.ceil(flows / batchSize));
  const appPoint = instancePoint(scenario.instances.findIndex((x) => x.name === 'app'));
  const frames: Uint8Array[] = [];
  for (let i = 0; i < flows; i++) frames.push(flowPacket(scenario, i));
  const ios: BatchIO[] = [];
  const idx: Int32Array[] = [];
  const shares: Int32Array[] = [];
  let k = 0;
  for (let b = 0; b < nb; b++) {
    const io = createBatchIO(batchSize, batchSize * 64, W);
    const owner = new Int32Array(batchSize);
    const counts = new Int32Array(W + 1);
    let off = 0;
    for (let i = 0; i < batchSize; i++) {
      const f = frames[k++ % flows];
      io.inArena.set(f, off);
      io.inOff[i] = off;
      io.inLen[i] = f.length;
      io.ingress[i] = appPoint;
      io.timeMs[i] = 1000;
      const w = dispatchWorker(shared.compiled, W, io.inArena, off, f.length, appPoint);
      owner[i] = w;
      counts[w + 1]++;
      off += f.length;
    }
    for (let w = 0; w < W; w++) counts[w + 1] += counts[w];
    const share = new Int32Array(2 * W);
    for (let w = 0; w < W; w++) {
      share[2 * w] = counts[w];
      share[2 * w + 1] = counts[w + 1] - counts[w];
    }
    const list = new Int32Array(new SharedArrayBuffer(batchSize * 4));
    for (let i = 0; i < batchSize; i++) list[counts[owner[i]]++] = i;
    ios.push(io);
    idx.push(list);
    shares.push(share);
  }
  return { ios, idx, shares };
}

/** Post `batches` batches cycling over the pre-loaded ones, `depth` in flight. Returns seconds. */
async function drive(pool: CorePool, loaded: Loaded, batches: number, depth: number): Promise<number> {
  const W = pool.workers;
  const nb = loaded.ios.length;
  const inflight: Int32Array[] = [];
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) {
    const slot = b % nb;
    const share = loaded.shares[slot];
    const seqs = new Int32Array(W).fill(-1);
    for (let w = 0; w < W; w++) {
      if (share[2 * w + 1] > 0) seqs[w] = await pool.post(w, OP_PROCESS, slot, share[2 * w], share[2 * w + 1], 0, b);
    }
    inflight.push(seqs);
    if (inflight.length >= depth) {
      const s = inflight.shift()!;
      for (let w = 0; w < W; w++) if (s[w] >= 0) await pool.waitFor(w, s[w]);
    }
  }
  for (const s of inflight) for (let w = 0; w < W; w++) if (s[w] >= 0) await pool.waitFor(w, s[w]);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function measurePool(opts: PoolBenchOptions = {}): Promise<PoolBenchResult> {
  const log = opts.log ?? (() => {});
  const scenario = loadBuiltinScenario();
  const flows = opts.flows ?? 1024;
  const batchSize = opts.batchSize ?? 4096;
  const runs = opts.runs ?? 5;
  const depth = Math.min(opts.depth ?? 2, RING_SLOTS);
  const batches = opts.batches ?? Math.max(8, Math.ceil(8_000_000 / batchSize));
  const out: PoolRun[] = [];
  for (const W of opts.workers ?? [1, 2]) {
    const shared = createCoreShared(scenario, { workers: W, seed: 1, capacity: Math.max(4 * flows, 4096) });
    const loaded = preload(scenario, shared, W, flows, batchSize);
    const pool = new CorePool({ workers: W, shared, ios: loaded.ios, idx: loaded.idx, spin: opts.spin });
    try {
      // Warm-up: creates every session (first pass), then lets the JIT settle.
      await drive(pool, loaded, loaded.ios.length, 1);
      for (let b = 0; b < loaded.ios.length; b++) {
        const io = loaded.ios[b];
        for (let i = 0; i < batchSize; i++) {
          if (io.fate[i] !== FATE_DELIVERED) throw new Error(`bench: packet ${i} of batch ${b} was not delivered (reason ${io.reason[i]})`);
        }
      }
      await drive(pool, loaded, Math.max(4, batches >> 2), depth);
      const before = Array.from({ length: W }, (_, w) => pool.packets(w));
      const mppsRuns: number[] = [];
      for (let r = 0; r < runs; r++) {
        const sec = await drive(pool, loaded, batches, depth);
        mppsRuns.push((batches * batchSize) / sec / 1e6);
      }
      const perWorker = Array.from({ length: W }, (_, w) => pool.packets(w) - before[w]);
      const mpps = median(mppsRuns);
      out.push({
        workers: W,
        flows,
        batchSize,
        packets: batches * batchSize,
        mpps,
        nsPerPacket: 1000 / mpps,
        runsMpps: mppsRuns,
        perWorker,
      });
      log(
        `workers=${W} flows=${flows} batch=${batchSize}: ${mpps.toFixed(2)} Mpps (${(1000 / mpps).toFixed(1)} ns/packet), ` +
          `runs ${mppsRuns.map((x) => x.toFixed(2)).join(' ')}, per worker ${perWorker.join('/')}`,
      );
    } finally {
      await pool.close();
    }
  }
  const one = out.find((r) => r.workers === 1);
  const most = out.reduce((a, b) => (b.workers > a.workers ? b : a), out[0]);
  const ratio = one && most && most.workers > 1 ? most.mpps / one.mpps : null;
  if (ratio !== null) log(`ratio ${most.workers} workers / 1 worker: ${ratio.toFixed(2)}x (target >= 1.7x)`);
  const handover = await measureHandover({ workers: opts.workers ?? [1, 2], log });
  return { runs: out, ratio, handover };
}

export interface HandoverResult {
  workers: number;
  /** µs per batch when main posts one batch to every worker and waits for it (no overlap). */
  roundTripUs: number;
  /** µs per batch with `depth` batches in flight (pipelined). */
  pipelinedUs: number;
  depth: number;
}

/**
 * Cost of a hand-over alone: workers that process nothing ('noop' mode), one descriptor per worker
 * per batch. Median of 5 runs of `rounds` batches.
 */
export async function measureHandover(opts: { workers?: number[]; rounds?: number; depth?: number; spin?: number; log?: (l: string) => void } = {}): Promise<HandoverResult[]> {
  const rounds = opts.rounds ?? 2000;
  const depth = Math.min(opts.depth ?? 2, RING_SLOTS);
  const res: HandoverResult[] = [];
  for (const W of opts.workers ?? [1, 2]) {
    const idx = [new Int32Array(new SharedArrayBuffer(4)), new Int32Array(new SharedArrayBuffer(4))];
    const pool = new CorePool({ workers: W, shared: {} as never, ios: [{} as never, {} as never], idx, mode: 'noop', spin: opts.spin });
    const loaded = { ios: [{}, {}] as BatchIO[], idx, shares: [0, 1].map(() => new Int32Array(2 * W).map((_, i) => (i & 1 ? 1 : 0))) };
    try {
      await drive(pool, loaded, 200, 1);
      const rt: number[] = [];
      const pipe: number[] = [];
      for (let r = 0; r < 5; r++) {
        rt.push(((await drive(pool, loaded, rounds, 1)) / rounds) * 1e6);
        pipe.push(((await drive(pool, loaded, rounds, depth)) / rounds) * 1e6);
      }
      const h = { workers: W, roundTripUs: median(rt), pipelinedUs: median(pipe), depth };
      res.push(h);
      opts.log?.(`hand-over, workers=${W}: ${h.roundTripUs.toFixed(1)} µs/batch round trip, ${h.pipelinedUs.toFixed(1)} µs/batch with ${depth} in flight`);
    } finally {
      await pool.close();
    }
  }
  return res;
}

function argNum(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: expected a positive number, got '${argv[i + 1]}'`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const opts: PoolBenchOptions = {
    flows: argNum(argv, '--flows', 1024),
    batchSize: argNum(argv, '--batch', 4096),
    runs: argNum(argv, '--runs', 5),
    depth: argNum(argv, '--depth', 2),
    log: (l) => console.log(l),
  };
  const res = await measurePool(opts);
  const file = await writeBenchResult('core-pool', {
    description:
      'core pool: end-to-end worker throughput on established UDP flows (46-byte IPv4 = 64-byte Ethernet frames), pre-loaded re-used batches; hand-over cost with no-op workers',
    measured:
      'post of the first descriptor to completion of the last: ring hand-over + Dataplane.processBatch per worker share; excludes copy-in, dispatch, result conversion',
    proto: PROTO_UDP,
    options: { ...opts, log: undefined },
    ...res,
  });
  console.log(`wrote ${file}`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
