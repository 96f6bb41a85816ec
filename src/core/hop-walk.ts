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
  M_LIVE,
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
import { F_RST } from '../packet/constants.ts';
import { DEFAULT_IP_TTL } from '../spec/timeouts.ts';
import { AwsFilters, DIR_IN, DIR_OUT, FAST_MAX_SG } from './aws-filters.ts';
import { Conntrack } from './conntrack.ts';
import { IcmpErrors } from './icmp-error.ts';
import { IcmpRateLimits } from './icmp-ratelimit.ts';
import { PacketManip } from './manip.ts';
import { Nat } from './nat.ts';
import { MANIP_DST, MANIP_SRC } from './nat-port-search.ts';
import { SlowState } from './slow-state.ts';
import { MANGLE_DROP, Tcpmss } from './tcpmss.ts';
import type { Tables } from './tables.ts';
import { PARSE_FRAGMENT, PARSE_OK, isIpLevelMalformation, parseIpv4 } from '../packet/parse.ts';
import { rd16, wr16, wr32 } from '../packet/bytes.ts';
import { csumReplace16, csumReplace32, udpCsumReplace32 } from '../packet/checksum.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { isMulticastOrBroadcast } from '../packet/addr.ts';
import {
  CT_INVALID,
  CT_NONE,
  CT_RELATED,
  DROP_BLACKHOLE,
  DROP_CT_TABLE_FULL,
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

/** Instance arrivals per packet before it is dropped as a routing loop. */
const MAX_HOPS = 8;
/** The IGW hairpins a packet to one of the VPC's own EIPs at most this often (the oracle's bound). */
const IGW_MAX_HAIRPIN = 4;

export class HopWalk {
  readonly st = new SlowState();
  readonly manip: PacketManip;
  readonly ct: Conntrack;
  readonly nat: Nat;
  readonly icmp: IcmpErrors;
  /** The scenario's NAT gateways (none: every method is a no-op). */
  readonly gw: NatGateways;
  readonly mangle: Tcpmss;
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
    this.drops = t.v.drops;
    this.dropBase = worker * REASON_COUNT;
    const sh = t.shared;
    this.aws = c.aws && sh.sg ? new AwsFilters(c.aws, c.instPriv, sh.sabs, sh.sg, worker, t, sh.capW, t.v.clock) : null;
    if (this.aws) this.aws.onShareLimit = () => t.noteSgShareDecision(this.st.batchNo, this.st.pkt);
    this.clockBase = t.v.clock;
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
    this.copyIn(inb, off, ob, oo, len);
    st.buf = ob;
    st.fo = oo;
    st.errOff = errorBase(inb.length, i);
    const pv = st.pv;
    const ps = parseIpv4(ob, oo, len, pv);
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
      if (!this.natInstance(inst, slot)) return;
      arriving = false;
    }
  }

  /** A time exceeded from `inst` (NAT slot `slot` or -1) for the current frame, walked out. */
  private timeExceeded(inst: number, slot: number): void {
    if (this.icmp.timeExceeded(inst, slot, this.st.now + this.clockBase[this.t.w])) this.walk(inst, false, -1, 0, 0);
    this.st.gen = false;
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
  private natInstance(inst: number, slot: number): boolean {
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
      if (st.pending) this.nat.countInput(slot);
      if (st.pending && !this.ct.confirm(slot, false)) {
        this.drop(st.confirmFull ? DROP_CT_TABLE_FULL : DROP_NAT_CLASH);
        return false;
      }
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
      this.drop(DROP_TTL_EXCEEDED);
      this.finishEntry();
      this.timeExceeded(inst, slot);
      return false;
    }
    this.manip.decTtl();
    // c'. mangle FORWARD and POSTROUTING (TCPMSS), before the nat table.
    if (this.mangle.has(slot) && this.mangle.run(slot) === MANGLE_DROP) {
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
