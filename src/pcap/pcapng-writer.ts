// pcapng writer (little-endian, version 1.0): one Section Header Block, one Interface
// Description Block per interface (link type, snapshot length, `if_name`, `if_description`,
// `if_tsresol`), then one Enhanced Packet Block per record with an optional `opt_comment` — what
// Wireshark shows as `frame.comment` (filter: `frame.comment contains "dropped"`).
//
// Why natlab writes pcapng: one file can hold several egress points (one interface each, named)
// and every packet can carry its story as a comment. Layout per the pcapng specification
// (draft-ietf-opsawg-pcapng): every block is `type, total length, body, total length`, the body
// and every option value padded to 32 bits, options end with opt_endofopt.
//
// Streams through the same 256 KiB staging buffer and backpressure as the pcap writer;
// `encodePcapng` builds a whole file in memory.
import { isSupportedLinkType, linkTypeName } from '../packet/constants.ts';
import { MAX_CAPLEN } from './base-reader.ts';
import { StagedFile } from './staged-file.ts';
import { BT_EPB, BT_IDB, BT_SHB, BYTE_ORDER_MAGIC } from './read-pcapng.ts';

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
/** Block header (type + length) plus trailer (length). */
const BLOCK_OVERHEAD = 12;
/** EPB fixed body: interface id, timestamp (2 words), captured length, original length. */
const EPB_FIXED = 20;
/** Longest option value pcapng can hold (16-bit length). */
const MAX_OPTION = 0xffff;

export interface PcapngInterfaceSpec {
  /** LINKTYPE_* of this interface's packets. */
  linkType: number;
  /** if_name: what Wireshark shows as the interface (frame.interface_name). */
  name?: string;
  /** if_description (frame.interface_description). */
  description?: string;
  /** Snapshot length (default 262144); longer records are cut to it. */
  snapLen?: number;
}

export interface PcapngWriteOptions {
  interfaces: PcapngInterfaceSpec[];
  /** Timestamp resolution of every interface: 'ns' (if_tsresol 9, default) or 'us' (6). */
  resolution?: 'ns' | 'us';
  /** shb_userappl (default "natlab"). */
  application?: string;
  /** A comment on the section (Wireshark: Statistics > Capture File Properties). */
  comment?: string;
  /** The streaming writer may start with no interface and add them with addInterface(). */
  allowNoInterface?: boolean;
}

export interface PcapngWriteRecord {
  /** Index into the interfaces given at open (default 0). */
  interfaceId?: number;
  tsSec: number;
  tsNsec: number;
  data: Uint8Array;
  /** Original length on the wire; default data.length. */
  origLen?: number;
  /** opt_comment: UTF-8 text shown as frame.comment (absent when empty). */
  comment?: string;
}

interface Checked {
  interfaces: Array<
    Required<Omit<PcapngInterfaceSpec, 'name' | 'description'>> & { name: string; description: string }
  >;
  nano: boolean;
  application: string;
  comment: string;
}

function checkOptions(o: PcapngWriteOptions): Checked {
  if (o.interfaces.length === 0 && !o.allowNoInterface)
    throw new RangeError('pcapng writer: at least one interface is needed');
  const interfaces = o.interfaces.map(checkInterface);
  const res = o.resolution ?? 'ns';
  if (res !== 'ns' && res !== 'us') throw new RangeError(`pcapng writer: resolution '${String(res)}' is not ns or us`);
  return { interfaces, nano: res === 'ns', application: o.application ?? 'natlab', comment: o.comment ?? '' };
}

const enc = new TextEncoder();

/** UTF-8 bytes of an option value, cut (on a character boundary) to what an option can hold. */
function optionBytes(s: string): Uint8Array {
  let b = enc.encode(s);
  if (b.length > MAX_OPTION) {
    let n = MAX_OPTION;
    while (n > 0 && (b[n] & 0xc0) === 0x80) n--; // do not split a UTF-8 sequence
    b = b.subarray(0, n);
  }
  return b;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Bytes of the options area for these values (0 when there is none: no end-of-options either). */
function optionsLen(values: Uint8Array[]): number {
  let n = 0;
  for (const v of values) n += 4 + pad4(v.length);
  return n === 0 ? 0 : n + 4;
}

/** Writes options (code, value) and opt_endofopt at b[off]; returns the new offset. */
function writeOptions(b: Buffer, off: number, opts: Array<[number, Uint8Array]>): number {
  if (opts.length === 0) return off;
  for (const [code, v] of opts) {
    b.writeUInt16LE(code, off);
    b.writeUInt16LE(v.length, off + 2);
    b.set(v, off + 4);
    const end = off + 4 + pad4(v.length);
    b.fill(0, off + 4 + v.length, end);
    off = end;
  }
  b.writeUInt16LE(OPT_ENDOFOPT, off);
  b.writeUInt16LE(0, off + 2);
  return off + 4;
}

/** The Section Header Block and the Interface Description Blocks: the file's head. */
export function pcapngHeader(opts: PcapngWriteOptions): Uint8Array {
  return headerOf(checkOptions(opts));
}

type CheckedInterface = Checked['interfaces'][number];

function checkInterface(f: PcapngInterfaceSpec, i: number): CheckedInterface {
  if (!Number.isInteger(f.linkType) || !isSupportedLinkType(f.linkType)) {
    throw new RangeError(
      `pcapng writer: interface ${i}: link type ${f.linkType} (${linkTypeName(f.linkType)}) is not supported`,
    );
  }
  const snapLen = f.snapLen ?? MAX_CAPLEN;
  if (!Number.isInteger(snapLen) || snapLen < 1 || snapLen > MAX_CAPLEN) {
    throw new RangeError(`pcapng writer: interface ${i}: snapLen ${snapLen} is outside 1..${MAX_CAPLEN}`);
  }
  return { linkType: f.linkType, snapLen, name: f.name ?? '', description: f.description ?? '' };
}

/** One Interface Description Block. */
function idbOf(f: CheckedInterface, nano: boolean): Uint8Array {
  const opts: Array<[number, Uint8Array]> = [];
  if (f.name) opts.push([IF_NAME, optionBytes(f.name)]);
  if (f.description) opts.push([IF_DESCRIPTION, optionBytes(f.description)]);
  opts.push([IF_TSRESOL, Uint8Array.of(nano ? 9 : 6)]);
  const len = BLOCK_OVERHEAD + 8 + optionsLen(opts.map((x) => x[1]));
  const b = Buffer.alloc(len);
  b.writeUInt32LE(BT_IDB, 0);
  b.writeUInt32LE(len, 4);
  b.writeUInt16LE(f.linkType, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt32LE(f.snapLen, 12);
  const end = writeOptions(b, 16, opts);
  b.writeUInt32LE(len, end);
  if (end + 4 !== len) throw new Error('pcapng writer: IDB length mismatch (bug)');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function headerOf(o: Checked): Uint8Array {
  const shbOpts: Array<[number, Uint8Array]> = [];
  if (o.comment) shbOpts.push([OPT_COMMENT, optionBytes(o.comment)]);
  if (o.application) shbOpts.push([SHB_USERAPPL, optionBytes(o.application)]);
  const shbLen = BLOCK_OVERHEAD + 16 + optionsLen(shbOpts.map((x) => x[1]));
  const idbs = o.interfaces.map((f) => idbOf(f, o.nano));
  const total = shbLen + idbs.reduce((a, x) => a + x.length, 0);
  const b = Buffer.alloc(total);
  // SHB: type, length, byte-order magic, version 1.0, section length -1 (unknown: streamed).
  b.writeUInt32LE(BT_SHB, 0);
  b.writeUInt32LE(shbLen, 4);
  b.writeUInt32LE(BYTE_ORDER_MAGIC, 8);
  b.writeUInt16LE(1, 12);
  b.writeUInt16LE(0, 14);
  b.writeInt32LE(-1, 16);
  b.writeInt32LE(-1, 20);
  let off = writeOptions(b, 24, shbOpts);
  b.writeUInt32LE(shbLen, off);
  off += 4;
  for (const idb of idbs) {
    b.set(idb, off);
    off += idb.length;
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

const TWO32 = 4294967296;

/**
 * 64-bit timestamp (units of 10^-9 or 10^-6 s) as [hi, lo] 32-bit words, exact without BigInt:
 * every intermediate stays below 2^53.
 */
export function timestampWords(tsSec: number, tsNsec: number, nano: boolean): [number, number] {
  const unit = nano ? 1e9 : 1e6;
  const frac = nano ? tsNsec : Math.floor(tsNsec / 1000);
  const secHi = Math.floor(tsSec / 65536);
  const secLo = tsSec - secHi * 65536;
  const low = secLo * unit + frac; // < 2^16 * 1e9 + 1e9 < 2^47
  const high = secHi * unit; // the value is high * 2^16 + low; high < 2^32 * 1e9 / 2^16 < 2^46
  const hH = Math.floor(high / 65536);
  const hL = high - hH * 65536;
  const rest = hL * 65536 + low; // < 2^32 + 2^47
  const carry = Math.floor(rest / TWO32);
  return [hH + carry, rest - carry * TWO32];
}

/** Largest tsSec whose timestamp fits 64 bits at the resolution (ns: year 2554). */
function maxSec(nano: boolean): number {
  return nano ? 18_446_744_072 : 0x1fffffffff; // ns: floor((2^64-1)/1e9) - 1; us: far beyond any clock
}

function epbLen(r: PcapngWriteRecord, o: Checked, comment: Uint8Array | null): number {
  const f = o.interfaces[r.interfaceId ?? 0];
  const cap = f ? Math.min(r.data.length, f.snapLen) : r.data.length;
  return BLOCK_OVERHEAD + EPB_FIXED + pad4(cap) + (comment ? optionsLen([comment]) : 0);
}

/** Writes one EPB at b[off]; returns the bytes written. */
function writeEpb(
  b: Buffer,
  off: number,
  r: PcapngWriteRecord,
  o: Checked,
  n: number,
  comment: Uint8Array | null,
): number {
  const id = r.interfaceId ?? 0;
  const f = o.interfaces[id];
  if (!Number.isInteger(id) || !f)
    throw new RangeError(
      `pcapng writer: record ${n}: interface id ${id} is not one of the ${o.interfaces.length} interfaces`,
    );
  const { tsSec, tsNsec } = r;
  if (!Number.isInteger(tsSec) || tsSec < 0 || tsSec > maxSec(o.nano)) {
    throw new RangeError(`pcapng writer: record ${n}: tsSec ${tsSec} is outside 0..${maxSec(o.nano)}`);
  }
  if (!Number.isInteger(tsNsec) || tsNsec < 0 || tsNsec > 999_999_999) {
    throw new RangeError(`pcapng writer: record ${n}: tsNsec ${tsNsec} is outside 0..999999999`);
  }
  const cap = Math.min(r.data.length, f.snapLen);
  const orig = r.origLen ?? r.data.length;
  if (!Number.isInteger(orig) || orig < r.data.length || orig > 0xffffffff) {
    throw new RangeError(
      `pcapng writer: record ${n}: origLen ${orig} is less than the data length ${r.data.length} or not a uint32`,
    );
  }
  const len = epbLen(r, o, comment);
  const [hi, lo] = timestampWords(tsSec, tsNsec, o.nano);
  b.writeUInt32LE(BT_EPB, off);
  b.writeUInt32LE(len, off + 4);
  b.writeUInt32LE(id, off + 8);
  b.writeUInt32LE(hi, off + 12);
  b.writeUInt32LE(lo, off + 16);
  b.writeUInt32LE(cap, off + 20);
  b.writeUInt32LE(orig, off + 24);
  b.set(cap === r.data.length ? r.data : r.data.subarray(0, cap), off + 28);
  let p = off + 28 + cap;
  const padded = off + 28 + pad4(cap);
  b.fill(0, p, padded);
  p = comment ? writeOptions(b, padded, [[OPT_COMMENT, comment]]) : padded;
  b.writeUInt32LE(len, p);
  return len;
}

function commentBytes(r: PcapngWriteRecord): Uint8Array | null {
  return r.comment ? optionBytes(r.comment) : null;
}

/** A whole pcapng file in memory. */
export function encodePcapng(records: Iterable<PcapngWriteRecord>, opts: PcapngWriteOptions): Uint8Array {
  const o = checkOptions(opts);
  const head = headerOf(o);
  const list = [...records].map((r) => ({ r, c: commentBytes(r) }));
  let size = head.length;
  for (const { r, c } of list) size += epbLen(r, o, c);
  const b = Buffer.alloc(size);
  b.set(head, 0);
  let off = head.length;
  list.forEach(({ r, c }, i) => {
    off += writeEpb(b, off, r, o, i, c);
  });
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * Streams records to a pcapng file. Records are staged in order synchronously (the file keeps
 * the order of `write` calls); awaiting `write` applies backpressure.
 */
export class PcapngWriter {
  /** Records written so far. */
  count = 0;
  /** Bytes written so far (head included). */
  bytes: number;

  private constructor(
    private readonly file: StagedFile,
    private readonly o: Checked,
  ) {
    const head = headerOf(o);
    file.reserve(head.length).set(head, file.offset);
    file.commit(head.length);
    this.bytes = head.length;
  }

  get path(): string {
    return this.file.path;
  }

  static async open(path: string, opts: PcapngWriteOptions): Promise<PcapngWriter> {
    const o = checkOptions(opts);
    return new PcapngWriter(await StagedFile.open(path, 'pcapng writer'), o);
  }

  /** Interfaces so far. */
  get interfaceCount(): number {
    return this.o.interfaces.length;
  }

  /**
   * Adds an interface (an Interface Description Block, written before any packet that uses it,
   * as pcapng allows anywhere in the section); returns its id.
   */
  addInterface(spec: PcapngInterfaceSpec): number {
    const id = this.o.interfaces.length;
    const f = checkInterface(spec, id);
    const idb = idbOf(f, this.o.nano);
    this.file.reserve(idb.length).set(idb, this.file.offset);
    this.file.commit(idb.length);
    this.bytes += idb.length;
    this.o.interfaces.push(f);
    return id;
  }

  /** Appends one packet. Resolves at once unless the file stream is behind, then on 'drain'. */
  write(r: PcapngWriteRecord): Promise<void> {
    try {
      this.writeSync(r);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.drained();
  }

  /** Appends one packet without a promise (then one `await drained()` per batch); throws what write() rejects with. */
  writeSync(r: PcapngWriteRecord): void {
    const c = commentBytes(r);
    const need = epbLen(r, this.o, c);
    const buf = this.file.reserve(need);
    this.file.commit(writeEpb(buf, this.file.offset, r, this.o, this.count, c));
    this.count++;
    this.bytes += need;
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
