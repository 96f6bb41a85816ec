// Classic pcap writer (little-endian, version 2.4), microsecond or nanosecond timestamps, any
// link type natlab reads (Ethernet and raw IP are the usual ones). Streams to a file through a
// 256 KiB staging buffer; `write` waits for the file stream to drain when it is behind
// (backpressure). `encodePcap` does the same into memory for tests and small outputs.
import { isSupportedLinkType, linkTypeName } from '../packet/constants.ts';
import { MAX_CAPLEN } from './base-reader.ts';
import type { SharedMemoryPool } from '../spec/shared-memory.ts';
import { StagedFile } from './staged-file.ts';
import { PCAP_HDR_LEN, PCAP_MAGIC_NS, PCAP_MAGIC_US, PCAP_REC_HDR_LEN } from './read-pcap.ts';

export interface PcapWriteOptions {
  /** LINKTYPE_* of every record (1 Ethernet, 101 raw IP, 228 IPv4, 113/276 Linux cooked, 0 BSD loopback). */
  linkType: number;
  /** Nanosecond timestamps (magic a1b23c4d); default microseconds. */
  nanosecond?: boolean;
  /** Snapshot length in the file header; longer records are cut to it (default 262144). */
  snapLen?: number;
}

export interface PcapWriteRecord {
  tsSec: number;
  /** 0..999_999_999; written as microseconds (floored) unless the file is nanosecond. */
  tsNsec: number;
  data: Uint8Array;
  /** Original length on the wire; default data.length. */
  origLen?: number;
}

function put32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

function checkOptions(o: PcapWriteOptions): Required<PcapWriteOptions> {
  if (!Number.isInteger(o.linkType) || !isSupportedLinkType(o.linkType)) {
    throw new RangeError(`pcap writer: link type ${o.linkType} (${linkTypeName(o.linkType)}) is not supported`);
  }
  const snapLen = o.snapLen ?? MAX_CAPLEN;
  if (!Number.isInteger(snapLen) || snapLen < 1 || snapLen > MAX_CAPLEN) {
    throw new RangeError(`pcap writer: snapLen ${snapLen} is outside 1..${MAX_CAPLEN}`);
  }
  return { linkType: o.linkType, nanosecond: o.nanosecond ?? false, snapLen };
}

function writeFileHeader(b: Buffer, off: number, o: Required<PcapWriteOptions>): void {
  b.writeUInt32LE(o.nanosecond ? PCAP_MAGIC_NS : PCAP_MAGIC_US, off);
  b.writeUInt16LE(2, off + 4);
  b.writeUInt16LE(4, off + 6);
  b.writeInt32LE(0, off + 8); // thiszone
  b.writeUInt32LE(0, off + 12); // sigfigs
  b.writeUInt32LE(o.snapLen, off + 16);
  b.writeUInt32LE(o.linkType, off + 20);
}

/** Captured length of a record after the snapshot length is applied. */
function capLenOf(r: PcapWriteRecord, o: Required<PcapWriteOptions>): number {
  return Math.min(r.data.length, o.snapLen);
}

/** Writes one record (header + data) at b[off]; returns the bytes written. */
function writeRecord(b: Buffer, off: number, r: PcapWriteRecord, o: Required<PcapWriteOptions>, n: number): number {
  const { tsSec, tsNsec } = r;
  if (!Number.isInteger(tsSec) || tsSec < 0 || tsSec > 0xffffffff) {
    throw new RangeError(`pcap writer: record ${n}: tsSec ${tsSec} is outside 0..2^32-1 (classic pcap limit)`);
  }
  if (!Number.isInteger(tsNsec) || tsNsec < 0 || tsNsec > 999_999_999) {
    throw new RangeError(`pcap writer: record ${n}: tsNsec ${tsNsec} is outside 0..999999999`);
  }
  const cap = capLenOf(r, o);
  const orig = r.origLen ?? r.data.length;
  if (!Number.isInteger(orig) || orig < r.data.length || orig > 0xffffffff) {
    throw new RangeError(
      `pcap writer: record ${n}: origLen ${orig} is less than the data length ${r.data.length} or not a uint32`,
    );
  }
  b.writeUInt32LE(tsSec, off);
  b.writeUInt32LE(o.nanosecond ? tsNsec : Math.floor(tsNsec / 1000), off + 4);
  b.writeUInt32LE(cap, off + 8);
  b.writeUInt32LE(orig, off + 12);
  b.set(cap === r.data.length ? r.data : r.data.subarray(0, cap), off + PCAP_REC_HDR_LEN);
  return PCAP_REC_HDR_LEN + cap;
}

/** A whole pcap file in memory. */
export function encodePcap(records: Iterable<PcapWriteRecord>, opts: PcapWriteOptions): Uint8Array {
  const o = checkOptions(opts);
  const list = [...records];
  let size = PCAP_HDR_LEN;
  for (const r of list) size += PCAP_REC_HDR_LEN + capLenOf(r, o);
  const b = Buffer.alloc(size);
  writeFileHeader(b, 0, o);
  let off = PCAP_HDR_LEN;
  list.forEach((r, i) => {
    off += writeRecord(b, off, r, o, i);
  });
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * Streams records to a pcap file. Records are staged in order synchronously, so the file keeps
 * the order of `write` calls even if the caller does not await them; awaiting `write` is what
 * applies backpressure (it resolves once the file stream has drained when it was behind).
 */
export class PcapWriter {
  /** Records written so far. */
  count = 0;
  /** Bytes written so far (header included). */
  bytes = PCAP_HDR_LEN;

  private constructor(
    private readonly file: StagedFile,
    private readonly o: Required<PcapWriteOptions>,
  ) {
    writeFileHeader(file.reserve(PCAP_HDR_LEN), file.offset, o);
    file.commit(PCAP_HDR_LEN);
  }

  get path(): string {
    return this.file.path;
  }

  /**
   * With a shared memory pool, the staging buffers are regions of it: writeFrameUs copies frames
   * that lie in the pool with its memmove (spec/shared-memory.ts).
   */
  static async open(path: string, opts: PcapWriteOptions, pool: SharedMemoryPool | null = null): Promise<PcapWriter> {
    const o = checkOptions(opts);
    return new PcapWriter(await StagedFile.open(path, 'pcap writer', pool), o);
  }

  /** Appends one record. Resolves at once unless the file stream is behind, then on 'drain'. */
  write(r: PcapWriteRecord): Promise<void> {
    try {
      this.writeSync(r);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.drained();
  }

  /**
   * Appends one record without a promise (bulk writers: many records, then one `await drained()`);
   * throws what write() would reject with.
   */
  writeSync(r: PcapWriteRecord): void {
    const need = PCAP_REC_HDR_LEN + capLenOf(r, this.o);
    const buf = this.file.reserve(need);
    this.file.commit(writeRecord(buf, this.file.offset, r, this.o, this.count));
    this.count++;
    this.bytes += need;
  }

  /**
   * The bulk writers' record: timestamp `timesUs[k]` (µs, any 64-bit capture time; seconds beyond
   * classic pcap's 32 bits are clamped to its last second, and the call returns 1 — else 0), data
   * `prefix` then src[off, off + len). No argument is a fractional or large number (read from the
   * column here): V8 would box each such argument of a call it does not inline.
   */
  writeFrameUs(
    timesUs: Float64Array,
    k: number,
    prefix: Uint8Array,
    src: Uint8Array,
    off: number,
    len: number,
    /** The address of src[0] in the staging buffers' pool, when the caller knows it (-1: look it up). */
    srcAt = -1,
  ): number {
    const o = this.o;
    const timeUs = timesUs[k];
    let tsSec = Math.floor(timeUs / 1e6);
    let frac = timeUs - tsSec * 1e6; // µs
    let clamped = 0;
    if (tsSec > 0xffffffff) {
      tsSec = 0xffffffff;
      frac = 999_999;
      clamped = 1;
    }
    if (!(tsSec >= 0)) throw new RangeError(`pcap writer: record ${this.count}: time ${timeUs} µs is before 1970`);
    const pl = prefix.length;
    const total = pl + len;
    const cap = Math.min(total, o.snapLen);
    const need = PCAP_REC_HDR_LEN + cap;
    const b = this.file.reserve(need);
    const at = this.file.offset;
    put32le(b, at, tsSec);
    put32le(b, at + 4, o.nanosecond ? frac * 1000 : frac);
    put32le(b, at + 8, cap);
    put32le(b, at + 12, total);
    const p = Math.min(pl, cap);
    let to = at + PCAP_REC_HDR_LEN;
    for (let x = 0; x < p; x++) b[to++] = prefix[x];
    const rest = cap - p;
    const file = this.file;
    // Frames in the pool (an engine's output arena) to a pooled staging buffer: one memmove.
    const sa = file.bufAt < 0 ? -1 : srcAt >= 0 ? srcAt : file.pool!.addressOf(src);
    if (sa >= 0) file.pool!.copy(file.bufAt + to, sa + off, rest);
    else if (rest <= 96) for (let x = 0; x < rest; x++) b[to + x] = src[off + x];
    else b.set(src.subarray(off, off + rest), to);
    this.file.commit(need);
    this.count++;
    this.bytes += need;
    return clamped;
  }

  /** Resolves at once unless the file stream is behind (then on 'drain'): backpressure for writeSync. */
  drained(): Promise<void> {
    return this.file.drained();
  }

  /** Flushes and closes the file. Idempotent. */
  close(): Promise<void> {
    return this.file.close();
  }
}
