// Replay input: turns capture records into the frames the engines are fed, deciding per record
// what is fed and what is counted before the engines (and why):
//
//   parse status of the link + IPv4 header        fed?  result recorded for every engine
//   unsupported link type, truncated link header  no    dropped: malformed (status)
//   not IPv4 (ARP, IPv6, ...)                     no    dropped: not-ipv4 (detail = EtherType)
//   truncated IPv4 header, bad IP version         no    dropped: malformed (status) — no source
//                                                       address to decide the ingress from
//   any other status (bad IHL, bad total length,  yes   the engines decide (malformed, fragment,
//   truncated packet, bad IP checksum, fragment,        INVALID, ...), at the source's ingress
//   L4 problems) and OK
//   source belongs nowhere (ingress.ts)           no    dropped: no-ingress (detail = why)
//
// Link headers are stripped; the IPv4 packet is cut at its total length (Ethernet padding and FCS
// are not part of it). Timestamps drive the clock; a timestamp earlier than the previous one is
// clamped to it and counted.
import { ETHERTYPE_IPV4, linkTypeName } from '../../packet/constants.ts';
import { describePacket } from '../../packet/format.ts';
import {
  PacketView,
  PARSE_BAD_IP_VERSION,
  PARSE_NOT_IPV4,
  PARSE_OK,
  PARSE_STATUS_NAMES,
  PARSE_TRUNCATED_IP_HEADER,
  PARSE_TRUNCATED_L2,
  PARSE_UNSUPPORTED_LINKTYPE,
  parseFrame,
} from '../../packet/parse.ts';
import type { CaptureRecord } from '../../pcap/types.ts';
import { DROP_MALFORMED, DROP_NO_INGRESS, DROP_NOT_IPV4 } from '../../spec/reasons.ts';
import { POINT_INTERNET } from '../../spec/scenario.ts';
import { createFrameBatch, FRAME_ALIGN, type FrameBatch } from '../../spec/frame-batch.ts';
import type { SharedMemoryPool } from '../../spec/shared-memory.ts';
import { INGRESS_NOWHERE, type IngressMap, NOWHERE_WHY } from './ingress.ts';
import { FlowKey, inboundTuple, inboundTupleRaw, outboundTuple } from './remap.ts';

export interface InputCounters {
  /** Records read from the capture. */
  records: number;
  /** Records fed to the engines. */
  fed: number;
  /** Records counted before the engines, by cause ('not-ipv4 (ethertype 0x86dd)', ...). */
  notFed: Record<string, number>;
  /** Records by parse status name (every record). */
  byStatus: Record<string, number>;
  /** Fed records whose source is an instance / the internet. */
  fromInstances: number;
  fromInternet: number;
  /** Fed from the internet addressed to an instance's private address (one-sided capture). */
  toPrivate: number;
  /** Timestamps earlier than their predecessor, clamped. */
  clampedTimestamps: number;
  /** Largest backward step seen, microseconds. */
  maxBackstepUs: number;
  firstTimeUs: number;
  lastTimeUs: number;
  /** The first frames counted before the engines: packet number, what it is, why. */
  notFedExamples: Array<{ input: number; frame: string; why: string }>;
}

/** Examples of not-fed frames kept for the report. */
export const MAX_NOT_FED_EXAMPLES = 10;

export function newInputCounters(): InputCounters {
  return {
    records: 0,
    fed: 0,
    notFed: {},
    byStatus: {},
    fromInstances: 0,
    fromInternet: 0,
    toPrivate: 0,
    clampedTimestamps: 0,
    maxBackstepUs: 0,
    firstTimeUs: -1,
    lastTimeUs: -1,
    notFedExamples: [],
  };
}

function bump(o: Record<string, number>, k: string): void {
  o[k] = (o[k] ?? 0) + 1;
}

export function etherTypeText(t: number): string {
  return `0x${t.toString(16).padStart(4, '0')}`;
}

/** InputChunk.flow: the frame belongs to no flow replay tracks. */
export const FLOW_NONE = 0;
/** Fed at an instance: its flow's public mapping is learned from the engine's output. */
export const FLOW_OUT = 1;
/** Fed from the internet to an instance's private address, with the flow its mapping is looked up under. */
export const FLOW_IN = 2;

/**
 * One chunk of the capture in columns: the fed frames in a FrameBatch (captured bytes, link header
 * stripped, in a SharedArrayBuffer the engines read in place) and, per record, what replay needs
 * to feed and account it. No object per record (the records themselves are kept only when the
 * annotated input capture copies them).
 */
export class InputChunk {
  /** The fed frames; replaced by a larger one when a frame does not fit (rare). */
  batch: FrameBatch;
  /** Arena bytes in use. */
  used = 0;
  /** Records in the chunk. */
  count = 0;
  /** Per record: 1-based input number, clock, ingress (INGRESS_NOWHERE: not fed), parse status. */
  readonly n: Float64Array;
  readonly timeUs: Float64Array;
  readonly ingress: Int32Array;
  readonly status: Int32Array;
  /** Not fed: the DROP_* reason recorded for every engine, and its detail. */
  readonly reason: Int32Array;
  readonly detail: Int32Array;
  /** Index of the record's frame in `batch`, -1 when not fed; and back (batch index -> record). */
  readonly fed: Int32Array;
  readonly record: Int32Array;
  /** FLOW_NONE / FLOW_OUT / FLOW_IN and the flow key (flow-table.ts). */
  readonly flow: Uint8Array;
  readonly kProto: Uint8Array;
  readonly kInside: Int32Array;
  readonly kPorts: Int32Array;
  readonly kRemote: Int32Array;
  /** Fed from the internet to an instance's private address: the instance index, else -1. */
  readonly remap: Int32Array;
  /** Records in the chunk addressed to a private address (one-sided capture). */
  toPrivate = 0;
  /** The records themselves (kept only when asked: the annotated input capture). */
  recs: CaptureRecord[] | null;
  /** Input bytes of the chunk's records (progress). */
  bytes = 0;
  /** Reading stopped in this chunk: the capture's error, or the --limit. */
  readError: string | null = null;
  limited = false;
  /** No records after this chunk. */
  end = false;

  /**
   * The whole SharedArrayBuffer of `batch`: [0, STAGE_BYTES) holds a copy of the reader's current
   * buffer (stage()), the arena follows. Frames are copied from the staged bytes into the arena
   * with copyWithin: a memmove inside one buffer, no view object per frame.
   */
  whole: Uint8Array;
  /**
   * The address of whole[0] in `pool` (-1: whole is a SharedArrayBuffer of its own): frames are
   * then moved with the pool's memmove instead of copyWithin (a relaxed byte copy on shared memory).
   */
  wholeAt = -1;
  /**
   * The address in `pool` of byte 0 of the buffer stage() returned last (-1: not in the pool): a
   * reader buffer in the pool is not staged, its frames are copied from where they lie.
   */
  dataAt = -1;
  /** The reader buffer staged at whole[0, stagedLen) (null: none), and the view stage() gave for it. */
  private staged: Uint8Array | null = null;
  private stagedView: Uint8Array = new Uint8Array(0);

  constructor(
    readonly maxRecords: number,
    arenaBytes: number,
    keepRecords: boolean,
    /** Where the chunk's shared memory is carved from (null: a SharedArrayBuffer of its own). */
    readonly pool: SharedMemoryPool | null = null,
  ) {
    const n = Math.max(1, maxRecords);
    this.whole = new Uint8Array(0);
    this.batch = this.stagedBatch(n, arenaBytes, null);
    this.n = new Float64Array(n);
    this.timeUs = new Float64Array(n);
    this.ingress = new Int32Array(n);
    this.status = new Int32Array(n);
    this.reason = new Int32Array(n);
    this.detail = new Int32Array(n);
    this.fed = new Int32Array(n);
    this.record = new Int32Array(n);
    this.flow = new Uint8Array(n);
    this.kProto = new Uint8Array(n);
    this.kInside = new Int32Array(n);
    this.kPorts = new Int32Array(n);
    this.kRemote = new Int32Array(n);
    this.remap = new Int32Array(n);
    this.recs = keepRecords ? [] : null;
  }

  reset(): void {
    this.used = 0;
    this.count = 0;
    this.batch.count = 0;
    this.toPrivate = 0;
    this.bytes = 0;
    this.readError = null;
    this.limited = false;
    this.end = false;
    this.staged = null;
    this.dataAt = -1;
    if (this.recs) this.recs.length = 0;
  }

  /** Frame j of the batch as a view (cold paths: descriptions, stories). */
  frame(j: number): Uint8Array {
    const b = this.batch;
    return b.arena.subarray(b.off[j], b.off[j] + b.len[j]);
  }

  /** Room for `len` more bytes in the arena (a larger batch, frames copied, when they do not fit). */
  reserve(len: number): number {
    const at = this.used;
    if (at + len <= this.batch.arena.length) return at;
    const old = this.batch;
    let size = old.arena.length * 2;
    while (size < at + len) size *= 2;
    const b = this.stagedBatch(old.maxPackets, size, this.whole);
    b.arena.set(old.arena.subarray(0, at));
    b.off.set(old.off);
    b.len.set(old.len);
    b.ingress.set(old.ingress);
    b.timeUs.set(old.timeUs);
    b.count = old.count;
    this.batch = b;
    return at;
  }

  /**
   * Makes the reader's buffer `buf` the staged one (copied once into whole[0, buf.length)) and
   * returns the view to read records from: `whole` (record offsets unchanged), or `buf` itself
   * when it is larger than the staging room (then frames are copied from it directly).
   */
  stage(buf: Uint8Array): Uint8Array {
    if (buf === this.staged) return this.stagedView;
    this.staged = buf;
    const at = this.wholeAt >= 0 ? this.pool!.addressOf(buf) : -1;
    if (at >= 0 || buf.length > STAGE_BYTES) {
      // In the pool already (the reader reads into it), or too large to stage: read where it is.
      this.dataAt = at;
      this.stagedView = buf;
      return buf;
    }
    this.whole.set(buf, 0);
    this.dataAt = this.wholeAt;
    this.stagedView = this.whole;
    return this.whole;
  }

  /** A FrameBatch whose arena follows STAGE_BYTES of staging room in the same SharedArrayBuffer. */
  private stagedBatch(n: number, arenaBytes: number, keep: Uint8Array | null): FrameBatch {
    const pooled = this.pool?.alloc(STAGE_BYTES + arenaBytes) ?? null;
    const whole = pooled ?? new Uint8Array(new SharedArrayBuffer(STAGE_BYTES + arenaBytes));
    if (keep !== null) whole.set(keep.subarray(0, STAGE_BYTES));
    this.whole = whole;
    this.wholeAt = pooled !== null ? this.pool!.addressOf(pooled) : -1;
    const b = createFrameBatch(n, FRAME_ALIGN);
    return { ...b, arena: new Uint8Array(whole.buffer, whole.byteOffset + STAGE_BYTES, arenaBytes) };
  }
}

/** Staging room before a chunk's arena: a reader buffer (256 KiB, joined ones larger) fits. */
export const STAGE_BYTES = 1 << 20;

/** Turns records into prepared frames, keeping the counters. Not reentrant (one PacketView). */
export class FramePreparer {
  readonly counters = newInputCounters();
  private readonly pv = new PacketView();
  private lastUs = -1;

  private readonly key = new FlowKey();
  /** Records by parse status code (byStatus by name is made from it in first-seen order). */
  private readonly statusCount = new Float64Array(256);
  private readonly statusOrder: number[] = [];
  private readonly statusSeen = new Uint8Array(256);

  constructor(readonly ingress: IngressMap) {}

  /** A deep copy of the counters (restored when the chunks read ahead are not replayed). */
  snapshot(): InputCounters {
    this.foldStatus();
    return structuredClone(this.counters);
  }

  restore(c: InputCounters): void {
    Object.assign(this.counters, structuredClone(c));
    this.statusCount.fill(0);
    this.statusSeen.fill(0);
    this.statusOrder.length = 0;
  }

  private countStatus(st: number): void {
    const code = st & 255;
    this.statusCount[code]++;
    if (this.statusSeen[code] === 0) {
      this.statusSeen[code] = 1;
      this.statusOrder.push(code);
    }
  }

  /** Moves the per-code status counts into counters.byStatus (by name, first seen first). */
  foldStatus(): InputCounters {
    const by = this.counters.byStatus;
    for (const code of this.statusOrder) {
      const n = this.statusCount[code];
      if (n === 0) continue;
      const name = PARSE_STATUS_NAMES[code] ?? `status-${code}`;
      by[name] = (by[name] ?? 0) + n;
      this.statusCount[code] = 0;
    }
    return this.counters;
  }

  /**
   * One record (as an object: the annotated input capture keeps it) into the columns of `chunk`:
   * the decisions and counters of prepareAt, the fed frame copied once into the chunk's arena,
   * flow keys as numbers.
   */
  prepareInto(rec: CaptureRecord, chunk: InputChunk): void {
    chunk.recs?.push(rec);
    chunk.dataAt = -1;
    this.prepareAt(chunk, rec.index, rec.timeUs, rec.linkType, rec.data, 0, rec.data.length);
  }

  /** prepareInto for a record where it lies: buf[off, off + capLen) (RecordSink, no record object). */
  prepareAt(
    chunk: InputChunk,
    index: number,
    timeUs: number,
    linkType: number,
    buf: Uint8Array,
    off: number,
    capLen: number,
  ): void {
    const c = this.counters;
    const k = chunk.count++;
    c.records++;
    let t = timeUs;
    if (this.lastUs >= 0 && t < this.lastUs) {
      c.clampedTimestamps++;
      c.maxBackstepUs = Math.max(c.maxBackstepUs, this.lastUs - t);
      t = this.lastUs;
    }
    this.lastUs = t;
    if (c.firstTimeUs < 0) c.firstTimeUs = t;
    c.lastTimeUs = t;
    const pv = this.pv;
    const data = buf;
    const st = parseFrame(data, off, capLen, linkType, pv);
    this.countStatus(st);
    chunk.n[k] = index + 1;
    chunk.timeUs[k] = t;
    chunk.ingress[k] = INGRESS_NOWHERE;
    chunk.status[k] = st;
    chunk.reason[k] = 0;
    chunk.detail[k] = 0;
    chunk.fed[k] = -1;
    chunk.flow[k] = FLOW_NONE;
    chunk.remap[k] = -1;
    if (
      st === PARSE_UNSUPPORTED_LINKTYPE ||
      st === PARSE_TRUNCATED_L2 ||
      st === PARSE_TRUNCATED_IP_HEADER ||
      st === PARSE_BAD_IP_VERSION
    ) {
      chunk.reason[k] = DROP_MALFORMED;
      chunk.detail[k] = st;
      this.notFedAt(index + 1, `malformed: ${PARSE_STATUS_NAMES[st]}`, `${capLen} bytes (${linkTypeName(linkType)})`);
      return;
    }
    if (st === PARSE_NOT_IPV4 || pv.etherType !== ETHERTYPE_IPV4) {
      chunk.reason[k] = DROP_NOT_IPV4;
      chunk.detail[k] = pv.etherType;
      this.notFedAt(
        index + 1,
        `not-ipv4 (ethertype ${etherTypeText(pv.etherType)})`,
        `${capLen} bytes (${linkTypeName(linkType)})`,
      );
      return;
    }
    const ingress = this.ingress.classify(pv.src);
    if (ingress === INGRESS_NOWHERE) {
      chunk.reason[k] = DROP_NO_INGRESS;
      chunk.detail[k] = this.ingress.lastWhy;
      this.notFedAt(
        index + 1,
        `no-ingress: ${NOWHERE_WHY[this.ingress.lastWhy]}`,
        c.notFedExamples.length < MAX_NOT_FED_EXAMPLES ? describePacket(data, pv.l3Off, pv.capLen) : '',
      );
      return;
    }
    chunk.ingress[k] = ingress;
    // The one copy of the frame: into the chunk's shared arena, aligned.
    const len = pv.capLen;
    const at = chunk.reserve(len);
    const b = chunk.batch;
    const arena = b.arena;
    const from = pv.l3Off;
    const da = chunk.dataAt;
    if (da >= 0) chunk.pool!.copy(chunk.wholeAt + STAGE_BYTES + at, da + from, len);
    else if (data === chunk.whole) chunk.whole.copyWithin(STAGE_BYTES + at, from, from + len);
    else if (len <= 64) for (let x = 0; x < len; x++) arena[at + x] = data[from + x];
    else arena.set(data.subarray(from, from + len), at);
    const j = b.count++;
    b.off[j] = at;
    b.len[j] = len;
    b.ingress[j] = ingress;
    b.timeUs[j] = t;
    chunk.used = (at + len + FRAME_ALIGN - 1) & ~(FRAME_ALIGN - 1);
    chunk.fed[k] = j;
    chunk.record[j] = k;
    c.fed++;
    const key = this.key;
    if (ingress === POINT_INTERNET) {
      c.fromInternet++;
      const owner = this.ingress.privateOwner(pv.dst);
      if (owner >= 0) {
        c.toPrivate++;
        chunk.toPrivate++;
        chunk.remap[k] = owner;
        if (st === PARSE_OK ? inboundTuple(pv, key) : inboundTupleRaw(arena, at, len, key)) {
          chunk.flow[k] = FLOW_IN;
          this.keyInto(chunk, k);
        }
      }
    } else {
      c.fromInstances++;
      if (outboundTuple(pv, key)) {
        chunk.flow[k] = FLOW_OUT;
        this.keyInto(chunk, k);
      }
    }
  }

  private keyInto(chunk: InputChunk, k: number): void {
    const key = this.key;
    chunk.kProto[k] = key.proto;
    chunk.kInside[k] = key.inside;
    chunk.kPorts[k] = key.ports;
    chunk.kRemote[k] = key.remote;
  }

  private notFedAt(n: number, why: string, frame: string): void {
    const c = this.counters;
    bump(c.notFed, why);
    if (c.notFedExamples.length < MAX_NOT_FED_EXAMPLES) c.notFedExamples.push({ input: n, frame, why });
  }
}
