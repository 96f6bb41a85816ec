// The dataplane's slow path: the full walk of docs/semantics.md §2 for one packet, hop by hop —
// ENI source/dest checks, VPC routing (LPM), IGW 1:1 NAT, and at each NAT instance conntrack
// (§3–§5), PREROUTING DNAT, routing, forwarding (ip_forward, TTL, time exceeded), POSTROUTING
// SNAT/MASQUERADE, confirm — plus ICMP errors (§6) and the port choice of §8. It records, per
// session direction, the composed path the fast path (dataplane.ts) applies later.
//
// Cold relative to the fast path, but still allocation-free: it works in place on the packet's
// output copy, through one reused PacketView and scratch fields.

import type { BatchIO, CoreShared } from './layout.ts';
import {
  M_ASSURED, M_BYSRC, M_DST_NAT, M_LIVE, M_LOOSE, M_NALIST, M_PATH_O, M_PATH_R, M_SEEN_REPLY, M_SLOT_SHIFT,
  M_SRC_NAT, M_STATE_MASK, M_STATE_SHIFT, PATH_EIP_SHIFT, PATH_IN_SHIFT, PATH_MAX_EIP, PATH_MAX_POINT, PATH_MAX_TTL,
  PATH_OUT_SHIFT, PATH_TTL_SHIFT, S_CREATED, S_EXPIRY, S_META, S_NNEXT, S_NPREV, S_OPORTS, S_PATH, S_WNEXT, S_WPREV,
  TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT, KIND_BYSRC, KIND_ORIG, KIND_REPLY,
  S_TCP_END, S_TCP_FLAGS, T_CHALLENGE_ACK, T_CLOSE_INIT, T_LAST_DIR, T_LAST_IDX_MASK, T_LAST_IDX_SHIFT,
  T_SIMULTANEOUS_OPEN, TCP_LAST_ACK, TCP_FIN_WAIT, TCP_SYN_SENT2,
} from './layout.ts';
import { Tables, hashTuple, hashBysrc } from './tables.ts';
import {
  type CompiledScenario, CH_COUNT, CH_IN, CH_POST, CH_PRE, RT_BLACKHOLE, RT_ENI, RT_IGW, RT_LOCAL, TK_DNAT, TK_MASQUERADE, TK_RETURN,
  TK_SNAT, TO_CLOSE, TO_ESTABLISHED, TO_GENERIC, TO_ICMP, TO_SYN_SENT, TO_UDP, TO_UDP_STREAM, TO_UNACK,
  eipIndex, eipOfPrivate, instanceByPrivate, routeLookup, ruleMatch,
} from './compile.ts';
import { isDnatTarget, ownerInbound, ownerOutbound } from './dispatch.ts';
import { PacketView, parseIpv4, PARSE_OK, PARSE_FRAGMENT, isIpLevelMalformation } from '../packet/parse.ts';
import { sum16, fold16, csumReplace16, csumReplace32, udpCsumReplace32 } from '../packet/checksum.ts';
import {
  CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_NONE, CT_RELATED, DROP_BLACKHOLE, DROP_CT_TABLE_FULL, DROP_FRAGMENT,
  DROP_ICMP_BAD_CHECKSUM, DROP_IGW_NO_PUBLIC_IP, DROP_IGW_UNKNOWN_DST, DROP_IP_FORWARD_OFF, DROP_MALFORMED,
  DROP_NAT_CLASH, DROP_NO_HOST, DROP_NO_ROUTE, DROP_ROUTING_LOOP, DROP_SRC_DST_CHECK_DST, DROP_SRC_DST_CHECK_SRC,
  DROP_TTL_EXCEEDED, DROP_ICMP_REDIRECT_NAT, FATE_DELIVERED, FATE_DROPPED, REASON_COUNT, REASON_NONE,
} from '../spec/reasons.ts';
import {
  DEFAULT_IP_TTL, ICMP_ERROR_MAX_LEN, PORT_RANGE_HIGH_MIN, PORT_RANGE_LOW_MAX, PORT_RANGE_LOW_MIN, PORT_RANGE_MID_MIN,
  PORT_RANGE_MID_MAX, PORT_RANGE_HIGH_MAX, UDP_STREAM_AFTER_S,
} from '../spec/timeouts.ts';
import {
  NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_RANDOM, NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED,
} from '../spec/scenario.ts';

const MAX_HOPS = 8;
/** The IGW hairpins a packet to one of the VPC's own EIPs at most this often (the oracle's bound). */
const IGW_MAX_HAIRPIN = 4;
const MANIP_SRC = 0;
const MANIP_DST = 1;
const IV = 10;
const IG = 11;
// tcp_conntracks (newest): [dir][class][state]; classes syn, synack, fin, ack, rst, none;
// states NO SS SR ES FW CW LA TW CL S2.
const sNO = 0, sSS = 1, sSR = 2, sES = 3, sFW = 4, sCW = 5, sLA = 6, sTW = 7, sCL = 8, sS2 = 9;
const TCP_TABLE = new Uint8Array([
  // ORIG
  sSS, sSS, IG, IG, IG, IG, IG, sSS, sSS, sS2, // syn
  IV, IV, sSR, IV, IV, IV, IV, IV, IV, sSR, // synack
  IV, IV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, IV, // fin
  sES, IV, sES, sES, sCW, sCW, sTW, sTW, sCL, IV, // ack
  IV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, // rst
  IV, IV, IV, IV, IV, IV, IV, IV, IV, IV, // none
  // REPLY
  IV, sS2, IV, IV, IV, IV, IV, sSS, IV, sS2, // syn
  IV, sSR, IG, IG, IG, IG, IG, IG, IG, sSR, // synack
  IV, IV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, IV, // fin
  IV, IG, sSR, sES, sCW, sCW, sTW, sTW, sCL, IG, // ack
  IV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, // rst
  IV, IV, IV, IV, IV, IV, IV, IV, IV, IV, // none
]);
void sNO;
const C_SYN = 0, C_SYNACK = 1, C_FIN = 2, C_ACK = 3, C_RST = 4, C_NONE = 5;
/** Valid TCP flag combinations after masking PSH/ECE/CWR (index = flags & 0x37). */
const TCP_VALID = new Uint8Array(64);
for (const f of [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30]) TCP_VALID[f] = 1;

function tcpClass(flags: number): number {
  if (flags & 0x04) return C_RST;
  if (flags & 0x02) return flags & 0x10 ? C_SYNACK : C_SYN;
  if (flags & 0x01) return C_FIN;
  if (flags & 0x10) return C_ACK;
  return C_NONE;
}

/** ICMP query type inversion (-1: not invertible). */
function icmpInv(t: number): number {
  switch (t) {
    case 8: return 0;
    case 0: return 8;
    case 13: return 14;
    case 14: return 13;
    case 15: return 16;
    case 16: return 15;
    case 17: return 18;
    case 18: return 17;
    default: return -1;
  }
}

function isIcmpNewType(t: number): boolean {
  return t === 8 || t === 13 || t === 15 || t === 17;
}

function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
function fold(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}
/** Delta for replacing 32-bit old with neu (folded). */
function d32(old: number, neu: number): number {
  return fold((~old >>> 16 & 0xffff) + (~old & 0xffff) + (neu >>> 16) + (neu & 0xffff));
}
function d16(old: number, neu: number): number {
  return fold((~old & 0xffff) + (neu & 0xffff));
}
/** Applies a delta to the checksum field at o. */
function applyCsum(b: Uint8Array, o: number, d: number): void {
  const c = rd16(b, o);
  wr16(b, o, ~fold((~c & 0xffff) + d) & 0xffff);
}
/** UDP: zero stays zero; a computed zero becomes 0xffff. */
function applyUdpCsum(b: Uint8Array, o: number, d: number): void {
  const c = rd16(b, o);
  if (c === 0) return;
  const n = ~fold((~c & 0xffff) + d) & 0xffff;
  wr16(b, o, n === 0 ? 0xffff : n);
}

export class SlowPath extends Tables {
  readonly c: CompiledScenario;
  readonly W: number;
  readonly quota: number;
  readonly drops: Float64Array;
  readonly natc: Float64Array;
  readonly dropBase: number;
  readonly natcBase: number;
  readonly pv = new PacketView();
  // current packet
  now = 0;
  buf: Uint8Array = new Uint8Array(0);
  fo = 0;
  /** True while the frame being walked is an ICMP error the path generated (not the input). */
  gen = false;
  fate = 0;
  reason = 0;
  detail = 0;
  ctRes = 0;
  io: BatchIO | null = null;
  pkt = 0;
  nOut = 0;
  // conntrack outcome at the current NAT instance
  ctCls = 0;
  cLocal = -1;
  cDir = 0;
  pending = false;
  killAfter = false;
  // scratch entry: orig tuple, reply tuple, meta, expiry, created
  eOs = 0; eOd = 0; eOp = 0;
  eRs = 0; eRd = 0; eRp = 0;
  eMeta = 0;
  eExp = 0;
  eCreated = 0;
  /** S_TCP_FLAGS of the pending entry (its first packet's last_index, last_dir = ORIG). */
  eTcpF = 0;
  // get_unique_tuple result
  us = 0; ud = 0; up = 0;
  /** The chosen tuple was checked unused (its reply tuple is free): confirm need not look again. */
  uFree = false;
  /** The port search failed on a candidate owned by another worker (W > 1): confirm clashes. */
  uForeign = false;
  /** The POSTROUTING choice was verified free (the final reply tuple). */
  srcFree = false;
  /** confirm() failed for lack of room (probe bound / region), not a clash. */
  confirmFull = false;
  // composed-path tracking
  trkOk = false;
  trkNat = 0;
  trkArrivals = 0;
  trkTtl = 0;
  trkEip = 0;
  trkLocal = -1;
  trkKind = 0;
  trkIngress = 0;

  constructor(shared: CoreShared, w: number) {
    super(shared, w);
    this.c = shared.compiled;
    this.W = shared.workers;
    this.quota = shared.quota[w];
    this.drops = this.v.drops;
    this.natc = this.v.natc;
    this.dropBase = w * REASON_COUNT;
    this.natcBase = w * Math.max(1, this.c.counterCount) * 2;
  }

  // ---- results ---------------------------------------------------------------------------------

  private drop(reason: number): void {
    if (this.gen) return;
    this.fate = FATE_DROPPED;
    this.reason = reason;
  }

  private emit(egress: number): void {
    const io = this.io!;
    const s = this.pkt * 2 + this.nOut;
    io.outOff[s] = this.fo;
    io.outLen[s] = this.pv.totalLen;
    io.outEgress[s] = egress;
    this.nOut++;
    if (!this.gen) {
      this.fate = FATE_DELIVERED;
      this.reason = REASON_NONE;
      this.trkEgress = egress;
    }
  }
  trkEgress = 0;
  /** A flow-table miss of the fast path for this packet (key), valid until the first table change. */
  missValid = false;
  missSlot = 0;
  missProto = 0;
  missA = 0;
  missB = 0;
  missPorts = 0;

  /** The whole path for input packet i (its fast path declined it). */
  processSlow(io: BatchIO, i: number, now: number): void {
    this.io = io;
    this.pkt = i;
    this.now = now;
    this.nOut = 0;
    this.gen = false;
    this.fate = FATE_DROPPED;
    this.reason = REASON_NONE;
    this.detail = 0;
    this.ctRes = CT_NONE;
    this.trkOk = true;
    this.trkNat = 0;
    this.trkArrivals = 0;
    this.trkTtl = 0;
    this.trkEip = 0;
    this.trkLocal = -1;
    this.trkEgress = 0;
    const ingress = io.ingress[i];
    this.trkIngress = ingress;
    const inb = io.inArena;
    const off = io.inOff[i];
    const len = io.inLen[i];
    const ob = io.outArena;
    const oo = off;
    this.copyIn(inb, off, ob, oo, len);
    this.buf = ob;
    this.fo = oo;
    const pv = this.pv;
    const st = parseIpv4(ob, oo, len, pv);
    if (isIpLevelMalformation(st)) {
      this.reason = DROP_MALFORMED;
      this.detail = st;
    } else if (st !== PARSE_OK && pv.ihl === 0) {
      this.reason = DROP_MALFORMED;
      this.detail = st;
    } else {
      this.walk(ingress === 0 ? -1 : ingress - 1, ingress === 0);
    }
    if (this.fate === FATE_DROPPED) this.drops[this.dropBase + this.reason]++;
    else if (this.trkOk && this.trkNat === 1 && this.trkLocal >= 0 && this.nOut === 1) this.recordPath();
    io.fate[i] = this.fate;
    io.reason[i] = this.reason;
    io.detail[i] = this.detail;
    io.ct[i] = this.ctRes;
    io.outFirst[i] = i * 2;
    io.outCount[i] = this.nOut;
  }

  /** Copies len bytes (slow path: 8 bytes at a time through Float64-free integer reads). */
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

  private recordPath(): void {
    const ing = this.trkIngress;
    const eg = this.trkEgress;
    if (ing > PATH_MAX_POINT || eg > PATH_MAX_POINT || this.trkTtl > PATH_MAX_TTL || this.trkEip > PATH_MAX_EIP) return;
    const local = this.trkLocal;
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    if ((meta & M_LIVE) === 0) return;
    const p = (ing << PATH_IN_SHIFT) | (eg << PATH_OUT_SHIFT) | (this.trkTtl << PATH_TTL_SHIFT) | (this.trkEip << PATH_EIP_SHIFT);
    if (this.trkKind === KIND_ORIG) {
      ses[o + S_PATH] = ((ses[o + S_PATH] & 0xffff0000) | p) >>> 0;
      this.touchMeta(o, (meta | M_PATH_O) >>> 0);
    } else {
      ses[o + S_PATH] = ((ses[o + S_PATH] & 0xffff) | (p << 16)) >>> 0;
      this.touchMeta(o, (meta | M_PATH_R) >>> 0);
    }
  }

  // ---- the walk ------------------------------------------------------------------------------------

  /**
   * Walks the current frame. `fromInternet`: it enters at the IGW (inbound); else it leaves
   * instance `inst` (step 2). `startAtArrive` is used for generated errors (they start leaving).
   */
  private walk(inst: number, fromInternet: boolean): void {
    const c = this.c;
    const pv = this.pv;
    const b = this.buf;
    let hops = 0;
    let hairpins = 0;
    let arriving = false;
    if (fromInternet) {
      // Step 7: IGW inbound.
      const e = eipIndex(c, pv.dst);
      if (e < 0) return this.drop(DROP_IGW_UNKNOWN_DST);
      const priv = c.instPriv[c.eipInst[e]];
      this.igwRewrite(false, pv.dst, priv);
      inst = c.eipInst[e];
      arriving = true;
    }
    for (;;) {
      if (!arriving) {
        // Step 2: ENI egress source/dest check of `inst`.
        if (c.instSdc[inst] && pv.src !== c.instPriv[inst]) return this.drop(DROP_SRC_DST_CHECK_SRC);
        // Step 3: VPC router.
        const r = routeLookup(c, c.instRt[inst], pv.dst);
        if (r < 0) return this.drop(DROP_NO_ROUTE);
        const kind = c.rtKind[r];
        if (kind === RT_BLACKHOLE) return this.drop(DROP_BLACKHOLE);
        if (kind === RT_IGW) {
          // Step 4: IGW outbound.
          const e = eipOfPrivate(c, pv.src);
          if (e < 0) return this.drop(DROP_IGW_NO_PUBLIC_IP);
          this.igwRewrite(true, pv.src, c.eipAddr[e]);
          if (this.trkNat >= 1) this.trkEip = e + 1;
          const h = eipIndex(c, pv.dst);
          if (h >= 0 && hairpins < IGW_MAX_HAIRPIN) {
            // Hairpin: the IGW sends a packet for one of the VPC's own EIPs straight back in.
            hairpins++;
            this.trkOk = false;
            this.igwRewrite(false, pv.dst, c.instPriv[c.eipInst[h]]);
            inst = c.eipInst[h];
            arriving = true;
            continue;
          }
          this.emit(0);
          return;
        }
        if (kind === RT_LOCAL) {
          const t = instanceByPrivate(c, pv.dst);
          if (t < 0) return this.drop(DROP_NO_HOST);
          inst = t;
        } else if (kind === RT_ENI) {
          inst = c.rtInst[r];
        }
        arriving = true;
        continue;
      }
      // Arrival at instance `inst`.
      if (++hops > MAX_HOPS) return this.drop(DROP_ROUTING_LOOP);
      this.trkArrivals++;
      // Step 5: ENI ingress check.
      if (c.instSdc[inst] && pv.dst !== c.instPriv[inst]) return this.drop(DROP_SRC_DST_CHECK_DST);
      const slot = c.instNat[inst];
      if (slot < 0) {
        // A plain host.
        if (this.trkNat === 0) this.trkOk = false;
        if (pv.dst === c.instPriv[inst]) {
          this.emit(inst + 1);
          return;
        }
        if (!c.instFwd[inst]) return this.drop(DROP_IP_FORWARD_OFF);
        if (pv.ttl <= 1) {
          this.drop(DROP_TTL_EXCEEDED);
          this.genTimeExceeded(inst, -1);
          return;
        }
        this.decTtl();
        arriving = false;
        continue;
      }
      if (!this.natHostSlow(inst, slot)) return;
      arriving = false;
    }
    void b;
  }

  /** Step 6 at NAT instance `inst`. True: the packet leaves the instance (continue the walk). */
  private natHostSlow(inst: number, slot: number): boolean {
    const c = this.c;
    const pv = this.pv;
    this.trkNat++;
    if (this.trkArrivals !== 1) this.trkOk = false;
    // a. PREROUTING: nf_defrag_ipv4 holds fragments (natlab does not reassemble): no conntrack.
    if (pv.status === PARSE_FRAGMENT || pv.mf !== 0) {
      this.drop(DROP_FRAGMENT);
      return false;
    }
    // Conntrack, then DNAT.
    if (!this.conntrackIn(slot, true)) {
      // Table full: no conntrack is attached to the dropped packet (ct INVALID, as the model).
      if (!this.gen) this.ctRes = CT_INVALID;
      this.drop(DROP_CT_TABLE_FULL);
      return false;
    }
    if (!this.gen) this.ctRes = this.ctCls;
    if (!this.pending && this.cLocal >= 0 && this.trkNat === 1) {
      this.trkLocal = this.cLocal;
      this.trkKind = this.cDir;
    }
    if (this.ctCls === CT_INVALID || this.ctCls === CT_RELATED || this.killAfter) this.trkOk = false;
    if (this.ctCls === CT_RELATED) {
      const r = this.icmpTranslate(MANIP_DST);
      if (r !== REASON_NONE) {
        this.drop(r);
        return false;
      }
    } else if (this.ctCls !== CT_INVALID) {
      if (this.pending) this.natNewSlow(slot, inst, MANIP_DST);
      else this.applyStored(MANIP_DST);
    }
    // b. Routing: local delivery.
    if (pv.dst === c.instPriv[inst]) {
      if (this.pending) this.countInputSlow(slot);
      if (this.pending && !this.confirm(slot, false)) {
        this.drop(this.confirmFull ? DROP_CT_TABLE_FULL : DROP_NAT_CLASH);
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
    if (pv.ttl <= 1) {
      this.drop(DROP_TTL_EXCEEDED);
      this.finishEntry();
      this.genTimeExceeded(inst, slot);
      return false;
    }
    this.decTtl();
    // d. POSTROUTING.
    if (this.ctCls === CT_RELATED) {
      const r = this.icmpTranslate(MANIP_SRC);
      if (r !== REASON_NONE) {
        this.drop(r);
        return false;
      }
    } else if (this.ctCls !== CT_INVALID) {
      if (this.pending) this.natNewSlow(slot, inst, MANIP_SRC);
      else this.applyStored(MANIP_SRC);
    }
    // e. Confirm.
    if (this.pending && !this.confirm(slot, true)) {
      this.drop(this.confirmFull ? DROP_CT_TABLE_FULL : DROP_NAT_CLASH);
      return false;
    }
    this.finishEntry();
    return true;
  }

  /** After NAT: an entry marked for deletion (RST before any reply) goes now. */
  private finishEntry(): void {
    if (this.killAfter && this.cLocal >= 0) {
      const o = this.rec(this.cLocal);
      if (this.ses[o + S_META] & M_LIVE) this.release(this.cLocal);
    }
    this.killAfter = false;
    this.pending = false;
  }

  private decTtl(): void {
    const b = this.buf;
    const o = this.fo;
    const ttl = b[o + 8];
    b[o + 8] = ttl - 1;
    applyCsum(b, o + 10, 0xffff - 0x100);
    this.pv.ttl = ttl - 1;
    this.trkTtl++;
  }

  // ---- packet rewriting ----------------------------------------------------------------------------

  /** Sets the outer source (which=0) or destination (1) address; IP and TCP/UDP pseudo-header checksums. */
  private setAddr(which: number, addr: number): void {
    const b = this.buf;
    const pv = this.pv;
    const o = this.fo + (which === 0 ? 12 : 16);
    const old = rd32(b, o);
    if (old === addr) return;
    const d = d32(old, addr);
    wr32(b, o, addr);
    applyCsum(b, this.fo + 10, d);
    this.l4PseudoFix(d);
    if (which === 0) pv.src = addr;
    else pv.dst = addr;
  }

  private l4PseudoFix(d: number): void {
    const pv = this.pv;
    const b = this.buf;
    if (pv.fragOff !== 0) return;
    if (pv.proto === 6 && pv.l4Len >= 18) applyCsum(b, pv.l4Off + 16, d);
    else if (pv.proto === 17 && pv.l4Len >= 8) applyUdpCsum(b, pv.l4Off + 6, d);
  }

  /** Sets the TCP/UDP source (which=0) or destination (1) port, or the ICMP query id. */
  private setPort(which: number, port: number): void {
    const pv = this.pv;
    const b = this.buf;
    if (pv.proto === 6 || pv.proto === 17) {
      const o = pv.l4Off + which * 2;
      const old = rd16(b, o);
      if (old === port) return;
      wr16(b, o, port);
      const d = d16(old, port);
      if (pv.proto === 6) { if (pv.l4Len >= 18) applyCsum(b, pv.l4Off + 16, d); }
      else applyUdpCsum(b, pv.l4Off + 6, d);
      if (which === 0) pv.sport = port;
      else pv.dport = port;
    } else if (pv.proto === 1 && pv.isIcmpError === 0 && pv.l4Len >= 8) {
      const old = rd16(b, pv.l4Off + 4);
      if (old === port) return;
      wr16(b, pv.l4Off + 4, port);
      applyCsum(b, pv.l4Off + 2, d16(old, port));
      pv.icmpId = port;
      pv.sport = port;
    }
  }

  /** Recomputes the ICMP checksum over the whole message. */
  private icmpRecompute(): void {
    const pv = this.pv;
    const b = this.buf;
    wr16(b, pv.l4Off + 2, 0);
    wr16(b, pv.l4Off + 2, ~fold16(sum16(b, pv.l4Off, pv.l4Len)) & 0xffff);
  }

  /** Inner (quoted) packet: set src (which=0) or dst (1) address, with inner IP / UDP checksums. */
  private setInnerAddr(which: number, addr: number, tcpFull: boolean): void {
    const pv = this.pv;
    const b = this.buf;
    const o = pv.innerOff + (which === 0 ? 12 : 16);
    const old = rd32(b, o);
    if (old === addr) return;
    const d = d32(old, addr);
    wr32(b, o, addr);
    applyCsum(b, pv.innerOff + 10, d);
    if (pv.innerProto === 17) applyUdpCsum(b, pv.innerL4Off + 6, d);
    else if (pv.innerProto === 6 && tcpFull && pv.innerL4Len >= 20) applyCsum(b, pv.innerL4Off + 16, d);
    if (which === 0) pv.innerSrc = addr;
    else pv.innerDst = addr;
  }

  private setInnerPort(which: number, port: number): void {
    const pv = this.pv;
    const b = this.buf;
    const ip = pv.innerProto;
    if (ip === 6 || ip === 17) {
      const o = pv.innerL4Off + which * 2;
      const old = rd16(b, o);
      if (old === port) return;
      wr16(b, o, port);
      const d = d16(old, port);
      if (ip === 17) applyUdpCsum(b, pv.innerL4Off + 6, d);
      else if (pv.innerL4Len >= 20) applyCsum(b, pv.innerL4Off + 16, d);
      if (which === 0) pv.innerSport = port;
      else pv.innerDport = port;
    } else if (ip === 1) {
      const t = pv.innerIcmpType;
      if (icmpInv(t) < 0) return;
      const old = rd16(b, pv.innerL4Off + 4);
      if (old === port) return;
      wr16(b, pv.innerL4Off + 4, port);
      applyCsum(b, pv.innerL4Off + 2, d16(old, port));
      pv.innerIcmpId = port;
      pv.innerSport = port;
    }
  }

  /** IGW static NAT: outbound (src old → neu; quoted dst too) or inbound (dst; quoted src too). */
  private igwRewrite(outbound: boolean, old: number, neu: number): void {
    const pv = this.pv;
    this.setAddr(outbound ? 0 : 1, neu);
    if (pv.proto === 1 && pv.isIcmpError && pv.status === PARSE_OK) {
      const which = outbound ? 1 : 0;
      const cur = which === 0 ? pv.innerSrc : pv.innerDst;
      if (cur !== old) return;
      // The quoted address, the inner IP checksum and the inner L4 checksum (UDP always: 8 bytes
      // are quoted; TCP only with its whole 20-byte header) are patched, and the ICMP checksum
      // incrementally for each changed word, so a wrong checksum stays wrong (as the stateless IGW
      // of the kernel oracle, src/oracle/igw.ts).
      const b = this.buf;
      const io = pv.innerOff;
      const co = pv.l4Off + 2;
      let ic = rd16(b, co);
      const ipc0 = rd16(b, io + 10);
      wr32(b, io + (which === 0 ? 12 : 16), neu);
      wr16(b, io + 10, csumReplace32(ipc0, old, neu));
      ic = csumReplace32(ic, old, neu);
      ic = csumReplace16(ic, ipc0, rd16(b, io + 10));
      const ip = pv.innerProto;
      const lo = ip === 6 && pv.innerL4Len >= 20 ? pv.innerL4Off + 16 : ip === 17 ? pv.innerL4Off + 6 : -1;
      if (lo >= 0) {
        const l0 = rd16(b, lo);
        wr16(b, lo, ip === 17 ? udpCsumReplace32(l0, old, neu) : csumReplace32(l0, old, neu));
        ic = csumReplace16(ic, l0, rd16(b, lo));
      }
      wr16(b, co, ic);
      if (which === 0) pv.innerSrc = neu;
      else pv.innerDst = neu;
    }
  }

  // ---- conntrack ---------------------------------------------------------------------------------------

  /**
   * Conntrack at NAT slot `slot` for the current frame. Sets ctCls, cLocal/cDir, pending, the
   * scratch entry. False = table full (drop).
   */
  private conntrackIn(slot: number, received: boolean): boolean {
    const pv = this.pv;
    const c = this.c;
    this.pending = false;
    this.killAfter = false;
    this.srcFree = false;
    this.cLocal = -1;
    this.ctCls = CT_INVALID;
    const proto = pv.proto;
    // A TCP/UDP packet whose header the tracker will refuse (truncated, bad data offset or UDP
    // length) still allocates an entry first if it holds the ports (init_conntrack runs before
    // tcp_error/udp_error): table full / early drop apply, then it is INVALID.
    const l4Bad = pv.status !== PARSE_OK;
    if (l4Bad && !((proto === 6 || proto === 17) && pv.l4Len >= 4)) return true;
    // Kernel order (nf_conntrack_in): ICMP checks come before the lookup; TCP/UDP checksum and TCP
    // flag checks (tcp_error/udp_error) come after the entry lookup/allocation, so an invalid
    // first packet still allocates (early drop, table full) before it is refused.
    let bad = false;
    let ports = 0;
    let tcpCls = C_NONE;
    if (proto === 1) {
      if (received && c.checksum && !this.l4ChecksumOk()) return true;
      const t = pv.icmpType;
      if (t > 18) return true;
      if (pv.isIcmpError) {
        this.ctErrorSlow(slot);
        return true;
      }
      if (icmpInv(t) < 0) return true;
      ports = ((pv.icmpId << 16) | (t << 8) | pv.icmpCode) >>> 0;
    } else if (l4Bad) {
      bad = true;
      ports = rd32(this.buf, pv.l4Off);
    } else if (proto === 6) {
      bad = !TCP_VALID[pv.tcpFlags & 0x37] || (received && c.checksum !== 0 && !this.l4ChecksumOk());
      tcpCls = tcpClass(pv.tcpFlags);
      ports = ((pv.sport << 16) | pv.dport) >>> 0;
    } else if (proto === 17) {
      bad = received && c.checksum !== 0 && !this.l4ChecksumOk();
      ports = ((pv.sport << 16) | pv.dport) >>> 0;
    }
    let local = this.missValid && this.missSlot === slot && this.missProto === proto && this.missA === pv.src &&
      this.missB === pv.dst && this.missPorts === ports ? -1 : this.lookup(slot, proto, pv.src, pv.dst, ports);
    this.missValid = false;
    if (local >= 0 && this.now >= this.ses[this.rec(local) + S_EXPIRY]) {
      this.release(local);
      local = -1;
    }
    if (local >= 0) {
      if (bad) return true;
      const dir = this.hitKind;
      this.loadEntry(local);
      this.cLocal = local;
      this.cDir = dir;
      if (proto === 6) {
        const r = this.tcpExistingSlow(local, dir, tcpCls);
        if (r === 0) return true; // INVALID
        if (r === 2) {
          // Re-open: the old entry dies; a brand-new connection.
          this.release(local);
          this.cLocal = -1;
          local = -1;
        } else {
          return true;
        }
      } else {
        this.otherExistingSlow(local, dir, proto);
        return true;
      }
    }
    // No entry: allocation first (table full: early drop or drop), then the tracker's checks.
    if (!this.ensureCapacity(slot)) return false;
    if (bad) return true;
    let state = 0;
    let flags = 0;
    let tmo = 0;
    if (proto === 6) {
      if (tcpCls === C_SYN) {
        state = TCP_SYN_SENT;
        tmo = c.tmo[TO_SYN_SENT];
      } else if (tcpCls === C_ACK && c.tcpLoose) {
        state = TCP_ESTABLISHED;
        flags = M_LOOSE;
        tmo = Math.min(c.tmo[TO_ESTABLISHED], c.tmo[TO_UNACK]);
      } else {
        return true;
      }
    } else if (proto === 17) {
      tmo = c.tmo[TO_UDP];
    } else if (proto === 1) {
      if (!isIcmpNewType(pv.icmpType)) return true;
      tmo = c.tmo[TO_ICMP];
    } else {
      tmo = c.tmo[TO_GENERIC];
    }
    this.pending = true;
    this.uForeign = false;
    this.ctCls = CT_NEW;
    this.cDir = KIND_ORIG;
    this.eTcpF = proto === 6 ? tcpCls << T_LAST_IDX_SHIFT : 0;
    this.eOs = pv.src;
    this.eOd = pv.dst;
    this.eOp = ports;
    this.eRs = pv.dst;
    this.eRd = pv.src;
    this.eRp = this.invPorts(proto, ports);
    this.eMeta = (proto | (slot << M_SLOT_SHIFT) | (state << M_STATE_SHIFT) | flags | M_LIVE) >>> 0;
    this.eExp = this.now + tmo;
    this.eCreated = this.now;
    return true;
  }

  private invPorts(proto: number, ports: number): number {
    if (proto === 6 || proto === 17) return ((ports << 16) | (ports >>> 16)) >>> 0;
    if (proto === 1) {
      const t = icmpInv((ports >>> 8) & 0xff);
      return ((ports & 0xffff00ff) | ((t < 0 ? 0 : t) << 8)) >>> 0;
    }
    return 0;
  }

  private l4ChecksumOk(): boolean {
    const pv = this.pv;
    const b = this.buf;
    if (pv.proto === 17 && pv.l4Csum === 0) return true;
    let s = sum16(b, pv.l4Off, pv.l4Len);
    if (pv.proto !== 1) s += (pv.src >>> 16) + (pv.src & 0xffff) + (pv.dst >>> 16) + (pv.dst & 0xffff) + pv.proto + pv.l4Len;
    return fold16(s) === 0xffff;
  }

  private loadEntry(local: number): void {
    const o = this.rec(local);
    const s = this.ses;
    this.eOs = s[o]; this.eOd = s[o + 1]; this.eOp = s[o + 2];
    this.eRs = s[o + 3]; this.eRd = s[o + 4]; this.eRp = s[o + 5];
    this.eMeta = s[o + S_META];
    this.eExp = s[o + S_EXPIRY];
    this.eCreated = s[o + S_CREATED];
  }

  /** Sets the entry's expiry (re-filed in the wheel). */
  private setExpiry(local: number, exp: number): void {
    const o = this.rec(local);
    this.ses[o + S_EXPIRY] = exp;
    this.wheelRefile(local, exp);
  }

  private setAssured(local: number): void {
    const o = this.rec(local);
    let meta = this.ses[o + S_META];
    if (meta & M_NALIST) {
      this.naUnlink(local);
      meta = this.ses[o + S_META];
    }
    this.touchMeta(o, (meta | M_ASSURED) >>> 0);
  }

  /**
   * TCP on an existing entry (nf_conntrack_tcp_packet without window tracking). Returns 0
   * INVALID, 1 accepted (incl. ignored), 2 re-open (the caller kills the entry and starts anew).
   */
  private tcpExistingSlow(local: number, dir: number, cls: number): number {
    const c = this.c;
    const o = this.rec(local);
    const ses = this.ses;
    let meta = ses[o + S_META];
    let old = (meta >>> M_STATE_SHIFT) & M_STATE_MASK;
    let nw = TCP_TABLE[(dir * 6 + cls) * 10 + old];
    let tf = ses[o + S_TCP_FLAGS];
    const lastDir = tf & T_LAST_DIR;
    const lastIdx = (tf >>> T_LAST_IDX_SHIFT) & T_LAST_IDX_MASK;
    const seenBefore = (meta & M_SEEN_REPLY) !== 0;
    let ignore = nw === IG;
    if (nw === TCP_SYN_SENT && (old === TCP_TIME_WAIT || old === TCP_CLOSE)) {
      // Re-open a closed/aborted connection if either side sent a FIN, or the last packet in this
      // direction was an RST; otherwise the SYN is ignored.
      if ((tf & T_CLOSE_INIT) !== 0 || (lastDir === dir && lastIdx === C_RST)) return 2;
      ignore = true;
    }
    if (nw === IV) return 0;
    this.ctCls = dir === 1 || seenBefore ? CT_ESTABLISHED : CT_NEW;
    if (ignore) {
      const pv = this.pv;
      if (cls === C_SYNACK && lastIdx === C_SYN && lastDir !== dir && pv.tcpAck === ses[o + S_TCP_END]) {
        // This SYN/ACK answers a SYN we ignored: client and server are in sync, re-sync the
        // entry (processed as SYN_SENT -> SYN_RECV; seen[dir] is reset: no CLOSE_INIT left).
        old = TCP_SYN_SENT;
        nw = TCP_SYN_RECV;
        tf = (tf & ~T_CLOSE_INIT) >>> 0;
      } else {
        let f = (tf & ~(T_LAST_DIR | (T_LAST_IDX_MASK << T_LAST_IDX_SHIFT))) | dir | (cls << T_LAST_IDX_SHIFT);
        if (cls === C_SYN && dir === 0) {
          // last_flags are reset by an ignored ORIG SYN; in LAST_ACK it arms the RFC 5961 guard.
          f &= ~(T_CHALLENGE_ACK | T_SIMULTANEOUS_OPEN);
          if (old === TCP_LAST_ACK) f |= T_CHALLENGE_ACK;
        }
        const fl = pv.tcpFlags;
        ses[o + S_TCP_END] = (pv.tcpSeq + pv.payloadLen + (fl & 2 ? 1 : 0) + (fl & 1 ? 1 : 0)) >>> 0;
        ses[o + S_TCP_FLAGS] = f >>> 0;
        if (dir === 1 && !seenBefore) this.touchMeta(o, (meta | M_SEEN_REPLY) >>> 0);
        this.eMeta = ses[o + S_META];
        return 1;
      }
    } else if (nw === TCP_TIME_WAIT) {
      if (old === TCP_LAST_ACK && cls === C_ACK && lastDir !== dir && lastIdx === C_SYN && (tf & T_CHALLENGE_ACK) !== 0) {
        // An RFC 5961 challenge ACK, not the ACK of the last FIN: accepted, state unchanged.
        ses[o + S_TCP_FLAGS] = (tf & ~T_CHALLENGE_ACK) >>> 0;
        if (dir === 1 && !seenBefore) this.touchMeta(o, (meta | M_SEEN_REPLY) >>> 0);
        this.eMeta = ses[o + S_META];
        return 1;
      }
    } else if (nw === TCP_SYN_SENT2) {
      tf |= T_SIMULTANEOUS_OPEN;
    } else if (nw === TCP_SYN_RECV) {
      if (dir === 1 && cls === C_ACK && (tf & T_SIMULTANEOUS_OPEN) !== 0) nw = TCP_ESTABLISHED;
    }
    // In-window from here on (window tracking is not modelled).
    tf = (tf & ~(T_LAST_DIR | (T_LAST_IDX_MASK << T_LAST_IDX_SHIFT))) | dir | (cls << T_LAST_IDX_SHIFT);
    if (old !== nw && nw === TCP_FIN_WAIT) tf |= T_CLOSE_INIT;
    ses[o + S_TCP_FLAGS] = tf >>> 0;
    const rst = cls === C_RST;
    if (rst && !seenBefore) {
      // RST before any reply: the entry is deleted at once (after this packet is NATed).
      this.killAfter = true;
      return 1;
    }
    if (seenBefore && (meta & M_ASSURED) === 0 && (old === TCP_SYN_RECV || old === TCP_ESTABLISHED) && nw === TCP_ESTABLISHED) {
      this.setAssured(local);
      meta = ses[o + S_META];
    }
    meta = ((meta & ~(M_STATE_MASK << M_STATE_SHIFT)) | (nw << M_STATE_SHIFT)) >>> 0;
    if (dir === 1) meta = (meta | M_SEEN_REPLY) >>> 0;
    this.touchMeta(o, meta);
    // Kernel (nf_conntrack_tcp_packet): without a reply seen, a SYN in SYN_SENT (a retransmit, or
    // the peer's simultaneous-open SYN) does not renew the timer; ESTABLISHED is capped (loose pickup).
    const synInSS = cls === C_SYN && old === TCP_SYN_SENT && !seenBefore;
    if (!synInSS) {
      let t = rst ? c.tmo[TO_CLOSE] : c.tmo[nw];
      if (!seenBefore && nw === TCP_ESTABLISHED && t > c.tmo[TO_UNACK]) t = c.tmo[TO_UNACK];
      this.setExpiry(local, this.now + t);
    }
    this.eMeta = ses[o + S_META];
    return 1;
  }

  /** UDP / ICMP query / generic on an existing entry. */
  private otherExistingSlow(local: number, dir: number, proto: number): void {
    const c = this.c;
    const o = this.rec(local);
    const ses = this.ses;
    const meta = ses[o + S_META];
    const seenBefore = (meta & M_SEEN_REPLY) !== 0;
    this.ctCls = dir === 1 || seenBefore ? CT_ESTABLISHED : CT_NEW;
    let t: number;
    if (proto === 17) {
      t = c.tmo[TO_UDP];
      if (seenBefore && this.now > ses[o + S_CREATED] + UDP_STREAM_AFTER_S * 1000) {
        t = c.tmo[TO_UDP_STREAM];
        if ((meta & M_ASSURED) === 0) this.setAssured(local);
      }
    } else if (proto === 1) {
      t = c.tmo[TO_ICMP];
    } else {
      t = c.tmo[TO_GENERIC];
    }
    if (dir === 1 && !seenBefore) this.touchMeta(o, (ses[o + S_META] | M_SEEN_REPLY) >>> 0);
    this.setExpiry(local, this.now + t);
    this.eMeta = ses[o + S_META];
  }

  /** ICMP error received at NAT slot `slot`: match the quoted packet (RELATED) or INVALID. */
  private ctErrorSlow(slot: number): void {
    const pv = this.pv;
    const ip = pv.innerProto;
    let ports = 0;
    // An inner non-first fragment has no L4 header to build a tuple from: INVALID.
    if ((rd16(this.buf, pv.innerOff + 6) & 0x1fff) !== 0) return;
    if (ip === 6 || ip === 17) {
      ports = ((pv.innerDport << 16) | pv.innerSport) >>> 0;
    } else if (ip === 1) {
      const inv = icmpInv(pv.innerIcmpType);
      if (inv < 0) return;
      ports = ((pv.innerIcmpId << 16) | (inv << 8) | pv.innerIcmpCode) >>> 0;
    }
    let local = this.lookup(slot, ip, pv.innerDst, pv.innerSrc, ports);
    if (local >= 0 && this.now >= this.ses[this.rec(local) + S_EXPIRY]) {
      this.release(local);
      local = -1;
    }
    if (local < 0) return;
    // The outer destination must be the matched tuple's destination (= the quoted source).
    if (pv.dst !== pv.innerSrc) return;
    this.cDir = this.hitKind;
    this.cLocal = local;
    this.loadEntry(local);
    this.ctCls = CT_RELATED;
  }

  /** Table full handling for a new entry of NAT slot `slot`. */
  private ensureCapacity(slot: number): boolean {
    if (this.instCount(slot) < this.quota) return true;
    this.drainExpired(this.now);
    if (this.instCount(slot) < this.quota) return true;
    const v = this.naOldest(slot);
    if (v < 0) return false;
    this.release(v);
    return true;
  }

  // ---- NAT -------------------------------------------------------------------------------------------------

  /** Stored manipulation of an existing entry for hook manip type `manip` (nf_nat_packet). */
  private applyStored(manip: number): void {
    const dir = this.cDir;
    const bit = manip === MANIP_SRC ? (dir === 0 ? M_SRC_NAT : M_DST_NAT) : (dir === 0 ? M_DST_NAT : M_SRC_NAT);
    if ((this.eMeta & bit) === 0) return;
    // target = invert(other direction's tuple)
    let os: number, od: number, op: number;
    if (dir === 0) { os = this.eRs; od = this.eRd; op = this.eRp; } else { os = this.eOs; od = this.eOd; op = this.eOp; }
    const proto = this.pv.proto;
    if (manip === MANIP_SRC) {
      this.setAddr(0, od);
      if (proto === 6 || proto === 17) this.setPort(0, op & 0xffff);
      else if (proto === 1) this.setPort(0, op >>> 16);
    } else {
      this.setAddr(1, os);
      if (proto === 6 || proto === 17) this.setPort(1, op >>> 16);
      else if (proto === 1) this.setPort(0, op >>> 16);
    }
  }

  /**
   * RELATED ICMP error translation at a hook of type `manip` (nf_nat_icmp_reply_translation).
   * Returns REASON_NONE, or the drop reason: a bad ICMP checksum, or a redirect about an entry
   * with any NAT ("Redirects are only translated for entries without NAT").
   */
  private icmpTranslate(manip: number): number {
    const pv = this.pv;
    const b = this.buf;
    if (fold16(sum16(b, pv.l4Off, pv.l4Len)) !== 0xffff) return DROP_ICMP_BAD_CHECKSUM;
    if (pv.icmpType === 5 && (this.eMeta & (M_SRC_NAT | M_DST_NAT)) !== 0) return DROP_ICMP_REDIRECT_NAT;
    const dir = this.cDir;
    let bit = manip === MANIP_SRC ? M_SRC_NAT : M_DST_NAT;
    if (dir === 1) bit = bit === M_SRC_NAT ? M_DST_NAT : M_SRC_NAT;
    if ((this.eMeta & bit) === 0) return REASON_NONE;
    let os: number, od: number, op: number;
    if (dir === 0) { os = this.eRs; od = this.eRd; op = this.eRp; } else { os = this.eOs; od = this.eOd; op = this.eOp; }
    if (manip === MANIP_DST) {
      // inner: SRC manip with the other tuple
      this.setInnerAddr(0, os, true);
      this.setInnerPort(0, op >>> 16);
      this.setAddr(1, os);
    } else {
      this.setInnerAddr(1, od, true);
      if (pv.innerProto === 1) this.setInnerPort(0, op >>> 16);
      else this.setInnerPort(1, op & 0xffff);
      this.setAddr(0, od);
    }
    this.icmpRecompute();
    return REASON_NONE;
  }

  private countRule(counter: number): void {
    const k = this.natcBase + counter * 2;
    this.natc[k]++;
    this.natc[k + 1] += this.pv.totalLen;
  }

  /** A new connection delivered locally traverses the INPUT nat chain (counted; its SNAT is not modelled). */
  private countInputSlow(slot: number): void {
    const c = this.c;
    const pv = this.pv;
    const ported = pv.proto === 6 || pv.proto === 17;
    const k = ruleMatch(c, slot, CH_IN, pv.proto, pv.src, pv.dst, ported ? pv.sport : 0, ported ? pv.dport : 0);
    if (k < 0) this.countRule(c.chainPolicy[slot * CH_COUNT + CH_IN]);
    else {
      this.countRule(c.rCounter[k]);
      if (c.rKind[k] === TK_RETURN) this.countRule(c.chainPolicy[slot * CH_COUNT + CH_IN]);
    }
  }

  /** First packet: run the chain's rules, choose a unique tuple, rewrite the packet and the entry. */
  private natNewSlow(slot: number, inst: number, manip: number): void {
    const c = this.c;
    const pv = this.pv;
    const proto = pv.proto;
    const ch = manip === MANIP_SRC ? CH_POST : CH_PRE;
    const ported = proto === 6 || proto === 17;
    const k = ruleMatch(c, slot, ch, proto, pv.src, pv.dst, ported ? pv.sport : 0, ported ? pv.dport : 0);
    let flags = NF_NAT_RANGE_MAP_IPS;
    let alo: number;
    let ahi: number;
    let plo = 0;
    let phi = 0;
    // current tuple: invert(current reply)
    const cs = this.eRd;
    const cd = this.eRs;
    const cp = this.invPorts(proto, this.eRp);
    alo = manip === MANIP_SRC ? cs : cd;
    ahi = alo;
    if (k < 0) {
      this.countRule(c.chainPolicy[slot * CH_COUNT + ch]);
    } else {
      this.countRule(c.rCounter[k]);
      const kind = c.rKind[k];
      if (kind === TK_RETURN) this.countRule(c.chainPolicy[slot * CH_COUNT + ch]);
      if ((kind === TK_DNAT && manip === MANIP_DST) || ((kind === TK_SNAT || kind === TK_MASQUERADE) && manip === MANIP_SRC)) {
        flags = c.rFlags[k] | NF_NAT_RANGE_MAP_IPS;
        alo = kind === TK_MASQUERADE ? c.instPriv[inst] : c.rAddrLo[k];
        ahi = kind === TK_MASQUERADE ? alo : c.rAddrHi[k];
        if (ahi < alo) ahi = alo;
        plo = c.rPortLo[k];
        phi = c.rPortHi[k];
        if (kind === TK_MASQUERADE && cs === 0) flags = -1; // source 0.0.0.0: untouched
      }
    }
    if (manip === MANIP_SRC) this.eMeta = (this.eMeta | M_BYSRC) >>> 0;
    if (flags === -1) return;
    this.uniqueTuple(slot, manip, proto, cs, cd, cp, flags, alo, ahi, plo, phi);
    if (manip === MANIP_SRC) this.srcFree = this.uFree;
    if (this.us === cs && this.ud === cd && this.up === cp) return;
    this.eMeta = (this.eMeta | (manip === MANIP_SRC ? M_SRC_NAT : M_DST_NAT)) >>> 0;
    this.eRs = this.ud;
    this.eRd = this.us;
    this.eRp = this.invPorts(proto, this.up);
    if (manip === MANIP_SRC) {
      this.setAddr(0, this.us);
      if (proto === 6 || proto === 17) this.setPort(0, this.up >>> 16);
      else if (proto === 1) this.setPort(0, this.up >>> 16);
    } else {
      this.setAddr(1, this.ud);
      if (proto === 6 || proto === 17) this.setPort(1, this.up & 0xffff);
      else if (proto === 1) this.setPort(0, this.up >>> 16);
    }
  }

  /** True if another live entry of `slot` has a tuple equal to invert(candidate). */
  private used(slot: number, proto: number, s: number, d: number, p: number): boolean {
    const l = this.lookup(slot, proto, d, s, this.invPorts(proto, p));
    if (l < 0) return false;
    if (this.now >= this.ses[this.rec(l) + S_EXPIRY]) {
      this.release(l);
      return false;
    }
    return true;
  }

  /** With W > 1 workers: the reply of the candidate must be dispatched to this worker. */
  private ownerOk(slot: number, proto: number, s: number, d: number, p: number): boolean {
    if (this.W === 1) return true;
    const c = this.c;
    const rp = this.invPorts(proto, p);
    // The reply comes from d: from inside the VPC it is dispatched as an outbound packet (e.g. the
    // DNAT target answering a DNAT+SNAT flow), else as an inbound one.
    if (((d & c.vpcMask) >>> 0) === c.vpcAddr) {
      if ((proto !== 6 && proto !== 17) || !isDnatTarget(c, slot, proto, d, rp >>> 16)) return true; // not port-dispatched
      return ownerOutbound(c, this.W, slot, proto, d, s, rp >>> 16, rp & 0xffff) === this.w;
    }
    return ownerInbound(c, this.W, slot, proto, d, s, rp >>> 16, rp & 0xffff) === this.w;
  }

  /** The manipulated port of a ports word: TCP/UDP sport (SRC) or dport (DST); ICMP: the id. */
  private keyOf(proto: number, manip: number, p: number): number {
    if (proto === 1) return p >>> 16;
    if (proto === 6 || proto === 17) return manip === MANIP_SRC ? p >>> 16 : p & 0xffff;
    return 0;
  }

  private withKey(proto: number, manip: number, p: number, key: number): number {
    const ported = proto === 6 || proto === 17;
    if (proto === 1 || (ported && manip === MANIP_SRC)) return ((key << 16) | (p & 0xffff)) >>> 0;
    if (ported) return ((p & 0xffff0000) | key) >>> 0;
    return p;
  }

  /** get_unique_tuple (§8): result in us/ud/up. */
  private uniqueTuple(slot: number, manip: number, proto: number, cs: number, cd: number, cp: number,
    flags: number, alo: number, ahi: number, plo: number, phi: number): void {
    const random = (flags & (NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY)) !== 0;
    const protoSpec = (flags & NF_NAT_RANGE_PROTO_SPECIFIED) !== 0;
    if (plo > phi) { const t = plo; plo = phi; phi = t; }
    const ported = proto === 6 || proto === 17;
    const checkOwner = manip === MANIP_SRC;
    this.uFree = false;
    this.uForeign = false;
    if (manip === MANIP_SRC && !random) {
      // (a) already in range: keep it if unused; otherwise straight to the address choice.
      const keyed = protoSpec && (ported || proto === 1);
      const ck = this.keyOf(proto, manip, cp);
      const inRange = cs >= alo && cs <= ahi && (!keyed || (ck >= plo && ck <= phi));
      if (inRange) {
        if (!this.used(slot, proto, cs, cd, cp) && this.ownerOk(slot, proto, cs, cd, cp)) {
          this.us = cs; this.ud = cd; this.up = cp;
          this.uFree = true;
          return;
        }
      } else {
        // (b) the mapping of the newest live entry with the same (proto, orig src, orig sport)
        // whose mapping is in range (find_appropriate_src walks the bysource chain newest-first).
        const bsKey = ported || proto === 1 ? cp >>> 16 : 0;
        const other = this.findBySource(slot, proto, cs, bsKey, this.now, -1, alo, ahi, keyed ? plo : 0, keyed ? phi : 0xffff);
        if (other >= 0) {
          const o = this.rec(other);
          const ns = this.ses[o + 4];
          const rports = this.ses[o + 5];
          const nkey = proto === 1 ? rports >>> 16 : ported ? rports & 0xffff : 0;
          const np = this.withKey(proto, manip, cp, nkey);
          if (!this.used(slot, proto, ns, cd, np) && this.ownerOk(slot, proto, ns, cd, np)) {
            this.us = ns; this.ud = cd; this.up = np;
            this.uFree = true;
            return;
          }
        }
      }
    }
    // IP choice: a single address (the lowest of a range).
    let ts = cs;
    let td = cd;
    if (flags & NF_NAT_RANGE_MAP_IPS) {
      if (manip === MANIP_SRC) ts = alo;
      else td = alo;
    }
    let tp = cp;
    if (!random) {
      const key = this.keyOf(proto, manip, tp);
      if (protoSpec && (ported || proto === 1)) {
        if (key >= plo && key <= phi && (plo === phi || !this.used(slot, proto, ts, td, tp)) &&
          (!checkOwner || this.ownerOk(slot, proto, ts, td, tp))) {
          this.us = ts; this.ud = td; this.up = tp;
          return;
        }
      } else if (!this.used(slot, proto, ts, td, tp) && (!checkOwner || this.ownerOk(slot, proto, ts, td, tp))) {
        this.us = ts; this.ud = td; this.up = tp;
        this.uFree = true;
        return;
      }
    }
    // Search.
    this.us = ts; this.ud = td; this.up = tp;
    let min: number;
    let size: number;
    if (ported) {
      if (!protoSpec) {
        if (manip === MANIP_DST) return;
        const key = this.keyOf(proto, manip, tp);
        if (key < 1024) {
          if (key < 512) { min = PORT_RANGE_LOW_MIN; size = PORT_RANGE_LOW_MAX - PORT_RANGE_LOW_MIN + 1; }
          else { min = PORT_RANGE_MID_MIN; size = PORT_RANGE_MID_MAX - PORT_RANGE_MID_MIN + 1; }
        } else { min = PORT_RANGE_HIGH_MIN; size = PORT_RANGE_HIGH_MAX - PORT_RANGE_HIGH_MIN + 1; }
      } else { min = plo; size = phi - plo + 1; }
    } else if (proto === 1) {
      if (!protoSpec) { min = 0; size = 65536; } else { min = plo; size = phi - plo + 1; }
    } else {
      return;
    }
    let off = random || manip === MANIP_SRC ? this.rand() & 0xffff : 0;
    let attempts = size < 128 ? size : 128;
    for (;;) {
      for (let i = 0; i < attempts; i++, off++) {
        tp = this.withKey(proto, manip, tp, min + (off % size));
        this.up = tp;
        if ((!checkOwner || this.ownerOk(slot, proto, ts, td, tp)) && !this.used(slot, proto, ts, td, tp)) {
          this.uFree = true;
          return;
        }
      }
      if (attempts >= size || attempts < 16) {
        // Nothing free: the last candidate is installed and clashes at confirm. With W > 1 a
        // candidate owned by another worker may be in use there (its table is not ours to see):
        // count it as the clash the kernel would see, rather than hand out a port whose replies
        // go to another worker.
        if (checkOwner && !this.ownerOk(slot, proto, ts, td, tp)) this.uForeign = true;
        return;
      }
      attempts >>= 1;
      off = this.rand() & 0xffff;
    }
  }

  /** Conntrack confirm of the pending entry: reply-tuple clash → false. */
  private confirm(slot: number, srcManip: boolean): boolean {
    const proto = this.eMeta & 0xff;
    this.confirmFull = false;
    // The reply tuple must be free (the orig tuple is: its lookup missed and nothing was inserted
    // since). A POSTROUTING choice that was just checked unused needs no second lookup.
    if (this.uForeign) return false;
    if (!(srcManip && this.srcFree) && this.used(slot, proto, this.eRd, this.eRs, this.invPorts(proto, this.eRp))) return false;
    // A self-inverse entry (reply tuple == orig tuple, e.g. 10.0.0.10:80 > 10.0.0.10:80) clashes
    // with itself, as in the model (the kernel would drop such a packet earlier, as a martian source).
    if (this.eRs === this.eOs && this.eRd === this.eOd && this.eRp === this.eOp) return false;
    const local = this.alloc();
    if (local < 0) {
      this.confirmFull = true;
      return false;
    }
    const o = this.rec(local);
    const ses = this.ses;
    ses[o] = this.eOs; ses[o + 1] = this.eOd; ses[o + 2] = this.eOp;
    ses[o + 3] = this.eRs; ses[o + 4] = this.eRd; ses[o + 5] = this.eRp;
    ses[o + S_PATH] = 0;
    ses[o + S_EXPIRY] = this.eExp;
    ses[o + S_CREATED] = this.eCreated;
    ses[o + S_WPREV] = 0; ses[o + S_WNEXT] = 0; ses[o + S_NPREV] = 0; ses[o + S_NNEXT] = 0;
    ses[o + S_TCP_END] = 0; ses[o + S_TCP_FLAGS] = this.eTcpF;
    let meta = this.eMeta;
    if (!srcManip) meta = (meta & ~M_BYSRC) >>> 0;
    meta = (meta | M_NALIST | M_LIVE) >>> 0;
    ses[o + S_META] = (meta & ~M_LIVE) >>> 0; // not visible to readers until keys are in
    const sh = hashTuple(slot, proto, this.eOs, this.eOd, this.eOp);
    const rh = hashTuple(slot, proto, this.eRs, this.eRd, this.eRp);
    let ok = this.insertRef(sh, local, KIND_ORIG);
    if (ok && !this.insertRef(rh, local, KIND_REPLY)) { this.removeRef(local, KIND_ORIG); ok = false; }
    if (ok && (meta & M_BYSRC) && !this.insertRef(hashBysrc(slot, proto, this.eOs, this.eOp >>> 16), local, KIND_BYSRC)) {
      this.removeRef(local, KIND_ORIG);
      this.removeRef(local, KIND_REPLY);
      ok = false;
    }
    if (!ok) {
      // Probe bound exceeded (the table is too full around this key): counted as table full.
      this.ctl[this.cBase + 5]--;
      ses[o + S_WNEXT] = this.ctl[this.cBase];
      this.ctl[this.cBase] = local + 1;
      this.confirmFull = true;
      return false;
    }
    this.touchMeta(o, meta);
    this.ctl[this.cBase + 8 + slot * 3]++;
    this.naAppend(local, slot);
    this.wheelLink(local, this.eExp);
    this.cLocal = local;
    this.pending = false;
    if (this.trkNat === 1) {
      this.trkLocal = local;
      this.trkKind = KIND_ORIG;
    }
    return true;
  }

  // ---- generated ICMP time exceeded ---------------------------------------------------------------------

  /**
   * Builds an ICMP time exceeded from instance `inst` back to the current packet's source, quoting
   * it as received (post-DNAT, pre-decrement), runs it through the instance's OUTPUT conntrack/NAT
   * (NAT slot `slot`, or -1 for a plain host) and walks it out of the instance.
   */
  private genTimeExceeded(inst: number, slot: number): void {
    const pv = this.pv;
    const b = this.buf;
    if (pv.fragOff !== 0) return; // "only reply to fragment 0"
    if (pv.proto === 1 && (pv.l4Len < 8 || pv.icmpType > 18 || pv.isIcmpError)) return;
    const c = this.c;
    const q = Math.min(pv.totalLen, ICMP_ERROR_MAX_LEN - 28);
    const eo = this.io!.inArena.length + ICMP_ERROR_MAX_LEN * this.pkt;
    const tot = 28 + q;
    for (let k = 0; k < q; k++) b[eo + 28 + k] = b[this.fo + k];
    const src = pv.src;
    b[eo] = 0x45;
    b[eo + 1] = (pv.tos & 0x1e) | 0xc0;
    wr16(b, eo + 2, tot);
    wr16(b, eo + 4, 0);
    wr16(b, eo + 6, 0);
    b[eo + 8] = DEFAULT_IP_TTL;
    b[eo + 9] = 1;
    wr16(b, eo + 10, 0);
    wr32(b, eo + 12, c.instPriv[inst]);
    wr32(b, eo + 16, src);
    wr16(b, eo + 10, ~fold16(sum16(b, eo, 20)) & 0xffff);
    b[eo + 20] = 11;
    b[eo + 21] = 0;
    wr16(b, eo + 22, 0);
    wr32(b, eo + 24, 0);
    wr16(b, eo + 22, ~fold16(sum16(b, eo + 20, 8 + q)) & 0xffff);
    // Walk it as a generated frame.
    this.gen = true;
    this.fo = eo;
    parseIpv4(b, eo, tot, pv);
    if (slot >= 0) {
      this.conntrackIn(slot, false);
      if (this.ctCls === CT_RELATED) {
        this.icmpTranslate(MANIP_DST);
        this.icmpTranslate(MANIP_SRC);
      }
      this.pending = false;
      this.killAfter = false;
    }
    this.walk(inst, false);
    this.gen = false;
  }
}

export { MANIP_SRC, MANIP_DST, C_SYNACK, C_FIN, sES, sSR };
