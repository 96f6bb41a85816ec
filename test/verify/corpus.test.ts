// corpora/verify/: two-sided captures of a NAT box made by the real kernel (test/verify/kernel.test.ts
// writes them), verified in CI without root: the box clamps the MSS; without the rule natlab names
// the clamping as the only difference (exit 1), with the scenario that has it every frame matches
// (exit 0) — given as two files, as one capture split by address, or as a pcapng with named interfaces.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenario, scenarioToYaml } from '../../src/scenario/index.ts';
import { parseMangleTable } from '../../src/scenario/iptables-mangle.ts';
import { describe, expect, it } from 'vitest';
import { runInProcess } from '../helpers/cli.ts';

const D = 'corpora/verify/mss-clamp';
const TWO = ['--inside', join(D, 'inside.pcap'), '--outside', join(D, 'outside.pcap')];

describe('corpora/verify/mss-clamp (captured from the kernel)', () => {
  it('without the clamping rule: exactly the MSS clamping, with the rule to add (exit 1)', async () => {
    const r = await runInProcess(['verify', ...TWO, '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.counts).toEqual({ identical: 20, differs: 4, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    expect(j.findings).toHaveLength(1);
    expect(j.findings[0].what).toMatch(/^MSS clamped to 1400 on SYNs \(2 lowered, 2 inserted\)$/);
    expect(j.findings[0].suggestion).toMatch(/TCPMSS --set-mss 1400/);
  });
  it.each([
    ['two files', TWO],
    ['one capture split by address', ['--in', join(D, 'both.pcap'), '--inside', '192.168.0.0/16']],
    ['a pcapng with inside/outside interfaces', ['--in', join(D, 'both.pcapng')]],
  ])('with the scenario that has the rule: every frame matches (%s)', async (_name, args) => {
    const r = await runInProcess(['verify', ...args, '--scenario', join(D, 'scenario.yaml')]);
    expect(r.stdout).toMatch(/matched byte-identical +24\n/);
    expect(r.stdout).toMatch(/VERIFIED/);
    expect(r.code).toBe(0);
  });
});

describe('the way forward: --save-scenario, add the suggested rule, verify again', () => {
  it('the saved scenario with the suggested mangle rule verifies (exit 0)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-verify-save-'));
    const saved = join(dir, 'box.yaml');
    const r = await runInProcess(['verify', ...TWO, '--save-scenario', saved, '--json']);
    expect(r.code).toBe(1);
    const rule = (JSON.parse(r.stdout).findings[0].suggestion as string).match(/(-A FORWARD .*) \/ COMMIT/)![1];
    // What a user does by hand: the mangle section goes into the NAT instance's iptables text.
    const s = loadScenario(saved);
    const nat = s.instances.find((i) => i.nat)!;
    nat.mangle = parseMangleTable(`*mangle\n${rule}\nCOMMIT\n`, 'edit');
    writeFileSync(saved, scenarioToYaml(s));
    const again = await runInProcess(['verify', ...TWO, '--scenario', saved]);
    expect(again.stdout).toMatch(/VERIFIED/);
    expect(again.code).toBe(0);
  });
});
