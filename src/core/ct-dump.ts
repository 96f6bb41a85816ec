// Readers of the shared tables, usable from any thread while the workers run (cold path).
//
// Torn reads: a session record is written by its owning worker only. The slow path bumps the
// 4-bit sequence in the meta word after every change; the reader reads meta, the fields, then
// meta again and retries (up to 8 times) when it changed — so a printed entry is a consistent
// snapshot unless 16 changes to that same entry happened during one read. The fast path only
// stores the expiry word (a single aligned 32-bit store, never torn): the record's, or in the
// 'line' layout its flow entry's copy, which entryExpiries folds in.

import type { ConntrackEntry, NatRuleCounter } from '../spec/engine.ts';
import { NAT_CHAINS } from '../spec/scenario.ts';
import { REASON_COUNT } from '../spec/reasons.ts';
import { PROTO_TCP } from '../packet/constants.ts';
import {
  type CoreShared,
  CLOCK_UNSET,
  C_HWM,
  FE_EXPIRY,
  FE_FAST,
  FE_META,
  FE_WORDS,
  M_ASSURED,
  M_LIVE,
  M_PROTO_MASK,
  M_SEEN_REPLY,
  M_SLOT_MASK,
  M_SLOT_SHIFT,
  M_STATE_MASK,
  M_STATE_SHIFT,
  SESSION_WORDS,
  S_EXPIRY,
  S_META,
  S_OPORTS,
  S_ODST,
  S_OSRC,
  S_RDST,
  S_RPORTS,
  S_RSRC,
  TCP_STATE_NAMES,
} from './layout.ts';

/**
 * 'line' layout: per session of worker w, the latest expiry its fast entries carry (their FE_FAST
 * copies, which the one-line fast path refreshes instead of the record; 0 = none), or null in the
 * 'record' layout. A session's expiry is the larger of this and its record's (tables.ts).
 */
function entryExpiries(shared: CoreShared, w: number, hwm: number): Uint32Array | null {
  if (shared.layout !== 'line') return null;
  const flow = new Uint32Array(shared.sabs.flow);
  const exps = new Uint32Array(Math.max(1, hwm));
  const refMask = ((1 << shared.refBits) - 1) >>> 0;
  const fb = w * shared.slotsW * FE_WORDS;
  for (let i = 0; i < shared.slotsW; i++) {
    const e = fb + i * FE_WORDS;
    const v = flow[e];
    if (v === 0 || (flow[e + FE_META] & FE_FAST) === 0) continue;
    const local = ((v & refMask) - 1) >>> 2;
    if (local < hwm && flow[e + FE_EXPIRY] > exps[local]) exps[local] = flow[e + FE_EXPIRY];
  }
  return exps;
}

/**
 * Live conntrack entries of every NAT instance at absolute time `atMs` (floor(timeUs / 1000) of
 * the capture clock). Each worker counts its 32-bit times from its own base (clock.ts); an entry
 * read while its worker rebases (once per ~12 days of capture time) may show a wrong timeout.
 */
export function dumpConntrack(shared: CoreShared, atMs: number): ConntrackEntry[] {
  const ses = new Uint32Array(shared.sabs.sessions);
  const ctl = new Int32Array(shared.sabs.ctl);
  const clock = new Float64Array(shared.sabs.clock);
  const c = shared.compiled;
  const out: ConntrackEntry[] = [];
  for (let w = 0; w < shared.workers; w++) {
    const hwm = Atomics.load(ctl, w * shared.ctlWords + C_HWM);
    if (clock[w] === CLOCK_UNSET) continue;
    const nowMs = atMs - clock[w];
    const base = w * shared.capW;
    const fexp = entryExpiries(shared, w, hwm);
    for (let i = 0; i < hwm; i++) {
      const o = (base + i) * SESSION_WORDS;
      for (let attempt = 0; attempt < 8; attempt++) {
        const meta = Atomics.load(ses, o + S_META);
        if ((meta & M_LIVE) === 0) break;
        const exp = fexp !== null && fexp[i] > ses[o + S_EXPIRY] ? fexp[i] : ses[o + S_EXPIRY];
        const os = ses[o + S_OSRC],
          od = ses[o + S_ODST],
          op = ses[o + S_OPORTS];
        const rs = ses[o + S_RSRC],
          rd = ses[o + S_RDST],
          rp = ses[o + S_RPORTS];
        if (Atomics.load(ses, o + S_META) !== meta) continue;
        if (nowMs >= exp) break;
        const proto = meta & M_PROTO_MASK;
        out.push({
          instance: c.natInst[(meta >>> M_SLOT_SHIFT) & M_SLOT_MASK],
          proto,
          state: proto === PROTO_TCP ? TCP_STATE_NAMES[(meta >>> M_STATE_SHIFT) & M_STATE_MASK] : '',
          timeout: Math.floor((exp - nowMs) / 1000),
          orig: { src: os, dst: od, sport: op >>> 16, dport: op & 0xffff },
          reply: { src: rs, dst: rd, sport: rp >>> 16, dport: rp & 0xffff },
          assured: (meta & M_ASSURED) !== 0,
          seenReply: (meta & M_SEEN_REPLY) !== 0,
        });
        break;
      }
    }
  }
  out.sort(
    (a, b) =>
      a.instance - b.instance ||
      a.proto - b.proto ||
      a.orig.src - b.orig.src ||
      a.orig.dst - b.orig.dst ||
      a.orig.sport - b.orig.sport ||
      a.orig.dport - b.orig.dport,
  );
  return out;
}

/** iptables nat counters (all chains of every NAT instance, policy as rule -1), summed over workers. */
export function readNatCounters(shared: CoreShared): NatRuleCounter[] {
  const c = shared.compiled;
  const natc = new Float64Array(shared.sabs.natc);
  const n = c.counterCount;
  const out: NatRuleCounter[] = [];
  for (let k = 0; k < n; k++) {
    let packets = 0;
    let bytes = 0;
    for (let w = 0; w < shared.workers; w++) {
      packets += natc[(w * n + k) * 2];
      bytes += natc[(w * n + k) * 2 + 1];
    }
    out.push({
      instance: c.counterInst[k],
      chain: NAT_CHAINS[c.counterChain[k]],
      rule: c.counterRule[k],
      packets,
      bytes,
    });
  }
  return out;
}

/** Dropped packets per DROP_* reason (index = reason code), summed over workers. */
export function readDropCounters(shared: CoreShared): number[] {
  const drops = new Float64Array(shared.sabs.drops);
  const out = new Array<number>(REASON_COUNT).fill(0);
  for (let w = 0; w < shared.workers; w++) for (let r = 0; r < REASON_COUNT; r++) out[r] += drops[w * REASON_COUNT + r];
  return out;
}

/** Sessions currently allocated per worker (live or expired but not yet reclaimed). */
export function readSessionCounts(shared: CoreShared): number[] {
  const ctl = new Int32Array(shared.sabs.ctl);
  const out: number[] = [];
  for (let w = 0; w < shared.workers; w++) out.push(Atomics.load(ctl, w * shared.ctlWords + 5));
  return out;
}

/**
 * Live entries per worker and NAT slot at absolute time `atMs` (the same liveness as
 * dumpConntrack): element `w * natCount + slot`. The per-worker conntrack quota is compared
 * against these (src/core/differences.ts).
 */
export function liveCountsPerWorker(shared: CoreShared, atMs: number): Int32Array {
  const ses = new Uint32Array(shared.sabs.sessions);
  const ctl = new Int32Array(shared.sabs.ctl);
  const clock = new Float64Array(shared.sabs.clock);
  const nNat = Math.max(1, shared.compiled.natCount);
  const out = new Int32Array(shared.workers * nNat);
  for (let w = 0; w < shared.workers; w++) {
    if (clock[w] === CLOCK_UNSET) continue;
    const hwm = Atomics.load(ctl, w * shared.ctlWords + C_HWM);
    const nowMs = atMs - clock[w];
    const base = w * shared.capW;
    const fexp = entryExpiries(shared, w, hwm);
    for (let i = 0; i < hwm; i++) {
      const o = (base + i) * SESSION_WORDS;
      const meta = Atomics.load(ses, o + S_META);
      const exp = fexp !== null && fexp[i] > ses[o + S_EXPIRY] ? fexp[i] : ses[o + S_EXPIRY];
      if ((meta & M_LIVE) === 0 || nowMs >= exp) continue;
      out[w * nNat + ((meta >>> M_SLOT_SHIFT) & M_SLOT_MASK)]++;
    }
  }
  return out;
}
