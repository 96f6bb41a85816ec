// Mutants are anchored to code that cannot silently vanish: every patch of scripts/mutants.ts
// applies exactly once to the current tree (fast tier; the mutant run itself is in .ci/run).
import { describe, expect, it } from 'vitest';
import { MUTANTS, mutantTargetProblem } from '../../scripts/mutants.ts';

describe('mutant patch targets', () => {
  it('are unique ids with a file, a target and a different replacement', () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(9);
    expect(new Set(MUTANTS.map((m) => m.id)).size).toBe(MUTANTS.length);
    for (const m of MUTANTS) {
      expect(m.find.length, m.id).toBeGreaterThan(10);
      expect(m.replace, m.id).not.toBe(m.find);
    }
  });

  it.each(MUTANTS.map((m) => [m.id, m] as const))('%s: its patch target is present exactly once', (_id, m) => {
    expect(mutantTargetProblem(m)).toBeNull();
  });

  it('a moved target is reported, not skipped', () => {
    const m = { ...MUTANTS[0], find: 'this text is in no source file 7f3a' };
    expect(mutantTargetProblem(m)).toMatch(/patch target not found/);
    expect(mutantTargetProblem({ ...MUTANTS[0], file: 'src/core/gone.ts' })).toMatch(/does not exist any more/);
  });
});
