// A worker's clock: capture times (µs, any 64-bit value, docs/frame-batch.md) become 32-bit ms
// since the worker's own time base (contract §7: nowMs = floor(timeUs / 1000)); the base lives in
// shared memory (the clock SAB) so a replacement worker and the conntrack reader use the same one.
// When a packet is more than REBASE_AFTER_MS past the base, the base moves forward by a multiple
// of CLOCK_BASE_UNIT: every live entry's expiry and creation time are shifted (the expired ones
// released), the timer wheel is emptied and every live entry re-filed. Rare (once per ~12 days of
// capture time, or once per jump), O(sessions of this worker).

import {
  CLOCK_BASE_UNIT,
  CLOCK_UNSET,
  C_HWM,
  C_NOW,
  C_WHEEL_CUR,
  M_LIVE,
  REBASE_AFTER_MS,
  S_CREATED,
  S_EXPIRY,
  S_META,
  S_WNEXT,
  S_WPREV,
  WHEEL_GRAN_BITS,
  WHEEL_SLOTS,
} from './layout.ts';
import type { Tables } from './tables.ts';

export class WorkerClock {
  private readonly clock: Float64Array;
  private lastUs = -1;
  private lastRel = 0;
  /** Rebases done by this thread (statistics, tests). */
  rebases = 0;

  constructor(private readonly t: Tables) {
    this.clock = t.v.clock;
  }

  /**
   * Forgets the last capture time (Dataplane.processBatch, once per batch): the next msOf converts
   * again. Keeps the conversion's path in use however rarely the time changes — a path that ran
   * only before V8 collected feedback (the bench's constant-time warm-up) made its first use in
   * optimised code a deoptimisation of processBatch (docs/core.md "Session 7").
   */
  forget(): void {
    this.lastUs = -1;
  }

  /** ms since this worker's time base of capture time `timeUs` (rebasing first when needed). */
  msOf(timeUs: number): number {
    if (timeUs === this.lastUs) return this.lastRel;
    const rel = this.relOfMs(Math.floor(timeUs / 1000));
    this.lastUs = timeUs;
    this.lastRel = rel;
    return rel;
  }

  /** ms since this worker's time base of absolute `ms` (rebasing first when needed). */
  relOfMs(ms: number): number {
    const w = this.t.w;
    // The first conversion of a table sets its base. Computed and stored on every call (the same
    // value once set): a branch of its own runs only before V8 collects feedback (see forget).
    const first = ms - (ms % CLOCK_BASE_UNIT);
    let base = this.clock[w];
    if (base === CLOCK_UNSET) base = first;
    this.clock[w] = base;
    let rel = ms - base;
    if (rel > REBASE_AFTER_MS) {
      this.rebase(rel);
      rel = ms - this.clock[w];
      this.lastUs = -1;
    }
    return rel;
  }

  /** Moves the base forward so that `rel` becomes less than CLOCK_BASE_UNIT. */
  private rebase(rel: number): void {
    const t = this.t;
    const ses = t.ses;
    const ctl = t.ctl;
    const delta = rel - (rel % CLOCK_BASE_UNIT);
    const now = rel - delta;
    t.wheel.fill(0, t.wBase, t.wBase + WHEEL_SLOTS);
    ctl[t.cBase + C_WHEEL_CUR] = Math.floor(now / (1 << WHEEL_GRAN_BITS));
    ctl[t.cBase + C_NOW] = now;
    const hwm = ctl[t.cBase + C_HWM];
    for (let l = 0; l < hwm; l++) {
      const o = t.rec(l);
      if ((ses[o + S_META] & M_LIVE) === 0) continue;
      ses[o + S_WPREV] = 0;
      ses[o + S_WNEXT] = 0;
      const exp = t.fat ? t.foldExpiry(l) : ses[o + S_EXPIRY];
      if (rel >= exp) {
        t.release(l);
        continue;
      }
      // Its security groups' lazy state counts in the old base's ms: applied and forgotten first
      // (the next slow-path packet records it again).
      t.sgDetach(l);
      ses[o + S_EXPIRY] = exp - delta;
      const created = ses[o + S_CREATED];
      // Entries created more than `delta` ms before the new base keep 0 (older than any time the
      // semantics compares with: the UDP stream rule looks 2 s back).
      ses[o + S_CREATED] = created > delta ? created - delta : 0;
      t.wheelLink(l, exp - delta);
      if (t.fat) t.sync(l, true); // the entries' expiry copies (and FE_FAST) from the shifted record
    }
    this.clock[t.w] += delta;
    this.rebases++;
  }
}
