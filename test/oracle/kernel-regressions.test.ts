// Model-vs-kernel replays of the saved campaign counterexamples whose fix was in the kernel engine
// (its OUTPUT guard, its verdicts) or in the classification of documented differences (its run facts): the
// model-vs-core regression test (test/fuzz/regressions.test.ts) does not run the kernel, so these
// would rot unseen. Each must replay with every difference recognised. Needs root and the kernel
// tools; skips saying why otherwise.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { checkKernelPrerequisites } from '../../src/oracle/index.ts';
import { engineDescriptor, makeEngine } from '../../src/diff/engines.ts';
import { loadRegression, replayRegression, REGRESSIONS_DIR } from '../../src/diff/fuzz/regressions.ts';

const pre = await checkKernelPrerequisites();
if (!pre.ok) console.warn(`test/oracle/kernel-regressions.test.ts skipped: ${pre.missing.join('; ')}`);

const CASES = [
  // The OUTPUT guard dropped a filter INPUT REJECT's port unreachable as the stack's own answer.
  '20261205-output-count-405c6cb4',
  // A REJECT's answer lost at a network ACL: the verdict is still filter-reject.
  '20261205-reason-7e75c7c9',
  // E11's end-of-run rule: filter counters; equal counts of different packets; a packet an
  // instance's own egress group denied after its nat table counted it.
  '20261205-counters-40fdef60',
  '20261205-counters-20972536',
  '20261205-counters-4f9d82fa',
  // E11's end-of-run bound: a packet the kernel's ENI dropped that the contract dropped later (filter INPUT).
  '20261205-counters-6f42f5c4',
  // E5's end-of-run rule: filter counters of a TTL 0 input no instance saw.
  '20261205-counters-169f1abf',
  // K3: an instance's own FIN of a flow its stack's answer removed (INVALID: a FIN opens no entry).
  '20261205-ct-42e2cce',
  // K6: the reassembly-timeout time exceeded of a first fragment to an instance (30 s of real time).
  '20261205-counters-3e78b42d',
  // K5: a redirect's OUTPUT counts; the verdict of a packet whose redirect reached the sender's stack.
  '20261205-counters-4910d590',
  // E11: the later packets of a flow the contract refused at the allowance and the kernel tracked.
  '20261205-fate-2e3f392a',
  // E5: a later packet of a TTL 0 input's flow (the contract's entry only).
  '20261205-ct-16cd6178',
  // K3: the filter INPUT counts of segments the instance's stack answered (state-matching rule).
  '20261205-counters-23e41b5e',
  // K9: a looping ICMP error (no time exceeded about it) and the filter counts of a loop's passes.
  '20261205-reason-8b3ef48',
  // The RST shortcuts in SYN_SENT (model and core, judged by the kernel).
  '20261205-fate-7c838e49',
  '20261205-ct-challenge-ack-rst',
  '20261205-ct-syn-retrans-server-rst',
  // K2: the OUTPUT counts of a time exceeded the kernel's random global credit let through (met in
  // about two of three runs: the other runs agree outright).
  '20261205-counters-2131b0d',
  // E17: a SYN re-opening a security group's closed TCP flow in Linux meets the changed rules.
  '20261205-fate-78678b67',
];

describe.skipIf(!pre.ok).concurrent('saved model-vs-kernel regressions replay with nothing unclassified', () => {
  for (const id of CASES) {
    it(id, async () => {
      const reg = loadRegression(join(REGRESSIONS_DIR, id));
      const engines = [];
      for (const name of ['model', 'kernel'] as const)
        engines.push({
          name,
          // As `natlab fuzz --replay` makes them (the kernel: its campaign time options).
          engine: await makeEngine(name, reg.scenario, {
            seed: reg.meta.engineSeed,
            extra: name === 'kernel' ? engineDescriptor('kernel').fuzzOptions : undefined,
          }),
        });
      const out = await replayRegression(reg, engines);
      expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
    }, 120_000);
  }
});
