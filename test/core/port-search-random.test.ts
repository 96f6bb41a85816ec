// The core's port-search generator is the model's (src/spec/prng.ts): worker 0 of a core seeded
// like the model draws the same sequence, so one-worker port choices — and whether a random search
// of a nearly full range finds a free port — are the model's. Regression: fresh fuzz seed 153118591
// run 3918 (corpora/regressions/20261204-fate-5bbd65a9), where the core's own xorshift generator
// found a free port the model's search did not.
import { describe, expect, it } from 'vitest';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { createCoreShared } from '../../src/core/layout.ts';
import { Tables } from '../../src/core/tables.ts';
import { Prng } from '../../src/model/prng.ts';

describe('core port-search generator', () => {
  for (const seed of [1, 9, 153118591, 0x7fffffff]) {
    it(`worker 0 draws the model's sequence (seed ${seed}); worker 1 another`, () => {
      const shared = createCoreShared(loadOpenScenario(), { workers: 2, seed });
      const w0 = new Tables(shared, 0);
      const w1 = new Tables(shared, 1);
      const model = new Prng(seed);
      const a: number[] = [];
      const b: number[] = [];
      const m: number[] = [];
      for (let i = 0; i < 1000; i++) {
        a.push(w0.rand());
        b.push(w1.rand());
        m.push(model.next());
      }
      expect(a).toEqual(m);
      expect(b).not.toEqual(m);
      expect(new Set(a).size).toBeGreaterThan(990);
    });
  }
});
