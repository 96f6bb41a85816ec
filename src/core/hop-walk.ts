// The slow path: the whole walk of docs/semantics.md §2 for one packet, hop by hop, on the
// packet's output copy — ENI source/dest checks, VPC routing (LPM), IGW 1:1 NAT (incl. quoted
// packets of ICMP errors, hairpin), plain hosts (delivery, ip_forward, TTL), and at each NAT
// instance the netfilter hooks in kernel order: conntrack (conntrack.ts), PREROUTING DNAT
// (nat.ts), local delivery / forwarding, time exceeded (icmp-error.ts), POSTROUTING SNAT /
// MASQUERADE, confirm. It records, per session direction, the composed path the fast path
// (dataplane.ts) applies later. Twin of src/model/walk.ts.
//
// Cold relative to the fast path, but still allocation-free: one SlowState per worker.

import {
  KIND_ORIG,
  M_ASSURED,
  M_DST_NAT,
  M_LIVE,
  M_SRC_NAT,
  M_PATH_O,
  M_PATH_R,
  PATH_EIP_SHIFT,
  PATH_IN_SHIFT,
  PATH_MAX_EIP,
  PATH_MAX_POINT,
  PATH_MAX_TTL,
  PATH_OUT_SHIFT,
  PATH_TTL_SHIFT,
  S_META,
  S_PATH,
} from './layout.ts';
import {
  type CompiledScenario,
  CH_COUNT,
  CH_IN,
  CH_PRE,
  TK_DNAT,
  RT_BLACKHOLE,
  RT_ENI,
  RT_IGW,
  RT_LOCAL,
  RT_NATGW,
  eipIndex,
  eipOfPrivate,
  gatewayAddrIndex,
  gatewayByPrivate,
  instanceByPrivate,
  routeLookup,
} from './compile.ts';
import { NatGateways } from './nat-gateway.ts';
import { TCP_RESET_LEN, writeTcpReset } from '../packet/tcp-reset.ts';
import { F_RST, ICMP_DEST_UNREACH, ICMP_EXC_TTL, ICMP_TIME_EXCEEDED } from '../packet/constants.ts';
import { DEFAULT_IP_TTL } from '../spec/timeouts.ts';
import { AwsFilters, DIR_IN, DIR_OUT, FAST_MAX_SG } from './aws-filters.ts';
import { Conntrack } from './conntrack.ts';
import { IcmpErrors } from './icmp-error.ts';
import { IcmpRateLimits } from './icmp-ratelimit.ts';
import { PacketManip } from './manip.ts';
import { Nat } from './nat.ts';
import { MANIP_DST, MANIP_SRC } from './nat-port-search.ts';
import { SlowState } from './slow-state.ts';
import { MANGLE_DROP, MANGLE_FORWARD, MANGLE_POSTROUTING, Tcpmss } from './tcpmss.ts';
import {
  FF_WORDS,
  FILTER_FAST_CELLS,
  FV_ACCEPT,
  FV_REJECT,
  FilterTable,
  filterAny,
  HOOK_FORWARD,
  HOOK_INPUT,
  HOOK_OUTPUT,
  REJECT_TCP_RESET,
  ctstateOf,
} from './filter.ts';
import { CTSTATE_INVALID, CTSTATE_RELATED } from '../spec/scenario.ts';
import type { Tables } from './tables.ts';
import { PARSE_FRAGMENT, PARSE_OK, isIpLevelMalformation, parseIpv4 } from '../packet/parse.ts';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.ts';
import {
  csumReplace16,
  csumReplace32,
  ipv4HeaderChecksum,
  udpCsumReplace32,
  verifyL4Checksum,
} from '../packet/checksum.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { isMulticastOrBroadcast } from '../packet/addr.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NONE,
  CT_RELATED,
  DROP_BLACKHOLE,
  DROP_CT_TABLE_FULL,
  DROP_FILTER_DROP,
  DROP_FILTER_REJECT,
  DROP_FRAGMENT,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_IGW_UNKNOWN_DST,
  DROP_IP_FORWARD_OFF,
  DROP_MALFORMED,
  DROP_MARTIAN_SOURCE,
  DROP_MULTICAST,
  DROP_NACL_DENY,
  DROP_NAT_CLASH,
  DROP_NO_HOST,
  DROP_NO_ROUTE,
  DROP_ROUTING_LOOP,
  DROP_SG_ALLOWANCE,
  DROP_SG_DENY,
  DROP_SRC_DST_CHECK_DST,
  DROP_SRC_DST_CHECK_SRC,
  DROP_TCPMSS,
  DROP_INSTANCE_STOPPED,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
  FATE_DROPPED,
  REASON_COUNT,
  REASON_NONE,
} from '../spec/reasons.ts';
import { type BatchOutput, type FrameBatch, OUT_SLOTS, errorBase, packResult } from '../spec/frame-batch.ts';

/** The IPv4 header without options (the only one the fast path accepts). */
const IPV4_HEADER_LEN = 20;
/** A TCP header without options (what nf_reject_ip_tcphdr_get needs to read). */
const TCP_HEADER_MIN = 20;
/** Instance arrivals per packet before it is dropped as a routing loop. */
const MAX_HOPS = 8;
/** The IGW hairpins a packet to one of the VPC's own EIPs at most this often (the oracle's bound). */
const IGW_MAX_HAIRPIN = 4;
/**
 * The bytes of a frame NAT may rewrite: the outer IPv4 header (≤ 60), then for an ICMP error its
 * 8-byte header, the quoted IPv4 header (≤ 60) and the quoted TCP header up to its checksum (18);
 * a TCP/UDP/ICMP query header's ports, id and checksum lie within it too.
 */
const NAT_REWRITE_SPAN = 148;

export class HopWalk {
  readonly st = new SlowState();
  readonly manip: PacketManip;
  readonly ct: Conntrack;
  readonly nat: Nat;
  readonly icmp: IcmpErrors;
  /** The scenario's NAT gateways (none: every method is a no-op). */
  readonly gw: NatGateways;
  readonly mangle: Tcpmss;
  /** The NAT instances' filter tables (filter.ts). */
  readonly filter: FilterTable;
  /** Some NAT instance has a filter table: composed paths keep what the walk counted (filtfast). */
  private readonly fltOn: boolean;
  private readonly ff: Int32Array;
  private readonly ffBase: number;
  /** The cells the walk's filter hook counted, for the composed path (fltN < 0: no hook ran). */
  private fltN = -1;
  private readonly fltCells = new Int32Array(FILTER_FAST_CELLS);
  private readonly drops: Float64Array;
  private readonly dropBase: number;
  private out: BatchOutput | null = null;
  private pkt = 0;
  /** Security groups and network ACLs (null: the scenario has none). */
  /** Security groups and ACLs (null: the scenario has none); the fast path asks it too. */
  readonly aws: AwsFilters | null;
  /** Security-group crossings of the current walk that a composed path may keep (recordFast). */
  private sgN = 0;
  private readonly sgSlot = new Int32Array(FAST_MAX_SG);
  /** Bit j: crossing j's packet was its tracked flow's response direction. */
  private sgReply = 0;
  /** Per worker: the base of its 32-bit ms clock (absolute ms = st.now + clockBase[w]). */
  readonly clockBase: Float64Array;
  /**
   * The frame as it reached the current NAT instance's ENI (its first arrivalLen bytes; -1: not
   * kept): a local delivery outputs it, not the frame as the nat hooks left it.
   */
  private readonly arrival = new Uint8Array(NAT_REWRITE_SPAN);
  private arrivalLen = -1;
  /** Per NAT slot: 1 when its PREROUTING chain has a DNAT rule (a frame may become local). */
  private readonly dnatSlot: Uint8Array;

  constructor(
    private readonly c: CompiledScenario,
    private readonly t: Tables,
    workers: number,
    worker: number,
    quota: number,
    sabs: Record<string, SharedArrayBuffer>,
  ) {
    const st = this.st;
    this.manip = new PacketManip(st);
    this.ct = new Conntrack(c, t, st, quota);
    this.nat = new Nat(c, t, st, this.ct, this.manip, workers, worker);
    this.icmp = new IcmpErrors(c, st, this.ct, this.manip, new IcmpRateLimits(c, sabs, worker));
    this.gw = new NatGateways(c, sabs, st, this.manip);
    this.mangle = new Tcpmss(c.mangle, st);
    this.filter = new FilterTable(c.filter, st, new Float64Array(t.shared.sabs.filtc), worker);
    this.fltOn = filterAny(c.filter);
    this.ff = new Int32Array(t.shared.sabs.filtfast);
    this.ffBase = worker * t.shared.capW * 2 * FF_WORDS;
    this.drops = t.v.drops;
    this.dropBase = worker * REASON_COUNT;
    const sh = t.shared;
    this.aws = c.aws && sh.sg ? new AwsFilters(c.aws, c.instPriv, sh.sabs, sh.sg, worker, t, sh.capW, t.v.clock) : null;
    if (this.aws) this.aws.onShareLimit = () => t.noteSgShareDecision(this.st.batchNo, this.st.pkt);
    this.clockBase = t.v.clock;
    const slots = (c.chainStart.length - 1) / CH_COUNT;
    this.dnatSlot = new Uint8Array(Math.max(0, slots));
    for (let k = 0; k < slots; k++) {
      for (let r = c.chainStart[k * CH_COUNT + CH_PRE]; r < c.chainStart[k * CH_COUNT + CH_PRE + 1]; r++)
        if (c.rKind[r] === TK_DNAT) this.dnatSlot[k] = 1;
    }
  }

  // ---- security groups and network ACLs (aws-filters.ts) -------------------------------------------

  /**
   * Security groups of `inst`'s ENI in direction `dir`: false = dropped. A pass by a tracked flow
   * is kept for the composed path (recordFast); any other pass (untracked, not trackable) means
   * the session direction has no fast path: its packets are evaluated one by one.
   */
  private sgPass(inst: number, dir: number): boolean {
    const a = this.aws;
    if (a === null || a.f.sgOn[inst] === 0) return true;
    const st = this.st;
    a.facts(st.pv);
    const v = a.sgCheck(inst, dir, st.now + this.clockBase[this.t.w]);
    if (v === 0) {
      if (a.lastSlot < 0 || this.sgN >= FAST_MAX_SG || st.gen) st.trkOk = false;
      else {
        this.sgReply |= a.lastReply << this.sgN;
        this.sgSlot[this.sgN++] = a.lastSlot;
      }
      return true;
    }
    this.drop(v === 1 ? DROP_SG_DENY : DROP_SG_ALLOWANCE);
    return false;
  }

  /** Network ACL of `subnet` in direction `dir`: false = dropped. */
  private aclPass(subnet: number, dir: number): boolean {
    const a = this.aws;
    if (a === null || a.f.aclOn[subnet] === 0) return true;
    // Stateless: the same verdict for every packet of a session direction until the rules change
    // (a composed path keeps the rule generation: AwsFilters.recordFast, S_SG_STATE).
    a.facts(this.st.pv);
    if (a.aclAllows(subnet, dir)) return true;
    this.drop(DROP_NACL_DENY);
    return false;
  }

  /** ACLs between two subnets (none inside one subnet). */
  private crossPass(from: number, to: number): boolean {
    if (from === to) return true;
    return this.aclPass(from, DIR_OUT) && this.aclPass(to, DIR_IN);
  }

  // ---- results ---------------------------------------------------------------------------------

  private drop(reason: number): void {
    const st = this.st;
    if (st.gen) return;
    st.fate = FATE_DROPPED;
    st.reason = reason;
  }

  private emit(egress: number): void {
    const st = this.st;
    const out = this.out!;
    const s = this.pkt * OUT_SLOTS + st.nOut;
    out.outOff[s] = st.fo;
    out.outLen[s] = st.pv.totalLen;
    out.outEgress[s] = egress;
    st.nOut++;
    if (!st.gen) {
      st.fate = FATE_DELIVERED;
      st.reason = REASON_NONE;
      st.trkEgress = egress;
    }
  }

  /** The whole path for input packet i (its fast path declined it). */
  run(batch: FrameBatch, out: BatchOutput, i: number, now: number): void {
    const st = this.st;
    this.out = out;
    this.pkt = i;
    st.pkt = i;
    st.now = now;
    st.nOut = 0;
    st.gen = false;
    st.fate = FATE_DROPPED;
    st.reason = REASON_NONE;
    st.detail = 0;
    st.ctRes = CT_NONE;
    st.trkOk = true;
    st.trkNat = 0;
    this.sgN = 0;
    this.sgReply = 0;
    if (this.aws !== null) this.aws.walkBegin();
    this.fltN = -1;
    st.trkArrivals = 0;
    st.trkTtl = 0;
    st.trkEip = 0;
    st.trkLocal = -1;
    st.trkEgress = 0;
    const ingress = batch.ingress[i];
    st.trkIngress = ingress;
    const inb = batch.arena;
    const off = batch.off[i];
    const len = batch.len[i];
    const ob = out.outArena;
    const oo = off;
    // A new flow's packet (the fast path's lookup missed: st.missValid) was checked by the fast
    // path — IHL 5, total length = len, no fragment, TCP/UDP, header checksum — and its L4 bytes
    // were copied to the output while their checksum was verified (dataplane.ts fastPath): only
    // the 20-byte header is copied here, and conntrack takes the verdict (st.l4Verified).
    const handed = st.missValid;
    this.copyIn(inb, off, ob, oo, handed ? IPV4_HEADER_LEN : len);
    st.buf = ob;
    st.fo = oo;
    st.errOff = errorBase(inb.length, i);
    const pv = st.pv;
    const ps = parseIpv4(ob, oo, len, pv, handed);
    st.l4Verified = handed;
    if (handed) st.noteVerified();
    if (isIpLevelMalformation(ps)) {
      st.reason = DROP_MALFORMED;
      st.detail = ps;
    } else if (ps !== PARSE_OK && pv.ihl === 0) {
      st.reason = DROP_MALFORMED;
      st.detail = ps;
    } else {
      if (this.c.gwCount > 0) this.gw.expire(Math.floor(batch.timeUs[i] / 1000));
      this.walk(ingress === 0 ? -1 : ingress - 1, ingress === 0, -1, 0, 0);
    }
    if (st.fate === FATE_DROPPED) this.drops[this.dropBase + st.reason]++;
    else if (st.trkOk && st.trkNat === 1 && st.trkLocal >= 0 && st.nOut === 1) this.recordPath();
    out.result[i] = packResult(st.fate, st.reason, st.detail, st.ctRes, st.nOut);
  }

  /** Copies len bytes (slow path: byte by byte, four at a time). */
  private copyIn(src: Uint8Array, so: number, dst: Uint8Array, d: number, len: number): void {
    let k = 0;
    for (; k + 4 <= len; k += 4) {
      dst[d + k] = src[so + k];
      dst[d + k + 1] = src[so + k + 1];
      dst[d + k + 2] = src[so + k + 2];
      dst[d + k + 3] = src[so + k + 3];
    }
    for (; k < len; k++) dst[d + k] = src[so + k];
  }

  /** Stores the composed path of the packet's session direction (the fast path replays it). */
  private recordPath(): void {
    const st = this.st;
    const t = this.t;
    const ing = st.trkIngress;
    const eg = st.trkEgress;
    if (ing > PATH_MAX_POINT || eg > PATH_MAX_POINT || st.trkTtl > PATH_MAX_TTL || st.trkEip > PATH_MAX_EIP) return;
    const o = t.rec(st.trkLocal);
    const ses = t.ses;
    const meta = ses[o + S_META];
    if ((meta & M_LIVE) === 0) return;
    const p =
      (ing << PATH_IN_SHIFT) | (eg << PATH_OUT_SHIFT) | (st.trkTtl << PATH_TTL_SHIFT) | (st.trkEip << PATH_EIP_SHIFT);
    if (this.fltOn) {
      // What the filter hook counted (none: the instance has no table), before the path exists.
      const fo = this.ffBase + (st.trkLocal * 2 + st.trkKind) * FF_WORDS;
      const n = this.fltN;
      this.ff[fo] = n < 0 ? 0 : n + 1;
      for (let k = 0; k < n; k++) this.ff[fo + 1 + k] = this.fltCells[k];
    }
    if (st.trkKind === KIND_ORIG) {
      ses[o + S_PATH] = ((ses[o + S_PATH] & 0xffff0000) | p) >>> 0;
      t.touchMeta(o, (meta | M_PATH_O) >>> 0);
    } else {
      ses[o + S_PATH] = ((ses[o + S_PATH] & 0xffff) | (p << 16)) >>> 0;
      t.touchMeta(o, (meta | M_PATH_R) >>> 0);
    }
    if (this.aws !== null)
      this.aws.recordFast(
        st.trkLocal,
        st.trkKind,
        (meta & M_ASSURED) !== 0,
        this.sgN,
        this.sgSlot,
        this.sgReply,
        st.now,
      );
  }

  // ---- the walk ------------------------------------------------------------------------------------

  /**
   * Walks the current frame. `fromInternet`: it enters at the IGW (inbound); else it leaves
   * instance `inst` (step 2), or NAT gateway `gwFrom` when that is ≥ 0 (an RST it sends). `hops0`
   * and `hairpins0`: arrivals and hairpins already on the packet's way (a generated packet
   * continues its trigger's counts, as the model's sub-walks do).
   */
  private walk(inst: number, fromInternet: boolean, gwFrom: number, hops0: number, hairpins0: number): void {
    const c = this.c;
    const st = this.st;
    const pv = st.pv;
    let hops = hops0;
    let hairpins = hairpins0;
    let arriving = false;
    /** A NAT gateway the packet is leaving (≥ 0) or arriving at (gwAt ≥ 0), instead of an instance. */
    let gwLeave = gwFrom;
    let gwAt = -1;
    if (fromInternet) {
      // Step 7: IGW inbound.
      const e = eipIndex(c, pv.dst);
      if (e < 0) return this.drop(DROP_IGW_UNKNOWN_DST);
      this.igwRewrite(false, pv.dst, c.eipPriv[e]);
      inst = c.eipInst[e];
      gwAt = c.eipGw[e];
      if (
        this.aws !== null &&
        !this.aclPass(gwAt >= 0 ? this.aws.f.gwSubnet[gwAt] : this.aws.f.instSubnet[inst], DIR_IN)
      )
        return;
      arriving = true;
    }
    for (;;) {
      if (!arriving) {
        let rt: number;
        /** The subnet the packet leaves (network ACLs). */
        let srcSub: number;
        if (gwLeave >= 0) {
          // A NAT gateway has no source/dest check; its subnet's route table routes what it sends.
          rt = c.gwRt[gwLeave];
          srcSub = this.aws !== null ? this.aws.f.gwSubnet[gwLeave] : -1;
          gwLeave = -1;
        } else {
          // Step 2: ENI egress source/dest check of `inst` (a stopped instance sends nothing).
          if (c.instStopped[inst] !== 0) return this.drop(DROP_INSTANCE_STOPPED);
          if (c.instSdc[inst] && pv.src !== c.instPriv[inst]) return this.drop(DROP_SRC_DST_CHECK_SRC);
          // Multicast/broadcast is dropped by the router below before any security group sees it.
          if (!isMulticastOrBroadcast(pv.dst) && !this.sgPass(inst, DIR_OUT)) return;
          rt = c.instRt[inst];
          srcSub = this.aws !== null ? this.aws.f.instSubnet[inst] : -1;
        }
        // Step 3: VPC router (no multicast, no limited broadcast).
        if (isMulticastOrBroadcast(pv.dst)) return this.drop(DROP_MULTICAST);
        const r = routeLookup(c, rt, pv.dst);
        if (r < 0) return this.drop(DROP_NO_ROUTE);
        const kind = c.rtKind[r];
        if (kind === RT_BLACKHOLE) return this.drop(DROP_BLACKHOLE);
        if (kind === RT_IGW) {
          if (this.aws !== null && !this.aclPass(srcSub, DIR_OUT)) return;
          // Step 4: IGW outbound.
          const e = eipOfPrivate(c, pv.src);
          if (e < 0) return this.drop(DROP_IGW_NO_PUBLIC_IP);
          this.igwRewrite(true, pv.src, c.eipAddr[e]);
          if (st.trkNat >= 1) st.trkEip = e + 1;
          const h = eipIndex(c, pv.dst);
          if (h >= 0 && hairpins < IGW_MAX_HAIRPIN) {
            // Hairpin: the IGW sends a packet for one of the VPC's own EIPs straight back in.
            hairpins++;
            st.trkOk = false;
            this.igwRewrite(false, pv.dst, c.eipPriv[h]);
            inst = c.eipInst[h];
            gwAt = c.eipGw[h];
            if (
              this.aws !== null &&
              !this.aclPass(gwAt >= 0 ? this.aws.f.gwSubnet[gwAt] : this.aws.f.instSubnet[inst], DIR_IN)
            )
              return;
            arriving = true;
            continue;
          }
          this.emit(0);
          return;
        }
        if (kind === RT_LOCAL) {
          const t = instanceByPrivate(c, pv.dst);
          if (t < 0) {
            gwAt = gatewayByPrivate(c, pv.dst);
            if (gwAt < 0) return this.drop(DROP_NO_HOST);
            if (this.aws !== null && !this.crossPass(srcSub, this.aws.f.gwSubnet[gwAt])) return;
          } else {
            if (this.aws !== null && !this.crossPass(srcSub, this.aws.f.instSubnet[t])) return;
            inst = t;
          }
        } else if (kind === RT_ENI) {
          // A route to a stopped instance's ENI is a blackhole (AWS Route.State) while it is stopped.
          if (c.instStopped[c.rtInst[r]] !== 0) return this.drop(DROP_BLACKHOLE);
          if (this.aws !== null && !this.crossPass(srcSub, this.aws.f.instSubnet[c.rtInst[r]])) return;
          inst = c.rtInst[r];
        } else if (kind === RT_NATGW) {
          gwAt = c.rtInst[r];
          if (this.aws !== null && !this.crossPass(srcSub, this.aws.f.gwSubnet[gwAt])) return;
        }
        arriving = true;
        continue;
      }
      if (gwAt >= 0) {
        // Arrival at a NAT gateway (nat-gateway.ts).
        if (++hops > MAX_HOPS) return this.drop(DROP_ROUTING_LOOP);
        st.trkOk = false;
        const g = gwAt;
        gwAt = -1;
        if (!this.gateway(g, hops, hairpins)) return;
        gwLeave = g;
        arriving = false;
        continue;
      }
      // Arrival at instance `inst`.
      if (++hops > MAX_HOPS) return this.drop(DROP_ROUTING_LOOP);
      st.trkArrivals++;
      if (c.instStopped[inst] !== 0) return this.drop(DROP_INSTANCE_STOPPED);
      // Step 5: ENI ingress check.
      if (c.instSdc[inst] && pv.dst !== c.instPriv[inst]) return this.drop(DROP_SRC_DST_CHECK_DST);
      if (!this.sgPass(inst, DIR_IN)) return;
      const slot = c.instNat[inst];
      if (slot < 0) {
        // A plain host.
        if (st.trkNat === 0) st.trkOk = false;
        if (pv.dst === c.instPriv[inst]) {
          // Arrival at its own address is the output (what reached the ENI), whatever its stack
          // does next — even with its own address as source (model twin: plainHost).
          this.emit(inst + 1);
          return;
        }
        if (!c.instFwd[inst]) return this.drop(DROP_IP_FORWARD_OFF);
        if (pv.src === c.instPriv[inst]) return this.drop(DROP_MARTIAN_SOURCE);
        if (pv.ttl <= 1) {
          this.drop(DROP_TTL_EXCEEDED);
          this.timeExceeded(inst, -1);
          return;
        }
        this.manip.decTtl();
        arriving = false;
        continue;
      }
      if (!this.natInstance(inst, slot, hops, hairpins)) return;
      arriving = false;
    }
  }

  /** A time exceeded from `inst` (NAT slot `slot` or -1) for the current frame, walked out. */
  private timeExceeded(inst: number, slot: number, attach = false): void {
    this.icmpAnswer(inst, slot, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, 0, attach);
  }

  /**
   * The current frame has a conntrack entry (confirmed, or pending) that an ICMP error about it
   * carries (nf_ct_attach): read before finishEntry drops a pending one.
   */
  private triggerHasEntry(): boolean {
    const st = this.st;
    return st.ctCls !== CT_INVALID && (st.pending || st.cLocal >= 0);
  }

  /**
   * An ICMP error (type, code) from `inst` (NAT slot `slot` or -1) about the current frame:
   * LOCAL_OUT conntrack and DST manip, filter OUTPUT, the SRC manip, then walked out continuing
   * the trigger's hop and hairpin counts (the model's sendIcmpError).
   */
  private icmpAnswer(
    inst: number,
    slot: number,
    type: number,
    code: number,
    hops: number,
    hairpins: number,
    attach = false,
  ): void {
    const st = this.st;
    if (!this.icmp.generate(inst, slot, type, code, st.now + this.clockBase[this.t.w], attach)) return;
    if (slot >= 0 && this.filter.has(slot)) {
      const cs = st.ctCls === CT_RELATED ? CTSTATE_RELATED : CTSTATE_INVALID;
      // A generated packet is not answered again: any verdict but ACCEPT drops it here.
      if (this.filter.run(slot, HOOK_OUTPUT, cs) !== FV_ACCEPT) {
        st.gen = false;
        return;
      }
    }
    this.icmp.postrouting(slot);
    this.walk(inst, false, -1, hops, hairpins);
    st.gen = false;
  }

  // ---- the filter table (filter.ts, docs/semantics.md §13) -----------------------------------------

  /**
   * Built-in filter chain `hook` of NAT instance `inst` (slot `slot`) on the current frame: true =
   * ACCEPT, go on. Else the packet is dropped (filter-drop / filter-reject), its unconfirmed entry
   * goes, and a REJECT answers (an unreachable or a reset, walked out of the instance).
   */
  private filterHook(inst: number, slot: number, hook: number, hops: number, hairpins: number): boolean {
    const st = this.st;
    const ft = this.filter;
    const v = ft.run(slot, hook, ctstateOf(st.ctCls));
    if (v === FV_ACCEPT) {
      // A composed path may replay this walk only if every fast-path packet of the session
      // direction walks it alike: ESTABLISHED, and FilterTable.replayable (few enough counters,
      // no flag read that varies). A generated packet's walk, or a second hook on the way, leaves
      // no path to replay either.
      if (st.gen || this.fltN >= 0 || st.ctCls !== CT_ESTABLISHED || !ft.replayable()) st.trkOk = false;
      else {
        this.fltN = ft.nCells;
        for (let k = 0; k < ft.nCells; k++) this.fltCells[k] = ft.cells[k];
      }
      return true;
    }
    this.drop(v === FV_REJECT ? DROP_FILTER_REJECT : DROP_FILTER_DROP);
    // A generated packet (an ICMP error, a reset) is never answered: nf_send_unreach does not
    // answer an ICMP error, nf_send_reset not an RST.
    if (v !== FV_REJECT || st.gen) {
      this.finishEntry();
      return false;
    }
    const code = this.filter.rejectWith;
    if (code === REJECT_TCP_RESET) {
      this.rejectReset(inst, slot, hops, hairpins);
      return false;
    }
    const attach = this.triggerHasEntry();
    this.finishEntry();
    // nf_send_unreach: not for a fragment; the L4 checksum must verify (UDP without one passes).
    const pv = st.pv;
    if (pv.fragOff !== 0) return false;
    if ((pv.proto === PROTO_TCP || pv.proto === PROTO_UDP || pv.proto === PROTO_ICMP) && !verifyL4Checksum(st.buf, pv))
      return false;
    this.icmpAnswer(inst, slot, ICMP_DEST_UNREACH, code, hops, hairpins, attach);
    return false;
  }

  /**
   * nf_send_reset: the RST answering the current TCP segment (not for an RST, a fragment, a short
   * header or a bad checksum), from its destination to its source, DF, id 0, TTL 64. nf_ct_attach
   * makes it RELATED to the segment's entry in the other direction: no conntrack update, that
   * direction's NAT applied; the rejected packet's own unconfirmed entry gets its nat POSTROUTING
   * chain run for the reset (counters, the port choice), as the model's sendFilterReset.
   */
  private rejectReset(inst: number, slot: number, hops: number, hairpins: number): void {
    const st = this.st;
    const pv = st.pv;
    const b = st.buf;
    const th = st.fo + pv.ihl;
    if (pv.fragOff !== 0 || pv.proto !== PROTO_TCP || pv.totalLen - pv.ihl < TCP_HEADER_MIN) {
      this.finishEntry();
      return;
    }
    const flags = b[th + 13];
    if ((flags & F_RST) !== 0 || !verifyL4Checksum(b, pv)) {
      this.finishEntry();
      return;
    }
    const payloadLen = pv.totalLen - pv.ihl - ((b[th + 12] >>> 4) << 2);
    const eo = st.errOff;
    writeTcpReset(
      b,
      eo,
      pv.src,
      pv.dst,
      rd16(b, th),
      rd16(b, th + 2),
      rd32(b, th + 4),
      rd32(b, th + 8),
      flags,
      payloadLen,
      DEFAULT_IP_TTL,
    );
    b[eo + 6] = 0x40; // nf_reject_iphdr_put: frag_off = IP_DF
    wr16(b, eo + 10, 0);
    wr16(b, eo + 10, ipv4HeaderChecksum(b, eo, 20));
    st.gen = true;
    st.fo = eo;
    parseIpv4(b, eo, TCP_RESET_LEN, pv);
    const attached = st.ctCls !== CT_INVALID;
    const dir0 = st.cDir;
    if (attached) {
      st.cDir = dir0 ^ 1;
      this.nat.natPacket(MANIP_DST);
    }
    if (this.filter.run(slot, HOOK_OUTPUT, attached ? CTSTATE_RELATED : CTSTATE_INVALID) !== FV_ACCEPT) {
      st.cDir = dir0;
      st.gen = false;
      this.finishEntry();
      return;
    }
    if (attached) {
      if (st.pending) this.nat.setupInfo(slot, inst, MANIP_SRC, false);
      this.nat.natPacket(MANIP_SRC);
      st.cDir = dir0;
    }
    this.finishEntry();
    this.walk(inst, false, -1, hops, hairpins);
    st.gen = false;
  }

  /**
   * The current frame at NAT gateway g: translated (true: it leaves the gateway, TTL decremented)
   * or dropped — a TCP packet of no known connection is answered with an RST walked out of the
   * gateway (continuing the hop and hairpin counts).
   */
  private gateway(g: number, hops: number, hairpins: number): boolean {
    const st = this.st;
    const pv = st.pv;
    const own = gatewayAddrIndex(this.c, g, pv.dst);
    if (own >= 0) {
      const r = this.gw.inbound(g, own);
      if (r !== REASON_NONE) {
        this.drop(r);
        return false;
      }
      this.manip.decTtl();
      return true;
    }
    const r = this.gw.outbound(g);
    if (r === REASON_NONE) {
      this.manip.decTtl();
      return true;
    }
    this.drop(r);
    if (this.gw.reset && !st.gen) {
      const b = st.buf;
      const eo = st.errOff;
      writeTcpReset(
        b,
        eo,
        pv.src,
        pv.dst,
        pv.sport,
        pv.dport,
        pv.tcpSeq,
        pv.tcpAck,
        pv.tcpFlags & ~F_RST,
        pv.payloadLen,
        DEFAULT_IP_TTL,
      );
      st.gen = true;
      st.fo = eo;
      parseIpv4(b, eo, TCP_RESET_LEN, pv);
      this.walk(-1, false, g, hops, hairpins);
      st.gen = false;
    }
    return false;
  }

  /** Step 6 at NAT instance `inst`: the netfilter hooks. True: the packet leaves the instance (continue the walk). */
  private natInstance(inst: number, slot: number, hops: number, hairpins: number): boolean {
    const c = this.c;
    const st = this.st;
    const pv = st.pv;
    st.trkNat++;
    if (st.trkArrivals !== 1) st.trkOk = false;
    // a. PREROUTING: nf_defrag_ipv4 holds fragments (natlab does not reassemble): no conntrack.
    if (pv.status === PARSE_FRAGMENT || pv.mf !== 0) {
      this.drop(DROP_FRAGMENT);
      return false;
    }
    // Conntrack, then DNAT.
    if (!this.ct.in(slot, true)) {
      // Table full: no conntrack is attached to the dropped packet (ct INVALID, as the model).
      if (!st.gen) st.ctRes = CT_INVALID;
      this.drop(DROP_CT_TABLE_FULL);
      return false;
    }
    if (!st.gen) st.ctRes = st.ctCls;
    if (!st.pending && st.cLocal >= 0 && st.trkNat === 1) {
      st.trkLocal = st.cLocal;
      st.trkKind = st.cDir;
    }
    if (st.ctCls === CT_INVALID || st.ctCls === CT_RELATED || st.killAfter) st.trkOk = false;
    // An instance with a filter table: its hook decides whether a composed path may replay the walk.
    const filtered = this.filter.has(slot);
    // A frame that may be delivered here keeps its arrival bytes (the DNAT below rewrites them).
    this.arrivalLen = -1;
    if (st.ctCls !== CT_INVALID && (pv.dst === c.instPriv[inst] || this.dnatSlot[slot] !== 0)) {
      const n = Math.min(pv.totalLen, NAT_REWRITE_SPAN);
      const b = st.buf;
      const fo = st.fo;
      const a = this.arrival;
      for (let k = 0; k < n; k++) a[k] = b[fo + k];
      this.arrivalLen = n;
    }
    if (st.ctCls === CT_RELATED) {
      const r = this.icmp.replyTranslation(MANIP_DST);
      if (r !== REASON_NONE) {
        this.drop(r);
        return false;
      }
    } else if (st.ctCls !== CT_INVALID) {
      if (st.pending) this.nat.setupInfo(slot, inst, MANIP_DST);
      else this.nat.natPacket(MANIP_DST);
    }
    // b. Routing: local delivery (a source that is the instance's own address is a martian).
    if (pv.dst === c.instPriv[inst]) {
      if (pv.src === c.instPriv[inst]) {
        this.drop(DROP_MARTIAN_SOURCE);
        this.finishEntry();
        return false;
      }
      // filter INPUT (in eth0), then nat INPUT — a new connection's SNAT rule or null binding
      // (its source port searched when the reply tuple is taken: nf_nat_edemux.sh) — then confirm.
      if (filtered && !this.filterHook(inst, slot, HOOK_INPUT, hops, hairpins)) return false;
      if (st.pending) {
        this.nat.setupInfo(slot, inst, MANIP_SRC, false, CH_IN);
        if (!this.ct.confirm(slot, true)) {
          this.drop(st.confirmFull ? DROP_CT_TABLE_FULL : DROP_NAT_CLASH);
          return false;
        }
      }
      // The output is the frame as it reached the ENI (docs/semantics.md §2 step 6b); a session
      // with NAT has no composed path here (the fast path would output the rewritten frame).
      const a = this.arrival;
      const b = st.buf;
      const fo = st.fo;
      for (let k = 0; k < this.arrivalLen; k++) b[fo + k] = a[k];
      if ((st.eMeta & (M_SRC_NAT | M_DST_NAT)) !== 0) st.trkOk = false;
      this.finishEntry();
      this.emit(inst + 1);
      return false;
    }
    // c. Forwarding.
    if (!c.instFwd[inst]) {
      this.drop(DROP_IP_FORWARD_OFF);
      this.finishEntry();
      return false;
    }
    if (pv.src === c.instPriv[inst]) {
      this.drop(DROP_MARTIAN_SOURCE);
      this.finishEntry();
      return false;
    }
    if (pv.ttl <= 1) {
      const attach = this.triggerHasEntry();
      this.drop(DROP_TTL_EXCEEDED);
      this.finishEntry();
      this.timeExceeded(inst, slot, attach);
      return false;
    }
    this.manip.decTtl();
    // c'. mangle FORWARD, filter FORWARD (in and out eth0), mangle POSTROUTING — before the nat table.
    const mangled = this.mangle.has(slot);
    if (mangled && this.mangle.run(slot, MANGLE_FORWARD) === MANGLE_DROP) {
      this.drop(DROP_TCPMSS);
      this.finishEntry();
      return false;
    }
    if (filtered && !this.filterHook(inst, slot, HOOK_FORWARD, hops, hairpins)) return false;
    if (mangled && this.mangle.run(slot, MANGLE_POSTROUTING) === MANGLE_DROP) {
      this.drop(DROP_TCPMSS);
      this.finishEntry();
      return false;
    }
    // d. POSTROUTING.
    if (st.ctCls === CT_RELATED) {
      const r = this.icmp.replyTranslation(MANIP_SRC);
      if (r !== REASON_NONE) {
        this.drop(r);
        return false;
      }
    } else if (st.ctCls !== CT_INVALID) {
      if (st.pending) this.nat.setupInfo(slot, inst, MANIP_SRC);
      else this.nat.natPacket(MANIP_SRC);
    }
    // e. Confirm.
    if (st.pending && !this.ct.confirm(slot, true)) {
      this.drop(st.confirmFull ? DROP_CT_TABLE_FULL : DROP_NAT_CLASH);
      return false;
    }
    this.finishEntry();
    return true;
  }

  /** After NAT: an entry marked for deletion (RST before any reply) goes now. */
  private finishEntry(): void {
    const st = this.st;
    const t = this.t;
    if (st.killAfter && st.cLocal >= 0) {
      const o = t.rec(st.cLocal);
      if (t.ses[o + S_META] & M_LIVE) t.release(st.cLocal);
    }
    st.killAfter = false;
    st.pending = false;
  }

  /** IGW static NAT: outbound (src old → neu; quoted dst too) or inbound (dst; quoted src too). */
  private igwRewrite(outbound: boolean, old: number, neu: number): void {
    const st = this.st;
    const pv = st.pv;
    this.manip.setAddr(outbound ? 0 : 1, neu);
    if (pv.proto === PROTO_ICMP && pv.isIcmpError && pv.status === PARSE_OK) {
      const which = outbound ? 1 : 0;
      const cur = which === 0 ? pv.innerSrc : pv.innerDst;
      if (cur !== old) return;
      // The quoted address, the inner IP checksum and the inner L4 checksum (UDP always: 8 bytes
      // are quoted; TCP only with its whole 20-byte header) are patched, and the ICMP checksum
      // incrementally for each changed word, so a wrong checksum stays wrong (as the stateless IGW
      // of the kernel oracle, src/oracle/igw.ts).
      const b = st.buf;
      const io = pv.innerOff;
      const co = pv.l4Off + 2;
      let ic = rd16(b, co);
      const ipc0 = rd16(b, io + 10);
      wr32(b, io + (which === 0 ? 12 : 16), neu);
      wr16(b, io + 10, csumReplace32(ipc0, old, neu));
      ic = csumReplace32(ic, old, neu);
      ic = csumReplace16(ic, ipc0, rd16(b, io + 10));
      const ip = pv.innerProto;
      const lo =
        ip === PROTO_TCP && pv.innerL4Len >= 20 ? pv.innerL4Off + 16 : ip === PROTO_UDP ? pv.innerL4Off + 6 : -1;
      if (lo >= 0) {
        const l0 = rd16(b, lo);
        wr16(b, lo, ip === PROTO_UDP ? udpCsumReplace32(l0, old, neu) : csumReplace32(l0, old, neu));
        ic = csumReplace16(ic, l0, rd16(b, lo));
      }
      wr16(b, co, ic);
      if (which === 0) pv.innerSrc = neu;
      else pv.innerDst = neu;
    }
  }
}
