// The reference NAT gateway (docs/semantics.md "NAT gateway"): a connection table per gateway,
// kept as plain Maps, built to be obviously right. What AWS documents: TCP, UDP and ICMP only;
// source ports 1024-65535; at most `connectionLimit` (AWS: 55,000) simultaneous connections per
// (NAT address, destination IP, destination port, protocol) — further ones fail (ErrorPortAllocation);
// a connection idle for `idleTimeout` (AWS: 350) seconds is gone, and a TCP packet from inside
// that belongs to no connection is answered with an RST; TCP and ICMP fragments are dropped.
// What natlab chooses where AWS is silent is stated in docs/semantics.md and marked here "natlab:".
// Twin of src/core/nat-gateway.ts.

import { F_ACK, F_FIN, F_RST, F_SYN, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { PARSE_OK, type PacketView } from '../packet/parse.ts';
import { formatIpv4 } from '../packet/addr.ts';
import { ICMP_ECHO, ICMP_ECHOREPLY } from '../packet/constants.ts';
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
  NATGW_PRNG_SALT,
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
  natGatewaySecondsLeft,
  type NatGatewayConnection,
} from '../spec/nat-gateway.ts';
import type { NatGateway } from '../spec/scenario.ts';
import { MANIP_DST, MANIP_SRC, natManipPkt } from './mangle.ts';
import { Prng } from './prng.ts';

/** One connection through the gateway. ICMP echo: the id in sport/natPort, dport 0. */
interface Conn {
  proto: number;
  src: number;
  sport: number;
  dst: number;
  dport: number;
  /** Index into NatGateway.addresses of the NAT address used. */
  addr: number;
  natPort: number;
  lastMs: number;
  /** A packet came back from the destination (ConnectionEstablishedCount counted). */
  replied: boolean;
  /** TCP: ended gracefully (an RST, or a FIN each way): not counted as an idle timeout, not active. */
  closed: boolean;
  finOut: boolean;
  finIn: boolean;
}

/** What the gateway did with a packet. */
export interface GatewayVerdict {
  /** REASON_NONE: translated in place, forward it; else the drop reason. */
  reason: number;
  note: string;
  /** An RST the gateway sends back to the packet's source (reason DROP_NATGW_IDLE_TIMEOUT), or null. */
  reset: boolean;
}

function insideKey(proto: number, src: number, sport: number, dst: number, dport: number): string {
  return `${proto}/${src}/${sport}/${dst}/${dport}`;
}
function outsideKey(proto: number, addr: number, natPort: number, dst: number, dport: number): string {
  return `${proto}/${addr}/${natPort}/${dst}/${dport}`;
}
function destKey(proto: number, addr: number, dst: number, dport: number): string {
  return `${proto}/${addr}/${dst}/${dport}`;
}

export class ModelNatGateway {
  /** Connections by inside tuple, in order of last activity (oldest first: the next to expire). */
  private readonly conns = new Map<string, Conn>();
  private readonly byOutside = new Map<string, Conn>();
  private readonly perDest = new Map<string, number>();
  private readonly rng: Prng;
  readonly counters = new Array<number>(NGC_COUNT).fill(0);

  constructor(
    readonly gw: NatGateway,
    seed: number,
  ) {
    this.rng = new Prng((seed ^ NATGW_PRNG_SALT) >>> 0);
  }

  get size(): number {
    return this.conns.size;
  }

  /** Removes the connections idle for idleTimeout seconds or more at nowMs. */
  expire(nowMs: number): void {
    const idleMs = this.gw.idleTimeout * 1000;
    for (const [k, c] of this.conns) {
      if (nowMs < c.lastMs + idleMs) break; // ordered by activity: the rest are younger
      this.conns.delete(k);
      this.byOutside.delete(outsideKey(c.proto, c.addr, c.natPort, c.dst, c.dport));
      const dk = destKey(c.proto, c.addr, c.dst, c.dport);
      const n = (this.perDest.get(dk) ?? 1) - 1;
      if (n === 0) this.perDest.delete(dk);
      else this.perDest.set(dk, n);
      if (c.proto === PROTO_TCP && !c.closed) {
        this.counters[NGC_IDLE_TIMEOUT_COUNT]++;
        this.counters[NGC_ACTIVE_CONNECTION_COUNT]--;
      }
    }
  }

  /** The live connections at nowMs (expired ones removed first), in table order. */
  connections(index: number, nowMs: number): NatGatewayConnection[] {
    this.expire(nowMs);
    const out: NatGatewayConnection[] = [];
    for (const c of this.conns.values()) {
      out.push({
        natGateway: index,
        proto: c.proto,
        src: c.src,
        sport: c.sport,
        dst: c.dst,
        dport: c.dport,
        natIp: this.gw.addresses[c.addr].privateIp,
        natPort: c.natPort,
        timeout: natGatewaySecondsLeft(c.lastMs, this.gw.idleTimeout, nowMs),
        replied: c.replied,
        closed: c.closed,
      });
    }
    return out;
  }

  /** Header checks shared by both directions: NATGW admission (docs/semantics.md "NAT gateway"). */
  private admit(inbound: boolean, pv: PacketView): number {
    const p = pv.proto;
    if (p !== PROTO_TCP && p !== PROTO_UDP && p !== PROTO_ICMP) return DROP_NATGW_PROTOCOL;
    if (pv.mf !== 0 || pv.fragOff !== 0) {
      // AWS: TCP and ICMP fragments are dropped. natlab: the first UDP fragment carries the ports
      // and is translated; later ones (no ports) cannot be mapped without fragment tracking.
      if (p !== PROTO_UDP || pv.fragOff !== 0 || pv.l4Len < 8) return DROP_NATGW_FRAGMENT;
    } else if (pv.status !== PARSE_OK) return DROP_MALFORMED;
    if (p === PROTO_ICMP && pv.icmpType !== (inbound ? ICMP_ECHOREPLY : ICMP_ECHO)) return DROP_NATGW_PROTOCOL;
    if (pv.ttl <= 1) return DROP_TTL_EXCEEDED;
    return REASON_NONE;
  }

  private dropped(reason: number, note: string, reset = false): GatewayVerdict {
    this.counters[NGC_PACKETS_DROP_COUNT]++;
    return { reason, note, reset };
  }

  /** TCP flags seen in one direction: an RST ends the connection, a FIN each way too. */
  private track(c: Conn, flags: number, fromInside: boolean): void {
    if (c.proto !== PROTO_TCP || c.closed) return;
    if ((flags & F_FIN) !== 0) {
      if (fromInside) c.finOut = true;
      else c.finIn = true;
    }
    if ((flags & F_RST) !== 0 || (c.finOut && c.finIn)) {
      c.closed = true;
      this.counters[NGC_ACTIVE_CONNECTION_COUNT]--;
    }
  }

  private touch(c: Conn, nowMs: number): void {
    c.lastMs = nowMs;
    const k = insideKey(c.proto, c.src, c.sport, c.dst, c.dport);
    this.conns.delete(k);
    this.conns.set(k, c);
  }

  /**
   * A packet from inside to be translated (it is not addressed to the gateway). On REASON_NONE
   * the packet's source is now the NAT address and port; TTL not yet decremented.
   */
  outbound(pkt: Uint8Array, pv: PacketView, nowMs: number): GatewayVerdict {
    const g = this.gw;
    this.counters[NGC_BYTES_IN_FROM_SOURCE] += pv.totalLen;
    this.counters[NGC_PACKETS_IN_FROM_SOURCE]++;
    const bad = this.admit(false, pv);
    if (bad !== REASON_NONE) return this.dropped(bad, 'not translatable by a NAT gateway');
    const proto = pv.proto;
    const sport = proto === PROTO_ICMP ? pv.icmpId : pv.sport;
    const dport = proto === PROTO_ICMP ? 0 : pv.dport;
    let c = this.conns.get(insideKey(proto, pv.src, sport, pv.dst, dport));
    let note = '';
    if (!c) {
      if (proto === PROTO_TCP && (pv.tcpFlags & (F_SYN | F_ACK | F_RST)) !== F_SYN) {
        const rst = (pv.tcpFlags & F_RST) === 0;
        return this.dropped(
          DROP_NATGW_IDLE_TIMEOUT,
          `TCP packet of no known connection (idle for ${g.idleTimeout} s or never seen)${rst ? ': RST sent back' : ''}`,
          rst,
        );
      }
      let a = -1;
      for (let k = 0; k < g.addresses.length; k++) {
        if ((this.perDest.get(destKey(proto, k, pv.dst, dport)) ?? 0) < g.connectionLimit) {
          a = k;
          break;
        }
      }
      if (a < 0 || this.conns.size >= NATGW_TABLE_CAPACITY) {
        this.counters[NGC_ERROR_PORT_ALLOCATION]++;
        return this.dropped(
          DROP_NATGW_PORT_ALLOCATION,
          a < 0
            ? `${g.connectionLimit} connections to ${formatIpv4(pv.dst)}:${dport} already use every NAT address`
            : `natlab's table of ${NATGW_TABLE_CAPACITY} connections per NAT gateway is full`,
        );
      }
      // natlab: 'preserve' starts at the client's port, 'random' at a random one; the first port
      // free for this destination, upwards, wrapping within 1024-65535.
      let start =
        g.portSelection === 'preserve'
          ? sport >= NATGW_PORT_MIN
            ? sport - NATGW_PORT_MIN
            : 0
          : this.rng.next() % NATGW_PORT_COUNT;
      let natPort = -1;
      for (let k = 0; k < NATGW_PORT_COUNT; k++) {
        const p = NATGW_PORT_MIN + start;
        if (!this.byOutside.has(outsideKey(proto, a, p, pv.dst, dport))) {
          natPort = p;
          break;
        }
        start = start + 1 === NATGW_PORT_COUNT ? 0 : start + 1;
      }
      // A free port exists: fewer than connectionLimit ≤ 64,512 connections use this destination.
      c = {
        proto,
        src: pv.src,
        sport,
        dst: pv.dst,
        dport,
        addr: a,
        natPort,
        lastMs: nowMs,
        replied: false,
        closed: false,
        finOut: false,
        finIn: false,
      };
      this.conns.set(insideKey(proto, pv.src, sport, pv.dst, dport), c);
      this.byOutside.set(outsideKey(proto, a, natPort, pv.dst, dport), c);
      const dk = destKey(proto, a, pv.dst, dport);
      this.perDest.set(dk, (this.perDest.get(dk) ?? 0) + 1);
      this.counters[NGC_CONNECTION_ATTEMPT_COUNT]++;
      if (proto === PROTO_TCP) this.counters[NGC_ACTIVE_CONNECTION_COUNT]++;
      note = 'new connection: ';
    }
    this.touch(c, nowMs);
    this.track(c, pv.tcpFlags, true);
    const addr = g.addresses[c.addr].privateIp;
    natManipPkt(pkt, 0, { src: addr, dst: pv.dst, sport: c.natPort, dport: pv.dport }, proto, MANIP_SRC);
    this.counters[NGC_BYTES_OUT_TO_DESTINATION] += pv.totalLen;
    this.counters[NGC_PACKETS_OUT_TO_DESTINATION]++;
    return {
      reason: REASON_NONE,
      note: `${note}source ${formatIpv4(pv.src)}:${sport}→${formatIpv4(addr)}:${c.natPort}`,
      reset: false,
    };
  }

  /** A packet addressed to NAT address `addr` (index): the reply side of a connection. */
  inbound(pkt: Uint8Array, pv: PacketView, addr: number, nowMs: number): GatewayVerdict {
    this.counters[NGC_BYTES_IN_FROM_DESTINATION] += pv.totalLen;
    this.counters[NGC_PACKETS_IN_FROM_DESTINATION]++;
    const bad = this.admit(true, pv);
    if (bad !== REASON_NONE) return this.dropped(bad, 'not translatable by a NAT gateway');
    const proto = pv.proto;
    const natPort = proto === PROTO_ICMP ? pv.icmpId : pv.dport;
    const rport = proto === PROTO_ICMP ? 0 : pv.sport;
    const c = this.byOutside.get(outsideKey(proto, addr, natPort, pv.src, rport));
    if (!c)
      return this.dropped(
        DROP_NATGW_NO_CONNECTION,
        `no connection from ${formatIpv4(pv.src)}${proto === PROTO_ICMP ? '' : `:${rport}`} to ${formatIpv4(pv.dst)}:${natPort}`,
      );
    this.touch(c, nowMs);
    if (!c.replied) {
      c.replied = true;
      this.counters[NGC_CONNECTION_ESTABLISHED_COUNT]++;
    }
    this.track(c, pv.tcpFlags, false);
    natManipPkt(pkt, 0, { src: pv.src, dst: c.src, sport: c.sport, dport: c.sport }, proto, MANIP_DST);
    this.counters[NGC_BYTES_OUT_TO_SOURCE] += pv.totalLen;
    this.counters[NGC_PACKETS_OUT_TO_SOURCE]++;
    return {
      reason: REASON_NONE,
      note: `destination ${formatIpv4(pv.dst)}:${natPort}→${formatIpv4(c.src)}:${c.sport}`,
      reset: false,
    };
  }
}
