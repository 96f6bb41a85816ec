// Model-based traffic commands (fast-check `fc.commands`) driving a DiffSession. Each command is
// generated with abstract parameters (indices, flags) and resolved at run time against what the
// engines did: replies are addressed to what the far side saw (the mapped address/port taken
// from the reference engine's output; the other engines get them renamed into their own port
// space), ICMP errors quote an earlier *output*. Commands print like script lines:
//   out[10.0.1.10:40000>198.51.100.7:443 tcp S]   in[#0 tcp SA]   advance[31s]

import { type TimelineAction, scenarioAfter } from '../../spec/timeline.ts';
import fc from 'fast-check';
import type { PacketResult } from '../../spec/engine.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { instancePoint, POINT_INTERNET } from '../../spec/scenario.ts';
import { buildIcmpError, buildIcmpQuery, buildTcp, buildUdp } from '../../packet/build.ts';
import { formatIpv4, parseIpv4Addr } from '../../packet/addr.ts';
import { PacketView, parseIpv4, PARSE_OK } from '../../packet/parse.ts';
import {
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  F_URG,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_PARAMETERPROB,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  isIcmpErrorType,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../../packet/constants.ts';
import { tcpFlagsText } from '../../packet/format.ts';
import { FUZZ_DNAT_PORT, FUZZ_PEERS } from '../../traffic/fuzz-scenario.ts';
import { FLOW_SHAPES, shapeFlow, type FlowShape } from '../../traffic/flow-shapes.ts';
import { DAMAGE_KINDS, damageText, type Damage } from '../../traffic/fuzz-damage.ts';
import { mutateFilters } from '../../traffic/fuzz-filters.ts';
import type { DiffSession, ReplyExpectation } from './session.ts';

type Proto = 'tcp' | 'udp' | 'icmp';

interface Flow {
  id: number;
  proto: Proto;
  /** Initiator: its point and its own address/port (ICMP: the query id). */
  iPoint: number;
  iAddr: number;
  iPort: number;
  /** Destination as the initiator addresses it. */
  dAddr: number;
  dPort: number;
  /** Responder as learnt from the reference engine's output (null until something got through). */
  rPoint: number | null;
  rAddr: number;
  rPort: number;
  /** The initiator as the responder saw it. */
  peerAddr: number;
  peerPort: number;
  /** Whether this flow still owns its responder-side view (a later flow may take the same tuple). */
  owner: boolean;
  spoofed: boolean;
  seqI: number;
  seqR: number;
  icmpSeq: number;
  icmpType: number;
  /** The flow's latest forward-direction output (what the responder received), reference space. */
  lastOut: { egress: number; frame: Uint8Array } | null;
}

/** The system under test for one fast-check run. */
export class FuzzReal {
  readonly flows: Flow[] = [];
  /** Reference-space outputs so far (for ICMP errors quoting them), capped. */
  readonly outputs: Array<{ egress: number; frame: Uint8Array }> = [];
  /** Reference-space clean inputs so far (for replays and damage). */
  readonly sent: Array<{ ingress: number; frame: Uint8Array }> = [];
  readonly endpoints: Array<{ point: number; addr: number }>;
  readonly targets: Array<{ addr: number; port?: number }>;
  commands = 0;
  /** Flows of the largest shape command in this run whose every packet got through (reference). */
  shapeFlowsDelivered = 0;
  private readonly eipSet: Set<number>;
  /** Addresses of NAT instances that redirect what reaches them (DNAT to themselves), and the rule's protocol. */
  readonly redirectProto = new Map<number, 'tcp' | 'udp'>();

  /** Real-time engines in the session: no exact-boundary clock steps. */
  coarseTime = false;
  /** The scenario with the filter rules in force (filters[...] commands change it). */
  current: Scenario;
  private steps: number[] | null = null;

  /** The scenario's distinct timeouts in seconds (plus the 2 s UDP stream threshold), ascending. */
  timeoutSteps(): number[] {
    if (!this.steps) {
      const set = new Set<number>([
        2,
        ...Object.values(this.scenario.conntrack.timeouts),
        // NAT gateways' idle timeouts: the expiry boundary of their connections.
        ...(this.scenario.natGateways ?? []).map((g) => g.idleTimeout),
      ]);
      this.steps = [...set].sort((a, b) => a - b);
    }
    return this.steps;
  }

  constructor(
    readonly session: DiffSession,
    readonly scenario: Scenario,
  ) {
    const s = scenario;
    this.current = scenario;
    const gatewayEips = (s.natGateways ?? []).flatMap((g) =>
      g.addresses.flatMap((a) => (a.elasticIp === null ? [] : [a.elasticIp >>> 0])),
    );
    this.endpoints = [
      ...s.instances.map((inst, i) => ({ point: instancePoint(i), addr: inst.privateIp >>> 0 })),
      ...FUZZ_PEERS.map((p) => ({ point: POINT_INTERNET, addr: parseIpv4Addr(p) })),
    ];
    // Prefer realistic targets: internet peers first, then Elastic IPs (with the DNAT port), then
    // private addresses.
    this.targets = [
      ...FUZZ_PEERS.map((p) => ({ addr: parseIpv4Addr(p) })),
      ...s.instances
        .filter((i) => i.elasticIp !== null)
        .map((i) => ({ addr: i.elasticIp! >>> 0, port: i.nat ? FUZZ_DNAT_PORT : undefined })),
      ...s.instances.map((i) => ({ addr: i.privateIp >>> 0, port: i.nat ? FUZZ_DNAT_PORT : undefined })),
      ...gatewayEips.map((addr) => ({ addr })),
    ];
    // A NAT instance that redirects what reaches it (DNAT to its own address, as a transparent
    // proxy's REDIRECT) is a frequent target, so clients meet it from one source port on two of
    // its ports: the nat INPUT null binding's source-port search (nf_nat_edemux.sh's second part).
    // Other scenarios keep their targets (and every seed its draws).
    for (const i of s.instances) {
      const own = i.privateIp >>> 0;
      const rule = i.nat?.chains.PREROUTING.find((x) => x.target.kind === 'DNAT' && x.target.addrLo >>> 0 === own);
      if (!rule) continue;
      for (let k = 0; k < 4; k++) this.targets.push({ addr: own });
      this.redirectProto.set(own, rule.proto?.proto === PROTO_UDP ? 'udp' : 'tcp');
    }
    this.eipSet = new Set([
      ...s.instances.flatMap((i) => (i.elasticIp === null ? [] : [i.elasticIp >>> 0])),
      ...gatewayEips,
    ]);
  }

  /**
   * Target `to` for a packet from endpoint `e`. From inside the VPC an Elastic IP target is
   * replaced by an internet peer: such hairpin traffic crosses a NAT twice, and the second
   * crossing's conntrack keys contain the first crossing's randomly chosen port — state that no
   * port renaming can line up between engines (their legitimately different choices then make
   * different entries collide).
   */
  target(e: { point: number }, to: number): { addr: number; port?: number } {
    const t = this.targets[to % this.targets.length];
    if (e.point !== POINT_INTERNET && this.eipSet.has(t.addr)) return this.targets[to % FUZZ_PEERS.length];
    return t;
  }

  /**
   * True for a NAT instance's own point. natlab does not run an instance's own outgoing packets
   * through its conntrack (docs/semantics.md §2: the path starts at the ENI), so a NAT instance's
   * own connection may share a port with one of its mappings and its replies then follow that
   * mapping: the "replies reach the original sender" invariant does not apply to such flows.
   */
  natInstancePoint(point: number): boolean {
    return point !== POINT_INTERNET && this.scenario.instances[point - 1]?.nat != null;
  }

  pointOf(addr: number): number {
    const i = this.scenario.instances.findIndex((x) => x.privateIp >>> 0 === addr >>> 0);
    return i >= 0 ? instancePoint(i) : POINT_INTERNET;
  }

  async send(
    ingress: number,
    frame: Uint8Array,
    note: string,
    expect?: ReplyExpectation,
    damage?: Damage,
  ): Promise<PacketResult | null> {
    const r = await this.session.send(ingress, frame, { expect, damage, note });
    if (!r) return null;
    this.sent.push({ ingress, frame });
    for (const o of r.outputs) {
      this.outputs.push(o);
      if (this.outputs.length > 64) this.outputs.shift();
    }
    this.claimTuple(r.outputs[0]);
    return r;
  }

  /** After a forward-direction packet: learn what the responder saw. */
  learn(f: Flow, r: PacketResult | null): void {
    const o = r?.outputs[0];
    if (!o) return;
    const pv = new PacketView();
    if (parseIpv4(o.frame, 0, o.frame.length, pv) !== PARSE_OK) return;
    const proto = f.proto === 'tcp' ? PROTO_TCP : f.proto === 'udp' ? PROTO_UDP : PROTO_ICMP;
    if (pv.proto !== proto || (proto === PROTO_ICMP && pv.isIcmpError)) return;
    f.lastOut = o;
    f.rPoint = o.egress;
    f.rAddr = pv.dst >>> 0;
    f.rPort = proto === PROTO_ICMP ? 0 : pv.dport;
    f.peerAddr = pv.src >>> 0;
    f.peerPort = proto === PROTO_ICMP ? pv.icmpId : pv.sport;
    this.disown(f, f.proto, o.egress, f.rAddr, f.rPort, f.peerAddr, f.peerPort);
    f.owner = true;
  }

  /**
   * Whatever command sent it (a flow's packet, a flood, a shape, a replay of an earlier input), a
   * forwarded TCP/UDP/ICMP-query packet now owns the tuple its receiver saw: flows that held that
   * tuple lose their reply expectation (a flow's own packets re-claim it in learn()).
   */
  private claimTuple(o: { egress: number; frame: Uint8Array } | undefined): void {
    if (!o || parseIpv4(o.frame, 0, o.frame.length, claimView) !== PARSE_OK) return;
    const pv = claimView;
    if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP)
      this.disown(
        null,
        pv.proto === PROTO_TCP ? 'tcp' : 'udp',
        o.egress,
        pv.dst >>> 0,
        pv.dport,
        pv.src >>> 0,
        pv.sport,
      );
    else if (pv.proto === PROTO_ICMP && !pv.isIcmpError)
      this.disown(null, 'icmp', o.egress, pv.dst >>> 0, 0, pv.src >>> 0, pv.icmpId);
  }

  /**
   * A packet reached the responder as (peerAddr:peerPort → rAddr:rPort at rPoint): every other
   * flow that the responder saw with that tuple has lost its mapping to it (the old entry expired
   * and a new connection — a tracked flow or a flood packet — now holds the port), so its replies
   * no longer have to reach its original sender.
   */
  disown(
    except: Flow | null,
    proto: Flow['proto'],
    rPoint: number,
    rAddr: number,
    rPort: number,
    peerAddr: number,
    peerPort: number,
  ): void {
    for (const g of this.flows) {
      if (
        g !== except &&
        g.proto === proto &&
        g.rPoint === rPoint &&
        g.rAddr === rAddr &&
        g.rPort === rPort &&
        g.peerAddr === peerAddr &&
        g.peerPort === peerPort
      )
        g.owner = false;
    }
  }
}

/**
 * Where a packet of flow `f` enters and its addresses: forward = initiator → destination; reply =
 * responder (as the initiator's packets were seen) → initiator, with the reply expectation the
 * invariants check when the flow still owns its mapping.
 */
function flowEnds(
  r: FuzzReal,
  f: Flow,
  reply: boolean,
): { point: number; src: number; dst: number; sport: number; dport: number; expect?: ReplyExpectation } {
  if (!reply) return { point: f.iPoint, src: f.iAddr, dst: f.dAddr, sport: f.iPort, dport: f.dPort };
  const expect =
    f.rPoint !== null && f.owner && !f.spoofed && !r.natInstancePoint(f.iPoint)
      ? { egress: f.iPoint, dst: f.iAddr, dport: f.iPort }
      : undefined;
  return {
    point: f.rPoint ?? r.pointOf(f.dAddr),
    src: f.rAddr,
    dst: f.peerAddr,
    sport: f.rPort,
    dport: f.peerPort,
    expect,
  };
}

/**
 * Options of a SYN or SYN/ACK the fuzzer sends, varied by flow (mangle TCPMSS rules lower, keep
 * or insert an MSS): none, an MSS around the usual clamps, or an MSS behind NOPs and SACK-permitted.
 */
function synOptions(id: number): Uint8Array | undefined {
  const mss = [1460, 9000, 500, 8961, 65535, 1400][id % 6];
  switch (id % 4) {
    case 0:
      return undefined;
    case 1:
      return Uint8Array.of(2, 4, mss >>> 8, mss & 0xff);
    case 2:
      return Uint8Array.of(1, 1, 4, 2, 2, 4, mss >>> 8, mss & 0xff);
    default:
      return Uint8Array.of(2, 4, mss >>> 8, mss & 0xff, 1, 3, 3, 7);
  }
}

/** Sends one TCP segment of flow `f` (reply = responder → initiator); advances its sequence numbers. */
async function sendTcp(
  r: FuzzReal,
  f: Flow,
  reply: boolean,
  flags: number,
  len: number,
): Promise<{ text: string; res: PacketResult | null }> {
  const { point, src, dst, sport, dport, expect } = flowEnds(r, f, reply);
  const pay = len > 0 ? PAYLOAD(len, f.id) : undefined;
  const seq = reply ? f.seqR : f.seqI;
  const ack = flags & F_ACK ? (reply ? f.seqI : f.seqR) : 0;
  const options = flags & F_SYN ? synOptions(f.id + (reply ? 1 : 0)) : undefined;
  const frame = buildTcp({
    src,
    dst,
    sport,
    dport,
    flags,
    seq,
    ack,
    payload: pay,
    ipId: r.commands++ & 0xffff,
    options,
  });
  const adv = (pay?.length ?? 0) + (flags & (F_SYN | F_FIN) ? 1 : 0);
  if (reply) f.seqR = (f.seqR + adv) >>> 0;
  else f.seqI = (f.seqI + adv) >>> 0;
  const text = `${reply ? 'in' : 'fwd'}[#${f.id} ${ep(src, sport, 'tcp')}>${ep(dst, dport, 'tcp')} tcp ${tcpFlagsText(flags)}${pay ? ` len=${pay.length}` : ''}]`;
  const res = await r.send(point, frame, text, expect);
  if (!reply) r.learn(f, res);
  return { text, res };
}

/** fast-check's model: only counts, so every command applies and shrinking stays simple. */
export interface FuzzModel {
  flows: number;
}

type Cmd = fc.AsyncCommand<FuzzModel, FuzzReal, false>;

function ep(addr: number, port: number, proto: Proto): string {
  return proto === 'icmp' ? formatIpv4(addr) : `${formatIpv4(addr)}:${port}`;
}

const PAYLOAD = (n: number, salt: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + salt) & 0xff);

// ---------------------------------------------------------------------------------------------

/** out[...]: a new flow's first packet (TCP SYN, UDP datagram, ICMP echo/timestamp). */
class OpenCmd implements Cmd {
  private text = '';
  constructor(
    readonly proto: Proto,
    readonly from: number,
    readonly to: number,
    readonly sport: number,
    readonly dport: number,
    readonly spoof: boolean,
    readonly timestamp: boolean,
    readonly handshake = false,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: FuzzModel, r: FuzzReal): Promise<void> {
    const e = r.endpoints[this.from % r.endpoints.length];
    const t = r.target(e, this.to);
    const src = this.spoof ? (e.addr + 77) >>> 0 : e.addr;
    const dst = t.addr === e.addr ? r.targets[0].addr : t.addr;
    const dport = t.port !== undefined && this.dport % 3 === 0 ? t.port : this.dport;
    const id = r.flows.length;
    const f: Flow = {
      id,
      proto: this.proto,
      iPoint: e.point,
      iAddr: src,
      iPort: this.sport,
      dAddr: dst,
      dPort: dport,
      rPoint: null,
      rAddr: dst,
      rPort: dport,
      peerAddr: src,
      peerPort: this.sport,
      owner: false,
      spoofed: this.spoof,
      seqI: 1000 + id * 100000,
      seqR: 5000000 + id * 100000,
      icmpSeq: 1,
      icmpType: this.timestamp ? ICMP_TIMESTAMP : ICMP_ECHO,
      lastOut: null,
    };
    r.flows.push(f);
    m.flows++;
    let frame: Uint8Array;
    if (this.proto === 'tcp') {
      frame = buildTcp({
        src,
        dst,
        sport: this.sport,
        dport,
        flags: F_SYN,
        seq: f.seqI,
        ipId: id,
        options: synOptions(id),
      });
      f.seqI++;
      this.text = `out[${ep(src, this.sport, 'tcp')}>${ep(dst, dport, 'tcp')} tcp S]`;
    } else if (this.proto === 'udp') {
      frame = buildUdp({ src, dst, sport: this.sport, dport, payload: PAYLOAD(8 + (id % 5), id), ipId: id });
      this.text = `out[${ep(src, this.sport, 'udp')}>${ep(dst, dport, 'udp')} udp]`;
    } else {
      frame = buildIcmpQuery({
        src,
        dst,
        type: f.icmpType,
        id: this.sport,
        seq: f.icmpSeq++,
        payload: PAYLOAD(f.icmpType === ICMP_TIMESTAMP ? 12 : 16, id),
        ipId: id,
      });
      this.text = `out[${formatIpv4(src)}>${formatIpv4(dst)} icmp ${this.timestamp ? 'timestamp' : 'echo'} id=${this.sport}]`;
    }
    this.text = `#${id} ${this.text}`;
    const res = await r.send(e.point, frame, this.text);
    r.learn(f, res);
    if (this.proto === 'tcp' && this.handshake) {
      // The rest of the three-way handshake: SYN-ACK from what the responder saw, then ACK.
      await sendTcp(r, f, true, F_SYN | F_ACK, 0);
      await sendTcp(r, f, false, F_ACK, 0);
      this.text = `#${id} open[${ep(src, this.sport, 'tcp')}>${ep(dst, dport, 'tcp')} tcp S, S., .]`;
    }
  }
  toString(): string {
    return (
      this.text ||
      `${this.handshake ? 'open' : 'out'}[${this.proto} from=${this.from} to=${this.to} ${this.sport}>${this.dport}${this.spoof ? ' spoofed' : ''}]`
    );
  }
}

type TcpKind = 'S' | 'SA' | 'A' | 'PA' | 'FA' | 'R' | 'RA';
const TCP_KIND_FLAGS: Record<TcpKind, number> = {
  S: F_SYN,
  SA: F_SYN | F_ACK,
  A: F_ACK,
  PA: F_PSH | F_ACK,
  FA: F_FIN | F_ACK,
  R: F_RST,
  RA: F_RST | F_ACK,
};

/** in[#k ...] (responder → initiator) or fwd[#k ...] (initiator → responder) on an existing flow. */
class FlowCmd implements Cmd {
  private text = '';
  constructor(
    readonly flow: number,
    readonly reply: boolean,
    readonly tcpKind: TcpKind,
    readonly len: number,
  ) {}
  check(m: FuzzModel): boolean {
    return m.flows > 0;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    if (r.flows.length === 0) return;
    const f = r.flows[this.flow % r.flows.length];
    const proto = f.proto;
    const { point, src, dst, sport, dport, expect } = flowEnds(r, f, this.reply);
    let frame: Uint8Array;
    const dir = this.reply ? 'in' : 'fwd';
    if (proto === 'tcp') {
      const flags = TCP_KIND_FLAGS[this.tcpKind];
      this.text = (await sendTcp(r, f, this.reply, flags, this.tcpKind === 'PA' ? this.len : 0)).text;
      return;
    }
    if (proto === 'udp') {
      frame = buildUdp({ src, dst, sport, dport, payload: PAYLOAD(this.len, f.id + 1), ipId: r.commands });
      this.text = `${dir}[#${f.id} ${ep(src, sport, 'udp')}>${ep(dst, dport, 'udp')} udp len=${this.len}]`;
    } else {
      const type = this.reply ? (f.icmpType === ICMP_TIMESTAMP ? ICMP_TIMESTAMPREPLY : ICMP_ECHOREPLY) : f.icmpType;
      const id = this.reply ? f.peerPort : f.iPort;
      frame = buildIcmpQuery({
        src,
        dst,
        type,
        id,
        seq: f.icmpSeq,
        payload: PAYLOAD(type === ICMP_TIMESTAMP || type === ICMP_TIMESTAMPREPLY ? 12 : 16, f.id),
        ipId: r.commands,
      });
      if (!this.reply) f.icmpSeq++;
      this.text = `${dir}[#${f.id} ${formatIpv4(src)}>${formatIpv4(dst)} icmp ${this.reply ? 'reply' : 'request'} id=${id}]`;
    }
    r.commands++;
    const res = await r.send(point, frame, this.text, expect);
    if (!this.reply) r.learn(f, res);
  }
  toString(): string {
    return this.text || `${this.reply ? 'in' : 'fwd'}[#${this.flow} ${this.tcpKind}]`;
  }
}

/** The k-th (modulo) TCP flow opened so far, or null when there is none. */
function pickTcpFlow(r: FuzzReal, k: number): FuzzReal['flows'][number] | null {
  const tcp = r.flows.filter((f) => f.proto === 'tcp');
  return tcp.length === 0 ? null : tcp[k % tcp.length];
}

/** close[#k ...]: an orderly TCP close (FIN, FIN-ACK, ACK) started by either side. */
class CloseCmd implements Cmd {
  private text = '';
  constructor(
    readonly flow: number,
    readonly byResponder: boolean,
    readonly halfOnly: boolean,
  ) {}
  check(m: FuzzModel): boolean {
    return m.flows > 0;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const f = pickTcpFlow(r, this.flow);
    if (!f) return;
    const a = this.byResponder;
    await sendTcp(r, f, a, F_FIN | F_ACK, 0);
    if (this.halfOnly) {
      await sendTcp(r, f, !a, F_ACK, 0);
      this.text = `close[#${f.id} by ${a ? 'responder' : 'initiator'}: F., . (half-closed)]`;
      return;
    }
    await sendTcp(r, f, !a, F_FIN | F_ACK, 0);
    await sendTcp(r, f, a, F_ACK, 0);
    this.text = `close[#${f.id} by ${a ? 'responder' : 'initiator'}: F., F., .]`;
  }
  toString(): string {
    return this.text || `close[#${this.flow}${this.byResponder ? ' by responder' : ''}]`;
  }
}

/**
 * rst[#k ...]: an RST on a TCP flow whose sequence number is the expected one plus `delta` (issue
 * 15 D1: exact → CLOSE, below → INVALID "invalid rst", above → in window but inexact: ESTABLISHED
 * is kept for the challenge ACK). Does not advance the flow's sequence numbers.
 */
class RstCmd implements Cmd {
  private text = '';
  constructor(
    readonly flow: number,
    readonly reply: boolean,
    readonly delta: number,
    readonly withAck: boolean,
  ) {}
  check(m: FuzzModel): boolean {
    return m.flows > 0;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const f = pickTcpFlow(r, this.flow);
    if (!f) return;
    const { point, src, dst, sport, dport, expect } = flowEnds(r, f, this.reply);
    const seq = ((this.reply ? f.seqR : f.seqI) + this.delta) >>> 0;
    const flags = this.withAck ? F_RST | F_ACK : F_RST;
    const ack = this.withAck ? (this.reply ? f.seqI : f.seqR) : 0;
    const frame = buildTcp({ src, dst, sport, dport, flags, seq, ack, ipId: r.commands++ & 0xffff });
    this.text = `rst[#${f.id} ${ep(src, sport, 'tcp')}>${ep(dst, dport, 'tcp')} tcp ${tcpFlagsText(flags)} seq${this.delta >= 0 ? '+' : ''}${this.delta}]`;
    const res = await r.send(point, frame, this.text, expect);
    if (!this.reply) r.learn(f, res);
  }
  toString(): string {
    return this.text || `rst[#${this.flow}${this.reply ? ' by responder' : ''} seq${this.delta}]`;
  }
}

/** Which sequence number a synsent[] RST carries. */
export type SynSentRstSeq = 'challenge' | 'expected' | 'data-end';
/** What a synsent[] RST acknowledges: nothing (no ACK flag), the responder's data end, or the challenge ACK's ack. */
export type SynSentRstAck = 'none' | 'data-end' | 'challenge';

/**
 * synsent[#k ...]: the RST shortcuts of a connection the conntrack sees half-open (issue 15; fuzz
 * seed 992001 run 47). The responder sends an ACK-class segment (optionally with data) whose ack
 * is the expected one or a stale value (an RFC 5961 challenge ACK from an old connection's state);
 * in SYN_SENT it is ignored and remembered (last_end, last_ack). Optionally the initiator
 * retransmits its SYN; then one side sends an RST whose seq and ack are chosen among the values
 * the kernel's `goto in_window` tests compare: the challenge ACK's ack ("Reset in response to a
 * challenge-ack"), the ignored segment's end ("RST sent to invalid SYN or ACK we had let
 * through", which after a SYN only the other side's RST takes). Does not advance the flow.
 */
class SynSentCmd implements Cmd {
  private text = '';
  constructor(
    readonly flow: number,
    readonly len: number,
    readonly staleAck: boolean,
    readonly synRetrans: boolean,
    readonly rstByResponder: boolean,
    readonly rstSeq: SynSentRstSeq,
    readonly rstAck: SynSentRstAck,
  ) {}
  check(m: FuzzModel): boolean {
    return m.flows > 0;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    // Newest first: a flow opened by a lone SYN a few commands ago is the likeliest in SYN_SENT.
    const tcp = r.flows.filter((x) => x.proto === 'tcp');
    if (tcp.length === 0) return;
    const f = tcp[tcp.length - 1 - (this.flow % tcp.length)];
    const parts: string[] = [];
    // The responder's segment: seq = its next, ack = the initiator's next or a stale value.
    const challengeAck = this.staleAck ? (f.seqI + 0x20000000) >>> 0 : f.seqI;
    const dataEnd = (f.seqR + this.len) >>> 0;
    {
      const { point, src, dst, sport, dport, expect } = flowEnds(r, f, true);
      const flags = this.len > 0 ? F_PSH | F_ACK : F_ACK;
      const payload = this.len > 0 ? PAYLOAD(this.len, f.id) : undefined;
      const frame = buildTcp({
        src,
        dst,
        sport,
        dport,
        flags,
        seq: f.seqR,
        ack: challengeAck,
        payload,
        ipId: r.commands++ & 0xffff,
      });
      const text = `in[#${f.id} tcp ${tcpFlagsText(flags)}${payload ? ` len=${this.len}` : ''} ack${this.staleAck ? ' stale' : ''}]`;
      parts.push(text);
      await r.send(point, frame, text, expect);
    }
    if (this.synRetrans) {
      const { point, src, dst, sport, dport, expect } = flowEnds(r, f, false);
      const frame = buildTcp({
        src,
        dst,
        sport,
        dport,
        flags: F_SYN,
        seq: (f.seqI - 1) >>> 0,
        ack: 0,
        ipId: r.commands++ & 0xffff,
        options: synOptions(f.id),
      });
      const text = `fwd[#${f.id} tcp S (retransmitted)]`;
      parts.push(text);
      r.learn(f, await r.send(point, frame, text, expect));
    }
    {
      const reply = this.rstByResponder;
      const { point, src, dst, sport, dport, expect } = flowEnds(r, f, reply);
      const own = reply ? dataEnd : f.seqI;
      const seq = this.rstSeq === 'challenge' ? challengeAck : this.rstSeq === 'data-end' ? dataEnd : own;
      const ack = this.rstAck === 'none' ? 0 : this.rstAck === 'data-end' ? dataEnd : challengeAck;
      const flags = this.rstAck === 'none' ? F_RST : F_RST | F_ACK;
      const frame = buildTcp({ src, dst, sport, dport, flags, seq, ack, ipId: r.commands++ & 0xffff });
      const text = `${reply ? 'in' : 'fwd'}[#${f.id} tcp ${tcpFlagsText(flags)} seq=${this.rstSeq} ack=${this.rstAck}]`;
      parts.push(text);
      const res = await r.send(point, frame, text, expect);
      if (!reply) r.learn(f, res);
    }
    this.text = `synsent[#${f.id}: ${parts.join(', ')}]`;
  }
  toString(): string {
    return (
      this.text ||
      `synsent[#${this.flow} len=${this.len}${this.staleAck ? ' stale' : ''}${this.synRetrans ? ' +S' : ''} R by ${this.rstByResponder ? 'responder' : 'initiator'} seq=${this.rstSeq} ack=${this.rstAck}]`
    );
  }
}

/** Which field an oow[] segment puts out of window. */
export type OowField = 'seq' | 'ack';

/**
 * oow[#k ...]: a TCP segment on a flow with its sequence number (or its ACK) moved by `delta` from
 * the expected one (issue 15 K4, tcp_in_window): far ahead of the receiver's window or of what the
 * peer sent → INVALID (not NATed), behind it → ignored or INVALID, a little ahead → an overshoot
 * the kernel ignores; with a window of `win`. Does not advance the flow's sequence numbers.
 */
class OutOfWindowCmd implements Cmd {
  private text = '';
  constructor(
    readonly flow: number,
    readonly reply: boolean,
    readonly field: OowField,
    readonly delta: number,
    readonly len: number,
    readonly win: number,
    readonly fin: boolean,
  ) {}
  check(m: FuzzModel): boolean {
    return m.flows > 0;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const f = pickTcpFlow(r, this.flow);
    if (!f) return;
    const { point, src, dst, sport, dport, expect } = flowEnds(r, f, this.reply);
    const d = this.delta >>> 0;
    const seq = ((this.reply ? f.seqR : f.seqI) + (this.field === 'seq' ? d : 0)) >>> 0;
    const ack = ((this.reply ? f.seqI : f.seqR) + (this.field === 'ack' ? d : 0)) >>> 0;
    const flags = this.fin ? F_FIN | F_ACK : this.len > 0 ? F_PSH | F_ACK : F_ACK;
    const pay = this.len > 0 ? PAYLOAD(this.len, f.id) : undefined;
    const frame = buildTcp({
      src,
      dst,
      sport,
      dport,
      flags,
      seq,
      ack,
      window: this.win,
      payload: pay,
      ipId: r.commands++ & 0xffff,
    });
    const sign = this.delta >= 0 ? '+' : '';
    this.text = `oow[#${f.id} ${ep(src, sport, 'tcp')}>${ep(dst, dport, 'tcp')} tcp ${tcpFlagsText(flags)}${pay ? ` len=${pay.length}` : ''} ${this.field}${sign}${this.delta} win=${this.win}]`;
    const res = await r.send(point, frame, this.text, expect);
    if (!this.reply) r.learn(f, res);
  }
  toString(): string {
    return this.text || `oow[#${this.flow}${this.reply ? ' by responder' : ''} ${this.field}${this.delta}]`;
  }
}

/**
 * retrans[#k ...]: `copies` identical data segments (a retransmission burst: tcp_in_window counts
 * them, and from nf_conntrack_tcp_max_retrans on the entry's timeout is capped), then the flow
 * goes on after the data.
 */
class RetransCmd implements Cmd {
  private text = '';
  constructor(
    readonly flow: number,
    readonly reply: boolean,
    readonly copies: number,
    readonly len: number,
    readonly win: number,
  ) {}
  check(m: FuzzModel): boolean {
    return m.flows > 0;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const f = pickTcpFlow(r, this.flow);
    if (!f) return;
    const { point, src, dst, sport, dport, expect } = flowEnds(r, f, this.reply);
    const seq = this.reply ? f.seqR : f.seqI;
    const ack = this.reply ? f.seqI : f.seqR;
    const pay = this.len > 0 ? PAYLOAD(this.len, f.id) : undefined;
    const flags = pay ? F_PSH | F_ACK : F_ACK;
    this.text = `retrans[#${f.id} ${ep(src, sport, 'tcp')}>${ep(dst, dport, 'tcp')} tcp ${tcpFlagsText(flags)}${pay ? ` len=${pay.length}` : ''} win=${this.win} ×${this.copies}]`;
    for (let k = 0; k < this.copies; k++) {
      // The same segment each time (the IP id too: a retransmission by the sender's stack).
      const frame = buildTcp({
        src,
        dst,
        sport,
        dport,
        flags,
        seq,
        ack,
        window: this.win,
        payload: pay,
        ipId: r.commands & 0xffff,
      });
      const res = await r.send(point, frame, this.text, expect);
      if (!this.reply) r.learn(f, res);
    }
    r.commands++;
    if (this.reply) f.seqR = (f.seqR + this.len) >>> 0;
    else f.seqI = (f.seqI + this.len) >>> 0;
  }
  toString(): string {
    return this.text || `retrans[#${this.flow}${this.reply ? ' by responder' : ''} ×${this.copies}]`;
  }
}

/** Multicast and limited broadcast destinations the VPC router does not carry (issue 15 D3). */
const MULTICAST_DSTS: readonly [string, number][] = [
  ['224.0.0.251', 5353],
  ['224.0.0.252', 5355],
  ['239.255.255.250', 1900],
  ['255.255.255.255', 67],
];

/** mcast[...]: a UDP datagram from an endpoint to a multicast or broadcast address (mDNS, LLMNR, SSDP, DHCP). */
class MulticastCmd implements Cmd {
  private text = '';
  constructor(
    readonly from: number,
    readonly which: number,
    readonly sport: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const e = r.endpoints[this.from % r.endpoints.length];
    const [addr, dport] = MULTICAST_DSTS[this.which % MULTICAST_DSTS.length];
    const dst = parseIpv4Addr(addr);
    const frame = buildUdp({ src: e.addr, dst, sport: this.sport, dport, payload: PAYLOAD(12, this.which) });
    this.text = `mcast[${ep(e.addr, this.sport, 'udp')}>${addr}:${dport} udp]`;
    r.commands++;
    await r.send(e.point, frame, this.text);
  }
  toString(): string {
    return this.text || `mcast[${this.from} ${this.which}]`;
  }
}

/** The gaps (ms) between a ttlburst's packets: back to back, then either side of icmp_ratelimit's refill. */
export const TTL_BURST_GAPS_MS = [1, 1, 100, 999, 1000, 1001] as const;

/**
 * ttlburst[...]: packets whose TTL runs out at the next forwarding instance (TTL 1, or 2 to reach
 * the second of two), one after another: a traceroute hop's probes or a TTL-1 flood. What it
 * exercises is the instance's ICMP error rate limits (issue 15 K2, docs/semantics.md §6): burst,
 * per-destination refill, icmp_ratemask, the instance-wide credit. Engines with a real-time
 * clock get back-to-back packets only (no gap at a refill boundary).
 */
class TtlBurstCmd implements Cmd {
  private text = '';
  constructor(
    readonly from: number,
    readonly to: number,
    readonly count: number,
    readonly ttl: number,
    readonly gap: number,
    readonly proto: 'udp' | 'tcp',
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const e = r.endpoints[this.from % r.endpoints.length];
    const t = r.target(e, this.to);
    const gapMs = r.coarseTime ? 1 : TTL_BURST_GAPS_MS[this.gap % TTL_BURST_GAPS_MS.length];
    this.text = `ttlburst[${formatIpv4(e.addr)}>${formatIpv4(t.addr)} ${this.proto} ttl=${this.ttl} ×${this.count} every ${gapMs}ms]`;
    r.commands++;
    for (let k = 0; k < this.count; k++) {
      if (r.session.timeUs + gapMs * 1000 > MAX_VIRTUAL_US) return;
      const sport = 33434 + ((this.to + k) % 64);
      const frame =
        this.proto === 'udp'
          ? buildUdp({ src: e.addr, dst: t.addr, sport, dport: 33434 + k, ttl: this.ttl, payload: PAYLOAD(12, k) })
          : buildTcp({
              src: e.addr,
              dst: t.addr,
              sport,
              dport: t.port ?? 443,
              flags: F_SYN,
              seq: 1000 + k,
              ttl: this.ttl,
            });
      await r.session.send(e.point, frame, { note: this.text, timeUs: r.session.timeUs + gapMs * 1000 });
    }
  }
  toString(): string {
    return this.text || `ttlburst[${this.from}>${this.to} ×${this.count}]`;
  }
}

/** stray[...]: a TCP segment that belongs to no connection (ACK, FIN, RST, odd flags). */
class StrayCmd implements Cmd {
  private text = '';
  constructor(
    readonly from: number,
    readonly to: number,
    readonly sport: number,
    readonly dport: number,
    readonly flags: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const e = r.endpoints[this.from % r.endpoints.length];
    const t = r.target(e, this.to);
    const frame = buildTcp({
      src: e.addr,
      dst: t.addr,
      sport: this.sport,
      dport: this.dport,
      flags: this.flags,
      seq: 424242,
      ack: this.flags & F_ACK ? 777 : 0,
    });
    this.text = `stray[${ep(e.addr, this.sport, 'tcp')}>${ep(t.addr, this.dport, 'tcp')} tcp ${tcpFlagsText(this.flags)}]`;
    await r.send(e.point, frame, this.text);
  }
  toString(): string {
    return this.text || `stray[${this.from}>${this.to} flags=${this.flags}]`;
  }
}

/** flood[...]: one-way UDP from consecutive source ports (fills conntrack, exhausts port ranges). */
class FloodCmd implements Cmd {
  private text = '';
  constructor(
    readonly from: number,
    readonly to: number,
    readonly sport: number,
    readonly count: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const e = r.endpoints[this.from % r.endpoints.length];
    const t = r.target(e, this.to);
    const scan = r.redirectProto.get(t.addr);
    if (scan !== undefined && e.addr !== t.addr) {
      // At an instance that redirects its ports to one service: a scan of consecutive ports from
      // one source port (its connections clash after the redirect: the nat INPUT null binding
      // moves their source ports, nf_nat_edemux.sh).
      this.text = `scan[${ep(e.addr, this.sport, scan)}>${ep(t.addr, 53, scan)}..+${this.count - 1} ${scan} x${this.count}]`;
      for (let i = 0; i < this.count; i++) {
        const frame =
          scan === 'udp'
            ? buildUdp({ src: e.addr, dst: t.addr, sport: this.sport, dport: 53 + i, payload: PAYLOAD(4, i) })
            : buildTcp({
                src: e.addr,
                dst: t.addr,
                sport: this.sport,
                dport: 53 + i,
                flags: F_SYN,
                seq: 7000 + i,
                ipId: i,
              });
        await r.send(e.point, frame, this.text);
      }
      return;
    }
    this.text = `flood[${ep(e.addr, this.sport, 'udp')}..+${this.count - 1}>${ep(t.addr, 53, 'udp')} udp x${this.count}]`;
    for (let i = 0; i < this.count; i++) {
      const sp = ((this.sport + i - 1) % 65535) + 1;
      await r.send(
        e.point,
        buildUdp({ src: e.addr, dst: t.addr, sport: sp, dport: 53, payload: PAYLOAD(4, i) }),
        this.text,
      );
    }
  }
  toString(): string {
    return this.text || `flood[${this.from}>${this.to} x${this.count}]`;
  }
}

/** Most flows one shape command sends: big enough for a 3,000-peer fan-out, small enough for CI. */
export const SHAPE_MAX_FLOWS = 3000;

/**
 * shape[...]: flows at scale that share most of their key (src/traffic/flow-shapes.ts), one packet
 * each (UDP datagram or TCP SYN), from inside hosts (not a NAT instance's own point) to one
 * internet peer:
 *   fan-out       one socket (host:sport) → peer:dport, peer:dport+1, ... (a resolver, NTP, QUIC)
 *   fan-in        host:sport, host:sport+1, ... → peer:dport (many connections to one server)
 *   shared-sport  every inside host of the scenario with the same source port, round robin, each
 *                 to consecutive destination ports (many hosts behind one NAT picking one port)
 * These cluster a table keyed on the shared part and, with a small nf_conntrack_max, fill it.
 */
class ShapeCmd implements Cmd {
  private text = '';
  constructor(
    readonly shape: FlowShape,
    readonly proto: 'udp' | 'tcp',
    readonly from: number,
    readonly to: number,
    readonly sport: number,
    readonly dport: number,
    readonly count: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const hosts = r.endpoints.filter((e) => e.point !== POINT_INTERNET && !r.natInstancePoint(e.point));
    if (hosts.length === 0) return;
    const peer = parseIpv4Addr(FUZZ_PEERS[this.to % FUZZ_PEERS.length]);
    const first = hosts[this.from % hosts.length];
    const o = {
      shape: this.shape === 'shared-sport' ? ('fan-out' as const) : this.shape,
      count: this.count,
      proto: this.proto,
      point: first.point,
      src: first.addr,
      sport: this.sport,
      peer,
      dport: this.dport,
      startUs: 0,
      gapUs: 0,
    };
    const who =
      this.shape === 'shared-sport' ? `${hosts.length} hosts:${this.sport}` : ep(first.addr, this.sport, this.proto);
    this.text = `shape[${this.shape} ${who}>${ep(peer, this.dport, this.proto)} ${this.proto} x${this.count}]`;
    let delivered = 0;
    for (let k = 0; k < this.count; k++) {
      // shared-sport: host k mod n, each host fanning out over its own run of destination ports.
      const h = this.shape === 'shared-sport' ? hosts[k % hosts.length] : first;
      const f = shapeFlow(o, this.shape === 'shared-sport' ? Math.floor(k / hosts.length) : k);
      const frame =
        this.proto === 'udp'
          ? buildUdp({ src: h.addr, dst: f.dst, sport: f.sport, dport: f.dport, payload: PAYLOAD(4, k) })
          : buildTcp({ src: h.addr, dst: f.dst, sport: f.sport, dport: f.dport, flags: F_SYN, seq: 1000 + k });
      const res = await r.send(h.point, frame, this.text);
      const out = res?.outputs[0];
      if (!out) continue;
      delivered++;
    }
    if (delivered === this.count && this.count > r.shapeFlowsDelivered) r.shapeFlowsDelivered = this.count;
  }
  toString(): string {
    return this.text || `shape[${this.shape} ${this.proto} ${this.from}>${this.to} x${this.count}]`;
  }
}

const claimView = new PacketView();

const ERROR_KINDS: Array<[number, number, string]> = [
  [ICMP_DEST_UNREACH, 3, 'port-unreachable'],
  [ICMP_DEST_UNREACH, 1, 'host-unreachable'],
  [ICMP_DEST_UNREACH, 4, 'frag-needed'],
  [ICMP_TIME_EXCEEDED, 0, 'ttl-exceeded'],
  [ICMP_SOURCE_QUENCH, 0, 'source-quench'],
  [ICMP_PARAMETERPROB, 0, 'parameter-problem'],
];

/** icmp-error[...]: the receiver of an earlier output (or a router before it) reports an error. */
class IcmpErrorCmd implements Cmd {
  private text = '';
  constructor(
    readonly outIndex: number,
    readonly kind: number,
    readonly fullQuote: boolean,
    readonly fromRouter: boolean,
    readonly ofFlow = false,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    // Either about a flow (its responder, or a router before it, reports on the flow's latest
    // packet: the RELATED path), or about any recent output.
    const withOut = r.flows.filter((f) => f.lastOut !== null);
    let o: { egress: number; frame: Uint8Array };
    if (this.ofFlow && withOut.length > 0) o = withOut[this.outIndex % withOut.length].lastOut!;
    else if (r.outputs.length > 0) o = r.outputs[r.outputs.length - 1 - (this.outIndex % r.outputs.length)];
    else return;
    const pv = new PacketView();
    const st = parseIpv4(o.frame, 0, o.frame.length, pv);
    if (pv.ihl < 20 || st !== PARSE_OK) return;
    const [type, code, name] = ERROR_KINDS[this.kind % ERROR_KINDS.length];
    // From the internet: the destination host, or a router on the way (192.0.2.254 style).
    const src = o.egress === POINT_INTERNET && this.fromRouter ? parseIpv4Addr('198.51.100.254') : pv.dst >>> 0;
    const quoteLen = this.fullQuote ? Math.min(o.frame.length, 548) : pv.ihl + 8;
    const frame = buildIcmpError({
      src,
      dst: pv.src >>> 0,
      type,
      code,
      quoted: o.frame,
      quoteLen,
      rest: type === ICMP_DEST_UNREACH && code === 4 ? 1400 : 0,
    });
    this.text = `icmp-error[${formatIpv4(src)}>${formatIpv4(pv.src)} ${name} quoting ${this.fullQuote ? 'all of' : '28 bytes of'} (${describeShort(o.frame)})]`;
    await r.send(o.egress, frame, this.text);
  }
  toString(): string {
    return this.text || `icmp-error[out-${this.outIndex} kind=${this.kind}]`;
  }
}

function describeShort(f: Uint8Array): string {
  const pv = new PacketView();
  parseIpv4(f, 0, f.length, pv);
  if (pv.proto === PROTO_TCP)
    return `${ep(pv.src, pv.sport, 'tcp')}>${ep(pv.dst, pv.dport, 'tcp')} tcp ${tcpFlagsText(pv.tcpFlags)}`;
  if (pv.proto === PROTO_UDP) return `${ep(pv.src, pv.sport, 'udp')}>${ep(pv.dst, pv.dport, 'udp')} udp`;
  if (pv.proto === PROTO_ICMP)
    return `${formatIpv4(pv.src)}>${formatIpv4(pv.dst)} icmp type ${pv.icmpType}${isIcmpErrorType(pv.icmpType) ? '' : ` id=${pv.icmpId}`}`;
  return `${formatIpv4(pv.src)}>${formatIpv4(pv.dst)} proto ${pv.proto}`;
}

/** Clock steps chosen around the default timeouts (30 s udp/icmp, 10 s close, 60/120 s, 2 s stream). */
export const MAX_VIRTUAL_US = 20 * 86400 * 1e6;

export const ADVANCE_STEPS = [1, 2.5, 9.999, 10, 29.999, 30, 31, 59, 61, 119, 121, 301, 432001];

/** Packets looked back at by clearOfTimeoutBoundaries (the newest; older ones' timers have run out). */
const BOUNDARY_LOOKBACK_PACKETS = 256;
/** Distance kept from any timeout boundary on a real clock, seconds (the kernel lags and jitters). */
const BOUNDARY_MARGIN_S = 0.5;

/**
 * Real-clock engines (coarse time): the smallest step ≥ `s` (in 0.25 s increments, at most 40)
 * whose landing time is at least BOUNDARY_MARGIN_S away from every timeout boundary of the recent
 * packets — packet time + any scenario timeout. One step is chosen relative to the last packet
 * only; consecutive steps (1.5 s + 1.5 s after a flood) could otherwise land within milliseconds
 * of an entry's expiry, where the kernel's lag decides (campaign seed 880006 run 14).
 */
export function clearOfTimeoutBoundaries(
  r: Pick<FuzzReal, 'timeoutSteps'> & { session: Pick<FuzzReal['session'], 'timeUs' | 'events'> },
  s: number,
): number {
  const tos = r.timeoutSteps();
  const now = r.session.timeUs;
  const ev = r.session.events;
  const times: number[] = [];
  for (let i = ev.length - 1; i >= 0 && times.length < BOUNDARY_LOOKBACK_PACKETS; i--) {
    const e = ev[i];
    if (e.kind === 'packet') times.push(e.input.timeUs);
  }
  let step = s;
  for (let k = 0; k < 40; k++, step += 0.25) {
    const at = now + step * 1e6;
    const clash = times.some((p) => tos.some((t) => Math.abs(at - (p + t * 1e6)) < BOUNDARY_MARGIN_S * 1e6));
    if (!clash) return step;
  }
  return step;
}

/**
 * advance[...]: the clock jumps. Either a fixed step, or — more pointed — to just before, exactly
 * at, or just after one of the scenario's own timeouts (counted from the last packet), where
 * off-by-one expiry bugs live. Real-time engines (coarse time) get ±0.5 s around the timeouts and
 * no huge steps, so kernel timing jitter cannot decide the outcome.
 */
class AdvanceCmd implements Cmd {
  private seconds = 0;
  constructor(
    readonly fixed: number | null,
    readonly timeout: number,
    readonly delta: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const tos = r.timeoutSteps();
    let s: number;
    if (r.coarseTime) {
      s = clearOfTimeoutBoundaries(r, Math.max(0.5, tos[this.timeout % tos.length] + (this.delta < 2 ? -0.5 : 0.5)));
    } else if (this.fixed !== null) {
      s = this.fixed;
    } else {
      s = tos[this.timeout % tos.length] + [-0.001, 0, 0.001, 1][this.delta % 4];
    }
    this.seconds = Math.round(s * 1000) / 1000;
    // Keep a run within 20 virtual days (the core's clock spans at most 2^31 ms).
    if (r.session.timeUs + this.seconds * 1e6 > MAX_VIRTUAL_US) return;
    await r.session.advance(r.session.timeUs + Math.round(this.seconds * 1e6));
  }
  toString(): string {
    return this.seconds
      ? `advance[${this.seconds}s]`
      : this.fixed !== null
        ? `advance[${this.fixed}s]`
        : `advance[timeout ${this.timeout}${['-1ms', '', '+1ms', '+1s'][this.delta % 4]}]`;
  }
}

/**
 * filters[...]: a security-group rule or a network-ACL entry changes mid-run (scenarios with
 * security groups or ACLs only; fuzz-filters.ts mutateFilters): untracked flows and ACLs meet the
 * new rules at once, tracked flows keep going. Half of them (op 3..5: the change op % 3 keeps its
 * share) arrive as the scenario timeline's event (setSecurityGroupRules / setNetworkAclEntries,
 * Engine.applyTimelineEvent: `filters@timeline[...]`), the others through Engine.setFilterRules —
 * the engines take the two ways apart (the core's timeline event also forgets every composed path).
 */
class FilterChangeCmd implements Cmd {
  private text = '';
  constructor(
    readonly target: number,
    readonly op: number,
    readonly pick: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    const next = mutateFilters(r.current, this.target, this.op, this.pick);
    if (!next) return;
    if (this.op >= 3 && r.session.engines.every((e) => e.engine.applyTimelineEvent)) {
      const action: TimelineAction = {
        kind: 'setFilterRules',
        securityGroups: next.scenario.securityGroups ?? [],
        networkAcls: next.scenario.networkAcls ?? [],
        changed: next.changed,
      };
      const kind = next.changed.what === 'group' ? 'setSecurityGroupRules' : 'setNetworkAclEntries';
      this.text = `filters@timeline[${next.text}]`;
      await r.session.applyTimelineEvent({ at: 0, absolute: false, action, text: `${kind} ${next.changed.name}` });
      r.current = scenarioAfter(r.current, action);
      return;
    }
    this.text = `filters[${next.text}]`;
    await r.session.setFilterRules(next.scenario, this.text);
    r.current = next.scenario;
  }
  toString(): string {
    return this.text || `filters[${this.target}/${this.op}/${this.pick}]`;
  }
}

/**
 * timeline[...]: a scenario timeline event now (docs/semantics.md §14): stop or start an
 * instance, replace a non-local route's target (an instance's ENI, blackhole or the IGW), move an
 * Elastic IP to an instance without one, or move an ENI to a running instance of the same
 * configuration. Skipped when the scenario as it now is offers no such change.
 */
class TimelineCmd implements Cmd {
  private text = '';
  constructor(
    readonly what: number,
    readonly a: number,
    readonly b: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    // Engines without timeline events (test wrappers) get none.
    if (!r.session.engines.every((e) => e.engine.applyTimelineEvent)) return;
    const action = timelineAction(r.current, this.what, this.a, this.b);
    if (!action) return;
    this.text = `timeline[${action.text}]`;
    await r.session.applyTimelineEvent({ at: 0, absolute: false, action: action.action, text: action.text });
    r.current = scenarioAfter(r.current, action.action);
  }
  toString(): string {
    return this.text || `timeline[${this.what}/${this.a}/${this.b}]`;
  }
}

/** The timeline action `what` (0..4) picks in scenario s with choices a, b; null when none applies. */
export function timelineAction(
  s: Scenario,
  what: number,
  a: number,
  b: number,
): { action: TimelineAction; text: string } | null {
  const insts = s.instances;
  const name = (i: number): string => insts[i].name;
  const all = insts.map((_, i) => i);
  const pick = <T>(xs: T[], k: number): T | null => (xs.length === 0 ? null : xs[k % xs.length]);
  switch (what % 5) {
    case 0: {
      const i = pick(
        all.filter((i) => !insts[i].stopped),
        a,
      );
      return i === null ? null : { action: { kind: 'stopInstance', instance: i }, text: `stopInstance ${name(i)}` };
    }
    case 1: {
      const i = pick(
        all.filter((i) => insts[i].stopped),
        a,
      );
      return i === null ? null : { action: { kind: 'startInstance', instance: i }, text: `startInstance ${name(i)}` };
    }
    case 2: {
      const routes = s.routeTables.flatMap((t, ti) =>
        t.routes.flatMap((rt, ri) => (rt.target === 'local' ? [] : [{ ti, ri }])),
      );
      const at = pick(routes, a);
      if (!at) return null;
      const k = b % (insts.length + 2);
      const target: TimelineAction & { kind: 'replaceRoute' } =
        k < insts.length
          ? { kind: 'replaceRoute', routeTable: at.ti, route: at.ri, target: 'eni', targetIndex: k }
          : {
              kind: 'replaceRoute',
              routeTable: at.ti,
              route: at.ri,
              target: k === insts.length ? 'blackhole' : 'igw',
              targetIndex: -1,
            };
      const rt = s.routeTables[at.ti];
      const d = rt.routes[at.ri].dest;
      const tt = target.target === 'eni' ? `eni:${name(target.targetIndex)}` : target.target;
      return { action: target, text: `replaceRoute ${rt.name} ${formatIpv4(d.addr)}/${d.len} → ${tt}` };
    }
    case 3: {
      const from = pick(
        all.filter((i) => insts[i].elasticIp !== null),
        a,
      );
      const to = pick(
        all.filter((i) => insts[i].elasticIp === null && !insts[i].stopped),
        b,
      );
      if (from === null || to === null) return null;
      return { action: { kind: 'moveElasticIp', from, to }, text: `moveElasticIp ${name(from)} → ${name(to)}` };
    }
    default: {
      const same = (x: number, y: number): boolean =>
        x !== y &&
        !insts[y].stopped &&
        (insts[x].nat?.text ?? null) === (insts[y].nat?.text ?? null) &&
        (insts[x].mangle?.text ?? null) === (insts[y].mangle?.text ?? null) &&
        JSON.stringify(insts[x].sysctls) === JSON.stringify(insts[y].sysctls) &&
        insts[x].sourceDestCheck === insts[y].sourceDestCheck;
      const pairs = all.flatMap((x) => all.filter((y) => same(x, y)).map((y) => ({ x, y })));
      const p = pick(pairs, a);
      if (!p) return null;
      return { action: { kind: 'moveEni', from: p.x, to: p.y }, text: `moveEni ${name(p.x)} → ${name(p.y)}` };
    }
  }
}

/** replay[...]: an earlier input again, byte for byte (reference space), now. */
class ReplayCmd implements Cmd {
  private text = '';
  constructor(readonly back: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    if (r.sent.length === 0) return;
    const s = r.sent[r.sent.length - 1 - (this.back % r.sent.length)];
    this.text = `replay[${describeShort(s.frame)}]`;
    await r.send(s.ingress, s.frame, this.text);
  }
  toString(): string {
    return this.text || `replay[-${this.back}]`;
  }
}

/** malformed[...]: an earlier input again, damaged. */
class MalformedCmd implements Cmd {
  private text = '';
  constructor(
    readonly back: number,
    readonly damage: Damage,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: FuzzModel, r: FuzzReal): Promise<void> {
    if (r.sent.length === 0) return;
    const s = r.sent[r.sent.length - 1 - (this.back % r.sent.length)];
    this.text = `malformed[${damageText(this.damage)} ${describeShort(s.frame)}]`;
    await r.session.send(s.ingress, s.frame, { damage: this.damage, note: this.text });
  }
  toString(): string {
    return this.text || `malformed[-${this.back} ${damageText(this.damage)}]`;
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const portArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 32768, max: 32775 }) }, // few distinct ports: collisions
  { weight: 1, arbitrary: fc.integer({ min: 1024, max: 65535 }) },
  { weight: 1, arbitrary: fc.constantFrom(53, 80, 123, 443, 600, 1023, 1024, 1025) },
);
const dportArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(53, 80, 443, FUZZ_DNAT_PORT) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 65535 }) },
);
const protoArb = fc.constantFrom<Proto>('tcp', 'tcp', 'udp', 'udp', 'icmp');
const idx = fc.nat({ max: 15 });
const rare = (n: number) => fc.nat({ max: n - 1 }).map((x) => x === 0);

const damageArb: fc.Arbitrary<Damage> = fc
  .record({ kind: fc.constantFrom(...DAMAGE_KINDS), arg: fc.constantFrom(0, 1, 2, 10, 19, 21, 24, 27, 30, 40) })
  .map((d) => (d.kind === 'ttl' ? { kind: d.kind, arg: d.arg % 3 } : d));

const tcpKindArb = fc.constantFrom<TcpKind>('SA', 'SA', 'A', 'A', 'PA', 'PA', 'FA', 'R', 'RA', 'S');

const shapeArb: fc.Arbitrary<Cmd> = fc
  .tuple(
    fc.constantFrom(...FLOW_SHAPES),
    fc.constantFrom<'udp' | 'tcp'>('udp', 'udp', 'tcp'),
    idx,
    idx,
    portArb,
    dportArb,
    fc.oneof(
      { weight: 2, arbitrary: fc.constant(SHAPE_MAX_FLOWS) },
      { weight: 1, arbitrary: fc.integer({ min: 200, max: SHAPE_MAX_FLOWS }) },
    ),
  )
  .map(([sh, p, a, b, s, d, c]) => new ShapeCmd(sh, p, a, b, s, d, c));

const floodArb: fc.Arbitrary<Cmd> = fc
  .tuple(idx, idx, portArb, fc.integer({ min: 2, max: 12 }))
  .map(([a, b, s, c]) => new FloodCmd(a, b, s, c));

export const fuzzCommandArbs: Array<fc.Arbitrary<Cmd>> = [
  fc.tuple(fc.nat(31), fc.nat(5), fc.nat(63)).map(([t, o, p]) => new FilterChangeCmd(t, o, p)),
  fc.tuple(fc.nat(4), fc.nat(31), fc.nat(31)).map(([w, a, b]) => new TimelineCmd(w, a, b)),
  fc
    .tuple(protoArb, idx, idx, portArb, dportArb, rare(12), rare(8))
    .map(([p, a, b, s, d, sp, ts]) => new OpenCmd(p, a, b, s, d, sp, ts)),
  fc
    .tuple(idx, idx, portArb, dportArb, rare(12))
    .map(([a, b, s, d, sp]) => new OpenCmd('tcp', a, b, s, d, sp, false, true)),
  fc.tuple(idx, fc.boolean(), rare(4)).map(([f, by, half]) => new CloseCmd(f, by, half)),
  fc
    .tuple(idx, fc.boolean(), tcpKindArb, fc.integer({ min: 1, max: 64 }))
    .map(([f, rep, k, l]) => new FlowCmd(f, rep, k, l)),
  fc
    .tuple(idx, fc.boolean(), tcpKindArb, fc.integer({ min: 1, max: 64 }))
    .map(([f, rep, k, l]) => new FlowCmd(f, rep, k, l)),
  fc
    .tuple(
      idx,
      idx,
      portArb,
      dportArb,
      fc.constantFrom(
        F_ACK,
        F_FIN | F_ACK,
        F_RST,
        F_RST | F_ACK,
        F_PSH | F_ACK,
        F_SYN | F_FIN,
        F_FIN,
        0,
        F_SYN | F_URG,
        F_SYN | F_RST,
      ),
    )
    .map(([a, b, s, d, fl]) => new StrayCmd(a, b, s, d, fl)),
  floodArb,
  fc
    .tuple(idx, fc.boolean(), fc.constantFrom(0, -1, 1, 1000, -1000, 70000), fc.boolean())
    .map(([f, rep, d, a]) => new RstCmd(f, rep, d, a)),
  fc
    .tuple(
      idx,
      fc.constantFrom(0, 45),
      fc.constantFrom(true, true, false), // a stale ack: the challenge ACK of RFC 5961
      fc.constantFrom(false, false, true),
      fc.boolean(),
      fc.constantFrom<SynSentRstSeq>('challenge', 'challenge', 'expected', 'data-end'),
      fc.constantFrom<SynSentRstAck>('none', 'data-end', 'challenge'),
    )
    .map(([f, len, stale, syn, by, seq, ack]) => new SynSentCmd(f, len, stale, syn, by, seq, ack)),
  fc.tuple(idx, fc.nat({ max: MULTICAST_DSTS.length - 1 }), portArb).map(([a, w, sp]) => new MulticastCmd(a, w, sp)),
  fc
    .tuple(
      idx,
      idx,
      fc.integer({ min: 2, max: 12 }),
      fc.constantFrom(1, 1, 1, 2),
      fc.nat({ max: TTL_BURST_GAPS_MS.length - 1 }),
      fc.constantFrom<'udp' | 'tcp'>('udp', 'udp', 'tcp'),
    )
    .map(([a, b, n, ttl, g, p]) => new TtlBurstCmd(a, b, n, ttl, g, p)),
  fc
    .tuple(
      idx,
      fc.boolean(),
      fc.constantFrom<OowField>('seq', 'seq', 'ack'),
      fc.constantFrom(1, 100, 70000, 300000, 0x40000000, -1, -2000, -70000, -300000),
      fc.constantFrom(0, 0, 1, 20, 1400),
      fc.constantFrom(65535, 65535, 512, 0),
      rare(6),
    )
    .map(([f, rep, fld, d, l, w, fin]) => new OutOfWindowCmd(f, rep, fld, d, l, w, fin)),
  fc
    .tuple(
      idx,
      fc.boolean(),
      fc.integer({ min: 2, max: 6 }),
      fc.constantFrom(0, 1, 100, 1400),
      fc.constantFrom(65535, 65535, 0),
    )
    .map(([f, rep, c, l, w]) => new RetransCmd(f, rep, c, l, w)),
  fc
    .tuple(idx, fc.nat({ max: ERROR_KINDS.length - 1 }), fc.boolean(), rare(3), fc.nat({ max: 2 }))
    .map(([o, k, full, rt, f]) => new IcmpErrorCmd(o, k, full, rt, f !== 0)),
  fc.constantFrom(...ADVANCE_STEPS).map((s) => new AdvanceCmd(s, 0, 0)),
  fc.tuple(fc.nat({ max: 15 }), fc.nat({ max: 3 })).map(([t, d]) => new AdvanceCmd(null, t, d)),
  idx.map((b) => new ReplayCmd(b)),
  fc.tuple(idx, damageArb).map(([b, d]) => new MalformedCmd(b, d)),
];

/**
 * Default odds of a shape[] command: 1 in this many flood[] slots. A shape sends hundreds to 3,000
 * packets where an average run sends ~50, so it stays rare and a time-boxed campaign still gets
 * many runs (about one run in 100 has one).
 */
export const SHAPE_ONE_IN = 250;

/** The command sequences of one run; `shapeOneIn` (≥ 1): a flood[] slot is a shape[] 1 in this many times. */
export function fuzzCommandsArb(maxCommands: number, shapeOneIn = SHAPE_ONE_IN): fc.Arbitrary<Iterable<Cmd>> {
  if (!(shapeOneIn >= 1)) throw new Error(`shapeOneIn must be at least 1, got ${shapeOneIn}`);
  const arbs = fuzzCommandArbs.map((a) =>
    a === floodArb
      ? fc.oneof({ weight: Math.max(0, shapeOneIn - 1), arbitrary: a }, { weight: 1, arbitrary: shapeArb })
      : a,
  );
  return fc.commands(arbs, { maxCommands, size: 'large' });
}
