// Mutants are anchored to code that cannot silently vanish: every patch of scripts/mutants.ts
// applies exactly once to the current tree (fast tier; the mutant run itself is in .ci/run).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MUTANT_TREE, MUTANTS, mutantTargetProblem, prepareMutant } from '../../scripts/mutants.ts';

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

// CI's mutant run once failed on every mutant: src/core/worker-bundle.ts had started importing
// bin/bundle-cache.mjs and the mutants' copies held only src/ and scenarios/.
describe("a mutant's copy of the tree", () => {
  const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  /** Every file the core's engine module reaches through relative imports (what a mutant loads). */
  const reached = (entry: string): string[] => {
    const seen = new Set<string>([entry]);
    const queue = [entry];
    for (let i = 0; i < queue.length && i < 10_000; i++) {
      if (!existsSync(queue[i])) continue;
      for (const m of readFileSync(queue[i], 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(queue[i]), m[1]);
        if (!seen.has(target)) {
          seen.add(target);
          queue.push(target);
        }
      }
    }
    return [...seen];
  };

  it('holds every file the core reaches through relative imports', () => {
    const files = reached(join(ROOT, 'src', 'core', 'engine.ts')).map((f) => relative(ROOT, f));
    const outside = files.filter((f) => !(MUTANT_TREE as readonly string[]).includes(f.split(sep)[0]));
    expect(outside).toEqual([]);
    // the walk follows imports at all, and the one that leaves src/
    expect(files.length).toBeGreaterThan(20);
    expect(files).toContain(join('bin', 'bundle-cache.mjs'));
  });

  it('loads its core: a prepared mutant builds an engine from its own sources', async () => {
    const dir = join(ROOT, 'tmp', 'mutants-test', MUTANTS[0].id);
    prepareMutant(MUTANTS[0], dir);
    try {
      const mod = (await import(pathToFileURL(join(dir, 'src/core/worker-bundle.ts')).href)) as {
        WORKER_BOOT_URL: string;
      };
      expect(mod.WORKER_BOOT_URL).toContain('tmp/mutants-test');
      const core = (await import(pathToFileURL(join(dir, 'src/core/engine.ts')).href)) as Record<string, unknown>;
      expect(typeof core.createCoreEngine).toBe('function');
    } finally {
      rmSync(join(ROOT, 'tmp', 'mutants-test'), { recursive: true, force: true });
    }
  });
});
