// The control block between the engine's main thread and its run-long worker tasks: one
// Int32Array over a SharedArrayBuffer. Per worker, a single-producer (main) / single-consumer
// (worker) ring of batch descriptors; one Atomics.notify per posted descriptor, one per completed
// descriptor, never a message per packet. See docs/core.md "Threads: batch hand-over".
//
// This file holds no thread code (no worker_threads): both sides use these helpers.

/** Descriptors that can be in flight per worker (power of two). */
export const RING_SLOTS = 32;
const RING_MASK = RING_SLOTS - 1;

// Descriptor words.
export const D_OP = 0;
/** Which batch: the number CorePool.register gave it (the worker received its SABs then). */
export const D_IO = 1;
/** First index into the batch's per-worker index list (the share is idx[first..first+count)). */
export const D_FIRST = 2;
export const D_COUNT = 3;
/** OP_ADVANCE: the absolute time in ms, low 32 bits (unsigned) and high bits (D_NOW_HI). */
export const D_NOW_MS = 4;
/** Batch sequence number (the engine's count of batches posted), for fault injection and logs. */
export const D_BATCH = 5;
export const D_NOW_HI = 6;
export const DESC_WORDS = 8;

/** The absolute ms (any non-negative integer below 2^53) a descriptor carries. */
export function descNowMs(ctrl: Int32Array, d: number): number {
  return ctrl[d + D_NOW_HI] * 4294967296 + (ctrl[d + D_NOW_MS] >>> 0);
}

export const OP_PROCESS = 1;
export const OP_ADVANCE = 2;
export const OP_EXIT = 3;
/** A timeline event (Dataplane.timeline): D_FIRST = the NAT slot whose sessions go, or -1. */
export const OP_TIMELINE = 4;

// Per-worker block, in 32-bit words. The producer's word and the consumer's words sit on
// different 64-byte cache lines so the two threads do not write the same line.
/** Main: number of descriptors posted (monotonic, wraps at 2^31 harmlessly: compared with ===). */
export const W_HEAD = 0;
/** Worker: number of descriptors completed. */
export const W_TAIL = 16;
/**
 * Worker: per-packet commit marker of the descriptor at W_TAIL: (tag << 24) | packets committed,
 * tag = descriptor sequence & 0x7f. A marker whose tag differs from the current descriptor's means 0.
 * One word, so "which descriptor" and "how far" can never be torn apart by a dying thread.
 */
export const W_COMMIT = 17;
/** Worker: threadId of the thread currently running this worker's task (0 = none). */
export const W_THREAD = 18;
/** Worker: parked by fault injection (1) waiting to be terminated or released by main. */
export const W_PARKED = 19;
/** Main: release word for a parked worker (the worker waits on it). */
export const W_RELEASE = 20;
/** Worker: number of times a task started for this worker (1 + restarts). */
export const W_STARTS = 21;
/** Worker: packets processed since start (statistics; plain stores). */
export const W_PACKETS = 22;
/** Worker: times the worker went to sleep in Atomics.wait (statistics). */
export const W_SLEEPS = 23;
/** Worker: µs spent processing descriptors (statistics; wraps after ~35 min). */
export const W_BUSY_US = 24;
/** Worker: packets the dataplane's fast path took (statistics). */
export const W_FAST = 25;
/** Descriptor slots start here. */
export const W_DESC = 32;
export const WORKER_WORDS = W_DESC + RING_SLOTS * DESC_WORDS;

// Global words (block before the workers).
/** Fault injection: which fault (FAULT_*) is armed, and where (batch, index in batch). */
export const G_FAULT_KIND = 0;
export const G_FAULT_BATCH = 1;
export const G_FAULT_INDEX = 2;
/** Set to 1 by the worker that fires the armed fault (a fault fires once per run). */
export const G_FAULT_FIRED = 3;
/**
 * Workers: event counter bumped (and notified) whenever main may have something to do: a
 * descriptor completed, a worker parked. Main sleeps on it, so no event can slip between its checks
 * and its sleep. Its own cache line.
 */
export const G_WAKE = 16;
/**
 * Main: which worker's completions it is waiting for (WAIT_ANY: every worker's). A worker bumps
 * G_WAKE after a descriptor only when main waits for it, so waiting for a whole batch costs main
 * about one wake-up instead of one per worker. Parking and faults always wake main.
 */
export const G_WAIT_FOR = 17;
export const WAIT_ANY = -1;
export const GLOBAL_WORDS = 32;

export const FAULT_NONE = 0;
/** The worker throws before processing the packet. */
export const FAULT_THROW = 1;
/** The worker parks before processing the packet; main terminates its thread. */
export const FAULT_TERMINATE = 2;
/** The worker parks before processing the packet until main releases it (tests read state mid-run). */
export const FAULT_HOLD = 3;
/** The worker throws before the packet every time it gets there (a deterministic bug: the pool must give up). */
export const FAULT_THROW_ALWAYS = 4;
/** The worker throws inside the packet (after marking it in flight, before processing it). */
export const FAULT_THROW_INSIDE = 5;

const COMMIT_TAG_SHIFT = 24;
const COMMIT_COUNT_MASK = (1 << COMMIT_TAG_SHIFT) - 1;
/** A descriptor's share must fit the commit marker's count field. */
export const MAX_SHARE = COMMIT_COUNT_MASK;

export function ringBytes(workers: number): number {
  return (GLOBAL_WORDS + workers * WORKER_WORDS) * 4;
}

export function createRing(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(ringBytes(workers));
}

/** Word offset of worker w's block. */
export function workerBase(w: number): number {
  return GLOBAL_WORDS + w * WORKER_WORDS;
}

/** Word offset of the descriptor slot for sequence number seq. */
export function descOffset(base: number, seq: number): number {
  return base + W_DESC + (seq & RING_MASK) * DESC_WORDS;
}

export function commitWord(seq: number, committed: number): number {
  return ((seq & 0x7f) << COMMIT_TAG_SHIFT) | committed | 0;
}

/**
 * Bit 31 of the commit word: packet `committed` is in flight (set before the packet, cleared by
 * the commit after it). Found set after a fault, it says the thread died inside that packet.
 */
export const COMMIT_IN_FLIGHT = 1 << 31;

/** Packets already committed of descriptor seq, given the worker's commit word. */
export function committedOf(word: number, seq: number): number {
  return ((word >>> COMMIT_TAG_SHIFT) & 0x7f) === (seq & 0x7f) ? word & COMMIT_COUNT_MASK : 0;
}

/** True if the commit word says a packet of descriptor seq was being processed. */
export function inFlightOf(word: number, seq: number): boolean {
  return (word & COMMIT_IN_FLIGHT) !== 0 && ((word >>> COMMIT_TAG_SHIFT) & 0x7f) === (seq & 0x7f);
}

/** Main side: free slots in worker w's ring. */
export function ringFree(ctrl: Int32Array, w: number): number {
  const base = workerBase(w);
  return RING_SLOTS - ((Atomics.load(ctrl, base + W_HEAD) - Atomics.load(ctrl, base + W_TAIL)) | 0);
}

/**
 * Main side: post a descriptor to worker w (the caller checked ringFree > 0). Returns the
 * descriptor's sequence number; it is complete once W_TAIL > seq.
 */
export function postDescriptor(
  ctrl: Int32Array,
  w: number,
  op: number,
  io: number,
  first: number,
  count: number,
  nowMs: number,
  batch: number,
): number {
  const base = workerBase(w);
  const seq = Atomics.load(ctrl, base + W_HEAD);
  const d = descOffset(base, seq);
  ctrl[d + D_OP] = op;
  ctrl[d + D_IO] = io;
  ctrl[d + D_FIRST] = first;
  ctrl[d + D_COUNT] = count;
  ctrl[d + D_NOW_MS] = (nowMs % 4294967296) | 0;
  ctrl[d + D_NOW_HI] = Math.floor(nowMs / 4294967296);
  ctrl[d + D_BATCH] = batch;
  // The store of HEAD publishes the descriptor words (Atomics are sequentially consistent).
  Atomics.store(ctrl, base + W_HEAD, (seq + 1) | 0);
  Atomics.notify(ctrl, base + W_HEAD, 1);
  return seq;
}

/** True once descriptor seq of worker w has completed. */
export function isComplete(ctrl: Int32Array, w: number, seq: number): boolean {
  return ((Atomics.load(ctrl, workerBase(w) + W_TAIL) - seq) | 0) > 0;
}
