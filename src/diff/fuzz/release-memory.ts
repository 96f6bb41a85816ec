// Shared memory of closed engines, given back between fuzz runs. Each run's core allocates its
// tables in SharedArrayBuffers sized by the scenario's nf_conntrack_max (40-115 MB for the
// fuzzer's default 262,144: docs/core.md "Dataplane: shared memory"), held by views in long-lived engine objects
// that reach V8's old space; the small JS heap rarely needs a major GC, so at ~10 runs/s the
// dead buffers piled up (campaigns reached 10 GB and met the OOM killer on the shared machine).
// After a run, when ArrayBuffer memory passes RELEASE_AT_BYTES, a full GC frees them.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** ArrayBuffer + SharedArrayBuffer bytes above which a run's end forces a full GC. */
export const RELEASE_AT_BYTES = 768 * 1024 * 1024;

let gcFn: (() => void) | null | undefined;

function gcFunction(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') gcFn = g;
  else {
    try {
      // Node's documented way to reach gc() without the command-line flag.
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  return gcFn;
}

/** Forces a full GC when dead engines' buffers have piled up (call between runs; cheap otherwise). */
export function releaseEngineMemory(): void {
  if (process.memoryUsage().arrayBuffers < RELEASE_AT_BYTES) return;
  gcFunction()?.();
}
