// The AWS filtering layers in the core (docs/semantics.md §11, docs/core.md "Security groups and
// network ACLs"): network ACLs where a packet crosses a subnet boundary (stateless) and security
// groups at each ENI with their own connection tracking. Compiled into typed arrays
// (compileAwsFilters, structured-cloneable) and evaluated by the slow path (hop-walk.ts) over a
// per-worker open-addressing table in shared memory (no allocation per packet). A session whose
// path crosses them gets a fast path only when every check on it is stable: each security group
// passed by a tracked flow whose timeout can no longer change (TCP: a reply seen; UDP: a stream)
// and the same flows in both directions — the session then *owns* those flows (recordFast) — and
// the ACLs under the rule generation it was recorded with (a mid-run change bumps it). The fast
// path writes only the session's last-seen time (S_SG_SEEN, in its own record); an owned flow's
// expiry is derived from it whenever the flow is read (fold). Untracked flows never get one: they
// are evaluated per packet (docs/core.md "Security groups and network ACLs").

import { cidrMask } from '../packet/addr.ts';
import {
  FILTER_PROTO_ALL,
  ICMP_ANY,
  SG_ICMP_TIMEOUT,
  SG_OTHER_TIMEOUT,
  SG_TCP_UNREPLIED_TIMEOUT,
} from '../spec/aws-filters.ts';
import type { Scenario } from '../spec/scenario.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import type { PacketView } from '../packet/parse.ts';
import { SG_FAST, SG_GEN_MASK, SG_GEN_SHIFT, SG_OWNS, SG_UNSETTLED, S_SG_SEEN, S_SG_STATE } from './sg-words.ts';

export const DIR_IN = 0;
export const DIR_OUT = 1;

export interface CompiledAwsFilters {
  /** Rules the shared rule arrays can hold (a mid-run change may grow up to it). */
  ruleCap: number;
  nInst: number;
  nGroups: number;
  instSubnet: Int32Array;
  /** Subnet of each NAT gateway (they have no security groups; their subnet's ACL applies). */
  gwSubnet: Int32Array;
  /** Instance has security groups. */
  sgOn: Uint8Array;
  /** Rules of instance i, direction d: [fStart[2i+d], fEnd[2i+d]) of the rule arrays. */
  fStart: Int32Array;
  fEnd: Int32Array;
  /** Per instance, direction, TCP(0)/UDP(1): a 0.0.0.0/0 rule allowing all ports of it exists. */
  openAll: Uint8Array;
  instInGroup: Uint8Array;
  tcpEstS: Int32Array;
  udpS: Int32Array;
  udpStreamS: Int32Array;
  allowance: Int32Array;
  /** ACL of subnet s, direction d: [aStart[2s+d], aEnd[2s+d]); aclOn[s] = 0: the default ACL. */
  aclOn: Uint8Array;
  aStart: Int32Array;
  aEnd: Int32Array;
  /** Rule arrays (security-group rules, then ACL rules). */
  rProto: Int16Array;
  rPortLo: Int32Array;
  rPortHi: Int32Array;
  rIcmpType: Int16Array;
  rIcmpCode: Int16Array;
  rAddr: Uint32Array;
  rMask: Uint32Array;
  /** CIDR is 0.0.0.0/0. */
  rAny: Uint8Array;
  /** Referenced group (security-group rules), or -1. */
  rGroup: Int32Array;
  /** ACL rules: 1 allow, 0 deny. */
  rAllow: Uint8Array;
  /** The rules' generation (shared, from 1): a mid-run change bumps it, invalidating composed paths. */
  gen: Int32Array;
}

/** null when the scenario has neither security groups on any ENI nor network ACLs. */
export function compileAwsFilters(s: Scenario): CompiledAwsFilters | null {
  const groups = s.securityGroups ?? [];
  const acls = s.networkAcls ?? [];
  if (!s.instances.some((i) => i.security) && !acls.some((a) => a.subnets.length > 0)) return null;
  const n = s.instances.length;
  const nS = s.subnets.length;
  const proto: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  const it: number[] = [];
  const ic: number[] = [];
  const addr: number[] = [];
  const msk: number[] = [];
  const any: number[] = [];
  const grp: number[] = [];
  const allow: number[] = [];
  const push = (
    r: { proto: number; portLo: number; portHi: number; icmpType: number; icmpCode: number },
    cidr: { addr: number; len: number } | null,
    group: number,
    al: number,
  ): void => {
    proto.push(r.proto);
    lo.push(r.portLo);
    hi.push(r.portHi);
    it.push(r.icmpType);
    ic.push(r.icmpCode);
    addr.push(cidr ? cidr.addr >>> 0 : 0);
    msk.push(cidr ? cidrMask(cidr.len) : 0);
    any.push(cidr && cidr.len === 0 ? 1 : 0);
    grp.push(group);
    allow.push(al);
  };
  const fStart = new Int32Array(2 * n);
  const fEnd = new Int32Array(2 * n);
  const openAll = new Uint8Array(4 * n);
  const sgOn = new Uint8Array(n);
  const instInGroup = new Uint8Array(Math.max(1, n * groups.length));
  const tcpEstS = new Int32Array(n);
  const udpS = new Int32Array(n);
  const udpStreamS = new Int32Array(n);
  const allowance = new Int32Array(n);
  s.instances.forEach((inst, i) => {
    const sec = inst.security;
    for (let d = 0; d < 2; d++) {
      fStart[2 * i + d] = proto.length;
      if (sec)
        for (const g of sec.groups)
          for (const r of d === DIR_IN ? groups[g].inbound : groups[g].outbound) {
            push(r, r.cidr, r.cidr ? -1 : r.group, 1);
            const full = r.proto === FILTER_PROTO_ALL || (r.portLo === 0 && r.portHi === 65535);
            if (r.cidr && r.cidr.len === 0 && full) {
              if (r.proto === FILTER_PROTO_ALL || r.proto === PROTO_TCP) openAll[4 * i + 2 * d] = 1;
              if (r.proto === FILTER_PROTO_ALL || r.proto === PROTO_UDP) openAll[4 * i + 2 * d + 1] = 1;
            }
          }
      fEnd[2 * i + d] = proto.length;
    }
    if (!sec) return;
    sgOn[i] = 1;
    for (const g of sec.groups) instInGroup[i * groups.length + g] = 1;
    tcpEstS[i] = sec.tracking.tcpEstablished;
    udpS[i] = sec.tracking.udp;
    udpStreamS[i] = sec.tracking.udpStream;
    allowance[i] = sec.tracking.allowance;
  });
  const aclOn = new Uint8Array(nS);
  const aStart = new Int32Array(2 * nS);
  const aEnd = new Int32Array(2 * nS);
  for (let sn = 0; sn < nS; sn++) {
    const acl = acls.find((a) => a.subnets.includes(sn));
    for (let d = 0; d < 2; d++) {
      aStart[2 * sn + d] = proto.length;
      if (acl)
        for (const r of d === DIR_IN ? acl.inbound : acl.outbound) push(r, r.cidr, -1, r.action === 'allow' ? 1 : 0);
      aEnd[2 * sn + d] = proto.length;
    }
    aclOn[sn] = acl ? 1 : 0;
  }
  // Shared memory (a mid-run rule change reaches every worker), with room for more rules.
  const cap = Math.max(64, 2 * proto.length);
  const sab = <T extends { set(a: ArrayLike<number>): void }>(
    C: new (b: SharedArrayBuffer) => T,
    bytes: number,
    len: number,
    src: ArrayLike<number>,
  ): T => {
    const a = new C(new SharedArrayBuffer(bytes * len));
    a.set(src);
    return a;
  };
  return {
    ruleCap: cap,
    nInst: n,
    nGroups: groups.length,
    instSubnet: Int32Array.from(s.instances.map((i) => i.subnet)),
    gwSubnet: Int32Array.from((s.natGateways ?? []).map((g) => g.subnet)),
    sgOn,
    fStart: sab(Int32Array, 4, fStart.length, fStart),
    fEnd: sab(Int32Array, 4, fEnd.length, fEnd),
    openAll: sab(Uint8Array, 1, openAll.length, openAll),
    instInGroup,
    tcpEstS,
    udpS,
    udpStreamS,
    allowance,
    aclOn,
    aStart: sab(Int32Array, 4, aStart.length, aStart),
    aEnd: sab(Int32Array, 4, aEnd.length, aEnd),
    rProto: sab(Int16Array, 2, cap, proto),
    rPortLo: sab(Int32Array, 4, cap, lo),
    rPortHi: sab(Int32Array, 4, cap, hi),
    rIcmpType: sab(Int16Array, 2, cap, it),
    rIcmpCode: sab(Int16Array, 2, cap, ic),
    rAddr: sab(Uint32Array, 4, cap, addr),
    rMask: sab(Uint32Array, 4, cap, msk),
    rAny: sab(Uint8Array, 1, cap, any),
    rGroup: sab(Int32Array, 4, cap, grp),
    rAllow: sab(Uint8Array, 1, cap, allow),
    gen: sab(Int32Array, 4, 1, [1]),
  };
}

/**
 * A mid-run rule change: copies `fresh`'s rules and ranges into `target`'s shared arrays (every
 * worker sees them; call only while no worker runs). Groups, ENIs and ACL subnets are the same
 * (scenario/filter-update.ts). Returns why it cannot, or null.
 */
export function updateAwsFilters(target: CompiledAwsFilters, fresh: CompiledAwsFilters): string | null {
  const n = Math.max(fresh.fEnd.length ? Math.max(...fresh.fEnd) : 0, fresh.aEnd.length ? Math.max(...fresh.aEnd) : 0);
  if (n > target.ruleCap) return `${n} rules after the change exceed the ${target.ruleCap} the run was compiled with`;
  const rules = [
    'rProto',
    'rPortLo',
    'rPortHi',
    'rIcmpType',
    'rIcmpCode',
    'rAddr',
    'rMask',
    'rAny',
    'rGroup',
    'rAllow',
  ] as const;
  for (const k of rules) (target[k] as Int32Array).set((fresh[k] as Int32Array).subarray(0, n));
  for (const k of ['fStart', 'fEnd', 'openAll', 'aStart', 'aEnd'] as const)
    (target[k] as Int32Array).set(fresh[k] as Int32Array);
  // Every composed path recorded under the old rules is void (recordFast and the fast path compare generations).
  target.gen[0] = (target.gen[0] + 1) | 0 || 1;
  return null;
}

// ---- shared memory ---------------------------------------------------------------------------------

/**
 * Words of a tracking-table slot: key (4), flags, transactions, and the expiry (absolute ms, a
 * float64 over words 6-7): one 32-byte slot, so a lookup and a refresh touch one cache line.
 */
export const SG_WORDS = 8;
/** The expiry's index in the table's Float64Array view: slot offset (words) / 2 + 3. */
const EXP_F64 = 3;
const K0 = 0;
const K_SRC = 1;
const K_DST = 2;
const K3 = 3;
/** Flags (bits 0-1) and the owner: local session + 1 (bits 2-31, 0 = none; recordFast). */
const F_FLAGS = 4;
const F_TRANS = 5;
const FL_SEEN_REPLY = 1;
const FL_LAST_REPLY = 2;
const FL_OWNER_SHIFT = 2;
const FL_BITS = (1 << FL_OWNER_SHIFT) - 1;
/** Security-group crossings a composed path may have (sender out, NAT in, NAT out / NAT in, out, receiver in). */
export const FAST_MAX_SG = 3;
/**
 * The `sgOwn` region, per session: how many tracked flows it owns, then their slots (kept
 * current when a removal's backward shift moves one).
 */
const OWN_WORDS = 1 + FAST_MAX_SG;
/** No security groups on any ENI: a fast path's time bound that never ends the owned flows. */
const NO_TIMEOUT_MS = 1 << 30;

/** What AwsFilters needs of its worker's session table (Tables; a structural type: no import of it). */
export interface SgSessionTables {
  readonly ses: Uint32Array;
  rec(local: number): number;
  sgHook: { detachSession(local: number): void } | null;
}
/** Kinds of tracked flows (key word 0, low byte). */
const KIND_PORTS = 1;
const KIND_ICMP = 2;
const KIND_ADDR = 3;

export interface SgSizing {
  /** Slots per worker (power of two) and the entries a worker may hold (half of them at most). */
  slots: number;
  entries: number;
  /** Per worker and instance: its share of the instance's allowance (floor(a / W), the first a % W one more). */
  quota: Int32Array;
}

/** Sizes the per-worker tracking tables: every worker's quotas, at most `cap` entries. */
export function sgSizing(f: CompiledAwsFilters, W: number, cap: number): SgSizing {
  const quota = new Int32Array(W * f.nInst);
  let most = 0;
  for (let w = 0; w < W; w++) {
    let sum = 0;
    for (let i = 0; i < f.nInst; i++) {
      if (!f.sgOn[i]) continue;
      const a = f.allowance[i];
      const q = Math.floor(a / W) + (w < a % W ? 1 : 0);
      quota[w * f.nInst + i] = q;
      sum += q;
    }
    most = Math.max(most, sum);
  }
  const entries = Math.max(1, Math.min(most, cap));
  let slots = 4;
  while (slots < entries * 2 && slots < 1 << 26) slots <<= 1;
  return { slots, entries, quota };
}

/** The shared buffers of the tracking tables (layout.ts adds them to CoreShared.sabs); capW: sessions per worker. */
export function sgBuffers(W: number, nInst: number, slots: number, capW: number): Record<string, SharedArrayBuffer> {
  return {
    sgTab: new SharedArrayBuffer(W * slots * SG_WORDS * 4),
    sgOwn: new SharedArrayBuffer(W * capW * OWN_WORDS * 4),
    sgCnt: new SharedArrayBuffer(W * (nInst + 1) * 4),
    sgStat: new SharedArrayBuffer(W * (nInst + 1) * 8),
  };
}

// ---- evaluation ------------------------------------------------------------------------------------

/** One worker's view: rule evaluation and its part of the tracking tables. */
export class AwsFilters {
  private readonly tab: Int32Array;
  private readonly exp: Float64Array;
  private readonly cnt: Int32Array;
  /** Per instance: conntrack_allowance_exceeded drops; [nInst]: the earliest expiry any entry may have. */
  private readonly stat: Float64Array;
  private readonly tb: number;
  private readonly cb: number;
  private readonly mask: number;
  private used = 0;
  /** The slot of the tracked flow the last sgCheck passed by (found or created), or -1. */
  lastSlot = -1;
  /** 1 when the last sgCheck's packet was its tracked flow's response direction. */
  lastReply = 0;
  /** A removal moved slots since the walk began (walkBegin): the walk's slot numbers may be stale. */
  private moved = false;
  /** Per session of this worker: the tracked flows it owns (OWN_WORDS each; recordFast). */
  private readonly own: Int32Array;
  private readonly ob: number;
  private readonly ses: Uint32Array;
  /**
   * The fast path's bound on the time since S_SG_SEEN, within which every owned flow is alive:
   * the shortest timeout (ms) an owned flow can have at any ENI with groups, indexed by
   * (TCP ? 0 : 2) + (S_SG_STATE has SG_UNSETTLED ? 1 : 0) — settled flows: TCP established, UDP
   * stream; a set with an unsettled flow also TCP unreplied, UDP single-transaction.
   */
  readonly ownedMs: Int32Array;
  // Facts of the packet being checked (filterFacts of the model).
  private proto = 0;
  private src = 0;
  private dst = 0;
  private hasPorts = false;
  private sport = 0;
  private dport = 0;
  private hasIcmp = false;
  private icmpType = -1;
  private icmpCode = -1;
  private icmpId = 0;

  /** Called (rarely) when a worker's share of an ENI's allowance, below the allowance, refuses a flow. */
  onShareLimit: (() => void) | null = null;

  constructor(
    readonly f: CompiledAwsFilters,
    private readonly instPriv: Uint32Array,
    sabs: Record<string, SharedArrayBuffer>,
    private readonly sizing: SgSizing,
    private readonly w: number,
    private readonly tables: SgSessionTables,
    /** Sessions per worker (the `sgOwn` region's stride). */
    capW: number,
    /** Per worker: the base of its 32-bit ms clock (absolute ms = worker ms + clockBase[w]). */
    private readonly clockBase: Float64Array,
  ) {
    this.ses = tables.ses;
    this.own = new Int32Array(sabs.sgOwn);
    this.ob = w * capW * OWN_WORDS;
    this.ownedMs = new Int32Array(4).fill(NO_TIMEOUT_MS);
    const m = this.ownedMs;
    for (let i = 0; i < f.nInst; i++) {
      if (!f.sgOn[i]) continue;
      m[0] = Math.min(m[0], f.tcpEstS[i] * 1000);
      m[1] = Math.min(m[1], f.tcpEstS[i] * 1000, SG_TCP_UNREPLIED_TIMEOUT * 1000);
      m[2] = Math.min(m[2], f.udpStreamS[i] * 1000);
      m[3] = Math.min(m[3], f.udpStreamS[i] * 1000, f.udpS[i] * 1000);
    }
    tables.sgHook = this;
    this.tab = new Int32Array(sabs.sgTab);
    this.exp = new Float64Array(sabs.sgTab);
    this.cnt = new Int32Array(sabs.sgCnt);
    this.stat = new Float64Array(sabs.sgStat);
    this.tb = w * sizing.slots * SG_WORDS;
    this.cb = w * (f.nInst + 1);
    this.mask = sizing.slots - 1;
    for (let i = 0; i < f.nInst; i++) this.used += this.cnt[this.cb + i];
    if (this.used === 0) this.stat[this.cb + f.nInst] = Number.POSITIVE_INFINITY;
  }

  /** Reads what the filters see of the packet (the model's filterFacts). */
  facts(pv: PacketView): void {
    const whole = pv.fragOff === 0;
    const p = pv.proto;
    this.proto = p;
    this.src = pv.src;
    this.dst = pv.dst;
    this.hasPorts = whole && ((p === PROTO_TCP && pv.l4Len >= 20) || (p === PROTO_UDP && pv.l4Len >= 8));
    this.sport = this.hasPorts ? pv.sport : 0;
    this.dport = this.hasPorts ? pv.dport : 0;
    this.hasIcmp = whole && p === PROTO_ICMP && pv.l4Len >= 8;
    this.icmpType = this.hasIcmp ? pv.icmpType : -1;
    this.icmpCode = this.hasIcmp ? pv.icmpCode : -1;
    this.icmpId = this.hasIcmp ? pv.icmpId : 0;
  }

  /** Rule k matches the packet (`rev`: the packet reversed — its source port as the destination port). */
  private matches(k: number, rev = false): boolean {
    const f = this.f;
    const rp = f.rProto[k];
    if (rp !== FILTER_PROTO_ALL && rp !== this.proto) return false;
    if (rp === PROTO_TCP || rp === PROTO_UDP) {
      const plo = f.rPortLo[k];
      const phi = f.rPortHi[k];
      if (plo === 0 && phi === 65535) return true;
      const port = rev ? this.sport : this.dport;
      return this.hasPorts && port >= plo && port <= phi;
    }
    if (rp === PROTO_ICMP) {
      const t = f.rIcmpType[k];
      if (t !== ICMP_ANY && (!this.hasIcmp || this.icmpType !== t)) return false;
      const c = f.rIcmpCode[k];
      if (c !== ICMP_ANY && (!this.hasIcmp || this.icmpCode !== c)) return false;
    }
    return true;
  }

  private remoteMatches(k: number, remote: number): boolean {
    const f = this.f;
    const g = f.rGroup[k];
    if (g < 0) return (remote & f.rMask[k]) >>> 0 === f.rAddr[k];
    for (let i = 0; i < f.nInst; i++) if (this.instPriv[i] === remote) return f.instInGroup[i * f.nGroups + g] === 1;
    return false;
  }

  /** Network ACL of `subnet` for the current facts: true = allowed (a default-ACL subnet always is). */
  aclAllows(subnet: number, dir: number): boolean {
    const f = this.f;
    const remote = dir === DIR_IN ? this.src : this.dst;
    for (let k = f.aStart[2 * subnet + dir], e = f.aEnd[2 * subnet + dir]; k < e; k++) {
      if ((remote & f.rMask[k]) >>> 0 !== f.rAddr[k] || !this.matches(k)) continue;
      return f.rAllow[k] === 1;
    }
    return false;
  }

  private hash(k0: number, a: number, b: number, k3: number): number {
    let h = Math.imul(k0 ^ 0x27d4eb2d, 0x9e3779b1);
    h = Math.imul(h ^ a, 0x85ebca6b);
    h = Math.imul(h ^ b, 0xc2b2ae35);
    h = Math.imul(h ^ k3, 0x27d4eb2f);
    h ^= h >>> 15;
    return h & this.mask;
  }

  /** Index of slot s's expiry in the Float64Array view of the table. */
  private xi(s: number): number {
    return ((this.tb + s * SG_WORDS) >> 1) + EXP_F64;
  }

  /** Slot of the key, or -1 (bounded probe: at most `slots` steps). */
  private find(k0: number, a: number, b: number, k3: number): number {
    const t = this.tab;
    let s = this.hash(k0, a, b, k3);
    for (let n = 0; n <= this.mask; n++) {
      const o = this.tb + s * SG_WORDS;
      const v = t[o + K0];
      if (v === 0) return -1;
      if (v === k0 && t[o + K_SRC] === a && t[o + K_DST] === b && t[o + K3] === k3) return s;
      s = (s + 1) & this.mask;
    }
    return -1;
  }

  /** Removes slot s (backward-shift deletion keeps every probe chain intact). */
  private remove(s: number): void {
    const t = this.tab;
    // An owned flow goes only once its derived expiry has passed: its session leaves the fast path.
    const owner = t[this.tb + s * SG_WORDS + F_FLAGS] >>> FL_OWNER_SHIFT;
    if (owner !== 0) this.detachSession(owner - 1);
    this.moved = true;
    const inst = ((t[this.tb + s * SG_WORDS + K0] >>> 16) & 0xffff) - 1;
    this.cnt[this.cb + inst]--;
    this.used--;
    let hole = s;
    let j = s;
    for (let n = 0; n < this.mask; n++) {
      j = (j + 1) & this.mask;
      const oj = this.tb + j * SG_WORDS;
      if (t[oj + K0] === 0) break;
      const home = this.hash(t[oj + K0], t[oj + K_SRC], t[oj + K_DST], t[oj + K3]);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (inRange) continue;
      const oh = this.tb + hole * SG_WORDS;
      for (let x = 0; x < SG_WORDS; x++) t[oh + x] = t[oj + x];
      const moved = t[oh + F_FLAGS] >>> FL_OWNER_SHIFT;
      if (moved !== 0) this.ownMoved(moved - 1, j, hole);
      hole = j;
    }
    const o = this.tb + hole * SG_WORDS;
    for (let x = 0; x < SG_WORDS; x++) t[o + x] = 0;
  }

  /** Removes every entry of this worker whose time is up; recomputes the earliest expiry. */
  private sweep(now: number): void {
    const t = this.tab;
    let min = Number.POSITIVE_INFINITY;
    for (let s = 0, n = 0; s <= this.mask && n <= 2 * (this.mask + 1); n++) {
      const o = this.tb + s * SG_WORDS;
      if (t[o + K0] !== 0) {
        this.fold(s);
        const e = this.exp[this.xi(s)];
        if (now >= e) {
          this.remove(s);
          continue; // slot s now holds a shifted entry (or nothing): look again
        }
        if (e < min) min = e;
      }
      s++;
    }
    this.stat[this.cb + this.f.nInst] = min;
  }

  private timeoutS(inst: number, s: number): number {
    const o = this.tb + s * SG_WORDS;
    const p = (this.tab[o + K0] >>> 8) & 0xff;
    const f = this.f;
    if (p === PROTO_TCP)
      return (this.tab[o + F_FLAGS] & FL_SEEN_REPLY) !== 0 ? f.tcpEstS[inst] : SG_TCP_UNREPLIED_TIMEOUT;
    if (p === PROTO_UDP) return this.tab[o + F_TRANS] >= 2 ? f.udpStreamS[inst] : f.udpS[inst];
    if (p === PROTO_ICMP) return SG_ICMP_TIMEOUT;
    return SG_OTHER_TIMEOUT;
  }

  /**
   * The security-group check of the current facts at instance `inst`'s ENI, direction `dir`, at
   * absolute time `now` (ms). Returns 0 (pass), 1 (no rule: sg-deny) or 2 (allowance: sg-allowance).
   */
  sgCheck(inst: number, dir: number, now: number): number {
    const f = this.f;
    const p = this.proto;
    const tag = (inst + 1) << 16;
    // The flow key and its opposite (kind, endpoints, word 3); request = may start a tracked flow.
    let kind = 0;
    let k3 = 0;
    let r3 = 0;
    let request = true;
    // Int32 words of the table: addresses as signed 32-bit values.
    let a = this.src | 0;
    let b = this.dst | 0;
    if (p === PROTO_TCP || p === PROTO_UDP) {
      if (this.hasPorts) {
        kind = KIND_PORTS;
        k3 = (this.sport << 16) | this.dport | 0;
        r3 = (this.dport << 16) | this.sport | 0;
      }
    } else if (p === PROTO_ICMP) {
      if (this.hasIcmp) {
        const t = this.icmpType;
        if (t === 8 || t === 13 || t === 15 || t === 17) {
          kind = KIND_ICMP;
          k3 = (this.icmpId << 16) | t | 0;
        } else if (t === 0 || t === 14 || t === 16 || t === 18) {
          kind = KIND_ICMP;
          request = false;
          // A reply belongs to the request (dst → src, same id, the request's type).
          a = this.dst | 0;
          b = this.src | 0;
          k3 = (this.icmpId << 16) | (t === 0 ? 8 : t - 1) | 0;
        }
      }
    } else {
      kind = KIND_ADDR;
    }
    if (kind !== 0) {
      const k0 = tag | (p << 8) | kind;
      let s = -1;
      let reply = false;
      if (kind === KIND_ICMP) {
        s = this.find(k0, a, b, k3);
        reply = !request;
      } else {
        s = this.find(k0, this.src | 0, this.dst | 0, k3);
        if (s >= 0) reply = this.src === this.dst && k3 === r3;
        else {
          s = this.find(k0, this.dst | 0, this.src | 0, r3);
          reply = true;
        }
      }
      if (s >= 0) this.fold(s);
      if (s >= 0 && now >= this.exp[this.xi(s)]) {
        this.remove(s);
        s = -1;
      }
      if (s >= 0) {
        // A response to a flow whose owner refreshes it lazily as requests only (its timeout may
        // change now): the owner's pending refresh is applied and its fast path ends (recordFast).
        if (reply && this.tab[this.tb + s * SG_WORDS + F_FLAGS] >>> FL_OWNER_SHIFT !== 0 && !this.settled(s))
          this.detachSession((this.tab[this.tb + s * SG_WORDS + F_FLAGS] >>> FL_OWNER_SHIFT) - 1);
        this.touch(inst, s, reply, now);
        this.lastSlot = s;
        this.lastReply = reply ? 1 : 0;
        return 0;
      }
    }
    this.lastSlot = -1;
    // No tracked flow: the rules of the ENI's groups in this direction.
    const remote = dir === DIR_IN ? this.src : this.dst;
    let hit = false;
    let open = false;
    for (let k = f.fStart[2 * inst + dir], e = f.fEnd[2 * inst + dir]; k < e; k++) {
      if (!this.matches(k)) continue;
      if (f.rAny[k] === 1) open = true;
      if (!hit && this.remoteMatches(k, remote)) hit = true;
    }
    if (!hit) return 1;
    if (kind === 0 || !request) return 0;
    if (p === PROTO_TCP || p === PROTO_UDP) {
      // Untracked (the model's untracked()): as the request, or as the response of such a flow.
      const pi = p === PROTO_TCP ? 0 : 1;
      if (open && f.openAll[4 * inst + 2 * (1 - dir) + pi] === 1) return 0;
      if (f.openAll[4 * inst + 2 * dir + pi] === 1) {
        for (let k = f.fStart[2 * inst + 1 - dir], e = f.fEnd[2 * inst + 1 - dir]; k < e; k++)
          if (f.rAny[k] === 1 && this.matches(k, true)) return 0;
      }
    }
    const quota = this.sizing.quota[this.w * f.nInst + inst];
    const mi = this.cb + f.nInst;
    if ((this.cnt[this.cb + inst] >= quota || this.used >= this.sizing.entries) && now >= this.stat[mi])
      this.sweep(now);
    if (this.cnt[this.cb + inst] >= quota || this.used >= this.sizing.entries) {
      this.stat[this.cb + inst]++;
      // W > 1: this worker's share of the allowance, not the allowance, is used up (differences.ts).
      if (this.cnt[this.cb + inst] >= quota && quota < f.allowance[inst]) this.onShareLimit?.();
      return 2;
    }
    // Insert at the first free slot of the probe chain (the key is absent).
    const k0 = tag | (p << 8) | kind;
    const ka = kind === KIND_ICMP ? a : this.src | 0;
    const kb = kind === KIND_ICMP ? b : this.dst | 0;
    let s = this.hash(k0, ka, kb, k3);
    const t = this.tab;
    for (let n = 0; n <= this.mask && t[this.tb + s * SG_WORDS + K0] !== 0; n++) s = (s + 1) & this.mask;
    const o = this.tb + s * SG_WORDS;
    t[o + K0] = k0;
    t[o + K_SRC] = ka;
    t[o + K_DST] = kb;
    t[o + K3] = k3;
    t[o + F_FLAGS] = 0;
    t[o + F_TRANS] = 0;
    const x = now + this.timeoutS(inst, s) * 1000;
    this.exp[this.xi(s)] = x;
    if (x < this.stat[mi]) this.stat[mi] = x;
    this.cnt[this.cb + inst]++;
    this.used++;
    this.lastSlot = s;
    this.lastReply = 0;
    return 0;
  }

  /** A packet of the tracked flow in slot s (reply: its response direction) at `now`: flags, transactions, expiry. */
  private touch(inst: number, s: number, reply: boolean, now: number): void {
    const o = this.tb + s * SG_WORDS;
    const t = this.tab;
    if (reply) {
      t[o + F_FLAGS] |= FL_SEEN_REPLY;
      if ((t[o + F_FLAGS] & FL_LAST_REPLY) === 0) t[o + F_TRANS]++;
      t[o + F_FLAGS] |= FL_LAST_REPLY;
    } else t[o + F_FLAGS] &= ~FL_LAST_REPLY;
    const x = now + this.timeoutS(inst, s) * 1000;
    this.exp[this.xi(s)] = x;
    // A refresh may shorten the timeout (120 s unreplied TCP → a 60 s established timeout).
    const mi = this.cb + this.f.nInst;
    if (x < this.stat[mi]) this.stat[mi] = x;
  }

  // ---- the fast path's lazy state (docs/core.md "Security groups and network ACLs") ----------------

  /** A slow-path walk begins: the slot numbers it records are current until a removal moves slots. */
  walkBegin(): void {
    this.moved = false;
  }

  /**
   * Slot s's flow with its owner's pending refresh applied: its expiry becomes at least the
   * owner's last-seen time + the flow's timeout (which can no longer change: recordFast takes
   * only such flows). Every reader of an expiry folds first (sgCheck, sweep).
   */
  private fold(s: number): void {
    const o = this.tb + s * SG_WORDS;
    const owner = this.tab[o + F_FLAGS] >>> FL_OWNER_SHIFT;
    if (owner === 0) return;
    const inst = ((this.tab[o + K0] >>> 16) & 0xffff) - 1;
    const seen = this.ses[this.tables.rec(owner - 1) + S_SG_SEEN];
    const x = seen + this.clockBase[this.w] + this.timeoutS(inst, s) * 1000;
    const xi = this.xi(s);
    if (x > this.exp[xi]) this.exp[xi] = x;
  }

  /** The tracked flow in slot s has its final timeout (TCP: a reply seen; UDP: a stream): no packet changes it. */
  private settled(s: number): boolean {
    const o = this.tb + s * SG_WORDS;
    const k0 = this.tab[o + K0];
    if ((k0 & 0xff) !== KIND_PORTS) return false;
    const p = (k0 >>> 8) & 0xff;
    if (p === PROTO_TCP) return (this.tab[o + F_FLAGS] & FL_SEEN_REPLY) !== 0;
    if (p === PROTO_UDP) return this.tab[o + F_TRANS] >= 2;
    return false;
  }

  /** Session `local`'s owned flow moved from slot `from` to `to` (a removal's backward shift). */
  private ownMoved(local: number, from: number, to: number): void {
    const ob = this.ob + local * OWN_WORDS;
    const own = this.own;
    for (let j = 0, n = own[ob]; j < n; j++) if (own[ob + 1 + j] === from) own[ob + 1 + j] = to;
  }

  /**
   * Session `local` (ASSURED, S_SG_STATE ≠ 0) gives up its lazy state: each owned flow gets its
   * pending refresh and loses its owner; the session's fast path ends until the slow path records
   * it again. Called before the session is released or rebased (Tables.sgDetach), when a flow it
   * owns is removed, and when another session takes one of its flows.
   */
  detachSession(local: number): void {
    const o = this.tables.rec(local);
    const ob = this.ob + local * OWN_WORDS;
    const own = this.own;
    const t = this.tab;
    for (let j = 0, n = own[ob]; j < n; j++) {
      const s = own[ob + 1 + j];
      const of = this.tb + s * SG_WORDS + F_FLAGS;
      if (t[of] >>> FL_OWNER_SHIFT !== local + 1) continue;
      this.fold(s);
      t[of] &= FL_BITS;
    }
    own[ob] = 0;
    this.ses[o + S_SG_STATE] = 0;
    this.ses[o + S_SG_SEEN] = 0;
  }

  /** The walk's `n` slots are exactly the flows session `local` owns (as sets). */
  private ownsExactly(local: number, n: number, slots: Int32Array): boolean {
    const ob = this.ob + local * OWN_WORDS;
    const own = this.own;
    const m = own[ob];
    for (let j = 0; j < n; j++) {
      let hit = false;
      for (let k = 0; k < m; k++) if (own[ob + 1 + k] === slots[j]) hit = true;
      if (!hit) return false;
    }
    for (let k = 0; k < m; k++) {
      let hit = false;
      for (let j = 0; j < n; j++) if (own[ob + 1 + k] === slots[j]) hit = true;
      if (!hit) return false;
    }
    return true;
  }

  /**
   * A slow-path walk stored session `local`'s composed path for direction `kind` (hop-walk
   * recordPath) at worker time `nowW`; it passed its `n` security groups by the tracked flows in
   * `slots` (each just refreshed; bit j of `replies`: as the flow's response) and every ACL on the
   * way. The direction may take the fast path when the session is ASSURED (the state lives in its
   * list-link words) and a fast packet's refresh of each flow is the same at any time — the
   * expiry moves, nothing else the flow's timeout depends on changes:
   *  - alone (the first direction to qualify, taking the flows from any other owner): each flow
   *    settled (its final timeout: TCP a reply seen, UDP a stream) or passed as a request (a
   *    request changes neither; a response by another packet detaches the owner first: sgCheck);
   *  - joining the other direction: every flow settled and exactly the flows the session owns,
   *    so that a fast packet of either direction refreshes all of them (S_SG_SEEN).
   */
  recordFast(
    local: number,
    kind: number,
    assured: boolean,
    n: number,
    slots: Int32Array,
    replies: number,
    nowW: number,
  ): void {
    if (!assured) return;
    const o = this.tables.rec(local);
    const ses = this.ses;
    const mine = SG_FAST << kind;
    const gen = this.f.gen[0] & SG_GEN_MASK;
    let alone = !this.moved;
    let settled = alone;
    for (let j = 0; j < n; j++) {
      const s = slots[j];
      if ((this.tab[this.tb + s * SG_WORDS + K0] & 0xff) !== KIND_PORTS) alone = false;
      if (!this.settled(s)) {
        settled = false;
        if (((replies >>> j) & 1) !== 0) alone = false;
      }
    }
    const cur = ses[o + S_SG_STATE];
    const other = SG_FAST << (1 - kind);
    const otherOk = cur !== 0 && cur >>> SG_GEN_SHIFT === gen && (cur & other) !== 0;
    if (otherOk && settled && this.ownsExactly(local, n, slots)) {
      ses[o + S_SG_STATE] = ((cur | mine) & ~SG_UNSETTLED) >>> 0;
      ses[o + S_SG_SEEN] = nowW;
      return;
    }
    if (!alone || otherOk) {
      // Not, or not like the other direction: this direction stays on the slow path.
      if ((cur & mine) !== 0) ses[o + S_SG_STATE] = (cur & ~mine) >>> 0;
      return;
    }
    // This direction alone: the session's old flows get their pending refresh, then it takes these.
    if (cur !== 0) this.detachSession(local);
    const t = this.tab;
    const ob = this.ob + local * OWN_WORDS;
    const own = this.own;
    let m = 0;
    for (let j = 0; j < n; j++) {
      const s = slots[j];
      const of = this.tb + s * SG_WORDS + F_FLAGS;
      const prev = t[of] >>> FL_OWNER_SHIFT;
      if (prev === local + 1) continue; // the same flow twice on the way
      if (prev !== 0) this.detachSession(prev - 1);
      t[of] = (t[of] & FL_BITS) | ((local + 1) << FL_OWNER_SHIFT);
      own[ob + 1 + m++] = s;
    }
    own[ob] = m;
    ses[o + S_SG_STATE] = (SG_OWNS | mine | (settled ? 0 : SG_UNSETTLED) | (gen << SG_GEN_SHIFT)) >>> 0;
    ses[o + S_SG_SEEN] = nowW;
  }
}

/** conntrack_allowance_exceeded drops per instance, summed over workers (diagnostics, tests). */
export function sgAllowanceExceeded(sabs: Record<string, SharedArrayBuffer>, W: number, nInst: number): number[] {
  const st = new Float64Array(sabs.sgStat);
  const out = new Array<number>(nInst).fill(0);
  for (let w = 0; w < W; w++) for (let i = 0; i < nInst; i++) out[i] += st[w * (nInst + 1) + i];
  return out;
}
