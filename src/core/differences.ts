// The core's one documented difference from the model (docs/core.md "Dataplane: shared memory",
// table-full accounting): with W > 1 workers each worker owns a quota of every NAT instance's
// nf_conntrack_max (floor(max / W), the first max % W workers one more) and early-drops only its
// own entries, so a worker whose flows outnumber its quota decides otherwise than the model's one
// table of `max` would: it drops a new flow the model still has room for (a quota of 0 when
// max < W: every new flow of that worker), or early-drops its own oldest unassured entry where the
// model has room or drops another worker's older one. From that decision on the NAT instance's
// table legitimately differs from the model's, and so may every later packet through it (its
// conntrack state, its fate, the ports a search picks) and the end-of-run table.
//
// Recognised precisely: the workers record, per NAT instance, where one first reached its quota
// below the max and had to early-drop or refuse (Tables.noteQuotaDecision, made a packet number by
// the engine). A difference is of this class only if
//  - W > 1 and the quota is the scenario's max split (no --capacity cap);
//  - it is about a NAT instance with such a decision at or before the packet: a packet difference
//    of a packet whose first NAT instance on the way (the dispatch rule's, src/core/dispatch.ts) is
//    that instance, or end-of-run conntrack lines or nat rule counters of that instance.
// Anything else — a difference on an instance whose workers never hit their quota, a packet before
// the first decision, a packet crossing no NAT instance, an invariant — stays a failure.

import type { DifferenceClass, DifferenceFacts } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import { eipIndex } from './compile.ts';
import { firstNatSlot } from './dispatch.ts';
import type { CoreShared } from './layout.ts';

/** Class id of the per-worker conntrack quota difference (docs/core.md). */
export const CLASS_CORE_CT_QUOTA = 'core-ct-quota';

const TABLE_LINE = /^conntrack \(instance (\d+)\)(?:: only (\S+) has )?/;
const COUNTER_LINE = /^nat counters instance (\d+) /;

/** NAT slot of the first NAT instance a frame entering at `ingress` reaches, or -1. */
function packetSlot(shared: CoreShared, frame: Uint8Array, ingress: number): number {
  if (frame.length < 20 || frame[0] >>> 4 !== 4) return -1;
  const dst = ((frame[16] << 24) | (frame[17] << 16) | (frame[18] << 8) | frame[19]) >>> 0;
  const c = shared.compiled;
  if (ingress === 0 && eipIndex(c, dst) < 0) return -1;
  return firstNatSlot(c, ingress, dst);
}

/**
 * Classifies a difference between the core (named `coreName` in the session) and another engine
 * as the per-worker quota's, given `quotaFrom` (per NAT slot: the number of the packet of the
 * first quota-limited decision, Infinity = none); null when it is not.
 */
export function classifyQuotaDifference(
  facts: DifferenceFacts,
  coreName: string,
  scenario: Scenario,
  shared: CoreShared,
  quotaFrom: Float64Array,
): DifferenceClass | null {
  if (shared.workers <= 1 || facts.differences.length === 0) return null;
  if (facts.engines[0] === facts.engines[1]) return null;
  // The session may name this engine otherwise (the mutant runner's 'core-mutant'): the pair's
  // other engine is the one that is not named coreName, or the second when neither is.
  const me = facts.engines[0] === coreName ? 0 : 1;
  const max = scenario.conntrack.max;
  if (shared.compiled.ctMax !== max) return null; // a --capacity cap, not the split
  const why = (slot: number): string => {
    const inst = shared.compiled.instNat.indexOf(slot);
    const name = scenario.instances[inst]?.name ?? `NAT slot ${slot}`;
    return `per-worker conntrack quota (docs/core.md): a worker reached its quota of ${name}'s max ${max} (split over ${shared.workers} workers) at packet #${quotaFrom[slot]}; ${name}'s table differs from one table of ${max} since`;
  };
  if (facts.index >= 0) {
    if (facts.differences.some((d) => d.kind === 'invariant' || d.kind === 'conntrack')) return null;
    const input = facts.inputs?.[me];
    if (!input) return null;
    const slot = packetSlot(shared, input.frame, input.ingress);
    if (slot < 0 || slot >= quotaFrom.length || !(quotaFrom[slot] <= facts.index)) return null;
    return { id: CLASS_CORE_CT_QUOTA, why: why(slot) };
  }
  const slots = new Set<number>();
  for (const d of facts.differences) {
    // The instance's conntrack lines, and its nat counters: a flow the quota refused never reached
    // the nat table (the model counts its rule and policy matches).
    const m =
      d.kind === 'conntrack' ? TABLE_LINE.exec(d.message) : d.kind === 'counters' ? COUNTER_LINE.exec(d.message) : null;
    if (!m) return null;
    if (m[2] !== undefined && !facts.engines.includes(m[2])) return null;
    const inst = Number(m[1]);
    if (inst < 0 || inst >= shared.compiled.nInst) return null;
    const slot = shared.compiled.instNat[inst];
    if (slot < 0 || slot >= quotaFrom.length || quotaFrom[slot] === Infinity) return null;
    slots.add(slot);
  }
  return { id: CLASS_CORE_CT_QUOTA, why: [...slots].map(why).join('; ') };
}
