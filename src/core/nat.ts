// NAT at one instance for the frame being walked: the first packet of a connection runs the
// chain's rules (nf_nat_inet_fn → the nat table's PREROUTING / POSTROUTING rules, counted like
// iptables -L -v) and nf_nat_setup_info (get_unique_tuple in nat-port-search.ts, then the entry's
// reply tuple and the packet are rewritten); later packets apply the stored manipulation
// (nf_nat_packet). A new connection delivered locally runs the INPUT chain (a SRC manip hook: its
// SNAT rule or the null binding, whose port search resolves a reply-tuple clash).
// Twin of src/model/nat.ts (docs/semantics.md §5, §8).

import { M_BYSRC, M_DST_NAT, M_SRC_NAT } from './layout.ts';
import {
  type CompiledScenario,
  CH_COUNT,
  CH_POST,
  CH_PRE,
  TK_DNAT,
  TK_MASQUERADE,
  TK_RETURN,
  TK_SNAT,
  ruleMatch,
} from './compile.ts';
import { invertPorts } from './ct-entry.ts';
import type { Conntrack } from './conntrack.ts';
import type { PacketManip } from './manip.ts';
import { MANIP_DST, MANIP_SRC, PortSearch } from './nat-port-search.ts';
import type { Tables } from './tables.ts';
import type { SlowState } from './slow-state.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { NF_NAT_RANGE_MAP_IPS } from '../spec/scenario.ts';

export class Nat {
  readonly ports: PortSearch;
  private readonly natc: Float64Array;
  private readonly natcBase: number;

  constructor(
    private readonly c: CompiledScenario,
    t: Tables,
    private readonly st: SlowState,
    ct: Conntrack,
    private readonly manip: PacketManip,
    W: number,
    w: number,
  ) {
    this.ports = new PortSearch(c, t, st, ct, W, w);
    this.natc = t.v.natc;
    this.natcBase = w * Math.max(1, c.counterCount) * 2;
  }

  private countRule(counter: number): void {
    const k = this.natcBase + counter * 2;
    this.natc[k]++;
    this.natc[k + 1] += this.st.pv.totalLen;
  }

  /**
   * First packet (nf_nat_inet_fn + nf_nat_setup_info): run the chain's rules, choose a unique
   * tuple, rewrite the packet (unless `rewrite` is false: a REJECT's reset, which only runs the
   * chain for the rejected packet's entry; a local delivery, which outputs its arrival frame) and
   * the pending entry's reply tuple. `chain`: CH_IN for the INPUT hook (a SRC manip), else the
   * manip's PREROUTING / POSTROUTING.
   */
  setupInfo(slot: number, inst: number, manip: number, rewrite = true, chain = -1): void {
    const c = this.c;
    const st = this.st;
    const pv = st.pv;
    const proto = pv.proto;
    const ch = chain >= 0 ? chain : manip === MANIP_SRC ? CH_POST : CH_PRE;
    const ported = proto === PROTO_TCP || proto === PROTO_UDP;
    const k = ruleMatch(c, slot, ch, proto, pv.src, pv.dst, ported ? pv.sport : 0, ported ? pv.dport : 0);
    let flags = NF_NAT_RANGE_MAP_IPS;
    let alo: number;
    let ahi: number;
    let plo = 0;
    let phi = 0;
    // current tuple: invert(current reply)
    const cs = st.eRd;
    const cd = st.eRs;
    const cp = invertPorts(proto, st.eRp);
    alo = manip === MANIP_SRC ? cs : cd;
    ahi = alo;
    if (k < 0) {
      this.countRule(c.chainPolicy[slot * CH_COUNT + ch]);
    } else {
      this.countRule(c.rCounter[k]);
      const kind = c.rKind[k];
      if (kind === TK_RETURN) this.countRule(c.chainPolicy[slot * CH_COUNT + ch]);
      if (
        (kind === TK_DNAT && manip === MANIP_DST) ||
        ((kind === TK_SNAT || kind === TK_MASQUERADE) && manip === MANIP_SRC)
      ) {
        flags = c.rFlags[k] | NF_NAT_RANGE_MAP_IPS;
        alo = kind === TK_MASQUERADE ? c.instPriv[inst] : c.rAddrLo[k];
        ahi = kind === TK_MASQUERADE ? alo : c.rAddrHi[k];
        if (ahi < alo) ahi = alo;
        plo = c.rPortLo[k];
        phi = c.rPortHi[k];
        if (kind === TK_MASQUERADE && cs === 0) flags = -1; // source 0.0.0.0: untouched
      }
    }
    if (manip === MANIP_SRC) st.eMeta = (st.eMeta | M_BYSRC) >>> 0;
    if (flags === -1) return;
    // Addresses and ports words go as int32 (getUniqueTuple takes them back >>> 0): a uint32 at or
    // above 2^31 would be boxed as a heap number to pass a real call (docs/core.md "Session 7").
    this.ports.getUniqueTuple(slot, manip, proto, cs | 0, cd | 0, cp | 0, flags, alo | 0, ahi | 0, plo, phi);
    if (manip === MANIP_SRC) st.srcFree = st.uFree;
    if (st.us === cs && st.ud === cd && st.up === cp) return;
    st.eMeta = (st.eMeta | (manip === MANIP_SRC ? M_SRC_NAT : M_DST_NAT)) >>> 0;
    st.eRs = st.ud;
    st.eRd = st.us;
    st.eRp = invertPorts(proto, st.up);
    if (!rewrite) return;
    const m = this.manip;
    if (manip === MANIP_SRC) {
      m.setAddr(0, st.us);
      if (ported || proto === PROTO_ICMP) m.setPort(0, st.up >>> 16);
    } else {
      m.setAddr(1, st.ud);
      if (ported) m.setPort(1, st.up & 0xffff);
      else if (proto === PROTO_ICMP) m.setPort(0, st.up >>> 16);
    }
  }

  /** nf_nat_packet: the stored manipulation of an existing entry at a hook of type `manip`. */
  natPacket(manip: number): void {
    const st = this.st;
    const dir = st.cDir;
    const bit = manip === MANIP_SRC ? (dir === 0 ? M_SRC_NAT : M_DST_NAT) : dir === 0 ? M_DST_NAT : M_SRC_NAT;
    if ((st.eMeta & bit) === 0) return;
    // target = invert(other direction's tuple)
    let os: number, od: number, op: number;
    if (dir === 0) {
      os = st.eRs;
      od = st.eRd;
      op = st.eRp;
    } else {
      os = st.eOs;
      od = st.eOd;
      op = st.eOp;
    }
    const proto = st.pv.proto;
    const m = this.manip;
    if (manip === MANIP_SRC) {
      m.setAddr(0, od);
      if (proto === PROTO_TCP || proto === PROTO_UDP) m.setPort(0, op & 0xffff);
      else if (proto === PROTO_ICMP) m.setPort(0, op >>> 16);
    } else {
      m.setAddr(1, os);
      if (proto === PROTO_TCP || proto === PROTO_UDP) m.setPort(1, op >>> 16);
      else if (proto === PROTO_ICMP) m.setPort(0, op >>> 16);
    }
  }
}
