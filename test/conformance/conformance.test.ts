// natlab conformance on model and core: the built-in scenario's verdicts (what Linux's MASQUERADE
// behind an AWS IGW does), variants that classify differently, the port-shadowing exposure and its
// PAT mitigation, and that a behaviour difference between engines is reported as a difference.
import { describe, expect, it } from 'vitest';
import { loadOpenScenario, loadScenario, resolveScenarioPath } from '../../src/scenario/index.ts';
import {
  runConformance,
  engineMaker,
  conformanceJson,
  formatConformanceText,
  type ConformanceReport,
  type EngineMaker,
} from '../../src/diff/conformance/index.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

function verdict(rep: ConformanceReport, id: string): string {
  const r = rep.rows.find((x) => x.requirement.id === id);
  if (!r) throw new Error(`no row ${id}`);
  return r.verdict;
}
function value(rep: ConformanceReport, id: string, engine = 'model'): string | undefined {
  return rep.rows.find((x) => x.requirement.id === id)?.judgements[engine].value;
}
function shadow(
  rep: ConformanceReport,
  prefix: string,
  engine = 'model',
): { status: string; mitigation: string | null } {
  const s = rep.shadow.find((x) => x.target.startsWith(prefix));
  if (!s) throw new Error(`no shadow target ${prefix}: ${rep.shadow.map((x) => x.target).join(', ')}`);
  return { status: s.results[engine].status, mitigation: s.results[engine].mitigation };
}
const scenario = (name: string): Scenario => loadScenario(resolveScenarioPath(name));

describe('conformance: built-in scenario (AMI default MASQUERADE), model vs core', async () => {
  const rep = await runConformance(loadOpenScenario(), ['model', 'core']);

  it('engines agree on every verdict', () => {
    expect(rep.differences).toEqual([]);
    expect(rep.rows.every((r) => r.agreed)).toBe(true);
  });

  it('classifies as endpoint-independent mapping, address-and-port-dependent filtering, no hairpinning', () => {
    for (const e of ['model', 'core']) {
      const c = rep.classification[e];
      expect(c.mapping).toBe('endpoint-independent');
      expect(c.filtering).toBe('address-and-port-dependent');
      expect(c.hairpinning).toBe('no');
      expect(c.rfc3489).toBe('port-restricted cone');
      expect(c.udpLifetime).toBe('30 s (120 s once two-way for > 2 s)');
    }
  });

  it('judges each requirement from the outputs', () => {
    const expected: Record<string, string> = {
      '4787-REQ-1': 'pass',
      '4787-REQ-2': 'pass',
      '4787-REQ-3': 'pass',
      '4787-REQ-3ab': 'pass',
      '4787-REQ-4': 'pass',
      '4787-REQ-5': 'fail',
      '4787-REQ-5c': 'fail',
      '4787-REQ-6': 'pass',
      '4787-REQ-8': 'fail',
      '4787-REQ-9': 'fail',
      '4787-REQ-9a': 'n/a',
      '4787-REQ-12': 'pass',
      '4787-REQ-13': 'n/a',
      '4787-REQ-14': 'untestable',
      '5382-REQ-1': 'pass',
      '5382-REQ-2': 'pass',
      '5382-REQ-3': 'fail',
      '5382-REQ-4': 'fail',
      '5382-REQ-5': 'pass',
      '5382-REQ-7': 'n/a',
      '5382-REQ-8': 'fail',
      '5382-REQ-10': 'pass',
      '7857-2.1': 'fail',
      '5508-REQ-1': 'pass',
      '5508-REQ-2': 'fail',
      '5508-REQ-4': 'pass',
      '5508-REQ-5': 'pass',
      '5508-REQ-7': 'fail',
      '7857-2.2': 'fail',
      '7857-3': 'n/a',
      '7857-7.1': 'pass',
    };
    const got = Object.fromEntries(Object.keys(expected).map((id) => [id, verdict(rep, id)]));
    expect(got).toEqual(expected);
    expect(value(rep, '4787-4.2.1')).toBe('preserved');
    expect(value(rep, '4787-4.2.3')).toBe('contiguous');
    expect(value(rep, '4787-REQ-6a')).toBe('inbound refresh');
    expect(value(rep, '7857-2.1')).toBe('LAST_ACK 30 s');
    expect(value(rep, '7857-2.2')).toBe('10 s');
    expect(value(rep, '5508-REQ-2')).toBe('30 s');
  });

  it('the virtual-clock engines confirm the UDP lifetime by letting it pass', () => {
    const ev = rep.rows.find((r) => r.requirement.id === '4787-REQ-5')!.judgements.core.evidence;
    expect(ev).toContain('confirmed: a reply 30 s later is not delivered');
  });

  it("the NAT instance's own sshd can be shadowed by the host behind it", () => {
    expect(shadow(rep, 'nat tcp/22')).toEqual({ status: 'exposed', mitigation: null });
    expect(shadow(rep, 'nat tcp/22', 'core')).toEqual({ status: 'exposed', mitigation: null });
  });

  it('text and JSON forms carry the rows, the Linux reasons of failures and the classification', () => {
    const t = formatConformanceText(rep);
    expect(t).toContain('RFC 5780 classification: mapping endpoint-independent, filtering address-and-port-dependent');
    expect(t).toMatch(/RFC 4787 REQ-5: UDP mapping timer >= 2 min +MUST +fail/);
    expect(t).toContain('linux: nf_conntrack_udp_packet(): nf_conntrack_udp_timeout (30 s)');
    expect(t).toContain('engines agree on every verdict (model, core)');
    const j = conformanceJson(rep) as { requirements: Array<{ id: string; verdict: string; linux?: string }> };
    const r5 = j.requirements.find((r) => r.id === '4787-REQ-5')!;
    expect(r5.verdict).toBe('fail');
    expect(r5.linux).toContain('conntrack.timeouts.udp');
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
  });
});

describe('conformance: variants classify differently', () => {
  it('--random-fully: a symmetric NAT, no port preservation, shadowing closed by PAT', async () => {
    const rep = await runConformance(scenario('vpc-nat-instance-random-fully'), ['model', 'core']);
    expect(rep.differences).toEqual([]);
    expect(rep.classification.model.mapping).toBe('address-and-port-dependent');
    expect(rep.classification.core.rfc3489).toBe('symmetric');
    expect(verdict(rep, '4787-REQ-1')).toBe('fail');
    expect(verdict(rep, '5382-REQ-1')).toBe('fail');
    expect(verdict(rep, '4787-REQ-4')).toBe('fail');
    expect(value(rep, '4787-4.2.1')).toBe('not preserved');
    expect(shadow(rep, 'nat tcp/22')).toEqual({ status: 'not exposed', mitigation: 'PAT' });
  });

  it('port-forward with tuned timeouts: timers pass, two hosts overlap ports, the forward is exposed', async () => {
    const rep = await runConformance(scenario('vpc-nat-instance-port-forward'), ['model', 'core']);
    expect(rep.differences).toEqual([]);
    expect(rep.classification.model.udpLifetime).toBe('300 s');
    expect(verdict(rep, '4787-REQ-5')).toBe('pass');
    expect(verdict(rep, '4787-REQ-5c')).toBe('pass');
    expect(verdict(rep, '5508-REQ-2')).toBe('pass');
    expect(value(rep, '7857-3')).toBe('overlapping');
    expect(verdict(rep, '4787-REQ-3')).toBe('pass');
    expect(verdict(rep, '5382-REQ-7')).toBe('pass');
    for (const e of ['model', 'core']) {
      expect(shadow(rep, 'DNAT tcp/8080 -> app:80', e)).toEqual({ status: 'exposed', mitigation: null });
      expect(shadow(rep, 'nat tcp/22', e)).toEqual({ status: 'exposed', mitigation: null });
    }
    // The forward hairpins (through the IGW and the DNAT rule), unlike dynamic mappings (REQ-9).
    expect(rep.shadow.find((s) => s.target.startsWith('DNAT'))!.results.core.hairpin).toBe(true);
    const ev = rep.shadow.find((s) => s.target.startsWith('DNAT'))!.results.model.evidence;
    expect(ev).toMatch(
      /^dev 10\.0\.1\.20:8080 -> 198\.51\.100\.7:41404: left as 203\.0\.113\.10:8080; then .* → dev: tcp 198\.51\.100\.7:41404 > 10\.0\.1\.20:8080 S/,
    );
    expect(ev).toContain('control (no attacker): → app: tcp 198.51.100.7:41404 > 10.0.1.10:80 S');
    expect(ev).toContain('from dev to 203.0.113.10:8080 (hairpin): → app: tcp 203.0.113.10:42300 > 10.0.1.10:80 S');
  });

  it('the same with the PAT mitigation rules: not exposed, closed by PAT; the forward still works', async () => {
    const rep = await runConformance(scenario('vpc-nat-instance-port-forward-pat'), ['model', 'core']);
    expect(rep.differences).toEqual([]);
    for (const e of ['model', 'core']) {
      expect(shadow(rep, 'DNAT tcp/8080 -> app:80', e)).toEqual({ status: 'not exposed', mitigation: 'PAT' });
      expect(shadow(rep, 'nat tcp/22', e)).toEqual({ status: 'not exposed', mitigation: 'PAT' });
    }
    // PAT only touches the service ports: the rest of the classification is the port-forward's.
    expect(rep.classification.model.mapping).toBe('endpoint-independent');
    expect(value(rep, '4787-4.2.1')).toBe('preserved');
  });
});

describe('conformance: the filter mitigation of port shadowing (model and core)', () => {
  it('FORWARD drops from the service ports: both targets not exposed, closed by filter; the forward still works', async () => {
    const rep = await runConformance(scenario('vpc-nat-instance-port-forward-filter'), ['model', 'core']);
    for (const e of ['model', 'core']) {
      expect(shadow(rep, 'DNAT tcp/8080 -> app:80', e)).toEqual({ status: 'not exposed', mitigation: 'filter' });
      expect(shadow(rep, 'nat tcp/22', e)).toEqual({ status: 'not exposed', mitigation: 'filter' });
      const fwd = rep.shadow.find((x) => x.target.startsWith('DNAT'))!.results[e].evidence;
      expect(fwd).toContain('dropped (filter-drop)');
      expect(fwd).toContain('control (no attacker): → app: tcp 198.51.100.7:41404 > 10.0.1.10:80 S');
    }
  });
});

describe('conformance: disagreement is a difference', () => {
  it('an engine whose UDP timers differ is reported on the requirement and the classification', async () => {
    const base = loadOpenScenario();
    const longUdp: EngineMaker = {
      name: 'model-long-udp',
      clock: 'virtual',
      reassembles: false,
      make: (s) =>
        makeEngine(
          'model',
          { ...s, conntrack: { ...s.conntrack, timeouts: { ...s.conntrack.timeouts, udp: 300, udpStream: 300 } } },
          { seed: 1 },
        ),
    };
    const rep = await runConformance(base, [engineMaker('model'), longUdp]);
    expect(rep.rows.find((r) => r.requirement.id === '4787-REQ-5')!.agreed).toBe(false);
    expect(verdict(rep, '4787-REQ-5')).toBe('differs');
    expect(
      rep.differences.some((d) =>
        d.startsWith('RFC 4787 REQ-5 (UDP mapping timer >= 2 min): model fail (30 s), model-long-udp pass (300 s)'),
      ),
    ).toBe(true);
    expect(verdict(rep, '4787-REQ-1')).toBe('pass');
    expect(formatConformanceText(rep)).toContain('<- ENGINES DIFFER');
  });

  it('a scenario with no NAT instance to probe is bad input naming why', async () => {
    const s = loadOpenScenario();
    const noNat = { ...s, instances: s.instances.map((i) => ({ ...i, nat: null })) };
    await expect(runConformance(noNat, ['model'])).rejects.toThrow(
      /nothing to probe: conformance needs a NAT instance/,
    );
  });
});

describe('conformance: the NAT gateway scenario (AWS managed NAT), model vs core', async () => {
  const gw = scenario('nat-gateway');
  const rep = await runConformance(gw, ['model', 'core']);
  const preserve: Scenario = {
    ...gw,
    natGateways: gw.natGateways!.map((g) => ({ ...g, portSelection: 'preserve' as const })),
  };
  const repPreserve = await runConformance(preserve, ['model', 'core']);

  it('probes the gateway (its Elastic IP) and the engines agree on every verdict', () => {
    expect(rep.natKind).toBe('gateway');
    expect(rep.where.nat).toMatch(/^gateway ngw 10\.0\.0\.50 \(public 203\.0\.113\.50\)/);
    expect(rep.differences).toEqual([]);
    expect(repPreserve.differences).toEqual([]);
  });

  it('classifies as symmetric: a port per connection (portSelection random), APDF, no hairpinning, 350 s', () => {
    for (const e of ['model', 'core']) {
      const c = rep.classification[e];
      expect(c.mapping).toBe('address-and-port-dependent');
      expect(c.filtering).toBe('address-and-port-dependent');
      expect(c.hairpinning).toBe('no');
      expect(c.rfc3489).toBe('symmetric');
      expect(c.udpLifetime).toMatch(/^350 s/);
    }
  });

  it('judges timers from the gateway connection table: 350 s idle everywhere', () => {
    expect(verdict(rep, '5382-REQ-5')).toBe('fail');
    expect(value(rep, '5382-REQ-5')).toBe('350 s');
    expect(verdict(rep, '4787-REQ-5')).toBe('pass');
    expect(verdict(rep, '5508-REQ-2')).toBe('pass');
    expect(verdict(rep, '7857-2.2')).toBe('pass');
    // Ports 1024-65535 only (AWS), and the later UDP fragment is not carried (natlab limit).
    expect(verdict(rep, '4787-REQ-3ab')).toBe('fail');
    expect(verdict(rep, '4787-REQ-14')).toBe('fail');
    // Unsolicited SYNs are dropped silently: no stack of its own answers them.
    expect(verdict(rep, '5382-REQ-4')).toBe('pass');
  });

  it("explains failures with the gateway's reasons, not Linux's; no port-shadowing targets", () => {
    const text = formatConformanceText(rep);
    expect(text).toContain("nat gateway: AWS: a NAT gateway's idle timeout is 350 s");
    expect(text).not.toMatch(/^\s+linux: /m);
    expect(text).toContain('nothing to shadow');
    expect(rep.shadow).toEqual([]);
    const j = conformanceJson(rep) as { requirements: Array<{ id: string; natGateway?: string; linux?: string }> };
    const r5 = j.requirements.find((x) => x.id === '5382-REQ-5')!;
    expect(r5.natGateway).toMatch(/350 s/);
    expect(r5.linux).toBeUndefined();
  });

  it("portSelection 'preserve' keeps the client's port while free: endpoint-independent by behaviour", () => {
    expect(repPreserve.classification.model.mapping).toBe('endpoint-independent');
    expect(verdict(repPreserve, '4787-REQ-1')).toBe('pass');
    expect(value(repPreserve, '4787-4.2.1')).toBe('preserved');
  });
});
