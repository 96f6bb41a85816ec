// The core's documented differences from the model with W > 1 workers (docs/core.md "Table-full
// accounting" and "Dataplane: dispatch"). Each worker owns part of every NAT instance, so where
// that part runs out a worker decides otherwise than one table / one search over everything would:
//
// - 'core-ct-quota': each worker owns a quota of every NAT instance's nf_conntrack_max
//   (floor(max / W), the first max % W workers one more) and early-drops only its own entries. A
//   worker at its quota (below the max) refuses a new flow the model still has room for (with
//   max < W a quota is 0: every new flow of that worker), or early-drops its own oldest unassured
//   entry where the model has room or drops another worker's older one.
// - 'core-port-share': each worker owns the external ports p with p mod W = w; a port search
//   skips the ports other workers own, so a worker whose share of a small range is used up finds
//   no port (nat-clash) where the model's search over the whole range still finds one.
//
// - 'core-split-flow': dispatch is by port on one side (docs/core.md "Dataplane: dispatch"), so the
//   two directions of a flow between two instances inside the VPC (no Elastic IP on the way) can go
//   to different workers; each then keeps its own conntrack and security-group entries for the flow
//   (a reply is not seen as one). Recognised from the packet alone: a difference of a TCP/UDP
//   packet (or an end-of-run conntrack line of a flow) between two instances whose reverse
//   direction the dispatch rule sends to another worker.
//
// - 'core-sg-share': each worker owns a share of every ENI's security-group tracking allowance
//   (floor(a / W), the first a % W workers one more); a worker at its share refuses a flow
//   (sg-allowance) the model's ENI still has room for. The refused flow is not tracked, never
//   reaches a NAT instance (conntrack, nat counters) and its later packets differ: from the first
//   such refusal on, differences of packets from, to or through an instance with security groups,
//   and end-of-run conntrack lines and nat counters, are of this class.
//
// - 'core-icmp-share': the ICMP error rate limits (icmp-ratelimit.ts) are kept per worker, so the
//   errors for packets of different workers do not share the instance-wide credit nor a
//   destination's bucket: the core may send an error the model's one limiter refuses — never the
//   other way round. Recognised from the packet alone: the only difference is the output count,
//   fate, reason and conntrack class agree, and the core sent exactly one generated ICMP error more
//   (its other outputs as many as the model's).
//
// From a quota or port share decision on the NAT instance's table legitimately differs from the model's, and so
// may every later packet through it (its conntrack state, its fate, the ports a search picks) and
// the end-of-run table and nat counters. Recognised precisely: the workers record, per NAT instance
// and kind, where one first made such a decision (Tables.noteQuotaDecision /
// notePortShareDecision, made a packet number by the engine). A difference is of a class only if
//  - W > 1 and (for the quota) the quota is the scenario's max split (no --capacity cap);
//  - it is about a NAT instance with such a decision at or before the packet: a packet difference
//    of a packet whose first NAT instance on the way (the dispatch rule's, src/core/dispatch.ts) is
//    that instance, or end-of-run conntrack lines or nat rule counters of that instance.
// Anything else — a difference on an instance whose workers never decided so, a packet before the
// first decision, a packet crossing no NAT instance, an invariant — stays a failure.

import type { DifferenceClass, DifferenceFacts } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import { parseIpv4Addr } from '../packet/index.ts';
import { isIcmpErrorFrame, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { eipIndex, instanceByPrivate } from './compile.ts';
import { firstNatSlot, ownerOutbound } from './dispatch.ts';
import type { CoreShared } from './layout.ts';

/** Class id of the per-worker conntrack quota difference (docs/core.md). */
export const CLASS_CORE_CT_QUOTA = 'core-ct-quota';
/** Class id of the per-worker port share difference (docs/core.md "Dataplane: dispatch"). */
export const CLASS_CORE_PORT_SHARE = 'core-port-share';
/** Class id of the per-worker security-group allowance share difference (docs/core.md). */
export const CLASS_CORE_SG_SHARE = 'core-sg-share';
/** Class id of the per-worker ICMP error rate limits (docs/core.md "Dataplane: dispatch"). */
export const CLASS_CORE_ICMP_SHARE = 'core-icmp-share';
/** Class id of a VPC-internal flow whose directions dispatch to different workers (docs/core.md). */
export const CLASS_CORE_SPLIT_FLOW = 'core-split-flow';

const ORIG_TUPLE = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) /;

/**
 * True if a TCP/UDP flow src:sport → dst:dport between two instances of the scenario is split:
 * the dispatch rule sends its two directions (each from its sender's point) to different workers.
 */
function splitFlow(shared: CoreShared, proto: number, src: number, dst: number, sport: number, dport: number): boolean {
  if (proto !== PROTO_TCP && proto !== PROTO_UDP) return false;
  const c = shared.compiled;
  const a = instanceByPrivate(c, src);
  const b = instanceByPrivate(c, dst);
  if (a < 0 || b < 0) return false;
  const W = shared.workers;
  const there = ownerOutbound(c, W, firstNatSlot(c, a + 1, dst), proto, src, dst, sport, dport);
  const back = ownerOutbound(c, W, firstNatSlot(c, b + 1, src), proto, dst, src, dport, sport);
  return there !== back;
}

/** True if the frame's sender, its destination (an Elastic IP mapped back) or its first NAT instance has security groups. */
function touchesGroups(shared: CoreShared, f: Uint8Array, ingress: number): boolean {
  const aws = shared.compiled.aws;
  if (!aws || f.length < 20) return false;
  const c = shared.compiled;
  const on = (inst: number) => inst >= 0 && inst < aws.nInst && aws.sgOn[inst] !== 0;
  if (ingress > 0 && on(ingress - 1)) return true;
  let dst = ((f[16] << 24) | (f[17] << 16) | (f[18] << 8) | f[19]) >>> 0;
  const e = ingress === 0 ? eipIndex(c, dst) : -1;
  if (e >= 0) dst = c.eipPriv[e];
  if (on(instanceByPrivate(c, dst))) return true;
  const slot = packetSlot(shared, f, ingress);
  return slot >= 0 && on(c.instNat.indexOf(slot));
}

/** splitFlow for an input frame (not a fragment, not an ICMP error). */
function splitFrame(shared: CoreShared, f: Uint8Array, ingress: number): boolean {
  if (ingress === 0 || f.length < 20 || f[0] >>> 4 !== 4) return false;
  const ihl = (f[0] & 15) * 4;
  if (f.length < ihl + 4 || (((f[6] << 8) | f[7]) & 0x1fff) !== 0) return false;
  const rd = (o: number) => ((f[o] << 24) | (f[o + 1] << 16) | (f[o + 2] << 8) | f[o + 3]) >>> 0;
  const src = rd(12);
  if (instanceByPrivate(shared.compiled, src) !== ingress - 1) return false;
  return splitFlow(shared, f[9], src, rd(16), (f[ihl] << 8) | f[ihl + 1], (f[ihl + 2] << 8) | f[ihl + 3]);
}

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
 * as a partition decision's, given `from` (per kind — [quota, port share] — and NAT slot: the
 * number of the packet of the first such decision, Infinity = none); null when it is not.
 */
export function classifyPartitionDifference(
  facts: DifferenceFacts,
  coreName: string,
  scenario: Scenario,
  shared: CoreShared,
  from: readonly [Float64Array, Float64Array],
  sgShareFrom = Infinity,
): DifferenceClass | null {
  if (shared.workers <= 1 || facts.differences.length === 0) return null;
  if (facts.engines[0] === facts.engines[1]) return null;
  // The session may name this engine otherwise (the mutant runner's 'core-mutant'): the pair's
  // other engine is the one that is not named coreName, or the second when neither is.
  const me = facts.engines[0] === coreName ? 0 : 1;
  const max = scenario.conntrack.max;
  // A --capacity cap is not the split: quota decisions then do not count.
  const kinds = shared.compiled.ctMax === max ? [0, 1] : [1];
  const name = (slot: number): string => {
    const inst = shared.compiled.instNat.indexOf(slot);
    return scenario.instances[inst]?.name ?? `NAT slot ${slot}`;
  };
  const why = (kind: number, slot: number): string =>
    kind === 0
      ? `per-worker conntrack quota (docs/core.md): a worker reached its quota of ${name(slot)}'s max ${max} (split over ${shared.workers} workers) at packet #${from[0][slot]}; ${name(slot)}'s table differs from one table of ${max} since`
      : `per-worker port share (docs/core.md): a port search of ${name(slot)} found no port of its worker's share (of ${shared.workers}) at packet #${from[1][slot]}; ${name(slot)}'s table differs from one search over the whole range since`;
  /** The kind whose decision on `slot` came first at or before packet `at` (Infinity: any), or -1. */
  const kindOf = (slot: number, at: number): number => {
    let best = -1;
    for (const k of kinds) {
      const f = from[k][slot];
      if (f !== Infinity && f <= at && (best < 0 || f < from[best][slot])) best = k;
    }
    return best;
  };
  const cls = (kind: number, text: string): DifferenceClass => ({
    id: kind === 0 ? CLASS_CORE_CT_QUOTA : CLASS_CORE_PORT_SHARE,
    why: text,
  });
  const sgWhy = `per-worker security-group allowance share (docs/core.md): a worker's share of an ENI's allowance refused a flow at packet #${sgShareFrom}; tracked flows differ since`;
  const splitWhy = `a flow between two VPC instances whose directions dispatch to different workers (docs/core.md "Dataplane: dispatch"): each keeps its own entries for it`;
  if (facts.index >= 0) {
    if (facts.differences.some((d) => d.kind === 'invariant' || d.kind === 'conntrack')) return null;
    const input = facts.inputs?.[me];
    if (!input) return null;
    const res = facts.results;
    if (res && facts.differences.every((d) => d.kind === 'output-count')) {
      const mine = res[me];
      const theirs = res[1 - me];
      const errs = (r: typeof mine) => r.outputs.filter((o) => isIcmpErrorFrame(o.frame)).length;
      if (
        mine.fate === theirs.fate &&
        mine.reason === theirs.reason &&
        mine.ct === theirs.ct &&
        !isIcmpErrorFrame(input.frame) &&
        mine.outputs.length === theirs.outputs.length + 1 &&
        errs(mine) === errs(theirs) + 1
      )
        return {
          id: CLASS_CORE_ICMP_SHARE,
          why: `per-worker ICMP error rate limits (docs/core.md "Dataplane: dispatch"): the core's worker had credit for one more generated error than the model's one limiter`,
        };
    }
    const slot = packetSlot(shared, input.frame, input.ingress);
    const k = slot < 0 || slot >= from[0].length ? -1 : kindOf(slot, facts.index);
    if (k >= 0) return cls(k, why(k, slot));
    if (splitFrame(shared, input.frame, input.ingress)) return { id: CLASS_CORE_SPLIT_FLOW, why: splitWhy };
    if (sgShareFrom <= facts.index && touchesGroups(shared, input.frame, input.ingress))
      return { id: CLASS_CORE_SG_SHARE, why: sgWhy };
    return null;
  }
  // End-of-run conntrack lines and nat counters after a security-group share refusal.
  if (sgShareFrom !== Infinity && facts.differences.every((d) => d.kind === 'conntrack' || d.kind === 'counters'))
    return { id: CLASS_CORE_SG_SHARE, why: sgWhy };
  // End-of-run conntrack lines of split flows.
  if (
    facts.differences.every((d) => {
      if (d.kind !== 'conntrack') return false;
      const m = TABLE_LINE.exec(d.message);
      if (!m || (m[2] !== undefined && !facts.engines.includes(m[2]))) return false;
      const r = /\(renamed: .*$/.exec(d.message);
      const t = ORIG_TUPLE.exec(r ? r[0] : d.message);
      const p = /\s(6|17) \d+ /.exec(d.message);
      return (
        t !== null &&
        p !== null &&
        splitFlow(
          shared,
          Number(p[1]),
          parseIpv4Addr(t[1]) >>> 0,
          parseIpv4Addr(t[2]) >>> 0,
          Number(t[3]),
          Number(t[4]),
        )
      );
    })
  )
    return { id: CLASS_CORE_SPLIT_FLOW, why: splitWhy };
  const reasons = new Map<string, number>();
  let first = -1;
  for (const d of facts.differences) {
    // The instance's conntrack lines, and its nat counters: a flow the worker refused never reached
    // the nat table (the model counts its rule and policy matches).
    const m =
      d.kind === 'conntrack' ? TABLE_LINE.exec(d.message) : d.kind === 'counters' ? COUNTER_LINE.exec(d.message) : null;
    if (!m) return null;
    if (m[2] !== undefined && !facts.engines.includes(m[2])) return null;
    const inst = Number(m[1]);
    if (inst < 0 || inst >= shared.compiled.nInst) return null;
    const slot = shared.compiled.instNat[inst];
    if (slot < 0 || slot >= from[0].length) return null;
    const k = kindOf(slot, Infinity);
    if (k < 0) return null;
    if (first < 0) first = k;
    reasons.set(why(k, slot), k);
  }
  return cls(first, [...reasons.keys()].join('; '));
}
