// The ICMP error rate limits of one instance (docs/semantics.md §6 "Rate limits"; newest
// net/ipv4/icmp.c and net/ipv4/inetpeer.c): which generated errors are sent, in the kernel's
// order — icmpv4_mask_allow (icmp_ratemask, never "fragmentation needed"), icmpv4_global_allow
// (icmp_msgs_per_sec / icmp_msgs_burst, the instance-wide credit), then icmpv4_xrlim_allow
// (inet_peer_xrlim_allow: a token bucket per destination address, icmp_ratelimit per error, at most
// XRLIM_BURST_FACTOR of them) and, when that sends, icmp_global_consume. Time is in ms (the
// kernel counts jiffies: at HZ 250 a difference within 4 ms is timing). Linux's consume draws
// 0, 1 or 2 credits at random (get_random_u32_below(3)); natlab takes 1, their mean — the
// documented tolerance K2 (docs/kernel-differences.md).
import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED } from '../packet/constants.ts';
import type { Sysctls } from '../spec/scenario.ts';

/** NR_ICMP_TYPES: types above it are never limited. */
const NR_ICMP_TYPES = 18;
/** inetpeer.c XRLIM_BURST_FACTOR. */
export const XRLIM_BURST_FACTOR = 6;
/** A new peer's rate_last is 60 s in the past ("60*HZ ... so that the first calculation of tokens is at its maximum"). */
const NEW_PEER_AGE_MS = 60_000;
/** icmp_global_allow: a refill needs HZ/50 since the last one (20 ms); the elapsed time counts up to HZ (1 s). */
const GLOBAL_MIN_GAP_MS = 20;
const GLOBAL_MAX_GAP_MS = 1000;
/** natlab's icmp_global_consume: the mean of Linux's random 0..2. */
export const GLOBAL_CONSUME = 1;

/** Why an error was not sent, or null: sent. */
export type IcmpLimitVerdict = null | 'global' | 'destination';

interface Peer {
  tokens: number;
  last: number;
}

export class IcmpRateLimiter {
  private readonly peers = new Map<number, Peer>();
  private credit = 0;
  /** The last refill's time; null before the first (Linux's stamp 0 is more than HZ ago). */
  private stamp: number | null = null;

  constructor(private readonly sysctls: Sysctls) {}

  /** Whether instance-generated ICMP error (type, code) to `dst` may be sent at `nowMs`; updates the buckets. */
  allow(type: number, code: number, dst: number, nowMs: number): IcmpLimitVerdict {
    const y = this.sysctls;
    // icmpv4_mask_allow
    if (type > NR_ICMP_TYPES) return null;
    if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) return null;
    if (((y.icmpRatemask >>> type) & 1) === 0) return null;
    // icmp_global_allow: a positive credit passes as it is; else a refill by the elapsed time.
    if (this.credit <= 0) {
      const delta = this.stamp === null ? GLOBAL_MAX_GAP_MS : Math.min(nowMs - this.stamp, GLOBAL_MAX_GAP_MS);
      if (delta < GLOBAL_MIN_GAP_MS) return 'global';
      const incr = Math.floor((y.icmpMsgsPerSec * delta) / 1000);
      if (incr === 0) return 'global';
      this.stamp = nowMs;
      this.credit = Math.min(this.credit + incr, y.icmpMsgsBurst);
    }
    // inet_peer_xrlim_allow: the destination's bucket (created full).
    const timeout = y.icmpRatelimit;
    let p = this.peers.get(dst);
    if (!p) {
      p = { tokens: 0, last: nowMs - NEW_PEER_AGE_MS };
      this.peers.set(dst, p);
    }
    const delta = nowMs - p.last;
    if (delta !== 0) {
      p.last = nowMs;
      p.tokens = Math.min(p.tokens + delta, XRLIM_BURST_FACTOR * timeout);
    }
    if (p.tokens < timeout) return 'destination';
    p.tokens -= timeout;
    // icmp_global_consume
    this.credit -= GLOBAL_CONSUME;
    return null;
  }
}
