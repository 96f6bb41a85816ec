// Flow tables of replay keyed by numbers, not strings: a flow is the inside host's view
// (proto, inside addr, inside port, remote addr, remote port), stored in typed arrays and found by
// open addressing. Two tables:
//   - FlowTable: each engine's learned public mappings (one-sided captures, remap.ts). Bounded:
//     at `cap` entries the oldest learned mapping is evicted (and counted), exactly as the
//     string-keyed FlowMappings did (a Map in insertion order; a changed mapping is re-inserted).
//   - PendingFlows: the outbound flows in the engine batch being assembled, with the time of their
//     latest packet; cleared at every hand-over in O(1) (an epoch per slot).
// No allocation per packet; every probe loop is bounded by the table size.

/** 32-bit hash of a flow tuple (inputs are 32-bit integers). */
export function flowHash(proto: number, inside: number, ports: number, remote: number): number {
  let h = Math.imul(inside ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ remote, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ports, 0x27d4eb2f);
  h ^= proto;
  h = Math.imul(h ^ (h >>> 15), 0x165667b1);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Packs the two ports of a flow key into one 32-bit word. */
export function flowPorts(insidePort: number, remotePort: number): number {
  return ((insidePort & 0xffff) << 16) | (remotePort & 0xffff);
}

function pow2AtLeast(n: number): number {
  let s = 16;
  while (s < n) s *= 2;
  return s;
}

/**
 * Learned mappings of one engine: flow -> public address and port, with the time of the flow's
 * latest forwarded outbound packet. Entry ids are stable while an entry lives; slots index them.
 */
export class FlowTable {
  evicted = 0;
  private count = 0;
  /** Entries allocated so far (grows by doubling up to `cap`: small captures stay small). */
  private n = 0;
  private mask = 0;
  /** Hash slot -> entry id + 1 (0: empty). Linear probing, backward-shift deletion. */
  private slots = new Int32Array(0);
  private proto = new Uint8Array(0);
  private inside = new Int32Array(0);
  private ports = new Int32Array(0);
  private remote = new Int32Array(0);
  private addr = new Float64Array(0);
  private port = new Int32Array(0);
  private last = new Float64Array(0);
  /** Insertion order (doubly linked list of entry ids): the oldest is evicted first. */
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = -1;
  private tail = -1;
  /** Free entry ids (a stack). */
  private free = new Int32Array(0);
  private freeTop = 0;

  constructor(readonly cap: number) {
    this.cap = Math.max(1, cap | 0);
    this.grow(Math.min(this.cap, 4096));
  }

  /** Room for n entries: the columns copied (ids stay), the slots rebuilt. */
  private grow(n: number): void {
    const old = this.n;
    const copy = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: (k: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.proto = copy(this.proto, (k) => new Uint8Array(k));
    this.inside = copy(this.inside, (k) => new Int32Array(k));
    this.ports = copy(this.ports, (k) => new Int32Array(k));
    this.remote = copy(this.remote, (k) => new Int32Array(k));
    this.addr = copy(this.addr, (k) => new Float64Array(k));
    this.port = copy(this.port, (k) => new Int32Array(k));
    this.last = copy(this.last, (k) => new Float64Array(k));
    this.prev = copy(this.prev, (k) => new Int32Array(k));
    this.next = copy(this.next, (k) => new Int32Array(k));
    const free = new Int32Array(n);
    free.set(this.free.subarray(0, this.freeTop));
    let top = this.freeTop;
    for (let i = n - 1; i >= old; i--) free[top++] = i;
    this.free = free;
    this.freeTop = top;
    this.n = n;
    this.slots = new Int32Array(pow2AtLeast(n * 2));
    this.mask = this.slots.length - 1;
    for (let e = this.head, k = 0; e >= 0 && k < n; e = this.next[e], k++) this.place(e);
  }

  /** Puts entry e into its first free slot. */
  private place(e: number): void {
    const mask = this.mask;
    let s = flowHash(this.proto[e], this.inside[e], this.ports[e], this.remote[e]) & mask;
    for (let probe = 0; probe <= mask && this.slots[s] !== 0; probe++) s = (s + 1) & mask;
    this.slots[s] = e + 1;
  }

  get size(): number {
    return this.count;
  }

  /** Entry id of the flow, or -1. */
  find(proto: number, inside: number, ports: number, remote: number): number {
    const mask = this.mask;
    let s = flowHash(proto, inside, ports, remote) & mask;
    for (let probe = 0; probe <= mask; probe++) {
      const e = this.slots[s] - 1;
      if (e < 0) return -1;
      if (
        this.inside[e] === (inside | 0) &&
        this.remote[e] === (remote | 0) &&
        this.ports[e] === (ports | 0) &&
        this.proto[e] === proto
      )
        return e;
      s = (s + 1) & mask;
    }
    return -1;
  }

  /** Packed mapping (addr * 65536 + port) of entry e. */
  mapping(e: number): number {
    return this.addr[e] * 65536 + this.port[e];
  }

  /** When the flow last sent an outbound packet the engine forwarded (µs). */
  lastUs(e: number): number {
    return this.last[e];
  }

  touch(e: number, timeUs: number): void {
    this.last[e] = timeUs;
  }

  /** Learns (or re-learns) a mapping; a changed one becomes the newest, an unchanged one only gets its time. */
  set(proto: number, inside: number, ports: number, remote: number, addr: number, port: number, timeUs: number): void {
    const old = this.find(proto, inside, ports, remote);
    if (old >= 0) {
      if (this.addr[old] === addr >>> 0 && this.port[old] === (port & 0xffff)) {
        this.last[old] = timeUs;
        return;
      }
      this.remove(old);
    }
    if (this.count >= this.cap) {
      this.remove(this.head);
      this.evicted++;
    } else if (this.count >= this.n) this.grow(Math.min(this.cap, this.n * 2));
    const e = this.free[--this.freeTop];
    this.proto[e] = proto;
    this.inside[e] = inside | 0;
    this.ports[e] = ports | 0;
    this.remote[e] = remote | 0;
    this.addr[e] = addr >>> 0;
    this.port[e] = port & 0xffff;
    this.last[e] = timeUs;
    this.prev[e] = this.tail;
    this.next[e] = -1;
    if (this.tail >= 0) this.next[this.tail] = e;
    else this.head = e;
    this.tail = e;
    this.place(e);
    this.count++;
  }

  private remove(e: number): void {
    // Unlink from the insertion order.
    const p = this.prev[e];
    const n = this.next[e];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    // Find its slot, then shift the following cluster back (linear probing deletion).
    const mask = this.mask;
    let s = flowHash(this.proto[e], this.inside[e], this.ports[e], this.remote[e]) & mask;
    for (let probe = 0; probe <= mask && this.slots[s] !== e + 1; probe++) s = (s + 1) & mask;
    let hole = s;
    let j = s;
    for (let probe = 0; probe <= mask; probe++) {
      j = (j + 1) & mask;
      const x = this.slots[j] - 1;
      if (x < 0) break;
      const home = flowHash(this.proto[x], this.inside[x], this.ports[x], this.remote[x]) & mask;
      // x may move into the hole if its home is not cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        this.slots[hole] = x + 1;
        hole = j;
      }
    }
    this.slots[hole] = 0;
    this.free[this.freeTop++] = e;
    this.count--;
  }
}

/**
 * The outbound flows of the engine batch being assembled, each with the time of its latest packet.
 * At most `capacity` flows between two clear() calls (a chunk's packets bound it).
 */
export class PendingFlows {
  private epoch = 1;
  private readonly mask: number;
  private readonly stamp: Int32Array;
  private readonly proto: Uint8Array;
  private readonly inside: Int32Array;
  private readonly ports: Int32Array;
  private readonly remote: Int32Array;
  private readonly time: Float64Array;
  private readonly index: Int32Array;

  constructor(capacity: number) {
    const n = pow2AtLeast(Math.max(1, capacity) * 2);
    this.mask = n - 1;
    this.stamp = new Int32Array(n);
    this.proto = new Uint8Array(n);
    this.inside = new Int32Array(n);
    this.ports = new Int32Array(n);
    this.remote = new Int32Array(n);
    this.time = new Float64Array(n);
    this.index = new Int32Array(n);
  }

  clear(): void {
    this.epoch++;
    if (this.epoch === 0x7fffffff) {
      this.stamp.fill(0);
      this.epoch = 1;
    }
  }

  private slot(proto: number, inside: number, ports: number, remote: number): number {
    const mask = this.mask;
    let s = flowHash(proto, inside, ports, remote) & mask;
    for (let probe = 0; probe <= mask; probe++) {
      if (this.stamp[s] !== this.epoch) return s;
      if (
        this.inside[s] === (inside | 0) &&
        this.remote[s] === (remote | 0) &&
        this.ports[s] === (ports | 0) &&
        this.proto[s] === proto
      )
        return s;
      s = (s + 1) & mask;
    }
    throw new Error('replay: pending flow table full');
  }

  /**
   * The flow's latest pending packet: its time and its index in the engine batch (-1 if not
   * given); returns the index of the flow's pending packet before it, or -1.
   */
  set(proto: number, inside: number, ports: number, remote: number, timeUs: number, index = -1): number {
    const s = this.slot(proto, inside, ports, remote);
    const before = this.stamp[s] === this.epoch ? this.index[s] : -1;
    this.stamp[s] = this.epoch;
    this.proto[s] = proto;
    this.inside[s] = inside | 0;
    this.ports[s] = ports | 0;
    this.remote[s] = remote | 0;
    this.time[s] = timeUs;
    this.index[s] = index;
    return before;
  }

  /** Batch index of the flow's latest pending packet (as given to set), or -1. */
  lastIndex(proto: number, inside: number, ports: number, remote: number): number {
    const s = this.slot(proto, inside, ports, remote);
    return this.stamp[s] === this.epoch ? this.index[s] : -1;
  }

  /** Time of the flow's latest pending packet, or -1. */
  get(proto: number, inside: number, ports: number, remote: number): number {
    const s = this.slot(proto, inside, ports, remote);
    return this.stamp[s] === this.epoch ? this.time[s] : -1;
  }
}
