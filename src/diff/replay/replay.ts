// `natlab replay`: streams a capture through one or more engines, writes what leaves each egress
// point per engine, compares the engines packet by packet and explains every difference.
//
// A packet's whole path is in this file, in one loop over chunks (runReplay, "the loop" below):
//
//   read    records are taken from the reader in bulk and prepared into an InputChunk (input.ts):
//           link header stripped, ingress decided, the frame copied once into a shared arena,
//           flow keys as numbers; no object, promise or string per record.
//   feed    each engine gets the chunk's FrameBatch (docs/frame-batch.md) and answers in its own
//           BatchOutput (feedEngine): one hand-over per chunk; one-sided captures re-address the
//           far side's frames to the mapping the engine made for their flow (remap.ts,
//           flow-table.ts), handing over a range up to a reply whose mapping is not known yet.
//   account per record and engine, from the packed result word: counters, comparison of the
//           engines (compare/compare.ts), stories for the sinks, outputs written straight from
//           the engines' arenas to the capture files (sinks/outputs.ts) — accountChunk.
//
// Double buffering: while the engines work on chunk N, the main thread accounts chunk N-1 and
// reads chunk N+1 (two InputChunks, two BatchOutputs per engine, alternating).
//
// Streaming with bounded memory: per packet only counters survive a chunk, plus the first K
// differences and re-addressing examples. The one structure that grows with the capture is each
// engine's table of learned flow mappings (one-sided captures), capped (FIFO eviction, counted).
import { stat } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIpv4 } from '../../packet/addr.ts';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  isIcmpErrorType,
  linkTypeName,
} from '../../packet/constants.ts';
import { describePacket } from '../../packet/format.ts';
import { PacketView, parseIpv4, PARSE_OK } from '../../packet/parse.ts';
import { openCapture } from '../../pcap/reader.ts';
import type { CaptureReader, RecordSink } from '../../pcap/types.ts';
import type { Engine, InputPacket, NatRuleCounter, OutputFrame, PacketResult } from '../../spec/engine.ts';
import { InputError } from '../../spec/errors.ts';
import {
  type BatchOutput,
  createBatchOutput,
  createFrameBatch,
  errorBase,
  type FrameBatch,
  OUT_SLOTS,
  outArenaBytes,
  packResult,
  RES_DROPPED,
  resultCt,
  resultDetail,
  resultFate,
  resultOutCount,
  resultReason,
} from '../../spec/frame-batch.ts';
import { CT_NAMES, CT_NEW, FATE_DELIVERED, reasonName } from '../../spec/reasons.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { POINT_INTERNET, instancePoint, pointName } from '../../spec/scenario.ts';
import {
  compareConntrack,
  comparePacket,
  PortRenaming,
  timingNote,
  timingTolerance,
  withoutKnown,
  type OutputNormaliser,
  type PacketCompareContext,
} from '../compare/compare.ts';
import { makeEngine, type EngineName } from '../engines.ts';
import { IngressMap, INGRESS_NOWHERE } from './ingress.ts';
import { FLOW_IN, FLOW_OUT, FramePreparer, InputChunk, STAGE_BYTES } from './input.ts';
import { SharedMemoryPool } from '../../spec/shared-memory.ts';
import { ICMP_ERROR_MAX_LEN } from '../../spec/timeouts.ts';
import { STAGED_POOL_BYTES } from '../../pcap/staged-file.ts';
import { ReplayTimeline } from './timeline.ts';
import { DIR_IN as FAILOVER_DIR_IN, DIR_OUT as FAILOVER_DIR_OUT } from './failover.ts';
import { FlowTable, PendingFlows } from './flow-table.ts';
import { flowKey } from './remap.ts';
import {
  insidePortOf,
  insidePortRawAt,
  mappingAddr,
  mappingPort,
  readdressAt,
  readdressRawAt,
  translatedSource,
} from '../../packet/readdress.ts';
import {
  createReaddressPlan,
  PLAN_HOW_CHAIN,
  PLAN_HOW_FALLBACK,
  PLAN_NONE,
  PLAN_PARSED,
  PLAN_READDRESS,
  type ReaddressPlan,
} from '../../spec/readdress-plan.ts';
import type { EngineSummary, ReaddressExample, ReplayDifference, ReplayFrameRef, ReplayReport } from './report.ts';
import { rd16 } from '../../packet/bytes.ts';
import {
  engineComment,
  inputComment,
  type PacketSink,
  type PacketStory,
  type StoryDifference,
} from '../sinks/annotate.ts';
import { InputCapture, INPUT_CAPTURE_FILE } from '../sinks/input-capture.ts';
import { OutputSet } from '../sinks/outputs.ts';

export { ROUTER_MAC, pointMac, outputFileName, engineCaptureName } from '../sinks/outputs.ts';

export const DEFAULT_CHUNK = 4096;
export const DEFAULT_MAX_DIFFERENCES = 20;
export const DEFAULT_MAX_EXAMPLES = 20;
/** Learned flow mappings kept per engine (twice Linux's default nf_conntrack_max). */
export const DEFAULT_MAPPING_CAP = 524288;
/**
 * Bytes per read of the capture: 1 MiB (fewer reads and read-edge joins than the reader's default
 * 256 KiB: main thread 4-10 % less, Round eight); a chunk's staging room holds one.
 */
const READ_BYTES = STAGE_BYTES;
/** Arena bytes per record a chunk starts with (it grows when a chunk's frames need more). */
const ARENA_BYTES_PER_RECORD = 1024;

export type EngineFactory = (
  name: string,
  scenario: Scenario,
  opts: { seed?: number; workers?: number; layout?: string; extra?: Record<string, unknown> },
) => Promise<Engine>;

export interface ReplayOptions {
  /** Capture to replay (pcap or pcapng). */
  input: string;
  /** Directory for DIR/<engine>/<point>.pcap and report.json; null = write nothing. */
  outDir: string | null;
  scenario: Scenario;
  /** One line saying how the scenario was chosen (printed and saved). */
  scenarioHow: string;
  engines: string[];
  workers?: number;
  /** Core: table layout (EngineOptions.layout). */
  layout?: string;
  seed?: number;
  /** Stop after this many records. */
  limit?: number;
  chunkSize?: number;
  maxDifferences?: number;
  maxExamples?: number;
  mappingCap?: number;
  /** Output link type: Ethernet (default; synthetic stable MACs) or raw IP (101). */
  outputLinkType?: number;
  /**
   * 'pcap' (default): DIR/<engine>/<point>.pcap. 'pcapng': annotated captures, DIR/<engine>.pcapng
   * (one interface per egress point plus "dropped", a comment per packet: its story) and
   * DIR/input.pcapng (every input with its fate on every engine).
   */
  outputFormat?: 'pcap' | 'pcapng';
  /** Per-packet consumers of every input's story (JUnit per flow, the HTML report). */
  sinks?: PacketSink[];
  /** Keep every per-packet result (corpus files); only for small captures. */
  keepResults?: boolean;
  /** Called after every chunk: records done, input bytes consumed, file size. */
  onProgress?: (records: number, bytes: number, total: number) => void;
  /** Extra factory options per engine name (e.g. kernel: { timeMode: 'compress' }). */
  engineExtra?: Record<string, Record<string, unknown>>;
  /** false: a single engine's outputs go straight into outDir (natlab kernel) instead of outDir/<engine>/. */
  engineDirs?: boolean;
  /** Per-point pcap file names (default outputFileName: internet.pcap, <instance>-<private ip>.pcap). */
  outputFileName?: (s: Scenario, point: number) => string;
  /**
   * false: far-side frames addressed to a private address are fed as captured (natlab kernel:
   * the kernel as it is); default true: re-addressed to each engine's mapping (one-sided captures).
   */
  readdress?: boolean;
  /**
   * true (default): an engine that takes re-addressing plans (Engine.readdressPlans: the core with
   * one worker) re-addresses a reply whose mapping an earlier packet of the chunk makes itself, in
   * the chunk's one hand-over; false: replay re-addresses every frame, handing the chunk over up to
   * each such reply (tests compare the two).
   */
  readdressInEngine?: boolean;
  /** Called with the engines after the last packet, before they are closed (engine-specific dumps). */
  beforeClose?: (engines: readonly Engine[]) => Promise<void>;
  /** Engine construction (tests); default makeEngine. */
  engineFactory?: EngineFactory;
  /**
   * Timeline events applied mid-stream, in time order: before the first fed packet whose
   * timestamp is at or after `timeUs`, each engine gets everything before it handed over, then
   * the event (see applyEventsBefore in the loop); events after the last packet are applied
   * after it, before the end-of-run tables.
   */
  events?: readonly ReplayEvent[];
}

/** A change applied to every engine at a point in capture time (e.g. a scenario event). */
export interface ReplayEvent {
  timeUs: number;
  apply(engine: Engine, name: string): Promise<void>;
}

/** One kept per-packet result (results.json of a corpus entry). */
export interface KeptResult {
  input: number;
  ingress: string;
  fate: string;
  reason: string;
  detail: number;
  ct: string;
  /** How the frame fed to this engine was re-addressed: '' | 'flow' | 'elastic-ip' | 'unmapped'. */
  readdressed: string;
  outputs: Array<{ egress: string; n: number; frame: string }>;
}

export interface ReplayOutcome {
  report: ReplayReport;
  /** Per engine, every packet's result (keepResults only). */
  kept: Record<string, KeptResult[]> | null;
  /** Per engine, every packet's raw result and the frame it was fed (keepResults only). */
  keptRaw: Record<
    string,
    Array<{ fed: Uint8Array | null; timeUs: number; ingress: number; result: PacketResult }>
  > | null;
}

/** How a far-side frame fed to an engine was re-addressed (per record; HOW_TEXT names them). */
const HOW_NONE = 0;
const HOW_FLOW = 1;
const HOW_ELASTIC_IP = 2;
const HOW_UNMAPPED = 3;
const HOW_TEXT = ['', 'flow', 'elastic-ip', 'unmapped'];

/**
 * An engine's buffers for one of the two alternating chunks. What it answered is read from the
 * packed result words; the outputs from its BatchOutput (engines with processFrames: the core) or
 * from its PacketResult objects (engines with process() only: the model, the kernel, test engines
 * — the objects are kept and used as they are).
 */
interface EngineIo {
  /** The batch the engine reads: the chunk's own, or this engine's copy when it re-addresses frames. */
  batch: FrameBatch;
  /** Its own copy (allocated when first needed, re-made when the chunk's batch grows). */
  copy: FrameBatch | null;
  /** processFrames engines: their output (null for the others). */
  out: BatchOutput | null;
  /** Packed result word per fed frame (out.result, or filled from the objects). */
  result: Uint32Array;
  /** process() engines: the results by fed frame. */
  results: PacketResult[];
  /** The chunk batch `out` was sized for. */
  sizedFor: FrameBatch | null;
  /** Per record: how it was re-addressed (HOW_*). */
  how: Uint8Array;
  /** The re-addressing plan handed over with the batch (engines with readdressPlans), when used. */
  plan: ReaddressPlan | null;
}

/** A reply re-addressed by the engine (a plan): decided after the hand-over. */
interface PlannedReply {
  k: number;
  j: number;
  /** HOW_* when the engine uses the fallback mapping. */
  fallbackHow: number;
  /** Its re-addressing example (filled after the hand-over), or null. */
  example: ReaddressExample | null;
}

/** Per-engine state of a run. */
class EngineRunState {
  readonly mappings: FlowTable;
  readonly pending: PendingFlows;
  readonly summary: EngineSummary;
  readonly io: EngineIo[];
  /** First re-addressing examples of this engine. */
  readonly examples: ReaddressExample[] = [];
  readonly kept: KeptResult[] | null;
  readonly keptRaw: Array<{ fed: Uint8Array | null; timeUs: number; ingress: number; result: PacketResult }> | null;
  readonly normaliser: OutputNormaliser | undefined;
  /** Counters by code (turned into named records at the end: no string keys per packet). */
  readonly byReason = new Float64Array(256);
  readonly byCt = new Float64Array(8);
  /** A flow idle this long may have lost its conntrack entry (the scenario's shortest timeout). */
  readonly mappingStaleUs: number;
  readonly zeroCopy: boolean;
  /** Index of the next timeline event this engine has not had yet (ReplayOptions.events). */
  nextEvent = 0;
  /** The replies of the chunk being fed that the engine re-addresses (a plan). */
  readonly planned: PlannedReply[] = [];

  constructor(
    readonly name: string,
    readonly engine: Engine,
    readonly out: OutputSet,
    mappingCap: number,
    chunk: number,
    keep: boolean,
    normaliser: OutputNormaliser | undefined,
  ) {
    this.mappings = new FlowTable(mappingCap);
    this.pending = new PendingFlows(chunk);
    this.kept = keep ? [] : null;
    this.keptRaw = keep ? [] : null;
    this.normaliser = normaliser;
    this.zeroCopy = typeof engine.processFrames === 'function';
    this.mappingStaleUs = Math.min(...Object.values(out.scenario.conntrack.timeouts)) * 1e6;
    const placeholder = createFrameBatch(1, 8);
    this.io = [0, 1].map(() => ({
      batch: placeholder,
      copy: null,
      out: null,
      result: new Uint32Array(chunk),
      results: [],
      sizedFor: null,
      how: new Uint8Array(chunk),
      plan: null,
    }));
    this.summary = {
      engine: name,
      packetsIn: 0,
      delivered: 0,
      dropped: 0,
      droppedByReason: {},
      translated: 0,
      sessionsCreated: 0,
      ct: {},
      outputs: {},
      generated: 0,
      readdressed: { flow: 0, elasticIp: 0, unmapped: 0 },
      mappingsEvicted: 0,
      conntrackAtEnd: null,
      engineMs: 0,
    };
  }
}

function bump(o: Record<string, number>, k: string, by = 1): void {
  o[k] = (o[k] ?? 0) + by;
}

/** True if an output's addresses or ports (ICMP query id) differ from the input's. */
export function tupleChanged(input: Uint8Array, out: Uint8Array): boolean {
  return tupleChangedAt(input, 0, input.length, out, 0, out.length);
}

/** tupleChanged for frames where they lie: a[ao, ao + al) and b[bo, bo + bl). */
function tupleChangedAt(a: Uint8Array, ao: number, al: number, b: Uint8Array, bo: number, bl: number): boolean {
  if (al < 20 || bl < 20) return false;
  for (let i = 12; i < 20; i++) if (a[ao + i] !== b[bo + i]) return true;
  if (a[ao + 9] !== b[bo + 9]) return false;
  const ia = (a[ao] & 15) << 2;
  const oa = (b[bo] & 15) << 2;
  const proto = a[ao + 9];
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    if (al < ia + 4 || bl < oa + 4) return false;
    return rd16(a, ao + ia) !== rd16(b, bo + oa) || rd16(a, ao + ia + 2) !== rd16(b, bo + oa + 2);
  }
  if (proto === PROTO_ICMP && al >= ia + 6 && bl >= oa + 6) {
    if (isIcmpErrorType(a[ao + ia])) {
      // the quoted packet's addresses
      for (let i = 12; i < 20; i++) if (a[ao + ia + 8 + i] !== b[bo + oa + 8 + i]) return true;
      return false;
    }
    return rd16(a, ao + ia + 4) !== rd16(b, bo + oa + 4);
  }
  return false;
}

/** An ICMP error among the outputs of an input that was not an ICMP error: built by the engine. */
function isGeneratedAt(a: Uint8Array, ao: number, al: number, b: Uint8Array, bo: number, bl: number): boolean {
  const oa = (b[bo] & 15) << 2;
  if (bl < oa + 1 || b[bo + 9] !== PROTO_ICMP || !isIcmpErrorType(b[bo + oa])) return false;
  const ia = (a[ao] & 15) << 2;
  return !(al > ia && a[ao + 9] === PROTO_ICMP && isIcmpErrorType(a[ao + ia]));
}

function describeFrame(f: Uint8Array): string {
  try {
    return describePacket(f);
  } catch {
    return `${f.length} bytes`;
  }
}

/** Conntrack entries created, from the nat table's per-rule connection counters. */
export function sessionsFromCounters(counters: readonly NatRuleCounter[]): number {
  let n = 0;
  for (const c of counters) if (c.chain === 'POSTROUTING' || c.chain === 'INPUT') n += c.packets;
  return n;
}

/**
 * The shared memory a run starts with: two chunks (staging room and arena), two outputs per
 * engine, and the output files' staging buffers; it grows when a chunk's frames need more.
 */
function poolBytes(chunk: number, engines: number, points: number): number {
  const arena = chunk * ARENA_BYTES_PER_RECORD;
  const reader = 6 * (READ_BYTES + (64 << 10));
  return (
    reader +
    2 * (STAGE_BYTES + arena) +
    engines * (2 * (arena + ICMP_ERROR_MAX_LEN * chunk) + points * STAGED_POOL_BYTES)
  );
}

/** Lets queued work (an engine's hand-over) run before a long synchronous stretch. */
function nextTick(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** Runs the replay. Throws InputError only when the capture cannot be opened at all. */
export async function runReplay(opts: ReplayOptions): Promise<ReplayOutcome> {
  const t0 = performance.now();
  const s = opts.scenario;
  const chunk = Math.max(1, opts.chunkSize ?? DEFAULT_CHUNK);
  const maxDiffs = opts.maxDifferences ?? DEFAULT_MAX_DIFFERENCES;
  const maxEx = opts.maxExamples ?? DEFAULT_MAX_EXAMPLES;
  const limit = opts.limit ?? Infinity;
  const linkType = opts.outputLinkType ?? LINKTYPE_ETHERNET;
  if (linkType !== LINKTYPE_ETHERNET && linkType !== LINKTYPE_RAW)
    throw new InputError(`output link type ${linkType} not supported (Ethernet 1 or raw IP 101)`);
  if (opts.engines.length === 0) throw new InputError('no engine to replay through');
  const factory: EngineFactory = opts.engineFactory ?? ((name, sc, o) => makeEngine(name as EngineName, sc, o));

  const annotate = opts.outputFormat === 'pcapng' && opts.outDir !== null;
  // Records are copied into the chunk as they are read, unless the annotated input capture keeps them.
  // The chunks' arenas, the engines' output arenas, the output files' staging buffers and the
  // reader's buffers, in one shared memory with a real memmove (spec/shared-memory.ts): no relaxed
  // byte copies per frame, no staging copy of what is read.
  const pool = SharedMemoryPool.create(poolBytes(chunk, opts.engines.length, s.instances.length + 1));
  const reader: CaptureReader = await openCapture(opts.input, { reuseBuffers: !annotate, pool, chunkSize: READ_BYTES });
  let fileSize = 0;
  try {
    fileSize = (await stat(opts.input)).size;
  } catch {
    /* size only drives the progress bar */
  }
  const ingress = new IngressMap(s);
  const prep = new FramePreparer(ingress);
  const states: EngineRunState[] = [];
  let peakRss = process.memoryUsage.rss();
  /** Start of the packet phase (after the engines are built): the throughput line's clock. */
  let tRun = t0;
  let readError: string | null = null;
  let limited = false;
  const diffs: ReplayDifference[] = [];
  let diffCount = 0;
  let diffPackets = 0;
  const conntrackDiffs: string[] = [];
  const notes: string[] = [];
  const pairs: Array<[string, string]> = [];
  const contexts: PacketCompareContext[] = [];
  const sinks = opts.sinks ?? [];
  const events: ReplayEvent[] = [...(opts.events ?? [])];
  const readdress = opts.readdress !== false;
  const planning = opts.readdressInEngine !== false;
  for (let k = 1; k < events.length; k++)
    if (events[k].timeUs < events[k - 1].timeUs) throw new Error('replay events must be in time order');
  const stories = annotate || sinks.length > 0;
  const keep = opts.keepResults ?? false;
  let inputCapture: InputCapture | null = null;
  /** Differences the engines classified as documented known ones, by class. */
  const known = new Map<string, number>();
  const pv = new PacketView();
  const pvOut = new PacketView();
  // Scenario timeline (timeline.ts): its events join `events` once the first record's time is known.
  const timeline = new ReplayTimeline(s, opts.engines);
  try {
    if (opts.outDir !== null) await mkdir(opts.outDir, { recursive: true });
    if (annotate) inputCapture = await InputCapture.open(join(opts.outDir!, INPUT_CAPTURE_FILE), s, opts.input);
    for (const name of opts.engines) {
      const engine = await factory(name, s, {
        seed: opts.seed ?? 1,
        workers: opts.workers,
        layout: opts.layout,
        extra: opts.engineExtra?.[name],
      });
      if (opts.engineDirs === false && opts.engines.length !== 1)
        throw new Error('engineDirs: false needs exactly one engine');
      const out = await OutputSet.open(
        name,
        s,
        linkType,
        opts.outDir,
        annotate ? 'pcapng' : 'pcap',
        opts.engineDirs !== false,
        opts.outputFileName,
        pool,
      );
      states.push(
        new EngineRunState(
          name,
          engine,
          out,
          opts.mappingCap ?? DEFAULT_MAPPING_CAP,
          chunk,
          keep,
          engine.outputNormaliser,
        ),
      );
    }
    for (let k = 1; k < states.length; k++) {
      pairs.push([states[0].name, states[k].name]);
      contexts.push({
        names: [states[0].name, states[k].name],
        renaming: new PortRenaming(s),
        scenario: s,
        normaliserA: states[0].normaliser,
        normaliserB: states[k].normaliser,
        engineA: states[0].engine,
        engineB: states[k].engine,
        known,
      });
    }
    for (const st of states) {
      const d = st.normaliser?.description;
      if (d) notes.push(d.startsWith(`${st.name}:`) ? d : `${st.name}: ${d}`);
    }
    // Engines get their own copy of a chunk's frames when they re-address some: several engines
    // (each its own mappings), or when the captured frame is still needed (stories, kept results).
    const privateCopies = states.length > 1 || stories || keep;
    const zeroCopyStates = states.filter((st) => st.zeroCopy);
    const objectStates = states.filter((st) => !st.zeroCopy);
    tRun = performance.now();

    // ---- the loop ------------------------------------------------------------------------------
    const chunks = [0, 1].map(() => new InputChunk(chunk, chunk * ARENA_BYTES_PER_RECORD, annotate, pool));
    let bytes = 24;
    let engineError: string | null = null;

    /** Reads up to `chunk` records into c: in bulk, where they lie in the reader's buffers. */
    const sink = new ChunkSink(prep);
    const fill = async (c: InputChunk): Promise<void> => {
      c.reset();
      sink.chunk = c;
      while (c.count < chunk) {
        const room = Math.min(chunk - c.count, limit - prep.counters.records);
        try {
          if (room <= 0) {
            // At the limit: is there a record beyond it?
            if ((await reader.readInto(DISCARD, 1)) > 0) c.limited = true;
            c.end = true;
            return;
          }
          if (annotate) {
            // The annotated input capture copies the records themselves: take them as objects.
            let rec = reader.nextQueued();
            rec ??= await reader.next();
            if (rec === null) {
              c.end = true;
              return;
            }
            c.bytes += 16 + rec.data.length;
            prep.prepareInto(rec, c);
          } else if ((await reader.readInto(sink, room)) === 0) {
            c.end = true;
            return;
          }
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          c.readError = e.message;
          c.end = true;
          return;
        }
      }
    };

    /** Feeds chunk c to every engine (io slot q); resolves false when an engine refused it. */
    const feed = async (c: InputChunk, q: number): Promise<boolean> => {
      // Engines on worker threads get their hand-over first; then those that compute on this thread.
      const running = zeroCopyStates.map((st) => feedEngine(st, c, q));
      if (running.length > 0 && objectStates.length > 0) await nextTick();
      for (const st of objectStates) running.push(feedEngine(st, c, q));
      const settled = await Promise.allSettled(running);
      for (const r of settled) {
        if (r.status === 'fulfilled') continue;
        const e = r.reason;
        if (!(e instanceof InputError)) throw e;
        engineError ??= `${e.message} (replay stopped in the chunk starting at input #${c.n[0]}; the report covers the packets before it)`;
        return false;
      }
      return true;
    };

    /**
     * One engine, one chunk. Far-side frames addressed to a private address are re-addressed to
     * this engine's mapping; a frame whose flow has an outbound packet pending in the range not yet
     * handed over (and no fresh mapping) first hands that range over, so the mapping is learned
     * before the reply is addressed.
     */
    const feedEngine = async (st: EngineRunState, c: InputChunk, q: number): Promise<void> => {
      const io = st.io[q];
      const src = c.batch;
      const fedCount = src.count;
      let eb = src;
      if (c.toPrivate > 0 && privateCopies) {
        eb = copyBatch(io, src, c.used);
      }
      io.batch = eb;
      sizeOutput(st, io, src, pool);
      const how = io.how;
      how.fill(HOW_NONE, 0, c.count);
      const pending = st.pending;
      const table = st.mappings;
      pending.clear();
      // A reply whose mapping an earlier packet of this chunk makes: re-addressed by the engine
      // itself in the hand-over (a plan) when it can, else by handing the chunk over up to it.
      const plan =
        planning &&
        st.engine.readdressPlans === true &&
        io.out !== null &&
        readdress &&
        c.toPrivate > 0 &&
        events.length === 0
          ? planFor(io, src)
          : null;
      if (plan !== null) plan.mode.fill(PLAN_NONE, 0, fedCount);
      st.planned.length = 0;
      let from = 0;
      const handOver = async (end: number): Promise<void> => {
        if (end > from) await runRange(st, c, io, from, end, plan);
        from = end;
        pending.clear();
      };
      // Timeline events: everything before the event's time handed over, then the event applied.
      const applyEventsBefore = async (j: number, timeUs: number): Promise<void> => {
        while (st.nextEvent < events.length && events[st.nextEvent].timeUs <= timeUs) {
          await handOver(j);
          await events[st.nextEvent++].apply(st.engine, st.name);
        }
      };
      const eventDue =
        st.nextEvent < events.length && c.count > 0 && events[st.nextEvent].timeUs <= c.timeUs[c.count - 1];
      if ((c.toPrivate > 0 && readdress) || eventDue) {
        const arena = eb.arena;
        for (let k = 0; k < c.count; k++) {
          const j = c.fed[k];
          if (j < 0) continue;
          if (st.nextEvent < events.length && events[st.nextEvent].timeUs <= c.timeUs[k])
            await applyEventsBefore(j, c.timeUs[k]);
          const inst = readdress ? c.remap[k] : -1;
          const flow = c.flow[k];
          if (inst >= 0) {
            let e = -1;
            let inEngine = false;
            if (flow === FLOW_IN) {
              const t = pending.get(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k]);
              e = table.find(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k]);
              if (t >= 0) {
                // Hand over first when a pending outbound packet of this flow may create or change
                // its mapping: no mapping yet, or the flow idle long enough that its entry may have expired.
                const last = e < 0 ? -1 : table.lastUs(e);
                // (or a timeline event between may have changed it: a route swap, a stopped instance).
                if (last < 0 || t - last >= st.mappingStaleUs || timeline.crossesEvent(last, t)) {
                  if (plan !== null) inEngine = true;
                  else {
                    await handOver(j);
                    e = table.find(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k]);
                  }
                }
              }
            }
            const m = e >= 0 ? table.mapping(e) : -1;
            const instance = s.instances[inst];
            const off = eb.off[j];
            const len = eb.len[j];
            const before = st.examples.length < maxEx ? describeFrame(c.frame(j)) : '';
            parseIpv4(arena, off, len, pv);
            const ok = pv.status === PARSE_OK;
            // Frames that do not parse fully (cut by the snapshot length, ...) are re-addressed in the
            // fields that were captured; the engines then drop or mark them for what they are.
            const raw = !ok && flow === FLOW_IN;
            if (inEngine && (ok || raw)) {
              // The engine takes the mapping from the latest of the flow's packets before it that
              // shows one (what handing over up to here would have learned), else this fallback.
              let fbHow = HOW_UNMAPPED;
              let fbAddr = 0;
              let fbPort = -1;
              if (m >= 0) {
                fbHow = HOW_FLOW;
                fbAddr = mappingAddr(m);
                fbPort = mappingPort(m);
              } else if (instance.elasticIp !== null) {
                fbHow = HOW_ELASTIC_IP;
                fbAddr = instance.elasticIp;
                fbPort = ok ? insidePortOf(pv) : insidePortRawAt(arena, off, len);
              }
              plan!.mode[j] = PLAN_READDRESS;
              plan!.flags[j] = ok ? PLAN_PARSED : 0;
              plan!.from[j] = pending.lastIndex(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k]);
              plan!.fbAddr[j] = fbAddr | 0;
              plan!.fbPort[j] = fbPort;
              let example: ReaddressExample | null = null;
              if (st.examples.length < maxEx) {
                example = { input: c.n[k], engine: st.name, how: '', from: before, to: '' };
                st.examples.push(example);
              }
              st.planned.push({ k, j, fallbackHow: fbHow, example });
              continue;
            }
            let h = HOW_UNMAPPED;
            if (m >= 0 && (ok || raw)) {
              if (ok) readdressAt(arena, off, pv, mappingAddr(m), mappingPort(m));
              else readdressRawAt(arena, off, len, mappingAddr(m), mappingPort(m));
              h = HOW_FLOW;
              st.summary.readdressed.flow++;
            } else if (instance.elasticIp !== null && (ok || raw)) {
              if (ok) readdressAt(arena, off, pv, instance.elasticIp, insidePortOf(pv));
              else readdressRawAt(arena, off, len, instance.elasticIp, insidePortRawAt(arena, off, len));
              h = HOW_ELASTIC_IP;
              st.summary.readdressed.elasticIp++;
            } else st.summary.readdressed.unmapped++;
            how[k] = h;
            if (st.examples.length < maxEx)
              st.examples.push({
                input: c.n[k],
                engine: st.name,
                how: HOW_TEXT[h],
                from: before,
                to: h === HOW_UNMAPPED ? '' : describeFrame(arena.subarray(off, off + len)),
              });
          }
          if (flow === FLOW_OUT) {
            const prev = pending.set(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k], c.timeUs[k], j);
            if (plan !== null) plan.prev[j] = prev;
          }
        }
      }
      await handOver(fedCount);
      // What the engine did with each planned reply.
      for (const r of st.planned) {
        const hw = plan!.how[r.j];
        const h = hw === PLAN_HOW_CHAIN ? HOW_FLOW : hw === PLAN_HOW_FALLBACK ? r.fallbackHow : HOW_UNMAPPED;
        how[r.k] = h;
        if (h === HOW_FLOW) st.summary.readdressed.flow++;
        else if (h === HOW_ELASTIC_IP) st.summary.readdressed.elasticIp++;
        else st.summary.readdressed.unmapped++;
        if (r.example !== null) {
          r.example.how = HOW_TEXT[h];
          const o = eb.off[r.j];
          if (h !== HOW_UNMAPPED) r.example.to = describeFrame(eb.arena.subarray(o, o + eb.len[r.j]));
        }
      }
      st.planned.length = 0;
    };

    /** Hands packets [from, end) of the engine's batch over, then learns the mappings they made. */
    const runRange = async (
      st: EngineRunState,
      c: InputChunk,
      io: EngineIo,
      from: number,
      end: number,
      plan: ReaddressPlan | null,
    ): Promise<void> => {
      const t = performance.now();
      if (io.out !== null)
        await (plan !== null
          ? st.engine.processFrames!(io.batch, io.out, from, end - from, plan)
          : st.engine.processFrames!(io.batch, io.out, from, end - from));
      else await processByObjects(st, io, from, end);
      st.summary.engineMs += performance.now() - t;
      const eb = io.batch;
      const table = st.mappings;
      const words = io.result;
      for (let j = from; j < end; j++) {
        const k = c.record[j];
        if (c.flow[k] !== FLOW_OUT) continue;
        const w = words[j];
        if ((w & RES_DROPPED) !== 0) continue;
        const e = table.find(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k]);
        if (resultCt(w) !== CT_NEW && e >= 0) {
          table.touch(e, c.timeUs[k]);
          continue;
        }
        // Learn the public mapping from the engine's output at the internet egress.
        parseIpv4(eb.arena, eb.off[j], eb.len[j], pv);
        const out = io.out;
        const outputs = out === null ? io.results[j].outputs : null;
        const n = outputs !== null ? outputs.length : resultOutCount(w);
        for (let x = 0; x < n; x++) {
          if (outputs !== null) {
            const o = outputs[x];
            if (o.egress !== POINT_INTERNET) continue;
            parseIpv4(o.frame, 0, o.frame.length, pvOut);
          } else {
            const slot = j * OUT_SLOTS + x;
            if (out!.outEgress[slot] !== POINT_INTERNET) continue;
            parseIpv4(out!.outArena, out!.outOff[slot], out!.outLen[slot], pvOut);
          }
          const m = translatedSource(pv, pvOut);
          if (m < 0) continue;
          table.set(c.kProto[k], c.kInside[k], c.kPorts[k], c.kRemote[k], mappingAddr(m), mappingPort(m), c.timeUs[k]);
          break;
        }
      }
    };

    /** Engines without processFrames: process() on copies of the frames; the results kept as they are. */
    const processByObjects = async (st: EngineRunState, io: EngineIo, from: number, end: number): Promise<void> => {
      const eb = io.batch;
      const packets: InputPacket[] = new Array(end - from);
      // Copies: such an engine may keep the frames it was given beyond the call.
      for (let j = from; j < end; j++)
        packets[j - from] = {
          timeUs: eb.timeUs[j],
          ingress: eb.ingress[j],
          frame: eb.arena.slice(eb.off[j], eb.off[j] + eb.len[j]),
        };
      const res = await st.engine.process(packets);
      if (res.length !== packets.length)
        throw new Error(`engine ${st.name} returned ${res.length} results for ${packets.length} packets`);
      for (let j = from; j < end; j++) {
        const r = res[j - from];
        io.results[j] = r;
        // The word's output count is informative only (these outputs are read from the objects).
        io.result[j] = packResult(r.fate, r.reason, r.detail, r.ct, Math.min(r.outputs.length, OUT_SLOTS));
      }
    };

    /** Results outlive their chunk (kept, or told as stories): their frames are copied out of the arenas. */
    const copyResults = keep || stories;
    /** The PacketResult of record k for engine st (cold paths: comparisons, stories, kept results). */
    const resultOf = (st: EngineRunState, c: InputChunk, q: number, k: number): PacketResult => {
      const j = c.fed[k];
      if (j < 0) return { fate: 1, reason: c.reason[k], detail: c.detail[k], ct: 0, outputs: [] };
      const io = st.io[q];
      const out = io.out;
      if (out === null) return io.results[j];
      const w = out.result[j];
      const n = resultOutCount(w);
      const outputs: OutputFrame[] = new Array(n);
      for (let x = 0; x < n; x++) {
        const slot = j * OUT_SLOTS + x;
        const off = out.outOff[slot];
        // Views for a comparison that ends within this chunk; copies when the result outlives it.
        const frame = copyResults
          ? out.outArena.slice(off, off + out.outLen[slot])
          : out.outArena.subarray(off, off + out.outLen[slot]);
        outputs[x] = { egress: out.outEgress[slot], frame };
      }
      return { fate: resultFate(w), reason: resultReason(w), detail: resultDetail(w), ct: resultCt(w), outputs };
    };

    /** The frame record k was fed to engine st as (a view), or null when not fed. */
    const fedOf = (st: EngineRunState, c: InputChunk, q: number, k: number): Uint8Array | null => {
      const j = c.fed[k];
      if (j < 0) return null;
      const b = st.io[q].batch;
      return b.arena.subarray(b.off[j], b.off[j] + b.len[j]);
    };

    /**
     * Every engine's PacketResult of record k. A function of its own: a closure over the loop's
     * `k` in accountChunk would give every iteration a context object of its own.
     */
    const allResults = (c: InputChunk, q: number, k: number): PacketResult[] =>
      states.map((st) => resultOf(st, c, q, k));

    /** Compares, counts and writes chunk c (io slot q), record by record in input order. */
    const accountChunk = async (c: InputChunk, q: number): Promise<void> => {
      const multi = states.length > 1;
      if (!multi && !stories && !keep && timeline.collector === null && states[0].io[q].out !== null) {
        // One processFrames engine, nothing told per packet: counts and outputs in one loop.
        accountBulk(states[0], c, q, pool);
        await states[0].out.drained();
        return;
      }
      for (let k = 0; k < c.count; k++) {
        const fedAt = c.fed[k];
        let results: PacketResult[] | null = null;
        const storyDiffs: StoryDifference[] | null = stories ? [] : null;
        if (multi && fedAt >= 0) {
          results = allResults(c, q, k);
          const a = states[0];
          const ra = results[0];
          const inputA: InputPacket = { timeUs: c.timeUs[k], ingress: c.ingress[k], frame: fedOf(a, c, q, k)! };
          let refs: Record<string, ReplayFrameRef[]> | null = null;
          let any = false;
          for (let e = 1; e < states.length; e++) {
            const d = comparePacket(c.n[k], inputA, ra, results[e], contexts[e - 1]);
            if (d.length === 0) continue;
            any = true;
            diffCount += d.length;
            if (storyDiffs)
              for (const x of d) storyDiffs.push({ kind: x.kind, engines: x.engines, message: x.message });
            for (const x of d) {
              if (diffs.length >= maxDiffs) break;
              refs ??= outputRefs(results);
              diffs.push({ input: c.n[k], kind: x.kind, engines: x.engines, message: x.message, outputs: refs });
            }
          }
          if (any) diffPackets++;
        }
        if (timeline.collector && fedAt >= 0 && (c.flow[k] === FLOW_OUT || c.flow[k] === FLOW_IN)) {
          results ??= allResults(c, q, k);
          for (let e = 0; e < states.length; e++)
            timeline.collector.observe(
              e,
              c.kProto[k],
              c.kInside[k],
              c.kPorts[k] >>> 16,
              c.kRemote[k],
              c.kPorts[k] & 0xffff,
              c.flow[k] === FLOW_OUT ? FAILOVER_DIR_OUT : FAILOVER_DIR_IN,
              c.timeUs[k],
              results[e],
            );
        }
        if (stories || keep) {
          results ??= allResults(c, q, k);
          for (let e = 0; e < states.length; e++) countOne(states[e], c, q, k, results[e], !stories);
          if (stories) await writeStory(c, q, k, results, storyDiffs!);
          continue;
        }
        for (let e = 0; e < states.length; e++) {
          const st = states[e];
          // processFrames engines: straight from their output columns; the others from their objects.
          const r = st.io[q].out !== null ? null : results !== null ? results[e] : resultOf(st, c, q, k);
          countOne(st, c, q, k, r, true);
        }
      }
      for (const st of states) await st.out.drained();
    };

    /**
     * Counts record k's result for one engine and, with `write`, writes its outputs: from the
     * engine's output columns when `r` is null (the bulk path: no object), else from `r`.
     */
    const countOne = (
      st: EngineRunState,
      c: InputChunk,
      q: number,
      k: number,
      r: PacketResult | null,
      write: boolean,
    ): void => {
      const sum = st.summary;
      const j = c.fed[k];
      if (j < 0) {
        // Not fed: the same verdict for every engine.
        sum.dropped++;
        st.byReason[c.reason[k] & 255]++;
        st.byCt[0]++;
        if (r && keep) keepOne(st, c, q, k, r, []);
        return;
      }
      const io = st.io[q];
      const eb = io.batch;
      const w = io.result[j];
      sum.packetsIn++;
      if ((w & RES_DROPPED) === 0) sum.delivered++;
      else {
        sum.dropped++;
        st.byReason[resultReason(w)]++;
      }
      st.byCt[resultCt(w) & 7]++;
      const fa = eb.arena;
      const fo = eb.off[j];
      const fl = eb.len[j];
      const keptOuts: KeptResult['outputs'] | null = st.kept ? [] : null;
      const writing = write && st.out.writing;
      if (r === null) {
        const out = io.out!;
        const oa = out.outArena;
        const n = resultOutCount(w);
        for (let x = 0; x < n; x++) {
          const slot = j * OUT_SLOTS + x;
          const off = out.outOff[slot];
          const len = out.outLen[slot];
          const egress = out.outEgress[slot];
          if (isGeneratedAt(fa, fo, fl, oa, off, len)) sum.generated++;
          st.out.next(egress);
          if (writing) st.out.writeOut(egress, c.timeUs, k, oa, off, len);
        }
        if (
          (w & RES_DROPPED) === 0 &&
          n > 0 &&
          tupleChangedAt(fa, fo, fl, oa, out.outOff[j * OUT_SLOTS], out.outLen[j * OUT_SLOTS])
        )
          sum.translated++;
        return;
      }
      const outs = r.outputs;
      for (let x = 0; x < outs.length; x++) {
        const o = outs[x];
        if (isGeneratedAt(fa, fo, fl, o.frame, 0, o.frame.length)) sum.generated++;
        const num = st.out.next(o.egress);
        keptOuts?.push({ egress: pointName(s, o.egress), n: num, frame: describeFrame(o.frame) });
        if (writing) st.out.write(o.egress, c.timeUs[k], o.frame);
      }
      if (
        (w & RES_DROPPED) === 0 &&
        outs.length > 0 &&
        tupleChangedAt(fa, fo, fl, outs[0].frame, 0, outs[0].frame.length)
      )
        sum.translated++;
      if (keep) keepOne(st, c, q, k, r, keptOuts);
    };

    const keepOne = (
      st: EngineRunState,
      c: InputChunk,
      q: number,
      k: number,
      r: PacketResult,
      keptOuts: KeptResult['outputs'] | null,
    ): void => {
      const fed = fedOf(st, c, q, k);
      st.keptRaw?.push({ fed: fed ? fed.slice() : null, timeUs: c.timeUs[k], ingress: c.ingress[k], result: r });
      if (st.kept) {
        st.kept.push({
          input: c.n[k],
          ingress: c.ingress[k] === INGRESS_NOWHERE ? 'nowhere' : pointName(s, c.ingress[k]),
          fate: r.fate === FATE_DELIVERED ? 'delivered' : 'dropped',
          reason: reasonName(r.reason),
          detail: r.detail,
          ct: CT_NAMES[r.ct] ?? String(r.ct),
          readdressed: HOW_TEXT[st.io[q].how[k]],
          outputs: keptOuts ?? [],
        });
      }
    };

    /** Stories: annotated captures (every engine's outputs and drops, and the input) and sinks. */
    const writeStory = async (
      c: InputChunk,
      q: number,
      k: number,
      results: PacketResult[],
      differences: StoryDifference[],
    ): Promise<void> => {
      const fedAt = c.fed[k];
      const story: PacketStory = {
        input: c.n[k],
        ingress: c.ingress[k] === INGRESS_NOWHERE ? -1 : c.ingress[k],
        differences,
        verdicts: states.map((st, e) => ({
          engine: st.name,
          result: results[e],
          readdressed: HOW_TEXT[st.io[q].how[k]],
        })),
        timeUs: c.timeUs[k],
        frame: fedAt < 0 ? null : c.frame(fedAt),
        flow:
          c.flow[k] === FLOW_OUT || c.flow[k] === FLOW_IN
            ? flowKey(c.kProto[k], c.kInside[k], c.kPorts[k] >>> 16, c.kRemote[k], c.kPorts[k] & 0xffff)
            : null,
      };
      for (const sink of sinks) sink.packet(story);
      if (annotate) {
        for (let e = 0; e < states.length; e++) {
          const st = states[e];
          const r = results[e];
          for (let x = 0; x < r.outputs.length; x++)
            st.out.write(r.outputs[x].egress, c.timeUs[k], r.outputs[x].frame, engineComment(s, story, st.name, x));
          const fed = fedOf(st, c, q, k);
          if (r.fate !== FATE_DELIVERED && fed)
            st.out.writeDropped(c.timeUs[k], fed, engineComment(s, story, st.name, -1));
        }
        const rec = c.recs?.[k];
        if (rec)
          await inputCapture!.write(
            story.ingress,
            rec.linkType,
            rec.tsSec,
            rec.tsNsec,
            rec.data,
            rec.origLen,
            inputComment(s, story),
          );
      }
      if (!annotate) {
        // Sinks without annotated captures: the per-point pcaps still get every output.
        for (let e = 0; e < states.length; e++) {
          const st = states[e];
          if (!st.out.writing) continue;
          for (const o of results[e].outputs) st.out.write(o.egress, c.timeUs[k], o.frame);
        }
      }
    };

    /** References of a packet's outputs (written after comparison: their numbers follow the counts). */
    const outputRefs = (results: PacketResult[]): Record<string, ReplayFrameRef[]> => {
      const refs: Record<string, ReplayFrameRef[]> = {};
      states.forEach((st, e) => {
        const outs = results[e].outputs;
        const ns = st.out.peek(outs.map((o) => o.egress));
        refs[st.name] = outs.map((o, x) => ({ file: st.out.ref(o.egress), n: ns[x] }));
      });
      return refs;
    };

    // Read chunk N+1 and account chunk N-1 while the engines work on chunk N.
    let q = 0;
    let cur = chunks[0];
    await fill(cur);
    if (cur.count > 0 && timeline.active) {
      // Scenario timeline events, in time order with any given ones (stable: given ones first on a tie).
      events.push(...timeline.begin(cur.timeUs[0]));
      events.sort((x, y) => x.timeUs - y.timeUs);
    }
    const commit = (c: InputChunk): void => {
      if (c.readError !== null) readError ??= c.readError;
      if (c.limited) limited = true;
    };
    commit(cur);
    let feeding: Promise<boolean> | null = cur.count > 0 ? feed(cur, q) : null;
    feeding?.catch(() => undefined);
    while (feeding !== null) {
      const next = chunks[q ^ 1];
      const before = prep.snapshot();
      if (!cur.end) await fill(next);
      else next.reset();
      if (!(await feeding)) {
        prep.restore(before); // the chunk read ahead is not replayed
        break;
      }
      commit(next);
      const nextFeeding = next.count > 0 ? feed(next, q ^ 1) : null;
      if (nextFeeding) {
        nextFeeding.catch(() => undefined);
        await nextTick(); // the hand-over of N+1 is posted before N is accounted
      }
      bytes += cur.bytes;
      await accountChunk(cur, q);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      opts.onProgress?.(prep.counters.records, bytes, fileSize);
      cur = next;
      q ^= 1;
      feeding = nextFeeding;
    }
    if (engineError !== null) readError = readError ?? engineError;
    // Timeline events after the last packet.
    if (engineError === null)
      for (const st of states)
        while (st.nextEvent < events.length) await events[st.nextEvent++].apply(st.engine, st.name);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    opts.onProgress?.(prep.counters.records, fileSize || bytes, fileSize);

    if (opts.beforeClose) await opts.beforeClose(states.map((st) => st.engine));
    // End of run: conntrack tables (one engine: only their size is reported).
    const tables = await Promise.all(
      states.map(async (st) => {
        try {
          if (states.length === 1 && st.engine.conntrackCount) {
            st.summary.conntrackAtEnd = await st.engine.conntrackCount();
            return null;
          }
          const t = await st.engine.conntrack();
          st.summary.conntrackAtEnd = t.length;
          return t;
        } catch {
          st.summary.conntrackAtEnd = null;
          return null;
        }
      }),
    );
    // Sessions created = conntrack entries made: the nat table sees only a connection's first
    // packet, at POSTROUTING (forwarded) or INPUT (delivered to the instance) — a retransmitted
    // SYN, also classified NEW, makes no second entry.
    await Promise.all(
      states.map(async (st) => {
        try {
          st.summary.sessionsCreated = sessionsFromCounters(await st.engine.natCounters());
        } catch {
          st.summary.sessionsCreated = null;
        }
        if (st.engine.natGatewayCounters && (opts.scenario.natGateways ?? []).length > 0) {
          const gws: Record<string, Record<string, number>> = {};
          for (const g of await st.engine.natGatewayCounters()) gws[g.name] = g.metrics;
          st.summary.natGateways = gws;
        }
      }),
    );
    for (let k = 1; k < states.length; k++) {
      const ta = tables[0];
      const tb = tables[k];
      if (!ta || !tb) continue;
      const ctx = contexts[k - 1];
      const ds = compareConntrack(ta, tb, ctx.names, ctx.renaming, timingTolerance(ctx.engineA, ctx.engineB));
      for (const d of withoutKnown(ctx, ds)) conntrackDiffs.push(`${d.engines[0]} vs ${d.engines[1]}: ${d.message}`);
      const ren = ctx.renaming;
      if (ren.renamed)
        notes.push(
          `${ren.renamed} port/id choice(s) renamed ${states[0].name}->${states[k].name}: ${ren.describe(5).join('; ')}`,
        );
      const tn = timingNote(states[0].engine, states[k].engine);
      if (tn) notes.push(tn);
    }
    for (const [cls, n] of known) notes.push(`known difference (${cls}): ${n}`);
  } finally {
    await reader.close();
    await inputCapture?.close().catch(() => undefined);
    for (const st of states) {
      await st.out.close().catch(() => undefined);
      await st.engine.close().catch(() => undefined);
    }
  }

  const c = prep.foldStatus();
  for (const st of states) {
    st.summary.mappingsEvicted = st.mappings.evicted;
    st.byReason.forEach((v, code) => v && bump(st.summary.droppedByReason, reasonName(code), v));
    st.byCt.forEach((v, code) => v && bump(st.summary.ct, CT_NAMES[code] ?? `ct-${code}`, v));
    for (let p = 0; p <= s.instances.length; p++)
      st.summary.outputs[pointName(s, p)] = { file: st.out.ref(p), frames: st.out.counts[p] };
    if (st.out.clampedTs)
      notes.push(
        `${st.name}: ${st.out.clampedTs} output timestamps beyond 2106 clamped (classic pcap holds 32-bit seconds)`,
      );
  }
  const wallMs = performance.now() - t0;
  const runMs = performance.now() - tRun;
  const agree = diffCount === 0 && conntrackDiffs.length === 0;
  const exitCode = readError !== null ? 2 : agree ? 0 : 1;
  const report: ReplayReport = {
    tool: 'natlab replay',
    version: 1,
    input: {
      path: opts.input,
      format: reader.info.format,
      linkTypes: reader.info.linkTypes.map((t) => `${linkTypeName(t)} (${t})`),
      records: c.records,
      fed: c.fed,
      notFed: c.notFed,
      notFedExamples: c.notFedExamples,
      byParseStatus: c.byStatus,
      fromInstances: c.fromInstances,
      fromInternet: c.fromInternet,
      toPrivate: c.toPrivate,
      clampedTimestamps: c.clampedTimestamps,
      maxBackstepUs: c.maxBackstepUs,
      durationUs: c.records ? c.lastTimeUs - c.firstTimeUs : 0,
      warnings: [...reader.warnings],
      error: readError,
      limited,
    },
    scenario: {
      name: s.name,
      source: s.source,
      how: opts.scenarioHow,
      points: [
        { point: POINT_INTERNET, name: 'internet', privateIp: null, elasticIp: null },
        ...s.instances.map((inst, i) => ({
          point: instancePoint(i),
          name: inst.name,
          privateIp: formatIpv4(inst.privateIp),
          elasticIp: inst.elasticIp === null ? null : formatIpv4(inst.elasticIp),
        })),
      ],
    },
    engines: states.map((st) => st.summary),
    readdressExamples: states
      .flatMap((st) => st.examples)
      .sort((a, b) => a.input - b.input || opts.engines.indexOf(a.engine) - opts.engines.indexOf(b.engine))
      .slice(0, maxEx),
    differences: { pairs, count: diffCount, packets: diffPackets, first: diffs, conntrack: conntrackDiffs, notes },
    agree,
    exitCode,
    wallMs,
    pps: runMs > 0 ? (c.records * 1000) / runMs : 0,
    peakRssMb: peakRss / (1 << 20),
  };
  if (timeline.collector) report.failover = timeline.collector.finish();
  const kept: Record<string, KeptResult[]> | null = opts.keepResults
    ? Object.fromEntries(states.map((st) => [st.name, st.kept!]))
    : null;
  const keptRaw = opts.keepResults ? Object.fromEntries(states.map((st) => [st.name, st.keptRaw!])) : null;
  return { report, kept, keptRaw };
}

/** Prepares each record the reader delivers into the current chunk (no object per record). */
class ChunkSink implements RecordSink {
  chunk: InputChunk | null = null;
  constructor(private readonly prep: FramePreparer) {}
  record(
    index: number,
    _tsSec: number,
    _tsNsec: number,
    timeUs: number,
    linkType: number,
    buf: Uint8Array,
    off: number,
    capLen: number,
  ): void {
    const c = this.chunk!;
    c.bytes += 16 + capLen;
    // The reader's buffer is staged in the chunk's shared memory: frames are then moved inside it.
    this.prep.prepareAt(c, index, timeUs, linkType, c.stage(buf), off, capLen);
  }
}

const DISCARD: RecordSink = { record: () => undefined };

/**
 * The bulk path of the accounting (one engine with processFrames, no comparison, stories, kept
 * results or timeline): each record's counts and outputs straight from the packed result words and
 * the output columns, counters in locals, outputs copied to the files with the pool's memmove when
 * the output arena is in it. Counts and writes exactly what countOne does record by record.
 */
function accountBulk(st: EngineRunState, c: InputChunk, q: number, pool: SharedMemoryPool | null): void {
  const io = st.io[q];
  const out = io.out!;
  const eb = io.batch;
  const fa = eb.arena;
  const fOff = eb.off;
  const fLen = eb.len;
  const oa = out.outArena;
  const oaAt = pool !== null ? pool.addressOf(oa) : -1;
  const oOff = out.outOff;
  const oLen = out.outLen;
  const oEgress = out.outEgress;
  const words = io.result;
  const fed = c.fed;
  const reason = c.reason;
  const timeUs = c.timeUs;
  const byReason = st.byReason;
  const byCt = st.byCt;
  const outs = st.out;
  const writing = outs.writing;
  let packetsIn = 0;
  let delivered = 0;
  let dropped = 0;
  let generated = 0;
  let translated = 0;
  const count = c.count;
  for (let k = 0; k < count; k++) {
    const j = fed[k];
    if (j < 0) {
      // Not fed: the same verdict for every engine.
      dropped++;
      byReason[reason[k] & 255]++;
      byCt[0]++;
      continue;
    }
    const w = words[j];
    packetsIn++;
    if ((w & RES_DROPPED) === 0) delivered++;
    else {
      dropped++;
      byReason[resultReason(w)]++;
    }
    byCt[resultCt(w) & 7]++;
    const fo = fOff[j];
    const fl = fLen[j];
    const n = resultOutCount(w);
    for (let x = 0; x < n; x++) {
      const slot = j * OUT_SLOTS + x;
      const off = oOff[slot];
      const len = oLen[slot];
      const egress = oEgress[slot];
      if (isGeneratedAt(fa, fo, fl, oa, off, len)) generated++;
      outs.next(egress);
      if (writing) outs.writeOutAt(egress, timeUs, k, oa, oaAt, off, len);
    }
    if ((w & RES_DROPPED) === 0 && n > 0 && tupleChangedAt(fa, fo, fl, oa, oOff[j * OUT_SLOTS], oLen[j * OUT_SLOTS]))
      translated++;
  }
  const sum = st.summary;
  sum.packetsIn += packetsIn;
  sum.delivered += delivered;
  sum.dropped += dropped;
  sum.generated += generated;
  sum.translated += translated;
}

/** The engine's own copy of the chunk's frames (it re-addresses some of them in place). */
function copyBatch(io: EngineIo, src: FrameBatch, used: number): FrameBatch {
  let b = io.copy;
  if (b === null || b.arena.length !== src.arena.length || b.maxPackets !== src.maxPackets) {
    b = createFrameBatch(src.maxPackets, src.arena.length);
    io.copy = b;
  }
  const n = src.count;
  b.arena.set(src.arena.subarray(0, used));
  b.off.set(src.off.subarray(0, n));
  b.len.set(src.len.subarray(0, n));
  b.ingress.set(src.ingress.subarray(0, n));
  b.timeUs.set(src.timeUs.subarray(0, n));
  b.count = n;
  return b;
}

/**
 * The engine's output for a chunk batch like `src` (re-made when the chunk's batch grew); its arena
 * in `pool` when there is one (outputs are then copied to the files with its memmove).
 */
function sizeOutput(st: EngineRunState, io: EngineIo, src: FrameBatch, pool: SharedMemoryPool | null): void {
  if (io.sizedFor === src) return;
  io.sizedFor = src;
  if (st.zeroCopy) {
    const o = io.out;
    if (o === null || o.maxPackets < src.maxPackets || o.outArena.length < errorBase(src.arena.length, src.maxPackets))
      io.out = createBatchOutput(
        src.maxPackets,
        src.arena.length,
        pool?.alloc(outArenaBytes(src.maxPackets, src.arena.length)) ?? undefined,
      );
    io.result = io.out!.result;
  } else if (io.result.length < src.maxPackets) io.result = new Uint32Array(src.maxPackets);
}

/** The engine's re-addressing plan for a chunk batch like `src` (made once, re-made when it grew). */
function planFor(io: EngineIo, src: FrameBatch): ReaddressPlan {
  if (io.plan === null || io.plan.maxPackets < src.maxPackets) io.plan = createReaddressPlan(src.maxPackets);
  return io.plan;
}
