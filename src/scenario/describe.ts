// Human-readable summary of a compiled scenario (`natlab scenario check`). Cold path.

import { NAT_CHAINS, type Route, type Scenario } from '../spec/scenario.ts';
import { DEFAULT_CONNTRACK_MAX, DEFAULT_TIMEOUTS, type ConntrackTimeouts } from '../spec/timeouts.ts';
import { formatCidr, formatIp } from './addr-text.ts';

/** Internet hosts listed before the summary says how many there are in all. */
export const HOSTS_SHOWN = 12;

export function formatRoute(s: Scenario, r: Route): string {
  const target = r.target === 'eni' ? `eni:${s.instances[r.instance]?.name ?? '?'}` : r.target;
  return `${formatCidr(r.dest)} -> ${target}`;
}

function pad(rows: string[][]): string[] {
  const w = rows.reduce<number[]>((acc, r) => r.map((c, i) => Math.max(acc[i] ?? 0, c.length)), []);
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd());
}

/** Multi-line summary: VPC, subnets, route tables, instances with their nat rules, internet, conntrack. */
export function describeScenario(s: Scenario): string {
  const out: string[] = [`scenario ${s.name} (${s.source})`, `  vpc            ${formatCidr(s.vpcCidr)}`];
  out.push(`  subnets (${s.subnets.length}):`);
  out.push(...pad(s.subnets.map((sn) => [`    ${sn.name}`, formatCidr(sn.cidr), `route table ${s.routeTables[sn.routeTable]?.name ?? '?'}`])));
  out.push(`  route tables (${s.routeTables.length}):`);
  for (const rt of s.routeTables) out.push(`    ${rt.name}: ${rt.routes.map((r) => formatRoute(s, r)).join(', ') || '(no routes)'}`);
  out.push(`  instances (${s.instances.length}):`);
  const rows = s.instances.map((i) => [
    `    ${i.name}`,
    formatIp(i.privateIp),
    i.elasticIp === null ? '-' : `eip ${formatIp(i.elasticIp)}`,
    `subnet ${s.subnets[i.subnet]?.name ?? '?'}`,
    `src/dst check ${i.sourceDestCheck ? 'on' : 'off'}`,
    `ip_forward=${i.sysctls.ipForward ? 1 : 0} send_redirects all=${i.sysctls.sendRedirectsAll ? 1 : 0} eth0=${i.sysctls.sendRedirectsEth0 ? 1 : 0}`,
  ]);
  const lines = pad(rows);
  s.instances.forEach((i, k) => {
    out.push(lines[k]);
    if (i.nat) {
      const rules = NAT_CHAINS.flatMap((c) => i.nat!.chains[c].map((r) => r.text));
      if (rules.length === 0) out.push('      nat table: no rules');
      for (const r of rules) out.push(`      nat: ${r}`);
    }
  });
  const shown = s.internetHosts.slice(0, HOSTS_SHOWN).map(formatCidr).join(', ');
  const more = s.internetHosts.length > HOSTS_SHOWN ? ` ... (${s.internetHosts.length} in all)` : '';
  out.push(`  internet hosts ${shown || '(none)'}${more}`);
  const ct = s.conntrack;
  const changed = (Object.keys(DEFAULT_TIMEOUTS) as Array<keyof ConntrackTimeouts>)
    .filter((k) => ct.timeouts[k] !== DEFAULT_TIMEOUTS[k])
    .map((k) => `${k}=${ct.timeouts[k]}`);
  out.push(
    `  conntrack      max ${ct.max}${ct.max === DEFAULT_CONNTRACK_MAX ? ' (default)' : ''}, tcp_loose ${ct.tcpLoose ? 1 : 0}, checksum ${ct.checksum ? 1 : 0}, timeouts ${changed.length ? changed.join(' ') : 'Linux defaults'}`,
  );
  return out.join('\n');
}
