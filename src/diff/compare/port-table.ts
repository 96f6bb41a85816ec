// The bindings of a PortRenaming keyed by numbers, not strings: one open-addressing table of
// (side, proto, NAT address, peer address, peer port, port) -> the other engine's port, in typed
// arrays. Both directions (A's port -> B's, B's -> A's) live in the same table, told apart by a
// side bit; a group marker per (proto, NAT address, peer address, peer port) remembers when that
// group was first bound, so `describe` lists bindings in the order the string-keyed maps did
// (groups by first binding, bindings by their latest set).
// No allocation per lookup; every probe loop is bounded by the table size.

/** Side of a binding: A's port -> B's port, or B's -> A's. */
export const SIDE_A2B = 0;
export const SIDE_B2A = 1;
/** The port word of a group marker (ports and ids are 16-bit). */
const GROUP_MARK = 0x10000;
/** Empty slot (no key has side bits this high). */
const EMPTY = -1;

function hash4(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ c, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15) ^ d, 0x165667b1);
  return h ^ (h >>> 16);
}

/** The key word holding side, proto and peer port. */
export function groupWord(side: number, proto: number, otherPort: number): number {
  return (side << 24) | ((proto & 0xff) << 16) | (otherPort & 0xffff);
}

export interface PortBinding {
  proto: number;
  addr: number;
  otherAddr: number;
  otherPort: number;
  portA: number;
  portB: number;
}

export class PortTable {
  private mask = 0;
  private count = 0;
  /** Key words per slot: NAT address, peer address, groupWord, port (GROUP_MARK: a group marker). */
  private kAddr = new Int32Array(0);
  private kOther = new Int32Array(0);
  private kWord = new Int32Array(0);
  private kPort = new Int32Array(0);
  /** The other engine's port (a group marker: the group's number). */
  private val = new Int32Array(0);
  /** When the binding was last set (insertion order of the maps this table replaces). */
  private seq = new Float64Array(0);
  private clock = 0;
  private groups = 0;

  constructor() {
    this.alloc(64);
  }

  private alloc(size: number): void {
    this.mask = size - 1;
    this.kAddr = new Int32Array(size);
    this.kOther = new Int32Array(size);
    this.kWord = new Int32Array(size).fill(EMPTY);
    this.kPort = new Int32Array(size);
    this.val = new Int32Array(size);
    this.seq = new Float64Array(size);
  }

  /** Slot holding the key, or -(free slot) - 1 where it would go. */
  private find(addr: number, other: number, word: number, port: number): number {
    const mask = this.mask;
    let i = hash4(addr, other, word, port) & mask;
    for (let probes = 0; probes <= mask; probes++) {
      const w = this.kWord[i];
      if (w === EMPTY) return -i - 1;
      if (w === word && this.kPort[i] === port && this.kAddr[i] === addr && this.kOther[i] === other) return i;
      i = (i + 1) & mask;
    }
    return -1 - 0x7fffffff; // unreachable: the table is never full (load <= 1/2)
  }

  /** The other engine's port bound to `port` on this side, or -1. */
  get(side: number, proto: number, addr: number, other: number, otherPort: number, port: number): number {
    const s = this.find(addr | 0, other | 0, groupWord(side, proto, otherPort), port);
    return s >= 0 ? this.val[s] : -1;
  }

  /** Whether the group (proto, addr, other, otherPort) was ever bound. */
  hasGroup(proto: number, addr: number, other: number, otherPort: number): boolean {
    return this.find(addr | 0, other | 0, groupWord(SIDE_A2B, proto, otherPort), GROUP_MARK) >= 0;
  }

  /** Marks the group as bound (first time: it gets the next group number). */
  touchGroup(proto: number, addr: number, other: number, otherPort: number): void {
    const word = groupWord(SIDE_A2B, proto, otherPort);
    const s = this.find(addr | 0, other | 0, word, GROUP_MARK);
    if (s >= 0) return;
    this.insertAt(-s - 1, addr | 0, other | 0, word, GROUP_MARK, this.groups++);
  }

  /** Sets (or moves to the end of the order) the binding `port` -> `value` on this side. */
  set(side: number, proto: number, addr: number, other: number, otherPort: number, port: number, value: number): void {
    const word = groupWord(side, proto, otherPort);
    const s = this.find(addr | 0, other | 0, word, port);
    if (s >= 0) {
      this.val[s] = value;
      this.seq[s] = this.clock++;
      return;
    }
    this.insertAt(-s - 1, addr | 0, other | 0, word, port, value);
  }

  private insertAt(slot: number, addr: number, other: number, word: number, port: number, value: number): void {
    this.kAddr[slot] = addr;
    this.kOther[slot] = other;
    this.kWord[slot] = word;
    this.kPort[slot] = port;
    this.val[slot] = value;
    this.seq[slot] = this.clock++;
    if (++this.count * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
  }

  /** Removes the binding of `port` on this side (nothing when absent). */
  delete(side: number, proto: number, addr: number, other: number, otherPort: number, port: number): void {
    let i = this.find(addr | 0, other | 0, groupWord(side, proto, otherPort), port);
    if (i < 0) return;
    // Backward-shift deletion (linear probing): no tombstones.
    const mask = this.mask;
    let j = i;
    for (let probes = 0; probes <= mask; probes++) {
      j = (j + 1) & mask;
      if (this.kWord[j] === EMPTY) break;
      const home = hash4(this.kAddr[j], this.kOther[j], this.kWord[j], this.kPort[j]) & mask;
      // Move j into the hole at i when its home slot is not in (i, j] (cyclically).
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        this.kAddr[i] = this.kAddr[j];
        this.kOther[i] = this.kOther[j];
        this.kWord[i] = this.kWord[j];
        this.kPort[i] = this.kPort[j];
        this.val[i] = this.val[j];
        this.seq[i] = this.seq[j];
        i = j;
      }
    }
    this.kWord[i] = EMPTY;
    this.count--;
  }

  private rehash(size: number): void {
    const { kAddr, kOther, kWord, kPort, val, seq } = this;
    this.alloc(size);
    for (let s = 0; s < kWord.length; s++) {
      if (kWord[s] === EMPTY) continue;
      const t = -this.find(kAddr[s], kOther[s], kWord[s], kPort[s]) - 1;
      this.kAddr[t] = kAddr[s];
      this.kOther[t] = kOther[s];
      this.kWord[t] = kWord[s];
      this.kPort[t] = kPort[s];
      this.val[t] = val[s];
      this.seq[t] = seq[s];
    }
  }

  /**
   * A -> B bindings in the order the string-keyed maps listed them: groups by their first binding,
   * bindings within a group by their latest set. Cold (reports).
   */
  bindings(): PortBinding[] {
    const groupOf = (addr: number, other: number, word: number): number => {
      const s = this.find(addr, other, word, GROUP_MARK);
      return s >= 0 ? this.val[s] : 0x7fffffff;
    };
    const rows: Array<{ g: number; q: number; b: PortBinding }> = [];
    for (let s = 0; s < this.kWord.length; s++) {
      const w = this.kWord[s];
      if (w === EMPTY || this.kPort[s] === GROUP_MARK || w >>> 24 !== SIDE_A2B) continue;
      rows.push({
        g: groupOf(this.kAddr[s], this.kOther[s], w),
        q: this.seq[s],
        b: {
          proto: (w >>> 16) & 0xff,
          addr: this.kAddr[s] >>> 0,
          otherAddr: this.kOther[s] >>> 0,
          otherPort: w & 0xffff,
          portA: this.kPort[s],
          portB: this.val[s],
        },
      });
    }
    rows.sort((x, y) => x.g - y.g || x.q - y.q);
    return rows.map((r) => r.b);
  }
}
