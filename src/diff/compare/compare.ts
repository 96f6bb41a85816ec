// Differential comparison of two engines' results on the same input: verdicts (fate, reason,
// detail, ct), outputs (count, egress, bytes) and, at the end, conntrack tables and nat counters.
//
// Frames are compared byte for byte up to exactly three tolerances, each visible in the report:
//  1. A consistent renaming of the ports / ICMP ids an engine chose (PortRenaming): a bijection per
//     (NAT address, proto, peer address, peer port) — the space in which Linux guarantees reply-tuple
//     uniqueness — stable for the life of a session, both ports in the same allowed range. The
//     renamed frame must then be byte-identical, checksums included (updated incrementally).
//  2. The IP id of packets an engine generated itself (ICMP errors: the kernel's is unpredictable).
//  3. Per-engine output normalisers (the kernel oracle's extra Linux hops), always listed in `notes`.
// Cold path: allocation is fine here.

import type { NatGatewayConnection, NatGatewayCounters } from '../../spec/nat-gateway.ts';
import type {
  ConntrackEntry,
  CtTuple,
  Engine,
  DifferenceFacts,
  InputPacket,
  NatRuleCounter,
  OutputFrame,
  OutputNormaliser,
  PacketResult,
} from '../../spec/engine.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { NF_NAT_RANGE_PROTO_SPECIFIED, NAT_CHAINS, pointName } from '../../spec/scenario.ts';
import { CT_NAMES, CT_NEW, DROP_KERNEL_UNSEEN, FATE_DELIVERED, reasonName } from '../../spec/reasons.ts';
import { formatConntrackLine } from '../../spec/conntrack-format.ts';
import {
  PacketView,
  parseIpv4,
  PARSE_BAD_TCP_DATA_OFFSET,
  PARSE_BAD_UDP_LENGTH,
  PARSE_OK,
  PARSE_STATUS_NAMES,
  PARSE_TRUNCATED_L4,
  PARSE_TRUNCATED_PACKET,
  PARSE_TRUNCATED_TCP_OPTIONS,
} from '../../packet/parse.ts';
import { csumReplace16, udpCsumReplace16 } from '../../packet/checksum.ts';
import { describePacket } from '../../packet/format.ts';
import { formatIpv4 } from '../../packet/addr.ts';
import {
  ICMP_ADDRESS,
  ICMP_ECHO,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  isIcmpErrorFrame,
  isIcmpQueryType,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../../packet/constants.ts';
import { rd16, wr16 } from '../../packet/bytes.ts';
import { PortTable, SIDE_A2B, SIDE_B2A } from './port-table.ts';

// ---------------------------------------------------------------------------------------------
// Public types

export interface EngineRun {
  engine: string;
  results: PacketResult[];
  conntrack?: ConntrackEntry[];
  counters?: NatRuleCounter[];
  /** Applied to this engine's output frames before comparison (kernel oracle hops); listed in notes. */
  normaliser?: OutputNormaliser;
}

export type { OutputNormaliser };

export interface Difference {
  /** Input packet index (0-based), or -1 for end-of-run state (conntrack, counters). */
  index: number;
  /** fate | reason | detail | ct | output-count | egress | frame | renaming | conntrack | counters | result-count */
  kind: string;
  engines: [string, string];
  message: string;
}

export interface CompareOptions {
  /** Scenario (recommended): names points, maps Elastic IPs to private IPs, knows --to-ports ranges. */
  scenario?: Scenario | null;
  /** Compare conntrack timeouts exactly (true, default), within a tolerance in seconds, or not (false). */
  timeouts?: boolean | number;
  /** Stop collecting after this many differences (default 100). */
  maxDifferences?: number;
}

export interface CompareResult {
  equal: boolean;
  differences: Difference[];
  /** Tolerances applied (normalisers, renamings learnt): the report prints them. */
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Port classes (nf_nat_core.c: ports keep their class when no range is given)

function portClass(p: number): number {
  return p < 512 ? 0 : p < 1024 ? 1 : 2;
}

const REQUEST_TYPES = new Set([ICMP_ECHO, ICMP_TIMESTAMP, ICMP_INFO_REQUEST, ICMP_ADDRESS]);

const ROLE_SRC = 0;
const ROLE_DST = 1;
const ROLE_INNER_SRC = 2;
const ROLE_INNER_DST = 3;

/** One port (or ICMP id) field of a frame and the endpoint it belongs to. */
interface Endpoint {
  /** ROLE_SRC | ROLE_DST | ROLE_INNER_SRC | ROLE_INNER_DST */
  role: number;
  proto: number;
  addr: number;
  port: number;
  /** The other end of the same (inner or outer) packet; its port is 0 for ICMP. */
  otherAddr: number;
  otherPort: number;
  /** Byte offset of the 16-bit port/id field. */
  off: number;
  /** Offset of the checksum covering the field and how to update it (-1: none). */
  csumOff: number;
  csumUdp: boolean;
  /** For inner fields: offset of the outer ICMP checksum (-1 otherwise). */
  outerCsumOff: number;
}

/**
 * A frame's port/id fields (at most two), filled in place by endpointsOf: each caller owns one
 * list, so finding a frame's endpoints allocates nothing.
 */
class EndpointList {
  n = 0;
  readonly e: [Endpoint, Endpoint] = [blankEndpoint(), blankEndpoint()];
}

function blankEndpoint(): Endpoint {
  return {
    role: 0,
    proto: 0,
    addr: 0,
    port: 0,
    otherAddr: 0,
    otherPort: 0,
    off: 0,
    csumOff: -1,
    csumUdp: false,
    outerCsumOff: -1,
  };
}

/** Appends an endpoint to the list (at most two per frame). */
function pushEndpoint(
  list: EndpointList,
  role: number,
  proto: number,
  addr: number,
  port: number,
  otherAddr: number,
  otherPort: number,
  off: number,
  csumOff: number,
  csumUdp: boolean,
  outerCsumOff: number,
): void {
  const e = list.e[list.n++];
  e.role = role;
  e.proto = proto;
  e.addr = addr;
  e.port = port;
  e.otherAddr = otherAddr;
  e.otherPort = otherPort;
  e.off = off;
  e.csumOff = csumOff;
  e.csumUdp = csumUdp;
  e.outerCsumOff = outerCsumOff;
}

/**
 * Statuses whose IPv4 header is sound but whose L4 is damaged: the ports still sit at their fixed
 * offsets (engines forward such packets un-NATed as INVALID, or drop a cut one), so renaming must
 * still map them, or the engines would be fed inputs that differ by more than the renaming.
 */
function l4DamagedStatus(st: number): boolean {
  return (
    st === PARSE_BAD_TCP_DATA_OFFSET ||
    st === PARSE_TRUNCATED_TCP_OPTIONS ||
    st === PARSE_BAD_UDP_LENGTH ||
    st === PARSE_TRUNCATED_L4 ||
    st === PARSE_TRUNCATED_PACKET
  );
}

/** Ports of a TCP/UDP packet with a damaged L4 (see l4DamagedStatus), located by offset alone. */
function damagedEndpoints(frame: Uint8Array, pv: PacketView, list: EndpointList): void {
  if (pv.proto !== PROTO_TCP && pv.proto !== PROTO_UDP) return;
  const o = pv.l3Off + pv.ihl;
  const have = frame.length - o;
  if (have < 4) return;
  const udp = pv.proto === PROTO_UDP;
  const co = udp ? 6 : 16;
  const csumOff = have >= co + 2 && !(udp && rd16(frame, o + 6) === 0) ? o + co : -1;
  const sport = rd16(frame, o);
  const dport = rd16(frame, o + 2);
  pushEndpoint(list, ROLE_SRC, pv.proto, pv.src, sport, pv.dst, dport, o, csumOff, udp, -1);
  pushEndpoint(list, ROLE_DST, pv.proto, pv.dst, dport, pv.src, sport, o + 2, csumOff, udp, -1);
}

/** Port/id fields of a frame, outer then inner, into `list` (none when it does not parse); returns the list. */
function endpointsOf(frame: Uint8Array, pv: PacketView, list: EndpointList): EndpointList {
  list.n = 0;
  const st = parseIpv4(frame, 0, frame.length, pv);
  if (st !== PARSE_OK) {
    if (l4DamagedStatus(st)) damagedEndpoints(frame, pv, list);
    return list;
  }
  const o = pv.l4Off;
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) {
    const udp = pv.proto === PROTO_UDP;
    const csumOff = o + (udp ? 6 : 16);
    pushEndpoint(list, ROLE_SRC, pv.proto, pv.src, pv.sport, pv.dst, pv.dport, o, csumOff, udp, -1);
    pushEndpoint(list, ROLE_DST, pv.proto, pv.dst, pv.dport, pv.src, pv.sport, o + 2, csumOff, udp, -1);
  } else if (pv.proto === PROTO_ICMP && isIcmpQueryType(pv.icmpType)) {
    const req = REQUEST_TYPES.has(pv.icmpType);
    pushEndpoint(
      list,
      req ? ROLE_SRC : ROLE_DST,
      PROTO_ICMP,
      req ? pv.src : pv.dst,
      pv.icmpId,
      req ? pv.dst : pv.src,
      0,
      o + 4,
      o + 2,
      false,
      -1,
    );
  } else if (pv.proto === PROTO_ICMP && pv.isIcmpError && pv.innerL4Off > 0) {
    const io = pv.innerL4Off;
    const have = pv.innerL4Len;
    const outer = o + 2;
    if (pv.innerProto === PROTO_TCP || pv.innerProto === PROTO_UDP) {
      const udp = pv.innerProto === PROTO_UDP;
      // Linux updates an inner TCP checksum only when the whole 20-byte header is quoted; UDP's
      // (in the first 8 bytes) when non-zero.
      const csumOff = udp ? (rd16(frame, io + 6) !== 0 ? io + 6 : -1) : have >= 20 ? io + 16 : -1;
      const ip = pv.innerProto;
      pushEndpoint(
        list,
        ROLE_INNER_SRC,
        ip,
        pv.innerSrc,
        pv.innerSport,
        pv.innerDst,
        pv.innerDport,
        io,
        csumOff,
        udp,
        outer,
      );
      pushEndpoint(
        list,
        ROLE_INNER_DST,
        ip,
        pv.innerDst,
        pv.innerDport,
        pv.innerSrc,
        pv.innerSport,
        io + 2,
        csumOff,
        udp,
        outer,
      );
    } else if (pv.innerProto === PROTO_ICMP && isIcmpQueryType(frame[io])) {
      const req = REQUEST_TYPES.has(frame[io]);
      pushEndpoint(
        list,
        req ? ROLE_INNER_SRC : ROLE_INNER_DST,
        PROTO_ICMP,
        req ? pv.innerSrc : pv.innerDst,
        rd16(frame, io + 4),
        req ? pv.innerDst : pv.innerSrc,
        0,
        io + 4,
        io + 2,
        false,
        outer,
      );
    }
  }
  return list;
}

/** Rewrites one port field with the checksum updates Linux's NAT would make. */
function writePort(b: Uint8Array, ep: Endpoint, neu: number): void {
  const old = rd16(b, ep.off);
  if (old === neu) return;
  wr16(b, ep.off, neu);
  if (ep.csumOff >= 0) {
    const oldC = rd16(b, ep.csumOff);
    const newC = ep.csumUdp ? udpCsumReplace16(oldC, old, neu) : csumReplace16(oldC, old, neu);
    wr16(b, ep.csumOff, newC);
    if (ep.outerCsumOff >= 0) wr16(b, ep.outerCsumOff, csumReplace16(rd16(b, ep.outerCsumOff), oldC, newC));
  }
  if (ep.outerCsumOff >= 0) wr16(b, ep.outerCsumOff, csumReplace16(rd16(b, ep.outerCsumOff), old, neu));
}

// ---------------------------------------------------------------------------------------------
// PortRenaming

export interface RenamingConflict {
  message: string;
}

/**
 * The bijection between ports/ids engine A chose and those engine B chose, per
 * (proto, NAT address, peer address, peer port). Addresses are canonicalised (an Elastic IP is
 * its instance's private IP) so the internet view, the VPC view and conntrack share bindings.
 * Keys are always in A's space. Carried across comparePacket calls (streaming).
 */
export class PortRenaming {
  /** Bindings both ways, keyed by numbers (port-table.ts). */
  private readonly table = new PortTable();
  /** Elastic IP -> its instance's private IP, keyed by the address's int32 value. */
  private readonly eipToPrivate = new Map<number, number>();
  /** Per canonical NAT address: the port ranges its rules allow ('class' = Linux's default ranges). */
  private readonly ranges = new Map<number, Array<[number, number] | 'class'>>();
  /** Bindings learnt where A's and B's choices differ (for the report). */
  renamed = 0;
  /** Bindings dropped because a new session re-used a key. */
  rebound = 0;
  private readonly pv = new PacketView();
  private readonly eps = new EndpointList();

  /**
   * `exact`: the two engines draw their port choices from the same seeded generator in the same
   * order (the model and a one-worker core, src/spec/prng.ts), so every binding must be the
   * identity — a renaming is itself a difference (a port-search divergence the tolerance would hide).
   */
  constructor(
    scenario?: Scenario | null,
    readonly exact = false,
  ) {
    if (!scenario) return;
    for (const inst of scenario.instances) {
      if (inst.elasticIp !== null) this.eipToPrivate.set(inst.elasticIp | 0, inst.privateIp >>> 0);
      if (!inst.nat) continue;
      for (const ch of NAT_CHAINS) {
        for (const r of inst.nat.chains[ch]) {
          const t = r.target;
          if (t.kind !== 'MASQUERADE' && t.kind !== 'SNAT' && t.kind !== 'DNAT') continue;
          const addr = t.kind === 'MASQUERADE' ? inst.privateIp >>> 0 : t.addrLo >>> 0;
          const list = this.ranges.get(addr) ?? [];
          list.push(t.flags & NF_NAT_RANGE_PROTO_SPECIFIED ? [t.portLo, t.portHi] : 'class');
          // A DNAT target is also a host whose own connections a null binding (nat INPUT or
          // POSTROUTING) may move to another source port of the port's class.
          if (t.kind === 'DNAT') list.push('class');
          this.ranges.set(addr, list);
        }
      }
    }
  }

  canon(addr: number): number {
    return this.eipToPrivate.get(addr | 0) ?? addr >>> 0;
  }

  /** B's port for A's port `port` at this endpoint, or undefined when unbound. */
  lookup(proto: number, addr: number, port: number, otherAddr: number, otherPort: number): number | undefined {
    const v = this.table.get(SIDE_A2B, proto, this.canon(addr), this.canon(otherAddr), otherPort, port);
    return v < 0 ? undefined : v;
  }

  /** A's port for B's port, or undefined. */
  lookupReverse(proto: number, addr: number, portB: number, otherAddr: number, otherPort: number): number | undefined {
    const v = this.table.get(SIDE_B2A, proto, this.canon(addr), this.canon(otherAddr), otherPort, portB);
    return v < 0 ? undefined : v;
  }

  /** Why pA↔pB is not an allowed renaming at NAT address `addr`, or null. */
  rangeProblem(proto: number, pA: number, pB: number, addr?: number): string | null {
    if (proto === PROTO_ICMP || pA === pB) return null;
    const sameClass = portClass(pA) === portClass(pB);
    const list = addr === undefined ? undefined : this.ranges.get(this.canon(addr));
    if (!list || list.length === 0) {
      return sameClass
        ? null
        : `ports ${pA} and ${pB} are in different source-port ranges (1-511 / 600-1023 / 1024-65535)`;
    }
    // Some rule for this address must allow both (its --to-ports range, or Linux's default ranges).
    const ok = list.some((r) => (r === 'class' ? sameClass : pA >= r[0] && pA <= r[1] && pB >= r[0] && pB <= r[1]));
    if (ok) return null;
    return `ports ${pA} and ${pB} are not both inside one range a rule for ${formatIpv4(this.canon(addr!))} allows (${list.map((r) => (r === 'class' ? '1-511/600-1023/1024-65535' : `${r[0]}-${r[1]}`)).join(', ')})`;
  }

  /**
   * Records that at this endpoint A's `pA` is B's `pB`. `fresh` (a NEW connection) lets a new
   * session replace stale bindings of either port. Returns a conflict or null.
   */
  bind(
    proto: number,
    addr: number,
    pA: number,
    otherAddr: number,
    otherPort: number,
    pB: number,
    fresh: boolean,
  ): RenamingConflict | null {
    const t = this.table;
    const ca = this.canon(addr);
    const co = this.canon(otherAddr);
    const xv = t.get(SIDE_A2B, proto, ca, co, otherPort, pA);
    const yv = t.get(SIDE_B2A, proto, ca, co, otherPort, pB);
    const x = xv < 0 ? undefined : xv;
    const y = yv < 0 ? undefined : yv;
    if (x === pB) return null;
    // Only a conflict names the endpoint (endpointText): no string per binding made.
    if ((x !== undefined || y !== undefined) && !fresh) {
      if (x !== undefined)
        return {
          message: `${endpointText(proto, ca, co, otherPort)}: port ${pA} was renamed to ${x} earlier in this session, now to ${pB}`,
        };
      return {
        message: `${endpointText(proto, ca, co, otherPort)}: the other engine's port ${pB} stood for ${y} earlier in this session, now for ${pA}`,
      };
    }
    if (this.exact && pA !== pB)
      return {
        message: `${endpointText(proto, ca, co, otherPort)}: port choices differ (${pA} vs ${pB}) where both engines draw from the same generator (a port-search divergence)`,
      };
    const rp = this.rangeProblem(proto, pA, pB, addr);
    if (rp) return { message: `${endpointText(proto, ca, co, otherPort)}: ${rp}` };
    t.touchGroup(proto, ca, co, otherPort);
    if (x !== undefined) {
      t.delete(SIDE_B2A, proto, ca, co, otherPort, x);
      t.delete(SIDE_A2B, proto, ca, co, otherPort, pA);
      this.rebound++;
    }
    if (y !== undefined) {
      t.delete(SIDE_A2B, proto, ca, co, otherPort, y);
      t.delete(SIDE_B2A, proto, ca, co, otherPort, pB);
      this.rebound++;
    }
    t.set(SIDE_A2B, proto, ca, co, otherPort, pA, pB);
    t.set(SIDE_B2A, proto, ca, co, otherPort, pB, pA);
    if (pA !== pB) this.renamed++;
    return null;
  }

  /**
   * A-space frame → B-space frame (a copy when anything changes). Unbound ports stay, unless the
   * same number means another session in B's space (A's port is stale, e.g. its session died and
   * B re-used the number): then there is no faithful translation and null is returned.
   */
  renameFrameStrict(frame: Uint8Array): Uint8Array | null {
    const eps = endpointsOf(frame, this.pv, this.eps);
    for (let k = 0; k < eps.n; k++) {
      const ep = eps.e[k];
      if (this.lookup(ep.proto, ep.addr, ep.port, ep.otherAddr, ep.otherPort) !== undefined) continue;
      const back = this.lookupReverse(ep.proto, ep.addr, ep.port, ep.otherAddr, ep.otherPort);
      if (back !== undefined && back !== ep.port) return null;
    }
    return this.renameWith(frame, eps);
  }

  /** A-space frame → B-space frame (a copy when anything changes). Unbound ports stay. */
  renameFrame(frame: Uint8Array): Uint8Array {
    return this.renameWith(frame, endpointsOf(frame, this.pv, this.eps));
  }

  /** renameFrame with the frame's endpoints already found. */
  renameWith(frame: Uint8Array, eps: EndpointList): Uint8Array {
    let out = frame;
    for (let k = 0; k < eps.n; k++) {
      const ep = eps.e[k];
      const pB = this.lookup(ep.proto, ep.addr, ep.port, ep.otherAddr, ep.otherPort);
      if (pB === undefined || pB === ep.port) continue;
      if (out === frame) out = frame.slice();
      writePort(out, ep, pB);
    }
    return out;
  }

  /** B-space frame → A-space frame (a copy when anything changes): ports B chose become A's. Unbound ports stay. */
  renameFrameReverse(frame: Uint8Array): Uint8Array {
    const eps = endpointsOf(frame, this.pv, this.eps);
    let out = frame;
    for (let k = 0; k < eps.n; k++) {
      const ep = eps.e[k];
      const pA = this.lookupReverse(ep.proto, ep.addr, ep.port, ep.otherAddr, ep.otherPort);
      if (pA === undefined || pA === ep.port) continue;
      if (out === frame) out = frame.slice();
      writePort(out, ep, pA);
    }
    return out;
  }

  /** A-space conntrack tuple → B-space. */
  renameTuple(proto: number, t: CtTuple): CtTuple {
    const r = { ...t };
    this.renameTupleInto(proto, t, r);
    return r;
  }

  /** renameTuple into `r` (which holds t's fields on entry): no object made. */
  renameTupleInto(proto: number, t: CtTuple, r: CtTuple): void {
    if (proto === PROTO_ICMP) {
      const req = REQUEST_TYPES.has(t.dport >>> 8);
      const p = req ? this.lookup(proto, t.src, t.sport, t.dst, 0) : this.lookup(proto, t.dst, t.sport, t.src, 0);
      if (p !== undefined) r.sport = p;
      return;
    }
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return;
    const s = this.lookup(proto, t.src, t.sport, t.dst, t.dport);
    const d = this.lookup(proto, t.dst, t.dport, t.src, t.sport);
    if (s !== undefined) r.sport = s;
    if (d !== undefined) r.dport = d;
  }

  renameEntry(e: ConntrackEntry): ConntrackEntry {
    return { ...e, orig: this.renameTuple(e.proto, e.orig), reply: this.renameTuple(e.proto, e.reply) };
  }

  /** Bindings where the ports differ, for reports: "udp 10.0.0.5 (peer 198.51.100.7:53): 1024 ↔ 2048". */
  describe(limit = 20): string[] {
    const lines: string[] = [];
    for (const b of this.table.bindings()) {
      if (b.portA === b.portB) continue;
      if (lines.length >= limit) return lines;
      lines.push(
        `${protoText(b.proto)} ${formatIpv4(b.addr)} (peer ${formatIpv4(b.otherAddr)}${b.proto === PROTO_ICMP ? '' : `:${b.otherPort}`}): ${b.portA} ↔ ${b.portB}`,
      );
    }
    return lines;
  }
}

/** "udp 10.0.0.5 (peer 198.51.100.7:53)": a binding's endpoint, for conflict messages. */
function endpointText(proto: number, addr: number, otherAddr: number, otherPort: number): string {
  return `${protoText(proto)} ${formatIpv4(addr)} (peer ${formatIpv4(otherAddr)}${proto === PROTO_ICMP ? '' : `:${otherPort}`})`;
}

function protoText(p: number): string {
  return p === PROTO_TCP ? 'tcp' : p === PROTO_UDP ? 'udp' : p === PROTO_ICMP ? 'icmp' : `proto ${p}`;
}

// ---------------------------------------------------------------------------------------------
// Per-packet comparison

export interface PacketCompareContext {
  names: [string, string];
  renaming: PortRenaming;
  scenario?: Scenario | null;
  normaliserA?: OutputNormaliser;
  normaliserB?: OutputNormaliser;
  /** Tolerances applied, counted (the report prints them). */
  tolerated?: Map<string, number>;
  /** The engines compared: each is asked to classify a difference (Engine.classifyDifference). */
  engineA?: Engine;
  engineB?: Engine;
  /** Differences the engines classified as documented known ones, by class (not failures). */
  known?: Map<string, number>;
}

/** Seconds two engines' conntrack timeouts may differ by: the larger of their timingTolerance. */
export function timingTolerance(a: Engine | undefined, b: Engine | undefined): number {
  return Math.max(a?.timingTolerance ?? 0, b?.timingTolerance ?? 0);
}

/** The report note for a pair compared with a timing tolerance ('' when exact). */
export function timingNote(a: Engine, b: Engine): string {
  const t = timingTolerance(a, b);
  if (t === 0) return '';
  const who = [a, b]
    .filter((e) => (e.timingTolerance ?? 0) === t)
    .map((e) => e.name)
    .join(', ');
  return t === Infinity
    ? `conntrack timeouts not compared ${a.name} vs ${b.name} (${who}: real clock)`
    : `conntrack timeouts compared ${a.name} vs ${b.name} within ${t} s (${who}: real clock)`;
}

/**
 * Removes the differences that one of the two engines names as a documented known difference
 * (Engine.classifyDifference), counting them by class in ctx.known; returns the others.
 */
export function withoutKnown(
  ctx: PacketCompareContext,
  diffs: Difference[],
  about: { input?: InputPacket; results?: [PacketResult, PacketResult] } = {},
): Difference[] {
  const a = ctx.engineA;
  const b = ctx.engineB;
  // Only when the caller counts them (replay); the fuzz session classifies with its own bookkeeping.
  if (!ctx.known || (!a?.classifyDifference && !b?.classifyDifference) || diffs.length === 0) return diffs;
  const facts: DifferenceFacts = {
    index: diffs[0].index,
    differences: diffs.map((d) => ({ kind: d.kind, message: d.message })),
    engines: ctx.names,
    inputs: about.input ? [about.input, about.input] : null,
    results: about.results ?? null,
  };
  const cls = a?.classifyDifference?.(facts) ?? b?.classifyDifference?.(facts) ?? null;
  if (cls === null) return diffs;
  if (ctx.known) ctx.known.set(cls.id, (ctx.known.get(cls.id) ?? 0) + diffs.length);
  return [];
}

function pointText(s: Scenario | null | undefined, p: number): string {
  return s ? pointName(s, p) : p === 0 ? 'internet' : `point ${p}`;
}

/** "delivered to internet as udp 203.0.113.10:40000 > ..." / "dropped (nat-clash)". */
export function describeVerdict(r: PacketResult, scenario?: Scenario | null): string {
  const outs = r.outputs.map((o) => `to ${pointText(scenario, o.egress)} as ${describePacket(o.frame)}`);
  const ct = r.ct ? ` [ct ${CT_NAMES[r.ct] ?? r.ct}]` : '';
  if (r.fate === FATE_DELIVERED) {
    return `delivered ${outs.join(', then ')}${ct}`;
  }
  const det = r.detail ? `/${PARSE_STATUS_NAMES[r.detail] ?? r.detail}` : '';
  return `dropped (${reasonName(r.reason)}${det})${ct}${outs.length ? `, sent ${outs.join(', then ')}` : ''}`;
}

function isGenerated(inputFrame: Uint8Array, out: Uint8Array): boolean {
  // An ICMP error leaving for an input that was not itself an ICMP error was built by the engine.
  return isIcmpErrorFrame(out) && !isIcmpErrorFrame(inputFrame);
}

/** Sets the IP id to 0 (IP checksum updated); returns a copy when it changes. */
function zeroIpId(f: Uint8Array): Uint8Array {
  if (f.length < 20) return f;
  const id = rd16(f, 4);
  if (id === 0) return f;
  const c = f.slice();
  wr16(c, 4, 0);
  wr16(c, 10, csumReplace16(rd16(c, 10), id, 0));
  return c;
}

const IP_FIELDS: Array<[number, number, string]> = [
  [0, 1, 'version/ihl'],
  [1, 1, 'tos'],
  [2, 2, 'total length'],
  [4, 2, 'ip id'],
  [6, 2, 'flags/fragment'],
  [8, 1, 'ttl'],
  [9, 1, 'protocol'],
  [10, 2, 'ip checksum'],
  [12, 4, 'source address'],
  [16, 4, 'destination address'],
];

/** Names the first differing field: "byte 22 (tcp source port): 40000 vs 40001". */
export function firstDifference(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  if (i === a.length) return 'identical';
  const ihl = (a[0] & 15) << 2;
  const val = (o: number, n: number, f: Uint8Array) =>
    n === 1
      ? f[o]
      : n === 2
        ? rd16(f, o)
        : n === 4
          ? formatIpv4(((f[o] << 24) | (f[o + 1] << 16) | (f[o + 2] << 8) | f[o + 3]) >>> 0)
          : f[o];
  if (i < 20) {
    for (const [o, n, name] of IP_FIELDS)
      if (i >= o && i < o + n) return `byte ${i} (${name}): ${val(o, n, a)} vs ${val(o, n, b)}`;
  }
  if (i < ihl) return `byte ${i} (ip options): ${a[i]} vs ${b[i]}`;
  const rel = i - ihl;
  const proto = a[9];
  let fields: Array<[number, number, string]> = [];
  if (proto === PROTO_TCP)
    fields = [
      [0, 2, 'tcp source port'],
      [2, 2, 'tcp destination port'],
      [4, 4, 'tcp seq'],
      [8, 4, 'tcp ack'],
      [12, 1, 'tcp data offset'],
      [13, 1, 'tcp flags'],
      [14, 2, 'tcp window'],
      [16, 2, 'tcp checksum'],
      [18, 2, 'tcp urgent pointer'],
    ];
  else if (proto === PROTO_UDP)
    fields = [
      [0, 2, 'udp source port'],
      [2, 2, 'udp destination port'],
      [4, 2, 'udp length'],
      [6, 2, 'udp checksum'],
    ];
  else if (proto === PROTO_ICMP)
    fields = [
      [0, 1, 'icmp type'],
      [1, 1, 'icmp code'],
      [2, 2, 'icmp checksum'],
      [4, 2, 'icmp id / rest'],
      [6, 2, 'icmp seq / rest'],
    ];
  for (const [o, n, name] of fields) {
    if (rel >= o && rel < o + n)
      return `byte ${i} (${name}): ${n === 4 ? ((a[i - rel + o] << 24) | (a[i - rel + o + 1] << 16) | (a[i - rel + o + 2] << 8) | a[i - rel + o + 3]) >>> 0 : val(ihl + o, n, a)} vs ${n === 4 ? ((b[i - rel + o] << 24) | (b[i - rel + o + 1] << 16) | (b[i - rel + o + 2] << 8) | b[i - rel + o + 3]) >>> 0 : val(ihl + o, n, b)}`;
  }
  if (proto === PROTO_ICMP && rel >= 8) {
    const inner = rel - 8;
    if (inner < 20) {
      for (const [o, n, name] of IP_FIELDS)
        if (inner >= o && inner < o + n)
          return `byte ${i} (quoted ${name}): ${val(ihl + 8 + o, n, a)} vs ${val(ihl + 8 + o, n, b)}`;
    }
    const iihl = (a[ihl + 8] & 15) << 2;
    const r2 = inner - iihl;
    const names = ['source port', 'source port', 'destination port', 'destination port'];
    if (r2 >= 0 && r2 < 4)
      return `byte ${i} (quoted ${names[r2]}): ${rd16(a, ihl + 8 + iihl + (r2 & 2))} vs ${rd16(b, ihl + 8 + iihl + (r2 & 2))}`;
    return `byte ${i} (quoted packet +${inner}): ${a[i]} vs ${b[i]}`;
  }
  return `byte ${i} (payload +${rel}): ${a[i]} vs ${b[i]}`;
}

/**
 * Learns renamings from one output pair (A-space `fa`, whose endpoints are `ea`, vs B-space `fb`),
 * returning conflicts (null: none). `input` is the A-space input (to tell translated endpoints
 * from untouched ones).
 */
const LEARN_PV_B = new PacketView();
const LEARN_PV_I = new PacketView();
const LEARN_EB = new EndpointList();
const LEARN_EI = new EndpointList();
const COMPARE_PV_A = new PacketView();
const COMPARE_EA = new EndpointList();

function learnFromOutputs(
  input: Uint8Array,
  ea: EndpointList,
  fb: Uint8Array,
  fresh: boolean,
  generated: boolean,
  ctx: PacketCompareContext,
): string[] | null {
  // Scratch views and lists (module-wide; this function does not re-enter): no allocation per compared output.
  const eb = endpointsOf(fb, LEARN_PV_B, LEARN_EB);
  if (ea.n === 0 || ea.n !== eb.n) return null;
  const ei = LEARN_EI;
  if (generated) ei.n = 0;
  else endpointsOf(input, LEARN_PV_I, ei);
  let problems: string[] | null = null;
  const r = ctx.renaming;
  for (let k = 0; k < ea.n; k++) {
    const a = ea.e[k];
    const b = eb.e[k];
    if (a.role !== b.role || a.proto !== b.proto) return problems;
    const existing = r.lookup(a.proto, a.addr, a.port, a.otherAddr, a.otherPort);
    const reverse = r.lookupReverse(a.proto, a.addr, b.port, a.otherAddr, a.otherPort);
    if (existing === b.port) continue;
    // The input's endpoint in the same role (the input's fields before the engine touched them).
    let inp: Endpoint | null = null;
    for (let x = 0; x < ei.n; x++)
      if (ei.e[x].role === a.role) {
        inp = ei.e[x];
        break;
      }
    const translated = inp !== null && (r.canon(inp.addr) !== r.canon(a.addr) || inp.port !== a.port);
    if (existing === undefined && reverse === undefined && a.port === b.port) {
      // Not renamed; bind it only if this endpoint was translated (a chosen port), so a later
      // change of mind shows.
      if (translated) r.bind(a.proto, a.addr, a.port, a.otherAddr, a.otherPort, b.port, fresh);
      continue;
    }
    // Ports differ (or contradict a binding): acceptable only for a translated endpoint.
    if (!translated && existing === undefined && reverse === undefined) continue; // a plain difference: the byte comparison reports it
    const c = r.bind(a.proto, a.addr, a.port, a.otherAddr, a.otherPort, b.port, fresh && translated);
    if (c) (problems ??= []).push(c.message);
  }
  return problems;
}

/**
 * True when outputs fa and fb are the same bytes and comparing them would learn nothing: every
 * endpoint of fa is bound to its own port already, or bound in neither direction and not
 * translated — learnFromOutputs would pass over each (no binding, no problem) and renameWith would
 * leave fa as it is. The common case of engines that agree; it spares parsing fb and the input
 * (the latter unless an endpoint is unbound) and renaming.
 */
function agreesAsIs(
  input: Uint8Array,
  ea: EndpointList,
  fa: Uint8Array,
  fb: Uint8Array,
  generated: boolean,
  ctx: PacketCompareContext,
): boolean {
  if (!bytesEqual(fa, fb)) return false;
  const r = ctx.renaming;
  let inputParsed = generated;
  const ei = LEARN_EI;
  if (generated) ei.n = 0;
  for (let k = 0; k < ea.n; k++) {
    const a = ea.e[k];
    const existing = r.lookup(a.proto, a.addr, a.port, a.otherAddr, a.otherPort);
    if (existing === a.port) continue;
    if (existing !== undefined) return false;
    if (r.lookupReverse(a.proto, a.addr, a.port, a.otherAddr, a.otherPort) !== undefined) return false;
    if (!inputParsed) {
      endpointsOf(input, LEARN_PV_I, ei);
      inputParsed = true;
    }
    for (let x = 0; x < ei.n; x++) {
      const inp = ei.e[x];
      if (inp.role !== a.role) continue;
      if (r.canon(inp.addr) !== r.canon(a.addr) || inp.port !== a.port) return false; // translated: bound on the full path
      break;
    }
  }
  return true;
}

/** Appends one difference of packet `index` to `diffs` (allocated on the first), with the packet's story. */
function addDifference(
  diffs: Difference[] | null,
  index: number,
  inputA: InputPacket,
  a: PacketResult,
  b: PacketResult,
  ctx: PacketCompareContext,
  kind: string,
  what: string,
): Difference[] {
  const [na, nb] = ctx.names;
  const story = `packet #${index} ${describePacket(inputA.frame)} from ${pointText(ctx.scenario, inputA.ingress)}: ${na} ${describeVerdict(a, ctx.scenario)}; ${nb} ${describeVerdict(b, ctx.scenario)}`;
  const list = diffs ?? [];
  list.push({ index, kind, engines: [na, nb], message: `${story} — ${what}` });
  return list;
}

const NO_DIFFERENCES: readonly Difference[] = Object.freeze([]);

/**
 * Compares one packet's results. `inputA` is the packet as engine A got it (B got the same bytes
 * renamed into its port space, see PortRenaming.renameFrame). Learns renamings into ctx.renaming.
 * The returned list is read-only (shared when empty).
 */
export function comparePacket(
  index: number,
  inputA: InputPacket,
  a: PacketResult,
  b: PacketResult,
  ctx: PacketCompareContext,
): readonly Difference[] {
  let diffs: Difference[] | null = null;
  const unseen = a.reason === DROP_KERNEL_UNSEEN || b.reason === DROP_KERNEL_UNSEEN;
  if (a.fate !== b.fate) diffs = addDifference(diffs, index, inputA, a, b, ctx, 'fate', 'fate differs');
  else if (unseen && a.reason !== b.reason) {
    // The kernel engine sees that nothing left but not why: any drop reason matches it.
    const k = `kernel-unseen accepted for ${reasonName(a.reason === DROP_KERNEL_UNSEEN ? b.reason : a.reason)}`;
    ctx.tolerated?.set(k, (ctx.tolerated.get(k) ?? 0) + 1);
  } else if (a.reason !== b.reason)
    diffs = addDifference(
      diffs,
      index,
      inputA,
      a,
      b,
      ctx,
      'reason',
      `reason ${reasonName(a.reason)} vs ${reasonName(b.reason)}`,
    );
  else if (a.detail !== b.detail && !unseen)
    diffs = addDifference(
      diffs,
      index,
      inputA,
      a,
      b,
      ctx,
      'detail',
      `detail ${PARSE_STATUS_NAMES[a.detail] ?? a.detail} vs ${PARSE_STATUS_NAMES[b.detail] ?? b.detail}`,
    );
  if (a.ct !== b.ct)
    diffs = addDifference(
      diffs,
      index,
      inputA,
      a,
      b,
      ctx,
      'ct',
      `conntrack state ${CT_NAMES[a.ct] ?? a.ct} vs ${CT_NAMES[b.ct] ?? b.ct}`,
    );
  if (a.outputs.length !== b.outputs.length) {
    diffs = addDifference(
      diffs,
      index,
      inputA,
      a,
      b,
      ctx,
      'output-count',
      `${a.outputs.length} vs ${b.outputs.length} output frames`,
    );
    return withoutKnown(ctx, diffs, { input: inputA, results: [a, b] });
  }
  const fresh = a.ct === CT_NEW && b.ct === CT_NEW;
  for (let k = 0; k < a.outputs.length; k++) {
    const oa = a.outputs[k];
    const ob = b.outputs[k];
    if (oa.egress !== ob.egress) {
      diffs = addDifference(
        diffs,
        index,
        inputA,
        a,
        b,
        ctx,
        'egress',
        `output ${k} left at ${pointText(ctx.scenario, oa.egress)} vs ${pointText(ctx.scenario, ob.egress)}`,
      );
      continue;
    }
    let fa = ctx.normaliserA ? ctx.normaliserA.apply(oa, inputA) : oa.frame;
    let fb = ctx.normaliserB ? ctx.normaliserB.apply(ob, inputA) : ob.frame;
    const generated = isGenerated(inputA.frame, fa);
    if (generated) {
      fa = zeroIpId(fa);
      fb = zeroIpId(fb);
    }
    const ea = endpointsOf(fa, COMPARE_PV_A, COMPARE_EA);
    if (agreesAsIs(inputA.frame, ea, fa, fb, generated, ctx)) continue;
    const problems = learnFromOutputs(inputA.frame, ea, fb, fresh, generated, ctx);
    if (problems !== null)
      for (const p of problems) diffs = addDifference(diffs, index, inputA, a, b, ctx, 'renaming', `output ${k}: ${p}`);
    // ea still describes fa: learnFromOutputs parses only fb and the input.
    const ra = ctx.renaming.renameWith(fa, ea);
    if (!bytesEqual(ra, fb)) {
      const renamedNote = ra !== fa ? ` (after renaming ${ctx.names[0]}'s ports: ${describePacket(ra)})` : '';
      diffs = addDifference(
        diffs,
        index,
        inputA,
        a,
        b,
        ctx,
        'frame',
        `output ${k} to ${pointText(ctx.scenario, oa.egress)} differs at ${firstDifference(ra, fb)}${renamedNote}`,
      );
    }
  }
  if (diffs === null) return NO_DIFFERENCES;
  return withoutKnown(ctx, diffs, { input: inputA, results: [a, b] });
}

/** Frames longer than this are compared by the runtime's memcmp (Buffer.compare takes any Uint8Array). */
const NATIVE_COMPARE_MIN = 32;

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.length > NATIVE_COMPARE_MIN) return Buffer.compare(a, b) === 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// End-of-run state

/** Same tuple: what `${src >>> 0}:${sport}>${dst >>> 0}:${dport}` keys compared as strings. */
function tupleEq(x: CtTuple, y: CtTuple): boolean {
  return x.src >>> 0 === y.src >>> 0 && x.sport === y.sport && x.dst >>> 0 === y.dst >>> 0 && x.dport === y.dport;
}

function tupleHash(h: number, t: CtTuple): number {
  h = Math.imul(h ^ (t.src >>> 0), 0x9e3779b1);
  h = Math.imul(h ^ t.sport, 0x85ebca77);
  h = Math.imul(h ^ (t.dst >>> 0), 0xc2b2ae3d);
  return Math.imul(h ^ t.dport, 0x27d4eb2f);
}

/** An entry's identity (instance, proto, both tuples) hashed to 32 bits; equal identities compared by sameEntry. */
function entryHash(instance: number, proto: number, orig: CtTuple, reply: CtTuple): number {
  let h = Math.imul(instance ^ 0x165667b1, 0x9e3779b1) ^ proto;
  h = tupleHash(h, orig);
  h = tupleHash(h, reply);
  return (h ^ (h >>> 15)) | 0;
}

function sameEntry(x: ConntrackEntry, instance: number, proto: number, orig: CtTuple, reply: CtTuple): boolean {
  return x.instance === instance && x.proto === proto && tupleEq(x.orig, orig) && tupleEq(x.reply, reply);
}

/**
 * B's entries by identity, in first-insertion order; a later entry with the same identity replaces
 * the earlier one in place (a Map keyed by the identity's text would do the same). Keys are
 * numbers (entryHash) with the entries of one hash chained: no string per entry.
 */
class EntryIndex {
  readonly entries: ConntrackEntry[] = [];
  readonly seen: Uint8Array;
  private readonly first = new Map<number, number>();
  private readonly next: Int32Array;

  constructor(b: readonly ConntrackEntry[]) {
    this.seen = new Uint8Array(b.length);
    this.next = new Int32Array(b.length).fill(-1);
    for (const e of b) {
      const h = entryHash(e.instance, e.proto, e.orig, e.reply);
      const u = this.find(h, e.instance, e.proto, e.orig, e.reply);
      if (u >= 0) {
        this.entries[u] = e;
        continue;
      }
      const n = this.entries.length;
      this.entries.push(e);
      const f = this.first.get(h);
      if (f !== undefined) this.next[n] = f;
      this.first.set(h, n);
    }
  }

  /** Index of the entry with this identity (its hash h), or -1. */
  find(h: number, instance: number, proto: number, orig: CtTuple, reply: CtTuple): number {
    let u = this.first.get(h);
    if (u === undefined) return -1;
    for (; u >= 0; u = this.next[u]) if (sameEntry(this.entries[u], instance, proto, orig, reply)) return u;
    return -1;
  }
}

/**
 * Compares conntrack tables, A's entries renamed into B's port space. `timeouts`: true compares
 * timeouts exactly, a number allows that many seconds either way (timingTolerance of an engine on
 * a real clock; Infinity or false: not compared).
 */
export function compareConntrack(
  a: readonly ConntrackEntry[],
  b: readonly ConntrackEntry[],
  names: [string, string],
  renaming: PortRenaming,
  timeouts: boolean | number = true,
): Difference[] {
  const tolerance = timeouts === true ? 0 : timeouts === false ? Infinity : timeouts;
  const [na, nb] = names;
  const diffs: Difference[] = [];
  const index = new EntryIndex(b);
  const bEntries = index.entries;
  const seen = index.seen;
  const leftA: ConntrackEntry[] = [];
  // The renamed tuples of A's entry at hand (scratch: renameEntry only changes the tuples).
  const ro: CtTuple = { src: 0, dst: 0, sport: 0, dport: 0 };
  const rr: CtTuple = { src: 0, dst: 0, sport: 0, dport: 0 };
  const check = (e: ConntrackEntry, o: ConntrackEntry) => {
    let what: string[] | null = null;
    if (e.state !== o.state) (what ??= []).push(`state ${e.state} vs ${o.state}`);
    if (Math.abs(e.timeout - o.timeout) > tolerance) (what ??= []).push(`timeout ${e.timeout} vs ${o.timeout}`);
    if (e.assured !== o.assured) (what ??= []).push(`assured ${e.assured} vs ${o.assured}`);
    if (e.seenReply !== o.seenReply) (what ??= []).push(`seen-reply ${e.seenReply} vs ${o.seenReply}`);
    if (what !== null)
      diffs.push({
        index: -1,
        kind: 'conntrack',
        engines: [na, nb],
        message: `conntrack (instance ${e.instance}) ${formatConntrackLine(e)}: ${what.join(', ')}`,
      });
  };
  for (const e0 of a) {
    const o0 = e0.orig;
    const r0 = e0.reply;
    ro.src = o0.src;
    ro.dst = o0.dst;
    ro.sport = o0.sport;
    ro.dport = o0.dport;
    rr.src = r0.src;
    rr.dst = r0.dst;
    rr.sport = r0.sport;
    rr.dport = r0.dport;
    renaming.renameTupleInto(e0.proto, o0, ro);
    renaming.renameTupleInto(e0.proto, r0, rr);
    const u = index.find(entryHash(e0.instance, e0.proto, ro, rr), e0.instance, e0.proto, ro, rr);
    if (u < 0) {
      leftA.push(e0);
      continue;
    }
    seen[u] = 1;
    check(e0, bEntries[u]);
  }
  // Entries whose chosen port never showed in a compared frame (e.g. the packet was dropped
  // after NAT): pair them up if a renaming of the reply tuple's ports explains the difference
  // without contradicting any binding.
  for (const e0 of leftA) {
    const e = renaming.renameEntry(e0);
    let matched: ConntrackEntry | null = null;
    for (let u = 0; u < bEntries.length; u++) {
      const o = bEntries[u];
      if (seen[u] !== 0 || o.instance !== e.instance || o.proto !== e.proto || !tupleEq(o.orig, e.orig)) continue;
      if (o.reply.src >>> 0 !== e.reply.src >>> 0 || o.reply.dst >>> 0 !== e.reply.dst >>> 0) continue;
      const p = e0.proto;
      const r = e0.reply;
      let ok = true;
      if (p === PROTO_ICMP) {
        if (o.reply.dport !== e.reply.dport) ok = false;
        else if (o.reply.sport !== e.reply.sport)
          ok = renaming.bind(p, r.dst, r.sport, r.src, 0, o.reply.sport, false) === null;
      } else {
        if (ok && o.reply.dport !== e.reply.dport)
          ok = renaming.bind(p, r.dst, r.dport, r.src, r.sport, o.reply.dport, false) === null;
        if (ok && o.reply.sport !== e.reply.sport)
          ok = renaming.bind(p, r.src, r.sport, r.dst, r.dport, o.reply.sport, false) === null;
      }
      if (ok) {
        matched = o;
        seen[u] = 1;
        break;
      }
    }
    if (matched) {
      check(e0, matched);
      continue;
    }
    const renamed = !sameEntry(e0, e.instance, e.proto, e.orig, e.reply);
    diffs.push({
      index: -1,
      kind: 'conntrack',
      engines: [na, nb],
      message: `conntrack (instance ${e0.instance}): only ${na} has ${formatConntrackLine(e0)}${renamed ? ` (renamed: ${formatConntrackLine(e)})` : ''}`,
    });
  }
  for (let u = 0; u < bEntries.length; u++) {
    const e = bEntries[u];
    if (seen[u] === 0)
      diffs.push({
        index: -1,
        kind: 'conntrack',
        engines: [na, nb],
        message: `conntrack (instance ${e.instance}): only ${nb} has ${formatConntrackLine(e)}`,
      });
  }
  return diffs;
}

/** NAT gateway counters (CloudWatch metric names) of two engines, metric by metric. */
export function compareGatewayCounters(
  a: readonly NatGatewayCounters[],
  b: readonly NatGatewayCounters[],
  names: [string, string],
): Difference[] {
  const [na, nb] = names;
  const diffs: Difference[] = [];
  for (const ga of a) {
    const gb = b.find((x) => x.natGateway === ga.natGateway);
    for (const [m, va] of Object.entries(ga.metrics)) {
      const vb = gb?.metrics[m] ?? 0;
      if (va !== vb)
        diffs.push({
          index: -1,
          kind: 'counters',
          engines: [na, nb],
          message: `NAT gateway ${ga.name} ${m}: ${na} ${va} vs ${nb} ${vb}`,
        });
    }
  }
  return diffs;
}

function gatewayConnectionText(c: NatGatewayConnection, name: string): string {
  const proto = c.proto === PROTO_TCP ? 'tcp' : c.proto === PROTO_UDP ? 'udp' : 'icmp';
  return `NAT gateway ${name} ${proto} ${formatIpv4(c.src)}:${c.sport} -> ${formatIpv4(c.dst)}:${c.dport}`;
}

function gatewayConnectionState(c: NatGatewayConnection, withPort: boolean): string {
  return `as ${formatIpv4(c.natIp)}${withPort ? `:${c.natPort}` : ''}, ${c.timeout} s left${c.replied ? ', replied' : ''}${c.closed ? ', closed' : ''}`;
}

/**
 * The NAT gateways' connection tables at the end of a run, by inside tuple. The NAT port is
 * compared only with `exactPorts` (the model and a core share the gateway's generator: gateways
 * run on one core worker); otherwise engines may choose ports differently, as packets' renaming
 * allows, and only the address, timer and flags are compared.
 */
export function compareGatewayConnections(
  a: readonly NatGatewayConnection[],
  b: readonly NatGatewayConnection[],
  gatewayNames: readonly string[],
  names: [string, string],
  exactPorts = true,
): Difference[] {
  const [na, nb] = names;
  const key = (c: NatGatewayConnection) => `${c.natGateway}|${c.proto}|${c.src}|${c.sport}|${c.dst}|${c.dport}`;
  const bMap = new Map(b.map((c) => [key(c), c]));
  const diffs: Difference[] = [];
  const add = (message: string) => diffs.push({ index: -1, kind: 'conntrack', engines: [na, nb], message });
  for (const ca of a) {
    const name = gatewayNames[ca.natGateway] ?? String(ca.natGateway);
    const cb = bMap.get(key(ca));
    bMap.delete(key(ca));
    if (!cb) add(`${gatewayConnectionText(ca, name)}: only in ${na} (${gatewayConnectionState(ca, exactPorts)})`);
    else if (gatewayConnectionState(ca, exactPorts) !== gatewayConnectionState(cb, exactPorts))
      add(
        `${gatewayConnectionText(ca, name)}: ${na} ${gatewayConnectionState(ca, exactPorts)} vs ${nb} ${gatewayConnectionState(cb, exactPorts)}`,
      );
  }
  for (const cb of bMap.values())
    add(
      `${gatewayConnectionText(cb, gatewayNames[cb.natGateway] ?? String(cb.natGateway))}: only in ${nb} (${gatewayConnectionState(cb, exactPorts)})`,
    );
  return diffs;
}

export function compareCounters(
  a: readonly NatRuleCounter[],
  b: readonly NatRuleCounter[],
  names: [string, string],
  table: 'nat' | 'filter' = 'nat',
): Difference[] {
  const [na, nb] = names;
  const key = (c: NatRuleCounter) => `${c.instance}|${c.chain}|${c.rule}`;
  const bMap = new Map(b.map((c) => [key(c), c]));
  const diffs: Difference[] = [];
  const seen = new Set<string>();
  for (const c of a) {
    const o = bMap.get(key(c));
    seen.add(key(c));
    const ob = o ?? { packets: 0, bytes: 0 };
    if (ob.packets !== c.packets || ob.bytes !== c.bytes) {
      diffs.push({
        index: -1,
        kind: 'counters',
        engines: [na, nb],
        message: `${table} counters instance ${c.instance} ${c.chain} rule ${c.rule}: ${na} ${c.packets} pkts/${c.bytes} bytes vs ${nb} ${ob.packets}/${ob.bytes}`,
      });
    }
  }
  for (const c of b) {
    if (!seen.has(key(c)) && (c.packets || c.bytes))
      diffs.push({
        index: -1,
        kind: 'counters',
        engines: [na, nb],
        message: `${table} counters instance ${c.instance} ${c.chain} rule ${c.rule}: ${na} 0/0 vs ${nb} ${c.packets} pkts/${c.bytes} bytes`,
      });
  }
  return diffs;
}

/**
 * Compares two complete runs over the same inputs (both engines got identical bytes, as when
 * replaying a capture). For fuzzing, where B's inputs are renamed, use comparePacket directly.
 */
export function compareRuns(
  inputs: readonly InputPacket[],
  a: EngineRun,
  b: EngineRun,
  opts: CompareOptions = {},
): CompareResult {
  const names: [string, string] = [a.engine, b.engine];
  const renaming = new PortRenaming(opts.scenario);
  const tolerated = new Map<string, number>();
  const ctx: PacketCompareContext = {
    names,
    renaming,
    scenario: opts.scenario,
    normaliserA: a.normaliser,
    normaliserB: b.normaliser,
    tolerated,
  };
  const max = opts.maxDifferences ?? 100;
  const differences: Difference[] = [];
  const notes: string[] = [];
  for (const r of [a, b]) if (r.normaliser) notes.push(`${r.engine}: ${r.normaliser.description}`);
  if (a.results.length !== inputs.length || b.results.length !== inputs.length) {
    differences.push({
      index: -1,
      kind: 'result-count',
      engines: names,
      message: `${inputs.length} inputs but ${a.engine} gave ${a.results.length} results and ${b.engine} ${b.results.length}`,
    });
  }
  const n = Math.min(inputs.length, a.results.length, b.results.length);
  for (let i = 0; i < n && differences.length < max; i++) {
    differences.push(...comparePacket(i, inputs[i], a.results[i], b.results[i], ctx));
  }
  if (a.conntrack && b.conntrack)
    differences.push(...compareConntrack(a.conntrack, b.conntrack, names, renaming, opts.timeouts ?? true));
  if (a.counters && b.counters) differences.push(...compareCounters(a.counters, b.counters, names));
  for (const [k, n] of tolerated) notes.push(`${k}: ${n} packet(s)`);
  if (renaming.renamed)
    notes.push(
      `${renaming.renamed} port/id choice(s) renamed ${a.engine}→${b.engine}: ${renaming.describe(5).join('; ')}`,
    );
  return { equal: differences.length === 0, differences: differences.slice(0, Math.max(max, 1)), notes };
}

/** A normaliser adding `delta` to the TTL of frames leaving at the given egress points (IP checksum updated). */
export function ttlOffsetNormaliser(
  delta: number,
  egressPoints: readonly number[] | 'all',
  description: string,
): OutputNormaliser {
  return {
    description,
    apply(out: OutputFrame): Uint8Array {
      if (egressPoints !== 'all' && !egressPoints.includes(out.egress)) return out.frame;
      const f = out.frame;
      if (f.length < 20 || f[0] >>> 4 !== 4) return f;
      const c = f.slice();
      const oldW = rd16(c, 8);
      c[8] = (c[8] + delta) & 0xff;
      wr16(c, 10, csumReplace16(rd16(c, 10), oldW, rd16(c, 8)));
      return c;
    },
  };
}
