// Classic pcap writer (little-endian, version 2.4), microsecond or nanosecond timestamps, any
// link type natlab reads (Ethernet and raw IP are the usual ones). Streams to a file through a
// 64 KiB staging buffer; `write` waits for the file stream to drain when it is behind
// (backpressure). `encodePcap` does the same into memory for tests and small outputs.
import { createWriteStream, type WriteStream } from 'node:fs';
import { isSupportedLinkType, linkTypeName } from '../packet/constants.ts';
import { InputError } from '../spec/errors.ts';
import { MAX_CAPLEN } from './base-reader.ts';
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

const STAGE = 64 * 1024;

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
  private stage = Buffer.allocUnsafe(STAGE);
  private fill = 0;
  private error: Error | null = null;
  private closed = false;
  private drain: Promise<void> | null = null;

  private constructor(
    readonly path: string,
    private ws: WriteStream,
    private o: Required<PcapWriteOptions>,
  ) {
    ws.on('error', (e) => {
      this.error ??= e;
    });
    writeFileHeader(this.stage, 0, o);
    this.fill = PCAP_HDR_LEN;
  }

  static async open(path: string, opts: PcapWriteOptions): Promise<PcapWriter> {
    const o = checkOptions(opts);
    const ws = createWriteStream(path);
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why =
        err.code === 'ENOENT'
          ? 'no such directory'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.code === 'EISDIR'
              ? 'is a directory'
              : err.message;
      throw new InputError(`${path}: cannot create: ${why}`, path);
    }
    return new PcapWriter(path, ws, o);
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
    if (this.error) throw this.error;
    if (this.closed) throw new Error(`pcap writer: ${this.path} is closed`);
    const need = PCAP_REC_HDR_LEN + capLenOf(r, this.o);
    if (this.fill + need > this.stage.length) this.handOff(need);
    this.fill += writeRecord(this.stage, this.fill, r, this.o, this.count);
    this.count++;
    this.bytes += need;
  }

  /** Resolves at once unless the file stream is behind (then on 'drain'): backpressure for writeSync. */
  drained(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    return this.ws.writableNeedDrain ? this.waitDrain() : RESOLVED;
  }

  /** Hands the staged bytes to the file stream and starts a fresh staging buffer. */
  private handOff(nextNeed: number): void {
    if (this.fill > 0) {
      this.ws.write(this.stage.subarray(0, this.fill));
      this.stage = Buffer.allocUnsafe(Math.max(STAGE, nextNeed));
      this.fill = 0;
    } else if (this.stage.length < nextNeed) {
      this.stage = Buffer.allocUnsafe(nextNeed);
    }
  }

  private waitDrain(): Promise<void> {
    this.drain ??= new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.ws.off('drain', onDrain);
        this.ws.off('error', onErr);
        this.drain = null;
        if (e) reject(e);
        else resolve();
      };
      const onDrain = () => done();
      const onErr = (e: Error) => done(e);
      this.ws.once('drain', onDrain);
      this.ws.once('error', onErr);
    });
    return this.drain;
  }

  /** Flushes and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handOff(0);
    await new Promise<void>((resolve, reject) => {
      this.ws.end((e?: Error | null) => (e ? reject(e) : resolve()));
    });
    if (this.error) throw this.error;
  }
}

const RESOLVED = Promise.resolve();
