// A planted bug must be found, shrunk, saved as a replayable counterexample; replaying the saved
// directory reproduces the difference with the buggy engine and passes with a correct one.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFuzz, type FuzzEngineSpec } from '../../src/diff/fuzz/fuzz.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import { loadRegression, replayRegression } from '../../src/diff/fuzz/regressions.ts';
import { openCapture } from '../../src/pcap/index.ts';
import type { Engine } from '../../src/spec/engine.ts';
import { withPlantedBug } from './planted-bug.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

const buggy = (inner: Engine): Engine => withPlantedBug(inner);

const model: FuzzEngineSpec = {
  name: 'model',
  create: (s: Scenario, seed: number) => makeEngine('model', s, { seed }),
};
const planted: FuzzEngineSpec = {
  name: 'buggy',
  create: async (s: Scenario, seed: number) => buggy(await makeEngine('model', s, { seed })),
};

describe('planted failure', () => {
  it('is found, shrunk, saved and replays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-planted-'));
    try {
      const rep = await runFuzz({ engines: [model, planted], seed: 7, runs: 200, saveDir: dir, shrinkTimeS: 20 });
      expect(rep.failure, 'the planted bug was not found').not.toBeNull();
      const f = rep.failure!;
      expect(f.differences.length).toBeGreaterThan(0);
      // Shrunk to the essence: a handful of commands, at least one UDP datagram.
      expect(f.commands.length).toBeLessThanOrEqual(3);
      expect(f.commands.join('\n')).toMatch(/udp/);
      expect(f.savedTo).toBeTruthy();
      const saved = f.savedTo!;
      for (const p of [
        'scenario.yaml',
        'input.pcap',
        'inputs.json',
        'README.md',
        'differences.txt',
        'expected/model/results.json',
        'expected/buggy/results.json',
      ]) {
        expect(existsSync(join(saved, p)), p).toBe(true);
      }
      expect(existsSync(join(saved, 'expected/model/internet.pcap'))).toBe(true);
      expect(readFileSync(join(saved, 'README.md'), 'utf8')).toContain(`natlab fuzz --replay ${saved}`);
      // The input pcap is raw IPv4 and holds every input packet.
      const reg = loadRegression(saved);
      const cap = await openCapture(join(saved, 'input.pcap'));
      let n = 0;
      for await (const _r of cap) n++;
      expect(n).toBe(reg.events.filter((e) => e.kind === 'packet').length);
      // Replaying with the buggy engine reproduces the difference...
      const sc = reg.scenario;
      const again = await replayRegression(reg, [
        { name: 'model', engine: await makeEngine('model', sc, { seed: reg.meta.engineSeed }) },
        { name: 'buggy', engine: buggy(await makeEngine('model', sc, { seed: reg.meta.engineSeed })) },
      ]);
      expect(again.differences.map((d) => d.kind)).toEqual(f.differences.map((d) => d.kind));
      expect([...again.mismatches.values()].flat()).toEqual([]);
      // ...and a correct engine passes it.
      const fixed = await replayRegression(reg, [
        { name: 'model', engine: await makeEngine('model', sc, { seed: reg.meta.engineSeed }) },
        { name: 'buggy', engine: await makeEngine('model', sc, { seed: reg.meta.engineSeed }) },
      ]);
      expect(fixed.differences).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('model against itself with another seed finds nothing (renaming absorbs random port choices)', async () => {
    const other: FuzzEngineSpec = {
      name: 'model-seed2',
      create: (s: Scenario, seed: number) => makeEngine('model', s, { seed: seed ^ 0x5a5a5a }),
    };
    const rep = await runFuzz({ engines: [model, other], seed: 11, runs: 60, saveDir: null, shrinkTimeS: 5 });
    expect(rep.failure?.differences.map((d) => d.message) ?? []).toEqual([]);
    expect(rep.packets).toBeGreaterThan(500);
  }, 60_000);
});
