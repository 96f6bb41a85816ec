// Shared-memory layout of the core's NAT gateway tables (src/core/nat-gateway.ts uses it;
// layout.ts allocates it with the rest of CoreShared when the scenario has NAT gateways).
// Per gateway: a region of NATGW_TABLE_CAPACITY connection records and as many destination
// records, three hash-bucket arrays (inside tuple, outside tuple, destination), control words and
// the counters (CloudWatch metric order, src/spec/nat-gateway.ts).

import {
  NATGW_PRNG_SALT,
  NATGW_TABLE_CAPACITY,
  NGC_COUNT,
  natGatewaySecondsLeft,
  type NatGatewayConnection,
} from '../spec/nat-gateway.ts';
import type { NatGateway } from '../spec/scenario.ts';
import { prngInitialState } from '../spec/prng.ts';

/** Record words: meta, inside src/dst/ports, NAT port, chain links (inside, outside), LRU links, dest record. */
export const R_META = 0;
export const R_SRC = 1;
export const R_DST = 2;
/** sport << 16 | dport (ICMP: id << 16). */
export const R_PORTS = 3;
export const R_NATPORT = 4;
/** Next in the inside-hash chain (record + 1; 0 = end). */
export const R_INEXT = 5;
/** Next in the outside-hash chain. */
export const R_ONEXT = 6;
/** LRU links (record + 1; 0 = none). */
export const R_PREV = 7;
export const R_NEXT = 8;
/** Destination record + 1. */
export const R_DEST = 9;
export const GW_REC_WORDS = 10;
/** Destination record words: key (proto | addr index << 8), dst, dport, count, chain next. */
export const D_KEY = 0;
export const D_DST = 1;
export const D_DPORT = 2;
export const D_COUNT = 3;
export const D_NEXT = 4;
export const GW_DEST_WORDS = 5;
/** Meta bits. */
export const MB_LIVE = 1;
export const MB_REPLIED = 2;
export const MB_CLOSED = 4;
export const MB_FIN_OUT = 8;
export const MB_FIN_IN = 16;
export const MB_PROTO_SHIFT = 8;
export const MB_ADDR_SHIFT = 16;
/** Per gateway control words: LRU head/tail, record free list / high-water mark, dest free list / hwm, live count, rng. */
export const G_HEAD = 0;
export const G_TAIL = 1;
export const G_FREE = 2;
export const G_HWM = 3;
export const G_DFREE = 4;
export const G_DHWM = 5;
export const G_LIVE = 6;
export const G_RNG = 7;
export const GW_CTL_WORDS = 8;
/** Hash buckets per gateway and index (a power of two, ≥ the capacity). */
export const GW_BUCKET_BITS = 18;
export const GW_BUCKETS = 1 << GW_BUCKET_BITS;

/** The SharedArrayBuffers of the NAT gateway tables (added to CoreShared.sabs when the scenario has gateways). */
export function natGatewaySabs(nGw: number, seed: number): Record<string, SharedArrayBuffer> {
  const cap = NATGW_TABLE_CAPACITY;
  const sabs = {
    gwRec: new SharedArrayBuffer(nGw * cap * GW_REC_WORDS * 4),
    gwLast: new SharedArrayBuffer(nGw * cap * 8),
    gwDest: new SharedArrayBuffer(nGw * cap * GW_DEST_WORDS * 4),
    gwHash: new SharedArrayBuffer(nGw * 3 * GW_BUCKETS * 4),
    gwCtl: new SharedArrayBuffer(nGw * GW_CTL_WORDS * 4),
    gwCnt: new SharedArrayBuffer(nGw * NGC_COUNT * 8),
  };
  const ctl = new Int32Array(sabs.gwCtl);
  for (let g = 0; g < nGw; g++) ctl[g * GW_CTL_WORDS + G_RNG] = prngInitialState((seed ^ NATGW_PRNG_SALT) >>> 0) | 0;
  return sabs;
}

/** Gateway g's counters, from any thread (the engine's natGatewayCounters). */
export function readGatewayCounters(sabs: Record<string, SharedArrayBuffer>, g: number): number[] {
  const cnt = new Float64Array(sabs.gwCnt);
  return Array.from(cnt.subarray(g * NGC_COUNT, (g + 1) * NGC_COUNT));
}

/**
 * Gateway g's live connections at absolute `nowMs`, from any thread (the engine's
 * natGatewayConnections), oldest activity first. Connections already idle for the timeout but not
 * yet removed (expiry runs with the next packet) are left out, as the model's listing expires first.
 */
export function readGatewayConnections(
  sabs: Record<string, SharedArrayBuffer>,
  g: number,
  gw: NatGateway,
  nowMs: number,
): NatGatewayConnection[] {
  const cap = NATGW_TABLE_CAPACITY;
  const rec = new Int32Array(sabs.gwRec);
  const last = new Float64Array(sabs.gwLast);
  const ctl = new Int32Array(sabs.gwCtl);
  const idleMs = gw.idleTimeout * 1000;
  const out: NatGatewayConnection[] = [];
  let h = ctl[g * GW_CTL_WORDS + G_HEAD];
  for (let k = 0; k < cap && h !== 0; k++) {
    const r = g * cap + h - 1;
    const ro = r * GW_REC_WORDS;
    const meta = rec[ro + R_META];
    h = rec[ro + R_NEXT];
    if ((meta & MB_LIVE) === 0 || nowMs >= last[r] + idleMs) continue;
    const ports = rec[ro + R_PORTS];
    out.push({
      natGateway: g,
      proto: (meta >>> MB_PROTO_SHIFT) & 0xff,
      src: rec[ro + R_SRC] >>> 0,
      sport: ports >>> 16,
      dst: rec[ro + R_DST] >>> 0,
      dport: ports & 0xffff,
      natIp: gw.addresses[(meta >>> MB_ADDR_SHIFT) & 0xff].privateIp,
      natPort: rec[ro + R_NATPORT],
      timeout: natGatewaySecondsLeft(last[r], gw.idleTimeout, nowMs),
      replied: (meta & MB_REPLIED) !== 0,
      closed: (meta & MB_CLOSED) !== 0,
    });
  }
  return out;
}
