// The `natlab` command's start-up without tsx: src/cli/main.ts and the project modules it imports
// (not the npm packages: they load from node_modules as usual) bundled by esbuild into one ESM
// file, cached in node_modules/.cache/natlab/ under a hash of the sources' contents and rebuilt
// (~0.2 s) when one changes. Each module's `import.meta.url` stays its source's URL, so paths
// relative to a module (scenarios/, corpora/, package.json, the core's worker) are as before.
// Through tsx every command first spent ~0.5 s wall and ~0.7 s of CPU loading its ~200 modules
// (a loader-hooks thread; each module resolved, read and source-mapped one message at a time);
// from the bundle ~0.1 s (docs/replay.md Round seven). NATLAB_TSX=1 runs the sources through tsx
// (stack traces with the sources' lines); so does any failure to build or write the bundle.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cachedBundle, storeBundle } from './bundle-cache.mjs';

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

async function currentBundle(dir) {
  const spec = { dir, entry: ENTRY, root: ROOT, prefix: 'cli', optionsVersion: BUILD_OPTIONS_VERSION };
  const cached = cachedBundle(spec);
  if (cached !== null) return cached;
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
  return storeBundle(spec, esbuild.version, r);
}
