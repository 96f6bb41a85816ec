// The core's explicit benchmark API: the internals `bench/` drives directly (the dataplane on the
// calling thread, the worker pool and its ring, the shared-memory layout) to measure the hot path
// without the Engine adapter. Benchmarks import core through this file and core/engine.ts only
// (checked by `npm run depcheck`), so what they depend on is listed in one place.
export { dispatchWorker } from './dispatch.ts';
export {
  type CoreBatch,
  type CoreLayout,
  type CoreShared,
  CORE_LAYOUTS,
  DEFAULT_LAYOUT,
  createCoreBatch,
  createCoreShared,
  sharedBytesPerSession,
  sharedBytesTotal,
  KIND_ORIG,
  SESSION_WORDS,
  S_META,
  S_OSRC,
  M_SLOT_SHIFT,
  M_SLOT_MASK,
  M_PROTO_MASK,
  C_USED,
} from './layout.ts';
export { Dataplane } from './dataplane.ts';
export { CorePool } from './pool.ts';
export { OP_ADVANCE, OP_PROCESS, RING_SLOTS, isComplete } from './ring.ts';
export { readSessionCounts } from './ct-dump.ts';
