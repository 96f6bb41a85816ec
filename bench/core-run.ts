// Drives the core's worker pool (src/core/pool.ts) over pre-loaded batches for `natlab bench`.
//
// What a timed run covers: from posting the first batch descriptor to the completion of the last,
// with up to `depth` batches in flight per worker (8; main refills in halves, as bench/core-pool.ts): the ring hand-over (post, wake-up, completion)
// and, in every worker, Dataplane.processBatch over its share of each batch (parse, checksum
// verification, flow lookup, composed rewrite, output copy, result columns). Not covered (done
// before the clock starts): writing the frames, dispatchWorker and the per-worker index lists.
//
// Memory: a batch owns its input columns; result columns and the output arena (which the dataplane
// writes at inOff + 576·i, room for an ICMP error per packet) are shared by 2·depth groups of
// batches (more than can be in flight, so two workers never write one region at the same time),
// as nobody reads them during timed runs; checks read them after a one-batch-at-a-time pass.
import type { Scenario } from '../src/spec/scenario.ts';
import { FATE_DELIVERED, reasonName } from '../src/spec/reasons.ts';
import { createBatchOutput, createFrameBatch, resultFate, resultReason } from '../src/spec/frame-batch.ts';
import {
  dispatchWorker,
  type CoreBatch,
  type CoreLayout,
  type CoreShared,
  createCoreShared,
  sharedBytesPerSession,
  sharedBytesTotal,
  readSessionCounts,
  CorePool,
  OP_ADVANCE,
  OP_PROCESS,
  RING_SLOTS,
  isComplete,
} from '../src/core/bench-api.ts';
import type { PacketSource } from '../src/traffic/workload.ts';
import type { LatencyRecorder } from './latency.ts';

export interface CoreRunnerOptions {
  scenario: Scenario;
  workers: number;
  /** Sessions the tables are sized for (conntrack max quota). */
  capacity: number;
  /** Pre-loaded batches (each up to batchSize packets). */
  batches: number;
  batchSize: number;
  /** Input arena bytes per batch. */
  arenaBytes: number;
  seed?: number;
  /** Batches in flight per worker (default 8). */
  depth?: number;
  /** The core's table layout (default: the engine's). */
  layout?: CoreLayout;
  /** Commit the session tables' pages at creation (src/core/layout.ts prefaultTables). */
  prefault?: boolean;
}

/** Batches in flight per worker; main refills in halves (one wake-up per DEFAULT_DEPTH / 2 batches). */
const DEFAULT_DEPTH = 8;
/** A batch taking longer than this means the pool is stuck (a set-up batch takes well under a second). */
const STALL_MS = 120_000;

function i32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(8, n * 4)));
}

export interface BatchCheck {
  packets: number;
  delivered: number;
  /** Dropped packets by reason name. */
  drops: Record<string, number>;
}

export class CoreRunner {
  readonly shared: CoreShared;
  readonly pool: CorePool;
  readonly ios: CoreBatch[];
  /** Per batch, per worker: first and count of its share of the index list. */
  readonly shares: Int32Array[];
  /** Packets in each batch (after fill). */
  readonly counts: Int32Array;
  readonly workers: number;
  readonly depth: number;
  private readonly owner: Int32Array;
  private batchNo = 0;
  /** When set, drive() records every batch's latency (post → completion seen by main) into it. */
  latency: LatencyRecorder | null = null;

  constructor(readonly opts: CoreRunnerOptions) {
    const W = opts.workers;
    this.workers = W;
    this.depth = Math.max(1, Math.min(opts.depth ?? DEFAULT_DEPTH, RING_SLOTS));
    this.shared = createCoreShared(opts.scenario, {
      workers: W,
      seed: opts.seed ?? 1,
      capacity: opts.capacity,
      layout: opts.layout,
      prefault: opts.prefault,
    });
    const B = opts.batchSize;
    // More output groups than batches in flight per worker: two workers never write one region at once.
    const groups = Array.from({ length: Math.min(2 * this.depth, opts.batches) }, () =>
      createBatchOutput(B, opts.arenaBytes),
    );
    this.ios = [];
    this.shares = [];
    for (let b = 0; b < opts.batches; b++) {
      this.ios.push({ batch: createFrameBatch(B, opts.arenaBytes), out: groups[b % groups.length], idx: i32(B) });
      this.shares.push(new Int32Array(2 * W));
    }
    this.counts = new Int32Array(opts.batches);
    this.owner = new Int32Array(B);
    this.pool = new CorePool({ workers: W, shared: this.shared });
    // Registered in order: batch b is number b in the descriptors.
    for (const io of this.ios) this.pool.register(io);
  }

  /**
   * Fills batch b from `src` (up to batchSize packets, while the arena has room for src.maxLen),
   * then computes each packet's owner and the per-worker index lists. Returns the packet count.
   */
  fill(b: number, src: PacketSource, nowMs: number): number {
    const io = this.ios[b].batch;
    const B = this.opts.batchSize;
    const cap = this.opts.arenaBytes;
    let off = 0;
    let n = 0;
    while (n < B && src.remaining > 0 && off + src.maxLen <= cap) {
      off = (off + src.next(io, n, off, nowMs) + 7) & ~7; // aligned frames
      n++;
    }
    this.counts[b] = n;
    io.count = n;
    const W = this.workers;
    const c = new Int32Array(W + 1);
    const compiled = this.shared.compiled;
    for (let i = 0; i < n; i++) {
      const w = dispatchWorker(compiled, W, io.arena, io.off[i], io.len[i], io.ingress[i]);
      this.owner[i] = w;
      c[w + 1]++;
    }
    for (let w = 0; w < W; w++) c[w + 1] += c[w];
    const share = this.shares[b];
    for (let w = 0; w < W; w++) {
      share[2 * w] = c[w];
      share[2 * w + 1] = c[w + 1] - c[w];
    }
    const list = this.ios[b].idx;
    for (let i = 0; i < n; i++) list[c[this.owner[i]]++] = i;
    return n;
  }

  /** Fills batches 0.. from src until it is exhausted or `maxPackets` are loaded; returns the batch list. */
  fillMany(src: PacketSource, nowMs: number, maxPackets = Infinity): number[] {
    const list: number[] = [];
    let total = 0;
    for (let b = 0; b < this.ios.length && src.remaining > 0 && total < maxPackets; b++) {
      const n = this.fill(b, src, nowMs);
      if (n === 0) break;
      list.push(b);
      total += n;
    }
    return list;
  }

  packetsIn(list: readonly number[]): number {
    let n = 0;
    for (const b of list) n += this.counts[b];
    return n;
  }

  /** Waits for descriptor seq of worker w; a pool that makes no progress for STALL_MS is an error, not a hang. */
  private async waitDone(w: number, seq: number): Promise<void> {
    if (isComplete(this.pool.ctrl, w, seq)) return;
    let timer: NodeJS.Timeout | undefined;
    const stall = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `bench: worker ${w} made no progress for ${STALL_MS / 1000} s (descriptor ${seq}); restarts ${this.pool.restarts}; faults: ${this.pool.faultLog.join('; ') || 'none'}`,
            ),
          ),
        STALL_MS,
      );
    });
    try {
      await Promise.race([this.pool.waitFor(w, seq), stall]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Processes the batches in `list` (in order), `depth` in flight per worker. Returns seconds.
   * Main waits for each batch of the oldest half in turn (a batch already complete costs one
   * check), stamping the moment it sees it complete: one performance.now() per post and one per
   * completion, recorded when `latency` is set.
   */
  async drive(list: readonly number[], depth = this.depth): Promise<number> {
    const W = this.workers;
    const pool = this.pool;
    const inflight: Int32Array[] = [];
    const postMs: number[] = [];
    const batchOf: number[] = [];
    const t0 = process.hrtime.bigint();
    for (const b of list) {
      const share = this.shares[b];
      const seqs = new Int32Array(W).fill(-1);
      const tPost = performance.now();
      for (let w = 0; w < W; w++) {
        if (share[2 * w + 1] > 0)
          seqs[w] = await pool.post(w, OP_PROCESS, b, share[2 * w], share[2 * w + 1], 0, this.batchNo);
      }
      this.batchNo++;
      inflight.push(seqs);
      postMs.push(tPost);
      batchOf.push(b);
      if (inflight.length >= depth) {
        // Refill in halves: wait for the oldest half, then post as many again.
        const k = Math.max(1, depth >> 1);
        for (let j = 0; j < k; j++) await this.complete(inflight[j], postMs[j], batchOf[j]);
        inflight.splice(0, k);
        postMs.splice(0, k);
        batchOf.splice(0, k);
      }
    }
    for (let j = 0; j < inflight.length; j++) await this.complete(inflight[j], postMs[j], batchOf[j]);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  /** Waits until every share of batch b (descriptors `seqs`) is complete; records its latency. */
  private async complete(seqs: Int32Array, postMs: number, b: number): Promise<void> {
    for (let w = 0; w < this.workers; w++) if (seqs[w] >= 0) await this.waitDone(w, seqs[w]);
    this.latency?.record(postMs, performance.now(), this.counts[b]);
  }

  /** Processes the batches one at a time and tallies their verdicts (set-up and checks). */
  async driveChecked(list: readonly number[]): Promise<BatchCheck> {
    const r: BatchCheck = { packets: 0, delivered: 0, drops: {} };
    for (const b of list) {
      await this.drive([b], 1);
      const res = this.ios[b].out.result;
      for (let i = 0, n = this.counts[b]; i < n; i++) {
        r.packets++;
        if (resultFate(res[i]) === FATE_DELIVERED) r.delivered++;
        else {
          const k = reasonName(resultReason(res[i]));
          r.drops[k] = (r.drops[k] ?? 0) + 1;
        }
      }
    }
    return r;
  }

  /** Moves every worker's clock to `nowMs` (expiring what is due) and waits until all have. */
  async advance(nowMs: number): Promise<void> {
    const seqs: number[] = [];
    for (let w = 0; w < this.workers; w++) seqs.push(await this.pool.post(w, OP_ADVANCE, 0, 0, 0, nowMs, -1));
    for (let w = 0; w < this.workers; w++) await this.waitDone(w, seqs[w]);
  }

  /** Per-worker packet counters (dispatch balance). */
  perWorkerPackets(): number[] {
    return Array.from({ length: this.workers }, (_, w) => this.pool.packets(w));
  }

  sessions(): number {
    return readSessionCounts(this.shared).reduce((a, b) => a + b, 0);
  }

  bytesPerSession(): number {
    return sharedBytesPerSession(this.shared);
  }

  tableBytes(): number {
    return sharedBytesTotal(this.shared);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
