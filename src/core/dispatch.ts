// Which worker owns a packet: a pure function of the frame bytes, its ingress point and the
// compiled scenario (docs/core.md "Dataplane: dispatch"). VPP NAT44-ED style: each worker owns
// the external ports p with p % W == w of every NAT instance (TCP/UDP ports, ICMP ids) and the
// sessions that use them.
//
//  - From an instance (outbound): the first NAT instance T on the way (one route lookup); key =
//    the source port (ICMP: the id), so Linux port preservation lands on the preserved port's
//    owner and a worker that must search picks only ports it owns.
//  - From the internet (inbound, after the IGW): key = the destination port / id (the NAT side).
//  - DNAT port forwarding: an inbound packet that T's PREROUTING chain would DNAT is keyed by its
//    source port (the remote port), a packet from a DNAT target address/port by its destination
//    port — the reply's destination port is the remote port, which DNAT never changes (and a
//    POSTROUTING SNAT on top keeps it, or picks a port whose reply comes back here) — so
//    `--dport 8080 -j DNAT --to :80` replies (from :80) reach the owner of the :8080 session.
//  - ICMP errors: the quoted packet, inverted (the direction the error travels), keyed as above.
//  - Other protocols: a hash of the remote address.
// The dataplane's port choice only accepts ports whose reply this function sends to the same
// worker (src/core/nat-port-search.ts, PortSearch.ownerOk), so the rule holds for searched ports too.

import {
  ruleMatch,
  routeLookup,
  instanceByPrivate,
  eipIndex,
  CH_COUNT,
  CH_PRE,
  RT_ENI,
  RT_LOCAL,
  TK_DNAT,
  type CompiledScenario,
} from './compile.ts';
import { NF_NAT_RANGE_PROTO_SPECIFIED } from '../spec/scenario.ts';
import { rd16, rd32 } from '../packet/bytes.ts';

export function mixEndpoint(addr: number, port: number): number {
  let h = Math.imul(addr ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(port + 0x7f4a7c15, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 13;
  return h >>> 0;
}

/** True if (addr, port) is inside the target range of a PREROUTING DNAT rule of NAT slot `slot`. */
export function isDnatTarget(c: CompiledScenario, slot: number, proto: number, addr: number, port: number): boolean {
  const ci = slot * CH_COUNT + CH_PRE;
  for (let k = c.chainStart[ci], e = c.chainStart[ci + 1]; k < e; k++) {
    if (c.rKind[k] !== TK_DNAT) continue;
    if (c.rProtoMode[k] === 1 && c.rProto[k] !== 0 && c.rProto[k] !== proto) continue;
    if (addr < c.rAddrLo[k] || addr > c.rAddrHi[k]) continue;
    if ((c.rFlags[k] & NF_NAT_RANGE_PROTO_SPECIFIED) !== 0 && (port < c.rPortLo[k] || port > c.rPortHi[k])) continue;
    return true;
  }
  return false;
}

/** True if T's PREROUTING chain would DNAT this (inbound, post-IGW) packet. */
export function wouldDnat(
  c: CompiledScenario,
  slot: number,
  proto: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
): boolean {
  if (c.chainStart[slot * CH_COUNT + CH_PRE] === c.chainStart[slot * CH_COUNT + CH_PRE + 1]) return false;
  const k = ruleMatch(c, slot, CH_PRE, proto, src, dst, sport, dport);
  return k >= 0 && c.rKind[k] === TK_DNAT;
}

function portKey(W: number, port: number): number {
  return port % W;
}

/** Owner of a packet arriving from the internet at NAT slot `slot` (tuple after the IGW). */
export function ownerInbound(
  c: CompiledScenario,
  W: number,
  slot: number,
  proto: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
): number {
  if (proto === 6 || proto === 17) {
    if (slot >= 0 && wouldDnat(c, slot, proto, src, dst, sport, dport)) return portKey(W, sport);
    return portKey(W, dport);
  }
  if (proto === 1) return portKey(W, sport); // ICMP query: sport carries the id
  return mixEndpoint(src, 0) % W;
}

/** Owner of a packet sent by an instance towards NAT slot `slot` (or -1: no NAT on the way). */
export function ownerOutbound(
  c: CompiledScenario,
  W: number,
  slot: number,
  proto: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
): number {
  if (proto === 6 || proto === 17) {
    if (slot >= 0 && isDnatTarget(c, slot, proto, src, sport)) return portKey(W, dport);
    return portKey(W, sport);
  }
  if (proto === 1) return portKey(W, sport);
  return mixEndpoint(dst, 0) % W;
}

/** NAT slot of the first instance a packet from point `ingress` to `dst` reaches, or -1. */
export function firstNatSlot(c: CompiledScenario, ingress: number, dst: number): number {
  if (ingress === 0) {
    const e = eipIndex(c, dst);
    return e < 0 ? -1 : c.instNat[c.eipInst[e]];
  }
  const s = ingress - 1;
  if (s < 0 || s >= c.nInst) return -1;
  const r = routeLookup(c, c.instRt[s], dst);
  if (r < 0) return -1;
  const kind = c.rtKind[r];
  if (kind === RT_ENI) return c.rtInst[r] >= 0 ? c.instNat[c.rtInst[r]] : -1;
  if (kind === RT_LOCAL) {
    const t = instanceByPrivate(c, dst);
    return t < 0 ? -1 : c.instNat[t];
  }
  return -1;
}

/**
 * The worker that owns this frame (an IPv4 packet at buf[off..off+len)) entering at `ingress`.
 * Malformed frames go to worker 0 (they only touch counters).
 */
export function dispatchWorker(
  c: CompiledScenario,
  workers: number,
  buf: Uint8Array,
  off: number,
  len: number,
  ingress: number,
): number {
  const W = workers | 0;
  if (W <= 1) return 0;
  if (len < 20 || buf[off] >>> 4 !== 4) return 0;
  const ihl = (buf[off] & 15) << 2;
  if (ihl < 20 || ihl > len) return 0;
  const proto = buf[off + 9];
  const src = rd32(buf, off + 12);
  let dst = rd32(buf, off + 16);
  const l4 = off + ihl;
  const l4len = Math.min(len, rd16(buf, off + 2)) - ihl;
  if ((rd16(buf, off + 6) & 0x1fff) !== 0) return mixEndpoint(ingress === 0 ? src : dst, 0) % W;
  let slot: number;
  if (ingress === 0) {
    const e = eipIndex(c, dst);
    slot = e < 0 ? -1 : c.instNat[c.eipInst[e]];
    if (e >= 0) dst = c.instPriv[c.eipInst[e]];
  } else {
    slot = firstNatSlot(c, ingress, dst);
  }
  let sport = 0;
  let dport = 0;
  if (proto === 6 || proto === 17) {
    if (l4len < 4) return 0;
    sport = rd16(buf, l4);
    dport = rd16(buf, l4 + 2);
  } else if (proto === 1) {
    if (l4len < 8) return 0;
    const t = buf[l4];
    if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) {
      // ICMP error: key by the quoted packet, inverted.
      const q = l4 + 8;
      if (l4len < 28 || buf[q] >>> 4 !== 4) return 0;
      const qihl = (buf[q] & 15) << 2;
      if (qihl < 20 || l4len < 8 + qihl + 8) return 0;
      const qproto = buf[q + 9];
      let qsrc = rd32(buf, q + 12);
      const qdst = rd32(buf, q + 16);
      const ql4 = q + qihl;
      let qsport = 0;
      let qdport = 0;
      if (qproto === 6 || qproto === 17) {
        qsport = rd16(buf, ql4);
        qdport = rd16(buf, ql4 + 2);
      } else if (qproto === 1) {
        qsport = rd16(buf, ql4 + 4);
        qdport = qsport;
      }
      if (ingress === 0) {
        // The quoted packet left through the IGW: its source is an EIP; map it back.
        const e = eipIndex(c, qsrc);
        if (e >= 0) qsrc = c.instPriv[c.eipInst[e]];
        return ownerInbound(c, W, slot, qproto, qdst, qsrc, qdport, qsport);
      }
      return ownerOutbound(c, W, slot, qproto, qdst, qsrc, qdport, qsport);
    }
    sport = rd16(buf, l4 + 4);
  }
  if (ingress === 0) return ownerInbound(c, W, slot, proto, src, dst, sport, dport);
  return ownerOutbound(c, W, slot, proto, src, dst, sport, dport);
}

/**
 * dispatchWorker for one engine's compiled scenario and worker count, with the common case
 * (an unfragmented TCP/UDP packet with a 20-byte header, no DNAT rule at its NAT instance) done in
 * a few loads: the main thread runs it for every packet of a batch when W > 1 (docs/core.md
 * "Engine adapter"). Every other packet goes through dispatchWorker; the result is always the same
 * (test/core/dispatch.test.ts).
 */
export class Dispatcher {
  /** Per NAT slot: its PREROUTING chain has a DNAT rule (the port key then depends on the rules). */
  private readonly dnat: Uint8Array;
  /** W - 1 when W is a power of two (port & mask), else -1 (port % W). */
  private readonly mask: number;

  constructor(
    private readonly c: CompiledScenario,
    private readonly W: number,
  ) {
    this.dnat = new Uint8Array(Math.max(1, c.natCount));
    for (let slot = 0; slot < c.natCount; slot++) {
      const ci = slot * CH_COUNT + CH_PRE;
      for (let k = c.chainStart[ci], e = c.chainStart[ci + 1]; k < e; k++)
        if (c.rKind[k] === TK_DNAT) this.dnat[slot] = 1;
    }
    this.mask = (W & (W - 1)) === 0 ? W - 1 : -1;
  }

  /** The worker that owns the frame buf[off, off + len) entering at `ingress` (= dispatchWorker). */
  owner(buf: Uint8Array, off: number, len: number, ingress: number): number {
    const W = this.W;
    if (W <= 1) return 0;
    const proto = buf[off + 9];
    if (
      len < 24 ||
      buf[off] !== 0x45 ||
      (proto !== 6 && proto !== 17) ||
      (((buf[off + 6] & 0x1f) << 8) | buf[off + 7]) !== 0 ||
      ((buf[off + 2] << 8) | buf[off + 3]) < 24
    )
      return dispatchWorker(this.c, W, buf, off, len, ingress);
    const c = this.c;
    const dst = ((buf[off + 16] << 24) | (buf[off + 17] << 16) | (buf[off + 18] << 8) | buf[off + 19]) >>> 0;
    let port: number;
    if (ingress === 0) {
      const e = eipIndex(c, dst);
      const slot = e < 0 ? -1 : c.instNat[c.eipInst[e]];
      if (slot >= 0 && this.dnat[slot] !== 0) return dispatchWorker(c, W, buf, off, len, ingress);
      port = (buf[off + 22] << 8) | buf[off + 23];
    } else {
      const slot = firstNatSlot(c, ingress, dst);
      if (slot >= 0 && this.dnat[slot] !== 0) return dispatchWorker(c, W, buf, off, len, ingress);
      port = (buf[off + 20] << 8) | buf[off + 21];
    }
    return this.mask >= 0 ? port & this.mask : port % W;
  }
}
