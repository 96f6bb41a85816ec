// Human-readable summary of a compiled scenario (`natlab scenario check`). Cold path.

import { NAT_CHAINS, type Route, type Scenario, type Sysctls } from '../spec/scenario.ts';
import { defaultIcmpSysctls } from './load.ts';
import { DEFAULT_CONNTRACK_MAX, DEFAULT_TIMEOUTS, type ConntrackTimeouts } from '../spec/timeouts.ts';
import { formatCidr, formatIpv4 } from '../packet/addr.ts';
import type { AclRule, SgRule } from '../spec/aws-filters.ts';
import { filterMatchText } from './security-groups.ts';

/** Internet hosts listed before the summary says how many there are in all. */
export const HOSTS_SHOWN = 12;

export function formatRoute(s: Scenario, r: Route): string {
  const target =
    r.target === 'eni'
      ? `eni:${s.instances[r.instance]?.name ?? '?'}`
      : r.target === 'nat-gateway'
        ? `nat-gateway:${s.natGateways?.[r.instance]?.name ?? '?'}`
        : r.target;
  return `${formatCidr(r.dest)} -> ${target}`;
}

function pad(rows: string[][]): string[] {
  const w = rows.reduce<number[]>((acc, r) => r.map((c, i) => Math.max(acc[i] ?? 0, c.length)), []);
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i])))
      .join('  ')
      .trimEnd(),
  );
}

function sgRuleText(s: Scenario, r: SgRule): string {
  return `${filterMatchText(r)} ${r.cidr ? formatCidr(r.cidr) : `group ${s.securityGroups?.[r.group]?.name ?? '?'}`}`;
}

function aclRuleText(r: AclRule): string {
  return `${r.num} ${r.action} ${filterMatchText(r)} ${formatCidr(r.cidr)}`;
}

/** The security groups (with the ENIs they are on) and network ACLs, one line each; nothing when there are none. */
function describeFilters(s: Scenario): string[] {
  const out: string[] = [];
  const groups = s.securityGroups ?? [];
  if (groups.length > 0) out.push(`  security groups (${groups.length}):`);
  groups.forEach((g, gi) => {
    const on = s.instances.filter((i) => i.security?.groups.includes(gi)).map((i) => i.name);
    const list = (rs: SgRule[]) => (rs.length ? rs.map((r) => sgRuleText(s, r)).join(', ') : 'none');
    out.push(`    ${g.name} (on ${on.join(', ') || 'no ENI'}): in ${list(g.inbound)}; out ${list(g.outbound)}`);
  });
  const acls = s.networkAcls ?? [];
  if (acls.length > 0) out.push(`  network ACLs (${acls.length}):`);
  for (const a of acls) {
    const list = (rs: AclRule[]) => [...rs.map(aclRuleText), '* deny'].join(', ');
    const subnets = a.subnets.map((k) => s.subnets[k]?.name ?? '?').join(', ') || 'no subnet';
    out.push(`    ${a.name} (on ${subnets}): in ${list(a.inbound)}; out ${list(a.outbound)}`);
  }
  return out;
}

/** Multi-line summary: VPC, subnets, route tables, instances with their nat rules, security groups and ACLs, internet, conntrack. */
export function describeScenario(s: Scenario): string {
  const out: string[] = [`scenario ${s.name} (${s.source})`, `  vpc            ${formatCidr(s.vpcCidr)}`];
  out.push(`  subnets (${s.subnets.length}):`);
  out.push(
    ...pad(
      s.subnets.map((sn) => [
        `    ${sn.name}`,
        formatCidr(sn.cidr),
        `route table ${s.routeTables[sn.routeTable]?.name ?? '?'}`,
      ]),
    ),
  );
  out.push(`  route tables (${s.routeTables.length}):`);
  for (const rt of s.routeTables)
    out.push(`    ${rt.name}: ${rt.routes.map((r) => formatRoute(s, r)).join(', ') || '(no routes)'}`);
  out.push(`  instances (${s.instances.length}):`);
  const rows = s.instances.map((i) => [
    `    ${i.name}`,
    formatIpv4(i.privateIp),
    i.elasticIp === null ? '-' : `eip ${formatIpv4(i.elasticIp)}`,
    `subnet ${s.subnets[i.subnet]?.name ?? '?'}`,
    `src/dst check ${i.sourceDestCheck ? 'on' : 'off'}`,
    `ip_forward=${i.sysctls.ipForward ? 1 : 0} send_redirects all=${i.sysctls.sendRedirectsAll ? 1 : 0} eth0=${i.sysctls.sendRedirectsEth0 ? 1 : 0}${icmpLimits(i.sysctls)}`,
  ]);
  const lines = pad(rows);
  s.instances.forEach((i, k) => {
    out.push(lines[k]);
    if (i.nat) {
      const rules = NAT_CHAINS.flatMap((c) => i.nat!.chains[c].map((r) => r.text));
      if (rules.length === 0) out.push('      nat table: no rules');
      for (const r of rules) out.push(`      nat: ${r}`);
    }
    if (i.filter) {
      const f = i.filter;
      out.push(
        `      filter policies: INPUT ${f.policy.INPUT}, FORWARD ${f.policy.FORWARD}, OUTPUT ${f.policy.OUTPUT}`,
      );
      for (const c of Object.keys(f.chains)) for (const r of f.chains[c]) out.push(`      filter: ${r.text}`);
    }
  });
  out.push(...describeFilters(s));
  const gws = s.natGateways ?? [];
  if (gws.length > 0) out.push(`  NAT gateways (${gws.length}):`);
  for (const g of gws) {
    const addrs = g.addresses
      .map((a) => `${formatIpv4(a.privateIp)}${a.elasticIp === null ? '' : ` (eip ${formatIpv4(a.elasticIp)})`}`)
      .join(', ');
    out.push(
      `    ${g.name}  subnet ${s.subnets[g.subnet]?.name ?? '?'}  ${addrs}  limit ${g.connectionLimit}/destination/address, idle ${g.idleTimeout} s, ports ${g.portSelection}`,
    );
  }
  const shown = s.internetHosts.slice(0, HOSTS_SHOWN).map(formatCidr).join(', ');
  const more = s.internetHosts.length > HOSTS_SHOWN ? ` ... (${s.internetHosts.length} in all)` : '';
  out.push(`  internet hosts ${shown || '(none)'}${more}`);
  const ct = s.conntrack;
  const changed = (Object.keys(DEFAULT_TIMEOUTS) as Array<keyof ConntrackTimeouts>)
    .filter((k) => ct.timeouts[k] !== DEFAULT_TIMEOUTS[k])
    .map((k) => `${k}=${ct.timeouts[k]}`);
  out.push(
    `  conntrack      max ${ct.max}${ct.max === DEFAULT_CONNTRACK_MAX ? ' (default)' : ''}, tcp_loose ${ct.tcpLoose ? 1 : 0}, checksum ${ct.checksum ? 1 : 0}${ct.tcpIgnoreInvalidRst ? ', tcp_ignore_invalid_rst 1' : ''}${ct.tcpBeLiberal ? ', tcp_be_liberal 1' : ''}${ct.tcpMaxRetrans !== undefined ? `, tcp_max_retrans ${ct.tcpMaxRetrans}` : ''}, timeouts ${changed.length ? changed.join(' ') : 'Linux defaults'}`,
  );
  return out.join('\n');
}

/**
 * Configurations that are valid but almost certainly not what the author meant (the classic
 * NAT-instance mistakes). `natlab scenario check` prints them; they never fail a load, since
 * tests deliberately build such scenarios (e.g. source/dest check left on).
 */
export function scenarioWarnings(s: Scenario): string[] {
  const out: string[] = [];
  const routedTo = new Map<number, string[]>();
  for (const rt of s.routeTables)
    for (const r of rt.routes)
      if (r.target === 'eni')
        routedTo.set(r.instance, [...(routedTo.get(r.instance) ?? []), `${rt.name}: ${formatCidr(r.dest)}`]);
  for (const [idx, routes] of routedTo) {
    const i = s.instances[idx];
    if (!i) continue;
    if (i.sourceDestCheck)
      out.push(
        `instance ${i.name}: route tables send traffic to its ENI (${routes.join('; ')}) but its source/dest check is on, so the ENI drops what it forwards (AWS: disable it on a NAT instance)`,
      );
    if (!i.sysctls.ipForward)
      out.push(
        `instance ${i.name}: route tables send traffic to its ENI (${routes.join('; ')}) but net.ipv4.ip_forward is 0, so it forwards nothing`,
      );
  }
  for (const i of s.instances) {
    const sn = s.subnets[i.subnet];
    const rt = sn ? s.routeTables[sn.routeTable] : undefined;
    const hasIgw = !!rt && rt.routes.some((r) => r.target === 'igw');
    if (i.elasticIp !== null && !hasIgw)
      out.push(
        `instance ${i.name}: has Elastic IP ${formatIpv4(i.elasticIp)} but route table ${rt?.name ?? '?'} of subnet ${sn?.name ?? '?'} has no route to the igw, so replies cannot leave`,
      );
    const translates =
      i.nat !== null &&
      NAT_CHAINS.some((c) => i.nat!.chains[c].some((r) => r.target.kind === 'MASQUERADE' || r.target.kind === 'SNAT'));
    if (translates && routedTo.has(s.instances.indexOf(i)) && i.elasticIp === null)
      out.push(
        `instance ${i.name}: translates traffic routed to it but has no Elastic IP, so the igw drops what it sends to the internet`,
      );
  }
  for (const g of s.natGateways ?? []) {
    const sn = s.subnets[g.subnet];
    const rt = sn ? s.routeTables[sn.routeTable] : undefined;
    if (!rt) continue;
    const hasIgw = rt.routes.some((r) => r.target === 'igw');
    if (g.addresses.some((a) => a.elasticIp !== null) && !hasIgw)
      out.push(
        `NAT gateway ${g.name}: has Elastic IPs but route table ${rt.name} of its subnet ${sn.name} has no route to the igw, so nothing it translates reaches the internet`,
      );
    if (
      rt.routes.some((r) => r.target === 'nat-gateway' && r.instance === s.natGateways!.indexOf(g) && r.dest.len === 0)
    )
      out.push(`NAT gateway ${g.name}: its own subnet's default route points at it (a routing loop)`);
  }
  return out;
}

/** The ICMP rate-limit sysctls when any differs from Linux's default, else ''. */
function icmpLimits(y: Sysctls): string {
  const d = defaultIcmpSysctls();
  if (
    y.icmpRatelimit === d.icmpRatelimit &&
    y.icmpRatemask === d.icmpRatemask &&
    y.icmpMsgsPerSec === d.icmpMsgsPerSec &&
    y.icmpMsgsBurst === d.icmpMsgsBurst
  )
    return '';
  return ` icmp_ratelimit=${y.icmpRatelimit} icmp_ratemask=0x${y.icmpRatemask.toString(16)} icmp_msgs_per_sec=${y.icmpMsgsPerSec} icmp_msgs_burst=${y.icmpMsgsBurst}`;
}
