// The core worker's code as one plain-JavaScript module: worker.ts and everything it imports,
// bundled by esbuild and cached in node_modules/.cache/natlab/ beside the sources under a hash of
// the sources' contents (bin/bundle-cache.mjs, the store the CLI's bundle uses too)
// (rebuilt, in ~0.1 s, whenever a source changes). A thread started on it boots in ~40 ms of CPU;
// through tsx (worker-boot.mjs: a loader-hooks thread per worker, every module resolved, read
// from tsx's cache and source-mapped one message at a time) it took ~300 ms of CPU and wall per
// fresh core engine (docs/core.md "Loading TypeScript in a worker"; docs/replay.md Round seven).
// Falls back to worker-boot.mjs when the bundle cannot be built or written.

import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync, version as esbuildVersion } from 'esbuild';
import { cachedBundle, storeBundle } from '../../bin/bundle-cache.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ENTRY = join(HERE, 'worker.ts');
/** The project's own cache directory (the CLI's bundle lives there too). */
const CACHE_DIR = join(HERE, '..', '..', 'node_modules', '.cache', 'natlab');
/** Bumped when the build options below change (part of the bundle's hash). */
const BUILD_OPTIONS_VERSION = 2;
/** The tsx boot file: the fallback. */
export const WORKER_BOOT_URL = new URL('./worker-boot.mjs', import.meta.url).href;

let chosen: string | null = null;

/**
 * The file URL piscina starts core workers on: the cached bundle (built now if missing or
 * stale), else worker-boot.mjs. Checked once per process (the sources do not change under a run).
 */
export function workerFileUrl(): string {
  if (chosen === null) {
    try {
      // Not the shared temp directory: code cached there could be planted by another user and
      // then run by ours (natlab runs as root for the kernel engine).
      chosen = pathToFileURL(currentBundle(CACHE_DIR)).href;
    } catch {
      chosen = WORKER_BOOT_URL;
    }
  }
  return chosen;
}

/** The path of a bundle built from the current sources, building it if needed. */
export function currentBundle(dir: string): string {
  const spec = { dir, entry: ENTRY, root: HERE, prefix: 'worker', optionsVersion: BUILD_OPTIONS_VERSION };
  const cached = cachedBundle(spec);
  if (cached !== null) return cached;
  const r = buildSync({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    write: false,
    metafile: true,
    // As tsx compiles (functions and classes keep their names: no renaming of clashing ones).
    keepNames: true,
    logLevel: 'silent',
  });
  return storeBundle(spec, esbuildVersion, r);
}
