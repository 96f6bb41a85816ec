// Why a probe did not make it: the model's drop reason and the hops before it, in the words of
// the configuration (the route, the instance, the rule). The verdict is always the model's; this
// only names the cause. For an untranslated packet the NAT instance's POSTROUTING chain is
// walked with the model's own matcher (runChain/ruleMatches) to say which field of which rule
// did not match. Cold path.

import { PacketView, parseIpv4 } from '../../packet/parse.ts';
import { formatCidr, formatIpv4 } from '../../packet/addr.ts';
import { PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import {
  DROP_BLACKHOLE,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_IGW_UNKNOWN_DST,
  DROP_IP_FORWARD_OFF,
  DROP_MARTIAN_SOURCE,
  DROP_MULTICAST,
  DROP_NO_HOST,
  DROP_NO_ROUTE,
  DROP_ROUTING_LOOP,
  DROP_SRC_DST_CHECK_DST,
  DROP_SRC_DST_CHECK_SRC,
  reasonName,
} from '../../spec/reasons.ts';
import type { NatRule, Scenario } from '../../spec/scenario.ts';
import type { TracedPacket, TraceHop } from '../../model/index.ts';
import { ETH0 } from '../../model/engine.ts';
import { ruleMatches, runChain, rulePacketOf, type RulePacket } from '../../model/nat.ts';
import { protoName } from '../../scenario/index.ts';

/** The instances a traced packet crossed as forwarders (NAT instances and forwarding hosts), in order. */
export function forwarders(s: Scenario, t: TracedPacket): string[] {
  const out: string[] = [];
  for (const h of t.hops) {
    if (h.name.startsWith('ICMP error: ')) continue;
    const m =
      /^NAT instance (\S+): conntrack/.exec(h.name) ??
      (/^instance (\S+)$/.exec(h.name) && h.note.startsWith('forwarded') ? /^instance (\S+)$/.exec(h.name) : null);
    if (m && out[out.length - 1] !== m[1]) out.push(m[1]);
  }
  void s;
  return out;
}

/** The translation hops (MASQUERADE / SNAT / DNAT ...) a packet went through. */
export function translations(t: TracedPacket): string[] {
  return t.hops.filter((h) => /^(MASQUERADE|SNAT|DNAT)/.test(h.name)).map((h) => h.name);
}

function pvOf(b: Uint8Array): PacketView {
  const pv = new PacketView();
  parseIpv4(b, 0, b.length, pv);
  return pv;
}

function dropHop(t: TracedPacket): TraceHop | undefined {
  return t.hops.find((h) => h.drop !== undefined && !h.name.startsWith('ICMP error: '));
}

/** Why rule `r` does not match packet `p`: the fields that fail, each tested alone with the model's matcher. */
export function whyRuleMisses(r: NatRule, p: RulePacket): string[] {
  const none: NatRule = {
    ...r,
    src: null,
    dst: null,
    inIface: null,
    outIface: null,
    proto: null,
    sport: null,
    dport: null,
  };
  const out: string[] = [];
  const pname = protoName(p.proto);
  if (r.src && !ruleMatches({ ...none, src: r.src }, p))
    out.push(`${r.src.neg ? '! ' : ''}-s ${formatCidr(r.src.cidr)} does not cover the source ${formatIpv4(p.src)}`);
  if (r.dst && !ruleMatches({ ...none, dst: r.dst }, p))
    out.push(`${r.dst.neg ? '! ' : ''}-d ${formatCidr(r.dst.cidr)} does not cover ${formatIpv4(p.dst)}`);
  if (r.outIface && !ruleMatches({ ...none, outIface: r.outIface }, p))
    out.push(
      `${r.outIface.neg ? '! ' : ''}-o ${r.outIface.name}: the packet leaves by ${p.outDev} (the instance's only interface)`,
    );
  if (r.inIface && !ruleMatches({ ...none, inIface: r.inIface }, p))
    out.push(`${r.inIface.neg ? '! ' : ''}-i ${r.inIface.name}: the packet came in on ${p.inDev}`);
  if (r.proto && !ruleMatches({ ...none, proto: r.proto }, p))
    out.push(`${r.proto.neg ? '! ' : ''}-p ${protoName(r.proto.proto)}: this is ${pname}`);
  if ((r.sport || r.dport) && !ruleMatches({ ...none, proto: r.proto, sport: r.sport, dport: r.dport }, p)) {
    const ports = p.proto === PROTO_TCP || p.proto === PROTO_UDP;
    out.push(
      ports
        ? `port match does not cover ${pname} ${p.sport} > ${p.dport}`
        : `port match needs tcp/udp; this is ${pname}`,
    );
  }
  return out;
}

/** For a packet a NAT instance forwarded without translating it: what its POSTROUTING chain did. */
export function whyUntranslated(s: Scenario, instName: string, at: Uint8Array): string {
  const inst = s.instances.find((i) => i.name === instName);
  if (!inst) return '';
  if (!inst.nat) return `${instName} has no nat table at all (a plain forwarding host)`;
  const p = rulePacketOf(pvOf(at), ETH0, ETH0);
  const rules = inst.nat.chains.POSTROUTING;
  const v = runChain(inst.nat, 'POSTROUTING', p);
  const nat = rules.filter((r) => r.target.kind === 'MASQUERADE' || r.target.kind === 'SNAT');
  if (v.rule >= 0 && rules[v.rule].target.kind === 'ACCEPT')
    return `POSTROUTING rule ${v.rule + 1} '${rules[v.rule].text}' ACCEPTs it before any NAT rule`;
  if (nat.length === 0)
    return `${instName} has no MASQUERADE or SNAT rule in POSTROUTING (fck-nat's boot race leaves exactly this: the rule with -o "" was rejected while the service reported success)`;
  const why = nat.map(
    (r) => `'${r.text}': ${whyRuleMisses(r, p).join('; ') || 'matches, but an earlier RETURN ends the chain'}`,
  );
  const protoMatters = nat.some((r) => r.proto || r.sport || r.dport);
  return `no POSTROUTING rule of ${instName} matches ${protoMatters ? `${protoName(p.proto)} ` : ''}traffic from ${formatIpv4(p.src)} (${why.join(' | ')})`;
}

/**
 * The first reason on a failed probe's path, in configuration terms, or null when it was delivered.
 * `side` names which leg failed ('' or 'reply: ').
 */
export function explainFailure(s: Scenario, t: TracedPacket): string | null {
  if (t.fate === 'delivered') return null;
  const h = dropHop(t);
  const code = t.result.reason;
  const pv = pvOf(h?.bytes ?? new Uint8Array(0));
  const routeOf = (): string => (h ? h.note.replace(/^DROP [a-z-]+: /, '') : '');
  const rtb = h ? (/rtb (\S+)\)/.exec(h.name)?.[1] ?? '?') : '?';
  switch (code) {
    case DROP_SRC_DST_CHECK_DST: {
      const who = h ? (/^ENI (\S+)/.exec(h.name)?.[1] ?? '?') : '?';
      return `source/dest check is on at ${who}'s ENI: it drops packets for ${formatIpv4(pv.dst)} (not its own address) — a NAT instance needs it off (aws ec2 modify-instance-attribute --no-source-dest-check)`;
    }
    case DROP_SRC_DST_CHECK_SRC: {
      const who = h ? (/^(?:NAT instance|instance) ([^\s:]+)/.exec(h.name)?.[1] ?? '?') : '?';
      return `source/dest check is on at ${who}'s ENI: it drops what ${who} forwards with another source (${formatIpv4(pv.src)})`;
    }
    case DROP_BLACKHOLE:
      return `blackhole route in route table ${rtb} (${routeOf().replace(/^route /, '')}): its target is gone, e.g. the ENI of a terminated or replaced NAT instance`;
    case DROP_NO_ROUTE:
      return `no route to ${formatIpv4(pv.dst)} in route table ${rtb}`;
    case DROP_NO_HOST:
      return `route table ${rtb} routes ${formatIpv4(pv.dst)} locally but no instance has that address`;
    case DROP_IP_FORWARD_OFF: {
      const who = h ? (/^(?:NAT instance|instance) ([^\s:]+)/.exec(h.name)?.[1] ?? '?') : '?';
      return `${who} does not forward: net.ipv4.ip_forward = 0`;
    }
    case DROP_ROUTING_LOOP: {
      const fw = forwarders(s, t);
      return `routing loop through ${[...new Set(fw)].join(', ')}: a route table sends the packet back to an instance it already crossed (e.g. the NAT instance's own subnet routes 0.0.0.0/0 to it)`;
    }
    case DROP_MARTIAN_SOURCE: {
      const who = h ? (/^(?:NAT instance|instance) ([^\s:]+)/.exec(h.name)?.[1] ?? '?') : '?';
      const fw = forwarders(s, t);
      if (fw.includes(who))
        return `routing loop through ${who}: a route table sends ${who}'s own output (source ${formatIpv4(pv.src)}) back to it, and Linux drops it as a martian source (e.g. the NAT instance's own subnet routes 0.0.0.0/0 to it)`;
      return `${who} received a packet with its own address ${formatIpv4(pv.src)} as source: Linux drops it as a martian source`;
    }
    case DROP_MULTICAST:
      return `${formatIpv4(pv.dst)} is a multicast or broadcast address: the VPC carries neither (multicast needs a Transit Gateway multicast domain)`;
    case DROP_IGW_NO_PUBLIC_IP: {
      const fw = forwarders(s, t);
      const src = formatIpv4(pv.src);
      if (fw.length === 0)
        return `${src} has no public IP and its route table sends the packet straight to the igw (a public subnet: instances need a public IP, or route 0.0.0.0/0 to a NAT)`;
      const last = fw[fw.length - 1];
      const lastInst = s.instances.find((i) => i.name === last);
      const translated = translations(t).length > 0;
      if (translated && lastInst && pv.src === lastInst.privateIp)
        return `${last} translates to its own address ${src} but has no Elastic IP, so the igw drops it`;
      // the packet as it arrived at the last forwarder
      const at = t.hops.find(
        (x) => x.name.startsWith(`NAT instance ${last}: conntrack`) || x.name === `instance ${last}`,
      );
      return `NAT rule does not match this source: ${last} forwarded ${src} untranslated and the igw drops a private source without a public IP — ${at ? whyUntranslated(s, last, at.bytes) : ''}`;
    }
    case DROP_IGW_UNKNOWN_DST:
      return `${formatIpv4(pv.dst)} is not an Elastic IP of this VPC`;
    default:
      return `${reasonName(code)}${h ? ` at ${h.name}: ${h.note.replace(/^DROP [a-z-]+: /, '')}` : ''}`;
  }
}
