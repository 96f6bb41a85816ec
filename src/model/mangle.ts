// Byte-level packet rewrites exactly as Linux does them: nf_nat_ipv4_manip_pkt with
// tcp/udp/icmp_manip_pkt (nf_nat_proto.c), ip_decrease_ttl (include/net/ip.h), and the ICMP
// error translation of nf_nat_icmp_reply_translation. Incremental checksum arithmetic comes from
// src/packet/checksum.ts (RFC 1624, bit-identical to csum_replace4 / inet_proto_csum_replace*).
// Every function works on a packet copy the engine owns (IPv4 header at `iphOff`).

import { ICMP_HDR_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, isIcmpQueryType } from '../packet/constants.ts';
import { checksumOf, csumReplace16, csumReplace32 } from '../packet/checksum.ts';
import type { Tuple } from './tuple.ts';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.ts';

export const MANIP_SRC = 0;
export const MANIP_DST = 1;

/** The address nf_nat_ipv4_csum_update replaces in the pseudo-header. */
function oldNewAddr(pkt: Uint8Array, iphOff: number, target: Tuple, manip: number): [number, number] {
  return manip === MANIP_SRC ? [rd32(pkt, iphOff + 12), target.src] : [rd32(pkt, iphOff + 16), target.dst];
}

/** tcp_manip_pkt: ports always (8 bytes guaranteed); checksum only with a full 20-byte header. */
function tcpManip(pkt: Uint8Array, iphOff: number, hdrOff: number, target: Tuple, manip: number): boolean {
  const hdrsize = pkt.length >= hdrOff + 20 ? 20 : 8;
  if (pkt.length < hdrOff + hdrsize) return false;
  const portOff = manip === MANIP_SRC ? hdrOff : hdrOff + 2;
  const oldPort = rd16(pkt, portOff);
  const newPort = manip === MANIP_SRC ? target.sport : target.dport;
  wr16(pkt, portOff, newPort);
  if (hdrsize < 20) return true;
  const [oldIp, newIp] = oldNewAddr(pkt, iphOff, target, manip);
  let c = rd16(pkt, hdrOff + 16);
  c = csumReplace32(c, oldIp, newIp);
  c = csumReplace16(c, oldPort, newPort);
  wr16(pkt, hdrOff + 16, c);
  return true;
}

/** udp_manip_pkt / __udp_manip_pkt: checksum 0 ("none") stays 0, a computed 0 becomes 0xFFFF. */
function udpManip(pkt: Uint8Array, iphOff: number, hdrOff: number, target: Tuple, manip: number): boolean {
  if (pkt.length < hdrOff + 8) return false;
  const portOff = manip === MANIP_SRC ? hdrOff : hdrOff + 2;
  const oldPort = rd16(pkt, portOff);
  const newPort = manip === MANIP_SRC ? target.sport : target.dport;
  let c = rd16(pkt, hdrOff + 6);
  if (c !== 0) {
    const [oldIp, newIp] = oldNewAddr(pkt, iphOff, target, manip);
    c = csumReplace32(c, oldIp, newIp);
    c = csumReplace16(c, oldPort, newPort);
    if (c === 0) c = 0xffff; // CSUM_MANGLED_0
    wr16(pkt, hdrOff + 6, c);
  }
  wr16(pkt, portOff, newPort);
  return true;
}

/** icmp_manip_pkt: the id of query types (either manip type), checksum patched; errors untouched. */
function icmpManip(pkt: Uint8Array, hdrOff: number, target: Tuple): boolean {
  if (pkt.length < hdrOff + ICMP_HDR_LEN) return false;
  if (!isIcmpQueryType(pkt[hdrOff])) return true;
  const oldId = rd16(pkt, hdrOff + 4);
  wr16(pkt, hdrOff + 2, csumReplace16(rd16(pkt, hdrOff + 2), oldId, target.sport));
  wr16(pkt, hdrOff + 4, target.sport);
  return true;
}

/**
 * nf_nat_ipv4_manip_pkt: make the packet at iphOff look like `target` on the manip side (SRC:
 * source address and port/id; DST: destination). `proto` is target->dst.protonum. Returns false
 * when the packet is too short to rewrite (the kernel then drops it).
 */
export function natManipPkt(pkt: Uint8Array, iphOff: number, target: Tuple, proto: number, manip: number): boolean {
  const hdrOff = iphOff + ((pkt[iphOff] & 0x0f) << 2);
  let ok = true;
  if (proto === PROTO_TCP) ok = tcpManip(pkt, iphOff, hdrOff, target, manip);
  else if (proto === PROTO_UDP) ok = udpManip(pkt, iphOff, hdrOff, target, manip);
  else if (proto === PROTO_ICMP) ok = icmpManip(pkt, hdrOff, target);
  if (!ok) return false;
  const addrOff = manip === MANIP_SRC ? iphOff + 12 : iphOff + 16;
  const oldIp = rd32(pkt, addrOff);
  const newIp = manip === MANIP_SRC ? target.src : target.dst;
  wr16(pkt, iphOff + 10, csumReplace32(rd16(pkt, iphOff + 10), oldIp, newIp));
  wr32(pkt, addrOff, newIp);
  return true;
}

/**
 * ip_decrease_ttl, byte for byte as on a little-endian machine (the kernel oracle's x86):
 * `check += htons(0x0100); check += (check >= 0xFFFF)` on the host-order u32 of the field.
 */
export function ipDecreaseTtl(pkt: Uint8Array): void {
  const be = rd16(pkt, 10);
  let v = ((be & 0xff) << 8) | (be >>> 8); // the field as an x86 u16 load sees it
  v += 1; // htons(0x0100) on little-endian
  v = (v + (v >= 0xffff ? 1 : 0)) & 0xffff;
  wr16(pkt, 10, ((v & 0xff) << 8) | (v >>> 8));
  pkt[8] = (pkt[8] - 1) & 0xff;
}

/** Recomputes the ICMP checksum over the whole message (nf_nat_icmp_reply_translation). */
export function recomputeIcmpChecksum(pkt: Uint8Array, l4Off: number): void {
  wr16(pkt, l4Off + 2, 0);
  wr16(pkt, l4Off + 2, checksumOf(pkt, l4Off, pkt.length - l4Off));
}

/** Rewrites an IPv4 address field with the IP header checksum patched incrementally. */
export function rewriteAddr(pkt: Uint8Array, iphOff: number, which: 'src' | 'dst', addr: number): void {
  const off = iphOff + (which === 'src' ? 12 : 16);
  wr16(pkt, iphOff + 10, csumReplace32(rd16(pkt, iphOff + 10), rd32(pkt, off), addr));
  wr32(pkt, off, addr);
}
