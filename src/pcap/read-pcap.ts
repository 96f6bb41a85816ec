// Classic pcap (libpcap format 2.0-2.4), microsecond or nanosecond, either byte order.
//
// The 24-byte file header is checked here (version, link type and its reserved bits). Records
// are decoded by one of two decoders that share every check (captured length against 256 KiB
// and the snapshot length, truncated final record, invalid timestamps):
// - native (default): straight from the pull-based byte source, zero copy;
// - pcap-parser: the npm package, driven as a pull source. It is several times slower (it
//   builds its method names by string concatenation for every field, emits three events and
//   makes three Buffer slices per record) and lacks the nanosecond magic and the checks, so it
//   is kept as a second implementation that the tests compare the native decoder against.
import { EventEmitter } from 'node:events';
import pcapParser from 'pcap-parser';
import type { PcapPacketHeader } from 'pcap-parser';
import { isSupportedLinkType, linkTypeName } from '../packet/constants.ts';
import { BaseReader, MAX_CAPLEN, inputError, makeRecord } from './base-reader.ts';
import type { ByteSource } from './byte-source.ts';
import type { CaptureInfo, OpenOptions, RecordSink } from './types.ts';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAP_HDR_LEN = 24;
export const PCAP_REC_HDR_LEN = 16;
/** Link-type field: bits 16-25 reserved (must be 0); bit 26: FCS length present; bits 28-31: FCS length in 16-bit words. */
const LT_RESERVED_MASK = 0x03ff0000;
const LT_FCS_PRESENT = 0x04000000;

/** Names the link types natlab reads, for error messages. */
export const SUPPORTED_LINKTYPES_TEXT =
  'natlab reads NULL (0), EN10MB (1), RAW (101, 12, 14), LINUX_SLL (113), IPV4 (228), LINUX_SLL2 (276)';

export function unsupportedLinkType(file: string, where: string, lt: number): Error {
  return inputError(file, where, `link type ${lt} (${linkTypeName(lt)}) is not supported; ${SUPPORTED_LINKTYPES_TEXT}`);
}

/** Feeds pcap-parser: an EventEmitter that looks enough like a paused readable stream. */
class Feed extends EventEmitter {
  pause(): void {}
  resume(): void {}
}

export class PcapReader extends BaseReader {
  private feed: Feed | null = null;
  private fed = 0; // bytes given to pcap-parser, file offsets (the normalised header replaces the real one)
  private consumed = PCAP_HDR_LEN; // file offset of the next record
  private headerPending: PcapPacketHeader | null = null;
  private fatal: Error | null = null;
  private eofSeen = false;
  private readonly le: boolean;
  private readonly nano: boolean;
  private readonly swapLengths: boolean;

  private constructor(
    path: string,
    info: CaptureInfo,
    private src: ByteSource,
    private opts: OpenOptions,
    nano: boolean,
    minor: number,
  ) {
    super(path, info);
    this.le = info.byteOrder === 'LE';
    this.nano = nano;
    // libpcap: files before 2.3 may have caplen and len swapped.
    this.swapLengths = minor < 3;
  }

  /** Reads and checks the file header; `hdr` holds its first 24 bytes. */
  static create(path: string, src: ByteSource, hdr: Buffer, opts: OpenOptions): PcapReader {
    const m = hdr.readUInt32LE(0);
    const le = m === PCAP_MAGIC_US || m === PCAP_MAGIC_NS;
    const rd32 = (o: number) => (le ? hdr.readUInt32LE(o) : hdr.readUInt32BE(o));
    const rd16 = (o: number) => (le ? hdr.readUInt16LE(o) : hdr.readUInt16BE(o));
    const nano = rd32(0) === PCAP_MAGIC_NS;
    const major = rd16(4);
    const minor = rd16(6);
    if (major !== 2 || minor > 4) {
      throw inputError(
        path,
        'file header',
        `unsupported pcap version ${major}.${minor} (natlab reads 2.0-2.4, as libpcap does)`,
      );
    }
    const snapLen = rd32(16);
    const ltField = rd32(20);
    if ((ltField & LT_RESERVED_MASK) !== 0) {
      throw inputError(
        path,
        'file header',
        `link-type field 0x${ltField.toString(16).padStart(8, '0')} has reserved bits 16-25 set (0x${((ltField & LT_RESERVED_MASK) >>> 0).toString(16)})`,
      );
    }
    const lt = ltField & 0xffff;
    if (!isSupportedLinkType(lt)) throw unsupportedLinkType(path, 'file header', lt);
    const fcsLen = ltField & LT_FCS_PRESENT ? ((ltField >>> 28) & 0xf) * 2 : 0;
    const res = nano ? 'ns' : 'us';
    const info: CaptureInfo = {
      format: 'pcap',
      byteOrder: le ? 'LE' : 'BE',
      version: `${major}.${minor}`,
      linkType: lt,
      linkTypes: [lt],
      linkTypeNames: [linkTypeName(lt)],
      tsResolution: res,
      snapLen,
      interfaces: [{ linkType: lt, linkTypeName: linkTypeName(lt), snapLen, tsResolution: res, name: '', fcsLen }],
      sections: 1,
      skippedBlocks: 0,
    };
    const r = new PcapReader(path, info, src, opts, nano, minor);
    if (opts.parser === 'pcap-parser') r.startPcapParser(hdr);
    return r;
  }

  protected pump(): Promise<boolean> {
    return this.feed ? this.pumpPcapParser() : this.pumpNative();
  }

  // ---- checks shared by both record decoders -----------------------------------------------

  /** Checks a record header at file offset `at`; throws (or sets `fatal`) for fatal problems. */
  private checkRecord(index: number, at: number, cap: number, orig: number): Error | null {
    if (cap > MAX_CAPLEN) {
      return inputError(
        this.path,
        `record ${index} (offset ${at})`,
        `captured length ${cap} exceeds the ${MAX_CAPLEN}-byte maximum (damaged or fuzzed file)`,
      );
    }
    const snap = this.info.snapLen;
    if (snap > 0 && cap > snap) {
      const msg = `captured length ${cap} exceeds the snapshot length ${snap} of the file header`;
      if (this.opts.strictSnapLen) return inputError(this.path, `record ${index} (offset ${at})`, msg);
      this.warn(
        'caplen-over-snaplen',
        `record ${index} (offset ${at}): ${msg} (record kept, as Wireshark does; libpcap would cut it to ${snap} bytes)`,
      );
    }
    if (cap > orig) {
      this.warn(
        'caplen-over-len',
        `record ${index} (offset ${at}): captured length ${cap} exceeds the original length ${orig}`,
      );
    }
    return null;
  }

  private emitRecord(
    index: number,
    sec: number,
    frac: number,
    orig: number,
    buf: Uint8Array,
    off: number,
    len: number,
    sink: RecordSink | null = null,
  ): void {
    const unit = this.nano ? 1e9 : 1e6;
    if (frac >= unit) {
      this.warn(
        'invalid-timestamp',
        `record ${index}: invalid timestamp: ${this.nano ? 'nanoseconds' : 'microseconds'} field ${frac} >= ${unit} (carried into the seconds)`,
      );
      sec += Math.floor(frac / unit);
      frac %= unit;
    }
    const nsec = this.nano ? frac : frac * 1000;
    if (sink !== null)
      sink.record(index, sec, nsec, sec * 1e6 + Math.floor(nsec / 1000), this.info.linkType, buf, off, len, orig);
    else this.push(makeRecord(index, sec, nsec, this.info.linkType, buf.subarray(off, off + len), orig));
  }

  private truncatedHeader(index: number, at: number, have: number): void {
    this.warn(
      'truncated-record',
      `record ${index} (offset ${at}): truncated final record header: ${have} of ${PCAP_REC_HDR_LEN} bytes at the end of the file`,
    );
  }

  private truncatedBody(index: number, at: number, want: number, have: number): void {
    this.warn(
      'truncated-record',
      `record ${index} (offset ${at}): truncated final record: header says ${want} bytes captured, the file ends after ${have} (record not delivered)`,
    );
  }

  // ---- native decoder: records straight from the byte source ----------------------------------

  /**
   * Bulk: records straight into `sink` (native decoder only; otherwise through the queue). The
   * deferred-error rules of next(): records before a fatal error are delivered first.
   */
  override async readInto(sink: RecordSink, max: number): Promise<number> {
    if (this.feed || this.qHead < this.q.length || this.pending !== null || this.finished || max < 1)
      return super.readInto(sink, max);
    let n = 0;
    const before = this.count;
    try {
      await this.pumpNative(sink, max, (k) => {
        n = k;
      });
    } catch (e) {
      this.count = before + n;
      if (n > 0) {
        this.pending = e;
        return n;
      }
      this.finished = true;
      await this.close();
      throw e;
    }
    this.count = before + n;
    if (n === 0) {
      this.finished = true;
      await this.close();
    }
    return n;
  }

  /**
   * Decodes what the buffer holds; reads more of the file only when no record is out yet (so the
   * file is read as fast as the consumer takes records, never further ahead than the read-ahead).
   * Records go to the queue, or with a sink straight to it (at most `max`, counted in `progress`).
   */
  private async pumpNative(
    sink: RecordSink | null = null,
    max = Number.POSITIVE_INFINITY,
    progress: ((n: number) => void) | null = null,
  ): Promise<boolean> {
    const src = this.src;
    const le = this.le;
    const base = this.count; // q is empty when pump is called
    let out = 0;
    for (;;) {
      if (out >= max) break;
      if (src.end - src.pos < PCAP_REC_HDR_LEN && (out > 0 || !(await src.need(PCAP_REC_HDR_LEN)))) {
        if (out > 0) break;
        if (src.avail > 0) this.truncatedHeader(base + out, src.offset, src.avail);
        src.consume(src.avail);
        this.eofSeen = true;
        break;
      }
      let b = src.buf;
      let p = src.pos;
      const sec = le ? b.readUInt32LE(p) : b.readUInt32BE(p);
      const frac = le ? b.readUInt32LE(p + 4) : b.readUInt32BE(p + 4);
      let cap = le ? b.readUInt32LE(p + 8) : b.readUInt32BE(p + 8);
      let orig = le ? b.readUInt32LE(p + 12) : b.readUInt32BE(p + 12);
      if (this.swapLengths && cap > orig) {
        const t = cap;
        cap = orig;
        orig = t;
      }
      const index = base + out;
      if (cap > MAX_CAPLEN) throw this.checkRecord(index, src.offset, cap, orig)!;
      const need = PCAP_REC_HDR_LEN + cap;
      if (src.end - p < need) {
        if (out > 0) break; // the header is decoded again on the next pump
        if (!(await src.need(need))) {
          const e = this.checkRecord(index, src.offset, cap, orig);
          if (e) throw e;
          this.truncatedBody(index, src.offset, cap, src.avail - PCAP_REC_HDR_LEN);
          src.consume(src.avail);
          this.eofSeen = true;
          break;
        }
      }
      if (cap > this.info.snapLen || cap > orig) {
        const e = this.checkRecord(index, src.offset, cap, orig);
        if (e) throw e;
      }
      b = src.buf;
      p = src.pos;
      src.consume(need);
      this.emitRecord(index, sec, frac, orig, b, p + PCAP_REC_HDR_LEN, cap, sink);
      out++;
      progress?.(out);
    }
    return out > 0;
  }

  // ---- pcap-parser decoder ---------------------------------------------------------------------
  //
  // pcap-parser is driven as a pull source: it gets a normalised header (microsecond magic in the
  // file's byte order, version 2.4 — it rejects the nanosecond magic) and then the file's records,
  // one chunk at a time and only when the consumer wants more records. It decodes the record
  // headers and slices the data; the checks it lacks are made on its events.

  private startPcapParser(hdr: Buffer): void {
    const feed = (this.feed = new Feed());
    const parser = pcapParser.parse(feed);
    parser.on('packetHeader', (h) => this.onHeader(h));
    parser.on('packet', (p) => this.onPacket(p.header, p.data));
    parser.on('error', (e) => {
      this.fatal ??= inputError(this.path, '', e.message);
    });
    const norm = Buffer.from(hdr.subarray(0, PCAP_HDR_LEN));
    if (this.le) {
      norm.writeUInt32LE(PCAP_MAGIC_US, 0);
      norm.writeUInt16LE(2, 4);
      norm.writeUInt16LE(4, 6);
    } else {
      norm.writeUInt32BE(PCAP_MAGIC_US, 0);
      norm.writeUInt16BE(2, 4);
      norm.writeUInt16BE(4, 6);
    }
    this.fed = PCAP_HDR_LEN;
    feed.emit('data', norm);
  }

  private onHeader(h: PcapPacketHeader): void {
    if (this.fatal) return;
    if (this.swapLengths && h.capturedLength > h.originalLength) {
      // pcap-parser slices the body with this same object's capturedLength.
      const t = h.capturedLength;
      h.capturedLength = h.originalLength;
      h.originalLength = t;
    }
    const index = this.count + this.q.length - this.qHead;
    this.fatal = this.checkRecord(index, this.consumed, h.capturedLength, h.originalLength);
    if (!this.fatal) this.headerPending = h;
  }

  private onPacket(h: PcapPacketHeader, data: Buffer): void {
    if (this.fatal) return;
    const index = this.count + this.q.length - this.qHead;
    this.headerPending = null;
    this.consumed += PCAP_REC_HDR_LEN + data.length;
    this.emitRecord(index, h.timestampSeconds, h.timestampMicroseconds, h.originalLength, data, 0, data.length);
  }

  private async pumpPcapParser(): Promise<boolean> {
    const src = this.src;
    const feed = this.feed!;
    while (this.q.length === 0) {
      if (this.fatal) throw this.fatal;
      if (this.eofSeen) return false;
      // Read whatever the source has (at least one byte unless at EOF) and feed it.
      if (!(await src.need(1))) {
        this.eofSeen = true;
        this.atEof();
        continue;
      }
      const chunk = src.buf.subarray(src.pos, src.end);
      src.consume(chunk.length);
      this.fed += chunk.length;
      feed.emit('data', chunk);
    }
    if (this.fatal && this.q.length === 0) throw this.fatal;
    return true;
  }

  private atEof(): void {
    const left = this.fed - this.consumed;
    if (left <= 0 || this.fatal) return;
    const index = this.count + this.q.length - this.qHead;
    if (this.headerPending)
      this.truncatedBody(index, this.consumed, this.headerPending.capturedLength, left - PCAP_REC_HDR_LEN);
    else this.truncatedHeader(index, this.consumed, left);
  }

  get fileSize(): number {
    return this.src.size;
  }
  get bytesRead(): number {
    return this.src.bytesRead;
  }

  protected async release(): Promise<void> {
    this.feed?.removeAllListeners();
    await this.src.close();
  }
}
