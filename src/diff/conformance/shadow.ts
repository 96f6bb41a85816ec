// Port shadowing (the attack of the kernel selftest tools/testing/selftests/net/netfilter/
// nft_nat.sh, test_port_shadow): a host behind the NAT sends from a service port P of the NAT's
// public address to an internet host's port Q. MASQUERADE keeps P, so the entry's reply tuple is
// (internet:Q -> NAT:P). When that internet host later connects from Q to the service at P, its
// first packet matches the entry and is de-NATed to the attacker instead of reaching the service
// (the NAT instance's own one, or a DNAT port-forward's target). The selftest's mitigations:
// a filter rule dropping forwarded packets from the service port, notrack for the service port,
// and PAT (masquerade packets from the service port to other ports, `--to-ports … --random`).
// A scenario file can express PAT (nat table) and the filter rule (the instance's filter table);
// notrack would need the raw table.
//
// Judged from outputs: the attacker's packet (dropped → filter; source port rewritten → PAT) and
// where the internet host's connection lands. Which ports to probe comes from the scenario (the
// NAT instance's sshd, tcp/22, and every DNAT port-forward of its PREROUTING chain).

import { F_SYN, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import { formatIpv4 } from '../../packet/addr.ts';
import { instancePoint, NF_NAT_RANGE_PROTO_SPECIFIED, POINT_INTERNET } from '../../spec/scenario.ts';
import { ep, PROTO_NAMES, type ProbeContext, type ProbeSession, type Sent, type Topology } from './kit.ts';

export interface ShadowTarget {
  /** e.g. 'nat tcp/22 (the NAT instance's own sshd)', 'DNAT tcp/8080 -> app:80'. */
  name: string;
  proto: number;
  /** The public port P. */
  port: number;
  /** Where the internet host's connection should land, and at which port. */
  point: number;
  dport: number;
}

export type Mitigation = 'PAT' | 'filter' | 'no capture';

export interface ShadowResult {
  target: string;
  /** 'exposed' | 'not exposed' | 'inconclusive' (the service itself is not reachable). */
  status: 'exposed' | 'not exposed' | 'inconclusive';
  /** What closed it, judged from the attacker's packet. */
  mitigation: Mitigation | null;
  /** Whether a host behind the NAT reaches the service through the public address (hairpin). */
  hairpin: boolean;
  evidence: string;
}

const ATTACK_PEER_PORT = 41404; // nft_nat.sh's internet-side port

/** The targets probed in a scenario: the NAT instance's sshd and every DNAT port-forward (none on a NAT gateway). */
export function shadowTargets(topo: Topology): ShadowTarget[] {
  // A NAT gateway runs no service and takes no port-forwards: nothing behind its address to shadow.
  if (topo.nat < 0) return [];
  const s = topo.scenario;
  const nat = s.instances[topo.nat];
  const out: ShadowTarget[] = [
    {
      name: `${nat.name} tcp/22 (the NAT instance's own sshd)`,
      proto: PROTO_TCP,
      port: 22,
      point: instancePoint(topo.nat),
      dport: 22,
    },
  ];
  for (const r of nat.nat?.chains.PREROUTING ?? []) {
    if (r.target.kind !== 'DNAT' || !r.proto || r.proto.neg || !r.dport || r.dport.neg) continue;
    if (r.proto.proto !== PROTO_TCP && r.proto.proto !== PROTO_UDP) continue;
    if (r.dst && (r.dst.neg || (r.dst.cidr.addr !== nat.privateIp && r.dst.cidr.len !== 0))) continue;
    const to = s.instances.findIndex((i) => i.privateIp === r.target.addrLo);
    if (to < 0) continue;
    const port = r.dport.lo;
    const dport = r.target.flags & NF_NAT_RANGE_PROTO_SPECIFIED ? r.target.portLo : port;
    out.push({
      name: `DNAT ${PROTO_NAMES[r.proto.proto]}/${port} -> ${s.instances[to].name}:${dport}`,
      proto: r.proto.proto,
      port,
      point: instancePoint(to),
      dport,
    });
  }
  return out;
}

function connect(ps: ProbeSession, t: ShadowTarget): Promise<Sent> {
  const x1 = ps.topo.remotes[0];
  return t.proto === PROTO_TCP
    ? ps.tcpIn(x1, ATTACK_PEER_PORT, t.port, F_SYN, 7000, 0)
    : ps.udpIn(x1, ATTACK_PEER_PORT, t.port);
}

function instancePointOf(topo: Topology, i: number): number {
  return instancePoint(topo.inside[i]);
}

/** The engine warned that frames came after their packet's quiet time (kernel engine). */
function lostFrames(ps: ProbeSession): boolean {
  const w = (ps.engine as { warnings?: unknown }).warnings;
  return Array.isArray(w) && w.some((x) => typeof x === 'string' && x.includes('arrived after'));
}

export async function probeShadow(ctx: ProbeContext, t: ShadowTarget): Promise<ShadowResult> {
  const x1 = ctx.topo.remotes[0];
  // Control: the service is reachable at all.
  const c = await ctx.fresh();
  const ctl = await connect(c, t);
  const reach = ctl.at(t.point);
  const reachable = !!reach && reach.dport === t.dport;
  // Attack: another host behind the NAT than the target when there is one. A real-clock engine
  // that lost the attacker's frame to lateness (its warnings say so) gets one more attempt, so
  // a lost frame is not mistaken for a filter.
  let host = 0;
  for (let i = 0; i < ctx.topo.inside.length; i++)
    if (instancePointOf(ctx.topo, i) !== t.point) {
      host = i;
      break;
    }
  let a!: ProbeSession;
  let shadow!: Sent;
  let victim!: Sent;
  for (let attempt = 0; attempt < 2; attempt++) {
    a = await ctx.fresh();
    shadow =
      t.proto === PROTO_TCP
        ? await a.tcpOut(host, t.port, x1, ATTACK_PEER_PORT, F_SYN, 1000, 0)
        : await a.udpOut(host, t.port, x1, ATTACK_PEER_PORT);
    victim = await connect(a, t);
    // Lateness is noticed when the next packet is injected: check after the victim's packet.
    if (shadow.at(POINT_INTERNET) || !lostFrames(a)) break;
  }
  const attackerPoint = a.hostPoint(host);
  const so = shadow.at(POINT_INTERNET);
  const got = victim.at(attackerPoint);
  const captured = !!got && got.dport === t.port && !(attackerPoint === t.point && t.dport === t.port);
  // Hairpin (NAT loopback): a host behind the NAT connects to the service's public address.
  const hp = await ctx.fresh();
  const viaEip =
    t.proto === PROTO_TCP
      ? await hp.tcpOut(host, 42300, hp.topo.external, t.port, F_SYN, 1000, 0)
      : await hp.udpOut(host, 42300, hp.topo.external, t.port);
  const hpSeen = viaEip.at(t.point);
  const hairpin = !!hpSeen && hpSeen.dport === t.dport;
  const ev =
    `${a.hostName(host)} ${ep(a.hostIp(host), t.port)} -> ${ep(x1, ATTACK_PEER_PORT)}: ${so ? `left as ${formatIpv4(so.src)}:${so.sport}` : shadow.fate()}; ` +
    `then ${ep(x1, ATTACK_PEER_PORT)} -> ${ep(a.topo.external, t.port)} ${victim.fate()}` +
    `; control (no attacker): ${ctl.fate()}` +
    `; from ${a.hostName(host)} to ${ep(a.topo.external, t.port)} (hairpin): ${viaEip.fate()}`;
  if (captured) return { target: t.name, status: 'exposed', mitigation: null, hairpin, evidence: ev };
  let mitigation: Mitigation = 'no capture';
  if (!so) mitigation = 'filter';
  else if (so.sport !== t.port) mitigation = 'PAT';
  return { target: t.name, status: reachable ? 'not exposed' : 'inconclusive', mitigation, hairpin, evidence: ev };
}
