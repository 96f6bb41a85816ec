// The core's one documented difference from the model (docs/core.md "Dataplane: shared memory",
// table-full accounting): with W > 1 workers each worker owns a quota of every NAT instance's
// nf_conntrack_max (floor(max / W), the first max % W workers one more) and early-drops only its
// own entries, so a worker whose flows outnumber its quota keeps fewer entries than the model's
// one table of `max`. Recognised precisely: an end-of-run table difference is of this class only
// if every line of it is an entry the model has and the core lacks, of TCP or UDP, whose owning
// worker (by the dispatch rule, src/core/dispatch.ts) holds exactly its quota of live entries of
// that NAT instance — and that quota is below the scenario's max. Anything else stays a failure.

import type { DifferenceClass, DifferenceFacts } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import { PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { parseIpv4Addr } from '../packet/index.ts';
import { instanceByPrivate } from './compile.ts';
import { firstNatSlot, ownerInbound, ownerOutbound } from './dispatch.ts';
import type { CoreShared } from './layout.ts';

/** Class id of the per-worker conntrack quota difference (docs/core.md). */
export const CLASS_CORE_CT_QUOTA = 'core-ct-quota';

const LINE =
  /^conntrack \(instance (\d+)\): only (\S+) has \S+\s+(\d+) \d+ (?:[A-Z_]+ )?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) /;
const RENAMED = /\(renamed: \S+\s+\d+ \d+ (?:[A-Z_]+ )?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) /;

/** The worker the core dispatches the entry's original direction to, or -1 if not determinable. */
function ownerOf(
  shared: CoreShared,
  slot: number,
  proto: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
): number {
  const c = shared.compiled;
  const W = shared.workers;
  const inVpc = ((src ^ c.vpcAddr) & c.vpcMask) === 0;
  if (!inVpc) {
    // From the internet: the IGW has already replaced the EIP by the instance's private address.
    const t = instanceByPrivate(c, dst);
    if (t < 0 || c.instNat[t] !== slot) return -1;
    return ownerInbound(c, W, slot, proto, src, dst, sport, dport);
  }
  const from = instanceByPrivate(c, src);
  if (from < 0 || firstNatSlot(c, from + 1, dst) !== slot) return -1;
  return ownerOutbound(c, W, slot, proto, src, dst, sport, dport);
}

/**
 * Classifies an end-of-run conntrack difference between the core (its own name `coreName`) and another engine
 * as the per-worker quota limit, reading the core's live entries per worker at `atMs`; null when
 * any line of it is not explained by a worker at its quota.
 */
export function classifyQuotaDifference(
  facts: DifferenceFacts,
  coreName: string,
  scenario: Scenario,
  shared: CoreShared,
  liveCounts: () => Int32Array,
): DifferenceClass | null {
  if (facts.index !== -1 || shared.workers <= 1 || facts.differences.length === 0) return null;
  // The session may name this engine otherwise (the mutant runner's 'core-mutant'): the lines name
  // the engine that has the entries, which must be the pair's other engine, never the core itself.
  if (facts.engines[0] === facts.engines[1]) return null;
  const other = /: only (\S+) has /.exec(facts.differences[0].message)?.[1];
  if (other === undefined || other === coreName || !facts.engines.includes(other)) return null;
  const max = scenario.conntrack.max;
  if (shared.compiled.ctMax !== max) return null; // a --capacity cap, not the split
  let counts: Int32Array | null = null;
  const nNat = Math.max(1, shared.compiled.natCount);
  const full = new Set<string>();
  for (const d of facts.differences) {
    if (d.kind !== 'conntrack') return null;
    const m = LINE.exec(d.message);
    if (!m || m[2] !== other) return null;
    const proto = Number(m[3]);
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return null;
    const inst = Number(m[1]);
    if (inst < 0 || inst >= shared.compiled.nInst) return null;
    const slot = shared.compiled.instNat[inst];
    if (slot < 0) return null;
    const r = RENAMED.exec(d.message);
    const t = r ? r.slice(1) : m.slice(4, 8);
    const w = ownerOf(
      shared,
      slot,
      proto,
      parseIpv4Addr(t[0]) >>> 0,
      parseIpv4Addr(t[1]) >>> 0,
      Number(t[2]),
      Number(t[3]),
    );
    if (w < 0) return null;
    const quota = shared.quota[w];
    if (quota >= max) return null;
    counts ??= liveCounts();
    if (counts[w * nNat + slot] !== quota) return null;
    full.add(`worker ${w} holds its quota ${quota} of instance ${inst}'s max ${max}`);
  }
  return {
    id: CLASS_CORE_CT_QUOTA,
    why: `per-worker conntrack quota (docs/core.md): ${[...full].join('; ')}`,
  };
}
