// A re-addressing plan: what a producer (replay of a one-sided capture) asks an engine to do to some
// frames of a FrameBatch before processing them, inside the same hand-over — so a far-side reply
// whose mapping is made by an earlier packet of the same batch needs no round trip (docs/replay.md
// "One-sided captures", docs/frame-batch.md "Re-addressing plans"). An addition beside the
// FrameBatch contract: engines that do not offer it (Engine.readdressPlans) never see one.
//
// Per packet i of the batch (SharedArrayBuffer-backed, the engine's workers read it in place):
//   mode[i]   PLAN_NONE, or PLAN_READDRESS: before processing packet i, re-address it in the batch
//             (in place) to the mapping given by the outbound packets chained from from[i]
//   from[i]   the latest earlier packet of i's flow whose output may carry the mapping, -1 none;
//             prev[j] the packet of the same flow before j (-1): the chain is walked from the
//             latest, and the first one delivered with a translated source at the internet
//             egress gives the mapping (its address and port/id)
//   fbAddr[i], fbPort[i]  the mapping to use when no packet of the chain gives one (fbPort -1:
//             leave the frame as it is)
//   flags[i]  PLAN_PARSED: the frame parses fully (every field re-addressed), else only the
//             captured fields (a frame cut by the snapshot length, ...)
//   how[i]    written by the engine: PLAN_HOW_CHAIN, PLAN_HOW_FALLBACK or PLAN_HOW_NONE
// The engine writes the frame (and how[]) of planned packets only; a planned frame is rewritten
// before any packet after it in the batch is processed.

export const PLAN_NONE = 0;
export const PLAN_READDRESS = 1;
export const PLAN_PARSED = 1;
export const PLAN_HOW_NONE = 0;
export const PLAN_HOW_CHAIN = 1;
export const PLAN_HOW_FALLBACK = 2;

export interface ReaddressPlan {
  readonly maxPackets: number;
  readonly mode: Uint8Array;
  readonly flags: Uint8Array;
  readonly from: Int32Array;
  readonly prev: Int32Array;
  readonly fbAddr: Int32Array;
  readonly fbPort: Int32Array;
  readonly how: Uint8Array;
}

/** A SharedArrayBuffer-backed plan for batches of at most maxPackets packets (every mode PLAN_NONE). */
export function createReaddressPlan(maxPackets: number): ReaddressPlan {
  const n = Math.max(1, maxPackets | 0);
  const sab = (bytes: number) => new SharedArrayBuffer(Math.max(8, bytes));
  return {
    maxPackets: n,
    mode: new Uint8Array(sab(n)),
    flags: new Uint8Array(sab(n)),
    from: new Int32Array(sab(n * 4)),
    prev: new Int32Array(sab(n * 4)),
    fbAddr: new Int32Array(sab(n * 4)),
    fbPort: new Int32Array(sab(n * 4)),
    how: new Uint8Array(sab(n)),
  };
}
