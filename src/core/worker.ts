// The run-long piscina task of one core worker: pulls batch descriptors from its ring (see
// ring.ts), runs the Dataplane on its share of each batch, commits per packet, signals completion.
// One task per worker for the whole run; piscina keeps the thread and replaces it if it dies, and
// the pool re-issues the task, which resumes from the ring's commit marker (docs/core.md "Faults").
//
// Hot loop: no allocation, no strings, no messages; one Atomics.wait per idle period.

import { type MessagePort, receiveMessageOnPort, threadId } from 'node:worker_threads';
import { Dataplane } from './dataplane.ts';
import { processPlanned } from './readdress.ts';
import type { CoreBatch, CoreShared } from './layout.ts';
import {
  D_BATCH,
  D_COUNT,
  D_FIRST,
  D_IO,
  D_OP,
  descNowMs,
  FAULT_HOLD,
  FAULT_NONE,
  FAULT_TERMINATE,
  FAULT_THROW,
  FAULT_THROW_ALWAYS,
  FAULT_THROW_INSIDE,
  COMMIT_IN_FLIGHT,
  G_FAULT_BATCH,
  G_FAULT_FIRED,
  G_FAULT_INDEX,
  G_FAULT_KIND,
  G_WAKE,
  G_WAIT_FOR,
  WAIT_ANY,
  OP_ADVANCE,
  OP_EXIT,
  OP_TIMELINE,
  OP_PROCESS,
  W_COMMIT,
  W_HEAD,
  W_PACKETS,
  W_PARKED,
  W_RELEASE,
  W_SLEEPS,
  W_BUSY_US,
  W_FAST,
  W_STARTS,
  W_TAIL,
  W_THREAD,
  committedOf,
  commitWord,
  descOffset,
  workerBase,
} from './ring.ts';

/** What the pool sends to start (or restart) worker `worker`. Structured-cloneable. */
export interface WorkerTask {
  worker: number;
  shared: CoreShared;
  /** The batches registered so far, by number (CorePool.register); later ones arrive on `port`. */
  batches: CoreBatch[];
  /** Receives { id, batch } registrations (read synchronously with receiveMessageOnPort). */
  port: MessagePort | null;
  ring: SharedArrayBuffer;
  /**
   * 'dataplane' runs Dataplane.processBatch; 'noop' only commits (measures the hand-over alone);
   * 'probe' adds 1 to probe[packet] per processed packet (tests: exactly-once across faults) and
   * stores the time of each advance in probe's last slot.
   */
  mode: 'dataplane' | 'noop' | 'probe';
  probe?: Int32Array;
  /** Check the armed fault before each packet (tests only: the plain loop has no check). */
  faults: boolean;
  /** Polls of the ring before sleeping in Atomics.wait (0 = sleep at once). */
  spin: number;
}

/** The processing step: a share [first, first+count) of idx, one Dataplane call. */
interface Processor {
  /** Runs the share [first, first+count) of cb.idx; commitBias: see Dataplane.processBatch. */
  process(cb: CoreBatch, first: number, count: number, commitBias: number): void;
  /** The engine's number of the batch the next process() calls belong to (descriptor D_BATCH). */
  setBatchNo(n: number): void;
  advance(nowMs: number): void;
  /** A timeline event: NAT slot `slot`'s sessions go (-1: none), composed paths are forgotten. */
  timeline(slot: number): void;
  /** Packets that took the fast path so far (statistics). */
  fast(): number;
}

class NoopProcessor implements Processor {
  process(_cb: CoreBatch, _first: number, _count: number, _commitBias: number): void {}
  setBatchNo(_n: number): void {}
  advance(_nowMs: number): void {}
  timeline(_slot: number): void {}
  fast(): number {
    return 0;
  }
}

/** Counts each packet in probe[packet]; an advance stores its time in the probe's last slot. */
class ProbeProcessor implements Processor {
  constructor(
    private readonly probe: Int32Array,
    private readonly ctrl: Int32Array,
    private readonly at: number,
  ) {}
  process(cb: CoreBatch, first: number, count: number, commitBias: number): void {
    const idx = cb.idx;
    for (let i = first; i < first + count; i++) {
      this.ctrl[this.at] = (commitBias + i) | COMMIT_IN_FLIGHT;
      Atomics.add(this.probe, idx[i], 1);
      this.ctrl[this.at] = (commitBias + i + 1) | 0;
    }
  }
  setBatchNo(_n: number): void {}
  advance(nowMs: number): void {
    Atomics.store(this.probe, this.probe.length - 1, nowMs);
  }
  timeline(_slot: number): void {}
  fast(): number {
    return 0;
  }
}

class DataplaneProcessor implements Processor {
  private readonly dp: Dataplane;
  constructor(dp: Dataplane) {
    this.dp = dp;
  }
  process(cb: CoreBatch, first: number, count: number, commitBias: number): void {
    this.dp.processBatch(cb.batch, cb.out, cb.idx, first, count, commitBias);
  }
  setBatchNo(n: number): void {
    this.dp.setBatchNo(n);
  }
  advance(nowMs: number): void {
    this.dp.advance(nowMs);
  }
  timeline(slot: number): void {
    this.dp.timeline(slot);
  }
  fast(): number {
    return this.dp.fastCount;
  }
}

export default function runCoreWorker(task: WorkerTask): number {
  let proc: Processor;
  if (task.mode === 'noop') proc = new NoopProcessor();
  else if (task.mode === 'probe')
    proc = new ProbeProcessor(
      task.probe ?? new Int32Array(1),
      new Int32Array(task.ring),
      workerBase(task.worker) + W_COMMIT,
    );
  else {
    const dp = new Dataplane(task.shared, task.worker);
    dp.setCommit(new Int32Array(task.ring), workerBase(task.worker) + W_COMMIT);
    proc = new DataplaneProcessor(dp);
  }
  return runLoop(task, proc);
}

function runLoop(task: WorkerTask, proc: Processor): number {
  const ctrl = new Int32Array(task.ring);
  const w = task.worker;
  const base = workerBase(w);
  Atomics.add(ctrl, base + W_STARTS, 1);
  Atomics.store(ctrl, base + W_THREAD, threadId);
  const batches = task.batches.slice();
  const spin = task.spin | 0;
  const faults = task.faults;
  let processed = 0;
  let busyUs = 0;
  for (;;) {
    const tail = Atomics.load(ctrl, base + W_TAIL);
    let head = Atomics.load(ctrl, base + W_HEAD);
    if (head === tail) {
      for (let s = 0; s < spin && head === tail; s++) head = Atomics.load(ctrl, base + W_HEAD);
      if (head === tail) {
        ctrl[base + W_SLEEPS]++;
        Atomics.wait(ctrl, base + W_HEAD, tail);
        continue;
      }
    }
    const d = descOffset(base, tail);
    const op = ctrl[d + D_OP];
    const t0 = performance.now();
    if (op === OP_PROCESS) {
      const ioIndex = ctrl[d + D_IO];
      const first = ctrl[d + D_FIRST];
      const count = ctrl[d + D_COUNT];
      while (batches.length <= ioIndex) {
        // A batch registered after this task started: its SABs are waiting on the port.
        const m = task.port === null ? undefined : receiveMessageOnPort(task.port);
        if (m === undefined) throw new Error(`core worker ${w}: batch ${ioIndex} was never registered`);
        const reg = m.message as { id: number; cb: CoreBatch };
        batches[reg.id] = reg.cb;
      }
      const cb = batches[ioIndex];
      const idx = cb.idx;
      // Resume after a restart: skip the packets a previous thread committed.
      let i = committedOf(Atomics.load(ctrl, base + W_COMMIT), tail);
      const bias = commitWord(tail, 0) - first;
      proc.setBatchNo(ctrl[d + D_BATCH]);
      if (faults) {
        // Tests: one packet per call, so the armed fault can fire between (or inside) packets.
        const batch = ctrl[d + D_BATCH];
        for (; i < count; i++) {
          checkFault(ctrl, base, batch, idx[first + i], false);
          ctrl[base + W_COMMIT] = commitWord(tail, i) | COMMIT_IN_FLIGHT;
          checkFault(ctrl, base, batch, idx[first + i], true);
          if (cb.plan) processPlanned(cb, first, i, i + 1, (f, n) => proc.process(cb, f, n, bias));
          else proc.process(cb, first + i, 1, bias);
        }
      } else if (i < count) {
        // The whole share in one call (prefetch passes included); the dataplane stores the
        // commit marker around each packet. A re-addressing plan splits it before each planned packet.
        if (cb.plan) processPlanned(cb, first, i, count, (f, n) => proc.process(cb, f, n, bias));
        else proc.process(cb, first + i, count - i, bias);
      }
      processed += count;
      ctrl[base + W_PACKETS] = processed;
    } else if (op === OP_ADVANCE) {
      proc.advance(descNowMs(ctrl, d));
    } else if (op === OP_TIMELINE) {
      proc.timeline(ctrl[d + D_FIRST]);
    }
    busyUs += (performance.now() - t0) * 1000;
    ctrl[base + W_BUSY_US] = busyUs | 0;
    ctrl[base + W_FAST] = proc.fast() | 0;
    Atomics.store(ctrl, base + W_TAIL, (tail + 1) | 0);
    // Wake main only if it waits for this worker (the store above and this load are both
    // sequentially consistent: main either sees the new tail or is seen waiting).
    const waitFor = Atomics.load(ctrl, G_WAIT_FOR);
    if (waitFor === w || waitFor === WAIT_ANY) {
      Atomics.add(ctrl, G_WAKE, 1);
      Atomics.notify(ctrl, G_WAKE);
    }
    if (op === OP_EXIT) {
      task.port?.close();
      Atomics.store(ctrl, base + W_THREAD, 0);
      return processed;
    }
  }
}

/**
 * Fault injection (tests): fire the armed fault once, before the packet it names (`inside`: after
 * the packet was marked in flight — only FAULT_THROW_INSIDE fires there).
 */
function checkFault(ctrl: Int32Array, base: number, batch: number, packet: number, inside: boolean): void {
  const kind = ctrl[G_FAULT_KIND];
  if (kind === FAULT_NONE || ctrl[G_FAULT_BATCH] !== batch || ctrl[G_FAULT_INDEX] !== packet) return;
  if ((kind === FAULT_THROW_INSIDE) !== inside) return;
  if (kind === FAULT_THROW_INSIDE) {
    if (Atomics.compareExchange(ctrl, G_FAULT_FIRED, 0, 1) !== 0) return;
    throw new Error(`injected fault: worker throws inside packet ${packet} of batch ${batch}`);
  }
  if (kind === FAULT_THROW_ALWAYS) {
    Atomics.store(ctrl, G_FAULT_FIRED, 1);
    throw new Error(`injected fault: worker always throws before packet ${packet} of batch ${batch}`);
  }
  if (Atomics.compareExchange(ctrl, G_FAULT_FIRED, 0, 1) !== 0) return;
  if (kind === FAULT_THROW) throw new Error(`injected fault: worker throws before packet ${packet} of batch ${batch}`);
  // Park: tell main, then wait. FAULT_TERMINATE: main terminates this thread while it waits here.
  Atomics.store(ctrl, base + W_PARKED, 1);
  Atomics.add(ctrl, G_WAKE, 1);
  Atomics.notify(ctrl, G_WAKE);
  while (Atomics.load(ctrl, base + W_RELEASE) === 0) Atomics.wait(ctrl, base + W_RELEASE, 0);
  Atomics.store(ctrl, base + W_RELEASE, 0);
  Atomics.store(ctrl, base + W_PARKED, 0);
  if (kind === FAULT_TERMINATE) throw new Error('injected fault: released instead of terminated');
  void FAULT_HOLD;
}
