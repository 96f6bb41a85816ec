// The `natlab` command's start-up without tsx: src/cli/main.ts and the project modules it imports
// (not the npm packages: they load from node_modules as usual) bundled by esbuild into one ESM
// file, cached in node_modules/.cache/natlab/ under a hash of the sources' contents and rebuilt
// (~0.2 s) when one changes. Each module's `import.meta.url` stays its source's URL, so paths
// relative to a module (scenarios/, corpora/, package.json, the core's worker) are as before.
// Through tsx every command first spent ~0.5 s wall and ~0.7 s of CPU loading its ~200 modules
// (a loader-hooks thread; each module resolved, read and source-mapped one message at a time);
// from the bundle ~0.1 s (docs/replay.md Round seven). NATLAB_TSX=1 runs the sources through tsx
// (stack traces with the sources' lines); so does any failure to build or write the bundle.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = join(ROOT, 'src', 'cli', 'main.ts');
/** Bumped when the build options below change (part of the bundle's hash). */
const BUILD_OPTIONS_VERSION = 1;

/** The CLI's `main`, from the bundle; null when it cannot be built or loaded (then: tsx). */
export async function bundledMain() {
  if (process.env.NATLAB_TSX === '1') return null;
  let path;
  try {
    path = await currentBundle(join(ROOT, 'node_modules', '.cache', 'natlab'));
  } catch {
    return null;
  }
  const mod = await import(pathToFileURL(path).href);
  return mod.main;
}

function inputsHash(esbuildVersion, inputs) {
  const h = createHash('sha256');
  h.update(`${esbuildVersion}\0${process.version}\0${ENTRY}\0${BUILD_OPTIONS_VERSION}\0`);
  for (const rel of inputs) {
    try {
      h.update(rel)
        .update('\0')
        .update(readFileSync(resolve(ROOT, rel)))
        .update('\0');
    } catch {
      return null;
    }
  }
  return h.digest('hex').slice(0, 24);
}

async function currentBundle(dir) {
  const manifestPath = join(dir, `cli-manifest-${createHash('sha256').update(ENTRY).digest('hex').slice(0, 16)}.json`);
  try {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const hash = inputsHash(m.esbuild, m.inputs);
    if (hash !== null && m.bundle === `cli-${hash}.mjs`) {
      const path = join(dir, m.bundle);
      if (statSync(path).isFile()) return path;
    }
  } catch {
    // no manifest yet, or stale: build
  }
  const esbuild = await import('esbuild');
  const keepImportMetaUrl = {
    name: 'keep-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => ({
        contents: readFileSync(args.path, 'utf8').replace(
          /\bimport\.meta\.url\b/g,
          JSON.stringify(pathToFileURL(args.path).href),
        ),
        loader: 'ts',
      }));
    },
  };
  const r = await esbuild.build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node}`,
    packages: 'external',
    // As tsx compiles (functions and classes keep their names: no renaming of clashing ones).
    keepNames: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [keepImportMetaUrl],
  });
  // (metafile paths are relative to the working directory)
  const rel = Object.keys(r.metafile.inputs).map((p) => relative(ROOT, resolve(p)));
  const hash = inputsHash(esbuild.version, rel);
  if (hash === null) throw new Error('natlab: a source vanished while bundling');
  mkdirSync(dir, { recursive: true });
  const name = `cli-${hash}.mjs`;
  const path = join(dir, name);
  // Written under a temporary name and renamed: concurrent processes never see half a file.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, r.outputFiles[0].contents);
  renameSync(tmp, path);
  const mtmp = `${manifestPath}.${process.pid}.tmp`;
  writeFileSync(mtmp, JSON.stringify({ inputs: rel, bundle: name, esbuild: esbuild.version }));
  renameSync(mtmp, manifestPath);
  return path;
}
