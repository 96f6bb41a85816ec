// One-sided captures: a capture taken on a private host shows the far side's frames addressed to
// the host's *private* address. Replay plays the far side as it would really have behaved: such a
// frame is re-addressed to the public mapping the engine made for its flow (as tcpreplay users do
// by hand with tcprewrite). Each engine's mappings are learned from its own outputs at the internet
// egress (the translated source of the flow's outbound packets), so every engine is replayed
// against its own choices.
//
// Flow keys are the inside host's view: (proto, inside addr, inside port, remote addr, remote port);
// ICMP queries use (1, inside, id, remote, 0). Frames with no learned mapping fall back to the
// static 1:1 mapping of an instance with an Elastic IP, else they are replayed unchanged (and
// counted as unmapped: the IGW will drop them as igw-unknown-dst).
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, isIcmpQueryType } from '../../packet/constants.ts';
import { PARSE_OK, type PacketView } from '../../packet/parse.ts';
import { rd16, rd32 } from '../../packet/bytes.ts';
import { insidePortRawAt, readdressAt, readdressRawAt } from '../../packet/readdress.ts';
import { flowPorts } from './flow-table.ts';

// The byte-level re-addressing lives in packet/readdress.ts (engines re-address in their hand-over too).

export function flowKey(proto: number, inside: number, insidePort: number, remote: number, remotePort: number): string {
  return `${proto}|${inside >>> 0}|${insidePort}|${remote >>> 0}|${remotePort}`;
}

/** A flow key as numbers (flow-table.ts): proto, inside addr, ports (inside << 16 | remote), remote addr. */
export class FlowKey {
  proto = 0;
  inside = 0;
  ports = 0;
  remote = 0;
  set(proto: number, inside: number, insidePort: number, remote: number, remotePort: number): true {
    this.proto = proto;
    this.inside = inside | 0;
    this.ports = flowPorts(insidePort, remotePort);
    this.remote = remote | 0;
    return true;
  }
  /** The string form (flowKey), for reports and sinks. */
  text(): string {
    return flowKey(this.proto, this.inside, this.ports >>> 16, this.remote, this.ports & 0xffff);
  }
}

/** outboundKey as numbers: fills `k`, returns false when the packet makes no mapping. */
export function outboundTuple(pv: PacketView, k: FlowKey): boolean {
  if (pv.status !== PARSE_OK) return false;
  switch (pv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return k.set(pv.proto, pv.src, pv.sport, pv.dst, pv.dport);
    case PROTO_ICMP:
      return isIcmpQueryType(pv.icmpType) ? k.set(PROTO_ICMP, pv.src, pv.icmpId, pv.dst, 0) : false;
    default:
      return false;
  }
}

/** inboundKey as numbers: fills `k`, returns false when the frame belongs to no flow. */
export function inboundTuple(pv: PacketView, k: FlowKey): boolean {
  if (pv.status !== PARSE_OK) return false;
  switch (pv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return k.set(pv.proto, pv.dst, pv.dport, pv.src, pv.sport);
    case PROTO_ICMP:
      if (pv.isIcmpError) {
        if (pv.innerProto === PROTO_TCP || pv.innerProto === PROTO_UDP) {
          if (pv.innerL4Len < 4) return false;
          return k.set(pv.innerProto, pv.innerSrc, pv.innerSport, pv.innerDst, pv.innerDport);
        }
        if (pv.innerProto === PROTO_ICMP && pv.innerL4Len >= 6 && isIcmpQueryType(pv.innerIcmpType)) {
          return k.set(PROTO_ICMP, pv.innerSrc, pv.innerIcmpId, pv.innerDst, 0);
        }
        return false;
      }
      return isIcmpQueryType(pv.icmpType) ? k.set(PROTO_ICMP, pv.dst, pv.icmpId, pv.src, 0) : false;
    default:
      return false;
  }
}

/** The key an outbound packet (sent by an inside host) creates a mapping for, or null. */
export function outboundKey(pv: PacketView): string | null {
  if (pv.status !== PARSE_OK) return null;
  switch (pv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return flowKey(pv.proto, pv.src, pv.sport, pv.dst, pv.dport);
    case PROTO_ICMP:
      return isIcmpQueryType(pv.icmpType) ? flowKey(PROTO_ICMP, pv.src, pv.icmpId, pv.dst, 0) : null;
    default:
      return null;
  }
}

/**
 * The key of the flow an inbound frame (from the far side, addressed to a private address)
 * belongs to, or null. ICMP errors belong to the flow of the packet they quote.
 */
export function inboundKey(pv: PacketView): string | null {
  if (pv.status !== PARSE_OK) return null;
  switch (pv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return flowKey(pv.proto, pv.dst, pv.dport, pv.src, pv.sport);
    case PROTO_ICMP:
      if (pv.isIcmpError) {
        if (pv.innerProto === PROTO_TCP || pv.innerProto === PROTO_UDP) {
          if (pv.innerL4Len < 4) return null;
          return flowKey(pv.innerProto, pv.innerSrc, pv.innerSport, pv.innerDst, pv.innerDport);
        }
        if (pv.innerProto === PROTO_ICMP && pv.innerL4Len >= 6 && isIcmpQueryType(pv.innerIcmpType)) {
          return flowKey(PROTO_ICMP, pv.innerSrc, pv.innerIcmpId, pv.innerDst, 0);
        }
        return null;
      }
      return isIcmpQueryType(pv.icmpType) ? flowKey(PROTO_ICMP, pv.dst, pv.icmpId, pv.src, 0) : null;
    default:
      return null;
  }
}

/**
 * Learned mappings of one engine: flow key -> public address * 65536 + public port. Bounded: at
 * `cap` entries the oldest learned mapping is evicted (and counted); a flow whose mapping was
 * evicted is replayed unmapped.
 */
export class FlowMappings {
  private readonly map = new Map<string, { m: number; t: number }>();
  evicted = 0;
  constructor(readonly cap: number) {}

  get size(): number {
    return this.map.size;
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
  /** Packed mapping (addr * 65536 + port) or -1. */
  get(key: string): number {
    return this.map.get(key)?.m ?? -1;
  }
  /** When the flow last sent an outbound packet the engine forwarded (µs), or -1. */
  lastUs(key: string): number {
    return this.map.get(key)?.t ?? -1;
  }
  /** Records that the flow's outbound packet at `timeUs` was forwarded (mapping unchanged). */
  touch(key: string, timeUs: number): void {
    const e = this.map.get(key);
    if (e) e.t = timeUs;
  }
  set(key: string, addr: number, port: number, timeUs = 0): void {
    const v = (addr >>> 0) * 65536 + (port & 0xffff);
    const e = this.map.get(key);
    if (e && e.m === v) {
      e.t = timeUs;
      return;
    }
    this.map.delete(key);
    if (this.map.size >= this.cap) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evicted++;
    }
    this.map.set(key, { m: v, t: timeUs });
  }
}

/**
 * A copy of `frame` (parsed into `pv` at offset 0) re-addressed to `addr`: the outer destination,
 * and the flow's inside port/id becomes `port` (TCP/UDP destination port, ICMP query id; for an
 * ICMP error the quoted packet's source address and port/id). Every checksum is updated
 * incrementally (RFC 1624), so a checksum that was wrong stays exactly as wrong.
 */
export function readdressFrame(frame: Uint8Array, pv: PacketView, addr: number, port: number): Uint8Array {
  const out = new Uint8Array(frame); // a copy, even when given a Buffer (whose slice is a view)
  readdressAt(out, 0, pv, addr, port);
  return out;
}

/**
 * Flow key and re-addressing for frames whose IPv4 header is sound enough to read but that do
 * not parse fully (cut by the snapshot length, bad IP checksum, truncated L4...): the engines will
 * drop or mark them, but they are still addressed as the far side would have sent them. Only
 * TCP/UDP ports and ICMP query ids that were captured are used; ICMP errors are not re-addressed.
 * Returns the key, or null.
 */
export function inboundKeyRaw(f: Uint8Array): string | null {
  const k = new FlowKey();
  return inboundTupleRaw(f, 0, f.length, k)
    ? flowKey(k.proto, k.inside, k.ports >>> 16, k.remote, k.ports & 0xffff)
    : null;
}

/** inboundKeyRaw as numbers, for the frame at f[base, base + len): fills `k`, returns false for no flow. */
export function inboundTupleRaw(f: Uint8Array, base: number, len: number, k: FlowKey): boolean {
  if (len < 20 || f[base] >>> 4 !== 4) return false;
  const ihl = (f[base] & 15) << 2;
  if (ihl < 20 || len < ihl) return false;
  if ((((f[base + 6] << 8) | f[base + 7]) & 0x1fff) !== 0) return false; // non-first fragment: no L4 header
  const src = rd32(f, base + 12);
  const dst = rd32(f, base + 16);
  const proto = f[base + 9];
  const l4 = base + ihl;
  if ((proto === PROTO_TCP || proto === PROTO_UDP) && len >= ihl + 4)
    return k.set(proto, dst, rd16(f, l4 + 2), src, rd16(f, l4));
  if (proto === PROTO_ICMP && len >= ihl + 6 && isIcmpQueryType(f[l4]))
    return k.set(PROTO_ICMP, dst, rd16(f, l4 + 4), src, 0);
  return false;
}

/** readdressFrame for such frames: only the fields (and checksums) that were captured change. */
export function readdressRaw(frame: Uint8Array, addr: number, port: number): Uint8Array {
  const out = new Uint8Array(frame);
  readdressRawAt(out, 0, out.length, addr, port);
  return out;
}

/** The inside port/id of such a frame (for the static Elastic IP mapping), or -1. */
export function insidePortRaw(f: Uint8Array): number {
  return insidePortRawAt(f, 0, f.length);
}
