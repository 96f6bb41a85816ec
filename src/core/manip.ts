// Rewriting the frame being walked, in place, with incremental checksums (RFC 1624): the outer
// addresses and ports (nf_nat_ipv4_manip_pkt + the l4proto manip_pkt of TCP/UDP/ICMP, with the
// pseudo-header fix of nf_nat_ipv4_csum_update), the quoted packet of an ICMP error
// (nf_nat_icmp_reply_translation's inner rewrite), and the TTL decrement of ip_forward.

import type { SlowState } from './slow-state.ts';
import { icmpInvert } from './ct-entry.ts';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.ts';
import { csumApplyDelta, csumDelta16, csumDelta32, fold16, sum16, udpCsumApplyDelta } from '../packet/checksum.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';

/** Applies a folded delta to the checksum field at o. */
export function applyCsum(b: Uint8Array, o: number, d: number): void {
  wr16(b, o, csumApplyDelta(rd16(b, o), d));
}

/** UDP: zero stays zero; a computed zero becomes 0xffff. */
export function applyUdpCsum(b: Uint8Array, o: number, d: number): void {
  wr16(b, o, udpCsumApplyDelta(rd16(b, o), d));
}

export class PacketManip {
  constructor(private readonly st: SlowState) {}

  /** Sets the outer source (which=0) or destination (1) address; IP and TCP/UDP pseudo-header checksums. */
  setAddr(which: number, addr: number): void {
    const st = this.st;
    const b = st.buf;
    const pv = st.pv;
    const o = st.fo + (which === 0 ? 12 : 16);
    const old = rd32(b, o);
    if (old === addr) return;
    const d = csumDelta32(old, addr);
    wr32(b, o, addr);
    applyCsum(b, st.fo + 10, d);
    this.l4PseudoFix(d);
    if (which === 0) pv.src = addr;
    else pv.dst = addr;
  }

  private l4PseudoFix(d: number): void {
    const pv = this.st.pv;
    const b = this.st.buf;
    if (pv.fragOff !== 0) return;
    if (pv.proto === PROTO_TCP && pv.l4Len >= 18) applyCsum(b, pv.l4Off + 16, d);
    else if (pv.proto === PROTO_UDP && pv.l4Len >= 8) applyUdpCsum(b, pv.l4Off + 6, d);
  }

  /** Sets the TCP/UDP source (which=0) or destination (1) port, or the ICMP query id. */
  setPort(which: number, port: number): void {
    const pv = this.st.pv;
    const b = this.st.buf;
    if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) {
      const o = pv.l4Off + which * 2;
      const old = rd16(b, o);
      if (old === port) return;
      wr16(b, o, port);
      const d = csumDelta16(old, port);
      if (pv.proto === PROTO_TCP) {
        if (pv.l4Len >= 18) applyCsum(b, pv.l4Off + 16, d);
      } else applyUdpCsum(b, pv.l4Off + 6, d);
      if (which === 0) pv.sport = port;
      else pv.dport = port;
    } else if (pv.proto === PROTO_ICMP && pv.isIcmpError === 0 && pv.l4Len >= 8) {
      const old = rd16(b, pv.l4Off + 4);
      if (old === port) return;
      wr16(b, pv.l4Off + 4, port);
      applyCsum(b, pv.l4Off + 2, csumDelta16(old, port));
      pv.icmpId = port;
      pv.sport = port;
    }
  }

  /** Recomputes the ICMP checksum over the whole message. */
  icmpRecompute(): void {
    const pv = this.st.pv;
    const b = this.st.buf;
    wr16(b, pv.l4Off + 2, 0);
    wr16(b, pv.l4Off + 2, ~fold16(sum16(b, pv.l4Off, pv.l4Len)) & 0xffff);
  }

  /** Inner (quoted) packet: set src (which=0) or dst (1) address, with inner IP / UDP checksums. */
  setInnerAddr(which: number, addr: number, tcpFull: boolean): void {
    const pv = this.st.pv;
    const b = this.st.buf;
    const o = pv.innerOff + (which === 0 ? 12 : 16);
    const old = rd32(b, o);
    if (old === addr) return;
    const d = csumDelta32(old, addr);
    wr32(b, o, addr);
    applyCsum(b, pv.innerOff + 10, d);
    if (pv.innerProto === PROTO_UDP) applyUdpCsum(b, pv.innerL4Off + 6, d);
    else if (pv.innerProto === PROTO_TCP && tcpFull && pv.innerL4Len >= 20) applyCsum(b, pv.innerL4Off + 16, d);
    if (which === 0) pv.innerSrc = addr;
    else pv.innerDst = addr;
  }

  setInnerPort(which: number, port: number): void {
    const pv = this.st.pv;
    const b = this.st.buf;
    const ip = pv.innerProto;
    if (ip === PROTO_TCP || ip === PROTO_UDP) {
      const o = pv.innerL4Off + which * 2;
      const old = rd16(b, o);
      if (old === port) return;
      wr16(b, o, port);
      const d = csumDelta16(old, port);
      if (ip === PROTO_UDP) applyUdpCsum(b, pv.innerL4Off + 6, d);
      else if (pv.innerL4Len >= 20) applyCsum(b, pv.innerL4Off + 16, d);
      if (which === 0) pv.innerSport = port;
      else pv.innerDport = port;
    } else if (ip === PROTO_ICMP) {
      const t = pv.innerIcmpType;
      if (icmpInvert(t) < 0) return;
      const old = rd16(b, pv.innerL4Off + 4);
      if (old === port) return;
      wr16(b, pv.innerL4Off + 4, port);
      applyCsum(b, pv.innerL4Off + 2, csumDelta16(old, port));
      pv.innerIcmpId = port;
      pv.innerSport = port;
    }
  }

  /** ip_forward's ip_decrease_ttl: TTL − 1, header checksum patched (counted for the composed path). */
  decTtl(): void {
    const st = this.st;
    const b = st.buf;
    const o = st.fo;
    const ttl = b[o + 8];
    b[o + 8] = ttl - 1;
    applyCsum(b, o + 10, 0xffff - 0x100);
    st.pv.ttl = ttl - 1;
    st.trkTtl++;
  }
}
