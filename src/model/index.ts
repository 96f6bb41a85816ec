// Public API of the reference model (docs/model.md).
export {
  createModelEngine,
  modelEngineDescriptor,
  ModelEngine,
  igwRewrite,
  MAX_INSTANCE_HOPS,
  type Hop,
  type ModelResult,
  type ModelEngineOptions,
} from './engine.ts';
export { formatFilterListing, formatNatTableListing } from './listing.ts';
export { TCP_STATE_NAMES } from './tcp-state.ts';
export {
  parsePacketSpec,
  ingressFor,
  naturalReply,
  tracePacket,
  type PacketSpec,
  type TracedPacket,
  type TraceHop,
} from './trace.ts';
export { MAX_HAIRPINS } from './engine.ts';
