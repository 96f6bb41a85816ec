// The core worker's bundle (src/core/worker-bundle.ts): built from the sources, reused while they
// are unchanged, rebuilt when one changes; the pool starts its threads on it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { currentBundle, workerFileUrl, WORKER_BOOT_URL } from '../../src/core/worker-bundle.ts';

const dir = mkdtempSync(join(tmpdir(), 'natlab-bundle-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('core worker bundle', () => {
  it('is built once from the sources and reused while they are unchanged', async () => {
    const a = currentBundle(dir);
    const t = statSync(a).mtimeMs;
    const b = currentBundle(dir);
    expect(b).toBe(a);
    expect(statSync(b).mtimeMs).toBe(t);
    const manifest = JSON.parse(
      readFileSync(
        readdirSync(dir)
          .filter((f) => f.startsWith('worker-manifest-'))
          .map((f) => join(dir, f))[0],
        'utf8',
      ),
    );
    expect(manifest.inputs).toContain('worker.ts');
    expect(manifest.inputs).toContain('dataplane.ts');
    // plain JavaScript with the worker's entry as its default export
    const mod = (await import(pathToFileURL(a).href)) as { default: unknown };
    expect(typeof mod.default).toBe('function');
  });

  it('is rebuilt when a source it was built from changes', () => {
    const a = currentBundle(dir);
    const mf = readdirSync(dir)
      .filter((f) => f.startsWith('worker-manifest-'))
      .map((f) => join(dir, f))[0];
    const m = JSON.parse(readFileSync(mf, 'utf8')) as { inputs: string[]; bundle: string };
    // One more "source" (a file of the test's), listed as if the bundle had been built from it.
    const extra = join(dir, 'extra.ts');
    writeFileSync(extra, 'export const x = 1;\n');
    const here = fileURLToPath(new URL('../../src/core/', import.meta.url));
    writeFileSync(mf, JSON.stringify({ inputs: [...m.inputs, relative(here, extra)], bundle: m.bundle }));
    const b = currentBundle(dir);
    expect(b).toBe(a); // same sources in the end: the same content hash
    const after = JSON.parse(readFileSync(mf, 'utf8')) as { inputs: string[] };
    expect(after.inputs).not.toContain(relative(here, extra)); // rebuilt: the manifest is the build's
  });

  it('is what the pool starts its threads on (the tsx boot only as a fallback)', () => {
    const url = workerFileUrl();
    expect(url).not.toBe(WORKER_BOOT_URL);
    expect(url).toMatch(/\/worker-[0-9a-f]+\.mjs$/);
    // In the project's own cache, not the shared temp directory (code there could be planted by
    // another user and run by ours).
    const root = fileURLToPath(new URL('../../', import.meta.url));
    expect(fileURLToPath(url).startsWith(join(root, 'node_modules', '.cache', 'natlab'))).toBe(true);
  });
});
