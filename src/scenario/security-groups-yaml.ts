// Compiled security groups and network ACLs → scenario-file keys (the inverse of
// security-groups.ts; scenarioToObject uses it). Every default explicit. Cold path.

import { FILTER_PROTO_ALL, ICMP_ANY, type FilterMatch } from '../spec/aws-filters.ts';
import type { Scenario } from '../spec/scenario.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { formatCidr } from '../packet/addr.ts';

function protoText(p: number): string | number {
  if (p === FILTER_PROTO_ALL) return 'all';
  if (p === PROTO_TCP) return 'tcp';
  if (p === PROTO_UDP) return 'udp';
  if (p === PROTO_ICMP) return 'icmp';
  return p;
}

function matchObject(m: FilterMatch): Record<string, unknown> {
  const o: Record<string, unknown> = { protocol: protoText(m.proto) };
  if (m.proto === PROTO_TCP || m.proto === PROTO_UDP)
    o.ports = m.portLo === m.portHi ? m.portLo : `${m.portLo}-${m.portHi}`;
  if (m.icmpType !== ICMP_ANY) o.icmpType = m.icmpType;
  if (m.icmpCode !== ICMP_ANY) o.icmpCode = m.icmpCode;
  return o;
}

/** `securityGroups` and `networkAcls` of the file format (absent keys stay absent). */
export function awsFiltersToObject(s: Scenario): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const groups = s.securityGroups;
  if (groups) {
    const o: Record<string, unknown> = {};
    for (const g of groups) {
      const rules = (list: typeof g.inbound) =>
        list.map((r) => {
          const x = matchObject(r);
          if (r.cidr) x.cidr = formatCidr(r.cidr);
          else x.group = groups[r.group].name;
          return x;
        });
      o[g.name] = { inbound: rules(g.inbound), outbound: rules(g.outbound) };
    }
    out.securityGroups = o;
  }
  if (s.networkAcls) {
    const o: Record<string, unknown> = {};
    for (const a of s.networkAcls) {
      const rules = (list: typeof a.inbound) =>
        list.map((r) => ({ rule: r.num, action: r.action, ...matchObject(r), cidr: formatCidr(r.cidr) }));
      o[a.name] = {
        subnets: a.subnets.map((k) => s.subnets[k].name),
        inbound: rules(a.inbound),
        outbound: rules(a.outbound),
      };
    }
    out.networkAcls = o;
  }
  return out;
}
