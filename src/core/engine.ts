// The core engine: the Engine contract (src/spec/engine.ts) over the shared-memory dataplane and
// its worker pool. See docs/core.md "Engine adapter".
//
// processFrames(batch, out) is the zero-copy hand-over (docs/frame-batch.md): the caller's
// FrameBatch and this engine's BatchOutput reach the workers as they are (registered once per
// batch object, then named by number in descriptors). The main thread validates the batch, and —
// with more than one worker — computes each packet's owner (Dispatcher = dispatchWorker) and counting-sorts the
// packet indices into per-worker shares; then it posts one descriptor per worker and waits. No
// per-packet objects.
//
// process(InputPacket[]) sits on top: it copies the packets into two CoreBatches of its own
// (double buffering: while the workers run chunk k, chunk k+1 is filled) and converts the packed
// results into PacketResult objects.

import { InputError } from '../spec/errors.ts';
import type {
  ConntrackEntry,
  DifferenceClass,
  DifferenceFacts,
  Engine,
  EngineDescriptor,
  EngineOptions,
  InputPacket,
  FilterRuleCounter,
  NatRuleCounter,
  OutputFrame,
  PacketResult,
} from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import {
  compareNatGatewayConnections,
  natGatewayCounters,
  type NatGatewayConnection,
  type NatGatewayCounters,
} from '../spec/nat-gateway.ts';
import { readGatewayConnections, readGatewayCounters } from './nat-gateway-layout.ts';
import {
  type BatchOutput,
  type FrameBatch,
  FRAME_ALIGN,
  OUT_SLOTS,
  errorBase,
  resultCt,
  resultDetail,
  resultFate,
  resultOutCount,
  resultReason,
} from '../spec/frame-batch.ts';
import { readDropCounters, readNatCounters, dumpConntrack, liveCountsPerWorker } from './ct-dump.ts';
import { classifyPartitionDifference } from './differences.ts';
import { compileAwsFilters, updateAwsFilters } from './aws-filters.ts';
import { filterUpdateProblem } from '../scenario/filter-update.ts';
import { Dispatcher } from './dispatch.ts';
import { readFilterCounters } from './filter.ts';
import {
  type CoreBatch,
  type CoreLayout,
  type CoreShared,
  CORE_LAYOUTS,
  C_INST,
  C_INST_WORDS,
  CI_QUOTA_BATCH,
  CI_PORT_BATCH,
  C_SG_BATCH,
  DEFAULT_LAYOUT,
  createCoreBatch,
  createCoreShared,
} from './layout.ts';

export { type CoreLayout, CORE_LAYOUTS, DEFAULT_LAYOUT } from './layout.ts';
import { CorePool, defaultWorkers } from './pool.ts';
import { Dataplane } from './dataplane.ts';
import { processPlanned } from './readdress.ts';
import type { ReaddressPlan } from '../spec/readdress-plan.ts';
import { FAULT_HOLD, FAULT_TERMINATE, FAULT_THROW, MAX_SHARE, OP_ADVANCE, OP_PROCESS, OP_TIMELINE } from './ring.ts';
import { compileScenario, updateTimelineState } from './compile.ts';
import { type TimelineEvent, flushedBy, scenarioAfter } from '../spec/timeline.ts';

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
  /**
   * Commit every page of the session tables at creation (layout.ts prefaultTables) instead of on
   * first use: costs a few ms per MiB at start-up, spares new sessions their page faults.
   */
  prefault?: boolean;
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
  register(cb: CoreBatch): number;
  post(w: number, op: number, io: number, first: number, count: number, nowMs: number, batch: number): Promise<number>;
  waitFor(w: number, seq: number): Promise<void>;
  armFault(kind: number, batch: number, index: number): void;
  close(): Promise<void>;
}

/** Dataplane on the calling thread: post() runs the work at once; waitFor() has nothing to wait for. */
class InlineWorkers implements Workers {
  private readonly dp: Dataplane;
  private readonly batches: CoreBatch[] = [];
  private seq = 0;
  constructor(shared: CoreShared) {
    this.dp = new Dataplane(shared, 0);
  }
  register(cb: CoreBatch): number {
    this.batches.push(cb);
    return this.batches.length - 1;
  }
  async post(_w: number, op: number, io: number, first: number, count: number, nowMs: number): Promise<number> {
    if (op === OP_PROCESS) {
      const cb = this.batches[io];
      if (cb.plan) processPlanned(cb, first, 0, count, (f, n) => this.dp.processBatch(cb.batch, cb.out, cb.idx, f, n));
      else this.dp.processBatch(cb.batch, cb.out, cb.idx, first, count);
    } else if (op === OP_ADVANCE) this.dp.advance(nowMs);
    else if (op === OP_TIMELINE) this.dp.timeline(first);
    return ++this.seq;
  }
  async waitFor(): Promise<void> {}
  armFault(): void {
    throw new Error('core engine: fault injection needs worker threads (inline: false)');
  }
  async close(): Promise<void> {}
}

/**
 * The core always has Engine's zero-copy processFrames: the caller's batch goes to the workers as
 * it is (docs/frame-batch.md); with a re-addressing plan (one worker), the planned frames are
 * re-addressed there, in the hand-over.
 */
export interface CoreEngine extends Omit<Engine, 'processFrames'>, Required<Pick<Engine, 'processFrames'>> {
  readonly workers: number;
  readonly shared: CoreShared;
  /** The worker pool (null when the engine runs inline). */
  readonly pool: CorePool | null;
  /** Drop counters per DROP_* reason, summed over workers. */
  dropCounters(): number[];
  /** The per-worker conntrack quota and port share differences, and only they (differences.ts, docs/core.md). */
  classifyDifference(facts: DifferenceFacts): DifferenceClass | null;
}

const DEFAULT_BATCH = 4096;
const MIN_ARENA = 256 * 1024;
const MAX_FRAME = 65535;
/** A result word no packet can have (reason 255): a packet the workers never wrote. */
const RES_UNSET = 0xffffffff;

/** A registered (FrameBatch, BatchOutput) pair: its number at the workers and its index lists. */
interface Reg {
  out: BatchOutput;
  id: number;
  cb: CoreBatch;
}

/** One submitted batch: what to wait for. */
interface Submitted {
  reg: Reg;
  /** Batch sequence number (fault injection, messages); run-wide number of its first packet. */
  batch: number;
  start: number;
  /** Packets [first, first + count) of the batch. */
  first: number;
  count: number;
  /** Per worker: the posted descriptor (-1: none). */
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
  modelPortChoices: 'one-worker',
  awsFilters: true,
  fuzzFilterTables: true,
  // workers: 0 = the same dataplane on the calling thread (short differential runs: no thread start-up).
  create: (scenario, opts) =>
    createCoreEngine(scenario, opts.workers === 0 ? { ...opts, workers: undefined, inline: true } : opts),
};

class CoreEngineImpl implements CoreEngine {
  readonly name = 'core';
  /** Re-addressing plans need the whole batch on one thread (a reply after its flow's packets). */
  readonly readdressPlans: boolean;
  readonly workers: number;
  readonly shared: CoreShared;
  readonly pool: CorePool | null;
  private readonly run: Workers;
  /** process()'s own two batches (double buffering). */
  private readonly own: CoreBatch[];
  private readonly regs = new WeakMap<FrameBatch, Reg[]>();
  private readonly owner: Int32Array;
  /** Packet → worker (dispatch.ts; reads the compiled scenario live, so timeline events apply). */
  private readonly dispatcher: Dispatcher;
  private readonly counts: Int32Array;
  private readonly firsts: Int32Array;
  private readonly batchSize: number;
  private readonly arenaBytes: number;
  private readonly faults: CoreFaults;
  private readonly maxPoint: number;
  /** Latest capture time accepted (µs); -1 before the first. */
  private lastTimeUs = -1;
  /** Packets accepted so far (all calls), and batches posted. */
  private packetNo = 0;
  private batchNo = 0;
  /**
   * Per NAT slot, the number of the first packet at which a worker decided otherwise than one
   * worker could have (W > 1; Infinity = none yet), read from the workers' control words after each
   * batch: [0] at its conntrack quota, [1] a port search that skipped ports other workers own and
   * found none (differences.ts).
   */
  private readonly partitionFrom: [Float64Array, Float64Array];
  private partitionOpen: number;
  /** The first packet a worker's share of a security-group allowance refused (W > 1), Infinity = none. */
  private readonly sgShareFrom = new Float64Array(1).fill(Infinity);
  /** Submissions are serialised (descriptors of one batch go to every worker before the next batch's). */
  private submitting: Promise<unknown> = Promise.resolve();
  private busy = false;
  private closed = false;
  /** The scenario as the timeline events so far left it (applyTimelineEvent). */
  private scenario: Scenario;

  constructor(scenario: Scenario, opts: CoreEngineOptions) {
    this.scenario = scenario;
    // NAT gateways' connections are not partitioned over workers: such a scenario runs on one
    // (docs/core.md "NAT gateways").
    const hasGateways = (scenario.natGateways ?? []).length > 0;
    const workers = opts.inline || hasGateways ? 1 : (opts.workers ?? defaultWorkers());
    if (opts.inline && opts.workers !== undefined && opts.workers !== 1) {
      throw new InputError(`core engine: inline runs one worker's partition, got --workers ${opts.workers}`);
    }
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new InputError(`core engine: --workers must be an integer 1..64, got ${opts.workers}`);
    }
    this.workers = workers;
    this.readdressPlans = workers === 1;
    this.batchSize = Math.min(opts.batchSize ?? DEFAULT_BATCH, MAX_SHARE);
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new InputError(`core engine: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    this.arenaBytes = Math.max(opts.arenaBytes ?? this.batchSize * 1024, MIN_ARENA);
    this.faults = opts.faults ?? {};
    this.maxPoint = scenario.instances.length;
    const layout = (opts.layout ?? DEFAULT_LAYOUT) as CoreLayout;
    if (!CORE_LAYOUTS.includes(layout)) {
      throw new InputError(`core engine: --layout must be one of ${CORE_LAYOUTS.join(', ')}, got ${opts.layout}`);
    }
    this.shared = createCoreShared(scenario, {
      workers,
      seed: opts.seed ?? 1,
      capacity: opts.capacity,
      layout,
      prefault: opts.prefault,
    });
    this.own = [0, 1].map(() => createCoreBatch(this.batchSize, this.arenaBytes));
    const nNat = Math.max(1, this.shared.compiled.natCount);
    this.partitionFrom = [new Float64Array(nNat).fill(Infinity), new Float64Array(nNat).fill(Infinity)];
    this.partitionOpen = workers > 1 ? 2 * nNat + (this.shared.sg ? 1 : 0) : 0;
    this.owner = new Int32Array(this.batchSize);
    this.dispatcher = new Dispatcher(this.shared.compiled, workers);
    this.counts = new Int32Array(workers + 1);
    this.firsts = new Int32Array(workers + 1);
    const f = this.faults;
    const armed = [f.throwAtPacket, f.terminateAtPacket, f.terminateAtBatch, f.holdAtPacket].filter(
      (x) => x !== undefined,
    );
    if (armed.length > 1) throw new Error('core engine: at most one injected fault per run');
    const anyFault = armed.length > 0;
    if (opts.inline) {
      this.pool = null;
      this.run = new InlineWorkers(this.shared);
    } else {
      this.pool = new CorePool({ workers, shared: this.shared, faults: anyFault, spin: opts.spin, onHold: f.onHold });
      this.run = this.pool;
    }
    for (const cb of this.own) this.regs.set(cb.batch, [{ out: cb.out, id: this.run.register(cb), cb }]);
  }

  /**
   * Zero-copy: packets [first, first + count) (default: [0, batch.count)) of the caller's batch,
   * results into `out` at the same indices (docs/frame-batch.md).
   */
  async processFrames(
    batch: FrameBatch,
    out: BatchOutput,
    first = 0,
    count = batch.count - first,
    plan?: ReaddressPlan,
  ): Promise<void> {
    if (this.closed) throw new Error('core engine is closed');
    if (this.busy) throw new Error('core engine: processFrames() called while process()/advance() is running');
    if (plan !== undefined && !this.readdressPlans)
      throw new Error('core engine: a re-addressing plan needs one worker (readdressPlans)');
    if (plan !== undefined && plan.maxPackets < first + count)
      throw new InputError(
        `core engine: re-addressing plan of ${plan.maxPackets} packets for packets up to ${first + count}`,
      );
    const sub = await this.submit(batch, out, first, count, plan ?? null);
    if (sub !== null) await this.complete(sub);
  }

  async process(batch: readonly InputPacket[]): Promise<PacketResult[]> {
    this.enter();
    try {
      this.validatePackets(batch);
      const results: PacketResult[] = new Array(batch.length);
      const inflight: { sub: Submitted; pos: number }[] = [];
      let pos = 0;
      let k = 0;
      while (pos < batch.length || inflight.length > 0) {
        if (pos < batch.length && inflight.length < 2) {
          const cb = this.own[k];
          k ^= 1;
          const n = this.fill(cb, batch, pos);
          const sub = await this.submit(cb.batch, cb.out, 0, n);
          inflight.push({ sub: sub!, pos });
          pos += n;
          continue;
        }
        const { sub, pos: at } = inflight.shift()!;
        await this.complete(sub);
        this.read(sub.reg.cb, at, sub.count, results);
      }
      return results;
    } finally {
      this.busy = false;
    }
  }

  async advance(timeUs: number): Promise<void> {
    this.enter();
    try {
      if (!Number.isFinite(timeUs) || timeUs < 0) throw new InputError(`core engine: advance: bad timeUs ${timeUs}`);
      if (timeUs < this.lastTimeUs) {
        throw new InputError(`core engine: advance: time went backwards (${timeUs} µs after ${this.lastTimeUs} µs)`);
      }
      this.lastTimeUs = timeUs;
      const ms = Math.floor(timeUs / 1000);
      await this.submitting;
      const seqs: number[] = [];
      for (let w = 0; w < this.workers; w++) seqs.push(await this.run.post(w, OP_ADVANCE, 0, 0, 0, ms, -1));
      for (let w = 0; w < this.workers; w++) await this.run.waitFor(w, seqs[w]);
    } finally {
      this.busy = false;
    }
  }

  /** Mid-run rule change (Engine.setFilterRules): every worker idle, then the shared rule arrays rewritten. */
  async setFilterRules(next: Scenario): Promise<void> {
    const why = filterUpdateProblem(this.scenario, next);
    if (why) throw new InputError(`core engine: setFilterRules: ${why}`);
    const aws = this.shared.compiled.aws;
    if (!aws) return;
    // An advance to the current time: FIFO rings, so every batch posted before it is done.
    await this.advance(Math.max(0, this.lastTimeUs));
    const fresh = compileAwsFilters(next);
    const bad = fresh ? updateAwsFilters(aws, fresh) : 'the change removed every filter';
    if (bad) throw new InputError(`core engine: setFilterRules: ${bad}`);
  }

  /**
   * A timeline event (Engine.applyTimelineEvent, docs/core.md "Timeline events"): every worker idle
   * (an advance to the event's time), the shared routes / Elastic IPs / stopped flags rewritten from
   * the scenario after it, then each worker drops the emptied instance's sessions and its composed paths.
   */
  async applyTimelineEvent(event: TimelineEvent, timeUs: number): Promise<void> {
    await this.advance(timeUs);
    const next = scenarioAfter(this.scenario, event.action);
    if (event.action.kind === 'setFilterRules') await this.setFilterRules(next);
    const bad = updateTimelineState(this.shared.compiled, compileScenario(next));
    if (bad) throw new InputError(`core engine: timeline event ${event.text}: ${bad}`);
    this.scenario = next;
    let slot = -1;
    for (const i of flushedBy(event.action)) slot = this.shared.compiled.instNat[i];
    this.enter();
    try {
      const seqs: number[] = [];
      for (let w = 0; w < this.workers; w++) seqs.push(await this.run.post(w, OP_TIMELINE, 0, slot, 0, 0, -1));
      for (let w = 0; w < this.workers; w++) await this.run.waitFor(w, seqs[w]);
    } finally {
      this.busy = false;
    }
  }

  /** Read from shared memory; safe while workers run (e.g. from a fault-injection hold). */
  async conntrack(): Promise<ConntrackEntry[]> {
    return dumpConntrack(this.shared, this.lastTimeUs < 0 ? 0 : Math.floor(this.lastTimeUs / 1000));
  }

  /** dumpConntrack's length (the same liveness test), with no entry built. */
  async conntrackCount(): Promise<number> {
    let n = 0;
    for (const c of liveCountsPerWorker(this.shared, this.nowMs())) n += c;
    return n;
  }

  /** W > 1: the per-worker quota / port share, recognised only from a worker's first such decision on (differences.ts). */
  classifyDifference(facts: DifferenceFacts): DifferenceClass | null {
    return classifyPartitionDifference(
      facts,
      this.name,
      this.scenario,
      this.shared,
      this.partitionFrom,
      this.sgShareFrom[0],
    );
  }

  private nowMs(): number {
    return this.lastTimeUs < 0 ? 0 : Math.floor(this.lastTimeUs / 1000);
  }

  async natCounters(): Promise<NatRuleCounter[]> {
    return readNatCounters(this.shared);
  }

  dropCounters(): number[] {
    return readDropCounters(this.shared);
  }

  /** The filter tables' counters (filter.ts), summed over workers; read from shared memory. */
  async filterCounters(): Promise<FilterRuleCounter[]> {
    return readFilterCounters(this.shared.compiled.filter, new Float64Array(this.shared.sabs.filtc), this.workers);
  }

  async natGatewayCounters(): Promise<NatGatewayCounters[]> {
    return (this.scenario.natGateways ?? []).map((g, i) =>
      natGatewayCounters(i, g.name, readGatewayCounters(this.shared.sabs, i)),
    );
  }

  async natGatewayConnections(): Promise<NatGatewayConnection[]> {
    return (this.scenario.natGateways ?? [])
      .flatMap((g, i) => readGatewayConnections(this.shared.sabs, i, g, this.nowMs()))
      .sort(compareNatGatewayConnections);
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

  /**
   * Validates the batch (before anything of it runs), computes the shares and posts one descriptor
   * per worker. Serialised with other submissions; returns null for an empty batch.
   */
  private submit(
    batch: FrameBatch,
    out: BatchOutput,
    first: number,
    count: number,
    plan: ReaddressPlan | null = null,
  ): Promise<Submitted | null> {
    const p = this.submitting.then(() => this.submitNow(batch, out, first, count, plan));
    this.submitting = p.catch(() => undefined);
    return p;
  }

  private async submitNow(
    batch: FrameBatch,
    out: BatchOutput,
    first: number,
    n: number,
    plan: ReaddressPlan | null,
  ): Promise<Submitted | null> {
    this.validateFrames(batch, out, first, n);
    if (n === 0) return null;
    const reg = this.registered(batch, out, plan);
    out.result.fill(RES_UNSET, first, first + n);
    const W = this.workers;
    const firsts = this.firsts;
    const counts = this.counts;
    if (W === 1) {
      // One worker: its share is the whole range, idx is the identity (filled at registration).
      firsts[0] = first;
      counts[0] = n;
    } else {
      // Owner of every packet (dispatch.ts), then a counting sort: each share keeps input order.
      const owner = this.ownerScratch(n);
      const d = this.dispatcher;
      const arena = batch.arena;
      const offs = batch.off;
      const lens = batch.len;
      const ingress = batch.ingress;
      counts.fill(0);
      for (let i = 0; i < n; i++) {
        const p = first + i;
        const w = d.owner(arena, offs[p], lens[p], ingress[p]);
        owner[i] = w;
        counts[w + 1]++;
      }
      counts[0] = first;
      for (let w = 0; w < W; w++) counts[w + 1] += counts[w];
      for (let w = 0; w <= W; w++) firsts[w] = counts[w];
      const idx = reg.cb.idx;
      for (let i = 0; i < n; i++) idx[counts[owner[i]]++] = first + i;
      for (let w = 0; w < W; w++) counts[w] = firsts[w + 1] - firsts[w];
    }
    const sub: Submitted = {
      reg,
      batch: this.batchNo++,
      start: this.packetNo,
      first,
      count: n,
      seqs: new Int32Array(W).fill(-1),
    };
    this.packetNo += n;
    this.armFaults(sub);
    for (let w = 0; w < W; w++) {
      if (counts[w] === 0) continue;
      sub.seqs[w] = await this.run.post(w, OP_PROCESS, reg.id, firsts[w], counts[w], 0, sub.batch);
    }
    return sub;
  }

  private ownerScratch(n: number): Int32Array {
    return n <= this.owner.length ? this.owner : new Int32Array(n);
  }

  /** Waits for every worker's share, then checks that every packet got a result. */
  private async complete(sub: Submitted): Promise<void> {
    for (let w = 0; w < this.workers; w++) {
      if (sub.seqs[w] >= 0) await this.run.waitFor(w, sub.seqs[w]);
    }
    const result = sub.reg.out.result;
    for (let i = 0; i < sub.count; i++) {
      if (result[sub.first + i] === RES_UNSET) {
        throw new Error(`core engine: packet ${sub.start + i} was not processed by worker (batch ${sub.batch})`);
      }
    }
    if (this.partitionOpen > 0) this.notePartitionDecisions(sub);
  }

  /**
   * Turns the workers' first partition decisions made in `sub` (ctl words CI_QUOTA_* / CI_PORT_*,
   * written once per worker and slot) into packet numbers. W reads per NAT slot and kind per batch,
   * and only until every slot has both.
   */
  private notePartitionDecisions(sub: Submitted): void {
    const sh = this.shared;
    const ctl = new Int32Array(sh.sabs.ctl);
    for (let kind = 0; kind < 2; kind++) {
      const from = this.partitionFrom[kind];
      const at = kind === 0 ? CI_QUOTA_BATCH : CI_PORT_BATCH;
      for (let slot = 0; slot < from.length; slot++) {
        if (from[slot] !== Infinity) continue;
        for (let w = 0; w < this.workers; w++) {
          const b = w * sh.ctlWords + C_INST + slot * C_INST_WORDS + at;
          if (Atomics.load(ctl, b) !== sub.batch + 1) continue;
          const n = sub.start + ctl[b + 1] - sub.first;
          if (n < from[slot]) from[slot] = n;
        }
        if (from[slot] !== Infinity) this.partitionOpen--;
      }
    }
    if (sh.sg && this.sgShareFrom[0] === Infinity) {
      for (let w = 0; w < this.workers; w++) {
        const b = w * sh.ctlWords + C_SG_BATCH;
        if (Atomics.load(ctl, b) !== sub.batch + 1) continue;
        this.sgShareFrom[0] = Math.min(this.sgShareFrom[0], sub.start + ctl[b + 1] - sub.first);
      }
      if (this.sgShareFrom[0] !== Infinity) this.partitionOpen--;
    }
  }

  /** The registration of (batch, out): made once, the SABs then stay with the workers. */
  private registered(batch: FrameBatch, out: BatchOutput, plan: ReaddressPlan | null = null): Reg {
    let list = this.regs.get(batch);
    if (list === undefined) {
      list = [];
      this.regs.set(batch, list);
    }
    for (const r of list) if (r.out === out && (r.cb.plan ?? null) === plan) return r;
    const idx = new Int32Array(new SharedArrayBuffer(Math.max(1, batch.maxPackets) * 4));
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    const cb: CoreBatch = { batch, out, idx, plan };
    const r: Reg = { out, id: this.run.register(cb), cb };
    list.push(r);
    return r;
  }

  /** Checks a FrameBatch before any of it runs: frames in the arena and aligned, ingress, time. */
  private validateFrames(batch: FrameBatch, out: BatchOutput, first: number, count: number): void {
    const n = first + count;
    const arena = batch.arena;
    if (!Number.isInteger(batch.count) || batch.count < 0 || batch.count > batch.maxPackets)
      throw new InputError(`core engine: batch count ${batch.count} is not in 0..${batch.maxPackets}`);
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || n > batch.count)
      throw new InputError(`core engine: packets [${first}, +${count}) are not in the batch's 0..${batch.count}`);
    if (count > MAX_SHARE) throw new InputError(`core engine: batch of ${count} packets exceeds ${MAX_SHARE}`);
    if (out.maxPackets < n || out.outArena.length < errorBase(arena.length, n) || out.outOff.length < n * OUT_SLOTS) {
      throw new InputError(
        `core engine: output too small for ${n} packets of a ${arena.length}-byte arena (createBatchOutput)`,
      );
    }
    if (!(arena.buffer instanceof SharedArrayBuffer) || !(out.outArena.buffer instanceof SharedArrayBuffer)) {
      throw new InputError(
        'core engine: frame batches must be SharedArrayBuffer-backed (createFrameBatch / createBatchOutput)',
      );
    }
    const off = batch.off;
    const len = batch.len;
    const ingress = batch.ingress;
    const timeUs = batch.timeUs;
    const maxPoint = this.maxPoint;
    const size = arena.length;
    let last = this.lastTimeUs;
    for (let i = first; i < n; i++) {
      const o = off[i];
      const l = len[i];
      if (o < 0 || l < 0 || l > MAX_FRAME || o + l > size || (o & (FRAME_ALIGN - 1)) !== 0) {
        throw new InputError(
          `core engine: packet ${this.packetNo + i - first}: frame [${o}, +${l}) is not an aligned frame of the ${size}-byte arena`,
        );
      }
      const g = ingress[i];
      if (g < 0 || g > maxPoint) {
        throw new InputError(
          `core engine: packet ${this.packetNo + i - first}: ingress point ${g} is not in the scenario (0..${maxPoint})`,
        );
      }
      const t = timeUs[i];
      if (!(t >= last)) {
        if (!(t >= 0) || !Number.isFinite(t))
          throw new InputError(`core engine: packet ${this.packetNo + i - first}: bad timeUs ${t}`);
        throw new InputError(
          `core engine: packet ${this.packetNo + i - first}: time went backwards (${t} µs after ${last} µs)`,
        );
      }
      if (t > Number.MAX_SAFE_INTEGER)
        throw new InputError(`core engine: packet ${this.packetNo + i - first}: bad timeUs ${t}`);
      last = t;
    }
    this.lastTimeUs = last;
  }

  /** process(): check the whole array before any of it is copied or run. */
  private validatePackets(batch: readonly InputPacket[]): void {
    let last = this.lastTimeUs;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i];
      const where = `packet ${this.packetNo + i}`;
      if (!(p.frame instanceof Uint8Array)) throw new InputError(`core engine: ${where}: frame is not a Uint8Array`);
      if (p.frame.length > MAX_FRAME) {
        throw new InputError(`core engine: ${where}: frame of ${p.frame.length} bytes exceeds 65535`);
      }
      if (!Number.isInteger(p.ingress) || p.ingress < 0 || p.ingress > this.maxPoint) {
        throw new InputError(
          `core engine: ${where}: ingress point ${p.ingress} is not in the scenario (0..${this.maxPoint})`,
        );
      }
      const t = p.timeUs;
      if (!Number.isFinite(t) || t < 0 || t > Number.MAX_SAFE_INTEGER)
        throw new InputError(`core engine: ${where}: bad timeUs ${t}`);
      if (t < last) throw new InputError(`core engine: ${where}: time went backwards (${t} µs after ${last} µs)`);
      last = t;
    }
  }

  /** Copies packets [pos, ...) into `cb` (aligned) until batchSize or the arena is full; returns how many. */
  private fill(cb: CoreBatch, packets: readonly InputPacket[], pos: number): number {
    const b = cb.batch;
    const arena = b.arena;
    let off = 0;
    let n = 0;
    while (pos + n < packets.length && n < b.maxPackets) {
      const p = packets[pos + n];
      const len = p.frame.length;
      if (off + len > arena.length) break;
      arena.set(p.frame, off);
      b.off[n] = off;
      b.len[n] = len;
      b.ingress[n] = p.ingress;
      b.timeUs[n] = p.timeUs;
      off = (off + len + FRAME_ALIGN - 1) & ~(FRAME_ALIGN - 1);
      n++;
    }
    if (n === 0) throw new Error('core engine: arena too small for one frame'); // MIN_ARENA > MAX_FRAME
    b.count = n;
    return n;
  }

  private armFaults(sub: Submitted): void {
    const f = this.faults;
    const inChunk = (p: number | undefined): p is number =>
      p !== undefined && p >= sub.start && p < sub.start + sub.count;
    if (inChunk(f.throwAtPacket)) this.run.armFault(FAULT_THROW, sub.batch, f.throwAtPacket - sub.start);
    if (inChunk(f.terminateAtPacket)) this.run.armFault(FAULT_TERMINATE, sub.batch, f.terminateAtPacket - sub.start);
    if (f.terminateAtBatch === sub.batch) this.run.armFault(FAULT_TERMINATE, sub.batch, sub.count >> 1);
    if (inChunk(f.holdAtPacket)) this.run.armFault(FAULT_HOLD, sub.batch, f.holdAtPacket - sub.start);
  }

  /** PacketResults of packets [0, count) of cb (results[at + i]); output frames are copies. */
  private read(cb: CoreBatch, at: number, count: number, results: PacketResult[]): void {
    const out = cb.out;
    const arena = out.outArena;
    for (let i = 0; i < count; i++) {
      const word = out.result[i];
      const n = resultOutCount(word);
      const outputs: OutputFrame[] = new Array(n);
      for (let k = 0; k < n; k++) {
        const o = i * OUT_SLOTS + k;
        const off = out.outOff[o];
        outputs[k] = { egress: out.outEgress[o], frame: arena.slice(off, off + out.outLen[o]) };
      }
      results[at + i] = {
        fate: resultFate(word),
        reason: resultReason(word),
        detail: resultDetail(word),
        ct: resultCt(word),
        outputs,
      };
    }
  }
}
