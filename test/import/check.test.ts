// natlab check: the built-in scenario's reachability table (its NAT instance has AWS's NATSG
// group: HTTP/HTTPS pass, the rest is dropped by the group, a policy that does not fail the
// check), the same VPC unfiltered, and ≥ 10 broken variants, each fault named by the model's
// first reason on the path and by a lint warning.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadBuiltinScenario, loadOpenScenario } from '../../src/scenario/builtin.ts';
import { checkScenario, formatCheckReport, type CheckReport } from '../../src/diff/check/index.ts';
import { VARIANTS, openObject, variantScenario } from './variants.ts';
import { runCli } from './cli-run.ts';

function allReasons(r: CheckReport): string {
  const rs = [
    ...r.reach.subnets.flatMap((x) => x.results),
    ...r.reach.instances.flatMap((x) => x.results),
    ...r.reach.elasticIps.flatMap((x) => x.results),
  ];
  return rs.map((x) => x.reason ?? '').join('\n');
}

describe('natlab check on vpc-nat-instance-open (the built-in without its security group)', () => {
  const rep = checkScenario(loadOpenScenario());

  it('every subnet reaches the internet: private through nat as its Elastic IP, public with a public IP', () => {
    const [pub, priv] = rep.reach.subnets;
    expect(pub.subnet).toBe('public');
    expect(pub.needsPublicIp).toBe(true);
    expect(pub.results.every((r) => r.ok && r.path === 'igw')).toBe(true);
    expect(priv.results.map((r) => r.probe)).toEqual(['tcp/443', 'tcp/80', 'udp/53', 'udp/123', 'icmp']);
    for (const r of priv.results) {
      expect(r.ok).toBe(true);
      expect(r.path).toBe('nat (MASQUERADE) → igw');
      expect(r.seenAs).toBe('203.0.113.10');
    }
    expect(rep.failing).toEqual([]);
    expect(rep.lints).toEqual([]);
  });

  it('instances and Elastic IPs', () => {
    expect(rep.reach.instances.map((i) => [i.instance, i.results.every((r) => r.ok), i.results[0].seenAs])).toEqual([
      ['nat', true, '203.0.113.10'],
      ['web', true, '203.0.113.20'],
      ['app', true, '203.0.113.10'],
    ]);
    expect(rep.reach.elasticIps.map((e) => [e.elasticIp, e.results.map((r) => `${r.probe} ${r.seenAs}`)])).toEqual([
      ['203.0.113.10', ['tcp/22 nat 10.0.0.10:22', 'tcp/443 nat 10.0.0.10:443', 'icmp nat 10.0.0.10']],
      ['203.0.113.20', ['tcp/22 web 10.0.0.20:22', 'tcp/443 web 10.0.0.20:443', 'icmp web 10.0.0.20']],
    ]);
  });

  it('prints the table; exit 0', async () => {
    const r = await runCli('check', '--scenario', 'vpc-nat-instance-open');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /private\s+10\.0\.1\.0\/24\s+0\.0\.0\.0\/0 -> eni:nat\s+yes\s+nat \(MASQUERADE\) → igw as 203\.0\.113\.10/,
    );
    expect(r.out).toMatch(/public\s+10\.0\.0\.0\/24\s+0\.0\.0\.0\/0 -> igw\s+yes \(with a public IP\)/);
    expect(r.out).toMatch(/^ok: every subnet with a default route reaches the internet$/m);
    const j = await runCli('check', '--scenario', 'vpc-nat-instance-open', '--json');
    const doc = JSON.parse(j.out);
    expect(doc.failing).toEqual([]);
    expect(doc.reach.subnets[1].results[0]).toMatchObject({ probe: 'tcp/443', ok: true, seenAs: '203.0.113.10' });
  });
});

describe("natlab check on the built-in scenario (the NAT instance's NATSG group)", () => {
  const rep = checkScenario(loadBuiltinScenario());

  it('the private subnet reaches the internet partly: HTTP/HTTPS pass, DNS, NTP and ping are filtered (sg-deny), not failing', () => {
    const priv = rep.reach.subnets[1];
    expect(priv.results.map((r) => `${r.probe}:${r.ok}:${r.filtered ?? false}`)).toEqual([
      'tcp/443:true:false',
      'tcp/80:true:false',
      'udp/53:false:true',
      'udp/123:false:true',
      'icmp:false:true',
    ]);
    for (const r of priv.results.filter((x) => !x.ok))
      expect(r.reason).toMatch(/^sg-deny at security groups nat \(inbound\): no inbound rule of natsg allows it/);
    expect(priv.failing).toBe(false);
    expect(rep.failing).toEqual([]);
    // The NAT instance's own DNS is dropped by the group's outbound rules; unsolicited HTTPS to
    // its Elastic IP by the inbound ones; SSH from "your network" (198.51.100.0/24) passes.
    const nat = rep.reach.instances.find((i) => i.instance === 'nat')!;
    expect(nat.results.find((r) => r.probe === 'udp/53')?.reason).toMatch(/security groups nat \(outbound\)/);
    expect(rep.reach.elasticIps[0].results.map((r) => `${r.probe}:${r.ok}`)).toEqual([
      'tcp/22:true',
      'tcp/443:false',
      'icmp:false',
    ]);
  });

  it("prints 'partly (filtered)' and says why the check still passes; exit 0", async () => {
    const r = await runCli('check');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /private\s+10\.0\.1\.0\/24\s+0\.0\.0\.0\/0 -> eni:nat\s+partly \(filtered\)\s+nat \(MASQUERADE\)/,
    );
    expect(r.out).toMatch(/udp\/53, udp\/123, icmp: sg-deny at security groups nat \(inbound\)/);
    expect(r.out).toMatch(
      /^ok: every subnet with a default route reaches the internet \(probes marked FAIL above were dropped by security group/m,
    );
  });

  it('a group that lets nothing through fails the check: filtered drops only pass when something reaches', () => {
    const closed = checkScenario(
      variantScenario({
        name: 'closed',
        fault: 'the NAT instance has a security group without inbound rules',
        edit: (o) => {
          o.securityGroups = { closed: { inbound: [] } };
          o.instances.nat.securityGroups = ['closed'];
        },
      }),
    );
    expect(closed.reach.subnets[1].results.every((r) => !r.ok && r.filtered)).toBe(true);
    expect(closed.failing).toEqual(['private']);
    expect(formatCheckReport(closed)).toMatch(/private\s+10\.0\.1\.0\/24\s+0\.0\.0\.0\/0 -> eni:nat\s+NO/);
  });
});

const EXPECT: Record<string, { failing: string[]; reason: RegExp; lint: string | null }> = {
  'sdc-on': { failing: ['private'], reason: /source\/dest check is on at nat's ENI/, lint: 'scenario' },
  blackhole: {
    failing: ['private'],
    reason: /blackhole route in route table private \(0\.0\.0\.0\/0 → blackhole\)/,
    lint: null,
  },
  'no-route': { failing: [], reason: /no route to 198\.51\.100\.7 in route table private/, lint: null },
  'ip-forward-off': {
    failing: ['private'],
    reason: /nat does not forward: net\.ipv4\.ip_forward = 0/,
    lint: 'scenario',
  },
  'new-cidr': {
    failing: ['added'],
    reason: /NAT rule does not match this source: .*-s 10\.0\.0\.0\/16 does not cover the source 10\.1\.0\.4/,
    lint: 'source-not-covered',
  },
  'wrong-iface': {
    failing: ['private'],
    reason: /NAT rule does not match this source: .*-o ens5: the packet leaves by eth0/,
    lint: 'masquerade-iface',
  },
  'no-nat-rule': {
    failing: ['private'],
    reason: /nat has no MASQUERADE or SNAT rule in POSTROUTING/,
    lint: 'no-nat-rule',
  },
  'nat-no-eip': {
    failing: ['private'],
    reason: /nat translates to its own address 10\.0\.0\.10 but has no Elastic IP/,
    lint: 'scenario',
  },
  'self-route': { failing: ['public', 'private'], reason: /routing loop through nat/, lint: 'self-route' },
  'dnat-asymmetric': {
    failing: [],
    reason: /reply: the reply leaves as 203\.0\.113\.20:22 by igw, not as 203\.0\.113\.10:2222/,
    lint: 'asymmetric',
  },
  'accept-first': {
    failing: ['private'],
    reason: /POSTROUTING rule 1 '-A POSTROUTING -j ACCEPT' ACCEPTs it before any NAT rule/,
    lint: 'never-matches',
  },
  'tcp-only': { failing: ['private'], reason: /-p tcp: this is udp/, lint: null },
  'route-to-plain-host': { failing: ['private'], reason: /source\/dest check is on at web's ENI/, lint: 'scenario' },
  'eip-in-private': {
    failing: [],
    reason:
      /the server's next segment leaves as 203\.0\.113\.10:22, not 203\.0\.113\.20:22.*connection breaks after the handshake/,
    lint: 'asymmetric',
  },
};

describe('natlab check names the fault of each broken variant', () => {
  it('has at least 10 variants, each with an expectation', () => {
    expect(VARIANTS.length).toBeGreaterThanOrEqual(10);
    expect(Object.keys(EXPECT).sort()).toEqual(VARIANTS.map((v) => v.name).sort());
  });

  for (const v of VARIANTS) {
    it(`${v.name}: ${v.fault}`, () => {
      const rep = checkScenario(variantScenario(v));
      const e = EXPECT[v.name];
      expect(rep.failing).toEqual(e.failing);
      expect(allReasons(rep)).toMatch(e.reason);
      if (e.lint) expect(rep.lints.map((l) => l.kind)).toContain(e.lint);
      // the same reason is in the printed report
      expect(formatCheckReport(rep)).toMatch(e.reason);
    });
  }

  it('tcp-only: TCP reaches, UDP and ICMP do not (partly)', () => {
    const rep = checkScenario(variantScenario(VARIANTS.find((v) => v.name === 'tcp-only')!));
    const priv = rep.reach.subnets[1];
    expect(priv.results.map((r) => `${r.probe}:${r.ok}`)).toEqual([
      'tcp/443:true',
      'tcp/80:true',
      'udp/53:false',
      'udp/123:false',
      'icmp:false',
    ]);
    expect(formatCheckReport(rep)).toMatch(/private\s+10\.0\.1\.0\/24\s+0\.0\.0\.0\/0 -> eni:nat\s+partly/);
  });

  it('exit 1 on a failing subnet with a default route; 0 when the only failure has no default route', async () => {
    const d = mkdtempSync(join(tmpdir(), 'natlab-check-'));
    for (const name of ['blackhole', 'no-route']) {
      const o = openObject();
      VARIANTS.find((v) => v.name === name)!.edit(o);
      writeFileSync(join(d, `${name}.yaml`), stringify(o));
    }
    const bad = await runCli('check', '--scenario', join(d, 'blackhole.yaml'));
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^FAIL: 1 subnet with a default route cannot reach the internet: private$/m);
    const nr = await runCli('check', '--scenario', join(d, 'no-route.yaml'));
    expect(nr.code).toBe(0);
    expect(nr.out).toMatch(/private\s+10\.0\.1\.0\/24\s+\(none\)\s+NO/);
    const usage = await runCli('check', 'extra');
    expect(usage.code).toBe(2);
  });
});

describe('import then check: the docs/import.md example of a VPC with an added CIDR', () => {
  it('the analytics subnet (new CIDR 10.1.0.0/16) cannot reach the internet: nat-sg allows only 10.0.0.0/16 and MASQUERADE -s does not cover it; exit 1', async () => {
    const d = mkdtempSync(join(tmpdir(), 'natlab-check-'));
    const imp = await runCli(
      'scenario',
      'import',
      'test/fixtures/import/aws-added-cidr',
      '--out',
      join(d, 'prod.yaml'),
    );
    expect(imp.code, imp.err).toBe(0);
    expect(imp.err).toMatch(/uses 10\.0\.0\.0\/15/);
    expect(imp.out + imp.err).toMatch(/3 instances, 3 security groups, 1 network ACL →/);
    expect(imp.err).toMatch(/172\.16\.0\.0\/12 → pcx-0a1b2c3d4e5f600b1 \(VPC peering connection\).*not modelled/);
    const r = await runCli('check', '--scenario', join(d, 'prod.yaml'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/analytics\s+10\.1\.0\.0\/24\s+0\.0\.0\.0\/0 -> eni:nat\s+NO/);
    expect(r.out).toMatch(
      /tcp\/443, tcp\/80, udp\/53, udp\/123, icmp: sg-deny at security groups nat \(inbound\): no inbound rule of nat-sg allows it/,
    );
    expect(r.out).toMatch(/\[source-not-covered\] nat: subnet analytics/);
    expect(r.out).toMatch(/^FAIL: 1 subnet with a default route cannot reach the internet: analytics$/m);
  });
});
