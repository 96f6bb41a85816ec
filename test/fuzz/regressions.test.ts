// Every saved counterexample in corpora/regressions/ is replayed on every run: the reference
// engine (model) must still produce exactly its saved outputs, and every other engine must agree
// with it (the same comparison the fuzzer made when it saved the case).
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineAvailable, makeEngine, type EngineName } from '../../src/diff/engines.ts';
import { listRegressions, loadRegression, replayRegression, REGRESSIONS_DIR } from '../../src/diff/fuzz/regressions.ts';
import { runFuzz } from '../../src/diff/fuzz/fuzz.ts';

const dirs = listRegressions(REGRESSIONS_DIR);
const hasCore = await engineAvailable('core');

async function replayWith(dir: string, names: EngineName[]) {
  const reg = loadRegression(dir);
  const engines = [];
  for (const n of names)
    engines.push({
      name: n,
      engine: await makeEngine(n, reg.scenario, { seed: reg.meta.engineSeed, workers: n === 'core' ? 1 : undefined }),
    });
  return { reg, out: await replayRegression(reg, engines) };
}

describe('saved regressions', () => {
  it('the corpus exists and holds at least one case', () => {
    expect(existsSync(REGRESSIONS_DIR)).toBe(true);
    expect(dirs.length).toBeGreaterThan(0);
  });

  for (const dir of dirs) {
    it.runIf(hasCore)(
      `${dir}: model reproduces its saved outputs and core agrees`,
      async () => {
        const { out } = await replayWith(dir, ['model', 'core']);
        expect(out.mismatches.get('model') ?? [], 'model no longer produces its saved outputs').toEqual([]);
        expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
      },
      60_000,
    );
  }

  it('a pinned run saved by the fuzzer replays identically (model vs model)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-pin-'));
    try {
      const model = {
        name: 'model',
        create: (s: Parameters<typeof makeEngine>[1], seed: number) => makeEngine('model', s, { seed }),
      };
      const rep = await runFuzz({
        engines: [model, { ...model, name: 'model' }],
        seed: 3,
        onlyRun: 2,
        pin: true,
        saveDir: dir,
      });
      expect(rep.failure).toBeNull();
      expect(rep.pinned).toBeTruthy();
      const { reg, out } = await replayWith(rep.pinned!, ['model']);
      expect(reg.events.length).toBeGreaterThan(0);
      expect(out.mismatches.get('model')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
