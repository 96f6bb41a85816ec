// The probing kit of `natlab conformance`: where to probe in a scenario (the NAT instance, the
// hosts behind it, internet hosts), a fresh engine per probe, and helpers that send a packet and
// say what came out. Verdicts are judged from these outputs (and the engine's own conntrack
// table), never from reading the scenario's configuration. Cold path: allocation is fine.

import type { Engine, OutputFrame, PacketResult } from '../../spec/engine.ts';
import type { Route, Scenario } from '../../spec/scenario.ts';
import { POINT_INTERNET, instancePoint, pointName } from '../../spec/scenario.ts';
import { InputError } from '../../spec/errors.ts';
import { FATE_DELIVERED, reasonName, DROP_FRAGMENT } from '../../spec/reasons.ts';
import { PacketView, parseIpv4, PARSE_OK } from '../../packet/parse.ts';
import { buildIcmpEcho, buildIcmpError, buildTcp, buildUdp } from '../../packet/build.ts';
import { cidrContains, formatIpv4 } from '../../packet/addr.ts';
import { describePacket } from '../../packet/format.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';

/** Where the probes run in a scenario. */
export interface Topology {
  scenario: Scenario;
  /** The NAT instance probed (index into scenario.instances), or -1 when a NAT gateway is probed. */
  nat: number;
  /** The NAT gateway probed (index into scenario.natGateways), or -1 when a NAT instance is probed. */
  gateway: number;
  /** Its public address as the internet sees it (the Elastic IP; a gateway's primary one). */
  external: number;
  /** Instances whose internet traffic is routed through the NAT (at least one). */
  inside: number[];
  /** Internet host addresses (one or two distinct ones). */
  remotes: number[];
}

function routeLookup(s: Scenario, table: number, addr: number): Route | null {
  let best: Route | null = null;
  for (const r of s.routeTables[table].routes) {
    if (cidrContains(r.dest, addr) && (!best || r.dest.len > best.dest.len)) best = r;
  }
  return best;
}

function hostIn(c: { addr: number; len: number }, k: number): number {
  if (c.len >= 31) return c.addr;
  const size = 2 ** (32 - c.len);
  return (c.addr + 1 + (k % (size - 2))) >>> 0;
}

/** Picks the NAT instance, the hosts behind it and two internet hosts; InputError if the scenario has none. */
export function findTopology(s: Scenario): Topology {
  const remotes: number[] = [];
  if (s.internetHosts.length > 0) {
    remotes.push(hostIn(s.internetHosts[0], 6));
    const second = s.internetHosts.length > 1 ? hostIn(s.internetHosts[1], 0) : hostIn(s.internetHosts[0], 7);
    if (second !== remotes[0]) remotes.push(second);
  }
  if (remotes.length === 0) {
    throw new InputError(
      `${s.source}: internet.hosts is empty: the conformance probes need at least one internet host`,
    );
  }
  for (let n = 0; n < s.instances.length; n++) {
    const nat = s.instances[n];
    if (!nat.nat || nat.elasticIp === null) continue;
    const inside: number[] = [];
    for (let i = 0; i < s.instances.length; i++) {
      if (i === n || s.instances[i].nat) continue;
      const r = routeLookup(s, s.subnets[s.instances[i].subnet].routeTable, remotes[0]);
      if (r && r.target === 'eni' && r.instance === n) inside.push(i);
    }
    if (inside.length > 0) return { scenario: s, nat: n, gateway: -1, external: nat.elasticIp, inside, remotes };
  }
  // No NAT instance in the path: a NAT gateway with an Elastic IP that a route table sends to.
  const gws = s.natGateways ?? [];
  for (let g = 0; g < gws.length; g++) {
    const eip = gws[g].addresses[0]?.elasticIp ?? null;
    if (eip === null) continue;
    const inside: number[] = [];
    for (let i = 0; i < s.instances.length; i++) {
      if (s.instances[i].nat) continue;
      const r = routeLookup(s, s.subnets[s.instances[i].subnet].routeTable, remotes[0]);
      if (r && r.target === 'nat-gateway' && r.instance === g) inside.push(i);
    }
    if (inside.length > 0) return { scenario: s, nat: -1, gateway: g, external: eip, inside, remotes };
  }
  throw new InputError(
    `${s.source}: nothing to probe: conformance needs a NAT instance (a nat table and an Elastic IP) or a public ` +
      `NAT gateway (an Elastic IP) that some instance's route table sends internet traffic (${formatIpv4(remotes[0])}) to`,
  );
}

/** What is probed, in words (after 'NAT '): 'nat 10.0.0.10 (public 203.0.113.10)', 'gateway ngw 10.0.0.50 (public …)'. */
export function natDescription(topo: Topology): string {
  const s = topo.scenario;
  if (topo.gateway >= 0) {
    const g = s.natGateways![topo.gateway];
    return `gateway ${g.name} ${formatIpv4(g.addresses[0].privateIp)} (public ${formatIpv4(topo.external)})`;
  }
  const n = s.instances[topo.nat];
  return `${n.name} ${formatIpv4(n.privateIp)} (public ${formatIpv4(topo.external)})`;
}

/** A parsed output frame (what a probe looks at). */
export interface Seen {
  point: number;
  proto: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
  icmpType: number;
  innerSrc: number;
  innerDst: number;
  innerSport: number;
  innerDport: number;
  text: string;
}

export function seeOutput(o: OutputFrame): Seen {
  const pv = new PacketView();
  const st = parseIpv4(o.frame, 0, o.frame.length, pv);
  const isIcmp = pv.proto === PROTO_ICMP;
  return {
    point: o.egress,
    proto: pv.proto,
    src: pv.src,
    dst: pv.dst,
    sport: st === PARSE_OK ? (isIcmp ? pv.icmpId : pv.sport) : -1,
    dport: st === PARSE_OK && !isIcmp ? pv.dport : -1,
    icmpType: isIcmp ? pv.icmpType : -1,
    innerSrc: pv.innerSrc,
    innerDst: pv.innerDst,
    innerSport: pv.innerSport,
    innerDport: pv.innerDport,
    text: describePacket(o.frame),
  };
}

/** One packet sent and what came of it. */
export class Sent {
  readonly outputs: Seen[];
  constructor(
    readonly input: string,
    readonly result: PacketResult,
    private readonly s: Scenario,
  ) {
    this.outputs = result.outputs.map(seeOutput);
  }
  /** The first output at `point`, or null. */
  at(point: number): Seen | null {
    return this.outputs.find((o) => o.point === point) ?? null;
  }
  get toInternet(): Seen | null {
    return this.at(POINT_INTERNET);
  }
  /** True when the engine does not reassemble and this was a fragment (a documented limitation). */
  get fragmentLimit(): boolean {
    return this.result.fate !== FATE_DELIVERED && this.result.reason === DROP_FRAGMENT;
  }
  /** Short text: where it went ("delivered to app as …", "dropped: reason"). */
  fate(): string {
    const r = this.result;
    const outs = this.outputs.map((o) => `${pointName(this.s, o.point)}: ${o.text}`);
    if (r.fate === FATE_DELIVERED) return outs.length ? `→ ${outs.join('; ')}` : '→ delivered (no output)';
    return `dropped (${reasonName(r.reason)})${outs.length ? `, also → ${outs.join('; ')}` : ''}`;
  }
}

export type ClockKind = 'virtual' | 'real';

export interface EngineMaker {
  name: string;
  /** 'virtual': advance() is instant; 'real' (the kernel): time really passes. */
  clock: ClockKind;
  /** The engine reassembles fragments (the kernel); model and core drop them (semantics §2). */
  reassembles: boolean;
  make(s: Scenario): Promise<Engine>;
}

/** A fresh engine and a virtual clock for one probe. Packets are 1 ms apart unless told. */
export class ProbeSession {
  tUs = 1_000_000;
  readonly log: string[] = [];
  constructor(
    readonly engine: Engine,
    readonly topo: Topology,
    readonly clock: ClockKind,
  ) {}

  get s(): Scenario {
    return this.topo.scenario;
  }
  /** The NAT instance's own point; -1 for a NAT gateway (it has no stack a packet can reach). */
  get natPoint(): number {
    return this.topo.nat >= 0 ? instancePoint(this.topo.nat) : -1;
  }
  hostIp(i: number): number {
    return this.s.instances[this.topo.inside[i] ?? this.topo.inside[0]].privateIp;
  }
  hostPoint(i: number): number {
    return instancePoint(this.topo.inside[i] ?? this.topo.inside[0]);
  }
  hostName(i: number): string {
    return this.s.instances[this.topo.inside[i] ?? this.topo.inside[0]].name;
  }

  async send(ingress: number, frame: Uint8Array, gapUs = 1000): Promise<Sent> {
    this.tUs += gapUs;
    const [r] = await this.engine.process([{ timeUs: this.tUs, ingress, frame }]);
    const sent = new Sent(describePacket(frame), r, this.s);
    this.log.push(`${sent.input} ${sent.fate()}`);
    return sent;
  }
  /** Lets `us` of idle time pass (the kernel engine really waits). */
  async idle(us: number): Promise<void> {
    this.tUs += us;
    await this.engine.advance(this.tUs);
  }

  udpOut(host: number, sport: number, dst: number, dport: number, gapUs?: number): Promise<Sent> {
    return this.send(
      this.hostPoint(host),
      buildUdp({ src: this.hostIp(host), dst, sport, dport, payload: new Uint8Array(16) }),
      gapUs,
    );
  }
  udpIn(src: number, sport: number, dport: number, gapUs?: number, dst = this.topo.external): Promise<Sent> {
    return this.send(POINT_INTERNET, buildUdp({ src, dst, sport, dport, payload: new Uint8Array(16) }), gapUs);
  }
  tcpOut(
    host: number,
    sport: number,
    dst: number,
    dport: number,
    flags: number,
    seq: number,
    ack: number,
    gapUs?: number,
  ): Promise<Sent> {
    return this.send(
      this.hostPoint(host),
      buildTcp({ src: this.hostIp(host), dst, sport, dport, flags, seq, ack }),
      gapUs,
    );
  }
  tcpIn(
    src: number,
    sport: number,
    dport: number,
    flags: number,
    seq: number,
    ack: number,
    gapUs?: number,
  ): Promise<Sent> {
    return this.send(POINT_INTERNET, buildTcp({ src, dst: this.topo.external, sport, dport, flags, seq, ack }), gapUs);
  }
  echoOut(host: number, dst: number, id: number, gapUs?: number): Promise<Sent> {
    return this.send(
      this.hostPoint(host),
      buildIcmpEcho({ src: this.hostIp(host), dst, id, seq: 1, payload: new Uint8Array(16) }),
      gapUs,
    );
  }
  echoReplyIn(src: number, id: number, gapUs?: number): Promise<Sent> {
    return this.send(
      POINT_INTERNET,
      buildIcmpEcho({ src, dst: this.topo.external, id, seq: 1, reply: true, payload: new Uint8Array(16) }),
      gapUs,
    );
  }
  /** An ICMP error from the internet host `src` about `quoted` (a frame as the internet saw it). */
  icmpErrorIn(src: number, type: number, code: number, quoted: Uint8Array, gapUs?: number): Promise<Sent> {
    return this.send(POINT_INTERNET, buildIcmpError({ src, dst: this.topo.external, type, code, quoted }), gapUs);
  }
  icmpErrorOut(
    host: number,
    dst: number,
    type: number,
    code: number,
    quoted: Uint8Array,
    gapUs?: number,
  ): Promise<Sent> {
    return this.send(this.hostPoint(host), buildIcmpError({ src: this.hostIp(host), dst, type, code, quoted }), gapUs);
  }

  /**
   * The NAT's state for the flow whose original source is (src, sport), proto; null if none: the NAT
   * instance's conntrack entry, or the NAT gateway's connection (gatewayEntry).
   */
  async entry(proto: number, src: number, sport: number): Promise<{ timeout: number; state: string } | null> {
    if (this.topo.gateway >= 0) return this.gatewayEntry(proto, src, sport);
    const all = await this.engine.conntrack();
    return (
      all.find(
        (e) => e.instance === this.topo.nat && e.proto === proto && e.orig.src === src && e.orig.sport === sport,
      ) ?? null
    );
  }
  /**
   * A NAT gateway's connection as an entry: its idle time left, and a state in conntrack's words
   * where the gateway's own view maps onto one (TCP: SYN_SENT until a reply, ESTABLISHED after,
   * CLOSE once an RST or a FIN each way ended it; UDP and ICMP: UNREPLIED / REPLIED).
   */
  private async gatewayEntry(
    proto: number,
    src: number,
    sport: number,
  ): Promise<{ timeout: number; state: string } | null> {
    if (!this.engine.natGatewayConnections)
      throw new InputError(`engine ${this.engine.name} cannot run NAT gateways: it cannot be probed on one`);
    const c = (await this.engine.natGatewayConnections()).find(
      (x) => x.natGateway === this.topo.gateway && x.proto === proto && x.src === src && x.sport === sport,
    );
    if (!c) return null;
    const state =
      proto === PROTO_TCP
        ? c.closed
          ? 'CLOSE'
          : c.replied
            ? 'ESTABLISHED'
            : 'SYN_SENT'
        : c.replied
          ? 'REPLIED'
          : 'UNREPLIED';
    return { timeout: c.timeout, state };
  }

  /**
   * Seconds the entry has left. conntrack -L floors the remaining time; on the kernel (real clock)
   * a few ms pass between the packet and the reading, so one second is added back there.
   */
  async lifetime(proto: number, src: number, sport: number): Promise<{ s: number; state: string } | null> {
    const e = await this.entry(proto, src, sport);
    if (!e) return null;
    return { s: e.timeout + (this.clock === 'real' ? 1 : 0), state: e.state };
  }
}

export const PROTO_NAMES: Record<number, string> = { [PROTO_TCP]: 'tcp', [PROTO_UDP]: 'udp', [PROTO_ICMP]: 'icmp' };

export function ep(addr: number, port: number): string {
  return `${formatIpv4(addr)}:${port}`;
}

/** What probes get: the topology and fresh sessions (closed by the runner). */
export class ProbeContext {
  private readonly open: ProbeSession[] = [];
  /** Warnings the engines gave (the kernel engine's `warnings`, e.g. frames that came late). */
  readonly warnings: string[] = [];
  constructor(
    readonly topo: Topology,
    readonly maker: EngineMaker,
  ) {}
  async fresh(scenario: Scenario = this.topo.scenario): Promise<ProbeSession> {
    const e = await this.maker.make(scenario);
    const topo = scenario === this.topo.scenario ? this.topo : { ...this.topo, scenario };
    const ps = new ProbeSession(e, topo, this.maker.clock);
    this.open.push(ps);
    return ps;
  }
  async closeAll(): Promise<void> {
    const all = this.open.splice(0);
    for (const ps of all) {
      const w = (ps.engine as { warnings?: unknown }).warnings;
      if (Array.isArray(w))
        for (const x of w) if (typeof x === 'string' && !this.warnings.includes(x)) this.warnings.push(x);
      await ps.engine.close();
    }
  }
}
