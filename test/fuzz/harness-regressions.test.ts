// Harness bugs the fuzzer itself had: each run below once reported a difference that was the
// harness's mistake, not an engine's. They re-run the exact fast-check run (commands and all), so
// the invariants that fired are checked again.
import { describe, expect, it } from 'vitest';
import { makeEngine } from '../../src/diff/engines.ts';
import { type FuzzEngineSpec, formatFailure, runFuzz } from '../../src/diff/fuzz/fuzz.ts';
import fc from 'fast-check';
import { FUZZ_DEFAULT_CT_MAX, fuzzScenarioSpecArbFor } from '../../src/traffic/fuzz-scenario.ts';
import { engineDescriptor } from '../../src/diff/engines.ts';

const modelVsCore: FuzzEngineSpec[] = [
  { name: 'model', create: (s, seed) => makeEngine('model', s, { seed }) },
  { name: 'core', create: (s, seed) => makeEngine('core', s, { seed, extra: { inline: true } }) },
];

describe('fuzz harness regressions', () => {
  it('engines say whether they choose ports from the model generator (exactPorts in natlab fuzz)', () => {
    expect(engineDescriptor('model').modelPortChoices).toBe('always');
    expect(engineDescriptor('core').modelPortChoices).toBe('one-worker');
    expect(engineDescriptor('kernel').modelPortChoices).toBeUndefined();
  });
  it('a campaign with an engine that cannot enforce nf_conntrack_max generates only the default (E3)', () => {
    // corpora/regressions/20261204-conntrack-4b650323: ct max 1 against the kernel engine.
    expect(engineDescriptor('kernel').fixedConntrackMax).toBe(true);
    const fixed = fc.sample(fuzzScenarioSpecArbFor({ shortTimeouts: true, defaultCtMax: true }), {
      numRuns: 300,
      seed: 7,
    });
    expect(new Set(fixed.map((s) => s.ctMax))).toEqual(new Set([FUZZ_DEFAULT_CT_MAX]));
    expect(fixed.every((s) => s.shortTimeouts)).toBe(true);
    // Without it the small tables stay in the model-vs-core campaigns.
    const free = fc.sample(fuzzScenarioSpecArbFor({}), { numRuns: 300, seed: 7 });
    expect(free.some((s) => s.ctMax < 64)).toBe(true);
  });

  it('a flood that takes over an expired flow’s mapped port ends that flow’s reply expectation (seed 1252869339 run 2638, 60 commands as the CI campaign)', async () => {
    // out 10.0.1.10:32768 → :1025; 61 s pass (UDP entry gone); a flood from 32768..32769 gives
    // :1025 to 32769; the far side's reply to :1025 rightly reaches 32769. The harness used to
    // expect it at 32768 ("the connection's sender is ...") on both engines.
    const rep = await runFuzz({
      engines: modelVsCore,
      seed: 1252869339,
      onlyRun: 2638,
      saveDir: null,
      maxCommands: 60,
    });
    expect(rep.runs).toBe(1);
    expect(rep.failure ? formatFailure(rep.failure) : null).toBeNull();
  }, 60_000);

  it('a replayed packet that takes an expired flow’s mapped port ends that flow’s reply expectation (seed 534010699 run 3809, 60 commands)', async () => {
    // snat to the single port 1024: #0 (sport 53) holds it, #1 (32768) cannot get it; 432001 s
    // pass (every entry gone); a replay of #1's SYN now gets 1024; the responder's FIN of #0's
    // connection rightly reaches 32768. Only flood/shape packets used to update ownership.
    const rep = await runFuzz({ engines: modelVsCore, seed: 534010699, onlyRun: 3809, saveDir: null, maxCommands: 60 });
    expect(rep.runs).toBe(1);
    expect(rep.failure ? formatFailure(rep.failure) : null).toBeNull();
  }, 60_000);
});
