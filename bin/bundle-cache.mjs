// The store both start-up bundles share — the CLI's (bin/cli-bundle.mjs) and the core worker's
// (src/core/worker-bundle.ts): a TypeScript entry point bundled by esbuild, cached in a directory
// of the project's own (node_modules/.cache/natlab/: never the shared temp directory, where
// another user could plant code that natlab, run as root for the kernel engine, would start) under
// a hash of its sources' contents, so it is rebuilt whenever one of them changes. Plain
// JavaScript: the CLI's start-up reads it before anything can load TypeScript.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** Old bundles go after a day (a process still running on one may start threads from it). */
const OLD_BUNDLE_MS = 24 * 3600 * 1000;

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

function manifestPath(spec) {
  return join(spec.dir, `${spec.prefix}-manifest-${sha256(spec.entry).slice(0, 16)}.json`);
}

/** Hash of the inputs' contents and of what builds them; null when one cannot be read. */
function inputsHash(spec, esbuildVersion, inputs) {
  const h = createHash('sha256');
  h.update(`${esbuildVersion}\0${process.version}\0${spec.entry}\0${spec.optionsVersion}\0`);
  for (const rel of inputs) {
    try {
      h.update(rel)
        .update('\0')
        .update(readFileSync(resolve(spec.root, rel)))
        .update('\0');
    } catch {
      return null;
    }
  }
  return h.digest('hex').slice(0, 24);
}

/** The cached bundle's path when it was built from the sources as they are now, else null. */
export function cachedBundle(spec) {
  try {
    const m = JSON.parse(readFileSync(manifestPath(spec), 'utf8'));
    const hash = inputsHash(spec, m.esbuild, m.inputs);
    if (hash !== null && m.bundle === `${spec.prefix}-${hash}.mjs`) {
      const path = join(spec.dir, m.bundle);
      if (statSync(path).isFile()) return path;
    }
  } catch {
    // no manifest yet, or stale: the caller builds
  }
  return null;
}

/**
 * Stores a build (esbuild's result, with `write: false` and `metafile: true`) under the hash of the
 * sources its metafile lists, with the manifest that finds it again; returns the bundle's path.
 */
export function storeBundle(spec, esbuildVersion, result) {
  // (metafile paths are relative to the working directory)
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(spec.root, resolve(p)));
  const hash = inputsHash(spec, esbuildVersion, inputs);
  if (hash === null) throw new Error(`natlab: a source of ${spec.entry} vanished while bundling`);
  mkdirSync(spec.dir, { recursive: true });
  const name = `${spec.prefix}-${hash}.mjs`;
  const path = join(spec.dir, name);
  // Written under a temporary name and renamed: concurrent processes never see half a file.
  writeAtomically(path, result.outputFiles[0].contents);
  writeAtomically(manifestPath(spec), JSON.stringify({ inputs, bundle: name, esbuild: esbuildVersion }));
  removeOldBundles(spec, name);
  return path;
}

function writeAtomically(path, contents) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

function removeOldBundles(spec, keep) {
  const before = Date.now() - OLD_BUNDLE_MS;
  const own = new RegExp(`^${spec.prefix}-[0-9a-f]+\\.mjs$`);
  for (const f of readdirSync(spec.dir)) {
    if (f === keep || !own.test(f)) continue;
    try {
      if (statSync(join(spec.dir, f)).mtimeMs < before) unlinkSync(join(spec.dir, f));
    } catch {
      // another process removed it
    }
  }
}
