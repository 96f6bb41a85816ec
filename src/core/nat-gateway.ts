// NAT gateways in the core (docs/semantics.md "NAT gateway", docs/core.md "NAT gateways"): per
// gateway a connection table over shared memory — records, two chained hash indexes (inside
// tuple, outside tuple), per-destination counters (the connection limit), an activity-ordered
// list (the idle timeout is one value per gateway, so the least recently used connection is
// always the next to expire) and the CloudWatch-named counters. Twin of src/model/nat-gateway.ts;
// the same checks in the same order, the same port search, the same random draws.
//
// A scenario with NAT gateways runs on one worker (core/engine.ts): the gateway's connections are
// not partitioned over workers. Slow path only (hop-walk.ts); no allocation per packet.

import type { CompiledScenario } from './compile.ts';
import {
  R_META,
  R_SRC,
  R_DST,
  R_PORTS,
  R_NATPORT,
  R_INEXT,
  R_ONEXT,
  R_PREV,
  R_NEXT,
  R_DEST,
  GW_REC_WORDS,
  D_KEY,
  D_DST,
  D_DPORT,
  D_COUNT,
  D_NEXT,
  GW_DEST_WORDS,
  MB_LIVE,
  MB_REPLIED,
  MB_CLOSED,
  MB_FIN_OUT,
  MB_FIN_IN,
  MB_PROTO_SHIFT,
  MB_ADDR_SHIFT,
  G_HEAD,
  G_TAIL,
  G_FREE,
  G_HWM,
  G_DFREE,
  G_DHWM,
  G_LIVE,
  G_RNG,
  GW_CTL_WORDS,
  GW_BUCKETS,
} from './nat-gateway-layout.ts';
import type { PacketManip } from './manip.ts';
import type { SlowState } from './slow-state.ts';
import {
  F_ACK,
  F_FIN,
  F_RST,
  F_SYN,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../packet/constants.ts';
import { PARSE_OK } from '../packet/parse.ts';
import {
  DROP_MALFORMED,
  DROP_NATGW_FRAGMENT,
  DROP_NATGW_IDLE_TIMEOUT,
  DROP_NATGW_NO_CONNECTION,
  DROP_NATGW_PORT_ALLOCATION,
  DROP_NATGW_PROTOCOL,
  DROP_TTL_EXCEEDED,
  REASON_NONE,
} from '../spec/reasons.ts';
import {
  NATGW_PORT_COUNT,
  NATGW_PORT_MIN,
  NATGW_TABLE_CAPACITY,
  NGC_ACTIVE_CONNECTION_COUNT,
  NGC_BYTES_IN_FROM_DESTINATION,
  NGC_BYTES_IN_FROM_SOURCE,
  NGC_BYTES_OUT_TO_DESTINATION,
  NGC_BYTES_OUT_TO_SOURCE,
  NGC_CONNECTION_ATTEMPT_COUNT,
  NGC_CONNECTION_ESTABLISHED_COUNT,
  NGC_COUNT,
  NGC_ERROR_PORT_ALLOCATION,
  NGC_IDLE_TIMEOUT_COUNT,
  NGC_PACKETS_DROP_COUNT,
  NGC_PACKETS_IN_FROM_DESTINATION,
  NGC_PACKETS_IN_FROM_SOURCE,
  NGC_PACKETS_OUT_TO_DESTINATION,
  NGC_PACKETS_OUT_TO_SOURCE,
} from '../spec/nat-gateway.ts';
import { PRNG_INCREMENT, prngOutput } from '../spec/prng.ts';

function mix(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b1, 0x85ebca6b);
  h = Math.imul(h ^ b ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ c ^ (h >>> 16), 0x27d4eb2f);
  h = Math.imul(h ^ d ^ (h >>> 15), 0x165667b1);
  h ^= h >>> 16;
  return h & (GW_BUCKETS - 1);
}

export class NatGateways {
  private readonly rec: Int32Array;
  private readonly last: Float64Array;
  private readonly dest: Int32Array;
  private readonly hash: Int32Array;
  private readonly ctl: Int32Array;
  private readonly cnt: Float64Array;
  private readonly cap = NATGW_TABLE_CAPACITY;
  /** Set by outbound(): the dropped packet is answered with an RST. */
  reset = false;
  /** Clock of the gateways (absolute ms, never decreasing). */
  private now = 0;

  constructor(
    private readonly c: CompiledScenario,
    sabs: Record<string, SharedArrayBuffer>,
    private readonly st: SlowState,
    private readonly manip: PacketManip,
  ) {
    const n = c.gwCount;
    const s = sabs;
    this.rec = n > 0 ? new Int32Array(s.gwRec) : new Int32Array(0);
    this.last = n > 0 ? new Float64Array(s.gwLast) : new Float64Array(0);
    this.dest = n > 0 ? new Int32Array(s.gwDest) : new Int32Array(0);
    this.hash = n > 0 ? new Int32Array(s.gwHash) : new Int32Array(0);
    this.ctl = n > 0 ? new Int32Array(s.gwCtl) : new Int32Array(0);
    this.cnt = n > 0 ? new Float64Array(s.gwCnt) : new Float64Array(0);
  }

  // ---- clock and expiry -----------------------------------------------------------------------

  /** Moves the gateways' clock to absolute `ms` (never back) and removes connections idle since. */
  expire(ms: number): void {
    if (ms > this.now) this.now = ms;
    const c = this.c;
    for (let g = 0; g < c.gwCount; g++) {
      const cb = g * GW_CTL_WORDS;
      const idle = c.gwIdleMs[g];
      const base = g * this.cap;
      for (let k = 0; k < this.cap; k++) {
        const h = this.ctl[cb + G_HEAD];
        if (h === 0) break;
        const r = base + h - 1;
        if (this.now < this.last[r] + idle) break;
        this.remove(g, r);
      }
    }
  }

  private remove(g: number, r: number): void {
    const rec = this.rec;
    const ro = r * GW_REC_WORDS;
    const meta = rec[ro + R_META];
    const proto = (meta >>> MB_PROTO_SHIFT) & 0xff;
    const addr = (meta >>> MB_ADDR_SHIFT) & 0xff;
    const src = rec[ro + R_SRC];
    const dst = rec[ro + R_DST];
    const ports = rec[ro + R_PORTS];
    const natPort = rec[ro + R_NATPORT];
    const base = g * this.cap;
    // Unlink from both hash chains.
    this.unchain(g, 0, mix(proto, src, dst, ports), r, R_INEXT);
    this.unchain(g, 1, mix(proto | (addr << 8), natPort, dst, ports & 0xffff), r, R_ONEXT);
    // LRU.
    this.lruUnlink(g, r);
    // Destination count.
    const d = rec[ro + R_DEST] - 1;
    const doff = d * GW_DEST_WORDS;
    this.dest[doff + D_COUNT]--;
    if (this.dest[doff + D_COUNT] === 0) {
      this.unchainDest(g, d);
      this.dest[doff + D_NEXT] = this.ctl[g * GW_CTL_WORDS + G_DFREE];
      this.ctl[g * GW_CTL_WORDS + G_DFREE] = d - base + 1;
    }
    const cb = g * GW_CTL_WORDS;
    if (proto === PROTO_TCP && (meta & MB_CLOSED) === 0) {
      this.cnt[g * NGC_COUNT + NGC_IDLE_TIMEOUT_COUNT]++;
      this.cnt[g * NGC_COUNT + NGC_ACTIVE_CONNECTION_COUNT]--;
    }
    rec[ro + R_META] = 0;
    rec[ro + R_INEXT] = this.ctl[cb + G_FREE];
    this.ctl[cb + G_FREE] = r - base + 1;
    this.ctl[cb + G_LIVE]--;
  }

  private unchain(g: number, which: number, bucket: number, r: number, link: number): void {
    const base = g * this.cap;
    const hb = (g * 3 + which) * GW_BUCKETS + bucket;
    let prev = -1;
    let cur = this.hash[hb];
    for (let k = 0; k < this.cap && cur !== 0; k++) {
      const cr = base + cur - 1;
      if (cr === r) {
        const nx = this.rec[cr * GW_REC_WORDS + link];
        if (prev < 0) this.hash[hb] = nx;
        else this.rec[prev * GW_REC_WORDS + link] = nx;
        return;
      }
      prev = cr;
      cur = this.rec[cr * GW_REC_WORDS + link];
    }
  }

  private unchainDest(g: number, d: number): void {
    const base = g * this.cap;
    const doff = d * GW_DEST_WORDS;
    const key = this.dest[doff + D_KEY];
    const hb = (g * 3 + 2) * GW_BUCKETS + mix(key, this.dest[doff + D_DST], this.dest[doff + D_DPORT], 0x5a5a);
    let prev = -1;
    let cur = this.hash[hb];
    for (let k = 0; k < this.cap && cur !== 0; k++) {
      const cd = base + cur - 1;
      if (cd === d) {
        const nx = this.dest[cd * GW_DEST_WORDS + D_NEXT];
        if (prev < 0) this.hash[hb] = nx;
        else this.dest[prev * GW_DEST_WORDS + D_NEXT] = nx;
        return;
      }
      prev = cd;
      cur = this.dest[cd * GW_DEST_WORDS + D_NEXT];
    }
  }

  private lruUnlink(g: number, r: number): void {
    const base = g * this.cap;
    const cb = g * GW_CTL_WORDS;
    const ro = r * GW_REC_WORDS;
    const p = this.rec[ro + R_PREV];
    const n = this.rec[ro + R_NEXT];
    if (p === 0) this.ctl[cb + G_HEAD] = n;
    else this.rec[(base + p - 1) * GW_REC_WORDS + R_NEXT] = n;
    if (n === 0) this.ctl[cb + G_TAIL] = p;
    else this.rec[(base + n - 1) * GW_REC_WORDS + R_PREV] = p;
    this.rec[ro + R_PREV] = 0;
    this.rec[ro + R_NEXT] = 0;
  }

  private lruAppend(g: number, r: number): void {
    const base = g * this.cap;
    const cb = g * GW_CTL_WORDS;
    const t = this.ctl[cb + G_TAIL];
    const ro = r * GW_REC_WORDS;
    this.rec[ro + R_PREV] = t;
    this.rec[ro + R_NEXT] = 0;
    if (t === 0) this.ctl[cb + G_HEAD] = r - base + 1;
    else this.rec[(base + t - 1) * GW_REC_WORDS + R_NEXT] = r - base + 1;
    this.ctl[cb + G_TAIL] = r - base + 1;
  }

  private touch(g: number, r: number): void {
    this.last[r] = this.now;
    const cb = g * GW_CTL_WORDS;
    if (this.ctl[cb + G_TAIL] === r - g * this.cap + 1) return;
    this.lruUnlink(g, r);
    this.lruAppend(g, r);
  }

  // ---- lookups ----------------------------------------------------------------------------------

  private findInside(g: number, proto: number, src: number, dst: number, ports: number): number {
    const base = g * this.cap;
    let cur = this.hash[g * 3 * GW_BUCKETS + mix(proto, src, dst, ports)];
    for (let k = 0; k < this.cap && cur !== 0; k++) {
      const r = base + cur - 1;
      const ro = r * GW_REC_WORDS;
      if (
        ((this.rec[ro + R_META] >>> MB_PROTO_SHIFT) & 0xff) === proto &&
        this.rec[ro + R_SRC] === src &&
        this.rec[ro + R_DST] === dst &&
        this.rec[ro + R_PORTS] === ports
      )
        return r;
      cur = this.rec[ro + R_INEXT];
    }
    return -1;
  }

  /** Connection using NAT address `addr`, port natPort towards (dst, dport), or -1. */
  private findOutside(g: number, proto: number, addr: number, natPort: number, dst: number, dport: number): number {
    const base = g * this.cap;
    let cur = this.hash[(g * 3 + 1) * GW_BUCKETS + mix(proto | (addr << 8), natPort, dst, dport)];
    for (let k = 0; k < this.cap && cur !== 0; k++) {
      const r = base + cur - 1;
      const ro = r * GW_REC_WORDS;
      const meta = this.rec[ro + R_META];
      if (
        ((meta >>> MB_PROTO_SHIFT) & 0xff) === proto &&
        ((meta >>> MB_ADDR_SHIFT) & 0xff) === addr &&
        this.rec[ro + R_NATPORT] === natPort &&
        this.rec[ro + R_DST] === dst &&
        (this.rec[ro + R_PORTS] & 0xffff) === dport
      )
        return r;
      cur = this.rec[ro + R_ONEXT];
    }
    return -1;
  }

  /** Dest record (absolute index) of (proto, addr, dst, dport), or -1. */
  private findDest(g: number, proto: number, addr: number, dst: number, dport: number): number {
    const base = g * this.cap;
    const key = proto | (addr << 8);
    let cur = this.hash[(g * 3 + 2) * GW_BUCKETS + mix(key, dst, dport, 0x5a5a)];
    for (let k = 0; k < this.cap && cur !== 0; k++) {
      const d = base + cur - 1;
      const o = d * GW_DEST_WORDS;
      if (this.dest[o + D_KEY] === key && this.dest[o + D_DST] === dst && this.dest[o + D_DPORT] === dport) return d;
      cur = this.dest[o + D_NEXT];
    }
    return -1;
  }

  // ---- the packet ---------------------------------------------------------------------------------

  /** Admission checks (the model's admit()): REASON_NONE or the drop reason. */
  private admit(inbound: boolean): number {
    const pv = this.st.pv;
    const p = pv.proto;
    if (p !== PROTO_TCP && p !== PROTO_UDP && p !== PROTO_ICMP) return DROP_NATGW_PROTOCOL;
    if (pv.mf !== 0 || pv.fragOff !== 0) {
      if (p !== PROTO_UDP || pv.fragOff !== 0 || pv.l4Len < 8) return DROP_NATGW_FRAGMENT;
    } else if (pv.status !== PARSE_OK) return DROP_MALFORMED;
    if (p === PROTO_ICMP && pv.icmpType !== (inbound ? ICMP_ECHOREPLY : ICMP_ECHO)) return DROP_NATGW_PROTOCOL;
    if (pv.ttl <= 1) return DROP_TTL_EXCEEDED;
    return REASON_NONE;
  }

  private dropped(g: number, reason: number): number {
    this.cnt[g * NGC_COUNT + NGC_PACKETS_DROP_COUNT]++;
    return reason;
  }

  private track(g: number, r: number, flags: number, fromInside: boolean): void {
    const ro = r * GW_REC_WORDS;
    let meta = this.rec[ro + R_META];
    if (((meta >>> MB_PROTO_SHIFT) & 0xff) !== PROTO_TCP || (meta & MB_CLOSED) !== 0) return;
    if ((flags & F_FIN) !== 0) meta |= fromInside ? MB_FIN_OUT : MB_FIN_IN;
    if ((flags & F_RST) !== 0 || (meta & (MB_FIN_OUT | MB_FIN_IN)) === (MB_FIN_OUT | MB_FIN_IN)) {
      meta |= MB_CLOSED;
      this.cnt[g * NGC_COUNT + NGC_ACTIVE_CONNECTION_COUNT]--;
    }
    this.rec[ro + R_META] = meta;
  }

  /**
   * The current frame (not addressed to gateway g) from inside: translated in place (source →
   * NAT address and port) or dropped. Returns REASON_NONE or the drop reason; `reset` says an RST
   * goes back to the sender. TTL is not decremented here.
   */
  outbound(g: number): number {
    const st = this.st;
    const pv = st.pv;
    const c = this.c;
    const cn = g * NGC_COUNT;
    this.reset = false;
    this.cnt[cn + NGC_BYTES_IN_FROM_SOURCE] += pv.totalLen;
    this.cnt[cn + NGC_PACKETS_IN_FROM_SOURCE]++;
    const bad = this.admit(false);
    if (bad !== REASON_NONE) return this.dropped(g, bad);
    const proto = pv.proto;
    const sport = proto === PROTO_ICMP ? pv.icmpId : pv.sport;
    const dport = proto === PROTO_ICMP ? 0 : pv.dport;
    const ports = (sport << 16) | dport | 0;
    let r = this.findInside(g, proto, pv.src | 0, pv.dst | 0, ports);
    if (r < 0) {
      if (proto === PROTO_TCP && (pv.tcpFlags & (F_SYN | F_ACK | F_RST)) !== F_SYN) {
        this.reset = (pv.tcpFlags & F_RST) === 0;
        return this.dropped(g, DROP_NATGW_IDLE_TIMEOUT);
      }
      const nAddr = c.gwAddrStart[g + 1] - c.gwAddrStart[g];
      let a = -1;
      let d = -1;
      for (let k = 0; k < nAddr; k++) {
        d = this.findDest(g, proto, k, pv.dst | 0, dport);
        if (d < 0 || this.dest[d * GW_DEST_WORDS + D_COUNT] < c.gwLimit[g]) {
          a = k;
          break;
        }
      }
      const cb = g * GW_CTL_WORDS;
      if (a < 0 || this.ctl[cb + G_LIVE] >= this.cap) {
        this.cnt[cn + NGC_ERROR_PORT_ALLOCATION]++;
        return this.dropped(g, DROP_NATGW_PORT_ALLOCATION);
      }
      let start = 0;
      if (c.gwPreserve[g] !== 0) start = sport >= NATGW_PORT_MIN ? sport - NATGW_PORT_MIN : 0;
      else {
        const s = (this.ctl[cb + G_RNG] + PRNG_INCREMENT) | 0;
        this.ctl[cb + G_RNG] = s;
        start = prngOutput(s) % NATGW_PORT_COUNT;
      }
      let natPort = -1;
      for (let k = 0; k < NATGW_PORT_COUNT; k++) {
        const p = NATGW_PORT_MIN + start;
        if (this.findOutside(g, proto, a, p, pv.dst | 0, dport) < 0) {
          natPort = p;
          break;
        }
        start = start + 1 === NATGW_PORT_COUNT ? 0 : start + 1;
      }
      r = this.insert(g, proto, a, pv.src | 0, pv.dst | 0, ports, natPort, d);
      this.cnt[cn + NGC_CONNECTION_ATTEMPT_COUNT]++;
      if (proto === PROTO_TCP) this.cnt[cn + NGC_ACTIVE_CONNECTION_COUNT]++;
    }
    this.touch(g, r);
    this.track(g, r, pv.tcpFlags, true);
    const ro = r * GW_REC_WORDS;
    const addr = c.gwAddrPriv[c.gwAddrStart[g] + ((this.rec[ro + R_META] >>> MB_ADDR_SHIFT) & 0xff)];
    const totalLen = pv.totalLen;
    const m = this.manip;
    m.setAddr(0, addr);
    m.setPort(0, this.rec[ro + R_NATPORT]);
    this.cnt[cn + NGC_BYTES_OUT_TO_DESTINATION] += totalLen;
    this.cnt[cn + NGC_PACKETS_OUT_TO_DESTINATION]++;
    return REASON_NONE;
  }

  private insert(
    g: number,
    proto: number,
    a: number,
    src: number,
    dst: number,
    ports: number,
    natPort: number,
    dFound: number,
  ): number {
    const base = g * this.cap;
    const cb = g * GW_CTL_WORDS;
    let r: number;
    const f = this.ctl[cb + G_FREE];
    if (f !== 0) {
      r = base + f - 1;
      this.ctl[cb + G_FREE] = this.rec[r * GW_REC_WORDS + R_INEXT];
    } else {
      r = base + this.ctl[cb + G_HWM];
      this.ctl[cb + G_HWM]++;
    }
    this.ctl[cb + G_LIVE]++;
    let d = dFound;
    const dport = ports & 0xffff;
    if (d < 0) {
      const df = this.ctl[cb + G_DFREE];
      if (df !== 0) {
        d = base + df - 1;
        this.ctl[cb + G_DFREE] = this.dest[d * GW_DEST_WORDS + D_NEXT];
      } else {
        d = base + this.ctl[cb + G_DHWM];
        this.ctl[cb + G_DHWM]++;
      }
      const o = d * GW_DEST_WORDS;
      const key = proto | (a << 8);
      this.dest[o + D_KEY] = key;
      this.dest[o + D_DST] = dst;
      this.dest[o + D_DPORT] = dport;
      this.dest[o + D_COUNT] = 0;
      const hb = (g * 3 + 2) * GW_BUCKETS + mix(key, dst, dport, 0x5a5a);
      this.dest[o + D_NEXT] = this.hash[hb];
      this.hash[hb] = d - base + 1;
    }
    this.dest[d * GW_DEST_WORDS + D_COUNT]++;
    const ro = r * GW_REC_WORDS;
    this.rec[ro + R_META] = MB_LIVE | (proto << MB_PROTO_SHIFT) | (a << MB_ADDR_SHIFT);
    this.rec[ro + R_SRC] = src;
    this.rec[ro + R_DST] = dst;
    this.rec[ro + R_PORTS] = ports;
    this.rec[ro + R_NATPORT] = natPort;
    this.rec[ro + R_DEST] = d + 1;
    const hi = g * 3 * GW_BUCKETS + mix(proto, src, dst, ports);
    this.rec[ro + R_INEXT] = this.hash[hi];
    this.hash[hi] = r - base + 1;
    const ho = (g * 3 + 1) * GW_BUCKETS + mix(proto | (a << 8), natPort, dst, dport);
    this.rec[ro + R_ONEXT] = this.hash[ho];
    this.hash[ho] = r - base + 1;
    this.last[r] = this.now;
    this.lruAppend(g, r);
    return r;
  }

  /** The current frame, addressed to address index `addr` of gateway g: translated back or dropped. */
  inbound(g: number, addr: number): number {
    const st = this.st;
    const pv = st.pv;
    const cn = g * NGC_COUNT;
    this.cnt[cn + NGC_BYTES_IN_FROM_DESTINATION] += pv.totalLen;
    this.cnt[cn + NGC_PACKETS_IN_FROM_DESTINATION]++;
    const bad = this.admit(true);
    if (bad !== REASON_NONE) return this.dropped(g, bad);
    const proto = pv.proto;
    const natPort = proto === PROTO_ICMP ? pv.icmpId : pv.dport;
    const rport = proto === PROTO_ICMP ? 0 : pv.sport;
    const r = this.findOutside(g, proto, addr, natPort, pv.src | 0, rport);
    if (r < 0) return this.dropped(g, DROP_NATGW_NO_CONNECTION);
    this.touch(g, r);
    const ro = r * GW_REC_WORDS;
    if ((this.rec[ro + R_META] & MB_REPLIED) === 0) {
      this.rec[ro + R_META] |= MB_REPLIED;
      this.cnt[cn + NGC_CONNECTION_ESTABLISHED_COUNT]++;
    }
    this.track(g, r, pv.tcpFlags, false);
    const totalLen = pv.totalLen;
    const m = this.manip;
    const sport = this.rec[ro + R_PORTS] >>> 16;
    m.setAddr(1, this.rec[ro + R_SRC] >>> 0);
    if (proto === PROTO_ICMP) m.setPort(0, sport);
    else m.setPort(1, sport);
    this.cnt[cn + NGC_BYTES_OUT_TO_SOURCE] += totalLen;
    this.cnt[cn + NGC_PACKETS_OUT_TO_SOURCE]++;
    return REASON_NONE;
  }
}
