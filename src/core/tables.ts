// One worker's tables over the shared memory of src/core/layout.ts: the flow table (open
// addressing with linear probing, backward-shift deletion, 4-byte slots with a hash tag), the
// session store (allocation, free list), the timer wheel (lazy: a refresh only stores the new
// expiry; the wheel re-files an entry when its slot comes due; lookups check the exact expiry) and
// the per-NAT-instance list of non-ASSURED entries in creation order (early drop, oldest first).
// Single writer: only the owning worker calls the mutating methods.

import {
  type CoreShared, C_FREE, C_HWM, C_INST, C_INST_WORDS, C_RNG, C_USED, C_WHEEL_CUR, CI_COUNT, CI_NA_HEAD, CI_NA_TAIL,
  FLOW_MAX_PROBE, KIND_BYSRC, KIND_ORIG, M_BYSRC, M_LIVE, M_NALIST, M_PROTO_MASK, M_SEQ_SHIFT, M_SLOT_MASK, M_SLOT_SHIFT,
  SESSION_WORDS, S_CREATED, S_EXPIRY, S_META, S_NNEXT, S_NPREV, S_OPORTS, S_ODST, S_OSRC, S_RPORTS, S_RDST, S_RSRC,
  S_WNEXT, S_WPREV, WHEEL_GRAN_BITS, WHEEL_SLOTS, SharedViews,
} from './layout.ts';

const WHEEL_MASK = WHEEL_SLOTS - 1;
/** S_WPREV of a list head: the slot index with this bit (so unlinking can clear the head). */
const WHEAD = 0x80000000;

/** 32-bit hash of a tuple key (NAT slot, proto, two addresses, ports word). */
export function hashTuple(slot: number, proto: number, a: number, b: number, ports: number): number {
  let h = Math.imul(a ^ 0x27d4eb2f, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ b, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ ports, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ((proto << 8) | slot), 0x2c1b3c6d);
  return (h ^ (h >>> 15)) >>> 0;
}

/** Hash of a bysource key (NAT slot, proto, orig src, orig sport). */
export function hashBysrc(slot: number, proto: number, src: number, sport: number): number {
  return hashTuple(slot | 0x40, proto, src, 0x6b43a9b5, sport);
}

export class Tables {
  readonly shared: CoreShared;
  readonly w: number;
  readonly v: SharedViews;
  readonly ses: Uint32Array;
  readonly flow: Uint32Array;
  readonly wheel: Int32Array;
  readonly ctl: Int32Array;
  readonly sBase: number;
  readonly capW: number;
  readonly fBase: number;
  readonly nSlots: number;
  readonly wBase: number;
  readonly cBase: number;
  readonly refBits: number;
  readonly refMask: number;
  readonly tagMask: number;
  /** Result of the last lookup: local session index and kind. */
  hitLocal = -1;
  hitKind = -1;

  constructor(shared: CoreShared, w: number) {
    this.shared = shared;
    this.w = w;
    this.v = new SharedViews(shared);
    this.ses = this.v.sessions;
    this.flow = this.v.flow;
    this.wheel = this.v.wheel;
    this.ctl = this.v.ctl;
    this.capW = shared.capW;
    this.sBase = w * shared.capW;
    this.nSlots = shared.slotsW;
    this.fBase = w * shared.slotsW;
    this.wBase = w * WHEEL_SLOTS;
    this.cBase = w * shared.ctlWords;
    this.refBits = shared.refBits;
    this.refMask = ((1 << shared.refBits) - 1) >>> 0;
    this.tagMask = (((1 << (32 - shared.refBits)) >>> 0) - 1) >>> 0;
  }

  /** Record offset (in words) of local session i. */
  rec(i: number): number {
    return (this.sBase + i) * SESSION_WORDS;
  }

  /** Home slot of hash h: multiply-shift range reduction over all 32 bits (any slot count). */
  home(h: number): number {
    return (h * this.nSlots * 2.3283064365386963e-10) | 0;
  }

  // ---- flow table ----------------------------------------------------------------------------

  /**
   * Finds the session with tuple (a, b, ports) of NAT slot `slot` and protocol `proto` in either
   * direction. Returns the local index (and sets hitKind) or -1. Does not check expiry.
   */
  lookup(slot: number, proto: number, a: number, b: number, ports: number): number {
    const h = hashTuple(slot, proto, a, b, ports);
    const flow = this.flow;
    const ses = this.ses;
    const tag = h & this.tagMask;
    const rb = this.refBits;
    let i = this.home(h);
    const n = this.nSlots;
    const fb = this.fBase;
    const want = (proto | (slot << M_SLOT_SHIFT)) >>> 0;
    for (let p = 0; p < FLOW_MAX_PROBE; p++) {
      const v = flow[fb + i];
      if (v === 0) return -1;
      if ((v >>> rb) === tag) {
        const r = (v & this.refMask) - 1;
        const kind = r & 3;
        if (kind !== KIND_BYSRC) {
          const o = (this.sBase + (r >>> 2)) * SESSION_WORDS + kind * 3;
          if (ses[o] === a && ses[o + 1] === b && ses[o + 2] === ports &&
            ((ses[(this.sBase + (r >>> 2)) * SESSION_WORDS + S_META] & (M_PROTO_MASK | (M_SLOT_MASK << M_SLOT_SHIFT))) >>> 0) === want) {
            this.hitKind = kind;
            return (this.hitLocal = r >>> 2);
          }
        }
      }
      if (++i === n) i = 0;
    }
    return -1;
  }

  /** Inserts reference (local, kind) under hash h. False if no free slot within the probe bound. */
  insertRef(h: number, local: number, kind: number): boolean {
    const flow = this.flow;
    const val = (((h & this.tagMask) << this.refBits) | ((local << 2) | kind) + 1) >>> 0;
    let i = this.home(h);
    for (let p = 0; p < FLOW_MAX_PROBE; p++) {
      if (flow[this.fBase + i] === 0) {
        flow[this.fBase + i] = val;
        return true;
      }
      if (++i === this.nSlots) i = 0;
    }
    return false;
  }

  /** Hash of the key stored for (local, kind). */
  keyHash(local: number, kind: number): number {
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    const slot = (meta >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    const proto = meta & M_PROTO_MASK;
    if (kind === KIND_BYSRC) return hashBysrc(slot, proto, ses[o + S_OSRC], ses[o + S_OPORTS] >>> 16);
    const k = o + kind * 3;
    return hashTuple(slot, proto, ses[k], ses[k + 1], ses[k + 2]);
  }

  /** Removes reference (local, kind) (backward-shift deletion: no tombstones). */
  removeRef(local: number, kind: number): void {
    const h = this.keyHash(local, kind);
    const flow = this.flow;
    const fb = this.fBase;
    const n = this.nSlots;
    const ref = ((local << 2) | kind) + 1;
    let i = this.home(h);
    let p = 0;
    for (; p < FLOW_MAX_PROBE; p++) {
      const v = flow[fb + i];
      if (v === 0) return;
      if ((v & this.refMask) === ref) break;
      if (++i === n) i = 0;
    }
    if (p === FLOW_MAX_PROBE) return;
    // Backward shift: move later entries of the cluster into the hole when their home allows.
    let j = i;
    for (let q = 0; q < n; q++) {
      if (++j === n) j = 0;
      const v = flow[fb + j];
      if (v === 0) break;
      const r = (v & this.refMask) - 1;
      const k = this.home(this.keyHash(r >>> 2, r & 3));
      // Entry at j may move to i iff its home k is not cyclically in (i, j].
      const inRange = i <= j ? (k > i && k <= j) : (k > i || k <= j);
      if (!inRange) {
        flow[fb + i] = v;
        i = j;
      }
    }
    flow[fb + i] = 0;
  }

  // ---- bysource (get_unique_tuple step b) -------------------------------------------------------

  /**
   * Live entry of NAT slot `slot` with the same (proto, orig src, orig sport) whose expiry is after
   * nowMs, the most recently created first; -1 if none. Scans the probe cluster (bounded).
   */
  /**
   * The newest live entry of `slot` with a SRC manip and this (proto, orig src, orig sport) whose
   * mapping (reply dst, reply dport / ICMP id) lies in [alo, ahi] × [plo, phi], or -1.
   */
  findBySource(slot: number, proto: number, src: number, sport: number, nowMs: number, skip: number,
    alo: number, ahi: number, plo: number, phi: number): number {
    const h = hashBysrc(slot, proto, src, sport);
    const flow = this.flow;
    const ses = this.ses;
    const tag = h & this.tagMask;
    let i = this.home(h);
    let best = -1;
    let bestCreated = -1;
    for (let p = 0; p < FLOW_MAX_PROBE; p++) {
      const v = flow[this.fBase + i];
      if (v === 0) break;
      if ((v >>> this.refBits) === tag) {
        const r = (v & this.refMask) - 1;
        if ((r & 3) === KIND_BYSRC && (r >>> 2) !== skip) {
          const o = this.rec(r >>> 2);
          const meta = ses[o + S_META];
          if ((meta & M_PROTO_MASK) === proto && ((meta >>> M_SLOT_SHIFT) & M_SLOT_MASK) === slot &&
            ses[o + S_OSRC] === src && (ses[o + S_OPORTS] >>> 16) === sport && nowMs < ses[o + S_EXPIRY] &&
            ses[o + S_CREATED] >= bestCreated && ses[o + S_RDST] >= alo && ses[o + S_RDST] <= ahi &&
            this.mapKey(proto, ses[o + S_RPORTS]) >= plo && this.mapKey(proto, ses[o + S_RPORTS]) <= phi) {
            best = r >>> 2;
            bestCreated = ses[o + S_CREATED];
          }
        }
      }
      if (++i === this.nSlots) i = 0;
    }
    return best;
  }

  /** The mapped port of a reply ports word: TCP/UDP reply dport, ICMP id (others: 0). */
  private mapKey(proto: number, rports: number): number {
    if (proto === 1) return rports >>> 16;
    if (proto === 6 || proto === 17) return rports & 0xffff;
    return 0;
  }

  // ---- session store ---------------------------------------------------------------------------

  /** Allocates a local session index (or -1 if the region is exhausted). */
  alloc(): number {
    const ctl = this.ctl;
    const cb = this.cBase;
    const f = ctl[cb + C_FREE];
    let i: number;
    if (f !== 0) {
      i = f - 1;
      ctl[cb + C_FREE] = this.ses[this.rec(i) + S_WNEXT];
    } else {
      const hwm = ctl[cb + C_HWM];
      if (hwm >= this.capW) return -1;
      i = hwm;
      Atomics.store(ctl, cb + C_HWM, hwm + 1);
    }
    ctl[cb + C_USED]++;
    return i;
  }

  instCount(slot: number): number {
    return this.ctl[this.cBase + C_INST + slot * C_INST_WORDS + CI_COUNT];
  }

  /** Bumps the record's sequence bits (readers detect concurrent changes). */
  touchMeta(o: number, meta: number): void {
    const seq = ((meta >>> M_SEQ_SHIFT) + 1) & 0xf;
    this.ses[o + S_META] = ((meta & 0x0fffffff) | (seq << M_SEQ_SHIFT)) >>> 0;
  }

  /** Frees a live session: flow keys, lists, wheel, counts. */
  release(local: number): void {
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    if ((meta & M_LIVE) === 0) return;
    const slot = (meta >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    this.removeRef(local, KIND_ORIG);
    this.removeRef(local, KIND_ORIG + 1);
    if (meta & M_BYSRC) this.removeRef(local, KIND_BYSRC);
    if (meta & M_NALIST) this.naUnlink(local);
    this.wheelUnlink(local);
    this.touchMeta(o, meta & ~M_LIVE);
    const ctl = this.ctl;
    ctl[this.cBase + C_INST + slot * C_INST_WORDS + CI_COUNT]--;
    ctl[this.cBase + C_USED]--;
    ses[o + S_WNEXT] = ctl[this.cBase + C_FREE];
    ses[o + S_WPREV] = 0;
    ctl[this.cBase + C_FREE] = local + 1;
  }

  // ---- non-ASSURED list (creation order) -----------------------------------------------------------

  naAppend(local: number, slot: number): void {
    const ctl = this.ctl;
    const b = this.cBase + C_INST + slot * C_INST_WORDS;
    const o = this.rec(local);
    const tail = ctl[b + CI_NA_TAIL];
    this.ses[o + S_NPREV] = tail;
    this.ses[o + S_NNEXT] = 0;
    if (tail !== 0) this.ses[this.rec(tail - 1) + S_NNEXT] = local + 1;
    else ctl[b + CI_NA_HEAD] = local + 1;
    ctl[b + CI_NA_TAIL] = local + 1;
  }

  naUnlink(local: number): void {
    const o = this.rec(local);
    const ses = this.ses;
    const slot = (ses[o + S_META] >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    const b = this.cBase + C_INST + slot * C_INST_WORDS;
    const prev = ses[o + S_NPREV];
    const next = ses[o + S_NNEXT];
    if (prev !== 0) ses[this.rec(prev - 1) + S_NNEXT] = next;
    else this.ctl[b + CI_NA_HEAD] = next;
    if (next !== 0) ses[this.rec(next - 1) + S_NPREV] = prev;
    else this.ctl[b + CI_NA_TAIL] = prev;
    ses[o + S_NPREV] = 0;
    ses[o + S_NNEXT] = 0;
    ses[o + S_META] = (ses[o + S_META] & ~M_NALIST) >>> 0;
  }

  /** Oldest-created non-ASSURED session of NAT slot `slot`, or -1. */
  naOldest(slot: number): number {
    const h = this.ctl[this.cBase + C_INST + slot * C_INST_WORDS + CI_NA_HEAD];
    return h - 1;
  }

  // ---- timer wheel ------------------------------------------------------------------------------------

  /** Files a session under the wheel slot of its expiry (clamped to the wheel's horizon). */
  wheelLink(local: number, expiry: number, after = false): void {
    // `after`: re-filing out of the current slot while it is being emptied — file strictly later,
    // but still within the horizon [cur + 1, cur + WHEEL_SLOTS - 1], never back into the current
    // slot (cur + WHEEL_SLOTS would alias it and the advance would loop forever).
    const cur = this.ctl[this.cBase + C_WHEEL_CUR];
    let abs = Math.floor(expiry / (1 << WHEEL_GRAN_BITS));
    const lo = after ? cur + 1 : cur;
    if (abs < lo) abs = lo;
    if (abs > cur + WHEEL_SLOTS - 1) abs = cur + WHEEL_SLOTS - 1;
    const idx = abs & WHEEL_MASK;
    const o = this.rec(local);
    const ses = this.ses;
    const head = this.wheel[this.wBase + idx];
    ses[o + S_WPREV] = (WHEAD | idx) >>> 0;
    ses[o + S_WNEXT] = head;
    if (head !== 0) ses[this.rec(head - 1) + S_WPREV] = local + 1;
    this.wheel[this.wBase + idx] = local + 1;
  }

  wheelUnlink(local: number): void {
    const o = this.rec(local);
    const ses = this.ses;
    const prev = ses[o + S_WPREV];
    const next = ses[o + S_WNEXT];
    if (prev === 0) return; // not linked
    if (prev & WHEAD) this.wheel[this.wBase + (prev & WHEEL_MASK)] = next;
    else ses[this.rec(prev - 1) + S_WNEXT] = next;
    if (next !== 0) ses[this.rec(next - 1) + S_WPREV] = prev;
    ses[o + S_WPREV] = 0;
    ses[o + S_WNEXT] = 0;
  }

  /** Re-files a session after its expiry changed (any direction). */
  wheelRefile(local: number, expiry: number): void {
    this.wheelUnlink(local);
    this.wheelLink(local, expiry);
  }

  /**
   * Advances the wheel towards nowMs: re-files or releases the entries of the slots that are fully in
   * the past. At most `budget` entries and 4 * WHEEL_SLOTS empty slots per call. Returns work done.
   */
  wheelAdvance(nowMs: number, budget: number): number {
    const ctl = this.ctl;
    const cb = this.cBase;
    const nowSlot = Math.floor(nowMs / (1 << WHEEL_GRAN_BITS));
    let cur = ctl[cb + C_WHEEL_CUR];
    let work = 0;
    let empties = 0;
    const ses = this.ses;
    while (cur < nowSlot && work < budget) {
      if (ctl[cb + C_USED] === 0) {
        cur = nowSlot;
        break;
      }
      const idx = cur & WHEEL_MASK;
      const head = this.wheel[this.wBase + idx];
      if (head === 0) {
        cur++;
        if (++empties > 4 * WHEEL_SLOTS) break;
        continue;
      }
      const local = head - 1;
      const exp = ses[this.rec(local) + S_EXPIRY];
      work++;
      if (nowMs >= exp) {
        this.release(local);
      } else {
        this.wheelUnlink(local);
        ctl[cb + C_WHEEL_CUR] = cur;
        this.wheelLink(local, exp, true); // strictly after the slot being emptied
      }
    }
    ctl[cb + C_WHEEL_CUR] = cur;
    return work;
  }

  /** Releases every entry that is expired at nowMs (table-full path: exact live counts). */
  drainExpired(nowMs: number): void {
    for (;;) {
      const before = this.ctl[this.cBase + C_WHEEL_CUR];
      this.wheelAdvance(nowMs, 0x7fffffff);
      const nowSlot = Math.floor(nowMs / (1 << WHEEL_GRAN_BITS));
      if (this.ctl[this.cBase + C_WHEEL_CUR] >= nowSlot || this.ctl[this.cBase + C_WHEEL_CUR] === before) break;
    }
    // The current slot: detach its list, release the expired, re-file the rest.
    const cur = this.ctl[this.cBase + C_WHEEL_CUR];
    const idx = cur & WHEEL_MASK;
    let e = this.wheel[this.wBase + idx];
    this.wheel[this.wBase + idx] = 0;
    const ses = this.ses;
    while (e !== 0) {
      const local = e - 1;
      const o = this.rec(local);
      e = ses[o + S_WNEXT];
      ses[o + S_WPREV] = 0;
      ses[o + S_WNEXT] = 0;
      if (nowMs >= ses[o + S_EXPIRY]) this.release(local);
      else this.wheelLink(local, ses[o + S_EXPIRY]);
    }
  }

  // ---- misc ------------------------------------------------------------------------------------------

  /** xorshift32: next pseudo-random 32-bit value of this worker (seeded by CoreShared.seed). */
  rand(): number {
    let x = this.ctl[this.cBase + C_RNG];
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.ctl[this.cBase + C_RNG] = x;
    return x >>> 0;
  }

  /** Tuple words of local session i, kind k: [src, dst, ports]. */
  tupleOff(local: number, kind: number): number {
    return this.rec(local) + kind * 3;
  }
}

export { S_OSRC, S_ODST, S_OPORTS, S_RSRC, S_RDST, S_RPORTS };
