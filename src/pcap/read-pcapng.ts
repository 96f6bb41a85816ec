// pcapng (what Wireshark and dumpcap write by default): Section Header, Interface Description,
// Enhanced, Simple and (obsolete) Packet blocks; each interface's link type, snapshot length and
// timestamp resolution/offset; either byte order per section; several sections; other blocks are
// skipped. Blocks are checked (length a multiple of 4 and >= 12, header and trailer lengths equal,
// options inside the block) and every problem is an InputError naming the block and its offset.
import { isSupportedLinkType, linkTypeName } from '../packet/constants.ts';
import { BaseReader, MAX_CAPLEN, inputError, makeRecord } from './base-reader.ts';
import type { ByteSource } from './byte-source.ts';
import { unsupportedLinkType } from './read-pcap.ts';
import type { CaptureInfo, CaptureInterface, OpenOptions } from './types.ts';

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_PB = 0x00000002; // obsolete Packet Block
export const BT_SPB = 0x00000003;
export const BT_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Blocks natlab parses are read whole; this bounds them (packet <= 256 KiB plus options). */
const MAX_PARSED_BLOCK = MAX_CAPLEN + 64 * 1024;
const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const IF_FCSLEN = 13;
const IF_TSOFFSET = 14;
const IGNORE_OPTION = (): void => {};

const BLOCK_NAMES: Record<number, string> = {
  [BT_SHB]: 'Section Header Block',
  [BT_IDB]: 'Interface Description Block',
  [BT_PB]: 'Packet Block',
  [BT_SPB]: 'Simple Packet Block',
  4: 'Name Resolution Block',
  5: 'Interface Statistics Block',
  [BT_EPB]: 'Enhanced Packet Block',
  9: 'systemd Journal Export Block',
  10: 'Decryption Secrets Block',
  0x00000bad: 'Custom Block',
  0x40000bad: 'Custom Block',
};

function blockName(t: number): string {
  return BLOCK_NAMES[t] ?? `block type 0x${t.toString(16).padStart(8, '0')}`;
}

interface Iface extends CaptureInterface {
  /** Timestamp units: 10^-exp10 s if pow10, else 2^-exp2 s. */
  pow10: boolean;
  exp: number;
  tsOffset: number;
}

function resolutionText(pow10: boolean, exp: number): string {
  if (pow10 && exp === 6) return 'us';
  if (pow10 && exp === 9) return 'ns';
  return pow10 ? `10^-${exp}` : `2^-${exp}`;
}

export class PcapngReader extends BaseReader {
  private le = true;
  private ifaces: Iface[] = [];
  private blockNo = 0; // blocks read, for messages
  private eofSeen = false;

  private constructor(
    path: string,
    info: CaptureInfo,
    private src: ByteSource,
    private opts: OpenOptions,
  ) {
    super(path, info);
  }

  /** Reads the first Section Header Block and the Interface Description Blocks that follow it. */
  static async create(path: string, src: ByteSource, opts: OpenOptions): Promise<PcapngReader> {
    const info: CaptureInfo = {
      format: 'pcapng',
      byteOrder: 'LE',
      version: '',
      linkType: -1,
      linkTypes: [],
      linkTypeNames: [],
      tsResolution: 'us',
      snapLen: 0,
      interfaces: [],
      sections: 0,
      skippedBlocks: 0,
    };
    const r = new PcapngReader(path, info, src, opts);
    // Read blocks until the first one that is not a section or interface header, and keep it for
    // the first pump: info is then complete for files whose interfaces all come first.
    await r.readBlocks(true);
    return r;
  }

  private u32(b: Buffer, o: number): number {
    return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }
  private u16(b: Buffer, o: number): number {
    return this.le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  protected async pump(): Promise<boolean> {
    while (this.q.length === 0) {
      if (this.eofSeen) return false;
      await this.readBlocks(false);
    }
    return true;
  }

  /**
   * Reads blocks until a batch of packets is queued or the end of file (headersOnly: until the
   * next block is neither an SHB nor an IDB, without consuming it).
   */
  private async readBlocks(headersOnly: boolean): Promise<void> {
    const src = this.src;
    // Decode the blocks the buffer holds; read more of the file only while no packet is queued.
    while (headersOnly || this.q.length === 0 || src.end - src.pos >= 8) {
      const off = src.offset;
      if (src.end - src.pos < 8 && !(await src.need(8))) {
        if (src.avail > 0) {
          this.warn(
            'truncated-block',
            `block ${this.blockNo} (offset ${off}): truncated final block: ${src.avail} bytes, shorter than a block header`,
          );
          if (this.info.sections === 0)
            throw inputError(
              this.path,
              'file header',
              `file is ${src.avail} bytes, too short for a pcapng Section Header Block (28)`,
            );
        } else if (this.info.sections === 0) {
          throw inputError(this.path, 'file header', 'empty file');
        }
        this.eofSeen = true;
        return;
      }
      const b = src.buf;
      const p = src.pos;
      const type = b.readUInt32LE(p); // SHB type is a palindrome; others need the section's order
      if (type === BT_SHB) {
        await this.readShb();
        continue;
      }
      const t = this.u32(b, p);
      if (headersOnly && t !== BT_IDB) return;
      const len = this.u32(b, p + 4);
      this.setBlock(t, off);
      this.checkLen(len, 12);
      if (t !== BT_IDB && t !== BT_EPB && t !== BT_SPB && t !== BT_PB) {
        // Not ours: skip without buffering, but check the trailer.
        if (!(await src.skip(len - 4)) || !(await src.need(4))) {
          this.warn('truncated-block', `${this.where()}: truncated final block (${len} bytes declared)`);
          this.eofSeen = true;
          return;
        }
        const trailer = this.u32(src.buf, src.pos);
        if (trailer !== len) throw this.trailerError(len, trailer);
        src.consume(4);
        this.blockNo++;
        this.info.skippedBlocks++;
        continue;
      }
      if (len > MAX_PARSED_BLOCK)
        throw this.fail(`block length ${len} exceeds the ${MAX_PARSED_BLOCK}-byte maximum natlab reads`);
      if (src.end - src.pos < len && this.q.length > 0) return; // read it on the next pump
      if (src.end - src.pos < len && !(await src.need(len))) {
        this.warn(
          'truncated-block',
          `${this.where()}: truncated final block: ${len} bytes declared, the file ends after ${src.avail}${t === BT_IDB ? '' : ' (packet not delivered)'}`,
        );
        this.eofSeen = true;
        return;
      }
      const blk = src.buf;
      const s = src.pos;
      const trailer = this.u32(blk, s + len - 4);
      if (trailer !== len) throw this.trailerError(len, trailer);
      src.consume(len);
      this.blockNo++;
      if (t === BT_IDB) this.parseIdb(blk, s, len);
      else this.parsePacket(t, blk, s, len);
    }
  }

  /** The block being read, for messages (built only when there is something to say). */
  private curType = 0;
  private curOff = 0;
  private curRecord = -1;
  private curBlockNo = 0;
  private setBlock(t: number, off: number): void {
    this.curType = t;
    this.curOff = off;
    this.curRecord = -1;
    this.curBlockNo = this.blockNo;
  }
  private where(): string {
    const b = `block ${this.curBlockNo} (${blockName(this.curType)}, offset ${this.curOff})`;
    return this.curRecord >= 0 ? `record ${this.curRecord}, ${b}` : b;
  }
  private fail(what: string): Error {
    return inputError(this.path, this.where(), what);
  }

  private checkLen(len: number, min: number): void {
    if (len < min) throw this.fail(`block total length ${len} is less than the minimum ${min}`);
    if (len % 4 !== 0) throw this.fail(`block total length ${len} is not a multiple of 4`);
  }

  private trailerError(len: number, trailer: number): Error {
    return this.fail(`block total length in header (${len}) and trailer (${trailer}) don't match`);
  }

  private async readShb(): Promise<void> {
    const src = this.src;
    const off = src.offset;
    this.setBlock(BT_SHB, off);
    if (!(await src.need(28))) {
      if (this.info.sections === 0) {
        throw inputError(
          this.path,
          'file header',
          `file header is ${src.avail} bytes, a pcapng Section Header Block needs at least 28`,
        );
      }
      this.warn('truncated-block', `${this.where()}: truncated final Section Header Block`);
      src.consume(src.avail);
      this.eofSeen = true;
      return;
    }
    const b = src.buf;
    const p = src.pos;
    const bom = b.readUInt32LE(p + 8);
    if (bom === BYTE_ORDER_MAGIC) this.le = true;
    else if (bom === 0x4d3c2b1a) this.le = false;
    else
      throw this.fail(
        `bad byte-order magic 0x${bom.toString(16).padStart(8, '0')} (expected 0x1a2b3c4d in either byte order)`,
      );
    const len = this.u32(b, p + 4);
    this.checkLen(len, 28);
    const major = this.u16(b, p + 12);
    const minor = this.u16(b, p + 14);
    // libpcap reads 1.0 and 1.2 (1.2 differs only in that some writers used it); so does natlab.
    if (major !== 1 || (minor !== 0 && minor !== 2)) {
      throw this.fail(`unsupported pcapng version ${major}.${minor} (natlab reads 1.0)`);
    }
    if (len > MAX_PARSED_BLOCK)
      throw this.fail(`block length ${len} exceeds the ${MAX_PARSED_BLOCK}-byte maximum natlab reads`);
    if (!(await src.need(len))) {
      if (this.info.sections === 0) {
        throw this.fail(`truncated Section Header Block: ${len} bytes declared, the file has ${src.avail}`);
      }
      this.warn('truncated-block', `${this.where()}: truncated final Section Header Block`);
      src.consume(src.avail);
      this.eofSeen = true;
      return;
    }
    const blk = src.buf;
    const s = src.pos;
    const trailer = this.u32(blk, s + len - 4);
    if (trailer !== len) throw this.trailerError(len, trailer);
    this.walkOptions(blk, s + 24, s + len - 4, IGNORE_OPTION);
    src.consume(len);
    this.blockNo++;
    if (this.info.sections === 0) {
      this.info.byteOrder = this.le ? 'LE' : 'BE';
      this.info.version = `${major}.${minor}`;
    }
    this.info.sections++;
    this.ifaces = []; // interface ids are per section
  }

  /** Calls fn(code, valueOffset, valueLength) per option in [start, end); checks bounds. */
  private walkOptions(b: Buffer, start: number, end: number, fn: (code: number, o: number, n: number) => void): void {
    let o = start;
    while (o < end) {
      if (end - o < 4)
        throw this.fail(`option header at block byte ${o - start} overruns the block (${end - o} bytes left)`);
      const code = this.u16(b, o);
      const n = this.u16(b, o + 2);
      if (code === OPT_ENDOFOPT) return;
      const padded = (n + 3) & ~3;
      if (o + 4 + padded > end) {
        throw this.fail(`option ${code} (length ${n}) overruns the block (${end - o - 4} bytes left)`);
      }
      fn(code, o + 4, n);
      o += 4 + padded;
    }
  }

  private parseIdb(b: Buffer, s: number, len: number): void {
    if (len < 20) throw this.fail(`Interface Description Block is ${len} bytes, needs at least 20`);
    const lt = this.u16(b, s + 8);
    const snapLen = this.u32(b, s + 12);
    const iface: Iface = {
      linkType: lt,
      linkTypeName: linkTypeName(lt),
      snapLen,
      tsResolution: 'us',
      name: '',
      fcsLen: 0,
      pow10: true,
      exp: 6,
      tsOffset: 0,
    };
    this.walkOptions(b, s + 16, s + len - 4, (code, o, n) => {
      if (code === IF_TSRESOL) {
        if (n < 1) throw this.fail('if_tsresol option is empty');
        const v = b[o];
        iface.pow10 = (v & 0x80) === 0;
        iface.exp = v & 0x7f;
        if ((iface.pow10 && iface.exp > 18) || (!iface.pow10 && iface.exp > 62)) {
          throw this.fail(`if_tsresol 0x${v.toString(16)} is finer than natlab supports`);
        }
      } else if (code === IF_TSOFFSET) {
        if (n < 8) throw this.fail(`if_tsoffset option is ${n} bytes, needs 8`);
        const hi = this.le ? b.readInt32LE(o + 4) : b.readInt32BE(o);
        const lo = this.le ? b.readUInt32LE(o) : b.readUInt32BE(o + 4);
        iface.tsOffset = hi * 2 ** 32 + lo;
      } else if (code === IF_NAME) {
        iface.name = b.toString('utf8', o, o + n).replace(/\0+$/, '');
      } else if (code === IF_FCSLEN && n >= 1) {
        iface.fcsLen = b[o];
      }
    });
    iface.tsResolution = resolutionText(iface.pow10, iface.exp);
    this.ifaces.push(iface);
    const pub: CaptureInterface = {
      linkType: lt,
      linkTypeName: iface.linkTypeName,
      snapLen,
      tsResolution: iface.tsResolution,
      name: iface.name,
      fcsLen: iface.fcsLen,
    };
    const info = this.info;
    info.interfaces.push(pub);
    if (info.linkType < 0) {
      info.linkType = lt;
      info.tsResolution = iface.tsResolution;
      info.snapLen = snapLen;
    }
    if (!info.linkTypes.includes(lt)) {
      info.linkTypes.push(lt);
      info.linkTypeNames.push(linkTypeName(lt));
    }
  }

  private iface(id: number): Iface {
    const f = this.ifaces[id];
    if (!f)
      throw this.fail(
        `interface id ${id} has no Interface Description Block in this section (${this.ifaces.length} defined)`,
      );
    if (!isSupportedLinkType(f.linkType))
      throw unsupportedLinkType(this.path, `${this.where()}, interface ${id}`, f.linkType);
    return f;
  }

  private parsePacket(t: number, b: Buffer, s: number, len: number): void {
    this.curBuf = b;
    const index = this.count + this.q.length - this.qHead;
    this.curRecord = index;
    let f: Iface;
    let cap: number;
    let orig: number;
    let dataOff: number;
    let hi = 0;
    let lo = 0;
    let id = 0;
    this.pktComment = null;
    const bodyEnd = s + len - 4;
    if (t === BT_SPB) {
      if (len < 16) throw this.fail(`Simple Packet Block is ${len} bytes, needs at least 16`);
      f = this.iface(0);
      orig = this.u32(b, s + 8);
      dataOff = s + 12;
      // The captured length is not stored: the original length, cut to the snapshot length and to the block.
      cap = Math.min(orig, bodyEnd - dataOff);
      if (f.snapLen > 0) cap = Math.min(cap, f.snapLen);
    } else {
      const minLen = 32;
      if (len < minLen) throw this.fail(`${blockName(t)} is ${len} bytes, needs at least ${minLen}`);
      id = t === BT_EPB ? this.u32(b, s + 8) : this.u16(b, s + 8);
      f = this.iface(id);
      hi = this.u32(b, s + 12);
      lo = this.u32(b, s + 16);
      cap = this.u32(b, s + 20);
      orig = this.u32(b, s + 24);
      dataOff = s + 28;
      if (dataOff + cap > bodyEnd) {
        throw this.fail(`captured length ${cap} overruns the block (${bodyEnd - dataOff} bytes of packet data)`);
      }
      const padded = (cap + 3) & ~3;
      if (dataOff + padded < bodyEnd) this.walkOptions(b, dataOff + padded, bodyEnd, this.onPacketOption);
    }
    if (cap > MAX_CAPLEN) {
      throw this.fail(`captured length ${cap} exceeds the ${MAX_CAPLEN}-byte maximum (damaged or fuzzed file)`);
    }
    if (f.snapLen > 0 && cap > f.snapLen) {
      const msg = `captured length ${cap} exceeds the interface snapshot length ${f.snapLen}`;
      if (this.opts.strictSnapLen) throw this.fail(msg);
      this.warn('caplen-over-snaplen', `${this.where()}: ${msg} (record kept)`);
    }
    if (cap > orig)
      this.warn('caplen-over-len', `${this.where()}: captured length ${cap} exceeds the original length ${orig}`);
    let sec = 0;
    let nsec = 0;
    if (t !== BT_SPB) {
      splitTs(hi, lo, f.pow10, f.exp, TS);
      sec = TS.sec + f.tsOffset;
      nsec = TS.nsec;
    }
    this.push(makeRecord(index, sec, nsec, f.linkType, b.subarray(dataOff, dataOff + cap), orig, id, this.pktComment));
  }

  /** The packet being parsed: its first opt_comment (decoded only when present). */
  private pktComment: string | null = null;
  private readonly onPacketOption = (code: number, o: number, n: number): void => {
    if (code === OPT_COMMENT && this.pktComment === null) this.pktComment = this.curBuf!.toString('utf8', o, o + n);
  };
  private curBuf: Buffer | null = null;

  get fileSize(): number {
    return this.src.size;
  }
  get bytesRead(): number {
    return this.src.bytesRead;
  }

  protected async release(): Promise<void> {
    await this.src.close();
  }
}

/** 64-bit timestamp (hi:lo) in units of 10^-exp or 2^-exp seconds → [seconds, nanoseconds]. */
export function splitTimestamp(hi: number, lo: number, pow10: boolean, exp: number): [number, number] {
  const out = { sec: 0, nsec: 0 };
  splitTs(hi, lo, pow10, exp, out);
  return [out.sec, out.nsec];
}

const TS = { sec: 0, nsec: 0 };
const POW10 = Array.from({ length: 10 }, (_, i) => 10 ** i);

function splitTs(hi: number, lo: number, pow10: boolean, exp: number, out: { sec: number; nsec: number }): void {
  if (pow10 && exp <= 9 && hi < 0x200000) {
    // Exact in doubles: ts < 2^53.
    const ts = hi * 4294967296 + lo;
    const u = POW10[exp];
    const sec = Math.floor(ts / u);
    out.sec = sec;
    out.nsec = (ts - sec * u) * POW10[9 - exp];
    return;
  }
  [out.sec, out.nsec] = splitTsBig(hi, lo, pow10, exp);
}

function splitTsBig(hi: number, lo: number, pow10: boolean, exp: number): [number, number] {
  const ts = (BigInt(hi) << 32n) | BigInt(lo);
  if (pow10) {
    const u = 10n ** BigInt(exp);
    const sec = ts / u;
    const frac = ts % u;
    const ns = exp <= 9 ? frac * 10n ** BigInt(9 - exp) : frac / 10n ** BigInt(exp - 9);
    return [Number(sec), Number(ns)];
  }
  const sec = ts >> BigInt(exp);
  const frac = ts & ((1n << BigInt(exp)) - 1n);
  return [Number(sec), Number((frac * 1_000_000_000n) >> BigInt(exp))];
}
