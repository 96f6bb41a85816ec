// One worker's tables over the shared memory of src/core/layout.ts: the flow table (open
// addressing with linear probing to the first empty slot, backward-shift deletion, 4-byte slots
// with a hash tag, a keyed hash), the bysource chains (nf_nat_bysource: one flow-table entry per
// distinct (proto, orig src, orig sport) key, heading a newest-first doubly linked chain through
// the sessions), the session store (allocation, free list), the timer wheel (lazy: a refresh only
// stores the new expiry; the wheel re-files an entry when its slot comes due; lookups check the
// exact expiry) and the per-NAT-instance list of non-ASSURED entries in creation order (early
// drop, oldest first). Single writer: only the owning worker calls the mutating methods.
//
// Guarantee: no flow-table insert fails while the region holds at most its capacity of sessions,
// whatever the keys: every live session owns at most FLOW_KEYS slots (orig, reply, and a bysource
// slot only if it is the newest of its key), the region has FLOW_KEYS * capacity / FLOW_LOAD
// slots, so an empty slot always exists and probing (bounded by the table size) reaches it.
// Sessions sharing a bysource key (one socket talking to many peers) share one slot instead of
// piling up in one probe cluster. The hash is keyed by the run's hash seed, so flow sets chosen
// by an outsider cannot be made to cluster without knowing the seed.

import {
  type CoreShared,
  B_NEXT,
  B_PREV,
  BYSRC_WORDS,
  C_FREE,
  C_HWM,
  C_INST,
  C_INST_WORDS,
  C_RNG,
  C_USED,
  C_WHEEL_CUR,
  CI_COUNT,
  FE_ADDR,
  FE_DST,
  FE_EXPIRY,
  FE_FAST,
  FE_KEY_MASK,
  FE_META,
  FE_PATH_SHIFT,
  FE_PORT,
  FE_PORTS,
  FE_SIDE_DST,
  FE_SRC,
  FE_WORDS,
  M_ASSURED,
  M_PATH_O,
  M_PATH_R,
  M_STATE_MASK,
  M_STATE_SHIFT,
  S_PATH,
  TCP_ESTABLISHED,
  CI_NA_HEAD,
  CI_NA_TAIL,
  CI_QUOTA_BATCH,
  C_SG_BATCH,
  CI_PORT_BATCH,
  KIND_BYSRC,
  KIND_ORIG,
  M_BYSRC,
  M_LIVE,
  M_NALIST,
  M_PROTO_MASK,
  M_SEQ_MASK,
  M_SEQ_SHIFT,
  M_SLOT_MASK,
  M_SLOT_SHIFT,
  SESSION_WORDS,
  TCPW_WORDS,
  S_EXPIRY,
  S_META,
  S_NNEXT,
  S_NPREV,
  S_SG_STATE,
  S_OPORTS,
  S_ODST,
  S_OSRC,
  S_RPORTS,
  S_RDST,
  S_RSRC,
  S_WNEXT,
  S_WPREV,
  WHEEL_GRAN_BITS,
  WHEEL_SLOTS,
  SharedViews,
} from './layout.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { PRNG_INCREMENT, prngOutput } from '../spec/prng.ts';

const WHEEL_MASK = WHEEL_SLOTS - 1;
/** S_WPREV of a list head: the slot index with this bit (so unlinking can clear the head). */
const WHEAD = 0x80000000;

/** Sessions the slow path may pull during one packet and sync afterwards ('line' layout). */
const TOUCH_MAX = 32;

/** Added to the NAT slot (0..63) in the last word of a bysource key. */
const BYSRC_FLAG = 0x40;

/**
 * The flow-table hash key of hash seed `seed`: three 30-bit words of a splitmix32 stream (30 bits:
 * V8 keeps them as small integers in the Tables fields). A pure function of the seed, so every
 * worker (and a replacement worker) hashes alike.
 */
export function hashKey(seed: number): number[] {
  const k: number[] = [];
  let x = (seed ^ 0x5bd1e995) | 0;
  for (let i = 0; i < 3; i++) {
    x = (x + 0x9e3779b9) | 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    k.push((z ^ (z >>> 16)) & 0x3fffffff);
  }
  return k;
}

/** Who holds sessions' lazy security-group state (aws-filters.ts AwsFilters). */
export interface SgSessionHook {
  /** Applies session `local`'s pending refresh to the tracked flows it owns and forgets them. */
  detachSession(local: number): void;
}

export class Tables {
  readonly shared: CoreShared;
  readonly w: number;
  readonly v: SharedViews;
  readonly ses: Uint32Array;
  readonly flow: Uint32Array;
  readonly chain: Uint32Array;
  /** TCP window words (layout.ts TCPW_WORDS per session); session i's at tw(i). */
  readonly tcpw: Uint32Array;
  readonly wheel: Int32Array;
  readonly ctl: Int32Array;
  readonly sBase: number;
  readonly capW: number;
  readonly fBase: number;
  readonly nSlots: number;
  readonly chBase: number;
  readonly wBase: number;
  readonly cBase: number;
  readonly refBits: number;
  readonly refMask: number;
  readonly tagMask: number;
  /** Words per flow slot (1, or FE_WORDS in the 'line' layout). */
  readonly fs: number;
  /**
   * The bysource keys' slots (4 bytes each): the flow table itself in the 'record' layout, a
   * table of their own (the `bysrc` region) in the 'line' layout.
   */
  readonly bflow: Uint32Array;
  readonly bBase: number;
  readonly bSlots: number;
  /** The 'line' layout: flow entries carry the key, the composed rewrite and an expiry copy. */
  readonly fat: boolean;
  /** Sessions the slow path reached during the current packet ('line' layout; see pull / syncTouched). */
  private readonly touched = new Int32Array(TOUCH_MAX);
  private touchedN = 0;
  private readonly eipAddr: Uint32Array;
  /** The hash key (hashKey(shared.hashSeed)): 30-bit words, small integers for V8. */
  readonly k0: number;
  readonly k1: number;
  readonly k2: number;
  /**
   * The security groups' lazy state (aws-filters.ts, set by the slow path when the scenario has
   * filters): told before a session that owns tracked flows is released or rebased, so that their
   * pending refresh is applied while the session's S_SG_SEEN still says when it was.
   */
  sgHook: SgSessionHook | null = null;
  /** Result of the last lookup: local session index and kind. */
  hitLocal = -1;
  hitKind = -1;

  constructor(shared: CoreShared, w: number) {
    this.shared = shared;
    this.w = w;
    this.v = new SharedViews(shared);
    this.ses = this.v.sessions;
    this.flow = this.v.flow;
    this.chain = this.v.chain;
    this.tcpw = this.v.tcpw;
    this.wheel = this.v.wheel;
    this.ctl = this.v.ctl;
    this.capW = shared.capW;
    this.sBase = w * shared.capW;
    this.nSlots = shared.slotsW;
    this.fs = shared.flowStride;
    this.fat = shared.layout === 'line';
    this.fBase = w * shared.slotsW * shared.flowStride;
    if (shared.bysrcSlotsW > 0) {
      this.bflow = new Uint32Array(shared.sabs.bysrc);
      this.bSlots = shared.bysrcSlotsW;
      this.bBase = w * shared.bysrcSlotsW;
    } else {
      this.bflow = this.flow;
      this.bSlots = this.nSlots;
      this.bBase = this.fBase;
    }
    this.eipAddr = shared.compiled.eipAddr;
    this.chBase = w * shared.capW * BYSRC_WORDS;
    this.wBase = w * WHEEL_SLOTS;
    this.cBase = w * shared.ctlWords;
    this.refBits = shared.refBits;
    this.refMask = ((1 << shared.refBits) - 1) >>> 0;
    this.tagMask = (((1 << (32 - shared.refBits)) >>> 0) - 1) >>> 0;
    const key = hashKey(shared.hashSeed);
    this.k0 = key[0];
    this.k1 = key[1];
    this.k2 = key[2];
  }

  /** Record offset (in words) of local session i. */
  rec(i: number): number {
    return (this.sBase + i) * SESSION_WORDS;
  }

  /** Offset (in words) of local session i's TCP window words: + kind = that direction's td_maxack. */
  tw(i: number): number {
    return (this.sBase + i) * TCPW_WORDS;
  }

  /** Home slot of hash h: multiply-shift range reduction over all 32 bits (any slot count). */
  home(h: number): number {
    return (h * this.nSlots * 2.3283064365386963e-10) | 0;
  }

  /** Home slot of hash h in a table of n slots. */
  private homeIn(h: number, n: number): number {
    return (h * n * 2.3283064365386963e-10) | 0;
  }

  // ---- keyed hash ------------------------------------------------------------------------------

  /**
   * 32-bit keyed hash of a tuple key (NAT slot, proto, two addresses, ports word). A multiply /
   * xorshift mix (murmur3's constants) where each word enters by addition after an XOR with a
   * per-run secret key word: which tuples share a home slot depends on arithmetic differences
   * that carry through the key, so an outsider without the seed cannot pick a colliding flow set.
   * (Additions are truncated with `| 0`: int32 arithmetic, no heap numbers.)
   */
  hashTuple(slot: number, proto: number, a: number, b: number, ports: number): number {
    let h = Math.imul((a + this.k0) | 0, 0x9e3779b1);
    h = Math.imul(((h ^ (h >>> 15)) + (b ^ this.k1)) | 0, 0x85ebca6b);
    h = Math.imul(((h ^ (h >>> 13)) + (ports ^ this.k2)) | 0, 0xc2b2ae35);
    h = Math.imul(((h ^ (h >>> 16)) + ((proto << 8) | slot)) | 0, 0x2c1b3c6d);
    return (h ^ (h >>> 15)) >>> 0;
  }

  /** Keyed hash of a bysource key (NAT slot, proto, orig src, orig sport / ICMP id). */
  /**
   * Session setup's prefetch (Dataplane.processBatch, tables above the cache): loads the home
   * slots of a new flow's bysource key and — when `natAddr` is not 0 — of its reply key as a kept
   * port would make it (src = the flow's destination, dst = natAddr): the two random lines
   * get_unique_tuple's lookups and confirm's inserts touch, overlapped with the group's other
   * misses. A guess only: a wrong one costs one load. Returns the loaded words (keeps the loads).
   */
  touchNewKeys(slot: number, proto: number, src: number, dst: number, ports: number, natAddr: number): number {
    let v = this.bflow[this.bBase + this.homeIn(this.hashBysrc(slot, proto, src, ports >>> 16), this.bSlots)];
    if (natAddr !== 0) {
      const h = this.hashTuple(slot, proto, dst, natAddr, ((ports << 16) | (ports >>> 16)) >>> 0);
      v ^= this.flow[this.fBase + this.homeIn(h, this.nSlots) * this.fs];
    }
    return v;
  }

  hashBysrc(slot: number, proto: number, src: number, sport: number): number {
    return this.hashTuple(slot | BYSRC_FLAG, proto, src, 0, sport);
  }

  // ---- flow table ----------------------------------------------------------------------------

  /**
   * Finds the session with tuple (a, b, ports) of NAT slot `slot` and protocol `proto` in either
   * direction. Returns the local index (and sets hitKind) or -1. Does not check expiry. Probes to
   * the first empty slot (one exists: load ≤ FLOW_LOAD); the table size bounds the loop.
   */
  lookup(slot: number, proto: number, a: number, b: number, ports: number): number {
    const l = this.find(slot, proto, a, b, ports);
    if (l >= 0 && this.fat) this.pull(l);
    return l;
  }

  /**
   * The 'record' layout's lookup at a known flow slot `k` (Dataplane's key pass found the key's
   * hash tag there): the local session (and hitKind) if slot k holds this key, else -1 — then the
   * probe (lookup) decides. Exact wherever k came from: a key is in the table once, so a slot that
   * holds it is the one the probe would reach.
   */
  findAt(k: number, slot: number, proto: number, a: number, b: number, ports: number): number {
    const v = this.flow[this.fBase + k];
    if (v === 0) return -1;
    const r = (v & this.refMask) - 1;
    const kind = r & 3;
    if (kind === KIND_BYSRC) return -1;
    const ses = this.ses;
    const rec = (this.sBase + (r >>> 2)) * SESSION_WORDS;
    const o = rec + kind * 3;
    if (
      ((ses[o] ^ a) |
        (ses[o + 1] ^ b) |
        (ses[o + 2] ^ ports) |
        ((ses[rec + S_META] & (M_PROTO_MASK | (M_SLOT_MASK << M_SLOT_SHIFT))) ^ (proto | (slot << M_SLOT_SHIFT)))) !==
      0
    )
      return -1;
    this.hitKind = kind;
    return (this.hitLocal = r >>> 2);
  }

  /** lookup without the 'line' layout's pull (the record's expiry may be behind its entries'). */
  private find(slot: number, proto: number, a: number, b: number, ports: number): number {
    const h = this.hashTuple(slot, proto, a, b, ports);
    const fs = this.fs;
    const flow = this.flow;
    const ses = this.ses;
    const tag = h & this.tagMask;
    const rb = this.refBits;
    let i = this.home(h);
    const n = this.nSlots;
    const fb = this.fBase;
    const want = (proto | (slot << M_SLOT_SHIFT)) >>> 0;
    for (let p = 0; p < n; p++) {
      const v = flow[fb + i * fs];
      if (v === 0) {
        this.noteMiss(h, slot, proto, a, b, ports, i);
        return -1;
      }
      if (v >>> rb === tag) {
        const r = (v & this.refMask) - 1;
        const kind = r & 3;
        if (kind !== KIND_BYSRC) {
          const o = (this.sBase + (r >>> 2)) * SESSION_WORDS + kind * 3;
          if (
            ses[o] === a &&
            ses[o + 1] === b &&
            ses[o + 2] === ports &&
            (ses[(this.sBase + (r >>> 2)) * SESSION_WORDS + S_META] &
              (M_PROTO_MASK | (M_SLOT_MASK << M_SLOT_SHIFT))) >>>
              0 ===
              want
          ) {
            this.hitKind = kind;
            return (this.hitLocal = r >>> 2);
          }
        }
      }
      if (++i === n) i = 0;
    }
    return -1;
  }

  /**
   * Inserts reference (local, kind) under hash h at the first empty slot from its home. Never
   * fails while the region holds at most its capacity (see the header); an empty slot missing
   * within the whole table is a broken invariant, thrown as an internal error.
   */
  insertRef(h: number, local: number, kind: number): void {
    const bys = kind === KIND_BYSRC;
    const flow = bys ? this.bflow : this.flow;
    const fb = bys ? this.bBase : this.fBase;
    const val = this.refValue(h, local, kind);
    const n = bys ? this.bSlots : this.nSlots;
    const fs = bys ? 1 : this.fs;
    if (bys) this.moves++;
    let i = this.homeIn(h, n);
    for (let p = 0; p < n; p++) {
      const e = fb + i * fs;
      if (flow[e] === 0) {
        flow[e] = val;
        if (this.fat && !bys) this.fillEntry(e, local, kind);
        return;
      }
      if (++i === n) i = 0;
    }
    throw new Error(`core: flow table of worker ${this.w} has no empty slot (${n} slots): internal error`);
  }

  /** The flow-slot word of reference (local, kind) under hash h: its hash tag above the reference. */
  private refValue(h: number, local: number, kind: number): number {
    return (((h & this.tagMask) << this.refBits) | (((local << 2) | kind) + 1)) >>> 0;
  }

  // ---- the last misses (session setup: a new flow's keys are looked up, then inserted) ---------
  //
  // A lookup that misses ends at the first empty slot of its key's probe run; that slot is where
  // an insert of the key would go. It stays so while the slot is empty and no slot was emptied
  // (removeAt: backward shift) since — inserts only fill empty slots, so the occupied run before
  // it stays occupied. insertKey then stores the key there without hashing or probing again.
  // Two misses are kept (a new flow's orig key, from the fast path's lookup, and its reply key,
  // from get_unique_tuple's nf_nat_used_tuple); key words as int32 (small integers for V8).

  /** Slots emptied so far (removeAt, either table): a remembered miss is valid while this is unchanged. */
  removals = 0;
  private mAt0 = -1;
  private mH0 = 0;
  private mKey0 = 0;
  private mA0 = 0;
  private mB0 = 0;
  private mP0 = 0;
  private mRem0 = 0;
  private mAt1 = -1;
  private mH1 = 0;
  private mKey1 = 0;
  private mA1 = 0;
  private mB1 = 0;
  private mP1 = 0;
  private mRem1 = 0;
  private mNext = 0;

  /** Remembers that key (slot, proto, a, b, ports) with hash h is absent and its probe run ends at empty slot `at`. */
  noteMiss(h: number, slot: number, proto: number, a: number, b: number, ports: number, at: number): void {
    const key = proto | (slot << 8);
    if (this.mNext === 0) {
      this.mAt0 = at;
      this.mH0 = h | 0;
      this.mKey0 = key;
      this.mA0 = a | 0;
      this.mB0 = b | 0;
      this.mP0 = ports | 0;
      this.mRem0 = this.removals;
      this.mNext = 1;
    } else {
      this.mAt1 = at;
      this.mH1 = h | 0;
      this.mKey1 = key;
      this.mA1 = a | 0;
      this.mB1 = b | 0;
      this.mP1 = ports | 0;
      this.mRem1 = this.removals;
      this.mNext = 0;
    }
  }

  /**
   * Inserts reference (local, kind) of key (slot, proto, a, b, ports) (orig or reply: the flow
   * table): at a remembered miss's slot when it is still the first empty one of the key's run,
   * else as insertRef.
   */
  insertKey(slot: number, proto: number, a: number, b: number, ports: number, local: number, kind: number): void {
    const key = proto | (slot << 8);
    const a32 = a | 0;
    const b32 = b | 0;
    const p32 = ports | 0;
    const rem = this.removals;
    let at = -1;
    let h = 0;
    if (
      this.mAt0 >= 0 &&
      this.mRem0 === rem &&
      this.mA0 === a32 &&
      this.mB0 === b32 &&
      this.mP0 === p32 &&
      this.mKey0 === key
    ) {
      at = this.mAt0;
      h = this.mH0;
    } else if (
      this.mAt1 >= 0 &&
      this.mRem1 === rem &&
      this.mA1 === a32 &&
      this.mB1 === b32 &&
      this.mP1 === p32 &&
      this.mKey1 === key
    ) {
      at = this.mAt1;
      h = this.mH1;
    }
    const e = this.fBase + at * this.fs;
    if (at < 0 || this.flow[e] !== 0) {
      this.insertRef(this.hashTuple(slot, proto, a, b, ports), local, kind);
      return;
    }
    this.flow[e] = this.refValue(h, local, kind);
    if (this.fat) this.fillEntry(e, local, kind);
  }

  /** 'line' layout: the key words of a new entry at word e (not FE_FAST: the slow path syncs it). */
  private fillEntry(e: number, local: number, kind: number): void {
    const flow = this.flow;
    const o = this.rec(local);
    const k = o + kind * 3;
    flow[e + FE_SRC] = this.ses[k];
    flow[e + FE_DST] = this.ses[k + 1];
    flow[e + FE_PORTS] = this.ses[k + 2];
    flow[e + FE_META] = this.ses[o + S_META] & FE_KEY_MASK;
    flow[e + FE_ADDR] = 0;
    flow[e + FE_PORT] = 0;
    flow[e + FE_EXPIRY] = 0;
  }

  /** Hash of the key stored for (local, kind). */
  keyHash(local: number, kind: number): number {
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    const slot = (meta >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    const proto = meta & M_PROTO_MASK;
    if (kind === KIND_BYSRC) return this.hashBysrc(slot, proto, ses[o + S_OSRC], ses[o + S_OPORTS] >>> 16);
    const k = o + kind * 3;
    return this.hashTuple(slot, proto, ses[k], ses[k + 1], ses[k + 2]);
  }

  /** Flow slot (0..nSlots) holding reference (local, kind), found from hash h; -1 if absent. */
  private refSlot(h: number, local: number, kind: number): number {
    const bys = kind === KIND_BYSRC;
    const flow = bys ? this.bflow : this.flow;
    const fb = bys ? this.bBase : this.fBase;
    const n = bys ? this.bSlots : this.nSlots;
    const ref = ((local << 2) | kind) + 1;
    const fs = bys ? 1 : this.fs;
    let i = this.homeIn(h, n);
    for (let p = 0; p < n; p++) {
      const v = flow[fb + i * fs];
      if (v === 0) return -1;
      if ((v & this.refMask) === ref) return i;
      if (++i === n) i = 0;
    }
    return -1;
  }

  /** Removes reference (local, kind) (backward-shift deletion: no tombstones). */
  removeRef(local: number, kind: number): void {
    const at = this.refSlot(this.keyHash(local, kind), local, kind);
    if (at >= 0) this.removeAt(at, kind === KIND_BYSRC);
  }

  /** Empties flow slot i and shifts later entries of its cluster back where their homes allow. */
  private removeAt(i: number, bys: boolean): void {
    this.moves++;
    this.removals++;
    const flow = bys ? this.bflow : this.flow;
    const fb = bys ? this.bBase : this.fBase;
    const n = bys ? this.bSlots : this.nSlots;
    const fs = bys ? 1 : this.fs;
    let j = i;
    for (let q = 0; q < n; q++) {
      if (++j === n) j = 0;
      const v = flow[fb + j * fs];
      if (v === 0) break;
      const r = (v & this.refMask) - 1;
      const k = this.homeIn(this.keyHash(r >>> 2, r & 3), n);
      // Entry at j may move to i iff its home k is not cyclically in (i, j].
      const inRange = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!inRange) {
        flow.copyWithin(fb + i * fs, fb + j * fs, fb + j * fs + fs);
        i = j;
      }
    }
    flow.fill(0, fb + i * fs, fb + i * fs + fs);
  }

  // ---- bysource (get_unique_tuple step b) -------------------------------------------------------

  /**
   * Bysource slots moved or added (removeAt's backward shift, a bysource insert): a remembered
   * bysource slot (bsAt) stays right while this is unchanged.
   */
  private moves = 0;
  /** The last findBySource's key, its hash and its key's slot (or -1), valid while bsMoves === moves. */
  private bsMoves = -1;
  private bsSlot = 0;
  private bsProto = 0;
  private bsSrc = 0;
  private bsSport = 0;
  private bsH = 0;
  private bsAt = -1;

  /**
   * The flow slot of the bysource key (slot, proto, src, sport) with hash h — its value references
   * the newest session of the key's chain — or -1 if no session has this key.
   */
  private bysrcHead(h: number, slot: number, proto: number, src: number, sport: number): number {
    const flow = this.bflow;
    const ses = this.ses;
    const tag = h & this.tagMask;
    const n = this.bSlots;
    const fb = this.bBase;
    let i = this.homeIn(h, n);
    for (let p = 0; p < n; p++) {
      const v = flow[fb + i];
      if (v === 0) return -1;
      if (v >>> this.refBits === tag) {
        const r = (v & this.refMask) - 1;
        if ((r & 3) === KIND_BYSRC) {
          const o = this.rec(r >>> 2);
          const meta = ses[o + S_META];
          if (
            (meta & M_PROTO_MASK) === proto &&
            ((meta >>> M_SLOT_SHIFT) & M_SLOT_MASK) === slot &&
            ses[o + S_OSRC] === src &&
            ses[o + S_OPORTS] >>> 16 === sport
          )
            return i;
        }
      }
      if (++i === n) i = 0;
    }
    return -1;
  }

  /**
   * Puts session `local` (its record holds the key: meta slot/proto, orig src, orig sport) at the
   * head of its bysource chain (hlist_add_head: newest first). One flow slot per distinct key.
   */
  bysrcLink(local: number): void {
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    const slot = (meta >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    const proto = meta & M_PROTO_MASK;
    const src = ses[o + S_OSRC];
    const sport = ses[o + S_OPORTS] >>> 16;
    // The new session's key is usually the one its port search just looked up (findBySource).
    const known =
      this.bsMoves === this.moves &&
      this.bsSlot === slot &&
      this.bsProto === proto &&
      this.bsSrc === src &&
      this.bsSport === sport;
    const h = known ? this.bsH : this.hashBysrc(slot, proto, src, sport);
    const ch = this.chain;
    const c = this.chBase + local * BYSRC_WORDS;
    const at = known ? this.bsAt : this.bysrcHead(h, slot, proto, src, sport);
    ch[c + B_PREV] = 0;
    if (at < 0) {
      ch[c + B_NEXT] = 0;
      this.insertRef(h, local, KIND_BYSRC);
      return;
    }
    const v = this.bflow[this.bBase + at];
    const head = ((v & this.refMask) - 1) >>> 2;
    ch[c + B_NEXT] = head + 1;
    ch[this.chBase + head * BYSRC_WORDS + B_PREV] = local + 1;
    this.bflow[this.bBase + at] = ((v & ~this.refMask) | (((local << 2) | KIND_BYSRC) + 1)) >>> 0;
  }

  /** Takes session `local` out of its bysource chain (O(1); the key's slot goes with its last session). */
  bysrcUnlink(local: number): void {
    const ch = this.chain;
    const c = this.chBase + local * BYSRC_WORDS;
    const prev = ch[c + B_PREV];
    const next = ch[c + B_NEXT];
    ch[c + B_PREV] = 0;
    ch[c + B_NEXT] = 0;
    if (next !== 0) ch[this.chBase + (next - 1) * BYSRC_WORDS + B_PREV] = prev;
    if (prev !== 0) {
      ch[this.chBase + (prev - 1) * BYSRC_WORDS + B_NEXT] = next;
      return;
    }
    // The head: its key's slot now references the next session, or goes.
    const at = this.refSlot(this.keyHash(local, KIND_BYSRC), local, KIND_BYSRC);
    if (at < 0) return;
    if (next === 0) {
      this.removeAt(at, true);
    } else {
      const v = this.bflow[this.bBase + at];
      this.bflow[this.bBase + at] = ((v & ~this.refMask) | ((((next - 1) << 2) | KIND_BYSRC) + 1)) >>> 0;
    }
  }

  /**
   * find_appropriate_src: the newest live session of NAT slot `slot` with a SRC manip and this
   * (proto, orig src, orig sport) whose mapping (reply dst, reply dport / ICMP id) lies in
   * [alo, ahi] × [plo, phi], or -1. Walks the key's chain newest-first (at most every session of
   * the region); a dead entry met on the way is released (it is invisible to lookups anyway), so
   * lazily expired entries are walked over at most once.
   */
  findBySource(
    slot: number,
    proto: number,
    src: number,
    sport: number,
    nowMs: number,
    alo: number,
    ahi: number,
    plo: number,
    phi: number,
  ): number {
    const h = this.hashBysrc(slot, proto, src, sport);
    const at = this.bysrcHead(h, slot, proto, src, sport);
    this.bsMoves = this.moves;
    this.bsSlot = slot;
    this.bsProto = proto;
    this.bsSrc = src;
    this.bsSport = sport;
    this.bsH = h;
    this.bsAt = at;
    if (at < 0) return -1;
    const ses = this.ses;
    const ch = this.chain;
    let e = (((this.bflow[this.bBase + at] & this.refMask) - 1) >>> 2) + 1;
    for (let p = 0; p < this.capW && e !== 0; p++) {
      const local = e - 1;
      e = ch[this.chBase + local * BYSRC_WORDS + B_NEXT];
      const o = this.rec(local);
      if (nowMs >= (this.fat ? this.foldExpiry(local) : ses[o + S_EXPIRY])) {
        this.release(local);
        continue;
      }
      const rdst = ses[o + S_RDST];
      const key = this.mapKey(proto, ses[o + S_RPORTS]);
      if (rdst >= alo && rdst <= ahi && key >= plo && key <= phi) return local;
    }
    return -1;
  }

  /** Sessions in the bysource chain of a key (tests, diagnostics; walks the chain). */
  bysrcChainLength(slot: number, proto: number, src: number, sport: number): number {
    const at = this.bysrcHead(this.hashBysrc(slot, proto, src, sport), slot, proto, src, sport);
    if (at < 0) return 0;
    let e = (((this.bflow[this.bBase + at] & this.refMask) - 1) >>> 2) + 1;
    let n = 0;
    for (; n <= this.capW && e !== 0; n++) e = this.chain[this.chBase + (e - 1) * BYSRC_WORDS + B_NEXT];
    return n;
  }

  /** The mapped port of a reply ports word: TCP/UDP reply dport, ICMP id (others: 0). */
  private mapKey(proto: number, rports: number): number {
    if (proto === PROTO_ICMP) return rports >>> 16;
    if (proto === PROTO_TCP || proto === PROTO_UDP) return rports & 0xffff;
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
      // A plain store: readers (ct-dump.ts) bound their scan by it and check each record's LIVE
      // bit, so a stale or early value only hides or shows a not-yet-live record — no ordering is
      // needed (the record is written after this anyway). Atomics.store is a full fence on x86,
      // which waited here for every pending store of the packet.
      ctl[cb + C_HWM] = hwm + 1;
    }
    ctl[cb + C_USED]++;
    return i;
  }

  instCount(slot: number): number {
    return this.ctl[this.cBase + C_INST + slot * C_INST_WORDS + CI_COUNT];
  }

  /**
   * Records this worker's first quota-limited decision for NAT slot `slot` (packet `pkt` of batch
   * `batchNo`); later ones change nothing. Rare (table full), read by the engine (differences.ts).
   */
  noteQuotaDecision(slot: number, batchNo: number, pkt: number): void {
    this.notePartition(slot, CI_QUOTA_BATCH, batchNo, pkt);
  }

  /**
   * Records this worker's first port search for NAT slot `slot` that found no port after skipping
   * candidates other workers own (W > 1: the model's search could have taken one); as above.
   */
  notePortShareDecision(slot: number, batchNo: number, pkt: number): void {
    this.notePartition(slot, CI_PORT_BATCH, batchNo, pkt);
  }

  /** Records this worker's first refusal by its share of a security-group allowance; as above. */
  noteSgShareDecision(batchNo: number, pkt: number): void {
    this.notePartitionAt(this.cBase + C_SG_BATCH, batchNo, pkt);
  }

  /** Words `at` (batch number + 1) and `at + 1` (packet index) of the slot's control words, once. */
  private notePartition(slot: number, at: number, batchNo: number, pkt: number): void {
    this.notePartitionAt(this.cBase + C_INST + slot * C_INST_WORDS + at, batchNo, pkt);
  }

  private notePartitionAt(b: number, batchNo: number, pkt: number): void {
    if (this.ctl[b] !== 0) return;
    this.ctl[b + 1] = pkt;
    Atomics.store(this.ctl, b, (batchNo + 1) | 0);
  }

  /** Bumps the record's sequence bits (readers detect concurrent changes). */
  touchMeta(o: number, meta: number): void {
    const seq = ((meta >>> M_SEQ_SHIFT) + 1) & M_SEQ_MASK;
    this.ses[o + S_META] = (meta & 0x0fffffff) | (seq << M_SEQ_SHIFT);
  }

  /** A session about to go or to be rebased: its owned tracked flows get their pending refresh (S_SG_STATE). */
  sgDetach(local: number): void {
    const o = this.rec(local);
    if (this.sgHook !== null && (this.ses[o + S_META] & M_ASSURED) !== 0 && this.ses[o + S_SG_STATE] !== 0)
      this.sgHook.detachSession(local);
  }

  /** Frees a live session: flow keys, lists, wheel, counts. */
  release(local: number): void {
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    if ((meta & M_LIVE) === 0) return;
    this.sgDetach(local);
    const slot = (meta >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    this.removeRef(local, KIND_ORIG);
    this.removeRef(local, KIND_ORIG + 1);
    if (meta & M_BYSRC) this.bysrcUnlink(local);
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
    const ref = local + 1;
    this.ses[o + S_NPREV] = tail;
    this.ses[o + S_NNEXT] = 0;
    // The head word is stored on every call (unchanged unless the list was empty): the empty
    // list's branch runs once per table, before V8 collects feedback, and an operation of its own
    // there deoptimised confirm at its first use in a second Dataplane (docs/core.md "Session 7").
    const headAt = b + CI_NA_HEAD;
    ctl[headAt] = tail !== 0 ? ctl[headAt] : ref;
    if (tail !== 0) this.ses[this.rec(tail - 1) + S_NNEXT] = ref;
    ctl[b + CI_NA_TAIL] = ref;
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
      const exp = this.fat ? this.foldExpiry(local) : ses[this.rec(local) + S_EXPIRY];
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
      if (this.fat) this.foldExpiry(local);
      if (nowMs >= ses[o + S_EXPIRY]) this.release(local);
      else this.wheelLink(local, ses[o + S_EXPIRY]);
    }
  }

  // ---- the 'line' layout's fast entries ---------------------------------------------------------------
  //
  // Invariant: a session's expiry is the maximum of its record's S_EXPIRY and the FE_EXPIRY of its
  // entries that have FE_FAST (the one-line fast path refreshes only its entry's copy, with the
  // same timeout, so it only grows). FE_FAST is set only by sync, from the record alone, and the
  // slow path clears it (pull) before it reads or changes a session, so what the fast path
  // replays is always what the record says. Every slow-path reader of an expiry folds it first.

  /**
   * The 'line' layout's findEntry at a known slot `k` (Dataplane's key pass found the key's hash
   * tag there): the entry's word offset if slot k holds this key, else -1 — then findEntry
   * decides. Exact wherever k came from (a key is in the table once).
   */
  findEntryAt(k: number, slot: number, proto: number, a: number, b: number, ports: number): number {
    const flow = this.flow;
    const e = this.fBase + k * FE_WORDS;
    if (
      flow[e] === 0 ||
      ((flow[e + FE_SRC] ^ a) |
        (flow[e + FE_DST] ^ b) |
        (flow[e + FE_PORTS] ^ ports) |
        ((flow[e + FE_META] & FE_KEY_MASK) ^ (proto | (slot << M_SLOT_SHIFT)))) !==
        0
    )
      return -1;
    return e;
  }

  /**
   * 'line' layout: the word offset of the flow entry with this key (compared in the entry itself:
   * one cache line), or -1. The established fast path's lookup.
   */
  findEntry(slot: number, proto: number, a: number, b: number, ports: number): number {
    const h = this.hashTuple(slot, proto, a, b, ports);
    const flow = this.flow;
    const n = this.nSlots;
    const fb = this.fBase;
    const want = (proto | (slot << M_SLOT_SHIFT)) >>> 0;
    let i = this.home(h);
    for (let p = 0; p < n; p++) {
      const e = fb + i * FE_WORDS;
      if (flow[e] === 0) {
        this.noteMiss(h, slot, proto, a, b, ports, i);
        return -1;
      }
      if (
        flow[e + FE_SRC] === a &&
        flow[e + FE_DST] === b &&
        flow[e + FE_PORTS] === ports &&
        (flow[e + FE_META] & FE_KEY_MASK) === want
      )
        return e;
      if (++i === n) i = 0;
    }
    return -1;
  }

  /** Word offset of session local's entry of `kind` (orig / reply), or -1. */
  private entryOf(local: number, kind: number): number {
    const at = this.refSlot(this.keyHash(local, kind), local, kind);
    return at < 0 ? -1 : this.fBase + at * FE_WORDS;
  }

  /** 'line' layout: folds the entries' expiry copies into the record (see the invariant); returns it. */
  foldExpiry(local: number): number {
    const o = this.rec(local);
    let exp = this.ses[o + S_EXPIRY];
    if ((this.ses[o + S_META] & M_LIVE) === 0) return exp;
    const flow = this.flow;
    for (let k = 0; k < 2; k++) {
      const e = this.entryOf(local, k);
      if (e >= 0 && (flow[e + FE_META] & FE_FAST) !== 0 && flow[e + FE_EXPIRY] > exp) exp = flow[e + FE_EXPIRY];
    }
    this.ses[o + S_EXPIRY] = exp;
    return exp;
  }

  /**
   * 'line' layout: the slow path takes session `local` over — its expiry folded into the record,
   * FE_FAST cleared on both entries — and it is remembered for syncTouched at the end of the packet.
   */
  pull(local: number): void {
    this.touch(local);
    const o = this.rec(local);
    if ((this.ses[o + S_META] & M_LIVE) === 0) return;
    let exp = this.ses[o + S_EXPIRY];
    const flow = this.flow;
    for (let k = 0; k < 2; k++) {
      const e = this.entryOf(local, k);
      if (e < 0) continue;
      const m = flow[e + FE_META];
      if ((m & FE_FAST) === 0) continue;
      if (flow[e + FE_EXPIRY] > exp) exp = flow[e + FE_EXPIRY];
      flow[e + FE_META] = (m & ~FE_FAST) >>> 0;
    }
    this.ses[o + S_EXPIRY] = exp;
  }

  /** 'line' layout: remember a session to sync at the end of the packet (beyond TOUCH_MAX: it stays slow, still exact). */
  touch(local: number): void {
    if (!this.fat) return;
    if (this.touchedN < TOUCH_MAX) this.touched[this.touchedN++] = local;
  }

  /** 'line' layout: sync every session the slow path reached during this packet. */
  syncTouched(): void {
    for (let k = 0; k < this.touchedN; k++) this.sync(this.touched[k], false);
    this.touchedN = 0;
  }

  /**
   * 'line' layout: sets each entry of session `local` from its record alone: FE_FAST iff the old
   * fast path's conditions hold for that direction (live, ASSURED, TCP ESTABLISHED, a composed path
   * recorded) and its rewrite changes at most one side (source address and port, or destination
   * address and port — single SNAT/DNAT with or without the IGW; else the packet uses the record
   * fast path); then the rewritten address (EIP applied) and port, the path and the expiry.
   * `mayBeFast`: the entries may still carry FE_FAST (clock rebase); otherwise (after pull or
   * confirm) they do not, and a direction that does not qualify needs no lookup at all.
   */
  sync(local: number, mayBeFast: boolean): void {
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    if ((meta & M_LIVE) === 0) return;
    const flow = this.flow;
    const proto = meta & M_PROTO_MASK;
    const base =
      (meta & M_ASSURED) !== 0 &&
      (proto === PROTO_UDP || (proto === PROTO_TCP && ((meta >>> M_STATE_SHIFT) & M_STATE_MASK) === TCP_ESTABLISHED));
    for (let k = 0; k < 2; k++) {
      if (!mayBeFast && (!base || (meta & (M_PATH_O << k)) === 0)) continue;
      const e = this.entryOf(local, k);
      if (e < 0) continue;
      const key = flow[e + FE_META] & FE_KEY_MASK;
      flow[e + FE_META] = key;
      if (!base || (meta & (M_PATH_O << k)) === 0) continue;
      const path = k === 0 ? ses[o + S_PATH] & 0xffff : ses[o + S_PATH] >>> 16;
      const ingress = path & 31;
      const eip = path >>> 12;
      const ot = o + (1 - k) * 3;
      const nsrc = eip !== 0 ? this.eipAddr[eip - 1] : ses[ot + 1];
      const ndst = ses[ot];
      const np = ses[ot + 2];
      const nports = ((np << 16) | (np >>> 16)) >>> 0;
      const ports = ses[o + k * 3 + 2];
      let side = 0;
      let addr: number;
      let port: number;
      if (ingress !== 0 && ndst === ses[o + k * 3 + 1] && (nports & 0xffff) === (ports & 0xffff)) {
        addr = nsrc;
        port = nports >>> 16;
      } else if (nsrc === ses[o + k * 3] && nports >>> 16 === ports >>> 16) {
        side = FE_SIDE_DST;
        addr = ndst;
        port = nports & 0xffff;
      } else continue;
      flow[e + FE_ADDR] = addr;
      flow[e + FE_PORT] = port;
      flow[e + FE_EXPIRY] = ses[o + S_EXPIRY];
      flow[e + FE_META] = (key | FE_FAST | side | ((path & 0xfff) << FE_PATH_SHIFT)) >>> 0;
    }
  }

  /**
   * After a timeline event (docs/core.md "Timeline events"; cold): releases every session of NAT
   * slot `slot` (-1: none) — the instance's conntrack is gone — and forgets every composed path
   * (and, in the 'line' layout, every fast entry), since routes, Elastic IPs or stopped instances
   * may have changed what a path would be.
   */
  timelineReset(slot: number): void {
    const ses = this.ses;
    const hwm = this.ctl[this.cBase + C_HWM];
    for (let i = 0; i < hwm; i++) {
      const o = this.rec(i);
      if ((ses[o + S_META] & M_LIVE) === 0) continue;
      if (this.fat) this.pull(i); // expiry folded into the record, FE_FAST cleared
      const meta = ses[o + S_META];
      if (((meta >>> M_SLOT_SHIFT) & M_SLOT_MASK) === slot) this.release(i);
      else if ((meta & (M_PATH_O | M_PATH_R)) !== 0) this.touchMeta(o, (meta & ~(M_PATH_O | M_PATH_R)) >>> 0);
    }
  }

  // ---- misc ------------------------------------------------------------------------------------------

  /** Next pseudo-random uint32 of this worker: the model's generator (spec/prng.ts), state in ctl. */
  rand(): number {
    const x = (this.ctl[this.cBase + C_RNG] + PRNG_INCREMENT) | 0;
    this.ctl[this.cBase + C_RNG] = x;
    return prngOutput(x);
  }

  /** Occupied slots of the flow table and (if apart) the bysource table (tests, diagnostics). */
  occupiedSlots(): number {
    let n = 0;
    for (let i = 0; i < this.nSlots; i++) if (this.flow[this.fBase + i * this.fs] !== 0) n++;
    if (this.bflow !== this.flow) for (let i = 0; i < this.bSlots; i++) if (this.bflow[this.bBase + i] !== 0) n++;
    return n;
  }

  /** Displacement of every occupied slot from its key's home (probes − 1): sum, max, count (tests). */
  probeStats(): { sum: number; max: number; used: number } {
    let sum = 0;
    let max = 0;
    let used = 0;
    const tables: [Uint32Array, number, number, number][] = [[this.flow, this.fBase, this.nSlots, this.fs]];
    if (this.bflow !== this.flow) tables.push([this.bflow, this.bBase, this.bSlots, 1]);
    for (const [flow, fb, n, fs] of tables) {
      for (let i = 0; i < n; i++) {
        const v = flow[fb + i * fs];
        if (v === 0) continue;
        const r = (v & this.refMask) - 1;
        const d = (i - this.homeIn(this.keyHash(r >>> 2, r & 3), n) + n) % n;
        sum += d;
        max = Math.max(max, d);
        used++;
      }
    }
    return { sum, max, used };
  }

  /** Tuple words of local session i, kind k: [src, dst, ports]. */
  tupleOff(local: number, kind: number): number {
    return this.rec(local) + kind * 3;
  }
}

export { S_OSRC, S_ODST, S_OPORTS, S_RSRC, S_RDST, S_RPORTS };
