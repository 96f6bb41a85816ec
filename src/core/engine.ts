// The core engine: the Engine contract (src/spec/engine.ts) over the shared-memory dataplane and
// its worker pool. This adapter is not the measured hot path (it allocates PacketResult objects);
// the worker loop is (bench/core-pool.ts). See docs/core.md.
//
// process(batch): split into chunks of at most batchSize packets / arena bytes; per chunk, copy the
// frames into a BatchIO's input arena, compute each packet's owner (dispatchWorker), counting-sort
// the packet indices into per-worker shares, post one descriptor per worker, and while the workers
// run chunk k, fill chunk k+1 into the other BatchIO (double buffering); then read the results.

import { InputError } from '../spec/errors.ts';
import type { ConntrackEntry, Engine, EngineDescriptor, EngineOptions, InputPacket, NatRuleCounter, OutputFrame, PacketResult } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import { readDropCounters, readNatCounters, dumpConntrack } from './ct-dump.ts';
import { dispatchWorker } from './dispatch.ts';
import { type BatchIO, type CoreShared, createBatchIO, createCoreShared } from './layout.ts';
import { CorePool, defaultWorkers } from './pool.ts';
import { Dataplane } from './dataplane.ts';
import { FAULT_HOLD, FAULT_TERMINATE, FAULT_THROW, MAX_SHARE, OP_ADVANCE, OP_PROCESS } from './ring.ts';

/** Fault injection (tests only). Packet numbers count every packet given to process(), from 0. */
export interface CoreFaults {
  /** The worker that owns this packet throws just before processing it. */
  throwAtPacket?: number;
  /** The worker that owns this packet parks just before processing it and main terminates its thread. */
  terminateAtPacket?: number;
  /** Terminate mid-batch: the worker owning the middle packet of batch k (0-based) is terminated there. */
  terminateAtBatch?: number;
  /** The worker that owns this packet parks just before it while `onHold` runs (read state mid-run). */
  holdAtPacket?: number;
  onHold?: (worker: number) => Promise<void> | void;
}

export interface CoreEngineOptions extends EngineOptions {
  /** Packets per batch hand-over (default 4096). */
  batchSize?: number;
  /** Input arena bytes per BatchIO (default batchSize * 1024, at least 256 KiB). */
  arenaBytes?: number;
  /** Session capacity (default: the scenario's conntrack max). */
  capacity?: number;
  /** Worker polls of its ring before sleeping (see CorePool). */
  spin?: number;
  faults?: CoreFaults;
  /**
   * Run the same Dataplane code on the calling thread instead of worker threads (one worker's
   * partition, no piscina start-up of ~2 s). For short differential runs (fuzzing) where thread
   * start-up dominates; the thread plumbing itself is covered by the pool and fault tests.
   */
  inline?: boolean;
}

/** What the engine needs from its workers: CorePool (threads) or InlineWorkers (this thread). */
interface Workers {
  post(w: number, op: number, io: number, first: number, count: number, nowMs: number, batch: number): Promise<number>;
  waitFor(w: number, seq: number): Promise<void>;
  armFault(kind: number, batch: number, index: number): void;
  close(): Promise<void>;
}

/** Dataplane on the calling thread: post() runs the work at once; waitFor() has nothing to wait for. */
class InlineWorkers implements Workers {
  private readonly dp: Dataplane;
  private seq = 0;
  constructor(
    shared: CoreShared,
    private readonly ios: BatchIO[],
    private readonly idx: Int32Array[],
  ) {
    this.dp = new Dataplane(shared, 0);
  }
  async post(_w: number, op: number, io: number, first: number, count: number, nowMs: number): Promise<number> {
    if (op === OP_PROCESS) this.dp.processBatch(this.ios[io], this.idx[io], first, count);
    else if (op === OP_ADVANCE) this.dp.advance(nowMs);
    return ++this.seq;
  }
  async waitFor(): Promise<void> {}
  armFault(): void {
    throw new Error('core engine: fault injection needs worker threads (inline: false)');
  }
  async close(): Promise<void> {}
}

export interface CoreEngine extends Engine {
  readonly workers: number;
  readonly shared: CoreShared;
  /** The worker pool (null when the engine runs inline). */
  readonly pool: CorePool | null;
  /** Drop counters per DROP_* reason, summed over workers. */
  dropCounters(): number[];
}

const DEFAULT_BATCH = 4096;
const MIN_ARENA = 256 * 1024;
const MAX_FRAME = 65535;
/** timeMs columns are Int32: a run may span at most this many ms from its first packet. */
const MAX_RUN_MS = 0x7fffffff;

interface Chunk {
  /** BatchIO used. */
  slot: number;
  /** Batch sequence number (all process() calls). */
  batch: number;
  /** Run-wide number of the chunk's first packet, and its index in the process() call's array. */
  start: number;
  pos: number;
  count: number;
  /** Per worker: share [firsts[w], ends[w]) of the index list, and the posted descriptor (-1: none). */
  firsts: Int32Array;
  ends: Int32Array;
  seqs: Int32Array;
}

export function createCoreEngine(scenario: Scenario, opts: CoreEngineOptions = {}): CoreEngine {
  return new CoreEngineImpl(scenario, opts);
}

/** The core as the differential runner sees it (diff/engines.ts). */
export const coreEngineDescriptor: EngineDescriptor = {
  name: 'core',
  summary: 'the fast path: shared-memory tables, batches, worker threads',
  realClock: false,
  randomChoices: false,
  // workers: 0 = the same dataplane on the calling thread (short differential runs: no thread start-up).
  create: (scenario, opts) => createCoreEngine(scenario, opts.workers === 0 ? { ...opts, workers: undefined, inline: true } : opts),
};

class CoreEngineImpl implements CoreEngine {
  readonly name = 'core';
  readonly workers: number;
  readonly shared: CoreShared;
  readonly pool: CorePool | null;
  private readonly run: Workers;
  private readonly ios: BatchIO[];
  private readonly idx: Int32Array[];
  private readonly owner: Int32Array;
  private readonly counts: Int32Array;
  private readonly batchSize: number;
  private readonly arenaBytes: number;
  private readonly faults: CoreFaults;
  private readonly maxPoint: number;
  /** ms of the run's time base (floor(timeUs / 1000) of the first packet or advance). */
  private baseMs = -1;
  /** Latest time seen (ms since base). */
  private nowMs = 0;
  private lastTimeUs = -Infinity;
  /** Packets given to process() so far, and batches posted. */
  private packetNo = 0;
  private batchNo = 0;
  private busy = false;
  private closed = false;

  constructor(scenario: Scenario, opts: CoreEngineOptions) {
    const workers = opts.inline ? 1 : opts.workers ?? defaultWorkers();
    if (opts.inline && opts.workers !== undefined && opts.workers !== 1) {
      throw new InputError(`core engine: inline runs one worker's partition, got --workers ${opts.workers}`);
    }
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new InputError(`core engine: --workers must be an integer 1..64, got ${opts.workers}`);
    }
    this.workers = workers;
    this.batchSize = Math.min(opts.batchSize ?? DEFAULT_BATCH, MAX_SHARE);
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new InputError(`core engine: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    this.arenaBytes = Math.max(opts.arenaBytes ?? this.batchSize * 1024, MIN_ARENA);
    this.faults = opts.faults ?? {};
    this.maxPoint = scenario.instances.length;
    this.shared = createCoreShared(scenario, { workers, seed: opts.seed ?? 1, capacity: opts.capacity });
    this.ios = [0, 1].map(() => createBatchIO(this.batchSize, this.arenaBytes, workers));
    this.idx = [0, 1].map(() => new Int32Array(new SharedArrayBuffer(this.batchSize * 4)));
    this.owner = new Int32Array(this.batchSize);
    this.counts = new Int32Array(workers + 1);
    const f = this.faults;
    const armed = [f.throwAtPacket, f.terminateAtPacket, f.terminateAtBatch, f.holdAtPacket].filter((x) => x !== undefined);
    if (armed.length > 1) throw new Error('core engine: at most one injected fault per run');
    const anyFault = armed.length > 0;
    if (opts.inline) {
      this.pool = null;
      this.run = new InlineWorkers(this.shared, this.ios, this.idx);
      return;
    }
    this.pool = new CorePool({
      workers,
      shared: this.shared,
      ios: this.ios,
      idx: this.idx,
      faults: anyFault,
      spin: opts.spin,
      onHold: f.onHold,
    });
    this.run = this.pool;
  }

  async process(batch: readonly InputPacket[]): Promise<PacketResult[]> {
    this.enter();
    try {
      this.validate(batch);
      const results: PacketResult[] = new Array(batch.length);
      const inflight: Chunk[] = [];
      let pos = 0;
      let slot = 0;
      while (pos < batch.length || inflight.length > 0) {
        if (pos < batch.length && inflight.length < 2) {
          const chunk = this.fill(slot, batch, pos);
          pos += chunk.count;
          slot ^= 1;
          await this.post(chunk);
          inflight.push(chunk);
          continue;
        }
        const chunk = inflight.shift()!;
        for (let w = 0; w < this.workers; w++) {
          if (chunk.seqs[w] >= 0) await this.run.waitFor(w, chunk.seqs[w]);
        }
        this.read(chunk, results);
      }
      return results;
    } finally {
      this.busy = false;
    }
  }

  async advance(timeUs: number): Promise<void> {
    this.enter();
    try {
      const nowMs = this.toMs(timeUs, 'advance');
      const seqs: number[] = [];
      for (let w = 0; w < this.workers; w++) seqs.push(await this.run.post(w, OP_ADVANCE, 0, 0, 0, nowMs, -1));
      for (let w = 0; w < this.workers; w++) await this.run.waitFor(w, seqs[w]);
    } finally {
      this.busy = false;
    }
  }

  /** Read from shared memory; safe while workers run (e.g. from a fault-injection hold). */
  async conntrack(): Promise<ConntrackEntry[]> {
    return dumpConntrack(this.shared, this.nowMs);
  }

  async natCounters(): Promise<NatRuleCounter[]> {
    return readNatCounters(this.shared);
  }

  dropCounters(): number[] {
    return readDropCounters(this.shared);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.run.close();
  }

  private enter(): void {
    if (this.closed) throw new Error('core engine is closed');
    if (this.busy) throw new Error('core engine: process()/advance() called while a previous call is running');
    this.busy = true;
  }

  /** Contract clock rule: nowMs = floor(timeUs / 1000), relative to the run's time base. */
  private toMs(timeUs: number, what: string): number {
    if (!Number.isFinite(timeUs) || timeUs < 0) throw new InputError(`core engine: ${what}: bad timeUs ${timeUs}`);
    if (timeUs < this.lastTimeUs) {
      throw new InputError(`core engine: ${what}: time went backwards (${timeUs} µs after ${this.lastTimeUs} µs)`);
    }
    this.lastTimeUs = timeUs;
    const ms = Math.floor(timeUs / 1000);
    if (this.baseMs < 0) this.baseMs = ms;
    const rel = ms - this.baseMs;
    if (rel > MAX_RUN_MS) throw new InputError(`core engine: ${what}: run longer than ${MAX_RUN_MS} ms`);
    this.nowMs = rel;
    return rel;
  }

  /** Check the whole batch before posting any of it: a bad packet must not leave a batch half-run. */
  private validate(batch: readonly InputPacket[]): void {
    let last = this.lastTimeUs;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i];
      const where = `packet ${this.packetNo + i}`;
      if (!(p.frame instanceof Uint8Array)) throw new InputError(`core engine: ${where}: frame is not a Uint8Array`);
      if (p.frame.length > MAX_FRAME) {
        throw new InputError(`core engine: ${where}: frame of ${p.frame.length} bytes exceeds 65535`);
      }
      if (!Number.isInteger(p.ingress) || p.ingress < 0 || p.ingress > this.maxPoint) {
        throw new InputError(`core engine: ${where}: ingress point ${p.ingress} is not in the scenario (0..${this.maxPoint})`);
      }
      const t = p.timeUs;
      if (!Number.isFinite(t) || t < 0) throw new InputError(`core engine: ${where}: bad timeUs ${t}`);
      if (t < last) throw new InputError(`core engine: ${where}: time went backwards (${t} µs after ${last} µs)`);
      last = t;
      const base = this.baseMs < 0 ? Math.floor(batch[0].timeUs / 1000) : this.baseMs;
      if (Math.floor(t / 1000) - base > MAX_RUN_MS) {
        throw new InputError(`core engine: ${where}: more than ${MAX_RUN_MS} ms after the run's first packet`);
      }
    }
  }

  /** Copy packets [pos, ...) into BatchIO `slot` until batchSize or the arena is full. */
  private fill(slot: number, batch: readonly InputPacket[], pos: number): Chunk {
    const io = this.ios[slot];
    const arena = io.inArena;
    const W = this.workers;
    const owner = this.owner;
    const counts = this.counts;
    counts.fill(0);
    let off = 0;
    let n = 0;
    while (pos + n < batch.length && n < this.batchSize) {
      const p = batch[pos + n];
      const len = p.frame.length;
      if (off + len > arena.length) break;
      arena.set(p.frame, off);
      io.inOff[n] = off;
      io.inLen[n] = len;
      io.ingress[n] = p.ingress;
      io.timeMs[n] = this.toMs(p.timeUs, `packet ${this.packetNo + n}`);
      io.fate[n] = -1; // sentinel: a packet the workers never wrote is a bug, not a result
      const w = dispatchWorker(this.shared.compiled, W, arena, off, len, p.ingress);
      owner[n] = w;
      counts[w + 1]++;
      off += len;
      n++;
    }
    // Counting sort of the packet indices by owner: each worker's share keeps input order.
    for (let w = 0; w < W; w++) counts[w + 1] += counts[w];
    const firsts = counts.slice(0, W);
    const idx = this.idx[slot];
    for (let i = 0; i < n; i++) idx[counts[owner[i]]++] = i;
    if (n === 0) throw new Error('core engine: arena too small for one frame'); // MIN_ARENA > MAX_FRAME
    const chunk: Chunk = {
      slot,
      batch: this.batchNo++,
      start: this.packetNo,
      pos,
      count: n,
      firsts,
      ends: counts.slice(0, W),
      seqs: new Int32Array(W).fill(-1),
    };
    this.packetNo += n;
    this.armFaults(chunk);
    return chunk;
  }

  private armFaults(chunk: Chunk): void {
    const f = this.faults;
    const inChunk = (p: number | undefined): p is number =>
      p !== undefined && p >= chunk.start && p < chunk.start + chunk.count;
    if (inChunk(f.throwAtPacket)) this.run.armFault(FAULT_THROW, chunk.batch, f.throwAtPacket - chunk.start);
    if (inChunk(f.terminateAtPacket)) this.run.armFault(FAULT_TERMINATE, chunk.batch, f.terminateAtPacket - chunk.start);
    if (f.terminateAtBatch === chunk.batch) this.run.armFault(FAULT_TERMINATE, chunk.batch, chunk.count >> 1);
    if (inChunk(f.holdAtPacket)) this.run.armFault(FAULT_HOLD, chunk.batch, f.holdAtPacket - chunk.start);
  }

  private async post(chunk: Chunk): Promise<void> {
    for (let w = 0; w < this.workers; w++) {
      const count = chunk.ends[w] - chunk.firsts[w];
      if (count === 0) continue;
      chunk.seqs[w] = await this.run.post(w, OP_PROCESS, chunk.slot, chunk.firsts[w], count, 0, chunk.batch);
    }
  }

  private read(chunk: Chunk, results: PacketResult[]): void {
    const io = this.ios[chunk.slot];
    const out = io.outArena;
    for (let i = 0; i < chunk.count; i++) {
      const fate = io.fate[i];
      if (fate === 0xff || fate < 0) {
        throw new Error(`core engine: packet ${chunk.start + i} was not processed by worker (batch ${chunk.batch})`);
      }
      const first = io.outFirst[i];
      const n = io.outCount[i];
      const outputs: OutputFrame[] = new Array(n);
      for (let k = 0; k < n; k++) {
        const o = first + k;
        const off = io.outOff[o];
        outputs[k] = { egress: io.outEgress[o], frame: out.slice(off, off + io.outLen[o]) };
      }
      results[chunk.pos + i] = {
        fate,
        reason: io.reason[i],
        detail: io.detail[i],
        ct: io.ct[i],
        outputs,
      };
    }
  }
}
