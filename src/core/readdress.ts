// Re-addressing plans (spec/readdress-plan.ts) in the core: a share of a batch is processed in
// segments, and each planned packet is re-addressed in the batch, from the outputs of the packets
// of its flow processed before it, between two segments — on the worker, in the same hand-over.
// Not on the fast path: only batches that carry a plan come here; the segments themselves are
// ordinary Dataplane calls (a split share processes exactly as a whole one).
import { POINT_INTERNET } from '../spec/scenario.ts';
import { OUT_SLOTS, RES_DROPPED, resultOutCount } from '../spec/frame-batch.ts';
import { PLAN_HOW_CHAIN, PLAN_HOW_FALLBACK, PLAN_HOW_NONE, PLAN_NONE, PLAN_PARSED } from '../spec/readdress-plan.ts';
import { PacketView, parseIpv4 } from '../packet/parse.ts';
import { mappingAddr, mappingPort, readdressAt, readdressRawAt, translatedSource } from '../packet/readdress.ts';
import type { CoreBatch } from './layout.ts';

const pvIn = new PacketView();
const pvOut = new PacketView();

/**
 * Runs positions [from, count) of the share starting at `first` of cb.idx, re-addressing every
 * planned packet just before its segment; `run(first, count)` processes a segment (positions
 * relative to cb.idx as Dataplane.processBatch takes them). A planned packet re-addressed twice (a
 * restarted worker) gets the same bytes: the rewrite sets fields to values, checksums follow.
 */
export function processPlanned(
  cb: CoreBatch,
  first: number,
  from: number,
  count: number,
  run: (first: number, count: number) => void,
): void {
  const plan = cb.plan!;
  const idx = cb.idx;
  const mode = plan.mode;
  let s = from;
  for (let p = from; p < count; p++) {
    const j = idx[first + p];
    if (mode[j] === PLAN_NONE) continue;
    if (p > s) run(first + s, p - s);
    readdressPlanned(cb, j);
    s = p;
  }
  if (count > s) run(first + s, count - s);
}

/** Re-addresses packet j of cb's batch as its plan says (every chained packet is already processed). */
function readdressPlanned(cb: CoreBatch, j: number): void {
  const plan = cb.plan!;
  const b = cb.batch;
  const o = cb.out;
  let m = -1;
  // The chain of the flow's earlier packets, latest first (bounded: each link points earlier).
  for (let p = plan.from[j], guard = 0; p >= 0 && p < j && guard < b.maxPackets; p = plan.prev[p], guard++) {
    const w = o.result[p];
    if ((w & RES_DROPPED) !== 0) continue;
    const n = resultOutCount(w);
    if (n === 0) continue;
    parseIpv4(b.arena, b.off[p], b.len[p], pvIn);
    for (let x = 0; x < n; x++) {
      const slot = p * OUT_SLOTS + x;
      if (o.outEgress[slot] !== POINT_INTERNET) continue;
      parseIpv4(o.outArena, o.outOff[slot], o.outLen[slot], pvOut);
      m = translatedSource(pvIn, pvOut);
      if (m >= 0) break;
    }
    if (m >= 0) break;
  }
  let addr = 0;
  let port = -1;
  let how = PLAN_HOW_NONE;
  if (m >= 0) {
    addr = mappingAddr(m);
    port = mappingPort(m);
    how = PLAN_HOW_CHAIN;
  } else if (plan.fbPort[j] >= 0) {
    addr = plan.fbAddr[j] >>> 0;
    port = plan.fbPort[j];
    how = PLAN_HOW_FALLBACK;
  }
  plan.how[j] = how;
  if (how === PLAN_HOW_NONE) return;
  const off = b.off[j];
  const len = b.len[j];
  if ((plan.flags[j] & PLAN_PARSED) !== 0) {
    parseIpv4(b.arena, off, len, pvIn);
    readdressAt(b.arena, off, pvIn, addr, port);
  } else readdressRawAt(b.arena, off, len, addr, port);
}
