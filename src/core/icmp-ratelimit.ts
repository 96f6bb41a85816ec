// The ICMP error rate limits of the instances (docs/semantics.md §6 "Rate limits"; twin of
// src/model/icmp-ratelimit.ts): icmp_ratemask, the instance-wide credit (icmp_msgs_per_sec /
// icmp_msgs_burst, icmp_global_allow) and a token bucket per (instance, destination address)
// (icmp_ratelimit, inet_peer_xrlim_allow), natlab's consume of 1 credit per sent error. State lives
// in shared memory, one region per worker (a replacement worker continues it): with W > 1 each
// worker limits the errors of the packets it owns (docs/core.md, dispatch limits). The peer table
// is open addressing without deletion; a full table gives no peer, and Linux sends when
// inet_getpeer finds none (`if (!peer) return true`).

import { ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED } from '../packet/constants.ts';
import type { CompiledScenario } from './compile.ts';

/** Peer slots per worker (Linux's inet_peer_threshold is at most 65536 + 128 per host). */
export const ICMP_PEER_SLOTS = 16384;
/** Per instance and worker: credit, last refill time (absolute ms), 1 once refilled. */
const G_WORDS = 3;
const NR_ICMP_TYPES = 18;
const XRLIM_BURST_FACTOR = 6;
const NEW_PEER_AGE_MS = 60_000;
const GLOBAL_MIN_GAP_MS = 20;
const GLOBAL_MAX_GAP_MS = 1000;
const GLOBAL_CONSUME = 1;

/** The shared buffers (layout.ts adds them to CoreShared.sabs). */
export function icmpLimitBuffers(W: number, nInst: number): Record<string, SharedArrayBuffer> {
  return {
    icmpPeerKey: new SharedArrayBuffer(W * ICMP_PEER_SLOTS * 2 * 4),
    icmpPeerVal: new SharedArrayBuffer(W * ICMP_PEER_SLOTS * 2 * 8),
    icmpGlobal: new SharedArrayBuffer(W * Math.max(1, nInst) * G_WORDS * 8),
  };
}

/** One worker's view. */
export class IcmpRateLimits {
  /** Per slot: instance + 1 (0: empty), destination address. */
  private readonly key: Int32Array;
  /** Per slot: tokens (ms), rate_last (absolute ms). */
  private readonly val: Float64Array;
  private readonly glob: Float64Array;
  private readonly kb: number;
  private readonly gb: number;
  /** The last refusal: 1 instance-wide, 2 per destination (for the trace), 0 none. */
  lastRefusal = 0;

  constructor(
    private readonly c: CompiledScenario,
    sabs: Record<string, SharedArrayBuffer>,
    worker: number,
  ) {
    this.key = new Int32Array(sabs.icmpPeerKey);
    this.val = new Float64Array(sabs.icmpPeerVal);
    this.glob = new Float64Array(sabs.icmpGlobal);
    this.kb = worker * ICMP_PEER_SLOTS * 2;
    this.gb = worker * Math.max(1, c.nInst) * G_WORDS;
  }

  /** Whether instance `inst` may send ICMP error (type, code) to `dst` at absolute ms `now`. */
  allow(inst: number, type: number, code: number, dst: number, now: number): boolean {
    const c = this.c;
    this.lastRefusal = 0;
    // icmpv4_mask_allow
    if (type > NR_ICMP_TYPES) return true;
    if (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED) return true;
    if (((c.instIcmpMask[inst] >>> type) & 1) === 0) return true;
    // icmp_global_allow
    const g = this.glob;
    const go = this.gb + inst * G_WORDS;
    if (g[go] <= 0) {
      const delta = g[go + 2] === 0 ? GLOBAL_MAX_GAP_MS : Math.min(now - g[go + 1], GLOBAL_MAX_GAP_MS);
      if (delta < GLOBAL_MIN_GAP_MS) return this.refuse(1);
      const incr = Math.floor((c.instIcmpPerSec[inst] * delta) / 1000);
      if (incr === 0) return this.refuse(1);
      g[go + 1] = now;
      g[go + 2] = 1;
      g[go] = Math.min(g[go] + incr, c.instIcmpBurst[inst]);
    }
    // inet_peer_xrlim_allow
    const s = this.peer(inst, dst, now);
    if (s >= 0) {
      const timeout = c.instIcmpRatelimit[inst];
      const v = this.val;
      const vo = this.kb + s * 2;
      const delta = now - v[vo + 1];
      if (delta !== 0) {
        v[vo + 1] = now;
        v[vo] = Math.min(v[vo] + delta, XRLIM_BURST_FACTOR * timeout);
      }
      if (v[vo] < timeout) return this.refuse(2);
      v[vo] -= timeout;
    }
    // icmp_global_consume
    g[go] -= GLOBAL_CONSUME;
    return true;
  }

  private refuse(why: number): boolean {
    this.lastRefusal = why;
    return false;
  }

  /** The slot of (inst, dst), created (full bucket) when absent; -1 when the table is full. */
  private peer(inst: number, dst: number, now: number): number {
    const k = this.key;
    const kb = this.kb;
    const tag = inst + 1;
    const d = dst | 0;
    let s = (Math.imul(d ^ Math.imul(tag, 0x9e3779b1), 0x85ebca6b) >>> 0) & (ICMP_PEER_SLOTS - 1);
    for (let n = 0; n < ICMP_PEER_SLOTS; n++) {
      const o = kb + s * 2;
      if (k[o] === 0) {
        k[o] = tag;
        k[o + 1] = d;
        this.val[o] = 0;
        this.val[o + 1] = now - NEW_PEER_AGE_MS;
        return s;
      }
      if (k[o] === tag && k[o + 1] === d) return s;
      s = (s + 1) & (ICMP_PEER_SLOTS - 1);
    }
    return -1;
  }
}
