// Re-addressing a far-side frame of a one-sided capture to the public mapping an engine made for
// its flow (docs/replay.md "One-sided captures"): the byte-level part, shared by replay (which
// re-addresses on its own thread) and the engines that re-address in their hand-over
// (spec/readdress-plan.ts). A mapping is packed as address * 65536 + port (a 48-bit integer).
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, isIcmpQueryType } from './constants.ts';
import { csumReplace16, csumReplace32, udpCsumReplace16, udpCsumReplace32 } from './checksum.ts';
import { PARSE_OK, type PacketView } from './parse.ts';
import { rd16, rd32, wr16, wr32 } from './bytes.ts';

export function mappingAddr(packed: number): number {
  return Math.floor(packed / 65536) >>> 0;
}
export function mappingPort(packed: number): number {
  return packed % 65536;
}

/**
 * The public (address, port) an engine's output shows for an outbound packet: its translated
 * source, or -1 when the output is not the forwarded packet of the same flow (a generated ICMP
 * error, another protocol, unparseable).
 */
export function translatedSource(inPv: PacketView, outPv: PacketView): number {
  if (outPv.status !== PARSE_OK || outPv.proto !== inPv.proto) return -1;
  switch (outPv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return (outPv.src >>> 0) * 65536 + outPv.sport;
    case PROTO_ICMP:
      if (outPv.isIcmpError || !isIcmpQueryType(outPv.icmpType)) return -1;
      return (outPv.src >>> 0) * 65536 + outPv.icmpId;
    default:
      return -1;
  }
}

/**
 * Re-addresses, in place, the frame at out[base..] (parsed into `pv` at `base`, offsets absolute)
 * to `addr`: the outer destination, and the flow's inside port/id becomes `port` (TCP/UDP
 * destination port, ICMP query id; for an ICMP error the quoted packet's source address and
 * port/id). Every checksum is updated incrementally (RFC 1624), so a checksum that was wrong stays
 * exactly as wrong.
 */
export function readdressAt(out: Uint8Array, base: number, pv: PacketView, addr: number, port: number): void {
  addr >>>= 0;
  const oldDst = pv.dst >>> 0;
  wr32(out, base + 16, addr);
  wr16(out, base + 10, csumReplace32(rd16(out, base + 10), oldDst, addr));
  const l4 = pv.l4Off;
  switch (pv.proto) {
    case PROTO_TCP: {
      const oldPort = rd16(out, l4 + 2);
      wr16(out, l4 + 2, port);
      wr16(out, l4 + 16, csumReplace16(csumReplace32(rd16(out, l4 + 16), oldDst, addr), oldPort, port));
      break;
    }
    case PROTO_UDP: {
      const oldPort = rd16(out, l4 + 2);
      wr16(out, l4 + 2, port);
      wr16(out, l4 + 6, udpCsumReplace16(udpCsumReplace32(rd16(out, l4 + 6), oldDst, addr), oldPort, port));
      break;
    }
    case PROTO_ICMP: {
      let c = rd16(out, l4 + 2);
      // The quoted packet is the inside host's own: rewrite it only if it really is.
      if (pv.isIcmpError) {
        if (pv.innerSrc >>> 0 === oldDst) c = readdressQuoted(out, pv, addr, port, c);
      } else {
        const oldId = rd16(out, l4 + 4);
        wr16(out, l4 + 4, port);
        c = csumReplace16(c, oldId, port);
      }
      wr16(out, l4 + 2, c);
      break;
    }
    default:
      break;
  }
}

/** Rewrites the quoted packet's source to addr:port; returns the updated outer ICMP checksum. */
function readdressQuoted(out: Uint8Array, pv: PacketView, addr: number, port: number, icmpCsum: number): number {
  let c = icmpCsum;
  const inner = pv.innerOff;
  const oldSrc = pv.innerSrc >>> 0;
  // Inner source address (two words of the ICMP message) and the inner IP header checksum.
  wr32(out, inner + 12, addr);
  c = csumReplace32(c, oldSrc, addr);
  const oldIpCsum = rd16(out, inner + 10);
  const newIpCsum = csumReplace32(oldIpCsum, oldSrc, addr);
  wr16(out, inner + 10, newIpCsum);
  c = csumReplace16(c, oldIpCsum, newIpCsum);
  const l4 = pv.innerL4Off;
  const have = pv.innerL4Len;
  if ((pv.innerProto === PROTO_TCP || pv.innerProto === PROTO_UDP) && have >= 2) {
    const oldPort = rd16(out, l4);
    wr16(out, l4, port);
    c = csumReplace16(c, oldPort, port);
    const fo = pv.innerProto === PROTO_TCP ? 16 : 6;
    if (have >= fo + 2) {
      const old = rd16(out, l4 + fo);
      const neu =
        pv.innerProto === PROTO_TCP
          ? csumReplace16(csumReplace32(old, oldSrc, addr), oldPort, port)
          : udpCsumReplace16(udpCsumReplace32(old, oldSrc, addr), oldPort, port);
      wr16(out, l4 + fo, neu);
      c = csumReplace16(c, old, neu);
    }
  } else if (pv.innerProto === PROTO_ICMP && have >= 6) {
    const oldId = rd16(out, l4 + 4);
    wr16(out, l4 + 4, port);
    c = csumReplace16(c, oldId, port);
    const oldC = rd16(out, l4 + 2);
    const newC = csumReplace16(oldC, oldId, port);
    wr16(out, l4 + 2, newC);
    c = csumReplace16(c, oldC, newC);
  }
  return c;
}

/** The port/id readdressAt would replace (the inside port of the flow), for a static mapping. */
export function insidePortOf(pv: PacketView): number {
  switch (pv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return pv.dport;
    case PROTO_ICMP:
      if (pv.isIcmpError) {
        if (pv.innerProto === PROTO_TCP || pv.innerProto === PROTO_UDP) return pv.innerSport;
        return pv.innerIcmpId;
      }
      return pv.icmpId;
    default:
      return 0;
  }
}

/**
 * readdressAt for a frame whose IPv4 header is sound enough to read but that does not parse fully
 * (cut by the snapshot length, ...), at out[base, base + len): only the fields (and checksums)
 * that were captured change; ICMP errors are not re-addressed.
 */
export function readdressRawAt(out: Uint8Array, base: number, len: number, addr: number, port: number): void {
  addr >>>= 0;
  if (len < 20) return;
  const oldDst = rd32(out, base + 16);
  wr32(out, base + 16, addr);
  wr16(out, base + 10, csumReplace32(rd16(out, base + 10), oldDst, addr));
  const ihl = (out[base] & 15) << 2;
  if (ihl < 20 || (((out[base + 6] << 8) | out[base + 7]) & 0x1fff) !== 0) return;
  const proto = out[base + 9];
  const l4 = base + ihl;
  if ((proto === PROTO_TCP || proto === PROTO_UDP) && len >= ihl + 4) {
    const oldPort = rd16(out, l4 + 2);
    wr16(out, l4 + 2, port);
    const fo = proto === PROTO_TCP ? 16 : 6;
    if (len >= ihl + fo + 2) {
      const c = rd16(out, l4 + fo);
      wr16(
        out,
        l4 + fo,
        proto === PROTO_TCP
          ? csumReplace16(csumReplace32(c, oldDst, addr), oldPort, port)
          : udpCsumReplace16(udpCsumReplace32(c, oldDst, addr), oldPort, port),
      );
    }
  } else if (proto === PROTO_ICMP && len >= ihl + 6 && isIcmpQueryType(out[l4])) {
    const oldId = rd16(out, l4 + 4);
    wr16(out, l4 + 4, port);
    wr16(out, l4 + 2, csumReplace16(rd16(out, l4 + 2), oldId, port));
  }
}

export function insidePortRawAt(f: Uint8Array, base: number, len: number): number {
  const ihl = (f[base] & 15) << 2;
  const proto = f[base + 9];
  const l4 = base + ihl;
  if ((proto === PROTO_TCP || proto === PROTO_UDP) && len >= ihl + 4) return rd16(f, l4 + 2);
  if (proto === PROTO_ICMP && len >= ihl + 6 && isIcmpQueryType(f[l4])) return rd16(f, l4 + 4);
  return -1;
}
