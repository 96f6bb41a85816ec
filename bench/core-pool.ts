// End-to-end worker throughput of the core's pool: 1 vs 2 workers on established flows, and the
// cost of a batch hand-over. Run: npx tsx bench/core-pool.ts [--flows 1024,65536] [--batch N]
// [--runs N] [--depth N] (writes results/core-pool-<stamp>.json).
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
// 14-byte header and 4-byte FCS) from vpc-nat-instance-open's app server (10.0.1.10, a different
// source port per flow) to internet hosts 198.51.100.0/24 port 53, through the NAT instance
// (MASQUERADE to 10.0.0.10) and the IGW (to 203.0.113.10). Each flow is an ASSURED UDP stream
// (opened, answered, used again 3 s later) before timing: the dataplane's fast-path case.

import { availableParallelism, loadavg } from 'node:os';
import { PROTO_UDP } from '../src/packet/constants.ts';
import { buildUdp } from '../src/packet/build.ts';
import { loadOpenScenario } from '../src/scenario/index.ts';
import { FATE_DELIVERED } from '../src/spec/reasons.ts';
import { resultFate, resultReason } from '../src/spec/frame-batch.ts';
import { POINT_INTERNET, instancePoint, type Scenario } from '../src/spec/scenario.ts';
import {
  dispatchWorker,
  type CoreBatch,
  type CoreShared,
  createCoreBatch,
  createCoreShared,
  Dataplane,
  CorePool,
  OP_PROCESS,
  RING_SLOTS,
} from '../src/core/bench-api.ts';
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
  /** Batches in flight per worker (default 8, the ring's size; refilled in halves). */
  depth?: number;
  /** Worker polls before sleeping (CorePool spin). */
  spin?: number;
  log?: (line: string) => void;
  /** Also measure the hand-over alone (default true). */
  handover?: boolean;
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
  /** Per worker: share of the wall time spent processing descriptors (the rest: waiting for work). */
  busyShare: number[];
  /** Per worker: ns per packet while processing (excludes waiting). */
  nsPerPacketBusy: number[];
  /** Per worker: times it slept waiting for a descriptor. */
  sleeps: number[];
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

const APP_NAME = 'app';
const HOST_NET = 0xc6336400; // 198.51.100.0/24
const T_OPEN = 1000; // ms: first packet of every flow
const T_REPLY = 1001; // the reply (SEEN_REPLY)
const T_RUN = 4000; // > 2 s later: the flow is an ASSURED UDP stream; every timed packet is at T_RUN

/** Flow i: app:(1024 + i % 64000) -> 198.51.100.(1 + i / 64000):53; every flow its own source port up to 64000 flows. */
function flowEnds(i: number): { dst: number; sport: number } {
  return { dst: (HOST_NET | (1 + Math.floor(i / 64000))) >>> 0, sport: 1024 + (i % 64000) };
}

function outPacket(scenario: Scenario, i: number): Uint8Array {
  const app = scenario.instances.find((x) => x.name === APP_NAME)!;
  const { dst, sport } = flowEnds(i);
  return buildUdp({ src: app.privateIp, dst, sport, dport: 53, payload: new Uint8Array(FRAME_PAYLOAD) });
}

interface Loaded {
  ios: CoreBatch[];
  /** Per batch, per worker: [first, count). */
  shares: Int32Array[];
}

/** Fill one CoreBatch with `frames` (all at `timeMs`), dispatch, and sort the indices by owner. */
function loadBatch(
  shared: CoreShared,
  W: number,
  frames: { frame: Uint8Array; ingress: number }[],
  timeMs: number,
): { io: CoreBatch; share: Int32Array } {
  const n = frames.length;
  const io = createCoreBatch(n, Math.max(n * 64, 4096));
  const b = io.batch;
  const owner = new Int32Array(n);
  const counts = new Int32Array(W + 1);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const { frame, ingress } = frames[i];
    b.arena.set(frame, off);
    b.off[i] = off;
    b.len[i] = frame.length;
    b.ingress[i] = ingress;
    b.timeUs[i] = timeMs * 1000;
    const w = dispatchWorker(shared.compiled, W, b.arena, off, frame.length, ingress);
    owner[i] = w;
    counts[w + 1]++;
    off = (off + frame.length + 7) & ~7; // aligned frames
  }
  b.count = n;
  for (let w = 0; w < W; w++) counts[w + 1] += counts[w];
  const share = new Int32Array(2 * W);
  for (let w = 0; w < W; w++) {
    share[2 * w] = counts[w];
    share[2 * w + 1] = counts[w + 1] - counts[w];
  }
  const idx = io.idx;
  for (let i = 0; i < n; i++) idx[counts[owner[i]]++] = i;
  return { io, share };
}

/**
 * Establish every flow (out, reply, out 3 s later: an ASSURED UDP stream, the fast path's case)
 * with one Dataplane per worker index on this thread — the same code and shared memory the
 * workers use — then pre-load ceil(flows / batchSize) timed batches (at least 2), packets cycling
 * over the flows. Checks that every timed packet is delivered by the fast path.
 */
function preload(scenario: Scenario, shared: CoreShared, W: number, flows: number, batchSize: number): Loaded {
  const appIdx = scenario.instances.findIndex((x) => x.name === APP_NAME);
  const nat = scenario.instances.find((x) => x.elasticIp !== null && x.nat !== null);
  if (appIdx < 0 || !nat) throw new Error('bench: the scenario needs an app server and a NAT instance with an EIP');
  const appPoint = instancePoint(appIdx);
  const outs = Array.from({ length: flows }, (_, i) => ({ frame: outPacket(scenario, i), ingress: appPoint }));
  const replies = Array.from({ length: flows }, (_, i) => {
    const { dst, sport } = flowEnds(i);
    return {
      frame: buildUdp({
        src: dst,
        dst: nat.elasticIp!,
        sport: 53,
        dport: sport,
        payload: new Uint8Array(FRAME_PAYLOAD),
      }),
      ingress: POINT_INTERNET,
    };
  });
  const dps = Array.from({ length: W }, (_, w) => new Dataplane(shared, w));
  const runAll = (b: { io: CoreBatch; share: Int32Array }, what: string) => {
    for (let w = 0; w < W; w++) dps[w].processBatch(b.io.batch, b.io.out, b.io.idx, b.share[2 * w], b.share[2 * w + 1]);
    for (let i = 0; i < b.io.batch.count; i++) {
      const r = b.io.out.result[i];
      if (resultFate(r) !== FATE_DELIVERED)
        throw new Error(`bench: ${what} packet ${i} not delivered (reason ${resultReason(r)})`);
    }
  };
  runAll(loadBatch(shared, W, outs, T_OPEN), 'opening');
  runAll(loadBatch(shared, W, replies, T_REPLY), 'reply');
  runAll(loadBatch(shared, W, outs, T_RUN), 'assuring');
  const nb = Math.max(2, Math.ceil(flows / batchSize));
  const ios: CoreBatch[] = [];
  const shares: Int32Array[] = [];
  let k = 0;
  for (let b = 0; b < nb; b++) {
    const frames = Array.from({ length: batchSize }, () => outs[k++ % flows]);
    const l = loadBatch(shared, W, frames, T_RUN);
    const fast0 = dps.reduce((a, d) => a + d.fastCount, 0);
    runAll(l, 'timed');
    const fast = dps.reduce((a, d) => a + d.fastCount, 0) - fast0;
    if (fast !== batchSize) throw new Error(`bench: only ${fast} of ${batchSize} timed packets took the fast path`);
    ios.push(l.io);
    shares.push(l.share);
  }
  return { ios, shares };
}

/**
 * Post `batches` batches cycling over the pre-loaded ones, up to `depth` in flight per worker
 * (depth 1: post, wait, post...: the unpipelined round trip). Returns seconds.
 */
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
      // Refill in halves: main wakes once per depth/2 batches, not once per batch.
      const k = Math.max(1, depth >> 1);
      const s = inflight[k - 1];
      for (let w = 0; w < W; w++) if (s[w] >= 0) await pool.waitFor(w, s[w]);
      inflight.splice(0, k);
    }
  }
  for (const s of inflight) for (let w = 0; w < W; w++) if (s[w] >= 0) await pool.waitFor(w, s[w]);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function measurePool(opts: PoolBenchOptions = {}): Promise<PoolBenchResult> {
  const log = opts.log ?? (() => {});
  const scenario = loadOpenScenario();
  const flows = opts.flows ?? 1024;
  if (flows > 250 * 64000) throw new Error(`bench: at most ${250 * 64000} flows`);
  const batchSize = opts.batchSize ?? 4096;
  const runs = opts.runs ?? 5;
  const depth = Math.min(opts.depth ?? RING_SLOTS, RING_SLOTS);
  const batches = opts.batches ?? Math.max(8, Math.ceil(8_000_000 / batchSize));
  const out: PoolRun[] = [];
  for (const W of opts.workers ?? [1, 2]) {
    const shared = createCoreShared(scenario, { workers: W, seed: 1, capacity: Math.max(4 * flows, 4096) });
    const loaded = preload(scenario, shared, W, flows, batchSize);
    const pool = new CorePool({ workers: W, shared, spin: opts.spin });
    for (const io of loaded.ios) pool.register(io); // numbers 0.. in order: the descriptors' batch numbers
    try {
      // Warm-up: lets the workers' JIT settle on the fast path.
      await drive(pool, loaded, Math.max(4, batches >> 2), depth);
      for (let b = 0; b < loaded.ios.length; b++) {
        const io = loaded.ios[b];
        for (let i = 0; i < batchSize; i++) {
          const r = io.out.result[i];
          if (resultFate(r) !== FATE_DELIVERED)
            throw new Error(`bench: packet ${i} of batch ${b} was not delivered (reason ${resultReason(r)})`);
        }
      }
      const before = Array.from({ length: W }, (_, w) => pool.packets(w));
      const busy0 = Array.from({ length: W }, (_, w) => pool.busyUs(w));
      const sleeps0 = Array.from({ length: W }, (_, w) => pool.sleeps(w));
      const tRuns0 = process.hrtime.bigint();
      const mppsRuns: number[] = [];
      for (let r = 0; r < runs; r++) {
        const sec = await drive(pool, loaded, batches, depth);
        mppsRuns.push((batches * batchSize) / sec / 1e6);
      }
      const wallUs = Number(process.hrtime.bigint() - tRuns0) / 1000;
      const perWorker = Array.from({ length: W }, (_, w) => pool.packets(w) - before[w]);
      const busyShare = Array.from({ length: W }, (_, w) => (pool.busyUs(w) - busy0[w]) / wallUs);
      const sleeps = Array.from({ length: W }, (_, w) => pool.sleeps(w) - sleeps0[w]);
      const nsBusy = Array.from(
        { length: W },
        (_, w) => ((pool.busyUs(w) - busy0[w]) * 1000) / Math.max(1, perWorker[w]),
      );
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
        busyShare,
        nsPerPacketBusy: nsBusy,
        sleeps,
      });
      log(
        `workers=${W} flows=${flows} batch=${batchSize}: ${mpps.toFixed(2)} Mpps (${(1000 / mpps).toFixed(1)} ns/packet), ` +
          `runs ${mppsRuns.map((x) => x.toFixed(2)).join(' ')}, per worker ${perWorker.join('/')} packets, ` +
          `busy ${busyShare.map((x) => `${(100 * x).toFixed(0)}%`).join('/')} of wall time at ${nsBusy.map((x) => x.toFixed(0)).join('/')} ns/packet, sleeps ${sleeps.join('/')}, fast path ${Array.from({ length: W }, (_, w) => pool.fastPackets(w)).join('/')}`,
      );
    } finally {
      await pool.close();
    }
  }
  const one = out.find((r) => r.workers === 1);
  const most = out.reduce((a, b) => (b.workers > a.workers ? b : a), out[0]);
  const ratio = one && most && most.workers > 1 ? most.mpps / one.mpps : null;
  if (ratio !== null) log(`ratio ${most.workers} workers / 1 worker: ${ratio.toFixed(2)}x (target >= 1.7x)`);
  const handover = opts.handover === false ? [] : await measureHandover({ workers: opts.workers ?? [1, 2], log });
  return { runs: out, ratio, handover };
}

export interface HandoverResult {
  workers: number;
  /** µs per batch when main posts one batch to every worker and waits for it (no overlap). */
  roundTripUs: number;
  /** µs per batch with `depth` batches in flight (pipelined, double buffering). */
  pipelinedUs: number;
  depth: number;
  /** µs per batch with the ring full (RING_SLOTS in flight, refilled in halves). */
  ringFullUs: number;
}

/**
 * Cost of a hand-over alone: workers that process nothing ('noop' mode), one descriptor per worker
 * per batch. Median of 5 runs of `rounds` batches.
 */
export async function measureHandover(
  opts: { workers?: number[]; rounds?: number; depth?: number; spin?: number; log?: (l: string) => void } = {},
): Promise<HandoverResult[]> {
  const rounds = opts.rounds ?? 2000;
  const depth = Math.min(opts.depth ?? 2, RING_SLOTS);
  const res: HandoverResult[] = [];
  for (const W of opts.workers ?? [1, 2]) {
    const pool = new CorePool({ workers: W, shared: {} as never, mode: 'noop', spin: opts.spin });
    const ios = [0, 1].map(
      () => ({ batch: {} as never, out: {} as never, idx: new Int32Array(new SharedArrayBuffer(4)) }) as CoreBatch,
    );
    for (const io of ios) pool.register(io);
    const loaded = { ios, shares: [0, 1].map(() => new Int32Array(2 * W).map((_, i) => (i & 1 ? 1 : 0))) };
    try {
      await drive(pool, loaded, 200, 1);
      const rt: number[] = [];
      const pipe: number[] = [];
      const full: number[] = [];
      for (let r = 0; r < 5; r++) {
        rt.push(((await drive(pool, loaded, rounds, 1)) / rounds) * 1e6);
        pipe.push(((await drive(pool, loaded, rounds, depth)) / rounds) * 1e6);
        full.push(((await drive(pool, loaded, rounds, RING_SLOTS)) / rounds) * 1e6);
      }
      const h = { workers: W, roundTripUs: median(rt), pipelinedUs: median(pipe), depth, ringFullUs: median(full) };
      res.push(h);
      opts.log?.(
        `hand-over, workers=${W}: ${h.roundTripUs.toFixed(1)} µs/batch round trip, ${h.pipelinedUs.toFixed(1)} µs/batch with ${depth} in flight, ` +
          `${h.ringFullUs.toFixed(1)} µs/batch with the ring full (${RING_SLOTS})`,
      );
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
  const fi = argv.indexOf('--flows');
  const flowsList =
    fi < 0
      ? [1024, 65536]
      : argv[fi + 1].split(',').map((x) => {
          const v = Number(x);
          if (!Number.isInteger(v) || v < 1)
            throw new Error(`--flows: expected positive integers, got '${argv[fi + 1]}'`);
          return v;
        });
  const base: PoolBenchOptions = {
    batchSize: argNum(argv, '--batch', 4096),
    runs: argNum(argv, '--runs', 5),
    depth: argNum(argv, '--depth', RING_SLOTS),
    log: (l) => console.log(l),
  };
  const loadBefore = loadavg();
  const sets: (PoolBenchResult & { flows: number })[] = [];
  for (const [k, flows] of flowsList.entries()) {
    sets.push({ flows, ...(await measurePool({ ...base, flows, handover: k === flowsList.length - 1 })) });
  }
  const loadAfter = loadavg();
  console.log(
    `load average (1 min) before ${loadBefore[0].toFixed(1)}, after ${loadAfter[0].toFixed(1)} on ${availableParallelism()} cores`,
  );
  const file = await writeBenchResult('core-pool', {
    description:
      'core pool: end-to-end worker throughput on established UDP flows (46-byte IPv4 = 64-byte Ethernet frames), pre-loaded re-used batches; hand-over cost with no-op workers',
    measured:
      'post of the first descriptor to completion of the last: ring hand-over + Dataplane.processBatch per worker share; excludes copy-in, dispatch, result conversion',
    proto: PROTO_UDP,
    options: { ...base, log: undefined, flows: flowsList },
    // Other jobs on the machine: with a 1-min load above the core count, the figures (and the
    // 2-worker ratio) measure the scheduler more than the code.
    loadAverage: { before: loadBefore, after: loadAfter },
    sets,
    ratios: sets.map((r) => ({ flows: r.flows, ratio: r.ratio })),
    handover: sets.flatMap((r) => r.handover),
  });
  console.log(`wrote ${file}`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
