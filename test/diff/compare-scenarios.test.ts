// `natlab compare` (src/diff/compare/scenarios.ts, src/cli/cmd-compare.ts): the NAT AMI (unfiltered:
// vpc-nat-instance-open, so the designs differ by their NAT, not by the built-in's NATSG group) against a
// NAT gateway on the built-in NAT-designs traffic shows the documented differences; a scenario
// against itself shows none (exit 0), against another exit 1; bad input exit 2.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareScenarios } from '../../src/diff/compare/scenarios.ts';
import { loadScenario, resolveScenarioPath } from '../../src/scenario/index.ts';
import { natDesignsCapture, scriptedEthernet } from '../../src/traffic/scripted.ts';
import { encodePcap } from '../../src/pcap/writer.ts';
import { LINKTYPE_ETHERNET } from '../../src/packet/constants.ts';

function trafficFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'natlab-cmp-test-'));
  const f = join(dir, 't.pcap');
  const cap = natDesignsCapture();
  writeFileSync(
    f,
    encodePcap(
      cap.frames.map((x) => ({
        tsSec: Math.floor(x.timeUs / 1e6),
        tsNsec: (x.timeUs % 1e6) * 1000,
        data: scriptedEthernet(x),
      })),
      { linkType: LINKTYPE_ETHERNET },
    ),
  );
  return f;
}

const sc = (n: string) => loadScenario(resolveScenarioPath(n));

describe('natlab compare', () => {
  it('NAT AMI vs NAT gateway: idle TCP gets an RST, GRE and ICMP errors are dropped, a slow UDP reply passes', async () => {
    const c = await compareScenarios({ a: sc('vpc-nat-instance-open'), b: sc('nat-gateway'), input: trafficFile() });
    const pairs = c.differences.map((d) => `${d.a} | ${d.b}`);
    expect(pairs).toContain('delivered to internet | dropped: natgw-idle-timeout, RST to app');
    expect(pairs).toContain('delivered to internet | dropped: natgw-protocol');
    expect(pairs).toContain('delivered to app | dropped: natgw-protocol');
    expect(pairs).toContain('delivered to nat | delivered to app');
    expect(c.sides[1].byReason['natgw-idle-timeout']).toBe(1);
    expect(c.sides[0].natGateways).toEqual({});
    // Every packet the gateway dropped: its own reasons and the TTL-1 probe.
    const r = c.sides[1].byReason;
    const gwDrops = Object.entries(r)
      .filter(([k]) => k.startsWith('natgw-'))
      .reduce((n, [, v]) => n + v, 0);
    expect(c.sides[1].natGateways.ngw.PacketsDropCount).toBe(gwDrops + (r['ttl-exceeded'] ?? 0));
    expect(c.sides[1].natGateways.ngw.ConnectionAttemptCount).toBeGreaterThan(0);
    expect(c.differingFlows).toBeGreaterThan(0);
  });

  it('a design against itself: no difference; fck-nat and alterNAT behave like the NAT AMI on this traffic', async () => {
    const input = trafficFile();
    for (const b of ['vpc-nat-instance-open', 'fck-nat', 'alternat']) {
      const c = await compareScenarios({ a: sc('vpc-nat-instance-open'), b: sc(b), input });
      expect([b, c.differingPackets]).toEqual([b, 0]);
    }
  });

  it('the CLI: exit 1 on differences, 0 without, 2 on bad input', () => {
    const run = (...a: string[]) =>
      spawnSync(process.execPath, ['bin/natlab.mjs', 'compare', ...a], { encoding: 'utf8' });
    const diff = run('vpc-nat-instance-open', 'nat-gateway');
    expect(diff.status).toBe(1);
    expect(diff.stdout).toMatch(/B: dropped: natgw-idle-timeout, RST to app/);
    expect(run('vpc-nat-instance-open', 'fck-nat').status).toBe(0);
    const bad = run('vpc-nat-instance-open');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/give two scenarios/);
    const k = run('vpc-nat-instance-open', 'nat-gateway', '--engine', 'kernel');
    expect(k.status).toBe(2);
  }, 60_000);
});
