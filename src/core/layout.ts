// The fast core's shared memory: the ONLY file with SharedArrayBuffer offsets and sizes.
// Everything a worker needs lives here, so a replacement worker (after a fault) resumes from the
// same state, and the main thread can read the tables while the workers run (src/core/ct-dump.ts).
//
// Per worker w (one writer per region, no locks; see docs/core.md "Dataplane"):
//   sessions  Uint32 records of SESSION_WORDS words (16 words per session, 64 bytes, one cache
//             line): tuples, meta (proto, NAT instance, TCP state, flags), per-direction composed
//             path, expiry ms, creation ms, timer-wheel links, oldest-created non-ASSURED list
//             links (once ASSURED: the security groups' lazy state, sg-words.ts), TCP tracker
//             details (last_end, last_dir/index/flags, CLOSE_INIT).
//   flow      open addressing, 4-byte slots: (tag << refBits) | ref, ref = (local session << 2 |
//             kind) + 1, kind 0 = orig tuple, 1 = reply tuple, 2 = "bysource" (proto, orig src,
//             orig sport) key for get_unique_tuple's mapping reuse: ONE slot per distinct key,
//             referencing the newest session of the key's chain. Load ≤ FLOW_LOAD, keyed hash.
//   chain     the bysource chains (nf_nat_bysource): per session, next / prev session + 1 of its
//             key's chain, newest first (BYSRC_WORDS words per session, slow path only).
//   tcpw      TCP window tracking per session (TCPW_WORDS: each direction's td_end, td_maxend, td_maxwin,
//             td_maxack, td_scale and flags; the retransmission memory — tcp-window.ts).
//   wheel     timer wheel heads (WHEEL_SLOTS Int32) + control words.
//   ctl       per worker and NAT instance: live count, list heads, RNG state, clock.
//   drops     Float64 per DROP_* reason; natc: Float64 (packets, bytes) per nat rule counter;
//             filtc: Float64 (packets, bytes) per filter rule and chain policy (filter.ts);
//             filtfast: per session direction, the filter counters its composed path counts.
//   clock     Float64 per worker: the worker's time base in ms (its 32-bit times count from there).

import type { Scenario } from '../spec/scenario.ts';
import { REASON_COUNT } from '../spec/reasons.ts';
import { natGatewaySabs } from './nat-gateway-layout.ts';
import { FF_WORDS, filterAny, filterCounterCount } from './filter.ts';
import { type SgSizing, sgBuffers, sgSizing } from './aws-filters.ts';
import { icmpLimitBuffers } from './icmp-ratelimit.ts';

/** Security-group tracking entries a worker may hold: this many per conntrack session of its share, plus SG_ENTRIES_MIN. */
export const SG_ENTRIES_PER_SESSION = 4;
export const SG_ENTRIES_MIN = 65536;
import { prngInitialState } from '../spec/prng.ts';
import { type BatchOutput, type FrameBatch, createBatchOutput, createFrameBatch } from '../spec/frame-batch.ts';
import type { ReaddressPlan } from '../spec/readdress-plan.ts';
import { type CompiledScenario, compileScenario } from './compile.ts';
import { raiseInliningBudget } from './v8-inlining.ts';

export type { CompiledScenario } from './compile.ts';

// ---- session record words ---------------------------------------------------------------------
export const S_OSRC = 0;
export const S_ODST = 1;
/** (sport << 16) | dport of the orig tuple (ICMP: id << 16 | type << 8 | code). */
export const S_OPORTS = 2;
export const S_RSRC = 3;
export const S_RDST = 4;
export const S_RPORTS = 5;
/** proto (bits 0..7) | NAT instance slot (8..13) | TCP state (14..17) | flags (M_* bits). */
export const S_META = 6;
/** Composed path per direction: orig in bits 0..15, reply in 16..31 (see PATH_*). */
export const S_PATH = 7;
export const S_EXPIRY = 8;
export const S_CREATED = 9;
export const S_WPREV = 10;
export const S_WNEXT = 11;
export const S_NPREV = 12;
export const S_NNEXT = 13;
/** TCP: last_end of the latest ignored packet (seq + payload + SYN + FIN), for the SYN/ACK re-sync. */
export const S_TCP_END = 14;
/** TCP tracker details (T_* bits): last_dir, last_index, last_flags, CLOSE_INIT. */
export const S_TCP_FLAGS = 15;
/** 16 words = 64 bytes: every record fills exactly one cache line (the SAB is page-aligned). */
export const SESSION_WORDS = 16;
// The security groups' lazy state reuses an ASSURED session's list links (sg-words.ts).
export * from './sg-words.ts';
import { S_SG_SEEN, S_SG_STATE } from './sg-words.ts';
if (S_SG_STATE !== S_NPREV || S_SG_SEEN !== S_NNEXT) throw new Error('layout: S_SG_* must be the list-link words');

// S_TCP_FLAGS bits (nf_conntrack_proto_tcp.c: ct->proto.tcp.last_dir / last_index / last_flags,
// seen[].flags & IP_CT_TCP_FLAG_CLOSE_INIT of either direction).
export const T_LAST_DIR = 1;
export const T_LAST_IDX_SHIFT = 1;
export const T_LAST_IDX_MASK = 7;
export const T_CHALLENGE_ACK = 1 << 4;
export const T_SIMULTANEOUS_OPEN = 1 << 5;
export const T_CLOSE_INIT = 1 << 6;

// The tcpw region's words per session (TCPW_WORDS, W_*, WF_*, LW_*): tcpw-words.ts.
export * from './tcpw-words.ts';
import { TCPW_WORDS } from './tcpw-words.ts';

export const M_PROTO_MASK = 0xff;
export const M_SLOT_SHIFT = 8;
export const M_SLOT_MASK = 0x3f;
export const M_STATE_SHIFT = 14;
export const M_STATE_MASK = 0xf;
export const M_LIVE = 1 << 18;
export const M_SEEN_REPLY = 1 << 19;
export const M_ASSURED = 1 << 20;
/** TCP entry created by loose pickup (mid-stream ACK). */
export const M_LOOSE = 1 << 21;
export const M_SRC_NAT = 1 << 22;
export const M_DST_NAT = 1 << 23;
/** Has a SRC manip (is in the bysource index). */
export const M_BYSRC = 1 << 24;
/** Composed path valid for the orig / reply direction. */
export const M_PATH_O = 1 << 25;
export const M_PATH_R = 1 << 26;
/** In the non-ASSURED creation-order list. */
export const M_NALIST = 1 << 27;
/**
 * Sequence bits (28..30): bumped on every slow-path write, for torn-read detection by readers.
 * Bit 31 stays clear, so a meta word is a non-negative int32 wherever it goes (a Smi: a word at
 * 2^31 or above read from the Uint32Array is a heap number, and the first one met deoptimised every
 * function that had only seen small ones — and, stored into SlowState.eMeta, deprecated the slow
 * path's state object and with it every compiled function that touched it).
 */
export const M_SEQ_SHIFT = 28;
export const M_SEQ_MASK = 0x7;

// Path (16 bits per direction): ingress point (5) | egress point (5) | TTL decrement (2) | EIP index + 1 (4).
export const PATH_IN_SHIFT = 0;
export const PATH_OUT_SHIFT = 5;
export const PATH_TTL_SHIFT = 10;
export const PATH_EIP_SHIFT = 12;
export const PATH_MAX_POINT = 31;
export const PATH_MAX_TTL = 3;
export const PATH_MAX_EIP = 15;

// ---- TCP states (conntrack names order) -------------------------------------------------------
import {
  TCP_NONE,
  TCP_SYN_SENT,
  TCP_SYN_RECV,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_CLOSE_WAIT,
  TCP_LAST_ACK,
  TCP_TIME_WAIT,
  TCP_CLOSE,
  TCP_SYN_SENT2,
  TCP_STATE_NAMES,
} from '../spec/tcp-states.ts';

export {
  TCP_NONE,
  TCP_SYN_SENT,
  TCP_SYN_RECV,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_CLOSE_WAIT,
  TCP_LAST_ACK,
  TCP_TIME_WAIT,
  TCP_CLOSE,
  TCP_SYN_SENT2,
  TCP_STATE_NAMES,
};

// ---- flow table ----------------------------------------------------------------------------------
/**
 * Layouts of the flow table (docs/core.md "Layouts"): 'record' — 4-byte slots (tag | ref), the key
 * and everything else in the session record (two dependent cache lines per established packet:
 * slot, then record); 'line' — 32-byte entries (FE_WORDS) holding the key, the composed rewrite
 * and a copy of the expiry, so an established UDP packet touches one cache line (its entry).
 */
export type CoreLayout = 'record' | 'line';
export const CORE_LAYOUTS: readonly CoreLayout[] = ['record', 'line'];
export const DEFAULT_LAYOUT: CoreLayout = 'record';
/** Words per flow-table slot in the 'line' layout (32 bytes: two entries per cache line, aligned). */
export const FE_WORDS = 8;
// Flow entry words ('line' layout; word 0 is the slot value of both layouts).
/** (hash tag << refBits) | ref, 0 = empty. */
export const FE_REF = 0;
/** The key's addresses and ports word (a copy of the record's tuple of this direction). */
export const FE_SRC = 1;
export const FE_DST = 2;
export const FE_PORTS = 3;
/**
 * proto (bits 0..7) | NAT slot (8..13) — the rest of the key, as in the record's meta —
 * | FE_FAST | FE_SIDE_DST | composed path without the EIP (ingress 5, egress 5, TTL decrement 2) in
 * bits 16..27 | FE_SG_ALLOWED (reserved) | 3 spare bits.
 */
export const FE_META = 4;
/** The one rewritten address (source or destination, FE_SIDE_DST), the IGW's EIP already applied. */
export const FE_ADDR = 5;
/** The one rewritten port (low 16 bits; the high 16 are spare). */
export const FE_PORT = 6;
/** Expiry ms of the session as this direction's fast path last refreshed it (valid with FE_FAST). */
export const FE_EXPIRY = 7;
/** Key bits of FE_META (proto | NAT slot << 8). */
export const FE_KEY_MASK = 0x3fff;
/** The entry may be forwarded by the one-line fast path (set and cleared by the slow path only). */
export const FE_FAST = 1 << 14;
/** The rewrite changes the destination address and port (else the source address and port). */
export const FE_SIDE_DST = 1 << 15;
export const FE_PATH_SHIFT = 16;
/**
 * Reserved for a security-group "allowed" step of the composed path (issue 16): not set by this
 * code; a fast path honouring it would forward filtered sessions whose rules allow the flow.
 */
export const FE_SG_ALLOWED = 1 << 28;
export const FLOW_LOAD = 0.75;
/** Load of the 'line' layout's entry table (two keys per session; lower: fewer probes cross a line). */
export const LINE_LOAD = 0.75;
/** Keys per session: orig, reply, bysource. */
export const FLOW_KEYS = 3;
export const KIND_ORIG = 0;
export const KIND_REPLY = 1;
export const KIND_BYSRC = 2;
/** Bysource chain words per session (layout of the `chain` region): next + 1, prev + 1 (0 = none). */
export const BYSRC_WORDS = 2;
export const B_NEXT = 0;
export const B_PREV = 1;

// ---- timer wheel -------------------------------------------------------------------------------------
export const WHEEL_BITS = 14;
export const WHEEL_SLOTS = 1 << WHEEL_BITS;
/** Slot width: 2^WHEEL_GRAN_BITS ms. */
export const WHEEL_GRAN_BITS = 6;

// ---- per-worker control words (Float64 not needed: all fit Int32) ----------------------------------
/** Head of the free session list. All links hold local index + 1 (0 = none). */
export const C_FREE = 0;
/** Sessions ever handed out (high-water mark; the rest of the region is still virgin). */
export const C_HWM = 1;
/** Wheel cursor: absolute slot number processed up to (exclusive). */
export const C_WHEEL_CUR = 2;
/** Port-search generator state (spec/prng.ts, the model's mulberry32). */
export const C_RNG = 3;
/** Latest clock seen (ms since the run's time base). */
export const C_NOW = 4;
/** Sessions allocated (live or expired-not-yet-reclaimed), all instances. */
export const C_USED = 5;
/**
 * This worker's first refusal by its share of an ENI's security-group allowance (W > 1, the share
 * below the allowance): batch number + 1 (0 = never) and the packet's index in it (differences.ts).
 */
export const C_SG_BATCH = 6;
export const C_SG_PKT = 7;
/**
 * Per NAT instance slot k: allocated count, non-ASSURED list head, tail, and where this worker
 * first made a quota-limited allocation decision for k (W > 1: at its quota, below the max):
 * the descriptor's batch number + 1 (0 = never) and the packet's index in that batch — the
 * engine turns it into a packet number (differences.ts: from there on the instance's table may
 * legitimately differ from the model's one table).
 */
export const C_INST = 8;
export const C_INST_WORDS = 7;
export const CI_COUNT = 0;
export const CI_NA_HEAD = 1;
export const CI_NA_TAIL = 2;
export const CI_QUOTA_BATCH = 3;
export const CI_QUOTA_PKT = 4;
/** The same for the first port search that found nothing after skipping ports other workers own. */
export const CI_PORT_BATCH = 5;
export const CI_PORT_PKT = 6;

export interface CoreShared {
  workers: number;
  seed: number;
  /** Key of the flow table's hash (src/core/tables.ts): per run, from the seed unless given. */
  hashSeed: number;
  /** Sessions per worker and NAT instance (conntrack max quota). */
  quota: number[];
  /** Session records per worker (sum of quotas). */
  capW: number;
  /** Flow slots per worker. */
  slotsW: number;
  /** Bits of a flow slot used by the session reference (the rest is a hash tag). */
  refBits: number;
  /** Flow-table layout ('record': 4-byte slots; 'line': FE_WORDS-word entries). */
  layout: CoreLayout;
  /** Words per flow slot: 1 ('record') or FE_WORDS ('line'). */
  flowStride: number;
  /** Slots per worker of the `bysrc` region ('line' layout: bysource keys apart); 0 = in `flow`. */
  bysrcSlotsW: number;
  ctlWords: number;
  sabs: Record<string, SharedArrayBuffer>;
  compiled: CompiledScenario;
  /** Security-group tracking tables (aws-filters.ts); null when the scenario has no filters. */
  sg: SgSizing | null;
}

/**
 * Allocates all shared state for `workers` workers. Table-full accounting: each worker owns a
 * quota of every NAT instance's nf_conntrack_max — floor(max / W), the first max % W workers one
 * more — so no lock is needed; with one worker the quota is exactly max.
 * `capacity` (optional) caps the per-instance max used for sizing (memory); default: the scenario's max.
 */
export function createCoreShared(
  scenario: Scenario,
  opts: {
    workers: number;
    seed: number;
    capacity?: number;
    hashSeed?: number;
    layout?: CoreLayout;
    /** Touch every page of the session tables now (prefaultTables) instead of on a session's first use. */
    prefault?: boolean;
  },
): CoreShared {
  // Before any of the core's code is optimised (its workers start after this): v8-inlining.ts.
  raiseInliningBudget();
  const W = opts.workers | 0;
  const layout = opts.layout ?? DEFAULT_LAYOUT;
  if (!CORE_LAYOUTS.includes(layout)) throw new Error(`createCoreShared: unknown layout ${layout}`);
  const flowStride = layout === 'line' ? FE_WORDS : 1;
  if (W < 1 || W > 64) throw new Error(`createCoreShared: workers must be 1..64, got ${opts.workers}`);
  const compiled = compileScenario(scenario);
  const max = Math.max(1, Math.min(opts.capacity ?? scenario.conntrack.max, scenario.conntrack.max));
  compiled.ctMax = max;
  const nNat = Math.max(1, compiled.natCount);
  const quota: number[] = [];
  let capW = 0;
  for (let w = 0; w < W; w++) {
    const q = Math.floor(max / W) + (w < max % W ? 1 : 0);
    quota.push(q);
    capW = Math.max(capW, q * nNat);
  }
  capW = Math.max(capW, 1);
  // 'line': only the two tuple keys live in the 32-byte entries, the bysource keys in 4-byte slots apart.
  const slotsW =
    layout === 'line' ? Math.ceil((capW * 2) / LINE_LOAD) + 1 : Math.ceil((capW * FLOW_KEYS) / FLOW_LOAD) + 1;
  const bysrcSlotsW = layout === 'line' ? Math.ceil(capW / FLOW_LOAD) + 1 : 0;
  let refBits = 1;
  while (1 << refBits <= capW * 4 + 1 && refBits < 31) refBits++;
  if (refBits > 28) throw new Error(`createCoreShared: capacity ${max} too large for the core's flow table`);
  const ctlWords = C_INST + C_INST_WORDS * nNat;
  const sabs: Record<string, SharedArrayBuffer> = {
    sessions: new SharedArrayBuffer(W * capW * SESSION_WORDS * 4),
    flow: new SharedArrayBuffer(W * slotsW * flowStride * 4),
    chain: new SharedArrayBuffer(W * capW * BYSRC_WORDS * 4),
    tcpw: new SharedArrayBuffer(W * capW * TCPW_WORDS * 4),
    bysrc: new SharedArrayBuffer(Math.max(4, W * bysrcSlotsW * 4)),
    wheel: new SharedArrayBuffer(W * WHEEL_SLOTS * 4),
    ctl: new SharedArrayBuffer(W * ctlWords * 4),
    drops: new SharedArrayBuffer(W * REASON_COUNT * 8),
    natc: new SharedArrayBuffer(W * Math.max(1, compiled.counterCount) * 2 * 8),
    filtc: new SharedArrayBuffer(W * Math.max(1, filterCounterCount(compiled.filter)) * 2 * 8),
    // The filter walk a composed path replays (filter.ts FF_WORDS per session direction): only
    // when some NAT instance has a filter table.
    filtfast: new SharedArrayBuffer(filterAny(compiled.filter) ? W * capW * 2 * FF_WORDS * 4 : 4),
    clock: new SharedArrayBuffer(W * 8),
  };
  if (compiled.gwCount > 0) Object.assign(sabs, natGatewaySabs(compiled.gwCount, opts.seed));
  Object.assign(sabs, icmpLimitBuffers(W, compiled.nInst));
  new Float64Array(sabs.clock).fill(CLOCK_UNSET);
  // Security-group tracking: per worker its share of every ENI's allowance, at most
  // SG_ENTRIES_PER_SESSION per conntrack session of the worker (plus a floor) — docs/core.md.
  let sg: SgSizing | null = null;
  if (compiled.aws) {
    sg = sgSizing(compiled.aws, W, SG_ENTRIES_PER_SESSION * capW + SG_ENTRIES_MIN);
    Object.assign(sabs, sgBuffers(W, compiled.aws.nInst, sg.slots, capW));
  }
  const hashSeed = (opts.hashSeed ?? opts.seed) | 0;
  const shared: CoreShared = {
    workers: W,
    seed: opts.seed | 0,
    hashSeed,
    quota,
    capW,
    slotsW,
    refBits,
    layout,
    flowStride,
    bysrcSlotsW,
    ctlWords,
    sabs,
    compiled,
    sg,
  };
  if (opts.prefault) prefaultTables(shared);
  // Initial control state: links are index + 1, so zero-filled memory is empty lists; RNG per worker.
  const ctl = new Int32Array(sabs.ctl);
  for (let w = 0; w < W; w++) {
    const b = w * ctlWords;
    ctl[b + C_HWM] = 0;
    ctl[b + C_WHEEL_CUR] = 0;
    // Worker 0 draws exactly the model's sequence (same seed); worker w is seeded with seed + w.
    ctl[b + C_RNG] = prngInitialState(opts.seed + w) | 0;
    ctl[b + C_NOW] = 0;
  }
  return shared;
}

/** Bytes of a memory page (the unit the kernel commits a SharedArrayBuffer's memory in). */
const PAGE_BYTES = 4096;

/**
 * Commits every page of the session tables (records, flow and bysource slots, chain links, TCP
 * window words) by writing one zero word per page: a SharedArrayBuffer's pages are mapped on first
 * touch, and a page fault costs 2–10 µs on this machine — taken one record page (64 sessions) at a
 * time during setup otherwise (docs/core.md "Session setup"). Costs that once, at creation, and
 * makes the whole allocation resident (152 B/session in the 'record' layout, the `tcpw` region
 * included even if no TCP session ever uses it). Returns the pages touched.
 */
export function prefaultTables(shared: CoreShared): number {
  let pages = 0;
  for (const name of ['sessions', 'flow', 'bysrc', 'chain', 'tcpw']) {
    const v = new Int32Array(shared.sabs[name]);
    const step = PAGE_BYTES / 4;
    for (let i = 0; i < v.length; i += step) {
      v[i] = 0;
      pages++;
    }
  }
  return pages;
}

/**
 * Shared bytes per session: session record + flow-table slots (FLOW_KEYS per session at FLOW_LOAD)
 * + bysource chain links + TCP window words.
 */
export function sharedBytesPerSession(shared: CoreShared): number {
  return (
    SESSION_WORDS * 4 +
    (shared.slotsW * shared.flowStride * 4 + shared.bysrcSlotsW * 4) / shared.capW +
    BYSRC_WORDS * 4 +
    TCPW_WORDS * 4
  );
}

/** Total bytes of shared table memory (all SABs). */
export function sharedBytesTotal(shared: CoreShared): number {
  let n = 0;
  for (const k of Object.keys(shared.sabs)) n += shared.sabs[k].byteLength;
  return n;
}

/** Typed-array views of one worker's region (or all regions, for readers). */
export class SharedViews {
  readonly sessions: Uint32Array;
  readonly flow: Uint32Array;
  readonly chain: Uint32Array;
  readonly tcpw: Uint32Array;
  readonly wheel: Int32Array;
  readonly ctl: Int32Array;
  readonly drops: Float64Array;
  readonly natc: Float64Array;
  /** Per worker: its time base (ms; CLOCK_UNSET before its first packet). */
  readonly clock: Float64Array;
  constructor(shared: CoreShared) {
    this.sessions = new Uint32Array(shared.sabs.sessions);
    this.flow = new Uint32Array(shared.sabs.flow);
    this.chain = new Uint32Array(shared.sabs.chain);
    this.tcpw = new Uint32Array(shared.sabs.tcpw);
    this.wheel = new Int32Array(shared.sabs.wheel);
    this.ctl = new Int32Array(shared.sabs.ctl);
    this.drops = new Float64Array(shared.sabs.drops);
    this.natc = new Float64Array(shared.sabs.natc);
    this.clock = new Float64Array(shared.sabs.clock);
  }
}

// ---- batches -------------------------------------------------------------------------------------

/**
 * One batch as the core's workers see it (docs/frame-batch.md): the caller's input FrameBatch as
 * it is (never written), this engine's BatchOutput, and `idx`, the packet indices sorted by owner
 * (worker w's share of the batch is idx[first .. first+count), in input order). All three are
 * SharedArrayBuffer-backed and reach a worker once, when the batch is first used
 * (CorePool.register); a descriptor then names the batch by number.
 */
export interface CoreBatch {
  batch: FrameBatch;
  out: BatchOutput;
  idx: Int32Array;
  /** A re-addressing plan registered with the pair (core/readdress.ts; one worker only). */
  plan?: ReaddressPlan | null;
}

/** A CoreBatch for batches of at most maxPackets packets in an input arena of arenaBytes (idx: the identity). */
export function createCoreBatch(maxPackets: number, arenaBytes: number): CoreBatch {
  const batch = createFrameBatch(maxPackets, arenaBytes);
  const idx = new Int32Array(new SharedArrayBuffer(batch.maxPackets * 4));
  for (let i = 0; i < idx.length; i++) idx[i] = i; // the identity: one worker's share is the batch
  return { batch, out: createBatchOutput(maxPackets, arenaBytes), idx };
}

/** The core's per-worker clock (clock SAB, one Float64 per worker): ms of its time base, -1 before the first packet. */
export const CLOCK_UNSET = -1;
/**
 * Each worker keeps its times (expiry, creation, the wheel) as 32-bit ms since its own time base
 * and moves the base forward (rebase: every live entry's times shifted, the wheel re-filed) when a
 * packet is more than this many ms past it — so any 64-bit capture time works.
 */
export const REBASE_AFTER_MS = 1 << 30;
/** Time bases are multiples of this (one turn of the timer wheel). */
export const CLOCK_BASE_UNIT = 1 << 20;
