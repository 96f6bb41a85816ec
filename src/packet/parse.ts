// Frame parsing into a reused struct. Hot path: no allocation, integer fields only, a status
// code per malformation. The struct's fields are all set in the constructor (stable shape).

import {
  ETH_HDR_LEN,
  ETHERTYPE_IPV4,
  ETHERTYPE_VLAN,
  ICMP_HDR_LEN,
  IPV4_MIN_HDR_LEN,
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
  LINKTYPE_RAW_BSD,
  LINKTYPE_RAW_OPENBSD,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  TCP_MIN_HDR_LEN,
  UDP_HDR_LEN,
  VLAN_TAG_LEN,
  isIcmpErrorType,
  isIcmpQueryType,
} from './constants.ts';
import { rd16, rd32 } from './bytes.ts';

export const PARSE_OK = 0;
export const PARSE_TRUNCATED_L2 = 1;
export const PARSE_NOT_IPV4 = 2;
export const PARSE_TRUNCATED_IP_HEADER = 3;
export const PARSE_BAD_IP_VERSION = 4;
export const PARSE_BAD_IHL = 5;
export const PARSE_TRUNCATED_IP_OPTIONS = 6;
export const PARSE_BAD_TOTAL_LENGTH = 7;
export const PARSE_TRUNCATED_PACKET = 8;
export const PARSE_BAD_IP_CHECKSUM = 9;
export const PARSE_FRAGMENT = 10;
export const PARSE_TRUNCATED_L4 = 11;
export const PARSE_BAD_TCP_DATA_OFFSET = 12;
export const PARSE_TRUNCATED_TCP_OPTIONS = 13;
export const PARSE_BAD_UDP_LENGTH = 14;
export const PARSE_ICMP_ERROR_TOO_SHORT = 15;
export const PARSE_ICMP_INNER_MALFORMED = 16;
export const PARSE_UNSUPPORTED_LINKTYPE = 17;

export const PARSE_STATUS_NAMES: readonly string[] = [
  'ok',
  'truncated-link-header',
  'not-ipv4',
  'truncated-ip-header',
  'bad-ip-version',
  'bad-ihl',
  'truncated-ip-options',
  'bad-total-length',
  'truncated-packet',
  'bad-ip-checksum',
  'fragment',
  'truncated-l4-header',
  'bad-tcp-data-offset',
  'truncated-tcp-options',
  'bad-udp-length',
  'icmp-error-too-short',
  'icmp-inner-malformed',
  'unsupported-linktype',
];

/**
 * True for statuses at which Linux drops the packet in ip_rcv (before netfilter): broken IPv4
 * headers, lengths or checksums. L4 problems (truncated TCP header, bad data offset, ICMP error too
 * short) pass IP and reach conntrack, which marks them INVALID.
 */
export function isIpLevelMalformation(status: number): boolean {
  return status >= PARSE_TRUNCATED_IP_HEADER && status <= PARSE_BAD_IP_CHECKSUM;
}

/** Reused parse result. Offsets are absolute into the parsed buffer. */
export class PacketView {
  status = 0;
  // link layer
  l3Off = 0;
  etherType = 0;
  vlanId = -1;
  // IPv4
  ihl = 0; // header length in bytes
  tos = 0;
  totalLen = 0;
  ipId = 0;
  df = 0;
  mf = 0;
  fragOff = 0; // bytes
  ttl = 0;
  proto = 0;
  ipCsum = 0;
  src = 0;
  dst = 0;
  /** Captured bytes available from l3Off (limited to totalLen once known). */
  capLen = 0;
  // L4
  l4Off = 0;
  l4Len = 0; // totalLen - ihl
  sport = 0; // TCP/UDP ports; ICMP query: the id
  dport = 0;
  tcpSeq = 0;
  tcpAck = 0;
  tcpFlags = 0;
  tcpDataOff = 0; // bytes
  tcpWindow = 0;
  l4Csum = 0;
  udpLen = 0;
  icmpType = -1;
  icmpCode = -1;
  icmpId = 0;
  icmpSeq = 0;
  isIcmpError = 0;
  // ICMP error: the embedded ("inner") packet
  innerOff = 0;
  innerIhl = 0;
  innerProto = 0;
  innerSrc = 0;
  innerDst = 0;
  innerSport = 0;
  innerDport = 0;
  innerL4Off = 0;
  innerL4Len = 0; // bytes of inner L4 present in the capture
  innerTotalLen = 0;
  innerIcmpType = -1;
  innerIcmpCode = -1;
  innerIcmpId = 0;
  // payload after the L4 header
  payloadOff = 0;
  payloadLen = 0;

  reset(): void {
    this.status = 0;
    this.l3Off = 0;
    this.etherType = 0;
    this.vlanId = -1;
    this.ihl = 0;
    this.tos = 0;
    this.totalLen = 0;
    this.ipId = 0;
    this.df = 0;
    this.mf = 0;
    this.fragOff = 0;
    this.ttl = 0;
    this.proto = 0;
    this.ipCsum = 0;
    this.src = 0;
    this.dst = 0;
    this.capLen = 0;
    this.l4Off = 0;
    this.l4Len = 0;
    this.sport = 0;
    this.dport = 0;
    this.tcpSeq = 0;
    this.tcpAck = 0;
    this.tcpFlags = 0;
    this.tcpDataOff = 0;
    this.tcpWindow = 0;
    this.l4Csum = 0;
    this.udpLen = 0;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.icmpId = 0;
    this.icmpSeq = 0;
    this.isIcmpError = 0;
    this.innerOff = 0;
    this.innerIhl = 0;
    this.innerProto = 0;
    this.innerSrc = 0;
    this.innerDst = 0;
    this.innerSport = 0;
    this.innerDport = 0;
    this.innerL4Off = 0;
    this.innerL4Len = 0;
    this.innerTotalLen = 0;
    this.innerIcmpType = -1;
    this.innerIcmpCode = -1;
    this.innerIcmpId = 0;
    this.payloadOff = 0;
    this.payloadLen = 0;
  }
}

/**
 * Parses a captured frame of the given link type. `capLen` is the number of captured bytes from
 * `off`. Returns a PARSE_* status (also stored in pv.status).
 */
export function parseFrame(buf: Uint8Array, off: number, capLen: number, linkType: number, pv: PacketView): number {
  pv.reset();
  let l3 = off;
  let etherType = ETHERTYPE_IPV4;
  const end = off + capLen;
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      if (capLen < ETH_HDR_LEN) return (pv.status = PARSE_TRUNCATED_L2);
      etherType = rd16(buf, off + 12);
      l3 = off + ETH_HDR_LEN;
      if (etherType === ETHERTYPE_VLAN) {
        if (capLen < ETH_HDR_LEN + VLAN_TAG_LEN) return (pv.status = PARSE_TRUNCATED_L2);
        pv.vlanId = rd16(buf, off + 14) & 0x0fff;
        etherType = rd16(buf, off + 16);
        l3 += VLAN_TAG_LEN;
      }
      break;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_BSD:
    case LINKTYPE_RAW_OPENBSD:
      if (capLen < 1) return (pv.status = PARSE_TRUNCATED_IP_HEADER);
      etherType = buf[off] >>> 4 === 4 ? ETHERTYPE_IPV4 : buf[off] >>> 4 === 6 ? 0x86dd : 0;
      break;
    case LINKTYPE_IPV4:
      break;
    case LINKTYPE_LINUX_SLL:
      if (capLen < 16) return (pv.status = PARSE_TRUNCATED_L2);
      etherType = rd16(buf, off + 14);
      l3 = off + 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (capLen < 20) return (pv.status = PARSE_TRUNCATED_L2);
      etherType = rd16(buf, off);
      l3 = off + 20;
      break;
    case LINKTYPE_NULL: {
      if (capLen < 4) return (pv.status = PARSE_TRUNCATED_L2);
      // Address family in the capturing host's byte order: AF_INET is 2 everywhere.
      const le = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24);
      const be = rd32(buf, off);
      etherType = le === 2 || be === 2 ? ETHERTYPE_IPV4 : 0;
      l3 = off + 4;
      break;
    }
    default:
      return (pv.status = PARSE_UNSUPPORTED_LINKTYPE);
  }
  pv.etherType = etherType;
  if (etherType !== ETHERTYPE_IPV4) {
    pv.l3Off = l3;
    return (pv.status = PARSE_NOT_IPV4);
  }
  return parseIpv4Into(buf, l3, end - l3, pv);
}

/**
 * Parses an IPv4 packet starting at `off` (no link header). `headerSummed`: the caller has
 * verified this header's checksum already (the core's fast path for a new flow's packet).
 */
export function parseIpv4(buf: Uint8Array, off: number, capLen: number, pv: PacketView, headerSummed = false): number {
  pv.reset();
  pv.etherType = ETHERTYPE_IPV4;
  return parseIpv4Into(buf, off, capLen, pv, headerSummed);
}

function parseIpv4Into(buf: Uint8Array, off: number, capLen: number, pv: PacketView, headerSummed = false): number {
  pv.l3Off = off;
  pv.capLen = capLen;
  if (capLen < IPV4_MIN_HDR_LEN) {
    if (capLen >= 1 && buf[off] >>> 4 !== 4) return (pv.status = PARSE_BAD_IP_VERSION);
    return (pv.status = PARSE_TRUNCATED_IP_HEADER);
  }
  const vihl = buf[off];
  if (vihl >>> 4 !== 4) return (pv.status = PARSE_BAD_IP_VERSION);
  const ihl = (vihl & 0x0f) << 2;
  pv.ihl = ihl;
  pv.tos = buf[off + 1];
  pv.totalLen = rd16(buf, off + 2);
  pv.ipId = rd16(buf, off + 4);
  const ff = rd16(buf, off + 6);
  pv.df = (ff >>> 14) & 1;
  pv.mf = (ff >>> 13) & 1;
  pv.fragOff = (ff & 0x1fff) << 3;
  pv.ttl = buf[off + 8];
  pv.proto = buf[off + 9];
  pv.ipCsum = rd16(buf, off + 10);
  pv.src = rd32(buf, off + 12);
  pv.dst = rd32(buf, off + 16);
  if (ihl < IPV4_MIN_HDR_LEN) return (pv.status = PARSE_BAD_IHL);
  if (ihl > capLen) return (pv.status = PARSE_TRUNCATED_IP_OPTIONS);
  if (pv.totalLen < ihl) return (pv.status = PARSE_BAD_TOTAL_LENGTH);
  if (pv.totalLen > capLen) return (pv.status = PARSE_TRUNCATED_PACKET);
  pv.capLen = pv.totalLen; // ignore link-layer padding
  // Header checksum: ones' complement sum over the header must be 0xffff.
  if (!headerSummed) {
    let s = 0;
    for (let i = off, e = off + ihl; i < e; i += 2) s += (buf[i] << 8) | buf[i + 1];
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    if (s !== 0xffff) return (pv.status = PARSE_BAD_IP_CHECKSUM);
  }
  pv.l4Off = off + ihl;
  pv.l4Len = pv.totalLen - ihl;
  if (pv.fragOff !== 0) return (pv.status = PARSE_FRAGMENT);
  return (pv.status = parseL4(buf, pv));
}

function parseL4(buf: Uint8Array, pv: PacketView): number {
  const o = pv.l4Off;
  const len = pv.l4Len;
  switch (pv.proto) {
    case PROTO_TCP: {
      if (len < TCP_MIN_HDR_LEN) return PARSE_TRUNCATED_L4;
      pv.sport = rd16(buf, o);
      pv.dport = rd16(buf, o + 2);
      pv.tcpSeq = rd32(buf, o + 4);
      pv.tcpAck = rd32(buf, o + 8);
      const doff = (buf[o + 12] >>> 4) << 2;
      pv.tcpDataOff = doff;
      pv.tcpFlags = buf[o + 13];
      pv.tcpWindow = rd16(buf, o + 14);
      pv.l4Csum = rd16(buf, o + 16);
      if (doff < TCP_MIN_HDR_LEN) return PARSE_BAD_TCP_DATA_OFFSET;
      if (doff > len) return PARSE_TRUNCATED_TCP_OPTIONS;
      pv.payloadOff = o + doff;
      pv.payloadLen = len - doff;
      return PARSE_OK;
    }
    case PROTO_UDP: {
      if (len < UDP_HDR_LEN) return PARSE_TRUNCATED_L4;
      pv.sport = rd16(buf, o);
      pv.dport = rd16(buf, o + 2);
      pv.udpLen = rd16(buf, o + 4);
      pv.l4Csum = rd16(buf, o + 6);
      if (pv.udpLen < UDP_HDR_LEN || pv.udpLen > len) return PARSE_BAD_UDP_LENGTH;
      pv.payloadOff = o + UDP_HDR_LEN;
      pv.payloadLen = pv.udpLen - UDP_HDR_LEN;
      return PARSE_OK;
    }
    case PROTO_ICMP: {
      if (len < ICMP_HDR_LEN) return PARSE_TRUNCATED_L4;
      const t = buf[o];
      pv.icmpType = t;
      pv.icmpCode = buf[o + 1];
      pv.l4Csum = rd16(buf, o + 2);
      pv.payloadOff = o + ICMP_HDR_LEN;
      pv.payloadLen = len - ICMP_HDR_LEN;
      if (isIcmpQueryType(t)) {
        pv.icmpId = rd16(buf, o + 4);
        pv.icmpSeq = rd16(buf, o + 6);
        pv.sport = pv.icmpId;
        return PARSE_OK;
      }
      if (isIcmpErrorType(t)) {
        pv.isIcmpError = 1;
        return parseIcmpInner(buf, pv);
      }
      return PARSE_OK;
    }
    default:
      pv.payloadOff = o;
      pv.payloadLen = len;
      return PARSE_OK;
  }
}

/** The embedded packet of an ICMP error: its IP header plus at least 8 bytes of L4. */
function parseIcmpInner(buf: Uint8Array, pv: PacketView): number {
  const io = pv.l4Off + ICMP_HDR_LEN;
  const avail = pv.l4Len - ICMP_HDR_LEN;
  pv.innerOff = io;
  if (avail < IPV4_MIN_HDR_LEN) return PARSE_ICMP_ERROR_TOO_SHORT;
  const vihl = buf[io];
  const ihl = (vihl & 0x0f) << 2;
  if (vihl >>> 4 !== 4 || ihl < IPV4_MIN_HDR_LEN) return PARSE_ICMP_INNER_MALFORMED;
  pv.innerIhl = ihl;
  pv.innerTotalLen = rd16(buf, io + 2);
  pv.innerProto = buf[io + 9];
  pv.innerSrc = rd32(buf, io + 12);
  pv.innerDst = rd32(buf, io + 16);
  if (avail < ihl + 8) return PARSE_ICMP_ERROR_TOO_SHORT;
  const l4 = io + ihl;
  pv.innerL4Off = l4;
  pv.innerL4Len = avail - ihl;
  switch (pv.innerProto) {
    case PROTO_TCP:
    case PROTO_UDP:
      pv.innerSport = rd16(buf, l4);
      pv.innerDport = rd16(buf, l4 + 2);
      break;
    case PROTO_ICMP:
      pv.innerIcmpType = buf[l4];
      pv.innerIcmpCode = buf[l4 + 1];
      pv.innerIcmpId = rd16(buf, l4 + 4);
      pv.innerSport = pv.innerIcmpId;
      break;
    default:
      break;
  }
  return PARSE_OK;
}
