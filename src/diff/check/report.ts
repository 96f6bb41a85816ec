// `natlab check` output: the reachability table, reasons and lint warnings as text, or JSON.
import type { Reachability, ProbeResult } from './reachability.ts';
import type { Lint } from './lint.ts';

export interface CheckReport {
  reach: Reachability;
  lints: Lint[];
  /** Subnets with a default route that cannot reach the internet (exit 1 when any). */
  failing: string[];
}

function verdict(rs: ProbeResult[]): string {
  const ok = rs.filter((r) => r.ok).length;
  if (ok === rs.length) return 'yes';
  if (ok === 0) return 'NO';
  return rs.every((r) => r.ok || r.filtered) ? 'partly (filtered)' : 'partly';
}

function protoCells(rs: ProbeResult[]): string {
  return rs.map((r) => `${r.probe} ${r.ok ? 'ok' : 'FAIL'}`).join(', ');
}

/** The distinct (path, address) pairs of the successful probes: `nat (MASQUERADE) → igw as 203.0.113.10`. */
function via(rs: ProbeResult[]): string {
  const seen = new Set<string>();
  for (const r of rs) if (r.ok) seen.add(`${r.path}${r.seenAs ? ` as ${r.seenAs}` : ''}`);
  return [...seen].join('; ');
}

/** Distinct failure reasons, each with the probes it applies to. */
function reasons(rs: ProbeResult[]): string[] {
  const by = new Map<string, string[]>();
  for (const r of rs) if (!r.ok && r.reason) by.set(r.reason, [...(by.get(r.reason) ?? []), r.probe]);
  return [...by.entries()].map(([why, ps]) => `${ps.join(', ')}: ${why}`);
}

function table(rows: string[][]): string[] {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r
      .map((x, c) => (c === r.length - 1 ? x : x.padEnd(w[c])))
      .join('  ')
      .trimEnd(),
  );
}

export function formatCheckReport(rep: CheckReport): string {
  const { reach } = rep;
  const out: string[] = [
    `natlab check: ${reach.scenario} (probes to and from internet host ${reach.peer}; each with its reply, through the model)`,
    '',
  ];
  out.push('subnets → internet (a new instance in each subnet):');
  const rows: string[][] = [['subnet', 'cidr', 'default route', 'reaches', 'via']];
  for (const s of reach.subnets)
    rows.push([
      s.subnet,
      s.cidr,
      s.defaultRoute ?? '(none)',
      `${verdict(s.results)}${s.needsPublicIp ? ' (with a public IP)' : ''}`,
      via(s.results) || '-',
    ]);
  out.push(...table(rows).map((l) => `  ${l}`));
  for (const s of reach.subnets) {
    const rs = reasons(s.results);
    if (rs.length) {
      out.push(`  ${s.subnet}: ${protoCells(s.results)}`);
      for (const r of rs) out.push(`    ${r}`);
    }
  }
  out.push('', 'instances → internet:');
  const irows: string[][] = [['instance', 'subnet', 'reaches', 'via']];
  for (const i of reach.instances) irows.push([i.instance, i.subnet, verdict(i.results), via(i.results) || '-']);
  out.push(...table(irows).map((l) => `  ${l}`));
  for (const i of reach.instances) {
    const rs = reasons(i.results);
    if (rs.length) {
      out.push(`  ${i.instance}: ${protoCells(i.results)}`);
      for (const r of rs) out.push(`    ${r}`);
    }
  }
  out.push('', 'internet → Elastic IPs:');
  if (reach.elasticIps.length === 0) out.push('  (no Elastic IPs)');
  for (const e of reach.elasticIps) {
    const cells = e.results.map((r) => `${r.probe} ${r.ok ? `→ ${r.seenAs}` : 'FAIL'}`).join(', ');
    out.push(`  ${e.elasticIp} (${e.instance}): ${cells}`);
    for (const r of reasons(e.results)) out.push(`    ${r}`);
  }
  out.push('', rep.lints.length ? `warnings (${rep.lints.length}):` : 'warnings: none');
  for (const l of rep.lints) out.push(`  - [${l.kind}] ${l.message}`);
  out.push('');
  out.push(
    rep.failing.length
      ? `FAIL: ${rep.failing.length} subnet${rep.failing.length === 1 ? '' : 's'} with a default route cannot reach the internet: ${rep.failing.join(', ')}`
      : reach.subnets.some((x) => x.results.some((r) => r.filtered))
        ? 'ok: every subnet with a default route reaches the internet (probes marked FAIL above were dropped by security group, network ACL or filter rules: a policy, not a broken path)'
        : 'ok: every subnet with a default route reaches the internet',
  );
  return `${out.join('\n')}\n`;
}
