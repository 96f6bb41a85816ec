// The fast core's per-worker dataplane (single-threaded; one instance per worker thread).
//
// processBatch runs every packet of the worker's share through docs/semantics.md:
//  - fast path (this file, fastPath): an established session (TCP ESTABLISHED + ASSURED, or an
//    ASSURED UDP stream) whose direction has a composed path recorded: check the IPv4 header
//    (IHL 5, no fragment, checksum), verify the L4 checksum, one flow-table lookup, apply the
//    whole path's rewrite (NAT + TTL − k + IGW static NAT, checksums updated incrementally with
//    one combined delta), refresh the timer (one store), write the output copy. No allocation.
//  - everything else: the slow path (src/core/dataplane-slow.ts): the full hop-by-hop walk with
//    conntrack, NAT rules, get_unique_tuple, ICMP errors, TTL exceeded, table full; it records a
//    composed path per session direction for the fast path.

import type { CoreShared, BatchIO } from './layout.ts';
import {
  M_ASSURED, M_PATH_O, M_PATH_R, M_STATE_MASK, M_STATE_SHIFT, S_EXPIRY, S_META, S_PATH, TCP_ESTABLISHED, C_NOW,
} from './layout.ts';
import { TO_ESTABLISHED, TO_UDP_STREAM, routeLookup, RT_ENI, RT_LOCAL } from './compile.ts';
import { ICMP_ERROR_MAX_LEN } from '../spec/timeouts.ts';
import { CT_ESTABLISHED, FATE_DELIVERED, REASON_NONE } from '../spec/reasons.ts';
import { SlowPath } from './dataplane-slow.ts';

export class Dataplane extends SlowPath {
  /** Packets that took the fast path / the slow path (statistics, this thread only). */
  fastCount = 0;
  slowCount = 0;
  private readonly tmoEst: number;
  private readonly tmoUdpStream: number;
  private readonly checksumOn: boolean;
  /** Per ingress point: the NAT slot reached directly for any destination (-2: look up). */
  private readonly eipAddr: Uint32Array;
  private readonly eipSlot: Int32Array;
  private readonly eipPriv: Uint32Array;

  constructor(shared: CoreShared, workerIndex: number) {
    super(shared, workerIndex);
    const c = this.c;
    this.tmoEst = c.tmo[TO_ESTABLISHED];
    this.tmoUdpStream = c.tmo[TO_UDP_STREAM];
    this.checksumOn = c.checksum !== 0;
    this.eipAddr = c.eipAddr;
    this.eipSlot = new Int32Array(c.eipCount);
    this.eipPriv = new Uint32Array(c.eipCount);
    for (let e = 0; e < c.eipCount; e++) {
      this.eipSlot[e] = c.instNat[c.eipInst[e]];
      this.eipPriv[e] = c.instPriv[c.eipInst[e]];
    }
  }

  /** Process packets idx[first..first+count) of the batch, in order. Writes results into io. */
  processBatch(io: BatchIO, idx: Int32Array, first: number, count: number): void {
    let now = 0;
    for (let k = first, e = first + count; k < e; k++) {
      const i = idx[k];
      now = io.timeMs[i];
      if (!this.fastPath(io, i, now)) {
        this.slowCount++;
        this.processSlow(io, i, now);
      } else {
        this.fastCount++;
      }
    }
    if (count > 0) {
      this.ctl[this.cBase + C_NOW] = now;
      this.wheelAdvance(now, count + 64);
    }
  }

  /** Advance the clock to nowMs with no traffic: bounded incremental expiry of this worker's sessions. */
  advance(nowMs: number): void {
    this.ctl[this.cBase + C_NOW] = nowMs;
    this.wheelAdvance(nowMs, 1 << 16);
  }

  /** NAT slot reached directly from `ingress` for `dst` (frame dst for instance points). */
  private slotFor(ingress: number, dst: number): number {
    const c = this.c;
    const s = ingress - 1;
    if (s >= c.nInst) return -1;
    const r = routeLookup(c, c.instRt[s], dst);
    if (r < 0) return -1;
    const kind = c.rtKind[r];
    if (kind === RT_ENI) return c.instNat[c.rtInst[r]];
    if (kind === RT_LOCAL) {
      for (let t = 0; t < c.nInst; t++) if (c.instPriv[t] === dst) return c.instNat[t];
    }
    return -1;
  }

  /** The established-session fast path; false = let the slow path handle the packet. */
  private fastPath(io: BatchIO, i: number, now: number): boolean {
    const b = io.inArena;
    const off = io.inOff[i];
    const len = io.inLen[i];
    if (len < 28 || b[off] !== 0x45) return false;
    if (((b[off + 2] << 8) | b[off + 3]) !== len) return false;
    if (((b[off + 6] & 0x3f) | b[off + 7]) !== 0) return false;
    const proto = b[off + 9];
    if (proto !== 6 && proto !== 17) return false;
    // IPv4 header checksum.
    let s = 0;
    for (let k = off; k < off + 20; k += 2) s += (b[k] << 8) | b[k + 1];
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    if (s !== 0xffff) return false;
    const ttl = b[off + 8];
    const srcHi = (b[off + 12] << 8) | b[off + 13];
    const srcLo = (b[off + 14] << 8) | b[off + 15];
    const dstHi = (b[off + 16] << 8) | b[off + 17];
    const dstLo = (b[off + 18] << 8) | b[off + 19];
    const l4 = off + 20;
    const l4len = len - 20;
    const sport = (b[l4] << 8) | b[l4 + 1];
    const dport = (b[l4 + 2] << 8) | b[l4 + 3];
    let csumOff: number;
    if (proto === 6) {
      if (l4len < 20) return false;
      const doff = (b[l4 + 12] >>> 4) << 2;
      if (doff < 20 || doff > l4len) return false;
      const f = b[l4 + 13] & 0x37;
      if (f !== 0x10 && f !== 0x30) return false; // ACK or ACK+URG (PSH/ECE/CWR masked)
      csumOff = l4 + 16;
    } else {
      const ulen = (b[l4 + 4] << 8) | b[l4 + 5];
      if (ulen < 8 || ulen > l4len) return false;
      csumOff = l4 + 6;
    }
    const l4csum = (b[csumOff] << 8) | b[csumOff + 1];
    if (this.checksumOn && !(proto === 17 && l4csum === 0)) {
      let c = srcHi + srcLo + dstHi + dstLo + proto + l4len;
      const end = l4 + (l4len & ~1);
      let k = l4;
      for (; k < end; k += 2) c += (b[k] << 8) | b[k + 1];
      if (l4len & 1) c += b[k] << 8;
      c = (c & 0xffff) + (c >>> 16);
      c = (c & 0xffff) + (c >>> 16);
      if (c !== 0xffff) return false;
    }
    const ingress = io.ingress[i];
    let src = ((srcHi << 16) | srcLo) >>> 0;
    let dst = ((dstHi << 16) | dstLo) >>> 0;
    let slot = -1;
    if (ingress === 0) {
      const ea = this.eipAddr;
      for (let e = 0; e < ea.length; e++) {
        if (ea[e] === dst) {
          slot = this.eipSlot[e];
          dst = this.eipPriv[e];
          break;
        }
      }
    } else {
      slot = this.slotFor(ingress, dst);
    }
    if (slot < 0) return false;
    const local = this.lookup(slot, proto, src, dst, ((sport << 16) | dport) >>> 0);
    if (local < 0) return false;
    const ses = this.ses;
    const o = this.rec(local);
    const meta = ses[o + S_META];
    if (now >= ses[o + S_EXPIRY] || (meta & M_ASSURED) === 0) return false;
    if (proto === 6 && ((meta >>> M_STATE_SHIFT) & M_STATE_MASK) !== TCP_ESTABLISHED) return false;
    const kind = this.hitKind;
    if ((meta & (kind === 0 ? M_PATH_O : M_PATH_R)) === 0) return false;
    const path = kind === 0 ? ses[o + S_PATH] & 0xffff : ses[o + S_PATH] >>> 16;
    if ((path & 31) !== ingress) return false;
    const tdec = (path >>> 10) & 3;
    if (tdec !== 0 && ttl <= tdec) return false;
    const egress = (path >>> 5) & 31;
    const eip = path >>> 12;
    // Output tuple = invert(the other direction's tuple), then the IGW's static NAT.
    const ot = o + (1 - kind) * 3;
    let nsrc = ses[ot + 1];
    const ndst = ses[ot];
    const np = ses[ot + 2];
    const nsport = np & 0xffff;
    const ndport = np >>> 16;
    if (eip !== 0) nsrc = this.eipAddr[eip - 1];
    // Refresh the timer: the same timeout as before, so the expiry only grows (wheel invariant).
    ses[o + S_EXPIRY] = now + (proto === 6 ? this.tmoEst : this.tmoUdpStream);
    // Copy and rewrite into the output arena.
    const ob = io.outArena;
    const oo = off + ICMP_ERROR_MAX_LEN * i;
    for (let k = 0; k < len; k++) ob[oo + k] = b[off + k];
    src = (~srcHi & 0xffff) + (~srcLo & 0xffff) + (~dstHi & 0xffff) + (~dstLo & 0xffff) +
      (nsrc >>> 16) + (nsrc & 0xffff) + (ndst >>> 16) + (ndst & 0xffff);
    // IP header checksum: addresses + TTL (−k on the TTL/proto word is the constant ~(k << 8)).
    let ipd = src;
    if (tdec !== 0) {
      ipd += 0xffff - (tdec << 8);
      ob[oo + 8] = ttl - tdec;
    }
    ipd = (ipd & 0xffff) + (ipd >>> 16);
    ipd = (ipd & 0xffff) + (ipd >>> 16);
    let ic = (~((b[off + 10] << 8) | b[off + 11]) & 0xffff) + ipd;
    ic = (ic & 0xffff) + (ic >>> 16);
    ic = (ic & 0xffff) + (ic >>> 16);
    ic = ~ic & 0xffff;
    ob[oo + 10] = ic >>> 8;
    ob[oo + 11] = ic & 0xff;
    ob[oo + 12] = nsrc >>> 24;
    ob[oo + 13] = (nsrc >>> 16) & 0xff;
    ob[oo + 14] = (nsrc >>> 8) & 0xff;
    ob[oo + 15] = nsrc & 0xff;
    ob[oo + 16] = ndst >>> 24;
    ob[oo + 17] = (ndst >>> 16) & 0xff;
    ob[oo + 18] = (ndst >>> 8) & 0xff;
    ob[oo + 19] = ndst & 0xff;
    const ol4 = oo + 20;
    ob[ol4] = nsport >>> 8;
    ob[ol4 + 1] = nsport & 0xff;
    ob[ol4 + 2] = ndport >>> 8;
    ob[ol4 + 3] = ndport & 0xff;
    if (!(proto === 17 && l4csum === 0)) {
      let d = src + (~sport & 0xffff) + (~dport & 0xffff) + nsport + ndport;
      d = (d & 0xffff) + (d >>> 16);
      d = (d & 0xffff) + (d >>> 16);
      let c = (~l4csum & 0xffff) + d;
      c = (c & 0xffff) + (c >>> 16);
      c = (c & 0xffff) + (c >>> 16);
      c = ~c & 0xffff;
      if (proto === 17 && c === 0) c = 0xffff;
      const co = oo + (csumOff - off);
      ob[co] = c >>> 8;
      ob[co + 1] = c & 0xff;
    }
    const slotOut = i * 2;
    io.outOff[slotOut] = oo;
    io.outLen[slotOut] = len;
    io.outEgress[slotOut] = egress;
    io.outFirst[i] = slotOut;
    io.outCount[i] = 1;
    io.fate[i] = FATE_DELIVERED;
    io.reason[i] = REASON_NONE;
    io.detail[i] = 0;
    io.ct[i] = CT_ESTABLISHED;
    return true;
  }
}
