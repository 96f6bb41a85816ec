// Golden pairs made by the real kernel (the NAT box is Linux in namespaces with the scenario's
// config): verify with the model must match every frame when the scenario says what the box does,
// and name the MSS clamping as the only difference when it does not. With NATLAB_WRITE_VERIFY_CORPUS=1
// the clamping pair is (re)written to corpora/verify/mss-clamp/ (checked in CI by corpus.test.ts).
// Needs root and the kernel engine's tools; skipped with the reason otherwise.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKernelPrerequisites } from '../../src/oracle/index.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import { readTwoSides, runVerify } from '../../src/diff/verify/index.ts';
import { parseIpv4Addr as ip } from '../../src/packet/index.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { boxScenario, makePair, writePair, writeScenario } from './pairs.ts';
import { runInProcess } from '../helpers/cli.ts';

const pre = await checkKernelPrerequisites();
if (!pre.ok) console.warn(`test/verify/kernel.test.ts skipped: ${pre.missing.join('; ')}`);

export const CORPUS_DIR = 'corpora/verify/mss-clamp';
const CLAMP = '-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400';

async function verify(dir: string, scenario: Scenario | null) {
  return runVerify({
    sides: await readTwoSides(join(dir, 'inside.pcap'), join(dir, 'outside.pcap')),
    inside: [{ addr: ip('192.168.0.0'), len: 16 }],
    scenario,
    engineName: 'model',
    windowUs: 2_000_000,
    makeEngine: (s) => makeEngine('model', s, { seed: 1 }),
  });
}

describe.skipIf(!pre.ok)('verify on pairs captured from the kernel', () => {
  it('a plain Linux MASQUERADE box: every frame byte-identical to the model', async () => {
    const s = boxScenario();
    const dir = writePair(await makePair(await makeEngine('kernel', s, { seed: 1 }), s));
    const r = await verify(dir, null);
    expect(r.counts).toEqual({ identical: 24, differs: 0, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
  }, 60_000);

  it('a box with MSS clamping: named as the only difference, gone once the scenario has the rule', async () => {
    const box = boxScenario([CLAMP]);
    const pair = await makePair(await makeEngine('kernel', box, { seed: 1 }), box);
    const dir = writePair(pair);
    const without = await verify(dir, null);
    expect(without.counts).toMatchObject({ differs: 4, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    expect(without.findings.map((f) => f.what)).toEqual([expect.stringMatching(/^MSS clamped to 1400 on SYNs/)]);
    const withRule = await verify(dir, box);
    expect(withRule.counts).toEqual({ identical: 24, differs: 0, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    if (process.env.NATLAB_WRITE_VERIFY_CORPUS === '1') {
      mkdirSync(CORPUS_DIR, { recursive: true });
      for (const f of ['inside.pcap', 'outside.pcap', 'both.pcap', 'both.pcapng'])
        copyFileSync(join(dir, f), join(CORPUS_DIR, f));
      writeScenario(box, CORPUS_DIR, 'scenario.yaml');
      writeFileSync(
        join(CORPUS_DIR, 'captured-by.txt'),
        `the kernel engine (${new Date().toISOString().slice(0, 10)}): test/verify/kernel.test.ts\n`,
      );
    }
  }, 60_000);

  it('--engines kernel: the corpus box is "Linux with this config" (exit 0 with its scenario)', async () => {
    const r = await runInProcess([
      'verify',
      '--in',
      join(CORPUS_DIR, 'both.pcapng'),
      '--scenario',
      join(CORPUS_DIR, 'scenario.yaml'),
      '--engines',
      'kernel',
    ]);
    expect(r.stdout).toMatch(/the real box against kernel/);
    expect(r.stdout).toMatch(/matched byte-identical +24\n/);
    expect(r.code).toBe(0);
  }, 60_000);
});
