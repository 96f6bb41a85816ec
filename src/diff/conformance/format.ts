// Text and JSON forms of a conformance report.

import type { ConformanceReport } from './run.ts';
import type { Requirement } from './requirements.ts';

/** Why a requirement fails on what was probed: Linux's reason, or the NAT gateway's. */
function reasonOf(rep: ConformanceReport, req: Requirement): { label: string; text: string } | null {
  const text = rep.natKind === 'gateway' ? req.natGateway : req.linux;
  return text ? { label: rep.natKind === 'gateway' ? 'nat gateway' : 'linux', text } : null;
}

function verdictText(r: ConformanceReport['rows'][number], engines: string[]): string {
  const vs = engines.map((e) => r.judgements[e].verdict);
  if (vs.every((v) => v === vs[0]))
    return vs[0].toUpperCase() === 'INFO' ? (r.judgements[engines[0]].value ?? 'info') : vs[0];
  return engines.map((e) => `${e}: ${r.judgements[e].verdict}`).join(', ');
}

export function formatConformanceText(rep: ConformanceReport): string {
  const e = rep.engines;
  const out: string[] = [];
  out.push(`natlab conformance: scenario ${rep.scenario} (${rep.source})`);
  out.push(
    `  NAT ${rep.where.nat}; behind it: ${rep.where.inside.join(', ')}; internet hosts ${rep.where.internet.join(', ')}`,
  );
  out.push(
    `  engines: ${e.map((n) => `${n} (${(rep.elapsedMs[n] / 1000).toFixed(1)} s)`).join(', ')}; a fresh engine per probe`,
  );
  out.push('');
  const lines = new Set(e.map((n) => rep.classification[n].line));
  if (lines.size === 1) out.push(`RFC 5780 classification: ${rep.classification[e[0]].line}`);
  else for (const n of e) out.push(`RFC 5780 classification (${n}): ${rep.classification[n].line}`);
  out.push('');
  const head = ['requirement', 'level', 'verdict'];
  const rows = rep.rows.map((r) => [
    `${r.requirement.rfc} ${r.requirement.label}: ${r.requirement.title}`,
    r.requirement.level,
    verdictText(r, e),
  ]);
  const w0 = Math.min(90, Math.max(head[0].length, ...rows.map((r) => r[0].length)));
  const w1 = Math.max(head[1].length, ...rows.map((r) => r[1].length));
  out.push(`${head[0].padEnd(w0)}  ${head[1].padEnd(w1)}  ${head[2]}`);
  rep.rows.forEach((r, i) => {
    const [a, b, c] = rows[i];
    out.push(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}${r.agreed ? '' : '   <- ENGINES DIFFER'}`);
    const evs = new Set(e.map((n) => r.judgements[n].evidence));
    if (evs.size === 1) out.push(`    evidence: ${r.judgements[e[0]].evidence}`);
    else for (const n of e) out.push(`    evidence (${n}): ${r.judgements[n].evidence}`);
    const why = reasonOf(rep, r.requirement);
    if (e.some((n) => r.judgements[n].verdict === 'fail') && why) out.push(`    ${why.label}: ${why.text}`);
  });
  out.push('');
  const fails = (lv: string[]): number =>
    rep.rows.filter((r) => lv.includes(r.requirement.level) && r.verdict === 'fail').length;
  out.push(
    `summary: ${fails(['MUST', 'MUST NOT'])} MUST-level and ${fails(['SHOULD', 'SHOULD NOT', 'RECOMMENDED'])} SHOULD/RECOMMENDED-level requirements fail; ` +
      `${rep.rows.filter((r) => r.verdict === 'pass').length} pass; ${rep.rows.filter((r) => r.verdict === 'n/a').length} not applicable`,
  );
  out.push('');
  out.push('port shadowing (nft_nat.sh test_port_shadow: a host behind the NAT sends from the service port first):');
  if (rep.shadow.length === 0)
    out.push(
      '  nothing to shadow: the NAT has no service of its own and no port-forward (a NAT gateway accepts no inbound connection)',
    );
  for (const s of rep.shadow) {
    const st = new Set(
      e.map(
        (n) =>
          `${s.results[n].status}${s.results[n].mitigation && s.results[n].status !== 'exposed' ? ` (closed by ${s.results[n].mitigation})` : ''}; ` +
          `reachable from behind the NAT through the public address (hairpin): ${s.results[n].hairpin ? 'yes' : 'no'}`,
      ),
    );
    const text =
      st.size === 1 ? [...st][0] : e.map((n) => `${n}: ${s.results[n].status}/${s.results[n].mitigation}`).join(', ');
    out.push(
      `  ${s.target}: ${text.startsWith('exposed') ? `EXPOSED${text.slice('exposed'.length)}` : text}${s.agreed ? '' : '   <- ENGINES DIFFER'}`,
    );
    const evs = new Set(e.map((n) => s.results[n].evidence));
    if (evs.size === 1) out.push(`    evidence: ${s.results[e[0]].evidence}`);
    else for (const n of e) out.push(`    evidence (${n}): ${s.results[n].evidence}`);
  }
  if (rep.shadow.some((s) => e.some((n) => s.results[n].status === 'exposed'))) {
    out.push(
      '    mitigations (nft_nat.sh): a filter FORWARD rule dropping packets from the service port, notrack for it (raw table),',
    );
    out.push(
      '    or PAT in the nat table: -A POSTROUTING -s <VPC> -o eth0 -p tcp --sport P -j MASQUERADE --to-ports <range without P> --random',
    );
  }
  for (const n of e) {
    if (rep.warnings[n]?.length)
      out.push(`WARNINGS (${n}): ${rep.warnings[n].length}\n${rep.warnings[n].map((w) => `  - ${w}`).join('\n')}`);
  }
  out.push('');
  out.push(
    rep.differences.length
      ? `DIFFERENCES between engines: ${rep.differences.length}\n${rep.differences.map((d) => `  - ${d}`).join('\n')}`
      : `engines agree on every verdict (${e.join(', ')})`,
  );
  return out.join('\n');
}

export function conformanceJson(rep: ConformanceReport): object {
  return {
    scenario: rep.scenario,
    source: rep.source,
    where: rep.where,
    engines: rep.engines,
    elapsedMs: rep.elapsedMs,
    classification: rep.classification,
    requirements: rep.rows.map((r) => ({
      id: r.requirement.id,
      rfc: r.requirement.rfc,
      label: r.requirement.label,
      level: r.requirement.level,
      title: r.requirement.title,
      verdict: r.verdict,
      agreed: r.agreed,
      engines: r.judgements,
      linux: rep.natKind === 'instance' && (r.verdict === 'fail' || !r.agreed) ? r.requirement.linux : undefined,
      natGateway:
        rep.natKind === 'gateway' && (r.verdict === 'fail' || !r.agreed) ? r.requirement.natGateway : undefined,
    })),
    shadowing: rep.shadow,
    differences: rep.differences,
    warnings: rep.warnings,
  };
}
