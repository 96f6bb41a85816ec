// `natlab check` lint warnings: configuration that is wrong whatever the traffic — rules that
// can never match, a route to an ENI whose source/dest check is on, MASQUERADE with an out
// interface the instance does not have, a NAT rule whose source misses a subnet routed through
// it, a NAT instance whose own subnet routes 0.0.0.0/0 to itself — plus the scenario loader's
// warnings. Rule matching uses the model's matcher on the instance's only interface. Cold path.

import { cidrContains, formatCidr } from '../../packet/addr.ts';
import type { Cidr, NatChainName, NatRule, Scenario } from '../../spec/scenario.ts';
import { NAT_CHAINS } from '../../spec/scenario.ts';
import { ETH0 } from '../../model/engine.ts';
import { scenarioWarnings, formatRoute } from '../../scenario/index.ts';

export interface Lint {
  /** Short kind: `never-matches`, `masquerade-iface`, `source-not-covered`, `self-route`, `no-nat-rule`, `scenario`. */
  kind: string;
  message: string;
}

function ifaceMatches(pattern: string, dev: string): boolean {
  return pattern.endsWith('+') ? dev.startsWith(pattern.slice(0, -1)) : pattern === dev;
}

function within(a: Cidr, b: Cidr): boolean {
  return a.len >= b.len && cidrContains(b, a.addr);
}

/** Does earlier rule `e` match every packet later rule `l` matches (so `l` can never match)? */
function covers(e: NatRule, l: NatRule): boolean {
  const cidr = (x: NatRule['src'], y: NatRule['src']): boolean =>
    !x || (!!y && !x.neg && !y.neg && within(y.cidr, x.cidr));
  const iface = (x: NatRule['inIface'], y: NatRule['inIface']): boolean =>
    !x || (!!y && x.neg === y.neg && x.name === y.name);
  const port = (x: NatRule['sport'], y: NatRule['sport']): boolean =>
    !x || (!!y && !x.neg && !y.neg && x.lo <= y.lo && y.hi <= x.hi);
  const proto =
    !e.proto || e.proto.proto === 0 || (!!l.proto && l.proto.neg === e.proto.neg && l.proto.proto === e.proto.proto);
  return (
    cidr(e.src, l.src) &&
    cidr(e.dst, l.dst) &&
    iface(e.inIface, l.inIface) &&
    iface(e.outIface, l.outIface) &&
    proto &&
    port(e.sport, l.sport) &&
    port(e.dport, l.dport)
  );
}

function ruleLabel(inst: string, chain: NatChainName, k: number, r: NatRule): string {
  return `${inst}: ${chain} rule ${k + 1} '${r.text}'`;
}

export function lintScenario(s: Scenario): Lint[] {
  const out: Lint[] = [];
  const routedTo = new Map<number, Array<{ rt: number; text: string }>>();
  s.routeTables.forEach((rt, ri) => {
    for (const r of rt.routes)
      if (r.target === 'eni')
        routedTo.set(r.instance, [
          ...(routedTo.get(r.instance) ?? []),
          { rt: ri, text: `${rt.name}: ${formatRoute(s, r)}` },
        ]);
  });
  s.instances.forEach((inst, i) => {
    const nat = inst.nat;
    if (nat) {
      for (const chain of NAT_CHAINS) {
        const rules = nat.chains[chain];
        rules.forEach((r, k) => {
          const ifc = chain === 'POSTROUTING' || chain === 'OUTPUT' ? r.outIface : r.inIface;
          if (ifc && ifaceMatches(ifc.name, ETH0) === ifc.neg) {
            const opt = chain === 'POSTROUTING' || chain === 'OUTPUT' ? '-o' : '-i';
            const masq = r.target.kind === 'MASQUERADE' || r.target.kind === 'SNAT';
            out.push({
              kind: masq ? 'masquerade-iface' : 'never-matches',
              message:
                `${ruleLabel(inst.name, chain, k, r)} can never match: ${ifc.neg ? '! ' : ''}${opt} ${ifc.name}, but the instance's only interface is ${ETH0}` +
                (masq
                  ? ` — nothing is translated by it (a MASQUERADE written for another interface name, or fck-nat's boot race: the interface was not known yet)`
                  : ''),
            });
            return;
          }
          if (r.proto && r.proto.proto === 0 && r.proto.neg) {
            out.push({
              kind: 'never-matches',
              message: `${ruleLabel(inst.name, chain, k, r)} can never match: ! -p all`,
            });
            return;
          }
          const earlier = rules.findIndex((e, j) => j < k && covers(e, r));
          if (earlier >= 0)
            out.push({
              kind: 'never-matches',
              message: `${ruleLabel(inst.name, chain, k, r)} can never match: rule ${earlier + 1} '${rules[earlier].text}' matches everything it does first`,
            });
          if (
            (r.target.kind === 'MASQUERADE' || r.target.kind === 'SNAT') &&
            chain === 'POSTROUTING' &&
            r.src &&
            !r.src.neg
          ) {
            const hits = s.subnets.some(
              (sn) => cidrContains(r.src!.cidr, sn.cidr.addr) || cidrContains(sn.cidr, r.src!.cidr.addr),
            );
            if (!hits)
              out.push({
                kind: 'never-matches',
                message: `${ruleLabel(inst.name, chain, k, r)} can never match traffic from the VPC: -s ${formatCidr(r.src.cidr)} covers no subnet (VPC ${formatCidr(s.vpcCidr)})`,
              });
          }
        });
      }
    }
    const routes = routedTo.get(i);
    if (!routes) return;
    // The NAT instance's own subnet sends 0.0.0.0/0 to it: what it translates comes straight back.
    const ownRt = s.subnets[inst.subnet].routeTable;
    const self = s.routeTables[ownRt].routes.find((r) => r.target === 'eni' && r.instance === i && r.dest.len === 0);
    if (self)
      out.push({
        kind: 'self-route',
        message: `${inst.name}: its own subnet ${s.subnets[inst.subnet].name}'s route table ${s.routeTables[ownRt].name} sends ${formatRoute(s, self)}: what it forwards comes back to it (routing loop); its subnet needs 0.0.0.0/0 → igw`,
      });
    // Subnets routed through this instance whose addresses no MASQUERADE/SNAT rule covers.
    const natRules = nat
      ? nat.chains.POSTROUTING.filter((r) => r.target.kind === 'MASQUERADE' || r.target.kind === 'SNAT')
      : [];
    if (nat && natRules.length === 0) {
      out.push({
        kind: 'no-nat-rule',
        message: `${inst.name}: route tables send traffic to it (${routes.map((r) => r.text).join('; ')}) but its POSTROUTING chain has no MASQUERADE or SNAT rule, so nothing is translated (fck-nat's boot race leaves exactly this: 'iptables -o ""' was rejected while the service reported success)`,
      });
    }
    // Rules that can match at all (a wrong -o is its own warning above).
    const usable = natRules.filter((r) => !r.outIface || ifaceMatches(r.outIface.name, ETH0) !== r.outIface.neg);
    if (usable.length === 0) return;
    for (const sn of s.subnets) {
      if (!routes.some((r) => r.rt === sn.routeTable)) continue;
      const covered = usable.some((r) => !r.src || (!r.src.neg && within(sn.cidr, r.src.cidr)));
      if (!covered) {
        const srcs = usable
          .map((r) => (r.src ? `${r.src.neg ? '! ' : ''}-s ${formatCidr(r.src.cidr)}` : 'any source'))
          .join(', ');
        out.push({
          kind: 'source-not-covered',
          message: `${inst.name}: subnet ${sn.name} (${formatCidr(sn.cidr)}) is routed to it but no MASQUERADE/SNAT rule covers that source (${srcs}) — a VPC CIDR added after the NAT instance was set up?`,
        });
      }
    }
  });
  for (const w of scenarioWarnings(s)) out.push({ kind: 'scenario', message: w });
  return out;
}
