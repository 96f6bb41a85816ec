// `natlab replay`: streams a capture through one or more engines, writes what leaves each egress
// point per engine, compares the engines packet by packet and explains every difference.
//
// Streaming with bounded memory: records are read and processed in chunks (default 4096); per
// packet only counters survive a chunk, plus the first K differences and re-addressing examples.
// The one structure that grows with the capture is each engine's table of learned flow mappings
// (one-sided captures), capped (FIFO eviction, counted).
import { stat } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIpv4 } from '../../packet/addr.ts';
import {
  ETH_HDR_LEN,
  ETHERTYPE_IPV4,
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
import { PcapWriter } from '../../pcap/writer.ts';
import { PcapngWriter } from '../../pcap/pcapng-writer.ts';
import type { CaptureReader, CaptureRecord } from '../../pcap/types.ts';
import type { Engine, InputPacket, NatRuleCounter, PacketResult } from '../../spec/engine.ts';
import { InputError } from '../../spec/errors.ts';
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
import { FramePreparer, type PreparedFrame } from './input.ts';
import {
  FlowMappings,
  insidePortOf,
  insidePortRaw,
  mappingAddr,
  mappingPort,
  readdressFrame,
  readdressRaw,
  translatedSource,
} from './remap.ts';
import type { EngineSummary, ReaddressExample, ReplayDifference, ReplayFrameRef, ReplayReport } from './report.ts';
import { rd16 } from '../../packet/bytes.ts';
import {
  engineComment,
  inputComment,
  pointInterfaceName,
  type PacketSink,
  type PacketStory,
  type StoryDifference,
} from '../sinks/annotate.ts';
import { InputCapture, INPUT_CAPTURE_FILE } from '../sinks/input-capture.ts';

export const DEFAULT_CHUNK = 4096;
export const DEFAULT_MAX_DIFFERENCES = 20;
export const DEFAULT_MAX_EXAMPLES = 20;
/** Learned flow mappings kept per engine (twice Linux's default nf_conntrack_max). */
export const DEFAULT_MAPPING_CAP = 524288;

export type EngineFactory = (
  name: string,
  scenario: Scenario,
  opts: { seed?: number; workers?: number; extra?: Record<string, unknown> },
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
  /** Called with the engines after the last packet, before they are closed (engine-specific dumps). */
  beforeClose?: (engines: readonly Engine[]) => Promise<void>;
  /** Engine construction (tests); default makeEngine. */
  engineFactory?: EngineFactory;
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

// Synthetic, stable MAC addresses (locally administered, "NL" = natlab): the VPC router / IGW
// sends every output frame; the receiver is the egress point's host.
export const ROUTER_MAC = Uint8Array.of(0x02, 0x4e, 0x4c, 0xff, 0xff, 0xfe);
export function pointMac(point: number): Uint8Array {
  return Uint8Array.of(0x02, 0x4e, 0x4c, 0x00, (point >>> 8) & 0xff, point & 0xff);
}

export function outputFileName(s: Scenario, point: number): string {
  if (point === POINT_INTERNET) return 'internet.pcap';
  const inst = s.instances[point - 1];
  return `${inst.name}-${formatIpv4(inst.privateIp)}.pcap`;
}

const MAX_TS_SEC = 0xffffffff;

/** Annotated capture of one engine (pcapng): DIR/<engine>.pcapng. */
export function engineCaptureName(engine: string): string {
  return `${engine}.pcapng`;
}

/**
 * The outputs of one engine: per-egress pcap files, or one annotated pcapng with an interface per
 * egress point and one ("dropped") for the inputs the engine dropped, as they were fed to it.
 */
class OutputSet {
  private readonly writers = new Map<number, PcapWriter>();
  private ng: PcapngWriter | null = null;
  /** pcapng: packets in the file so far (every interface): Wireshark's frame.number. */
  private fileCount = 0;
  readonly counts: number[];
  private scratch = new Uint8Array(ETH_HDR_LEN + 65536);
  /** Ethernet header per egress point (built once). */
  private readonly ethHeaders: Uint8Array[] = [];
  clampedTs = 0;

  constructor(
    readonly engine: string,
    readonly scenario: Scenario,
    readonly linkType: number,
    readonly dir: string | null,
    private readonly engineDir = true,
  ) {
    this.counts = new Array(scenario.instances.length + 1).fill(0);
  }

  static async open(
    engine: string,
    s: Scenario,
    linkType: number,
    outDir: string | null,
    format: 'pcap' | 'pcapng' = 'pcap',
    engineDir = true,
  ): Promise<OutputSet> {
    if (format === 'pcapng' && outDir !== null) {
      const o = new OutputSet(engine, s, linkType, outDir);
      const interfaces = [];
      for (let p = 0; p <= s.instances.length; p++)
        interfaces.push({
          linkType,
          name: pointInterfaceName(s, p, formatIpv4),
          description: `what ${engine} sent to ${pointName(s, p)}`,
        });
      interfaces.push({ linkType, name: 'dropped', description: `inputs ${engine} dropped, as they were fed to it` });
      o.ng = await PcapngWriter.open(join(outDir, engineCaptureName(engine)), {
        interfaces,
        comment: `natlab replay: what the ${engine} engine sent at each egress point (one interface each) and the inputs it dropped, each packet commented with its story`,
      });
      return o;
    }
    const dir = outDir === null ? null : engineDir ? join(outDir, engine) : outDir;
    const o = new OutputSet(engine, s, linkType, dir, engineDir);
    if (dir !== null) {
      await mkdir(dir, { recursive: true });
      for (let p = 0; p <= s.instances.length; p++) {
        o.writers.set(p, await PcapWriter.open(join(dir, outputFileName(s, p)), { linkType }));
      }
    }
    return o;
  }

  /** Relative file name of a point's output (for references in the report). */
  ref(point: number): string {
    if (this.annotated) return engineCaptureName(this.engine);
    return this.engineDir
      ? `${this.engine}/${outputFileName(this.scenario, point)}`
      : outputFileName(this.scenario, point);
  }

  /** True when outputs go to files (outDir given). */
  get writing(): boolean {
    return this.writers.size > 0 || this.ng !== null;
  }

  /** True when writing the annotated pcapng (comments wanted). */
  get annotated(): boolean {
    return this.ng !== null;
  }

  /** Counts one output at `point`; returns its 1-based number in its file. */
  next(point: number): number {
    ++this.counts[point];
    return this.ng ? ++this.fileCount : this.counts[point];
  }

  /** The numbers next() would give these outputs, in order, without counting them. */
  peek(points: number[]): number[] {
    if (this.ng) return points.map((_, k) => this.fileCount + k + 1);
    const next = [...this.counts];
    return points.map((p) => ++next[p]);
  }

  /** Writes one input the engine dropped, as fed (annotated pcapng only; numbered here). */
  writeDropped(timeUs: number, frame: Uint8Array, comment: string): void {
    if (!this.ng) return;
    this.fileCount++;
    this.writeFrame(this.scenario.instances.length + 1, timeUs, frame, comment);
  }

  /** Writes one output (counted with next() first): staged at once, no promise per frame. */
  write(point: number, timeUs: number, frame: Uint8Array, comment?: string): void {
    this.writeFrame(point, timeUs, frame, comment);
  }

  /** Backpressure, once per chunk: resolves when every file stream has caught up. */
  async drained(): Promise<void> {
    if (this.ng) await this.ng.drained();
    for (const w of this.writers.values()) await w.drained();
  }

  private writeFrame(point: number, timeUs: number, frame: Uint8Array, comment?: string): void {
    const w = this.ng ?? this.writers.get(point);
    if (!w) return;
    let tsSec = Math.floor(timeUs / 1e6);
    let tsNsec = (timeUs - tsSec * 1e6) * 1000;
    if (tsSec > MAX_TS_SEC && !this.ng) {
      tsSec = MAX_TS_SEC;
      tsNsec = 999_999_000;
      this.clampedTs++;
    }
    let data = frame;
    if (this.linkType === LINKTYPE_ETHERNET) {
      const need = ETH_HDR_LEN + frame.length;
      if (this.scratch.length < need) this.scratch = new Uint8Array(need);
      const b = this.scratch;
      let h = this.ethHeaders[point];
      if (!h) {
        h = new Uint8Array(ETH_HDR_LEN);
        h.set(pointMac(point), 0);
        h.set(ROUTER_MAC, 6);
        h[12] = ETHERTYPE_IPV4 >>> 8;
        h[13] = ETHERTYPE_IPV4 & 0xff;
        this.ethHeaders[point] = h;
      }
      b.set(h, 0);
      b.set(frame, ETH_HDR_LEN);
      data = b.subarray(0, need);
    }
    if (this.ng) this.ng.writeSync({ interfaceId: point, tsSec, tsNsec, data, comment });
    else (w as PcapWriter).writeSync({ tsSec, tsNsec, data });
  }

  async close(): Promise<void> {
    for (const w of this.writers.values()) await w.close();
    await this.ng?.close();
  }
}

/** Per-engine state of a run. */
class EngineRunState {
  readonly mappings: FlowMappings;
  readonly summary: EngineSummary;
  /** Chunk-local: what this engine was fed and what it answered, by chunk position. */
  fed: Array<Uint8Array | null> = [];
  results: Array<PacketResult | null> = [];
  how: string[] = [];
  /** First re-addressing examples of this engine. */
  readonly examples: ReaddressExample[] = [];
  readonly kept: KeptResult[] | null;
  readonly keptRaw: Array<{ fed: Uint8Array | null; timeUs: number; ingress: number; result: PacketResult }> | null;
  readonly normaliser: OutputNormaliser | undefined;
  conntrackCount: number | null = null;
  /** Counters by code (turned into named records at the end: no string keys per packet). */
  readonly byReason = new Float64Array(256);
  readonly byCt = new Float64Array(8);
  /** A flow idle this long may have lost its conntrack entry (the scenario's shortest timeout). */
  readonly mappingStaleUs: number;

  constructor(
    readonly name: string,
    readonly engine: Engine,
    readonly out: OutputSet,
    mappingCap: number,
    keep: boolean,
    normaliser: OutputNormaliser | undefined,
  ) {
    this.mappings = new FlowMappings(mappingCap);
    this.kept = keep ? [] : null;
    this.keptRaw = keep ? [] : null;
    this.normaliser = normaliser;
    this.mappingStaleUs = Math.min(...Object.values(out.scenario.conntrack.timeouts)) * 1e6;
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
  if (input.length < 20 || out.length < 20) return false;
  for (let i = 12; i < 20; i++) if (input[i] !== out[i]) return true;
  if (input[9] !== out[9]) return false;
  const ia = (input[0] & 15) << 2;
  const oa = (out[0] & 15) << 2;
  const proto = input[9];
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    if (input.length < ia + 4 || out.length < oa + 4) return false;
    return rd16(input, ia) !== rd16(out, oa) || rd16(input, ia + 2) !== rd16(out, oa + 2);
  }
  if (proto === PROTO_ICMP && input.length >= ia + 6 && out.length >= oa + 6) {
    if (isIcmpErrorType(input[ia])) {
      // the quoted packet's addresses
      for (let i = 12; i < 20; i++) if (input[ia + 8 + i] !== out[oa + 8 + i]) return true;
      return false;
    }
    return rd16(input, ia + 4) !== rd16(out, oa + 4);
  }
  return false;
}

/** An ICMP error among the outputs of an input that was not an ICMP error: built by the engine. */
function isGeneratedOutput(input: Uint8Array, out: Uint8Array): boolean {
  const oa = (out[0] & 15) << 2;
  if (out.length < oa + 1 || out[9] !== PROTO_ICMP || !isIcmpErrorType(out[oa])) return false;
  const ia = (input[0] & 15) << 2;
  return !(input.length > ia && input[9] === PROTO_ICMP && isIcmpErrorType(input[ia]));
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

/** Runs the replay. Throws InputError only when the capture cannot be opened at all. */
export async function runReplay(opts: ReplayOptions): Promise<ReplayOutcome> {
  const t0 = performance.now();
  const s = opts.scenario;
  const chunk = opts.chunkSize ?? DEFAULT_CHUNK;
  const maxDiffs = opts.maxDifferences ?? DEFAULT_MAX_DIFFERENCES;
  const maxEx = opts.maxExamples ?? DEFAULT_MAX_EXAMPLES;
  const limit = opts.limit ?? Infinity;
  const linkType = opts.outputLinkType ?? LINKTYPE_ETHERNET;
  if (linkType !== LINKTYPE_ETHERNET && linkType !== LINKTYPE_RAW)
    throw new InputError(`output link type ${linkType} not supported (Ethernet 1 or raw IP 101)`);
  if (opts.engines.length === 0) throw new InputError('no engine to replay through');
  const factory: EngineFactory = opts.engineFactory ?? ((name, sc, o) => makeEngine(name as EngineName, sc, o));

  const reader: CaptureReader = await openCapture(opts.input);
  let fileSize = 0;
  try {
    fileSize = (await stat(opts.input)).size;
  } catch {
    /* size only drives the progress bar */
  }
  const ingress = new IngressMap(s);
  const prep = new FramePreparer(ingress);
  const states: EngineRunState[] = [];
  let peakRss = process.memoryUsage().rss;
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
  const annotate = opts.outputFormat === 'pcapng' && opts.outDir !== null;
  const sinks = opts.sinks ?? [];
  const stories = annotate || sinks.length > 0;
  let inputCapture: InputCapture | null = null;
  /** Differences the engines classified as documented known ones, by class. */
  const known = new Map<string, number>();
  try {
    if (opts.outDir !== null) await mkdir(opts.outDir, { recursive: true });
    if (annotate) inputCapture = await InputCapture.open(join(opts.outDir!, INPUT_CAPTURE_FILE), s, opts.input);
    for (const name of opts.engines) {
      const engine = await factory(name, s, {
        seed: opts.seed ?? 1,
        workers: opts.workers,
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
      );
      states.push(
        new EngineRunState(
          name,
          engine,
          out,
          opts.mappingCap ?? DEFAULT_MAPPING_CAP,
          opts.keepResults ?? false,
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
    tRun = performance.now();

    let bytes = 24;
    let batch: PreparedFrame[] = [];
    /** The records of the batch (annotated captures copy the input side from them). */
    let batchRecs: CaptureRecord[] = [];

    const processChunk = async (frames: PreparedFrame[], recs: CaptureRecord[]): Promise<void> => {
      await Promise.all(states.map((st) => feedEngine(st, frames, maxEx)));
      // Compare, count and write, packet by packet in input order.
      for (let i = 0; i < frames.length; i++) {
        const p = frames[i];
        const storyDiffs: StoryDifference[] | null = stories ? [] : null;
        let refs: Record<string, ReplayFrameRef[]> | null = null;
        if (p.ingress !== INGRESS_NOWHERE && states.length > 1) {
          const a = states[0];
          const ra = a.results[i]!;
          let any = false;
          for (let k = 1; k < states.length; k++) {
            const b = states[k];
            const d = comparePacket(
              p.n,
              { timeUs: p.timeUs, ingress: p.ingress, frame: a.fed[i]! },
              ra,
              b.results[i]!,
              contexts[k - 1],
            );
            if (d.length === 0) continue;
            any = true;
            diffCount += d.length;
            if (storyDiffs)
              for (const x of d) storyDiffs.push({ kind: x.kind, engines: x.engines, message: x.message });
            for (const x of d) {
              if (diffs.length >= maxDiffs) break;
              refs ??= outputRefs(states, i);
              diffs.push({ input: p.n, kind: x.kind, engines: x.engines, message: x.message, outputs: refs });
            }
          }
          if (any) diffPackets++;
        }
        if (storyDiffs) {
          await writeAnnotated(p, i, recs[i], storyDiffs);
          continue;
        }
        for (const st of states) {
          const r = account(st, p, i);
          // Staged synchronously: no promise per packet (backpressure once per chunk, below).
          if (st.out.writing) for (const o of r.outputs) st.out.write(o.egress, p.timeUs, o.frame);
        }
      }
      for (const st of states) await st.out.drained();
    };

    /** Stories: annotated captures (every engine's outputs and drops, and the input) and sinks. */
    const writeAnnotated = async (
      p: PreparedFrame,
      i: number,
      rec: CaptureRecord | undefined,
      differences: StoryDifference[],
    ): Promise<void> => {
      const results = states.map((st) => account(st, p, i));
      const story: PacketStory = {
        input: p.n,
        ingress: p.ingress === INGRESS_NOWHERE ? -1 : p.ingress,
        differences,
        verdicts: states.map((st, k) => ({ engine: st.name, result: results[k], readdressed: st.how[i] ?? '' })),
        timeUs: p.timeUs,
        frame: p.frame,
        flow: p.outKey ?? p.inKey,
      };
      for (const sink of sinks) sink.packet(story);
      if (!annotate) return;
      for (let k = 0; k < states.length; k++) {
        const st = states[k];
        const r = results[k];
        for (let j = 0; j < r.outputs.length; j++)
          st.out.write(r.outputs[j].egress, p.timeUs, r.outputs[j].frame, engineComment(s, story, st.name, j));
        const fed = st.fed[i];
        if (r.fate !== FATE_DELIVERED && fed) st.out.writeDropped(p.timeUs, fed, engineComment(s, story, st.name, -1));
      }
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
    };

    // An engine may refuse the input part-way (the kernel engine cannot wait out a long gap in
    // real time): the report still covers everything before the chunk it refused, exit 2.
    let engineError: string | null = null;
    const runChunk = async (frames: PreparedFrame[], recs: CaptureRecord[]): Promise<boolean> => {
      try {
        await processChunk(frames, recs);
        return true;
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        engineError = `${e.message} (replay stopped in the chunk starting at input #${frames[0].n}; the report covers the packets before it)`;
        return false;
      }
    };
    for (;;) {
      let rec = reader.nextQueued();
      try {
        rec ??= await reader.next();
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        readError = e.message;
        break;
      }
      if (rec === null) break;
      if (prep.counters.records >= limit) {
        limited = true;
        break;
      }
      bytes += 16 + rec.data.length;
      batch.push(prep.prepare(rec));
      if (annotate) batchRecs.push(rec);
      if (batch.length >= chunk) {
        if (!(await runChunk(batch, batchRecs))) {
          batch = [];
          break;
        }
        batch = [];
        batchRecs = [];
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        opts.onProgress?.(prep.counters.records, bytes, fileSize);
      }
    }
    if (batch.length) await runChunk(batch, batchRecs);
    if (engineError !== null) readError = readError ?? engineError;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    opts.onProgress?.(prep.counters.records, fileSize || bytes, fileSize);

    if (opts.beforeClose) await opts.beforeClose(states.map((st) => st.engine));
    // End of run: conntrack tables.
    const tables = await Promise.all(
      states.map(async (st) => {
        try {
          return await st.engine.conntrack();
        } catch {
          return null;
        }
      }),
    );
    states.forEach((st, k) => (st.summary.conntrackAtEnd = tables[k]?.length ?? null));
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

  const c = prep.counters;
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
  const kept: Record<string, KeptResult[]> | null = opts.keepResults
    ? Object.fromEntries(states.map((st) => [st.name, st.kept!]))
    : null;
  const keptRaw = opts.keepResults ? Object.fromEntries(states.map((st) => [st.name, st.keptRaw!])) : null;
  return { report, kept, keptRaw };

  // --- helpers (closures over the run) -------------------------------------------------------

  function outputRefs(sts: EngineRunState[], i: number): Record<string, ReplayFrameRef[]> {
    // Outputs of chunk position i are written after comparison: their numbers follow the counts.
    const refs: Record<string, ReplayFrameRef[]> = {};
    for (const st of sts) {
      const outs = st.results[i]?.outputs ?? [];
      const ns = st.out.peek(outs.map((o) => o.egress));
      refs[st.name] = outs.map((o, k) => ({ file: st.out.ref(o.egress), n: ns[k] }));
    }
    return refs;
  }

  /** Counts one packet's result for one engine; returns the result (synthesized when not fed). */
  function account(st: EngineRunState, p: PreparedFrame, i: number): PacketResult {
    const sum = st.summary;
    const fed = st.fed[i];
    let r = st.results[i];
    if (r === null || r === undefined) {
      // Not fed: the same verdict for every engine.
      r = { fate: 1, reason: p.reason, detail: p.detail, ct: 0, outputs: [] };
    } else sum.packetsIn++;
    if (r.fate === FATE_DELIVERED) sum.delivered++;
    else {
      sum.dropped++;
      st.byReason[r.reason & 255]++;
    }
    st.byCt[r.ct & 7]++;
    const keptOuts: KeptResult['outputs'] | null = st.kept ? [] : null;
    for (let k = 0; k < r.outputs.length; k++) {
      const o = r.outputs[k];
      if (fed && isGeneratedOutput(fed, o.frame)) sum.generated++;
      const n = st.out.next(o.egress);
      keptOuts?.push({ egress: pointName(s, o.egress), n, frame: describeFrame(o.frame) });
    }
    if (fed && r.fate === FATE_DELIVERED && r.outputs.length > 0 && tupleChanged(fed, r.outputs[0].frame))
      sum.translated++;
    st.keptRaw?.push({ fed: fed ?? null, timeUs: p.timeUs, ingress: p.ingress, result: r });
    if (st.kept) {
      st.kept.push({
        input: p.n,
        ingress: p.ingress === INGRESS_NOWHERE ? 'nowhere' : pointName(s, p.ingress),
        fate: r.fate === FATE_DELIVERED ? 'delivered' : 'dropped',
        reason: reasonName(r.reason),
        detail: r.detail,
        ct: CT_NAMES[r.ct] ?? String(r.ct),
        readdressed: st.how[i] ?? '',
        outputs: keptOuts!,
      });
    }
    return r;
  }
}

/**
 * Feeds one chunk to one engine. Far-side frames addressed to a private address are re-addressed
 * to this engine's mapping; a frame whose flow has an outbound packet still pending in the batch
 * first flushes the batch (so the mapping is learned before the reply is addressed).
 */
async function feedEngine(st: EngineRunState, frames: PreparedFrame[], maxEx: number): Promise<void> {
  const examples = st.examples;
  const pv = new PacketView();
  const pvOut = new PacketView();
  const n = frames.length;
  st.fed = new Array(n).fill(null);
  st.results = new Array(n).fill(null);
  st.how = new Array(n).fill('');
  const s = st.out.scenario;
  let batch: InputPacket[] = [];
  let idx: number[] = [];
  /** Outbound flows in the batch being assembled, with the time of their latest packet. */
  const pending = new Map<string, number>();
  const pvIn = new PacketView();
  const flush = async () => {
    if (batch.length === 0) return;
    const t = performance.now();
    const res = await st.engine.process(batch);
    st.summary.engineMs += performance.now() - t;
    if (res.length !== batch.length)
      throw new Error(`engine ${st.name} returned ${res.length} results for ${batch.length} packets`);
    for (let j = 0; j < res.length; j++) {
      const i = idx[j];
      const r = res[j];
      st.results[i] = r;
      const p = frames[i];
      if (p.outKey !== null && r.fate === FATE_DELIVERED) {
        if (r.ct === CT_NEW || !st.mappings.has(p.outKey)) learn(st, p, batch[j].frame, r, pvIn, pvOut);
        else st.mappings.touch(p.outKey, p.timeUs);
      }
    }
    batch = [];
    idx = [];
    pending.clear();
  };
  for (let i = 0; i < n; i++) {
    const p = frames[i];
    if (p.ingress === INGRESS_NOWHERE || p.frame === null) continue;
    let frame = p.frame;
    if (p.remapInstance >= 0) {
      // Flush first when a pending outbound packet of this flow may create or change its mapping:
      // no mapping yet, or the flow was idle long enough that its entry may have expired.
      if (p.inKey !== null) {
        const t = pending.get(p.inKey);
        if (t !== undefined) {
          const last = st.mappings.lastUs(p.inKey);
          if (last < 0 || t - last >= st.mappingStaleUs) await flush();
        }
      }
      const m = p.inKey !== null ? st.mappings.get(p.inKey) : -1;
      const inst = s.instances[p.remapInstance];
      let how = 'unmapped';
      parseIpv4(frame, 0, frame.length, pv);
      const ok = pv.status === PARSE_OK;
      // Frames that do not parse fully (cut by the snapshot length, ...) are re-addressed in the
      // fields that were captured; the engines then drop or mark them for what they are.
      const raw = !ok && p.inKey !== null;
      if (m >= 0 && (ok || raw)) {
        frame = ok
          ? readdressFrame(frame, pv, mappingAddr(m), mappingPort(m))
          : readdressRaw(frame, mappingAddr(m), mappingPort(m));
        how = 'flow';
        st.summary.readdressed.flow++;
      } else if (inst.elasticIp !== null && (ok || raw)) {
        frame = ok
          ? readdressFrame(frame, pv, inst.elasticIp, insidePortOf(pv))
          : readdressRaw(frame, inst.elasticIp, insidePortRaw(frame));
        how = 'elastic-ip';
        st.summary.readdressed.elasticIp++;
      } else st.summary.readdressed.unmapped++;
      st.how[i] = how;
      if (examples.length < maxEx)
        examples.push({
          input: p.n,
          engine: st.name,
          how,
          from: describeFrame(p.frame),
          to: how === 'unmapped' ? '' : describeFrame(frame),
        });
    }
    if (p.outKey !== null) pending.set(p.outKey, p.timeUs);
    st.fed[i] = frame;
    batch.push({ timeUs: p.timeUs, ingress: p.ingress, frame });
    idx.push(i);
  }
  await flush();
}

/** Learns the public mapping of an outbound packet's flow from the engine's internet output. */
function learn(
  st: EngineRunState,
  p: PreparedFrame,
  fed: Uint8Array,
  r: PacketResult,
  pvIn: PacketView,
  pvOut: PacketView,
): void {
  let parsedIn = false;
  for (const o of r.outputs) {
    if (o.egress !== POINT_INTERNET) continue;
    if (!parsedIn) {
      parseIpv4(fed, 0, fed.length, pvIn);
      parsedIn = true;
    }
    parseIpv4(o.frame, 0, o.frame.length, pvOut);
    const m = translatedSource(pvIn, pvOut);
    if (m < 0) continue;
    st.mappings.set(p.outKey!, mappingAddr(m), mappingPort(m), p.timeUs);
    return;
  }
}
