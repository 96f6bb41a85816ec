// The core worker's code as one plain-JavaScript module: worker.ts and everything it imports,
// bundled by esbuild and cached in node_modules/.cache/natlab/ beside the sources (as the CLI's
// bundle, bin/cli-bundle.mjs) under a hash of the sources' contents
// (rebuilt, in ~0.1 s, whenever a source changes). A thread started on it boots in ~40 ms of CPU;
// through tsx (worker-boot.mjs: a loader-hooks thread per worker, every module resolved, read
// from tsx's cache and source-mapped one message at a time) it took ~300 ms of CPU and wall per
// fresh core engine (docs/core.md "Loading TypeScript in a worker"; docs/replay.md Round seven).
// Falls back to worker-boot.mjs when the bundle cannot be built or written.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync, version as esbuildVersion } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const ENTRY = join(HERE, 'worker.ts');
/** The project's own cache directory (the CLI's bundle lives there too). */
const CACHE_DIR = join(HERE, '..', '..', 'node_modules', '.cache', 'natlab');
/** Bumped when the build options below change (part of the bundle's hash). */
const BUILD_OPTIONS_VERSION = 2;
/** The tsx boot file: the fallback. */
export const WORKER_BOOT_URL = new URL('./worker-boot.mjs', import.meta.url).href;

/** The sources a bundle was built from (paths relative to the entry's directory) and its file name. */
interface Manifest {
  inputs: string[];
  bundle: string;
}

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

/** Hash of the inputs' contents (and of what builds them). Null when one cannot be read. */
function inputsHash(inputs: readonly string[]): string | null {
  const h = createHash('sha256');
  h.update(`${esbuildVersion}\0${process.version}\0${ENTRY}\0${BUILD_OPTIONS_VERSION}\0`);
  for (const rel of inputs) {
    try {
      h.update(rel)
        .update('\0')
        .update(readFileSync(resolve(HERE, rel)))
        .update('\0');
    } catch {
      return null;
    }
  }
  return h.digest('hex').slice(0, 24);
}

/** The path of a bundle built from the current sources, building it if needed. */
export function currentBundle(dir: string): string {
  const manifestPath = join(dir, `manifest-${createHash('sha256').update(ENTRY).digest('hex').slice(0, 16)}.json`);
  try {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    const hash = inputsHash(m.inputs);
    if (hash !== null && m.bundle === `worker-${hash}.mjs`) {
      const path = join(dir, m.bundle);
      if (statSync(path).isFile()) return path;
    }
  } catch {
    // no manifest yet, or stale: build
  }
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
  // (metafile paths are relative to the working directory)
  const rel = Object.keys(r.metafile.inputs).map((p) => relative(HERE, resolve(p)));
  const hash = inputsHash(rel);
  if (hash === null) throw new Error('core worker bundle: a source vanished while bundling');
  mkdirSync(dir, { recursive: true });
  const name = `worker-${hash}.mjs`;
  const path = join(dir, name);
  // Written under a temporary name and renamed: concurrent processes never see half a file.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, r.outputFiles[0].contents);
  renameSync(tmp, path);
  const mtmp = `${manifestPath}.${process.pid}.tmp`;
  writeFileSync(mtmp, JSON.stringify({ inputs: rel, bundle: name } satisfies Manifest));
  renameSync(mtmp, manifestPath);
  removeOldBundles(dir, name);
  return path;
}

/** Bundles of earlier sources, a day old (a process still running on one restarts threads from it). */
function removeOldBundles(dir: string, keep: string): void {
  const before = Date.now() - 24 * 3600 * 1000;
  for (const f of readdirSync(dir)) {
    if (f === keep || !/^worker-[0-9a-f]+\.mjs$/.test(f)) continue;
    try {
      if (statSync(join(dir, f)).mtimeMs < before) unlinkSync(join(dir, f));
    } catch {
      // another process removed it
    }
  }
}
