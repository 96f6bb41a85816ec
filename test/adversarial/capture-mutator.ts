// A seeded capture mutator for the standing adversarial suite: takes a well-formed pcap or pcapng
// file and breaks it the ways real captures break (and attackers break them): truncation at and
// around header boundaries, bad record/block lengths, snaplen 0, unknown or reserved link types,
// interface ids that do not exist, bit flips, byte-order swaps and splices of two files. Every
// mutation is a pure function of (input, seed): a failure names the seed that rebuilds the file.
import { Prng } from '../../src/model/prng.ts';

export interface Mutation {
  /** What was done, e.g. "truncate at record 3 header +7". */
  what: string;
  bytes: Uint8Array;
}

/** Structure of a capture: where its headers are (enough to aim mutations at boundaries). */
interface Layout {
  kind: 'pcap' | 'pcapng' | 'other';
  le: boolean;
  /** Offsets of record/block starts (pcap records after the 24-byte header; pcapng blocks). */
  starts: number[];
  /** pcapng: offsets of Interface Description Blocks. */
  idbs: number[];
  /** pcapng: offsets of Enhanced Packet Blocks. */
  epbs: number[];
}

const PCAP_MAGICS = [0xa1b2c3d4, 0xa1b23c4d];
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_IDB = 1;
const PCAPNG_EPB = 6;
/** Records or blocks followed at most when learning a layout (a real bound on the walk). */
const MAX_UNITS = 100_000;

function rd32(b: Uint8Array, o: number, le: boolean): number {
  return le
    ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
    : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function wr32(b: Uint8Array, o: number, v: number, le: boolean): void {
  if (o + 4 > b.length) return;
  for (let i = 0; i < 4; i++) b[o + (le ? i : 3 - i)] = (v >>> (8 * i)) & 0xff;
}

function wr16(b: Uint8Array, o: number, v: number, le: boolean): void {
  if (o + 2 > b.length) return;
  b[o + (le ? 0 : 1)] = v & 0xff;
  b[o + (le ? 1 : 0)] = (v >>> 8) & 0xff;
}

export function layoutOf(b: Uint8Array): Layout {
  const out: Layout = { kind: 'other', le: true, starts: [], idbs: [], epbs: [] };
  if (b.length < 12) return out;
  const be = rd32(b, 0, false);
  const le = rd32(b, 0, true);
  if (PCAP_MAGICS.includes(be) || PCAP_MAGICS.includes(le)) {
    out.kind = 'pcap';
    out.le = PCAP_MAGICS.includes(le);
    for (let o = 24, n = 0; o + 16 <= b.length && n < MAX_UNITS; n++) {
      out.starts.push(o);
      o += 16 + rd32(b, o + 8, out.le);
    }
    return out;
  }
  if (be === PCAPNG_SHB) {
    out.kind = 'pcapng';
    out.le = rd32(b, 8, true) === 0x1a2b3c4d;
    for (let o = 0, n = 0; o + 12 <= b.length && n < MAX_UNITS; n++) {
      const type = rd32(b, o, out.le);
      const len = rd32(b, o + 4, out.le);
      out.starts.push(o);
      if (type === PCAPNG_IDB) out.idbs.push(o);
      if (type === PCAPNG_EPB) out.epbs.push(o);
      if (len < 12 || len % 4 !== 0) break;
      o += len;
    }
  }
  return out;
}

class Rng {
  private p: Prng;
  constructor(seed: number) {
    this.p = new Prng(seed);
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.p.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

/** Lengths that break readers: 0, tiny, unaligned, just past the end, huge, all ones. */
const BAD_LENGTHS = [0, 1, 3, 11, 13, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 262145, 0x40000000];
/** Link types: unknown, reserved bits set, FCS bits set, and the ones natlab reads. */
const LINK_TYPES = [0, 1, 101, 113, 228, 276, 2, 147, 65535, 0x0300_0001, 0x1000_0001, 0x0400_0001, 9999, 12, 14];

type Op = (b: Uint8Array, l: Layout, r: Rng, other: Uint8Array) => Mutation;

const copy = (b: Uint8Array) => new Uint8Array(b);

const OPS: Op[] = [
  // Truncation exactly at a header boundary, or a few bytes either side of one.
  (b, l, r) => {
    const starts = l.starts.length ? l.starts : [0];
    const s = r.pick(starts);
    const delta = r.pick([0, 1, 2, 4, 7, 8, 11, 12, 15, 16, -1, -4]);
    const at = Math.max(0, Math.min(b.length - 1, s + delta));
    return { what: `truncate at ${at} (unit at ${s} ${delta >= 0 ? '+' : ''}${delta})`, bytes: b.slice(0, at) };
  },
  // Truncation inside the file header.
  (b, _l, r) => {
    const at = r.int(Math.min(b.length, 28));
    return { what: `truncate the file header at ${at}`, bytes: b.slice(0, at) };
  },
  // A bad record / block length.
  (b, l, r) => {
    const out = copy(b);
    const s = l.starts.length ? r.pick(l.starts) : 0;
    const v = r.pick(BAD_LENGTHS);
    if (l.kind === 'pcap') {
      const field = r.pick([8, 12]); // caplen, origlen
      wr32(out, s + field, v, l.le);
      return { what: `record at ${s}: ${field === 8 ? 'caplen' : 'origlen'} = ${v}`, bytes: out };
    }
    const trailing = r.int(2) === 1;
    const len = rd32(b, s + 4, l.le);
    wr32(out, trailing ? s + len - 4 : s + 4, v, l.le);
    return { what: `block at ${s}: ${trailing ? 'trailing' : 'leading'} length = ${v}`, bytes: out };
  },
  // snaplen 0 (file header, or an IDB).
  (b, l, r) => {
    const out = copy(b);
    if (l.kind === 'pcapng' && l.idbs.length) {
      const s = r.pick(l.idbs);
      wr32(out, s + 12, 0, l.le);
      return { what: `IDB at ${s}: snaplen 0`, bytes: out };
    }
    wr32(out, 16, 0, l.le);
    return { what: 'file header: snaplen 0', bytes: out };
  },
  // Unknown / reserved link type.
  (b, l, r) => {
    const out = copy(b);
    const lt = r.pick(LINK_TYPES);
    if (l.kind === 'pcapng' && l.idbs.length) {
      const s = r.pick(l.idbs);
      wr16(out, s + 8, lt & 0xffff, l.le);
      return { what: `IDB at ${s}: link type ${lt & 0xffff}`, bytes: out };
    }
    wr32(out, 20, lt, l.le);
    return { what: `file header: link-type field 0x${lt.toString(16)}`, bytes: out };
  },
  // pcapng: an EPB naming an interface that does not exist; pcap: a version change.
  (b, l, r) => {
    const out = copy(b);
    if (l.kind === 'pcapng' && l.epbs.length) {
      const s = r.pick(l.epbs);
      const id = r.pick([1, 7, 0xffff, 0xffffffff]);
      wr32(out, s + 8, id, l.le);
      return { what: `EPB at ${s}: interface id ${id}`, bytes: out };
    }
    const v = r.pick([0, 1, 3, 0xffff]);
    wr16(out, 4, v, l.le);
    return { what: `file header: major version ${v}`, bytes: out };
  },
  // Bit flips: a few random bits anywhere (1..8).
  (b, _l, r) => {
    const out = copy(b);
    const n = 1 + r.int(8);
    const at: number[] = [];
    for (let i = 0; i < n && out.length; i++) {
      const o = r.int(out.length);
      out[o] ^= 1 << r.int(8);
      at.push(o);
    }
    return { what: `bit flips at ${at.join(',')}`, bytes: out };
  },
  // Bit flips aimed at headers (record/block headers and the file header).
  (b, l, r) => {
    const out = copy(b);
    const s = l.starts.length ? r.pick(l.starts) : 0;
    const o = Math.min(out.length - 1, s + r.int(16));
    if (o >= 0) out[o] ^= 1 << r.int(8);
    return { what: `header bit flip at ${o}`, bytes: out };
  },
  // Byte order: the magic swapped, the rest not.
  (b, _l, _r) => {
    const out = copy(b);
    if (out.length >= 4) [out[0], out[1], out[2], out[3]] = [out[3], out[2], out[1], out[0]];
    return { what: 'magic byte-swapped', bytes: out };
  },
  // Splice: this file's head with another file's tail (another format, byte order, link type).
  (b, l, r, other) => {
    const lo = layoutOf(other);
    const cut = l.starts.length ? r.pick(l.starts) : r.int(b.length);
    const from = lo.starts.length ? r.pick(lo.starts) : r.int(other.length);
    const out = new Uint8Array(cut + other.length - from);
    out.set(b.subarray(0, cut), 0);
    out.set(other.subarray(from), cut);
    return { what: `splice: head to ${cut} + other from ${from}`, bytes: out };
  },
  // Splice: a run of random bytes inserted at a boundary.
  (b, l, r) => {
    const at = l.starts.length ? r.pick(l.starts) : r.int(b.length);
    const n = 1 + r.int(64);
    const junk = new Uint8Array(n);
    for (let i = 0; i < n; i++) junk[i] = r.int(256);
    const out = new Uint8Array(b.length + n);
    out.set(b.subarray(0, at), 0);
    out.set(junk, at);
    out.set(b.subarray(at), at + n);
    return { what: `${n} random bytes inserted at ${at}`, bytes: out };
  },
  // Duplicate a record/block (two copies back to back), then cut the copy short.
  (b, l, r) => {
    if (l.starts.length < 2) return { what: 'empty after the header', bytes: b.slice(0, Math.min(b.length, 24)) };
    const i = r.int(l.starts.length - 1);
    const s = l.starts[i];
    const e = l.starts[i + 1];
    const keep = r.int(e - s);
    const out = new Uint8Array(b.length + keep);
    out.set(b.subarray(0, e), 0);
    out.set(b.subarray(s, s + keep), e);
    out.set(b.subarray(e), e + keep);
    return { what: `unit at ${s} repeated, cut to ${keep} bytes`, bytes: out };
  },
];

export const MUTATION_KINDS = OPS.length;

/** Mutation `seed` of `input` (`other`: a second capture for splices); 1..3 stacked operators. */
export function mutateCapture(input: Uint8Array, other: Uint8Array, seed: number): Mutation {
  const r = new Rng(seed);
  let bytes = input;
  const what: string[] = [];
  const n = 1 + (r.int(4) === 0 ? 1 + r.int(2) : 0);
  for (let i = 0; i < n; i++) {
    const m = OPS[r.int(OPS.length)](bytes, layoutOf(bytes), r, other);
    bytes = m.bytes;
    what.push(m.what);
  }
  return { what: what.join('; '), bytes };
}
