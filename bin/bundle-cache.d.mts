// Types of bin/bundle-cache.mjs (plain JavaScript, read by the CLI's start-up before TypeScript can load).

/** What one cached bundle is. */
export interface BundleSpec {
  /** The cache directory. */
  dir: string;
  /** The TypeScript entry point (absolute). */
  entry: string;
  /** The directory the manifest's input paths are relative to. */
  root: string;
  /** File-name prefix of the bundle and its manifest ('cli', 'worker'). */
  prefix: string;
  /** Bumped when the build options change (part of the hash). */
  optionsVersion: number;
}

/** The cached bundle's path when it was built from the sources as they are now, else null. */
export function cachedBundle(spec: BundleSpec): string | null;

/** Stores a build (esbuild's result with `write: false`, `metafile: true`); returns the bundle's path. */
export function storeBundle(
  spec: BundleSpec,
  esbuildVersion: string,
  result: { metafile: { inputs: Record<string, unknown> }; outputFiles: ReadonlyArray<{ contents: Uint8Array }> },
): string;
