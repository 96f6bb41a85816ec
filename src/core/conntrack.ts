// Conntrack at one NAT instance for the frame being walked: nf_conntrack_in (ICMP checks before
// the lookup, TCP/UDP validity after the lookup/allocation, in kernel order), the per-protocol
// handlers of an existing entry (the TCP tracker in tcp-tracker.ts; UDP stream/ASSURED, ICMP and
// generic timeouts here), ICMP errors matched to their entry (icmp_error_message: RELATED), the
// table-full path (early_drop of the oldest non-ASSURED entry) and __nf_conntrack_confirm of a
// new entry (reply-tuple clash → drop). Twin of src/model/conntrack.ts (docs/semantics.md §3–§5).

import {
  KIND_ORIG,
  KIND_REPLY,
  M_ASSURED,
  M_BYSRC,
  M_LIVE,
  M_LOOSE,
  M_NALIST,
  M_SEEN_REPLY,
  M_SLOT_SHIFT,
  M_STATE_SHIFT,
  S_CREATED,
  S_EXPIRY,
  S_META,
  S_NNEXT,
  S_NPREV,
  S_PATH,
  S_TCP_END,
  S_TCP_FLAGS,
  S_WNEXT,
  S_WPREV,
  T_LAST_IDX_SHIFT,
  TCP_ESTABLISHED,
  TCP_NONE,
  TCP_SYN_SENT,
  TCPW_WORDS,
  W_END,
  W_FLAGS,
  W_MAXEND,
  W_MAXWIN,
  WF_BE_LIBERAL,
  WF_SACK_PERM,
  C_INST,
  C_INST_WORDS,
  CI_COUNT,
} from './layout.ts';
import { type CompiledScenario, TO_GENERIC, TO_ICMP, TO_UDP, TO_UDP_STREAM, TO_UNACK } from './compile.ts';
import type { Tables } from './tables.ts';
import type { SlowState } from './slow-state.ts';
import { ctLoad, ctRefresh, ctSetAssured, icmpInvert, invertPorts, isIcmpNewType } from './ct-entry.ts';
import { C_ACK, C_NONE, C_SYN, TCP_REOPEN, TCP_INVALID, TCP_VALID, TcpTracker, tcpClass } from './tcp-tracker.ts';
import { PARSE_OK } from '../packet/parse.ts';
import { rd16, rd32 } from '../packet/bytes.ts';
import { fold16, sum16 } from '../packet/checksum.ts';
import { F_FIN, F_SYN, ICMP_ADDRESSREPLY, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { WIN_ACCEPT, optionsWord, tcpInWindow, tcpTimeout } from './tcp-window.ts';
import { CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED } from '../spec/reasons.ts';
import { UDP_STREAM_AFTER_S } from '../spec/timeouts.ts';

export class Conntrack {
  private readonly tcp: TcpTracker;

  constructor(
    private readonly c: CompiledScenario,
    private readonly t: Tables,
    private readonly st: SlowState,
    /** This worker's share of every NAT instance's nf_conntrack_max. */
    private readonly quota: number,
  ) {
    this.tcp = new TcpTracker(c, t, st);
  }

  /**
   * nf_conntrack_in at NAT slot `slot` for the current frame. Sets ctCls, cLocal/cDir, pending and
   * the scratch entry. False = table full (drop).
   */
  in(slot: number, received: boolean): boolean {
    const st = this.st;
    const t = this.t;
    const pv = st.pv;
    const c = this.c;
    st.pending = false;
    st.killAfter = false;
    st.srcFree = false;
    st.cLocal = -1;
    st.ctCls = CT_INVALID;
    const proto = pv.proto;
    // A TCP/UDP packet whose header the tracker will refuse (truncated, bad data offset or UDP
    // length) still allocates an entry first if it holds the ports (init_conntrack runs before
    // tcp_error/udp_error): table full / early drop apply, then it is INVALID.
    const l4Bad = pv.status !== PARSE_OK;
    if (l4Bad && !((proto === PROTO_TCP || proto === PROTO_UDP) && pv.l4Len >= 4)) return true;
    // Kernel order (nf_conntrack_in): ICMP checks come before the lookup; TCP/UDP checksum and TCP
    // flag checks (tcp_error/udp_error) come after the entry lookup/allocation, so an invalid
    // first packet still allocates (early drop, table full) before it is refused.
    let bad = false;
    let ports = 0;
    let tcpCls = C_NONE;
    if (proto === PROTO_ICMP) {
      if (received && c.checksum && !this.l4ChecksumOk()) return true;
      const ty = pv.icmpType;
      if (ty > ICMP_ADDRESSREPLY) return true;
      if (pv.isIcmpError) {
        this.icmpErrorMessage(slot);
        return true;
      }
      if (icmpInvert(ty) < 0) return true;
      ports = ((pv.icmpId << 16) | (ty << 8) | pv.icmpCode) >>> 0;
    } else if (l4Bad) {
      bad = true;
      ports = rd32(st.buf, pv.l4Off);
    } else if (proto === PROTO_TCP) {
      bad = !TCP_VALID[pv.tcpFlags & 0x37] || (received && c.checksum !== 0 && !this.l4ChecksumOk());
      tcpCls = tcpClass(pv.tcpFlags);
      ports = ((pv.sport << 16) | pv.dport) >>> 0;
    } else if (proto === PROTO_UDP) {
      bad = received && c.checksum !== 0 && !this.l4ChecksumOk();
      ports = ((pv.sport << 16) | pv.dport) >>> 0;
    }
    let local =
      st.missValid &&
      st.missSlot === slot &&
      st.missProto === proto &&
      st.missA === pv.src &&
      st.missB === pv.dst &&
      st.missPorts === ports
        ? -1
        : t.lookup(slot, proto, pv.src, pv.dst, ports);
    st.missValid = false;
    if (local >= 0 && st.now >= t.ses[t.rec(local) + S_EXPIRY]) {
      t.release(local);
      local = -1;
    }
    if (local >= 0) {
      if (bad) return true;
      const dir = t.hitKind;
      ctLoad(t, st, local);
      st.cLocal = local;
      st.cDir = dir;
      if (proto === PROTO_TCP) {
        const r = this.tcp.packet(local, dir, tcpCls);
        if (r === TCP_INVALID) return true;
        if (r === TCP_REOPEN) {
          // Re-open: the old entry dies; a brand-new connection.
          t.release(local);
          st.cLocal = -1;
          local = -1;
        } else {
          return true;
        }
      } else {
        this.otherPacket(local, dir, proto);
        return true;
      }
    }
    // No entry: allocation first (table full: early drop or drop), then the tracker's checks.
    if (!this.earlyDrop(slot)) return false;
    if (bad) return true;
    let state = 0;
    let flags = 0;
    let tmo = 0;
    if (proto === PROTO_TCP) {
      if (tcpCls === C_SYN) {
        state = TCP_SYN_SENT;
      } else if (tcpCls === C_ACK && c.tcpLoose) {
        state = TCP_ESTABLISHED;
        flags = M_LOOSE;
      } else {
        return true;
      }
      tmo = this.tcpNewWindow(tcpCls);
    } else if (proto === PROTO_UDP) {
      tmo = c.tmo[TO_UDP];
    } else if (proto === PROTO_ICMP) {
      if (!isIcmpNewType(pv.icmpType)) return true;
      tmo = c.tmo[TO_ICMP];
    } else {
      tmo = c.tmo[TO_GENERIC];
    }
    st.pending = true;
    st.uForeign = false;
    st.ctCls = CT_NEW;
    st.cDir = KIND_ORIG;
    st.eTcpF = proto === PROTO_TCP ? tcpCls << T_LAST_IDX_SHIFT : 0;
    if (proto !== PROTO_TCP) st.eTcpEnd = 0;
    st.eOs = pv.src;
    st.eOd = pv.dst;
    st.eOp = ports;
    st.eRs = pv.dst;
    st.eRd = pv.src;
    st.eRp = invertPorts(proto, ports);
    st.eMeta = (proto | (slot << M_SLOT_SHIFT) | (state << M_STATE_SHIFT) | flags | M_LIVE) >>> 0;
    st.eExp = st.now + tmo;
    st.eCreated = st.now;
    return true;
  }

  /**
   * tcp_new and the first tcp_in_window of a new entry's first segment (a SYN, or a picked-up
   * ACK) on the scratch window words st.eTcpw; sets st.eTcpEnd (last_end) and returns the timeout (ms).
   */
  private tcpNewWindow(cls: number): number {
    const c = this.c;
    const st = this.st;
    const pv = st.pv;
    const ew = st.eTcpw;
    ew.fill(0);
    const fl = pv.tcpFlags;
    const doff = pv.tcpDataOff;
    const end = (pv.tcpSeq + pv.payloadLen + (fl & F_SYN ? 1 : 0) + (fl & F_FIN ? 1 : 0)) >>> 0;
    const maxwin = pv.tcpWindow === 0 ? 1 : pv.tcpWindow;
    ew[W_END] = end;
    ew[W_MAXWIN] = maxwin;
    if (cls === C_SYN) {
      ew[W_MAXEND] = end;
      ew[W_FLAGS] = optionsWord(0, st.buf, pv.l4Off, doff);
    } else {
      // Picked up mid-stream: SACK and liberal window checking assumed (the window scale is unknown).
      ew[W_MAXEND] = (end + maxwin) >>> 0;
      ew[W_FLAGS] = WF_SACK_PERM | WF_BE_LIBERAL;
      ew[W_FLAGS + 1] = WF_SACK_PERM | WF_BE_LIBERAL;
    }
    const r = tcpInWindow(
      ew,
      0,
      0,
      cls,
      TCP_NONE,
      st.buf,
      pv.l4Off,
      doff,
      pv.payloadLen,
      fl,
      pv.tcpSeq,
      pv.tcpAck,
      pv.tcpWindow,
      0,
      0,
      c.tcpBeLiberal,
    );
    st.eTcpEnd = r === WIN_ACCEPT && cls === C_ACK ? end : 0;
    const state = cls === C_SYN ? TCP_SYN_SENT : TCP_ESTABLISHED;
    let to = tcpTimeout(ew, 0, cls, c.tmo[state], c);
    // No reply seen: a picked-up ESTABLISHED entry is capped at the unacknowledged timeout.
    if (state === TCP_ESTABLISHED && to > c.tmo[TO_UNACK]) to = c.tmo[TO_UNACK];
    return to;
  }

  /** nf_ip_checksum of the frame's L4 part (ICMP: no pseudo-header; UDP checksum 0: none). */
  private l4ChecksumOk(): boolean {
    const pv = this.st.pv;
    const b = this.st.buf;
    if (pv.proto === PROTO_UDP && pv.l4Csum === 0) return true;
    // A new flow's packet the fast path has verified already (HopWalk.run), unchanged since.
    if (pv.proto !== PROTO_ICMP && this.st.l4StillVerified()) return true;
    let s = sum16(b, pv.l4Off, pv.l4Len);
    if (pv.proto !== PROTO_ICMP)
      s += (pv.src >>> 16) + (pv.src & 0xffff) + (pv.dst >>> 16) + (pv.dst & 0xffff) + pv.proto + pv.l4Len;
    return fold16(s) === 0xffff;
  }

  /** UDP (udp_packet: stream after a reply and 2 s → ASSURED) / ICMP query / generic on an existing entry. */
  private otherPacket(local: number, dir: number, proto: number): void {
    const c = this.c;
    const t = this.t;
    const st = this.st;
    const o = t.rec(local);
    const ses = t.ses;
    const meta = ses[o + S_META];
    const seenBefore = (meta & M_SEEN_REPLY) !== 0;
    st.ctCls = dir === 1 || seenBefore ? CT_ESTABLISHED : CT_NEW;
    let to: number;
    if (proto === PROTO_UDP) {
      to = c.tmo[TO_UDP];
      if (seenBefore && st.now > ses[o + S_CREATED] + UDP_STREAM_AFTER_S * 1000) {
        to = c.tmo[TO_UDP_STREAM];
        if ((meta & M_ASSURED) === 0) ctSetAssured(t, local);
      }
    } else if (proto === PROTO_ICMP) {
      to = c.tmo[TO_ICMP];
    } else {
      to = c.tmo[TO_GENERIC];
    }
    if (dir === 1 && !seenBefore) t.touchMeta(o, (ses[o + S_META] | M_SEEN_REPLY) >>> 0);
    ctRefresh(t, local, st.now + to);
    st.eMeta = ses[o + S_META];
  }

  /** icmp_error_message: an ICMP error received at NAT slot `slot` matches the quoted packet (RELATED) or is INVALID. */
  private icmpErrorMessage(slot: number): void {
    const t = this.t;
    const st = this.st;
    const pv = st.pv;
    const ip = pv.innerProto;
    let ports = 0;
    // An inner non-first fragment has no L4 header to build a tuple from: INVALID.
    if ((rd16(st.buf, pv.innerOff + 6) & 0x1fff) !== 0) return;
    if (ip === PROTO_TCP || ip === PROTO_UDP) {
      ports = ((pv.innerDport << 16) | pv.innerSport) >>> 0;
    } else if (ip === PROTO_ICMP) {
      const inv = icmpInvert(pv.innerIcmpType);
      if (inv < 0) return;
      ports = ((pv.innerIcmpId << 16) | (inv << 8) | pv.innerIcmpCode) >>> 0;
    }
    let local = t.lookup(slot, ip, pv.innerDst, pv.innerSrc, ports);
    if (local >= 0 && st.now >= t.ses[t.rec(local) + S_EXPIRY]) {
      t.release(local);
      local = -1;
    }
    if (local < 0) return;
    // The outer destination must be the matched tuple's destination (= the quoted source).
    if (pv.dst !== pv.innerSrc) return;
    st.cDir = t.hitKind;
    st.cLocal = local;
    ctLoad(t, st, local);
    st.ctCls = CT_RELATED;
  }

  /** Room for a new entry of NAT slot `slot` (table full: drain the expired, then early_drop). */
  private earlyDrop(slot: number): boolean {
    const t = this.t;
    if (t.instCount(slot) < this.quota) return true;
    t.drainExpired(this.st.now);
    if (t.instCount(slot) < this.quota) return true;
    // At the quota: with W > 1 (quota below the max) the model's one table may decide otherwise.
    if (this.quota < this.c.ctMax) t.noteQuotaDecision(slot, this.st.batchNo, this.st.pkt);
    const v = t.naOldest(slot);
    if (v < 0) return false;
    t.release(v);
    return true;
  }

  /**
   * True if another live entry of `slot` has a tuple equal to invert(candidate)
   * (nf_nat_used_tuple / nf_conntrack_tuple_taken); an expired one found is released.
   */
  used(slot: number, proto: number, s: number, d: number, p: number): boolean {
    const t = this.t;
    const l = t.lookup(slot, proto, d, s, invertPorts(proto, p));
    if (l < 0) return false;
    if (this.st.now >= t.ses[t.rec(l) + S_EXPIRY]) {
      t.release(l);
      return false;
    }
    return true;
  }

  /** __nf_conntrack_confirm of the pending entry: a reply-tuple clash (or no room) → false. */
  confirm(slot: number, srcManip: boolean): boolean {
    const t = this.t;
    const st = this.st;
    const proto = st.eMeta & 0xff;
    st.confirmFull = false;
    // The reply tuple must be free (the orig tuple is: its lookup missed and nothing was inserted
    // since). A POSTROUTING choice that was just checked unused needs no second lookup.
    if (st.uForeign) return false;
    if (!(srcManip && st.srcFree) && this.used(slot, proto, st.eRd, st.eRs, invertPorts(proto, st.eRp))) return false;
    // A self-inverse entry (reply tuple == orig tuple, e.g. 10.0.0.10:80 > 10.0.0.10:80) clashes
    // with itself, as in the model (the kernel would drop such a packet earlier, as a martian source).
    if (st.eRs === st.eOs && st.eRd === st.eOd && st.eRp === st.eOp) return false;
    const local = t.alloc();
    if (local < 0) {
      st.confirmFull = true;
      return false;
    }
    const o = t.rec(local);
    const ses = t.ses;
    ses[o] = st.eOs;
    ses[o + 1] = st.eOd;
    ses[o + 2] = st.eOp;
    ses[o + 3] = st.eRs;
    ses[o + 4] = st.eRd;
    ses[o + 5] = st.eRp;
    ses[o + S_PATH] = 0;
    ses[o + S_EXPIRY] = st.eExp;
    ses[o + S_CREATED] = st.eCreated;
    ses[o + S_WPREV] = 0;
    ses[o + S_WNEXT] = 0;
    ses[o + S_NPREV] = 0;
    ses[o + S_NNEXT] = 0;
    ses[o + S_TCP_END] = st.eTcpEnd;
    ses[o + S_TCP_FLAGS] = st.eTcpF;
    // The TCP window line is read for TCP entries only (tcp-tracker.ts, the fast path's tcpAck):
    // other entries leave it untouched (no cache line, no page touched per UDP/ICMP setup).
    if (proto === PROTO_TCP) {
      const w = t.tw(local);
      const ew = st.eTcpw;
      for (let k = 0; k < TCPW_WORDS; k++) t.tcpw[w + k] = ew[k];
    }
    let meta = st.eMeta;
    if (!srcManip) meta = (meta & ~M_BYSRC) >>> 0;
    meta = (meta | M_NALIST | M_LIVE) >>> 0;
    ses[o + S_META] = (meta & ~M_LIVE) >>> 0; // not visible to readers until keys are in
    // Inserts cannot fail: the region has room for every key of capW sessions (src/core/tables.ts).
    // Both keys were just looked up (their misses remembered: Tables.insertKey).
    t.insertKey(slot, proto, st.eOs, st.eOd, st.eOp, local, KIND_ORIG);
    t.insertKey(slot, proto, st.eRs, st.eRd, st.eRp, local, KIND_REPLY);
    t.touchMeta(o, meta);
    if (meta & M_BYSRC) t.bysrcLink(local);
    t.ctl[t.cBase + C_INST + slot * C_INST_WORDS + CI_COUNT]++;
    t.naAppend(local, slot);
    t.wheelLink(local, st.eExp);
    t.touch(local); // 'line' layout: its entries get their fast-path words at the end of the packet
    st.cLocal = local;
    st.pending = false;
    if (st.trkNat === 1) {
      st.trkLocal = local;
      st.trkKind = KIND_ORIG;
    }
    return true;
  }
}
