// The internet gateway, emulated statelessly in user space at the internet edge of the topology.
//
// AWS's IGW maps each Elastic IP 1:1 to an ENI's private address, without state and without port
// translation. Doing that in a namespace with iptables SNAT/DNAT would add a second conntrack table
// (INVALID packets left untranslated, TCP window checks, its own timeouts), and this kernel has no
// stateless alternative (no tc act_nat/pedit, no nft binary). A pure function applied to the frames
// that cross the internet edge is exactly the AWS behaviour and adds nothing to compare.
//
// Outbound (VPC -> internet): source private -> EIP; an ICMP error's quoted destination too.
// Inbound (internet -> VPC): destination EIP -> private; an ICMP error's quoted source too.
// Checksums are patched incrementally (RFC 1624), so a wrong checksum stays wrong by the same
// amount, as in every NAT; a UDP checksum of 0 (none) stays 0.
import {
  PacketView,
  parseIpv4,
  PARSE_FRAGMENT,
  PARSE_ICMP_ERROR_TOO_SHORT,
  PROTO_TCP,
  PROTO_UDP,
  PROTO_ICMP,
  csumReplace16,
  csumReplace32,
  udpCsumReplace32,
} from '../packet/index.ts';
import { DROP_IGW_NO_PUBLIC_IP, DROP_IGW_UNKNOWN_DST, DROP_MALFORMED, REASON_NONE } from '../spec/reasons.ts';
import type { Scenario } from '../spec/scenario.ts';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.ts';

export interface IgwMap {
  /** private -> public */
  toPublic: Map<number, number>;
  /** public -> private */
  toPrivate: Map<number, number>;
}

export function igwMapOf(s: Scenario): IgwMap {
  const toPublic = new Map<number, number>();
  const toPrivate = new Map<number, number>();
  for (const inst of s.instances) {
    if (inst.elasticIp === null) continue;
    toPublic.set(inst.privateIp >>> 0, inst.elasticIp >>> 0);
    toPrivate.set(inst.elasticIp >>> 0, inst.privateIp >>> 0);
  }
  return { toPublic, toPrivate };
}

export interface IgwResult {
  /** REASON_NONE (translated; `frame` is a new buffer) or a DROP_* code. */
  reason: number;
  /** Parse status for DROP_MALFORMED. */
  detail: number;
  frame: Uint8Array;
}

/**
 * Rewrites the 32-bit address at `addrOff` of the IPv4 header at `ipOff` and patches the header
 * checksum; returns the old value.
 */
function rewriteIpAddr(b: Uint8Array, ipOff: number, addrOff: number, neu: number): number {
  const old = rd32(b, addrOff);
  wr32(b, addrOff, neu);
  wr16(b, ipOff + 10, csumReplace32(rd16(b, ipOff + 10), old, neu));
  return old;
}

/** Patches the L4 checksum of TCP/UDP at l4Off for a pseudo-header address change. */
function patchL4Pseudo(b: Uint8Array, proto: number, l4Off: number, l4Avail: number, old: number, neu: number): void {
  if (proto === PROTO_TCP && l4Avail >= 18) {
    wr16(b, l4Off + 16, csumReplace32(rd16(b, l4Off + 16), old, neu));
  } else if (proto === PROTO_UDP && l4Avail >= 8) {
    wr16(b, l4Off + 6, udpCsumReplace32(rd16(b, l4Off + 6), old, neu));
  }
}

const pv = new PacketView();

/**
 * Translates one frame crossing the IGW. `outbound`: from the VPC to the internet (source
 * private -> public), else inbound (destination public -> private).
 */
export function igwTranslate(map: IgwMap, frame: Uint8Array, outbound: boolean): IgwResult {
  const st = parseIpv4(frame, 0, frame.length, pv);
  // Without a whole fixed header there is no address to map: the IGW cannot carry it.
  if (frame.length < 20 || frame[0] >>> 4 !== 4) return { reason: DROP_MALFORMED, detail: st, frame };
  const addr = outbound ? pv.src : pv.dst;
  const mapped = outbound ? map.toPublic.get(addr) : map.toPrivate.get(addr);
  if (mapped === undefined) {
    return { reason: outbound ? DROP_IGW_NO_PUBLIC_IP : DROP_IGW_UNKNOWN_DST, detail: 0, frame };
  }
  const b = new Uint8Array(frame);
  const ihl = (b[0] & 15) << 2;
  if (ihl < 20 || ihl > b.length) {
    // Header unusable: only the address words we can see are rewritten (the kernel drops it).
    if (b.length >= 20) rewriteIpAddr(b, 0, outbound ? 12 : 16, mapped);
    return { reason: REASON_NONE, detail: 0, frame: b };
  }
  rewriteIpAddr(b, 0, outbound ? 12 : 16, mapped);
  if (st === PARSE_FRAGMENT) return { reason: REASON_NONE, detail: 0, frame: b };
  const totalLen = Math.min(rd16(b, 2), b.length);
  const l4Off = ihl;
  const l4Avail = totalLen - l4Off;
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) {
    patchL4Pseudo(b, pv.proto, l4Off, l4Avail, addr, mapped);
  } else if (pv.proto === PROTO_ICMP && pv.isIcmpError && st !== PARSE_ICMP_ERROR_TOO_SHORT && pv.innerIhl >= 20) {
    // Quoted packet: it travelled the other way, so its destination (outbound) or source
    // (inbound) is the address being translated.
    const io = pv.innerOff;
    const innerAddrOff = io + (outbound ? 16 : 12);
    if (innerAddrOff + 4 <= totalLen && rd32(b, innerAddrOff) === addr) {
      const icmpCsumOff = l4Off + 2;
      let icmpCsum = rd16(b, icmpCsumOff);
      const oldInnerCsum = io + 12 <= totalLen ? rd16(b, io + 10) : 0;
      rewriteIpAddr(b, io, innerAddrOff, mapped);
      icmpCsum = csumReplace32(icmpCsum, addr, mapped);
      icmpCsum = csumReplace16(icmpCsum, oldInnerCsum, rd16(b, io + 10));
      const il4 = io + pv.innerIhl;
      const il4Avail = totalLen - il4;
      const inner = pv.innerProto;
      const csumOff = inner === PROTO_TCP ? 16 : inner === PROTO_UDP ? 6 : -1;
      // Inner L4 checksum: UDP always (8 bytes are quoted), TCP only when the whole header is.
      if (csumOff >= 0 && ((inner === PROTO_UDP && il4Avail >= 8) || (inner === PROTO_TCP && il4Avail >= 20))) {
        const before = rd16(b, il4 + csumOff);
        patchL4Pseudo(b, inner, il4, il4Avail, addr, mapped);
        icmpCsum = csumReplace16(icmpCsum, before, rd16(b, il4 + csumOff));
      }
      wr16(b, icmpCsumOff, icmpCsum);
    }
  }
  return { reason: REASON_NONE, detail: 0, frame: b };
}

/** Is `addr` one of the scenario's Elastic IPs? (A frame leaving to an EIP hairpins back in.) */
export function isElasticIp(map: IgwMap, addr: number): boolean {
  return map.toPrivate.has(addr >>> 0);
}
