// Compiled Scenario → scenario file (YAML, or the same object as JSON). parseScenario of the
// output yields a Scenario deep-equal to the input apart from `source`. Used to save fuzz
// counterexamples and by `natlab scenario show`. Cold path.

import { timelineToObject } from './timeline.ts';
import { Document, isMap, isSeq } from 'yaml';
import type { Cidr, Scenario } from '../spec/scenario.ts';
import { formatCidr, formatIpv4 } from '../packet/addr.ts';
import { natGatewaysToObject } from './nat-gateway.ts';
import { awsFiltersToObject } from './security-groups-yaml.ts';
import {
  SYSCTL_ICMP_MSGS_BURST,
  SYSCTL_ICMP_MSGS_PER_SEC,
  SYSCTL_ICMP_RATELIMIT,
  SYSCTL_ICMP_RATEMASK,
  SYSCTL_IP_FORWARD,
  SYSCTL_SEND_REDIRECTS_ALL,
  SYSCTL_SEND_REDIRECTS_ETH0,
} from './load.ts';

function hostText(c: Cidr): string {
  return c.len === 32 ? formatIpv4(c.addr) : formatCidr(c);
}

/** The scenario in the file format, as a plain object (what `--json` prints; loads back). */
export function scenarioToObject(s: Scenario): Record<string, unknown> {
  const routeTables: Record<string, unknown> = {};
  for (const rt of s.routeTables) {
    routeTables[rt.name] = rt.routes.map((r) => ({
      dest: formatCidr(r.dest),
      target:
        r.target === 'eni'
          ? `eni:${s.instances[r.instance].name}`
          : r.target === 'nat-gateway'
            ? `nat-gateway:${(s.natGateways ?? [])[r.instance].name}`
            : r.target,
    }));
  }
  const subnets: Record<string, unknown> = {};
  for (const sn of s.subnets)
    subnets[sn.name] = { cidr: formatCidr(sn.cidr), routeTable: s.routeTables[sn.routeTable].name };
  const instances: Record<string, unknown> = {};
  for (const i of s.instances) {
    const o: Record<string, unknown> = { subnet: s.subnets[i.subnet].name, privateIp: formatIpv4(i.privateIp) };
    if (i.elasticIp !== null) o.elasticIp = formatIpv4(i.elasticIp);
    o.sourceDestCheck = i.sourceDestCheck;
    o.sysctls = {
      [SYSCTL_IP_FORWARD]: i.sysctls.ipForward ? 1 : 0,
      [SYSCTL_SEND_REDIRECTS_ALL]: i.sysctls.sendRedirectsAll ? 1 : 0,
      [SYSCTL_SEND_REDIRECTS_ETH0]: i.sysctls.sendRedirectsEth0 ? 1 : 0,
      [SYSCTL_ICMP_RATELIMIT]: i.sysctls.icmpRatelimit,
      [SYSCTL_ICMP_RATEMASK]: i.sysctls.icmpRatemask,
      [SYSCTL_ICMP_MSGS_PER_SEC]: i.sysctls.icmpMsgsPerSec,
      [SYSCTL_ICMP_MSGS_BURST]: i.sysctls.icmpMsgsBurst,
    };
    if (i.nat) o.iptables = (i.filter ? i.filter.text : '') + (i.mangle ? i.mangle.text : '') + i.nat.text;
    if (i.security) {
      o.securityGroups = i.security.groups.map((g) => (s.securityGroups ?? [])[g].name);
      o.connectionTracking = { ...i.security.tracking };
    }
    instances[i.name] = o;
  }
  const filters = awsFiltersToObject(s);
  const o: Record<string, unknown> = {
    name: s.name,
    vpc: { cidr: formatCidr(s.vpcCidr) },
    routeTables,
    subnets,
    instances,
    internet: { hosts: s.internetHosts.map(hostText) },
    conntrack: {
      max: s.conntrack.max,
      tcpLoose: s.conntrack.tcpLoose,
      checksum: s.conntrack.checksum,
      ...(s.conntrack.tcpIgnoreInvalidRst ? { tcpIgnoreInvalidRst: true } : {}),
      ...(s.conntrack.tcpBeLiberal ? { tcpBeLiberal: true } : {}),
      ...(s.conntrack.tcpMaxRetrans !== undefined ? { tcpMaxRetrans: s.conntrack.tcpMaxRetrans } : {}),
      timeouts: { ...s.conntrack.timeouts },
    },
    ...filters,
  };
  if (s.natGateways && s.natGateways.length > 0) o.natGateways = natGatewaysToObject(s.natGateways, s.subnets);
  if (s.timeline && s.timeline.length > 0) o.timeline = timelineToObject(s, awsFiltersToObject);
  return o;
}

/** The scenario as a YAML scenario file (all values explicit, nat tables as iptables-save text). */
export function scenarioToYaml(s: Scenario, header?: string): string {
  const doc = new Document(scenarioToObject(s));
  // Routes and subnets read best one per line: `- { dest: 0.0.0.0/0, target: igw }`.
  for (const rt of s.routeTables) {
    const seq = doc.getIn(['routeTables', rt.name], true);
    if (isSeq(seq)) for (const it of seq.items) if (isMap(it)) it.flow = true;
  }
  for (const sn of s.subnets) {
    const m = doc.getIn(['subnets', sn.name], true);
    if (isMap(m)) m.flow = true;
  }
  for (const g of s.natGateways ?? []) {
    const seq = doc.getIn(['natGateways', g.name, 'addresses'], true);
    if (isSeq(seq)) for (const it of seq.items) if (isMap(it)) it.flow = true;
  }
  const body = doc.toString({ blockQuote: 'literal', lineWidth: 0, indent: 2 });
  const head = [
    `# natlab scenario ${JSON.stringify(s.name)} (compiled form: every default explicit${s.source ? `; from ${JSON.stringify(s.source)}` : ''})`,
    ...(header ? header.split(/\r?\n|\r/).map((l) => `# ${l}`) : []),
  ].join('\n');
  return `${head}\n${body}`;
}
