// Classic pcap (libpcap format 2.4), microsecond or nanosecond, either byte order.
//
// Records are parsed by pcap-parser, driven as a pull source: we validate the 24-byte file header
// ourselves (pcap-parser accepts any 2.x version and any link type, and rejects the nanosecond
// magic), then feed it a normalised header (microsecond magic in the file's byte order, version
// 2.4) followed by the file's records, one chunk at a time and only when the consumer wants more
// records. pcap-parser decodes the record headers and slices the data; the checks it lacks
// (captured-length limits, truncated final record, invalid timestamps) are done on its events.
import { EventEmitter } from 'node:events';
import pcapParser from 'pcap-parser';
import type { PcapPacketHeader } from 'pcap-parser';
import { isSupportedLinkType, linkTypeName } from '../packet/constants.ts';
import { BaseReader, MAX_CAPLEN, inputError, makeRecord } from './base-reader.ts';
import { ByteSource } from './byte-source.ts';
import type { CaptureInfo, OpenOptions } from './types.ts';

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
  private feed = new Feed();
  private fed = 0; // bytes given to pcap-parser, file offsets (the normalised header replaces the real one)
  private consumed = PCAP_HDR_LEN;
  private headerPending: PcapPacketHeader | null = null;
  private fatal: Error | null = null;
  private eofSeen = false;
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
    this.nano = nano;
    // libpcap: files before 2.3 may have caplen and len swapped.
    this.swapLengths = minor < 3;
    const parser = pcapParser.parse(this.feed);
    parser.on('packetHeader', (h) => this.onHeader(h));
    parser.on('packet', (p) => this.onPacket(p.header, p.data));
    parser.on('error', (e) => {
      this.fatal ??= inputError(path, '', e.message);
    });
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
      throw inputError(path, 'file header', `unsupported pcap version ${major}.${minor} (natlab reads 2.0-2.4, as libpcap does)`);
    }
    const snapLen = rd32(16);
    const ltField = rd32(20);
    if ((ltField & LT_RESERVED_MASK) !== 0) {
      throw inputError(path, 'file header',
        `link-type field 0x${ltField.toString(16).padStart(8, '0')} has reserved bits 16-25 set (0x${((ltField & LT_RESERVED_MASK) >>> 0).toString(16)})`);
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
    // The normalised header pcap-parser understands: microsecond magic, version 2.4.
    const norm = Buffer.from(hdr.subarray(0, PCAP_HDR_LEN));
    if (le) {
      norm.writeUInt32LE(PCAP_MAGIC_US, 0);
      norm.writeUInt16LE(2, 4);
      norm.writeUInt16LE(4, 6);
    } else {
      norm.writeUInt32BE(PCAP_MAGIC_US, 0);
      norm.writeUInt16BE(2, 4);
      norm.writeUInt16BE(4, 6);
    }
    r.fed = PCAP_HDR_LEN;
    r.feed.emit('data', norm);
    return r;
  }

  private onHeader(h: PcapPacketHeader): void {
    if (this.fatal) return;
    const index = this.count + this.q.length - this.qHead;
    if (this.swapLengths && h.capturedLength > h.originalLength) {
      const t = h.capturedLength;
      h.capturedLength = h.originalLength;
      h.originalLength = t;
    }
    const cap = h.capturedLength;
    const where = `record ${index} (offset ${this.consumed})`;
    if (cap > MAX_CAPLEN) {
      this.fatal = inputError(this.path, where, `captured length ${cap} exceeds the ${MAX_CAPLEN}-byte maximum (damaged or fuzzed file)`);
      return;
    }
    const snap = this.info.snapLen;
    if (snap > 0 && cap > snap) {
      const msg = `captured length ${cap} exceeds the snapshot length ${snap} of the file header`;
      if (this.opts.strictSnapLen) {
        this.fatal = inputError(this.path, where, msg);
        return;
      }
      this.warn('caplen-over-snaplen', `${where}: ${msg} (record kept, as Wireshark does; libpcap would cut it to ${snap} bytes)`);
    }
    if (cap > h.originalLength) {
      this.warn('caplen-over-len', `${where}: captured length ${cap} exceeds the original length ${h.originalLength}`);
    }
    this.headerPending = h;
  }

  private onPacket(h: PcapPacketHeader, data: Buffer): void {
    if (this.fatal) return;
    const index = this.count + this.q.length - this.qHead;
    this.headerPending = null;
    this.consumed += PCAP_REC_HDR_LEN + data.length;
    let sec = h.timestampSeconds;
    let frac = h.timestampMicroseconds;
    const unit = this.nano ? 1e9 : 1e6;
    if (frac >= unit) {
      this.warn('invalid-timestamp',
        `record ${index}: invalid timestamp: ${this.nano ? 'nanoseconds' : 'microseconds'} field ${frac} >= ${unit} (carried into the seconds)`);
      sec += Math.floor(frac / unit);
      frac %= unit;
    }
    this.push(makeRecord(index, sec, this.nano ? frac : frac * 1000, this.info.linkType, data, h.originalLength));
  }

  protected async pump(): Promise<boolean> {
    const src = this.src;
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
      this.feed.emit('data', chunk);
    }
    if (this.fatal && this.q.length === 0) throw this.fatal;
    return true;
  }

  private atEof(): void {
    const left = this.fed - this.consumed;
    if (left <= 0 || this.fatal) return;
    const index = this.count + this.q.length - this.qHead;
    const where = `record ${index} (offset ${this.consumed})`;
    if (this.headerPending) {
      const want = this.headerPending.capturedLength;
      this.warn('truncated-record',
        `${where}: truncated final record: header says ${want} bytes captured, the file ends after ${left - PCAP_REC_HDR_LEN} (record not delivered)`);
    } else {
      this.warn('truncated-record',
        `${where}: truncated final record header: ${left} of ${PCAP_REC_HDR_LEN} bytes at the end of the file`);
    }
  }

  protected async release(): Promise<void> {
    this.feed.removeAllListeners();
    await this.src.close();
  }
}
