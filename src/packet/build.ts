// Packet builders for tests, generators and the model (cold path: these allocate).
// Every builder returns a complete IPv4 packet with correct checksums.

import {
  ETH_HDR_LEN,
  ETHERTYPE_IPV4,
  ETHERTYPE_VLAN,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from './constants.ts';
import { checksumOf, ipv4HeaderChecksum, writeChecksums } from './checksum.ts';
import { PacketView, parseIpv4, PARSE_OK, PARSE_FRAGMENT } from './parse.ts';
import { wr16, wr32 } from './bytes.ts';

export interface Ipv4Opts {
  src: number;
  dst: number;
  proto: number;
  payload: Uint8Array;
  ttl?: number;
  ipId?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (multiple of 8). */
  fragOff?: number;
  tos?: number;
  /** IP options (padded to a multiple of 4 with zeros). */
  options?: Uint8Array;
}

export function buildIpv4(o: Ipv4Opts): Uint8Array {
  const optLen = o.options ? (o.options.length + 3) & ~3 : 0;
  const ihl = 20 + optLen;
  if (ihl > 60) throw new Error(`IPv4 options too long (${optLen} bytes, max 40)`);
  const total = ihl + o.payload.length;
  if (total > 65535) throw new Error(`IPv4 packet too long (${total} bytes)`);
  const b = new Uint8Array(total);
  b[0] = 0x40 | (ihl >>> 2);
  b[1] = o.tos ?? 0;
  wr16(b, 2, total);
  wr16(b, 4, o.ipId ?? 0);
  const frag = ((o.df ? 1 : 0) << 14) | ((o.mf ? 1 : 0) << 13) | (((o.fragOff ?? 0) >>> 3) & 0x1fff);
  wr16(b, 6, frag);
  b[8] = o.ttl ?? 64;
  b[9] = o.proto;
  wr32(b, 12, o.src);
  wr32(b, 16, o.dst);
  if (o.options) b.set(o.options, 20);
  b.set(o.payload, ihl);
  wr16(b, 10, ipv4HeaderChecksum(b, 0, ihl));
  return b;
}

/** Recomputes the IP header and L4 checksums of a whole IPv4 packet in place. */
export function fixChecksums(pkt: Uint8Array): Uint8Array {
  const ihl = (pkt[0] & 0x0f) << 2;
  wr16(pkt, 10, 0);
  wr16(pkt, 10, ipv4HeaderChecksum(pkt, 0, ihl));
  const pv = new PacketView();
  const st = parseIpv4(pkt, 0, pkt.length, pv);
  if (st === PARSE_OK || st === PARSE_FRAGMENT) {
    if (st === PARSE_OK) {
      // UDP with checksum 0 keeps "no checksum"; force a real one by writing 1 first.
      if (pv.proto === PROTO_UDP && pv.l4Csum === 0) return pkt;
      writeChecksums(pkt, pv);
    }
  }
  return pkt;
}

export interface TcpOpts {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  urg?: number;
  options?: Uint8Array;
  payload?: Uint8Array;
  ttl?: number;
  ipId?: number;
  df?: boolean;
  tos?: number;
}

export function buildTcp(o: TcpOpts): Uint8Array {
  const optLen = o.options ? (o.options.length + 3) & ~3 : 0;
  const hl = 20 + optLen;
  if (hl > 60) throw new Error(`TCP options too long (${optLen} bytes, max 40)`);
  const pay = o.payload ?? new Uint8Array(0);
  const seg = new Uint8Array(hl + pay.length);
  wr16(seg, 0, o.sport);
  wr16(seg, 2, o.dport);
  wr32(seg, 4, o.seq ?? 0);
  wr32(seg, 8, o.ack ?? 0);
  seg[12] = (hl >>> 2) << 4;
  seg[13] = o.flags & 0xff;
  wr16(seg, 14, o.window ?? 65535);
  wr16(seg, 18, o.urg ?? 0);
  if (o.options) seg.set(o.options, 20);
  seg.set(pay, hl);
  const pkt = buildIpv4({
    src: o.src,
    dst: o.dst,
    proto: PROTO_TCP,
    payload: seg,
    ttl: o.ttl,
    ipId: o.ipId,
    df: o.df ?? true,
    tos: o.tos,
  });
  return fixChecksums(pkt);
}

export interface UdpOpts {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  payload?: Uint8Array;
  ttl?: number;
  ipId?: number;
  df?: boolean;
  /** Leave the UDP checksum 0 ("no checksum"). */
  noChecksum?: boolean;
}

export function buildUdp(o: UdpOpts): Uint8Array {
  const pay = o.payload ?? new Uint8Array(0);
  const dg = new Uint8Array(8 + pay.length);
  wr16(dg, 0, o.sport);
  wr16(dg, 2, o.dport);
  wr16(dg, 4, dg.length);
  dg.set(pay, 8);
  if (!o.noChecksum) wr16(dg, 6, 1); // placeholder so fixChecksums computes a real one
  const pkt = buildIpv4({ src: o.src, dst: o.dst, proto: PROTO_UDP, payload: dg, ttl: o.ttl, ipId: o.ipId, df: o.df });
  if (o.noChecksum) return pkt;
  const pv = new PacketView();
  parseIpv4(pkt, 0, pkt.length, pv);
  writeChecksums(pkt, pv);
  return pkt;
}

export interface IcmpQueryOpts {
  src: number;
  dst: number;
  type: number;
  code?: number;
  id: number;
  seq?: number;
  payload?: Uint8Array;
  ttl?: number;
  ipId?: number;
}

export function buildIcmpQuery(o: IcmpQueryOpts): Uint8Array {
  const pay = o.payload ?? new Uint8Array(0);
  const m = new Uint8Array(8 + pay.length);
  m[0] = o.type;
  m[1] = o.code ?? 0;
  wr16(m, 4, o.id);
  wr16(m, 6, o.seq ?? 0);
  m.set(pay, 8);
  wr16(m, 2, checksumOf(m, 0, m.length));
  return buildIpv4({ src: o.src, dst: o.dst, proto: PROTO_ICMP, payload: m, ttl: o.ttl, ipId: o.ipId });
}

export function buildIcmpEcho(o: {
  src: number;
  dst: number;
  id: number;
  seq?: number;
  reply?: boolean;
  payload?: Uint8Array;
  ttl?: number;
  ipId?: number;
}): Uint8Array {
  return buildIcmpQuery({ ...o, type: o.reply ? ICMP_ECHOREPLY : ICMP_ECHO });
}

export interface IcmpErrorOpts {
  src: number;
  dst: number;
  type: number;
  code: number;
  /** The offending IPv4 packet (as the error's sender received it). */
  quoted: Uint8Array;
  /** Bytes of the quoted packet to include; default its IP header + 8 (RFC 792). */
  quoteLen?: number;
  /** The 4 bytes after the checksum (unused / pointer / next-hop MTU), as a uint32. */
  rest?: number;
  ttl?: number;
  ipId?: number;
}

export function buildIcmpError(o: IcmpErrorOpts): Uint8Array {
  const ihl = (o.quoted[0] & 0x0f) << 2;
  const qlen = Math.min(o.quoteLen ?? ihl + 8, o.quoted.length);
  const m = new Uint8Array(8 + qlen);
  m[0] = o.type;
  m[1] = o.code;
  wr32(m, 4, o.rest ?? 0);
  m.set(o.quoted.subarray(0, qlen), 8);
  wr16(m, 2, checksumOf(m, 0, m.length));
  return buildIpv4({ src: o.src, dst: o.dst, proto: PROTO_ICMP, payload: m, ttl: o.ttl, ipId: o.ipId });
}

export interface EthOpts {
  src?: Uint8Array | string;
  dst?: Uint8Array | string;
  vlan?: number;
}

function mac(m: Uint8Array | string | undefined, dflt: string): Uint8Array {
  if (m instanceof Uint8Array) return m;
  const t = m ?? dflt;
  const parts = t.split(':');
  if (parts.length !== 6) throw new Error(`invalid MAC address '${t}'`);
  return Uint8Array.from(
    parts.map((p) => {
      const v = parseInt(p, 16);
      if (!/^[0-9a-fA-F]{1,2}$/.test(p)) throw new Error(`invalid MAC address '${t}'`);
      return v;
    }),
  );
}

/** Wraps an IPv4 packet in Ethernet II (optionally one 802.1Q tag). */
export function buildEthernet(ip: Uint8Array, o: EthOpts = {}): Uint8Array {
  const tag = o.vlan !== undefined ? 4 : 0;
  const f = new Uint8Array(ETH_HDR_LEN + tag + ip.length);
  f.set(mac(o.dst, '02:00:00:00:00:02'), 0);
  f.set(mac(o.src, '02:00:00:00:00:01'), 6);
  if (tag) {
    wr16(f, 12, ETHERTYPE_VLAN);
    wr16(f, 14, (o.vlan ?? 0) & 0x0fff);
    wr16(f, 16, ETHERTYPE_IPV4);
  } else wr16(f, 12, ETHERTYPE_IPV4);
  f.set(ip, ETH_HDR_LEN + tag);
  return f;
}
