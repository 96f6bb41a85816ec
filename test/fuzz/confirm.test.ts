// Confirmation re-runs (FuzzOptions.confirmRuns): a failure is re-run on fresh engines before it
// counts. One that the re-runs do not meet again (a real-clock engine's timing) is reported as
// unreproduced and the campaign goes on; one they meet again stops the campaign as before.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFuzz, type FuzzEngineSpec } from '../../src/diff/fuzz/fuzz.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { withPlantedBug, type PlantedBug } from './planted-bug.ts';

const model: FuzzEngineSpec = {
  name: 'model',
  create: (s: Scenario, seed: number) => makeEngine('model', s, { seed }),
};
const buggy = (bug: PlantedBug): FuzzEngineSpec => ({
  name: 'buggy',
  create: async (s: Scenario, seed: number) => withPlantedBug(await makeEngine('model', s, { seed }), bug),
});

describe('confirmation re-runs', () => {
  it('a failure its re-runs do not meet again is reported unreproduced, saved, and the campaign goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-confirm-'));
    try {
      const bug = { armed: true, once: true };
      const rep = await runFuzz({
        engines: [model, buggy(bug)],
        seed: 7,
        runs: 40,
        saveDir: dir,
        shrinkTimeS: 2,
        confirmRuns: 3,
      });
      expect(bug.armed, 'the planted bug never fired').toBe(false);
      expect(rep.failure).toBeNull();
      expect(rep.runs).toBe(40);
      expect(rep.unreproduced).toHaveLength(1);
      const u = rep.unreproduced[0];
      expect(u.confirmation).toEqual({ runs: 3, failed: 0 });
      expect(u.differences.length).toBeGreaterThan(0);
      expect(u.savedTo).toMatch(/unreproduced-/);
      expect(existsSync(join(u.savedTo!, 'inputs.json'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a failure its re-runs meet again stops the campaign', async () => {
    const bug = { armed: true, once: false };
    const rep = await runFuzz({
      engines: [model, buggy(bug)],
      seed: 7,
      runs: 40,
      saveDir: null,
      shrinkTimeS: 5,
      confirmRuns: 3,
    });
    expect(rep.failure).not.toBeNull();
    expect(rep.failure!.confirmation).toEqual({ runs: 3, failed: 3 });
    expect(rep.unreproduced).toEqual([]);
    expect(rep.runs).toBeLessThan(40);
  }, 60_000);

  it('engines on a virtual clock are not re-run by default', async () => {
    const rep = await runFuzz({
      engines: [model, buggy({ armed: true, once: false })],
      seed: 7,
      runs: 40,
      saveDir: null,
      shrinkTimeS: 2,
    });
    expect(rep.failure).not.toBeNull();
    expect(rep.failure!.confirmation).toBeUndefined();
  }, 60_000);
});
