// The zero-copy hand-over between whoever reads frames (replay, bench, the differential runner)
// and the engines: a columnar batch of input frames in one arena, and per-engine columnar outputs
// with one packed result word per packet. Both are SharedArrayBuffer-backed so the core's workers
// read and write them in place. The contract is written down in docs/frame-batch.md.

import { ICMP_ERROR_MAX_LEN } from './timeouts.ts';

/** Frames in the input arena start at multiples of this many bytes (aligned 32-bit views). */
export const FRAME_ALIGN = 8;
/** Output slots per input packet: k = 0 the forwarded frame, k = 1 a generated ICMP error. */
export const OUT_SLOTS = 2;

/**
 * Input frames (IPv4 at byte 0) with their ingress point and virtual time. Engines never write to
 * it; several engines may read the same batch at once.
 */
export interface FrameBatch {
  /** Capacity in packets. */
  readonly maxPackets: number;
  /** Packets in use, [0, count). Set by the producer. */
  count: number;
  /** Frame i is arena[off[i] .. off[i] + len[i]); off[i] % FRAME_ALIGN === 0; frames do not overlap. */
  readonly arena: Uint8Array;
  readonly off: Int32Array;
  readonly len: Int32Array;
  /** POINT_INTERNET or instancePoint(i) (spec/scenario.ts). */
  readonly ingress: Int32Array;
  /**
   * Virtual clock, microseconds since any epoch the producer chooses (a capture's timestamps as
   * they are: integers up to 2^53, so any 64-bit capture time). Must not decrease within a run.
   */
  readonly timeUs: Float64Array;
}

/**
 * One engine's results for one FrameBatch. Output slot k of packet i is at index OUT_SLOTS * i + k;
 * slot 0 (the forwarded frame) lives in outArena at the input's own offset (off[i], the frame does
 * not grow), slot 1 (a generated ICMP error) at errorBase(i).
 */
export interface BatchOutput {
  readonly maxPackets: number;
  /** Packed per-packet result (RES_* below). */
  readonly result: Uint32Array;
  readonly outArena: Uint8Array;
  readonly outOff: Int32Array;
  readonly outLen: Int32Array;
  /** Egress point of each output slot. */
  readonly outEgress: Int32Array;
}

// ---- the packed result word -------------------------------------------------------------------
// bits 0..7 reason (DROP_* / REASON_NONE), 8..15 detail, 16..19 ct (CT_*), 20 dropped,
// 21..22 output count (0..OUT_SLOTS), 23 slot 0 empty (the only output is the ICMP error).

export const RES_REASON_MASK = 0xff;
export const RES_DETAIL_SHIFT = 8;
export const RES_CT_SHIFT = 16;
export const RES_CT_MASK = 0xf;
export const RES_DROPPED = 1 << 20;
export const RES_OUT_SHIFT = 21;
export const RES_OUT_MASK = 0x3;

/** Packs one result word (fate: FATE_DELIVERED = 0 / FATE_DROPPED = 1, as spec/reasons.ts). */
export function packResult(fate: number, reason: number, detail: number, ct: number, outCount: number): number {
  return (
    ((reason & RES_REASON_MASK) |
      ((detail & 0xff) << RES_DETAIL_SHIFT) |
      ((ct & RES_CT_MASK) << RES_CT_SHIFT) |
      (fate !== 0 ? RES_DROPPED : 0) |
      ((outCount & RES_OUT_MASK) << RES_OUT_SHIFT)) >>>
    0
  );
}

export const resultReason = (w: number): number => w & RES_REASON_MASK;
export const resultDetail = (w: number): number => (w >>> RES_DETAIL_SHIFT) & 0xff;
export const resultCt = (w: number): number => (w >>> RES_CT_SHIFT) & RES_CT_MASK;
export const resultFate = (w: number): number => ((w & RES_DROPPED) !== 0 ? 1 : 0);
export const resultOutCount = (w: number): number => (w >>> RES_OUT_SHIFT) & RES_OUT_MASK;

function sab(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(FRAME_ALIGN, bytes));
}

/** A SharedArrayBuffer-backed input batch. */
export function createFrameBatch(maxPackets: number, arenaBytes: number): FrameBatch {
  const n = Math.max(1, maxPackets | 0);
  return {
    maxPackets: n,
    count: 0,
    arena: new Uint8Array(sab(arenaBytes)),
    off: new Int32Array(sab(n * 4)),
    len: new Int32Array(sab(n * 4)),
    ingress: new Int32Array(sab(n * 4)),
    timeUs: new Float64Array(sab(n * 8)),
  };
}

/** Bytes of the output arena for batches of at most maxPackets / arenaBytes. */
export function outArenaBytes(maxPackets: number, arenaBytes: number): number {
  return Math.max(FRAME_ALIGN, arenaBytes + ICMP_ERROR_MAX_LEN * Math.max(1, maxPackets | 0));
}

/**
 * A SharedArrayBuffer-backed output for batches of at most maxPackets / arenaBytes; `outArena`, when
 * given, is the arena (a SharedArrayBuffer-backed view of at least outArenaBytes bytes, e.g. a
 * region of a shared memory pool).
 */
export function createBatchOutput(maxPackets: number, arenaBytes: number, outArena?: Uint8Array): BatchOutput {
  const n = Math.max(1, maxPackets | 0);
  const need = outArenaBytes(n, arenaBytes);
  if (outArena !== undefined && (outArena.length < need || !(outArena.buffer instanceof SharedArrayBuffer)))
    throw new RangeError(`createBatchOutput: the given arena is not a shared arena of ${need} bytes`);
  return {
    maxPackets: n,
    result: new Uint32Array(sab(n * 4)),
    outArena: outArena ?? new Uint8Array(sab(need)),
    outOff: new Int32Array(sab(n * OUT_SLOTS * 4)),
    outLen: new Int32Array(sab(n * OUT_SLOTS * 4)),
    outEgress: new Int32Array(sab(n * OUT_SLOTS * 4)),
  };
}

/** Where packet i's generated ICMP error is written in an output arena of an input arena of arenaBytes. */
export function errorBase(arenaBytes: number, i: number): number {
  return arenaBytes + ICMP_ERROR_MAX_LEN * i;
}
