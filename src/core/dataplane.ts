// The fast core's per-worker dataplane (single-threaded; one instance per worker thread).
//
// processBatch runs every packet of the worker's share through docs/semantics.md:
//  - fast path (this file, fastPath): an established session (TCP ESTABLISHED + ASSURED, or an
//    ASSURED UDP stream) whose direction has a composed path recorded: check the IPv4 header
//    (IHL 5, no fragment, checksum), verify the L4 checksum, one flow-table lookup, apply the
//    whole path's rewrite (NAT + TTL − k + IGW static NAT, checksums updated incrementally with
//    one combined delta), refresh the timer (one store), write the output copy. No allocation.
//  - everything else: the slow path (src/core/hop-walk.ts and the parts it is composed of:
//    conntrack.ts, tcp-tracker.ts, nat.ts, nat-port-search.ts, icmp-error.ts, manip.ts): the full
//    hop-by-hop walk with conntrack, NAT rules, get_unique_tuple, ICMP errors, TTL exceeded, table
//    full; it records a composed path per session direction for the fast path.

import type { CoreShared } from './layout.ts';
import type { BatchOutput, FrameBatch } from '../spec/frame-batch.ts';
import { OUT_SLOTS, packResult } from '../spec/frame-batch.ts';
import { WorkerClock } from './clock.ts';
import {
  M_ASSURED,
  M_PATH_O,
  M_PATH_R,
  M_SLOT_MASK,
  M_SLOT_SHIFT,
  M_STATE_MASK,
  M_STATE_SHIFT,
  S_EXPIRY,
  S_META,
  S_PATH,
  TCP_ESTABLISHED,
  C_NOW,
  S_TCP_END,
  S_TCP_FLAGS,
  T_LAST_DIR,
  T_LAST_IDX_MASK,
  T_LAST_IDX_SHIFT,
  C_USED,
  TCPW_WORDS,
  FE_ADDR,
  FE_EXPIRY,
  FE_FAST,
  FE_META,
  FE_PATH_SHIFT,
  FE_PORT,
  FE_SIDE_DST,
  S_SG_SEEN,
  S_SG_STATE,
  SG_FAST,
  SG_GEN_MASK,
  SG_GEN_SHIFT,
} from './layout.ts';
import { TO_ESTABLISHED, TO_UDP_STREAM, RT_ENI, RT_LOCAL } from './compile.ts';
import { tcpFastWindow } from './tcp-window.ts';
import { CT_ESTABLISHED, FATE_DELIVERED, REASON_NONE } from '../spec/reasons.ts';

/** The result word of every fast-path packet: delivered, ESTABLISHED, one output. */
const RES_FAST = packResult(FATE_DELIVERED, REASON_NONE, 0, CT_ESTABLISHED, 1);
import type { AwsFilters } from './aws-filters.ts';
import { type CompiledFilter, FF_WORDS, filterAny, filterCounterCount } from './filter.ts';
import { HopWalk } from './hop-walk.ts';
import { COMMIT_IN_FLIGHT } from './ring.ts';
import type { SlowState } from './slow-state.ts';
import { Tables } from './tables.ts';
import { PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';

/** The tracker's packet class of an ACK (get_conntrack_index: TCP_ACK_SET). */
const TCP_CLASS_ACK = 3;

/**
 * Live sessions of a worker above which processBatch prefetches: their cache lines (a 64-byte
 * record and up to 3 flow-slot lines each) then exceed the 1 MiB L2 cache; below it the prefetch
 * passes only cost a second parse and hash of every packet (measured: ~20% at 1k sessions).
 */
const PF_MIN_SESSIONS = (1 << 20) / (4 * 64);

/** Packets per prefetch group in processBatch. */
const PF_GROUP = 16;
/** Flow slots from a key's home the prefetch pass looks at for its tag or an empty slot. */
const PF_SCAN = 4;
/** The prefetch pass's verdict on a packet: not a flow-table key / a new flow (else: its flow slot). */
const PF_NONE = -1;
const PF_NEW = -2;
/** ... a key whose tag is not among the first PF_SCAN slots from its home (the fast path probes). */
const PF_FAR = -3;
/** Words per route decision (Dataplane.rd) and the decision "a local route: look the instance up". */
const RD_WORDS = 4;
const RD_LOCAL = -2;

export class Dataplane {
  /** This worker's tables (flow table, sessions, wheel) over the shared memory. */
  readonly tables: Tables;
  /** The slow path, and the state it shares with the fast path (the remembered flow miss). */
  readonly slow: HopWalk;
  private readonly st: SlowState;
  private readonly c: CoreShared['compiled'];
  /** Capture time (µs) → this worker's 32-bit ms (rebasing when needed). */
  readonly clock: WorkerClock;
  /** Packets processed / that took the slow path (statistics, this thread only). */
  handled = 0;
  slowCount = 0;
  /** Packets that took the fast path (statistics, this thread only). */
  get fastCount(): number {
    return this.handled - this.slowCount;
  }
  private readonly tmoEst: number;
  private readonly tmoUdpStream: number;
  /** tcpFastWindow's undo copy of a session's window words. */
  private readonly winSnap = new Uint32Array(TCPW_WORDS);
  /** The input arena of the batch being processed (tcp_in_window reads the TCP options from it). */
  private inArena: Uint8Array = new Uint8Array(0);
  private readonly checksumOn: boolean;
  /** The Elastic IPs (shared; a timeline event rewrites them): recordFast's IGW source. */
  private readonly eipAddr: Uint32Array;
  /**
   * The ingress→NAT-slot decision per ingress point, resolved ahead (buildDecisions; rebuilt by
   * timeline, the only way routes and Elastic IPs change): ingress point p's list is
   * rd[rdStart[p] .. rdStart[p + 1]) of RD_WORDS words — mask, address, NAT slot (or -1, or
   * RD_LOCAL), destination xor — in the order the slow path tries them (point 0: the Elastic
   * IPs, exact; point k: instance k − 1's route table in routeLookup's order). The first entry
   * with (dst & mask) === address decides.
   */
  private rd: Int32Array = new Int32Array(0);
  private rdStart: Int32Array = new Int32Array(0);
  /** Per NAT slot: its instance's private address (a MASQUERADE's source; the setup prefetch's guess). */
  private readonly natPriv: Uint32Array;

  constructor(shared: CoreShared, workerIndex: number) {
    const c = shared.compiled;
    this.c = c;
    this.tables = new Tables(shared, workerIndex);
    this.slow = new HopWalk(c, this.tables, shared.workers, workerIndex, shared.quota[workerIndex], shared.sabs);
    this.st = this.slow.st;
    this.aws = this.slow.aws;
    this.sgGen = this.aws !== null ? this.aws.f.gen : new Int32Array(1);
    this.sgOwnedMs = this.aws !== null ? this.aws.ownedMs : new Int32Array(4);
    this.flt = filterAny(c.filter) ? c.filter : null;
    this.ff = new Int32Array(shared.sabs.filtfast);
    this.ffBase = workerIndex * shared.capW * 2 * FF_WORDS;
    this.filtc = new Float64Array(shared.sabs.filtc);
    this.fcBase = workerIndex * filterCounterCount(c.filter) * 2;
    this.clock = new WorkerClock(this.tables);
    this.tmoEst = c.tmo[TO_ESTABLISHED];
    this.tmoUdpStream = c.tmo[TO_UDP_STREAM];
    this.checksumOn = c.checksum !== 0;
    this.eipAddr = c.eipAddr;
    this.natPriv = new Uint32Array(Math.max(1, c.natCount));
    for (let i = 0; i < c.nInst; i++) if (c.instNat[i] >= 0) this.natPriv[c.instNat[i]] = c.instPriv[i];
    this.buildDecisions();
  }

  /**
   * Resolves every ingress point's route decisions (rd, rdStart) from the compiled scenario's
   * current Elastic IPs and routes (cold: construction and timeline events).
   */
  private buildDecisions(): void {
    const c = this.c;
    const start = new Int32Array(c.nInst + 2);
    let n = c.eipCount;
    for (let k = 0; k < c.nInst; k++) n += c.rtStart[c.instRt[k] + 1] - c.rtStart[c.instRt[k]];
    const rd = new Int32Array(Math.max(1, n * RD_WORDS));
    let w = 0;
    for (let e = 0; e < c.eipCount; e++, w += RD_WORDS) {
      rd[w] = -1;
      rd[w + 1] = c.eipAddr[e] | 0;
      rd[w + 2] = c.eipInst[e] < 0 ? -1 : c.instNat[c.eipInst[e]];
      rd[w + 3] = c.eipAddr[e] ^ c.eipPriv[e];
    }
    for (let k = 0; k < c.nInst; k++) {
      start[k + 1] = w;
      const rt = c.instRt[k];
      for (let r = c.rtStart[rt]; r < c.rtStart[rt + 1]; r++, w += RD_WORDS) {
        const kind = c.rtKind[r];
        rd[w] = c.rtMask[r] | 0;
        rd[w + 1] = c.rtAddr[r] | 0;
        rd[w + 2] = kind === RT_ENI ? c.instNat[c.rtInst[r]] : kind === RT_LOCAL ? RD_LOCAL : -1;
        rd[w + 3] = 0;
      }
    }
    start[c.nInst + 1] = w;
    this.rd = rd;
    this.rdStart = start;
  }

  /**
   * The entry of rd that decides where a packet arriving at `ingress` for `dst` goes (its offset),
   * or -1: no NAT slot is reached directly. The entry's NAT slot is rd[x + 2] (RD_LOCAL: localSlot
   * of the destination), the destination after the decision (dst ^ rd[x + 3]) >>> 0 — an Elastic
   * IP's private address, else dst. (The slow path's walk: IGW static NAT from the internet, the
   * instance's route table from an instance.) Results in locals, not fields: no heap numbers.
   */
  private decision(ingress: number, dst: number): number {
    const st = this.rdStart;
    if (ingress < 0 || ingress >= st.length - 1) return -1;
    const rd = this.rd;
    for (let x = st[ingress], e = st[ingress + 1]; x < e; x += RD_WORDS) if ((dst & rd[x]) === rd[x + 1]) return x;
    return -1;
  }

  /** A local route's NAT slot: the instance whose private address is `dst`, if a NAT instance. */
  private localSlot(dst: number): number {
    const c = this.c;
    for (let t = 0; t < c.nInst; t++) if (c.instPriv[t] === dst) return c.instNat[t];
    return -1;
  }

  /** Where the worker loop's commit marker lives (set by setCommit; a private dummy otherwise). */
  private commitArr: Int32Array = new Int32Array(new SharedArrayBuffer(4));
  private commitAt = 0;

  /** The engine's number of the batch the next processBatch call belongs to (quota bookkeeping). */
  setBatchNo(n: number): void {
    this.st.batchNo = n | 0;
  }

  /** The worker loop's per-packet commit marker: ctrl[at] (docs/core.md "Faults"). */
  setCommit(ctrl: Int32Array, at: number): void {
    this.commitArr = ctrl;
    this.commitAt = at;
  }

  /**
   * Process packets idx[first..first+count) of the batch, in order (docs/frame-batch.md): reads
   * `batch` (never writes it), writes each packet's result word and outputs into `out`.
   * Around packet idx[p] it stores the commit marker `(commitBias + p) | COMMIT_IN_FLIGHT` before
   * and `commitBias + p + 1` after (the worker passes commitWord(seq, 0) - shareFirst, so the
   * marker counts the share's committed packets; without setCommit the stores go to a dummy).
   */
  processBatch(
    batch: FrameBatch,
    out: BatchOutput,
    idx: Int32Array,
    first: number,
    count: number,
    commitBias = 0,
  ): void {
    const cm = this.commitArr;
    const ca = this.commitAt;
    this.bindIo(batch, out);
    const clock = this.clock;
    clock.forget();
    let now = 0;
    const end = first + count;
    const pf = this.pfHome;
    const flow = this.tables.flow;
    const ses = this.tables.ses;
    const fb = this.tables.fBase;
    const big = this.tables.ctl[this.tables.cBase + C_USED] > PF_MIN_SESSIONS;
    const fs = this.tables.fs;
    const fat = this.tables.fat;
    let sink = 0;
    for (let base = first; base < end; base += PF_GROUP) {
      const n = Math.min(end - base, PF_GROUP);
      // Tables above the cache: the group's keys first — each packet's NAT slot, destination
      // after the ingress decision and flow-table hash as the fast path looks it up (preHash),
      // its home slot, and where the home's line says its entry is (a slot with its hash tag, or
      // "new"); the fast path then starts from there instead of hashing and probing again.
      // (Below PF_MIN_SESSIONS this pass costs more than it saves — measured ×0.92 at 1k sessions
      // — and the fast path decides and probes itself.)
      const t = this.tables;
      if (big) {
        const pt = this.pfTag;
        const tagMask = t.tagMask;
        for (let j = 0; j < n; j++) {
          const h = this.preHash(batch, idx[base + j], j);
          pf[j] = h < 0 ? -1 : t.home(h);
          pt[j] = h & tagMask;
          this.pfHash[j] = h;
        }
        this.pfRemovals = t.removals;
        // Memory-level parallelism (tables above the cache): the homes' loads in a tight loop of
        // their own, independent misses the CPU issues back to back. (Interleaved with the
        // hashing, few were in flight at once: splitting measured ×1.3 at 64k and 1M sessions in
        // the 'record' layout, ×1.4–1.6 in 'line'.)
        for (let j = 0; j < n; j++) if (pf[j] >= 0) sink ^= flow[fb + pf[j] * fs];
        // Where does each key's probe run say it is? A slot with its hash tag (its entry, but for
        // a tag collision) or an empty slot before one (a new flow), within the first PF_SCAN
        // slots from the home — the home's own line, loaded above. (The home slot alone said
        // "new" only when empty: a new flow whose home held another key, about half of them, was
        // taken for an established one and the other key's record loaded instead.)
        const rb = t.refBits;
        const nSlots = t.nSlots;
        for (let j = 0; j < n; j++) {
          const home = pf[j];
          pf[j] = PF_NONE;
          if (home < 0) continue;
          pf[j] = PF_FAR;
          let k = home;
          for (let q = 0; q < PF_SCAN; q++) {
            const v = flow[fb + k * fs];
            if (v === 0) {
              pf[j] = PF_NEW;
              this.pfEmpty[j] = k;
              break;
            }
            if (v >>> rb === pt[j]) {
              pf[j] = k;
              break;
            }
            if (++k === nSlots) k = 0;
          }
        }
        // Session setup: a new flow's bysource and (guessed) reply keys' homes are two more random
        // lines the slow path will touch — load them now, overlapped.
        for (let j = 0; j < n; j++) {
          if (pf[j] !== PF_NEW) continue;
          const slot = this.pfSlot[j];
          sink ^= t.touchNewKeys(
            slot,
            this.pfProto[j],
            this.pfSrc[j],
            this.pfDst[j],
            this.pfPorts[j],
            batch.ingress[idx[base + j]] !== 0 ? this.natPriv[slot] : 0,
          );
        }
        // The 'line' layout needs nothing more: an established UDP packet touches only its entry.
        for (let j = 0; j < n && !fat; j++) {
          if (pf[j] < 0) continue;
          const v = flow[fb + pf[j]];
          // Both ends of the hot part of the record (words 0..8: a 56-byte record may cross a line).
          const o = t.rec(((v & t.refMask) - 1) >>> 2);
          sink ^= ses[o] ^ ses[o + S_EXPIRY];
        }
      }
      for (let j = 0; j < n; j++) {
        const i = idx[base + j];
        const p = base + j;
        cm[ca] = (commitBias + p) | COMMIT_IN_FLIGHT;
        now = clock.msOf(batch.timeUs[i]);
        // Every packet counted here, the slow ones apart (fastCount = the difference): an
        // increment only on the fast branch, first reached after processBatch was compiled on the
        // set-up phase's all-slow packets, deoptimised it.
        this.handled++;
        if (!this.fastPath(batch, out, i, now, big ? j : -1)) {
          this.slowCount++;
          this.slow.run(batch, out, i, now);
          this.st.missValid = false;
          if (fat) this.tables.syncTouched();
        }
        cm[ca] = (commitBias + p + 1) | 0;
      }
    }
    this.pfSink = sink;
    if (count > 0) {
      this.tables.ctl[this.tables.cBase + C_NOW] = now;
      this.tables.wheelAdvance(now, count + 64);
      // NAT gateways expire with the clock, whatever path the packets took (the model does it per packet).
      if (this.c.gwCount > 0) this.slow.gw.expire(Math.floor(batch.timeUs[idx[end - 1]] / 1000));
    }
  }

  private readonly pfHome = new Int32Array(PF_GROUP);
  /** The prefetch group's hash tags (the flow slot's bits above the reference). */
  private readonly pfTag = new Int32Array(PF_GROUP);
  /**
   * A new flow's key (PF_NEW): its hash and the empty slot that ended its run, and the tables'
   * removal count at the pass. While no slot was emptied since and that slot is still empty, the
   * key is still absent (an insert of it would have filled that slot): the fast path's lookup
   * misses without probing (Tables.noteMiss).
   */
  private readonly pfHash = new Int32Array(PF_GROUP);
  private readonly pfEmpty = new Int32Array(PF_GROUP);
  private pfRemovals = 0;
  /** The prefetch group's keys (preHash): NAT slot, protocol, source, destination (post-IGW), ports. */
  private readonly pfSlot = new Int32Array(PF_GROUP);
  private readonly pfProto = new Int32Array(PF_GROUP);
  private readonly pfSrc = new Int32Array(PF_GROUP);
  private readonly pfDst = new Int32Array(PF_GROUP);
  private readonly pfPorts = new Int32Array(PF_GROUP);

  /** Keeps the prefetch loads observable (never read). */
  pfSink = 0;

  /** Flow-table hash of the packet's key as the fast path would look it up, or -1; the key goes to pf*[j]. */
  private preHash(batch: FrameBatch, i: number, j: number): number {
    const dv = this.inDv;
    const off = batch.off[i];
    if (batch.len[i] < 28) return -1;
    const w2 = dv.getUint32(off + 8);
    const proto = (w2 >>> 16) & 0xff;
    if (dv.getUint8(off) !== 0x45 || (proto !== PROTO_TCP && proto !== PROTO_UDP)) return -1;
    const src = dv.getUint32(off + 12);
    const ports = dv.getUint32(off + 20);
    const dstW = dv.getUint32(off + 16);
    const x = this.decision(batch.ingress[i], dstW);
    if (x < 0) return -1;
    const dst = (dstW ^ this.rd[x + 3]) >>> 0;
    let slot = this.rd[x + 2];
    if (slot === RD_LOCAL) slot = this.localSlot(dst);
    if (slot < 0) return -1;
    this.pfSlot[j] = slot;
    this.pfProto[j] = proto;
    this.pfSrc[j] = src;
    this.pfDst[j] = dst;
    this.pfPorts[j] = ports;
    return this.tables.hashTuple(slot, proto, src, dst, ports);
  }

  /** Advance the clock to absolute `ms` with no traffic: bounded incremental expiry of this worker's sessions. */
  advance(ms: number): void {
    if (this.c.gwCount > 0) this.slow.gw.expire(ms);
    const nowMs = this.clock.relOfMs(ms);
    this.tables.ctl[this.tables.cBase + C_NOW] = nowMs;
    this.tables.wheelAdvance(nowMs, 1 << 16);
  }

  /**
   * A timeline event happened (every worker idle): NAT slot `slot`'s sessions go (-1: none), every
   * composed path is forgotten, and the Elastic IP copies are read again from the shared state.
   */
  timeline(slot: number): void {
    this.tables.timelineReset(slot);
    this.buildDecisions();
  }

  private lastArena: Uint8Array | null = null;
  private lastOutArena: Uint8Array | null = null;
  private inDv: DataView = new DataView(new ArrayBuffer(8));
  private outDv: DataView = new DataView(new ArrayBuffer(8));
  /** DataViews of the arenas seen (per arena object: no allocation per batch, however many arenas). */
  private readonly dvCache = new WeakMap<Uint8Array, DataView>();

  /** DataViews over the batch's arenas (cached per arena: no allocation per batch). */
  private bindIo(batch: FrameBatch, out: BatchOutput): void {
    this.inArena = batch.arena;
    if (batch.arena !== this.lastArena) {
      this.inDv = this.viewOf(batch.arena);
      this.lastArena = batch.arena;
    }
    if (out.outArena !== this.lastOutArena) {
      this.outDv = this.viewOf(out.outArena);
      this.lastOutArena = out.outArena;
    }
  }

  private viewOf(a: Uint8Array): DataView {
    let dv = this.dvCache.get(a);
    if (dv === undefined) {
      dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
      this.dvCache.set(a, dv);
    }
    return dv;
  }

  /** The fast path's lookup missed: the slow path's conntrack lookup of the same key need not probe again. */
  private missed(slot: number, proto: number, a: number, b: number, ports: number): boolean {
    const st = this.st;
    st.missValid = true;
    st.missSlot = slot;
    st.missProto = proto;
    st.missA = a;
    st.missB = b;
    st.missPorts = ports;
    return false;
  }

  /**
   * The record fast path's output (recordFast): source, destination, ports (int32: the words'
   * bits), TTL decrement, egress.
   */
  private rSrc = 0;
  private rDst = 0;
  private rPorts = 0;
  private rTdec = 0;
  private rEgress = 0;
  /** The current TCP packet's L4 offset and last_end (for tcpAck from recordFast). */
  private tcpL4 = 0;
  private tcpEnd = 0;
  /** Security groups and ACLs of a composed path (null: the scenario has none; aws-filters.ts recordFast). */
  private readonly aws: AwsFilters | null;
  /** With aws: the rules' generation (shared; a mid-run change bumps it) and the owned flows' shortest timeouts (AwsFilters.ownedMs). */
  private readonly sgGen: Int32Array;
  private readonly sgOwnedMs: Int32Array;
  /**
   * The NAT instances' filter tables (null: none has one). A composed path of a filtered
   * instance's session replays the filter counters its slow-path walk recorded (filtfast;
   * hop-walk.ts recordPath); without a record the packet takes the slow path.
   */
  private readonly flt: CompiledFilter | null;
  private readonly ff: Int32Array;
  private readonly ffBase: number;
  private readonly filtc: Float64Array;
  private readonly fcBase: number;
  /** The current packet's length (the filter counters' bytes). */
  private pktLen = 0;

  /**
   * The fast path from the session record (the 'record' layout, and the 'line' layout's entries
   * without FE_FAST): live, ASSURED, TCP ESTABLISHED, a composed path for this direction from this
   * ingress; refreshes the record's expiry and sets rSrc..rEgress. False = slow path.
   */
  private recordFast(
    local: number,
    kind: number,
    proto: number,
    ingress: number,
    ttl: number,
    now: number,
    tmo: number,
  ): boolean {
    const ses = this.tables.ses;
    const o = this.tables.rec(local);
    const meta = ses[o + S_META];
    if (now >= ses[o + S_EXPIRY] || (meta & M_ASSURED) === 0) return false;
    if (proto === PROTO_TCP && ((meta >>> M_STATE_SHIFT) & M_STATE_MASK) !== TCP_ESTABLISHED) return false;
    if ((meta & (kind === 0 ? M_PATH_O : M_PATH_R)) === 0) return false;
    const path = kind === 0 ? ses[o + S_PATH] & 0xffff : ses[o + S_PATH] >>> 16;
    if ((path & 31) !== ingress) return false;
    const tdec = (path >>> 10) & 3;
    if (tdec !== 0 && ttl <= tdec) return false;
    // Security groups and ACLs on the path (aws-filters.ts recordFast): this direction recorded
    // under the current rules, and within the shortest timeout of its owned tracked flows since
    // they were last refreshed (so each is alive). Nothing outside the record is read.
    const sg = this.aws !== null;
    if (sg) {
      const st = ses[o + S_SG_STATE];
      if (
        (st & (SG_FAST << kind)) === 0 ||
        st >>> SG_GEN_SHIFT !== (this.sgGen[0] & SG_GEN_MASK) ||
        now - ses[o + S_SG_SEEN] >= this.sgOwnedMs[(proto === PROTO_TCP ? 0 : 2) + ((st >>> 3) & 1)]
      )
        return false;
    }
    // The instance's filter table: the walk the path recorded (read only here; counted below,
    // after the TCP step, which may still refuse).
    let ffo = -1;
    const flt = this.flt;
    if (flt !== null && flt.slotOn[(meta >>> M_SLOT_SHIFT) & M_SLOT_MASK] !== 0) {
      ffo = this.ffBase + (local * 2 + kind) * FF_WORDS;
      if (this.ff[ffo] === 0) return false;
    }
    let to = tmo;
    if (proto === PROTO_TCP) {
      to = this.tcpAck(local, kind, this.tcpL4, this.tcpEnd);
      if (to < 0) return false;
    }
    if (ffo >= 0) {
      const fc = this.filtc;
      for (let j = 1, e = this.ff[ffo]; j < e; j++) {
        const cell = this.fcBase + this.ff[ffo + j] * 2;
        fc[cell]++;
        fc[cell + 1] += this.pktLen;
      }
    }
    const eip = path >>> 12;
    // Output tuple = invert(the other direction's tuple), then the IGW's static NAT.
    const ot = o + (1 - kind) * 3;
    const np = ses[ot + 2];
    // int32 (the bits of the words): a field first given a Smi and later a uint32 at 2^31 or
    // above changes representation, which deprecates the Dataplane's map and deoptimises every
    // compiled function using it (the first fast-path packet came after processBatch was compiled).
    this.rSrc = (eip !== 0 ? this.eipAddr[eip - 1] : ses[ot + 1]) | 0;
    this.rDst = ses[ot] | 0;
    this.rPorts = (np << 16) | (np >>> 16);
    this.rTdec = tdec;
    this.rEgress = (path >>> 5) & 31;
    // Refresh the timer. TCP's timeout caps (unacknowledged data, retransmissions, zero window)
    // can make the expiry shorter than before: the entry is then re-filed in the timer wheel
    // (the 'line' layout never gets here with a shorter one: tcpAck sends it to the slow path).
    const exp = now + to;
    if (exp < ses[o + S_EXPIRY]) {
      ses[o + S_EXPIRY] = exp;
      this.tables.wheelRefile(local, exp);
    } else ses[o + S_EXPIRY] = exp;
    // The owned tracked flows' refresh, lazily: their expiry is derived from it when read.
    if (sg) ses[o + S_SG_SEEN] = now;
    return true;
  }

  /**
   * The fast path's TCP step (the only one; both layouts call it, after every other check and
   * before any write): an ACK of an ESTABLISHED session in direction `kind`. Runs tcp_in_window on
   * the session's tcpw line (tcp-window.ts); in window, stores the tracker's last_dir / last_index /
   * last_end in the record and returns the timeout (ms) to refresh with. -1 = let the slow path
   * handle the packet, nothing written: a segment not in window, or — 'line' layout, whose
   * entries' expiry copies may only grow — a timeout shorter than ESTABLISHED's.
   */
  private tcpAck(local: number, kind: number, l4: number, tcpEnd: number): number {
    const ses = this.tables.ses;
    const o = this.tables.rec(local);
    const tf = ses[o + S_TCP_FLAGS];
    const doff = (this.inDv.getUint8(l4 + 12) >>> 4) << 2;
    const to = tcpFastWindow(
      this.tables.tcpw,
      this.tables.tw(local),
      kind,
      this.inArena,
      l4,
      doff,
      (tcpEnd - this.inDv.getUint32(l4 + 4)) >>> 0,
      this.inDv.getUint8(l4 + 13),
      tf & T_LAST_DIR,
      ses[o + S_TCP_END],
      this.c,
      this.winSnap,
      this.tables.fat ? this.tmoEst : 0,
    );
    if (to < 0) return -1;
    const want =
      ((tf & ~(T_LAST_DIR | (T_LAST_IDX_MASK << T_LAST_IDX_SHIFT))) | kind | (TCP_CLASS_ACK << T_LAST_IDX_SHIFT)) >>> 0;
    if (tf !== want) ses[o + S_TCP_FLAGS] = want;
    ses[o + S_TCP_END] = tcpEnd;
    return to;
  }

  /**
   * The established-session fast path of packet i; `j` ≥ 0: the packet is the `j`th of a group
   * that went through processBatch's key pass (its NAT slot, destination and probe start are
   * made), -1: none. False = let the slow path handle the packet.
   */
  private fastPath(batch: FrameBatch, out: BatchOutput, i: number, now: number, j: number): boolean {
    const dv = this.inDv;
    const off = batch.off[i];
    const len = batch.len[i];
    if (len < 28) return false;
    const w0 = dv.getUint32(off);
    if (w0 >>> 24 !== 0x45 || (w0 & 0xffff) !== len) return false;
    const w1 = dv.getUint32(off + 4);
    if ((w1 & 0x3fff) !== 0) return false; // MF or fragment offset
    const w2 = dv.getUint32(off + 8);
    const proto = (w2 >>> 16) & 0xff;
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return false;
    const srcW = dv.getUint32(off + 12);
    const dstW = dv.getUint32(off + 16);
    // IPv4 header checksum.
    let s =
      (w0 >>> 16) +
      (w0 & 0xffff) +
      (w1 >>> 16) +
      (w1 & 0xffff) +
      (w2 >>> 16) +
      (w2 & 0xffff) +
      (srcW >>> 16) +
      (srcW & 0xffff) +
      (dstW >>> 16) +
      (dstW & 0xffff);
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    if (s !== 0xffff) return false;
    const ttl = w2 >>> 24;
    const l4 = off + 20;
    const l4len = len - 20;
    const portsW = dv.getUint32(l4);
    let csumOff: number;
    let tcpEnd = 0;
    if (proto === PROTO_TCP) {
      if (l4len < 20) return false;
      const w12 = dv.getUint32(l4 + 12);
      const doff = (w12 >>> 28) << 2;
      if (doff < 20 || doff > l4len) return false;
      const f = (w12 >>> 16) & 0x37;
      // ACK or ACK+URG (PSH/ECE/CWR masked): filter.ts FAST_FIXED_FLAGS relies on this test.
      if (f !== 0x10 && f !== 0x30) return false;
      csumOff = l4 + 16;
      tcpEnd = (dv.getUint32(l4 + 4) + l4len - doff) >>> 0; // seq + payload (no SYN, no FIN)
      this.tcpL4 = l4;
      this.tcpEnd = tcpEnd;
    } else {
      const ulen = dv.getUint32(l4 + 4) >>> 16;
      if (ulen < 8 || ulen > l4len) return false;
      csumOff = l4 + 6;
    }
    const l4csum = dv.getUint16(csumOff);
    // The L4 bytes are copied to the output while they are summed (one pass; if the packet then
    // goes to the slow path, it rewrites the same region from scratch).
    const ov = this.outDv;
    {
      let c = (srcW >>> 16) + (srcW & 0xffff) + (dstW >>> 16) + (dstW & 0xffff) + proto + l4len;
      const end4 = l4 + (l4len & ~3);
      let k = l4;
      for (; k < end4; k += 4) {
        const w = dv.getUint32(k);
        ov.setUint32(k, w);
        c += (w >>> 16) + (w & 0xffff);
      }
      if (l4len & 2) {
        const w = dv.getUint16(k);
        ov.setUint16(k, w);
        c += w;
        k += 2;
      }
      if (l4len & 1) {
        const w = dv.getUint8(k);
        ov.setUint8(k, w);
        c += w << 8;
      }
      c = (c & 0xffff) + (c >>> 16);
      c = (c & 0xffff) + (c >>> 16);
      if (c !== 0xffff && this.checksumOn && !(proto === PROTO_UDP && l4csum === 0)) return false;
    }
    // The ingress decision: the NAT slot reached directly from this ingress point for this
    // destination, if any (tables above the cache: processBatch's key pass made it, preHash —
    // same frame, same words — and the probe's start `at`).
    const ingress = batch.ingress[i];
    let at = PF_FAR;
    let slot: number;
    let dst: number;
    if (j >= 0) {
      at = this.pfHome[j];
      if (at === PF_NONE) return false;
      slot = this.pfSlot[j];
      dst = this.pfDst[j] >>> 0;
      if (at === PF_NEW) {
        const t = this.tables;
        const k = this.pfEmpty[j];
        if (t.removals === this.pfRemovals && t.flow[t.fBase + k * t.fs] === 0) {
          t.noteMiss(this.pfHash[j], slot, proto, srcW, dst, portsW, k);
          return this.missed(slot, proto, srcW, dst, portsW);
        }
      }
    } else {
      const x = this.decision(ingress, dstW);
      if (x < 0) return false;
      dst = (dstW ^ this.rd[x + 3]) >>> 0;
      slot = this.rd[x + 2];
      if (slot === RD_LOCAL) slot = this.localSlot(dst);
      if (slot < 0) return false;
    }
    const tmo = proto === PROTO_TCP ? this.tmoEst : this.tmoUdpStream;
    this.pktLen = len;
    let nsrc: number;
    let ndst: number;
    let nports: number;
    let tdec: number;
    let egress: number;
    if (this.tables.fat) {
      // The 'line' layout: key, rewrite and expiry in one 32-byte entry (docs/core.md "Layouts").
      const t = this.tables;
      // The key pass's candidate slot first (exact: a key is in the table once); else the probe.
      let e = at >= 0 ? t.findEntryAt(at, slot, proto, srcW, dst, portsW) : -1;
      if (e < 0) e = t.findEntry(slot, proto, srcW, dst, portsW);
      if (e < 0) return this.missed(slot, proto, srcW, dst, portsW);
      const fl = t.flow;
      const fm = fl[e + FE_META];
      const r = (fl[e] & t.refMask) - 1;
      // Sessions behind security groups or ACLs take the record's path (its checks: recordFast).
      // So do sessions of an instance with a filter table (its counters: recordFast).
      if ((fm & FE_FAST) === 0 || this.aws !== null || (this.flt !== null && this.flt.slotOn[slot] !== 0)) {
        if (!this.recordFast(r >>> 2, r & 3, proto, ingress, ttl, now, tmo)) return false;
        nsrc = this.rSrc;
        ndst = this.rDst;
        nports = this.rPorts;
        tdec = this.rTdec;
        egress = this.rEgress;
      } else {
        if (now >= fl[e + FE_EXPIRY]) return false;
        const path = fm >>> FE_PATH_SHIFT;
        if ((path & 31) !== ingress) return false;
        tdec = (path >>> 10) & 3;
        if (tdec !== 0 && ttl <= tdec) return false;
        let to = tmo;
        if (proto === PROTO_TCP) {
          to = this.tcpAck(r >>> 2, r & 3, l4, tcpEnd);
          if (to < 0) return false;
        }
        fl[e + FE_EXPIRY] = now + to; // never shorter than before: tcpAck's 'line' rule
        egress = (path >>> 5) & 31;
        const a = fl[e + FE_ADDR];
        const pt = fl[e + FE_PORT];
        if ((fm & FE_SIDE_DST) !== 0) {
          nsrc = srcW;
          ndst = a;
          nports = ((portsW & 0xffff0000) | pt) >>> 0;
        } else {
          nsrc = a;
          ndst = dstW;
          nports = ((pt << 16) | (portsW & 0xffff)) >>> 0;
        }
      }
    } else {
      // The key pass's candidate slot first (exact: a key is in the table once, so a slot that
      // holds it is the one the probe would find); else the probe from the home.
      let local = at >= 0 ? this.tables.findAt(at, slot, proto, srcW, dst, portsW) : -1;
      if (local < 0) local = this.tables.lookup(slot, proto, srcW, dst, portsW);
      if (local < 0) return this.missed(slot, proto, srcW, dst, portsW);
      if (!this.recordFast(local, this.tables.hitKind, proto, ingress, ttl, now, tmo)) return false;
      nsrc = this.rSrc;
      ndst = this.rDst;
      nports = this.rPorts;
      tdec = this.rTdec;
      egress = this.rEgress;
    }
    // Rewrite the IPv4 header into the output arena (the L4 bytes were copied above).
    ov.setUint32(off, w0);
    ov.setUint32(off + 4, w1);
    const addrD =
      ((~srcW >>> 16) & 0xffff) +
      (~srcW & 0xffff) +
      ((~dstW >>> 16) & 0xffff) +
      (~dstW & 0xffff) +
      (nsrc >>> 16) +
      (nsrc & 0xffff) +
      (ndst >>> 16) +
      (ndst & 0xffff);
    // IP header checksum: addresses + TTL (−k on the TTL/proto word is the constant ~(k << 8)).
    let ipd = tdec !== 0 ? addrD + 0xffff - (tdec << 8) : addrD;
    ipd = (ipd & 0xffff) + (ipd >>> 16);
    ipd = (ipd & 0xffff) + (ipd >>> 16);
    let ic = (~w2 & 0xffff) + ipd;
    ic = (ic & 0xffff) + (ic >>> 16);
    ic = (ic & 0xffff) + (ic >>> 16);
    ov.setUint32(off + 8, (((ttl - tdec) << 24) | (proto << 16) | (~ic & 0xffff)) >>> 0);
    ov.setUint32(off + 12, nsrc);
    ov.setUint32(off + 16, ndst);
    ov.setUint32(l4, nports);
    if (!(proto === PROTO_UDP && l4csum === 0)) {
      let d = addrD + ((~portsW >>> 16) & 0xffff) + (~portsW & 0xffff) + (nports >>> 16) + (nports & 0xffff);
      d = (d & 0xffff) + (d >>> 16);
      d = (d & 0xffff) + (d >>> 16);
      let c = (~l4csum & 0xffff) + d;
      c = (c & 0xffff) + (c >>> 16);
      c = (c & 0xffff) + (c >>> 16);
      c = ~c & 0xffff;
      if (proto === PROTO_UDP && c === 0) c = 0xffff;
      ov.setUint16(csumOff, c);
    }
    const slotOut = i * OUT_SLOTS;
    out.outOff[slotOut] = off;
    out.outLen[slotOut] = len;
    out.outEgress[slotOut] = egress;
    out.result[i] = RES_FAST;
    return true;
  }
}
