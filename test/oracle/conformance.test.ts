// natlab conformance on the real kernel (issue 19): the built-in scenario's report agrees with
// model and core on every verdict, and the port-shadowing check finds the DNAT port-forward
// exposed and closed once the PAT mitigation is in the scenario — on the kernel too. Needs root
// and the tools; skipped with the reason otherwise.
import { describe, expect, it } from 'vitest';
import { checkKernelPrerequisites } from '../../src/oracle/index.ts';
import { loadOpenScenario, loadScenario, resolveScenarioPath } from '../../src/scenario/index.ts';
import {
  engineMaker,
  findTopology,
  probeShadow,
  ProbeContext,
  runConformance,
  shadowTargets,
  type ShadowResult,
} from '../../src/diff/conformance/index.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

const pre = await checkKernelPrerequisites();
if (!pre.ok) console.warn(`test/oracle/conformance.test.ts skipped: ${pre.missing.join('; ')}`);

async function shadowOnKernel(s: Scenario): Promise<Record<string, ShadowResult>> {
  const topo = findTopology(s);
  const out: Record<string, ShadowResult> = {};
  for (const t of shadowTargets(topo)) {
    // A longer quiet time than the command's 20 ms: the suite runs beside CPU-bound tests.
    const ctx = new ProbeContext(topo, engineMaker('kernel', { engineExtra: { kernel: { settleMs: 60 } } }));
    try {
      out[t.name] = await probeShadow(ctx, t);
    } finally {
      await ctx.closeAll();
    }
  }
  return out;
}

describe.skipIf(!pre.ok)('conformance on the kernel', () => {
  it('built-in scenario: model, core and kernel agree on every verdict', async () => {
    const rep = await runConformance(loadOpenScenario(), ['model', 'core', 'kernel']);
    expect(rep.differences).toEqual([]);
    const k = (id: string): string => rep.rows.find((r) => r.requirement.id === id)!.judgements.kernel.verdict;
    expect(k('4787-REQ-1')).toBe('pass');
    expect(k('4787-REQ-5')).toBe('fail');
    expect(k('4787-REQ-8')).toBe('fail');
    expect(k('4787-REQ-9')).toBe('fail');
    expect(k('7857-2.1')).toBe('fail');
    expect(k('5382-REQ-10')).toBe('pass');
    // The kernel reassembles (nf_defrag_ipv4), so it alone can judge out-of-order fragments.
    expect(k('4787-REQ-14')).toBe('pass');
    expect(rep.rows.find((r) => r.requirement.id === '4787-REQ-14')!.judgements.model.verdict).toBe('untestable');
    expect(rep.classification.kernel.line).toBe(rep.classification.model.line);
    expect(rep.shadow[0].results.kernel.status).toBe('exposed');
  }, 600_000);

  it('a DNAT port-forward is exposed to port shadowing on the kernel', async () => {
    const r = await shadowOnKernel(loadScenario(resolveScenarioPath('vpc-nat-instance-port-forward')));
    expect(r['DNAT tcp/8080 -> app:80'].status).toBe('exposed');
    expect(r['DNAT tcp/8080 -> app:80'].evidence).toContain('→ dev: tcp 198.51.100.7:41404 > 10.0.1.20:8080 S');
    expect(r['DNAT tcp/8080 -> app:80'].hairpin).toBe(true);
  }, 300_000);

  it('the PAT mitigation closes it on the kernel, and the forward still reaches app:80', async () => {
    const r = await shadowOnKernel(loadScenario(resolveScenarioPath('vpc-nat-instance-port-forward-pat')));
    const d = r['DNAT tcp/8080 -> app:80'];
    expect({ status: d.status, mitigation: d.mitigation }).toEqual({ status: 'not exposed', mitigation: 'PAT' });
    expect(d.evidence).toContain('control (no attacker): → app: tcp 198.51.100.7:41404 > 10.0.1.10:80 S');
    expect(r["nat tcp/22 (the NAT instance's own sshd)"].mitigation).toBe('PAT');
  }, 300_000);

  it('the filter mitigation (FORWARD drop from the service ports) closes both on the kernel', async () => {
    const r = await shadowOnKernel(loadScenario(resolveScenarioPath('vpc-nat-instance-port-forward-filter')));
    for (const t of ['DNAT tcp/8080 -> app:80', "nat tcp/22 (the NAT instance's own sshd)"])
      expect({ status: r[t].status, mitigation: r[t].mitigation }).toEqual({
        status: 'not exposed',
        mitigation: 'filter',
      });
    expect(r['DNAT tcp/8080 -> app:80'].evidence).toContain(
      'control (no attacker): → app: tcp 198.51.100.7:41404 > 10.0.1.10:80 S',
    );
  }, 300_000);
});
