// The core's worker pool: piscina threads, each running one run-long task (worker.ts) that pulls
// batch descriptors from a shared ring (ring.ts). This file owns thread lifecycle and faults:
// a task that throws or whose thread dies is re-issued and resumes from the ring's per-packet
// commit marker; piscina replaces dead threads. See docs/core.md "Threads" and "Faults".

import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { CoreBatch, CoreShared } from './layout.ts';
import {
  FAULT_HOLD,
  FAULT_NONE,
  FAULT_TERMINATE,
  G_FAULT_BATCH,
  G_FAULT_FIRED,
  G_FAULT_INDEX,
  G_FAULT_KIND,
  G_WAKE,
  G_WAIT_FOR,
  WAIT_ANY,
  OP_EXIT,
  W_PACKETS,
  W_COMMIT,
  W_BUSY_US,
  W_FAST,
  W_SLEEPS,
  W_PARKED,
  W_RELEASE,
  W_STARTS,
  W_TAIL,
  W_THREAD,
  createRing,
  committedOf,
  descOffset,
  inFlightOf,
  D_BATCH,
  isComplete,
  postDescriptor,
  ringFree,
  workerBase,
} from './ring.ts';
import type { WorkerTask } from './worker.ts';
import { workerFileUrl } from './worker-bundle.ts';

export interface PoolOptions {
  workers: number;
  shared: CoreShared;
  mode?: 'dataplane' | 'noop' | 'probe';
  /** Mode 'probe': per packet index counters (tests). */
  probe?: Int32Array;
  /** Enable fault injection checks in the worker loop (tests). */
  faults?: boolean;
  /** Worker polls of its ring before sleeping (default 0: on 2 cores a spinning worker takes main's CPU). */
  spin?: number;
  /** Main thread polls before sleeping while waiting for a completion (default 0). */
  mainSpin?: number;
  /** Restarts of one worker allowed without progress before the pool fails (default 3). */
  maxRestarts?: number;
  /** FAULT_HOLD: called while the worker is parked mid-batch; the worker resumes when it settles. */
  onHold?: (worker: number) => Promise<void> | void;
}

/** Default worker count: the machine's available parallelism. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

type WaitAsync = (
  ta: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class CorePool {
  readonly workers: number;
  readonly ctrl: Int32Array;
  /** Task (re-)issues after faults, all workers together. */
  restarts = 0;
  /**
   * Faults that struck inside a packet (the commit marker said "in flight"): that packet was re-run
   * over whatever it had already written. 0 means every recovery was exact.
   */
  interruptedPackets = 0;
  /** The faults seen (messages), in order: what the pool recovered from. */
  readonly faultLog: string[] = [];
  private readonly piscina: Piscina;
  private readonly task: Omit<WorkerTask, 'worker' | 'batches' | 'port'>;
  /** Every batch registered, by number; each worker's end of its registration channel. */
  private readonly batches: CoreBatch[] = [];
  private readonly ports: (MessagePort | null)[];
  private readonly running: (Promise<void> | null)[];
  /** Per worker, where its task last failed (`tail:commit`) and how many times in a row there. */
  private readonly progressAtStart: string[];
  private readonly failedStarts: number[];
  private readonly maxRestarts: number;
  private readonly mainSpin: number;
  private readonly onHold: ((worker: number) => Promise<void> | void) | undefined;
  private failure: Error | null = null;
  private waiters = 0;
  private closing = false;
  private closed = false;

  constructor(opts: PoolOptions) {
    const n = opts.workers | 0;
    if (n < 1) throw new RangeError(`core pool: workers must be >= 1, got ${opts.workers}`);
    this.workers = n;
    const ring = createRing(n);
    this.ctrl = new Int32Array(ring);
    Atomics.store(this.ctrl, G_WAIT_FOR, WAIT_ANY);
    this.maxRestarts = opts.maxRestarts ?? 3;
    this.mainSpin = opts.mainSpin ?? 0;
    this.onHold = opts.onHold;
    this.task = {
      shared: opts.shared,
      ring,
      mode: opts.mode ?? 'dataplane',
      probe: opts.probe,
      faults: opts.faults ?? false,
      spin: opts.spin ?? 0,
    };
    this.piscina = new Piscina({
      // The worker's code bundled as plain JavaScript (worker-bundle.ts; fallback: worker-boot.mjs,
      // which registers tsx's ESM hooks inside the thread, then loads worker.ts).
      filename: workerFileUrl(),
      minThreads: n,
      maxThreads: n,
      idleTimeout: 60_000,
      concurrentTasksPerWorker: 1,
      execArgv: [],
      name: 'default',
    });
    // A dead thread's error reaches its task; an 'error' event without a task must not crash us.
    this.piscina.on('error', (err: unknown) => {
      this.faultLog.push(`pool error: ${String((err as Error)?.message ?? err)}`);
    });
    this.running = new Array(n).fill(null);
    this.ports = new Array(n).fill(null);
    this.progressAtStart = new Array(n).fill('');
    this.failedStarts = new Array(n).fill(0);
    for (let w = 0; w < n; w++) this.issue(w);
  }

  /** Threads piscina currently runs (replacements included). */
  get threadCount(): number {
    return this.piscina.threads.length;
  }

  /** Packets processed by worker w (statistics). */
  packets(w: number): number {
    return Atomics.load(this.ctrl, workerBase(w) + W_PACKETS);
  }

  /** µs worker w spent processing descriptors (statistics). */
  busyUs(w: number): number {
    return Atomics.load(this.ctrl, workerBase(w) + W_BUSY_US);
  }

  /** Packets worker w's dataplane took through its fast path (statistics, since its last start). */
  fastPackets(w: number): number {
    return Atomics.load(this.ctrl, workerBase(w) + W_FAST);
  }

  /** Times worker w went to sleep waiting for work (statistics). */
  sleeps(w: number): number {
    return Atomics.load(this.ctrl, workerBase(w) + W_SLEEPS);
  }

  /**
   * Makes a batch known to every worker (once per batch object: the caller keeps the number and
   * names the batch by it in descriptors). Its SharedArrayBuffers go to the workers as they are —
   * a registration message now, or the task data of a restarted worker — never a copy of frames.
   */
  register(cb: CoreBatch): number {
    const id = this.batches.length;
    this.batches.push(cb);
    for (let w = 0; w < this.workers; w++) this.ports[w]?.postMessage({ id, cb });
    return id;
  }

  /** Arm a fault (tests): it fires once, before packet `index` of batch `batch`. */
  armFault(kind: number, batch: number, index: number): void {
    const c = this.ctrl;
    Atomics.store(c, G_FAULT_BATCH, batch);
    Atomics.store(c, G_FAULT_INDEX, index);
    Atomics.store(c, G_FAULT_FIRED, 0);
    Atomics.store(c, G_FAULT_KIND, kind);
  }

  faultFired(): boolean {
    return Atomics.load(this.ctrl, G_FAULT_FIRED) !== 0 && Atomics.load(this.ctrl, G_FAULT_KIND) !== FAULT_NONE;
  }

  /**
   * Post a descriptor to worker w (waits while its ring is full). Returns the descriptor's sequence
   * number for waitFor.
   */
  async post(
    w: number,
    op: number,
    io: number,
    first: number,
    count: number,
    nowMs: number,
    batch: number,
  ): Promise<number> {
    if (this.closed) throw new Error('core pool is closed');
    if (ringFree(this.ctrl, w) <= 0) await this.waitUntil(w, () => ringFree(this.ctrl, w) > 0);
    return postDescriptor(this.ctrl, w, op, io, first, count, nowMs, batch);
  }

  /** Resolves when descriptor seq of worker w has completed (after any fault recovery). */
  async waitFor(w: number, seq: number): Promise<void> {
    if (isComplete(this.ctrl, w, seq)) return;
    await this.waitUntil(w, () => isComplete(this.ctrl, w, seq));
  }

  /** Sleep until cond() holds; `w` is the worker whose descriptors it depends on (or WAIT_ANY). */
  private async waitUntil(w: number, cond: () => boolean): Promise<void> {
    const c = this.ctrl;
    // Concurrent waiters (not the engine's pattern, but allowed) wake on every completion.
    this.waiters++;
    Atomics.store(c, G_WAIT_FOR, this.waiters > 1 ? WAIT_ANY : w);
    try {
      await this.waitLoop(cond);
    } finally {
      this.waiters--;
    }
  }

  private async waitLoop(cond: () => boolean): Promise<void> {
    const c = this.ctrl;
    for (;;) {
      if (this.failure !== null) throw this.failure;
      const wake = Atomics.load(c, G_WAKE);
      if (cond()) return;
      if (await this.serviceParked()) continue;
      let spun = false;
      for (let s = 0; s < this.mainSpin; s++) {
        if (Atomics.load(c, G_WAKE) !== wake) {
          spun = true;
          break;
        }
      }
      if (spun) continue;
      const r = waitAsync(c, G_WAKE, wake);
      if (r.async) await r.value;
    }
  }

  /** Handle workers parked by fault injection. True if one was handled. */
  private async serviceParked(): Promise<boolean> {
    const c = this.ctrl;
    let handled = false;
    for (let w = 0; w < this.workers; w++) {
      const base = workerBase(w);
      if (Atomics.load(c, base + W_PARKED) === 0) continue;
      Atomics.store(c, base + W_PARKED, 0);
      handled = true;
      const kind = Atomics.load(c, G_FAULT_KIND);
      if (kind === FAULT_TERMINATE) {
        const tid = Atomics.load(c, base + W_THREAD);
        const thread = this.piscina.threads.find((t) => t.threadId === tid);
        if (thread === undefined) throw new Error(`core pool: parked worker ${w} runs on unknown thread ${tid}`);
        this.faultLog.push(`worker ${w}: terminating thread ${tid} mid-batch (injected)`);
        await thread.terminate();
      } else if (kind === FAULT_HOLD) {
        try {
          if (this.onHold !== undefined) await this.onHold(w);
        } finally {
          Atomics.store(c, base + W_RELEASE, 1);
          Atomics.notify(c, base + W_RELEASE);
        }
      }
    }
    return handled;
  }

  /** Start (or restart) worker w's run-long task. */
  private issue(w: number): void {
    const base = workerBase(w);
    Atomics.store(this.ctrl, base + W_PARKED, 0);
    Atomics.store(this.ctrl, base + W_RELEASE, 0);
    // A fresh registration channel per task: the batches so far travel in the task itself.
    this.ports[w]?.close();
    const ch = new MessageChannel();
    ch.port1.unref();
    this.ports[w] = ch.port1;
    const task: WorkerTask = { ...this.task, worker: w, batches: this.batches.slice(), port: ch.port2 };
    this.running[w] = this.piscina.run(task, { transferList: [ch.port2] }).then(
      () => {
        this.running[w] = null;
      },
      (err: unknown) => {
        this.running[w] = null;
        this.onTaskFailed(w, err);
      },
    );
  }

  private onTaskFailed(w: number, err: unknown): void {
    if (this.closing) return;
    const msg = String((err as Error)?.message ?? err);
    this.faultLog.push(`worker ${w}: ${msg}`);
    const word = Atomics.load(this.ctrl, workerBase(w) + W_COMMIT);
    const tailNow = Atomics.load(this.ctrl, workerBase(w) + W_TAIL);
    if (inFlightOf(word, tailNow)) {
      this.interruptedPackets++;
      const d = descOffset(workerBase(w), tailNow);
      this.faultLog.push(
        `worker ${w}: died inside packet ${committedOf(word, tailNow)} of its share of batch ${this.ctrl[d + D_BATCH]}; ` +
          'it is re-run from the start, but its half-done shared-memory writes are not rolled back (docs/core.md "Faults")',
      );
    }
    // Consecutive failures at the same point (`tail:commit` did not move) mean a deterministic bug.
    const base = workerBase(w);
    const at = `${Atomics.load(this.ctrl, base + W_TAIL)}:${Atomics.load(this.ctrl, base + W_COMMIT)}`;
    this.failedStarts[w] = at === this.progressAtStart[w] ? this.failedStarts[w] + 1 : 1;
    this.progressAtStart[w] = at;
    if (this.failedStarts[w] > this.maxRestarts) {
      this.failure = new Error(`core worker ${w} failed ${this.failedStarts[w]} times without progress (last: ${msg})`);
    } else {
      this.restarts++;
      this.issue(w);
    }
    Atomics.add(this.ctrl, G_WAKE, 1);
    Atomics.notify(this.ctrl, G_WAKE);
  }

  /** Restarts (task starts beyond the first) of worker w. */
  starts(w: number): number {
    return Atomics.load(this.ctrl, workerBase(w) + W_STARTS);
  }

  /** Ask every worker to exit, then terminate the threads. The process can exit afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.failure === null) {
      try {
        const seqs: number[] = [];
        for (let w = 0; w < this.workers; w++) {
          if (ringFree(this.ctrl, w) <= 0) await this.waitUntil(w, () => ringFree(this.ctrl, w) > 0);
          seqs.push(postDescriptor(this.ctrl, w, OP_EXIT, 0, 0, 0, 0, -1));
        }
        for (let w = 0; w < this.workers; w++) await this.waitFor(w, seqs[w]);
      } catch {
        // a failed pool: terminate below
      }
    }
    this.closing = true;
    for (let w = 0; w < this.workers; w++) this.ports[w]?.close();
    await this.piscina.destroy();
  }
}
