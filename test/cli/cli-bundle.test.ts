// The `natlab` command starts from a bundle of the CLI's modules (bin/cli-bundle.mjs), cached in
// node_modules/.cache/natlab/: paths relative to a module (package.json, scenarios/) are those of
// its source, and the output is the one of the sources run through tsx (NATLAB_TSX=1).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'natlab.mjs');
const CACHE = join(ROOT, 'node_modules', '.cache', 'natlab');

function natlab(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
}

describe('natlab from the bundled CLI', () => {
  it('reads package.json and scenarios/ relative to the sources, as through tsx', () => {
    for (const args of [['--version'], ['scenario', 'show', 'vpc-nat-instance']]) {
      const b = natlab(args);
      const t = natlab(args, { NATLAB_TSX: '1' });
      expect(b.status).toBe(0);
      expect(t.status).toBe(0);
      expect(b.stdout).toBe(t.stdout);
      expect(b.stdout.length).toBeGreaterThan(0);
    }
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(natlab(['--version']).stdout).toContain(`natlab ${version} `);
  });

  it('is built into the cache and listed with the sources it was built from', () => {
    expect(natlab(['--version']).status).toBe(0);
    const manifests = readdirSync(CACHE).filter((f) => f.startsWith('cli-manifest-'));
    expect(manifests.length).toBeGreaterThan(0);
    const ours = manifests
      .map((f) => JSON.parse(readFileSync(join(CACHE, f), 'utf8')) as { inputs: string[]; bundle: string })
      .filter((m) => m.inputs.includes('src/cli/main.ts'));
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.some((m) => readdirSync(CACHE).includes(m.bundle))).toBe(true);
  });
});
