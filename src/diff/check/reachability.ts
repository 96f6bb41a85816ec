// `natlab check`: reachability computed by the model. For every subnet a new instance there
// sends representative packets (HTTPS, HTTP, DNS, NTP, ping) to an internet host; for every
// instance too; for every Elastic IP an internet host sends SSH/HTTPS/ping and every DNAT port.
// Each probe runs through a fresh ModelEngine (processOne with per-hop snapshots) together with
// its natural reply, and the verdict is the model's: delivered both ways or not, by which path,
// translated to which public address; when not, the first reason on the path (explain.ts).
// Cold path.

import { PacketView, parseIpv4 } from '../../packet/parse.ts';
import { formatCidr, formatIpv4 } from '../../packet/addr.ts';
import { F_ACK, F_PSH, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import { buildTcp } from '../../packet/build.ts';
import { POINT_INTERNET, instancePoint, type Scenario } from '../../spec/scenario.ts';
import { DROP_FILTER_DROP, DROP_FILTER_REJECT, DROP_NACL_DENY, DROP_SG_DENY } from '../../spec/reasons.ts';
import { createModelEngine, tracePacket, type TracedPacket } from '../../model/index.ts';
import { formatRoute } from '../../scenario/index.ts';
import {
  EGRESS_PROBES,
  INGRESS_PROBES,
  PROBE_SPORT,
  buildProbe,
  freePublicIp,
  freeSubnetIp,
  internetPeer,
  withProbe,
  type ProbeKind,
} from './probes.ts';
import { explainFailure, forwarders, translations } from './explain.ts';

export interface ProbeResult {
  probe: string;
  /** Delivered, and its natural reply delivered back to the sender. */
  ok: boolean;
  /** Forwarders and gateways crossed: `nat (MASQUERADE) → igw`. */
  path: string;
  /** Egress: the source the internet sees. Ingress: where it landed (`app 10.0.1.10:80`). */
  seenAs: string | null;
  /** First reason on the path when not ok (`reply: ...` when the reply failed). */
  reason: string | null;
  /** Set when the reply left by another path / address than the request came in by. */
  asymmetric: string | null;
  /**
   * Egress probes: set when the probe (or its reply) was dropped by a rule someone wrote — a
   * security group, a network ACL or the instance's filter table — rather than by a broken path.
   */
  filtered?: true;
}

/** Drops by a configured rule: a policy, not a fault of the path. */
function droppedByRule(t: TracedPacket): boolean {
  const r = t.result.reason;
  return (
    t.fate !== 'delivered' &&
    (r === DROP_SG_DENY || r === DROP_NACL_DENY || r === DROP_FILTER_DROP || r === DROP_FILTER_REJECT)
  );
}

export interface SubnetReach {
  subnet: string;
  cidr: string;
  routeTable: string;
  /** The route table's route for 0.0.0.0/0 (`0.0.0.0/0 → eni:nat`), or null. */
  defaultRoute: string | null;
  /** Who sent the probes: `new instance 10.0.1.4`. */
  from: string;
  /** True when the subnet only reaches the internet from instances with a public IP (a public subnet). */
  needsPublicIp: boolean;
  results: ProbeResult[];
  /**
   * A subnet with a default route whose probes do not all make it — unless those that fail were
   * dropped by a security group, ACL or filter rule and at least one probe passes (a policy
   * such as AWS's NATSG group, which passes only HTTP/HTTPS): `natlab check` exits 1.
   */
  failing: boolean;
}

export interface InstanceReach {
  instance: string;
  subnet: string;
  results: ProbeResult[];
}

export interface EipReach {
  elasticIp: string;
  instance: string;
  results: ProbeResult[];
}

export interface Reachability {
  scenario: string;
  /** The internet host probes talk to. */
  peer: string;
  subnets: SubnetReach[];
  instances: InstanceReach[];
  elasticIps: EipReach[];
}

function pvOf(b: Uint8Array): PacketView {
  const pv = new PacketView();
  parseIpv4(b, 0, b.length, pv);
  return pv;
}

function endpoint(b: Uint8Array, which: 'src' | 'dst'): string {
  const pv = pvOf(b);
  const a = formatIpv4(which === 'src' ? pv.src : pv.dst);
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) return `${a}:${which === 'src' ? pv.sport : pv.dport}`;
  return a;
}

/** `nat (MASQUERADE) → igw` from a traced packet. */
function pathOf(s: Scenario, t: TracedPacket, startAt: string | null): string {
  const parts: string[] = [];
  const fw = forwarders(s, t);
  const xl = translations(t);
  let k = 0;
  for (const f of fw) {
    if (f === startAt && k === 0) continue;
    const here = t.hops.findIndex((h) => h.name.startsWith(`NAT instance ${f}:`) || h.name === `instance ${f}`);
    const next = t.hops.findIndex((h, i) => i > here && (h.name.startsWith('VPC router') || h.name.startsWith('IGW')));
    const did = t.hops
      .slice(here, next < 0 ? undefined : next)
      .filter((h) => xl.includes(h.name))
      .map((h) => h.name);
    parts.push(did.length ? `${f} (${did.join(', ')})` : f);
    k++;
  }
  if (t.hops.some((h) => h.name === 'IGW static NAT')) parts.push('igw');
  return parts.join(' → ') || 'direct';
}

/** One outbound probe from instance point `from` to `peer`, with its reply. */
function egressProbe(s: Scenario, fromIdx: number, peer: number, k: ProbeKind, sport: number): ProbeResult {
  const engine = createModelEngine(s, { seed: 1 });
  const src = s.instances[fromIdx].privateIp;
  const frame = buildProbe(k, src, peer, sport);
  const t = tracePacket(engine, k.label, frame, instancePoint(fromIdx), 0, true);
  const out = t.result.delivered >= 0 ? t.result.outputs[t.result.delivered] : null;
  const reached = t.fate === 'delivered' && out !== null && out.egress === POINT_INTERNET;
  const path = pathOf(s, t, s.instances[fromIdx].name);
  if (!reached) {
    const reason =
      t.fate === 'delivered'
        ? `delivered to ${t.outputs[t.result.delivered]?.egress ?? '?'} instead of the internet`
        : explainFailure(s, t);
    const filtered = droppedByRule(t) ? { filtered: true as const } : {};
    return { probe: k.label, ok: false, path, seenAs: null, reason, asymmetric: null, ...filtered };
  }
  const seenAs = formatIpv4(pvOf(out.frame).src);
  const r = t.reply;
  if (!r) return { probe: k.label, ok: false, path, seenAs, reason: 'reply: none could be built', asymmetric: null };
  const back = r.result.delivered >= 0 ? r.result.outputs[r.result.delivered] : null;
  if (r.fate !== 'delivered' || back === null || back.egress !== instancePoint(fromIdx)) {
    const why =
      r.fate === 'delivered'
        ? `delivered to ${r.outputs[r.result.delivered]?.egress} instead of ${s.instances[fromIdx].name}`
        : explainFailure(s, r);
    const filtered = droppedByRule(r) ? { filtered: true as const } : {};
    return { probe: k.label, ok: false, path, seenAs, reason: `reply: ${why}`, asymmetric: null, ...filtered };
  }
  return { probe: k.label, ok: true, path, seenAs, reason: null, asymmetric: null };
}

/** One inbound probe from `peer` to Elastic IP `eip` (port k), with the reply. */
function ingressProbe(s: Scenario, peer: number, eip: number, k: ProbeKind, sport: number): ProbeResult {
  const engine = createModelEngine(s, { seed: 1 });
  const frame = buildProbe(k, peer, eip, sport);
  const t = tracePacket(engine, k.label, frame, POINT_INTERNET, 0, true);
  const out = t.result.delivered >= 0 ? t.result.outputs[t.result.delivered] : null;
  const path = pathOf(s, t, null)
    .replace(/^igw → /, '')
    .replace(/^igw$/, 'direct');
  if (t.fate !== 'delivered' || out === null || out.egress === POINT_INTERNET) {
    const reason = t.fate === 'delivered' ? 'sent back to the internet' : explainFailure(s, t);
    return { probe: k.label, ok: false, path, seenAs: null, reason, asymmetric: null };
  }
  const inst = s.instances[out.egress - 1];
  const dnat = translations(t).some((x) => x.startsWith('DNAT'));
  const seenAs = `${inst.name} ${endpoint(out.frame, 'dst')}${dnat ? ' (DNAT)' : ''}`;
  const r = t.reply;
  if (!r) return { probe: k.label, ok: false, path, seenAs, reason: 'reply: none could be built', asymmetric: null };
  const back = r.result.delivered >= 0 ? r.result.outputs[r.result.delivered] : null;
  if (r.fate !== 'delivered' || back === null || back.egress !== POINT_INTERNET) {
    const why = r.fate === 'delivered' ? `delivered to an instance, not the internet` : explainFailure(s, r);
    return { probe: k.label, ok: false, path, seenAs, reason: `reply: ${why}`, asymmetric: null };
  }
  const expectPort = k.proto === 'tcp' || k.proto === 'udp' ? k.port : -1;
  const wrongSource = (b: Uint8Array): boolean => {
    const pv = pvOf(b);
    const samePort =
      expectPort < 0 ||
      ((pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) && pv.sport === expectPort) ||
      pv.proto === PROTO_ICMP;
    return pv.src !== eip || !samePort;
  };
  const want = `${formatIpv4(eip)}${expectPort >= 0 ? `:${expectPort}` : ''}`;
  if (wrongSource(back.frame)) {
    const asym = `the reply leaves as ${endpoint(back.frame, 'src')} by ${pathOf(s, r, inst.name)}, not as ${want}: the peer drops it (asymmetric path)`;
    return { probe: k.label, ok: false, path, seenAs, reason: `reply: ${asym}`, asymmetric: asym };
  }
  // The reply crosses a NAT instance the request did not: its conntrack sees one direction only.
  const fwIn = forwarders(s, t);
  const fwBack = forwarders(s, r).filter((f) => f !== inst.name);
  const crossed = fwBack.filter((f) => !fwIn.includes(f));
  if (crossed.length === 0) return { probe: k.label, ok: true, path, seenAs, reason: null, asymmetric: null };
  let asym = `the reply crosses ${crossed.join(', ')}, which the request did not (asymmetric path)`;
  if (k.proto === 'tcp') {
    // The server's next segment, through the same engine: the one-sided conntrack picks it up
    // mid-stream (tcp_loose) and translates it, or not (docs/semantics.md §3).
    const rpv = pvOf(back.frame);
    const got = pvOf(out.frame);
    const data = buildTcp({
      src: got.dst,
      dst: got.src,
      sport: got.dport,
      dport: got.sport,
      flags: F_ACK | F_PSH,
      seq: (rpv.tcpSeq + 1) >>> 0,
      ack: (got.tcpSeq + 1) >>> 0,
      window: 65160,
      payload: new Uint8Array(100),
    });
    const d = tracePacket(engine, 'data', data, out.egress, 1, false);
    const dout = d.result.delivered >= 0 ? d.result.outputs[d.result.delivered] : null;
    if (d.fate !== 'delivered' || dout === null || dout.egress !== POINT_INTERNET)
      asym += `; the server's next segment is dropped: ${explainFailure(s, d)}`;
    else if (wrongSource(dout.frame))
      asym += `; the server's next segment leaves as ${endpoint(dout.frame, 'src')}, not ${want} (${crossed.join(', ')} picks the flow up mid-stream and translates it): the connection breaks after the handshake`;
    else return { probe: k.label, ok: true, path, seenAs, reason: null, asymmetric: asym };
    return { probe: k.label, ok: false, path, seenAs, reason: asym, asymmetric: asym };
  }
  return { probe: k.label, ok: true, path, seenAs, reason: null, asymmetric: asym };
}

/** The DNAT ports of instance `i`'s PREROUTING chain (tcp/udp rules with one destination port). */
function dnatProbes(s: Scenario, i: number): ProbeKind[] {
  const nat = s.instances[i].nat;
  if (!nat) return [];
  const out: ProbeKind[] = [];
  for (const r of nat.chains.PREROUTING) {
    if (r.target.kind !== 'DNAT' || !r.proto || r.proto.neg) continue;
    const proto = r.proto.proto === PROTO_TCP ? 'tcp' : r.proto.proto === PROTO_UDP ? 'udp' : null;
    if (!proto) continue;
    const port = r.dport && !r.dport.neg ? r.dport.lo : 0;
    if (port === 0) continue;
    const label = `${proto}/${port}`;
    if (!out.some((x) => x.label === label)) out.push({ label, proto, port });
  }
  return out;
}

function defaultRouteOf(s: Scenario, rt: number): string | null {
  const r = s.routeTables[rt].routes.find((x) => x.dest.len === 0);
  return r ? formatRoute(s, r) : null;
}

export function computeReachability(s: Scenario): Reachability {
  const peer = internetPeer(s);
  const subnets: SubnetReach[] = [];
  s.subnets.forEach((sn, si) => {
    const rt = s.routeTables[sn.routeTable];
    const base = {
      subnet: sn.name,
      cidr: formatCidr(sn.cidr),
      routeTable: rt.name,
      defaultRoute: defaultRouteOf(s, sn.routeTable),
    };
    const ip = freeSubnetIp(s, si);
    if (ip === null) {
      subnets.push({ ...base, from: 'no free address for a probe', needsPublicIp: false, results: [], failing: false });
      return;
    }
    let probe = withProbe(s, si, ip, null);
    let results = EGRESS_PROBES.map((k, n) => egressProbe(probe.scenario, probe.index, peer, k, PROBE_SPORT + n));
    let from = `new instance ${formatIpv4(ip)}`;
    let needsPublicIp = false;
    // A public subnet: its instances reach the internet with a public IP of their own.
    if (results.every((r) => !r.ok && r.path === 'igw')) {
      const eip = freePublicIp(s, [peer]);
      if (eip !== null) {
        probe = withProbe(s, si, ip, eip);
        const withIp = EGRESS_PROBES.map((k, n) => egressProbe(probe.scenario, probe.index, peer, k, PROBE_SPORT + n));
        if (withIp.some((r) => r.ok)) {
          results = withIp.map((r) => (r.seenAs === formatIpv4(eip) ? { ...r, seenAs: 'its public IP' } : r));
          from = `new instance ${formatIpv4(ip)} with a public IP`;
          needsPublicIp = true;
        }
      }
    }
    const failing =
      base.defaultRoute !== null && (results.every((r) => !r.ok) || results.some((r) => !r.ok && !r.filtered));
    subnets.push({ ...base, from, needsPublicIp, results, failing });
  });
  const instances: InstanceReach[] = s.instances.map((inst, i) => ({
    instance: inst.name,
    subnet: s.subnets[inst.subnet].name,
    results: EGRESS_PROBES.map((k, n) => egressProbe(s, i, peer, k, PROBE_SPORT + n)),
  }));
  const elasticIps: EipReach[] = [];
  s.instances.forEach((inst, i) => {
    if (inst.elasticIp === null) return;
    const kinds = [
      ...INGRESS_PROBES,
      ...dnatProbes(s, i).filter((d) => !INGRESS_PROBES.some((x) => x.label === d.label)),
    ];
    elasticIps.push({
      elasticIp: formatIpv4(inst.elasticIp),
      instance: inst.name,
      results: kinds.map((k, n) => ingressProbe(s, peer, inst.elasticIp as number, k, PROBE_SPORT + n)),
    });
  });
  return { scenario: s.name, peer: formatIpv4(peer), subnets, instances, elasticIps };
}
