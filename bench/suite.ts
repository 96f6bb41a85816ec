// The `natlab bench` suite: workloads × worker counts through the core's worker pool, the
// reference model and the kernel oracle as baselines on the same input, and microbenchmarks.
// Produces one BenchReport (JSON) with every raw sample; bench/report.ts renders it.
// docs/benchmarks.md explains what each figure measures.
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { OPEN_SCENARIO_NAME, loadOpenScenario } from '../src/scenario/index.ts';
import type { Scenario } from '../src/spec/scenario.ts';
import type { Engine, InputPacket } from '../src/spec/engine.ts';
import { FATE_DELIVERED } from '../src/spec/reasons.ts';
import { openCapture } from '../src/pcap/reader.ts';
import { createModelEngine } from '../src/model/index.ts';
import { type CoreLayout, createCoreEngine, DEFAULT_LAYOUT } from '../src/core/engine.ts';
import { checkKernelPrerequisites, createKernelEngine } from '../src/oracle/index.ts';
import { runReplay } from '../src/diff/replay/replay.ts';
import { scenarioForCapture } from '../src/diff/replay/scenario.ts';
import { IngressMap, INGRESS_NOWHERE } from '../src/diff/replay/ingress.ts';
import { PacketView, PARSE_TRUNCATED_L2, parseFrame } from '../src/packet/parse.ts';
import { type TrafficProfile, describeProfile } from '../src/traffic/profile.ts';
import {
  EstablishedWorkload,
  FLOW_TCP,
  FLOW_UDP,
  FlowSpace,
  MixedWorkload,
  SetupWorkload,
  SETUP_DONE_MS,
  benchScenario,
  type FrameColumns,
  type PacketSource,
  writeUdp,
} from '../src/traffic/workload.ts';
import { POINT_INTERNET } from '../src/spec/scenario.ts';
import { CoreRunner, type BatchCheck } from './core-run.ts';
import {
  filteredScenario,
  filterTableScenario,
  measureEstablished,
  measureSetup,
  unfilteredScenario,
} from './core-throughput.ts';
import { type Figure, makeFigure, median, nsFigure, valueFigure, sessionsLabel } from './figures.ts';
import { type MicroRow, runMicro } from './micro.ts';
import { machineInfo } from './results.ts';
import { writeMixedCapture } from './replay-capture.ts';
import { type LatencyStats, LatencyRecorder, latencyText } from './latency.ts';
import { type ChaseResult, dependentLoadNs } from './pointer-chase.ts';
import {
  type BatchOutput,
  type FrameBatch,
  createBatchOutput,
  createFrameBatch,
  resultFate,
} from '../src/spec/frame-batch.ts';

export type WorkloadName = 'established' | 'setup' | 'mixed' | 'replay' | 'adversarial' | 'filtered' | 'filter-table';
export const WORKLOADS: readonly WorkloadName[] = [
  'established',
  'setup',
  'mixed',
  'replay',
  'adversarial',
  'filtered',
  'filter-table',
];

export interface BenchOptions {
  quick: boolean;
  workers: number[];
  sessions: number[];
  workloads: WorkloadName[];
  /** Measured runs per figure (after warm-up). */
  runs: number;
  /** A measured run lasts at least this long (established: passes over the pre-loaded packets). */
  minRunSec: number;
  /** New flows per measured run (session setup). */
  setupPerRun: number;
  /** Packets per measured run (mixed). */
  mixedPerRun: number;
  /** Packets of the generated capture (replay), when no --pcap is given. */
  replayPackets: number;
  /**
   * Packets of the large generated capture (replay against tcpdump where the engines' warm-up is
   * amortised, as in a user's capture of millions of packets); 0 skips it. Not with --pcap.
   */
  replayLargePackets: number;
  /**
   * Stream packets of the capture `--engines model,core` is also measured on against the model's
   * raw rate (the fresh core worker's compiling amortised, as on a user's capture); 0 skips it.
   * Not with --pcap.
   */
  replayModelPackets: number;
  profile: TrafficProfile;
  pcap: { path: string; inside: string } | null;
  model: boolean;
  /** Model sample sizes: stream packets per run, new flows per run. */
  modelPackets: number;
  kernel: boolean;
  kernelPackets: number;
  /** Packets for the one-at-a-time kernel path, measured beside the fast path for the ratio. */
  kernelSinglePackets: number;
  micro: boolean;
  microTimeMs: number;
  /** Also measure one Dataplane in the main thread, no pool (bench/core-throughput.ts). */
  inline: boolean;
  batchSize: number;
  seed: number;
  /** The core's table layout for every core figure (docs/core.md "Layouts"). */
  layout: CoreLayout;
}

export interface ProgressEvent {
  done: number;
  total: number;
  label: string;
  /** A line worth printing (a finished measurement), or null. */
  line: string | null;
}

export interface WorkloadResult {
  workload: WorkloadName;
  engine: 'core' | 'model' | 'kernel' | 'tcpdump';
  workers: number | null;
  sessions: number | null;
  /** Precise description of the input. */
  input: string;
  /** What the timing includes. */
  measured: string;
  /** Packets per measured run, runs, unit of samples. */
  packetsPerRun: number;
  samples: number[];
  unit: string;
  /** Other facts: set-up time, verdict checks, dispatch balance, table size. */
  notes: Record<string, unknown>;
  /**
   * Per-batch latency over every timed batch of the runs (core through the pool: established and
   * setup; bench/latency.ts). Absent in results written before it was measured.
   */
  latency?: LatencyStats;
}

export interface BenchReport {
  kind: 'natlab-bench';
  version: 1;
  date: string;
  machine: Record<string, unknown>;
  parameters: Record<string, unknown>;
  durationSec: number;
  /** Load average at start and end (the machine may be shared). */
  load: { start: number[]; end: number[] };
  /** CPU seconds of this process (all threads) over the run, and the CPUs it got on average. */
  processCpu?: { cpuSec: number; cpusGot: number };
  results: WorkloadResult[];
  figures: Figure[];
  micro: MicroRow[];
  notes: string[];
}

export function defaultOptions(quick: boolean): BenchOptions {
  const cores = availableParallelism();
  const workers = [1];
  for (let w = 2; w <= cores; w *= 2) workers.push(w);
  if (workers[workers.length - 1] !== cores && cores > 1) workers.push(cores);
  return {
    quick,
    workers,
    sessions: quick ? [1024, 16384] : [1024, 65536, 262144, 1 << 20],
    workloads: [...WORKLOADS],
    runs: quick ? 3 : 5,
    minRunSec: quick ? 0.05 : 0.4,
    setupPerRun: quick ? 16384 : 32768,
    mixedPerRun: quick ? 8192 : 65536,
    replayPackets: quick ? 4096 : 32768,
    replayLargePackets: quick ? 0 : 1_000_000,
    replayModelPackets: quick ? 0 : 250_000,
    profile: null as unknown as TrafficProfile,
    pcap: null,
    model: true,
    modelPackets: quick ? 1024 : 8192,
    kernel: true,
    kernelPackets: quick ? 500 : 4000,
    kernelSinglePackets: quick ? 16 : 64,
    micro: true,
    inline: true,
    microTimeMs: quick ? 50 : 400,
    batchSize: 4096,
    seed: 1,
    layout: DEFAULT_LAYOUT,
  };
}

/**
 * The reference model is built to be obviously right, not fast (~10-100 µs per packet): its
 * established-flow baseline runs at session counts up to this (the set-up alone is 3 packets per session).
 */
export const MODEL_MAX_SESSIONS = 16384;

/** CPU time of the calling thread in ns (Linux schedstat), or null where there is none. */
function mainThreadCpuNs(): number | null {
  try {
    const v = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** CPU time in ns of every thread of this process (Linux schedstat), by thread id; null elsewhere. */
function threadCpuNs(): Map<string, number> | null {
  try {
    const out = new Map<string, number>();
    for (const t of readdirSync('/proc/self/task')) {
      try {
        out.set(t, Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]));
      } catch {
        // the thread ended between the listing and the read
      }
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * Where a timed replay's CPU went, in ms: the main thread, the threads the engine started (its
 * workers: present after its creation, absent before), and the rest (V8's background threads —
 * optimising compiles of the fresh workers' code, GC — and libuv's). Null without per-thread clocks.
 */
function threadSplitMs(
  before: Map<string, number> | null,
  engineTids: ReadonlySet<string>,
  mainTid: string | null,
): { main: number; engine: number; other: number } | null {
  const after = threadCpuNs();
  if (before === null || after === null) return null;
  const split = { main: 0, engine: 0, other: 0 };
  for (const [t, ns] of after) {
    const d = (ns - (before.get(t) ?? 0)) / 1e6;
    if (t === mainTid) split.main += d;
    else if (engineTids.has(t)) split.engine += d;
    else split.other += d;
  }
  return split;
}

function mainTid(): string | null {
  try {
    return readlinkSync('/proc/thread-self').split('/').pop() ?? null;
  } catch {
    return null;
  }
}

const T_SETUP = 1000;
/**
 * Issue 11's setup table size ("≥ 1 M/s per worker up to 64k sessions"): the pool's small-table
 * figure stays below it, the one-thread figure is also measured into tables of --sessions from it up.
 */
const SETUP_TARGET_TABLE = 65536;
const T_STREAM = T_SETUP + SETUP_DONE_MS;

/** One-packet FrameColumns (cold paths: model and kernel inputs, capture writing). */
function oneCols(): FrameColumns {
  return {
    arena: new Uint8Array(2048),
    off: new Int32Array(1),
    len: new Int32Array(1),
    ingress: new Int32Array(1),
    timeUs: new Float64Array(1),
  };
}

/** Materialises `count` packets of `src` as engine inputs (cold; for the model and the kernel). */
function toInputs(src: PacketSource, count: number, nowMs: number): InputPacket[] {
  const c = oneCols();
  const out: InputPacket[] = [];
  for (let k = 0; k < count && src.remaining > 0; k++) {
    const n = src.next(c, 0, 0, nowMs);
    out.push({ timeUs: c.timeUs[0], ingress: c.ingress[0], frame: c.arena.slice(0, n) });
  }
  return out;
}

/** Per-batch latency percentiles for a summary line ('' without a measurement). */
function latencyLine(l: LatencyStats | null): string {
  if (!l) return '';
  return `; per batch (${l.batches} batches): ${latencyText(l.batchUs, 'µs')}; batch-normalised ${latencyText(l.nsPerPacket, 'ns/packet')}`;
}

function checkText(c: BatchCheck): string {
  const d = Object.entries(c.drops)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${c.delivered}/${c.packets} delivered${d ? `; dropped: ${d}` : ''}`;
}

/**
 * Stateless frames that reach every worker of a fresh core engine (so its threads are started and
 * its modules loaded before a timed replay): UDP from the internet to an address that is no Elastic
 * IP (100.64.0.1, shared address space), which the IGW drops; dispatched by destination port.
 */
function warmupFrames(workers: number, timeUs: number): InputPacket[] {
  const c = oneCols();
  const out: InputPacket[] = [];
  for (let k = 0; k < Math.max(8, 4 * workers); k++) {
    const n = writeUdp(c.arena, 0, 0xc6336477, 0x64400001, 53, 1024 + k, 46);
    out.push({ timeUs, ingress: POINT_INTERNET, frame: c.arena.slice(0, n) });
  }
  return out;
}

/** A capture the replay workload measures (the default one, the large one, or model,core's longer one). */
interface ReplayCapture {
  /**
   * '' the default capture (figures replay/...), 'large' the one of a user's size (replay/large/...),
   * 'long' the one model,core is also measured on (replay/long/...).
   */
  size: '' | 'large' | 'long';
  path: string;
  /** The same capture as taken on the inside host (generated captures only). */
  onePath: string | null;
  scenario: Scenario;
  how: string;
  input: string;
  records: number;
  firstUs: number;
  /** Removes the generated files (idempotent). */
  cleanup: () => Promise<void>;
}

class Suite {
  readonly results: WorkloadResult[] = [];
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];
  micro: MicroRow[] = [];
  private done = 0;
  private total = 0;
  private readonly base: Scenario;

  constructor(
    readonly o: BenchOptions,
    private readonly progress: (e: ProgressEvent) => void,
  ) {
    // The workloads are UDP (and the capture's mixed traffic): the built-in's NATSG security group
    // would drop them at the NAT instance's ENI. They run on the built-in without it, the scenario
    // every result in results/ was measured on, so `bench compare` compares like with like.
    this.base = loadOpenScenario();
    this.notes.push(
      `scenario: ${OPEN_SCENARIO_NAME} (scenarios/${OPEN_SCENARIO_NAME}.yaml: the built-in vpc-nat-instance without its NATSG security group, which passes only TCP 80/443) for every workload but --pcap (a VPC built around the capture) and 'filtered' (its own security groups and ACLs on the same VPC)`,
    );
  }

  private step(label: string, line: string | null = null): void {
    this.progress({ done: this.done, total: this.total, label, line });
  }
  private finish(label: string, line: string | null): void {
    this.done++;
    this.progress({ done: this.done, total: this.total, label, line });
  }

  async run(): Promise<void> {
    const o = this.o;
    const tasks: Array<{ label: string; fn: () => Promise<string | null> }> = [];
    const has = (w: WorkloadName) => o.workloads.includes(w);
    if (has('established')) {
      for (const s of o.sessions)
        for (const w of o.workers)
          tasks.push({
            label: `established ${sessionsLabel(s)} sessions, ${w} worker(s)`,
            fn: () => this.established(s, w),
          });
    }
    if (has('established')) {
      for (const w of o.workers)
        tasks.push({
          label: `adapter: processFrames main-thread ns per packet, ${w} worker(s)`,
          fn: () => this.adapter(w),
        });
    }
    if (has('established') && o.inline) {
      for (const s of o.sessions)
        tasks.push({
          label: `established ${sessionsLabel(s)} sessions, one thread (no pool)`,
          fn: () => this.inlineEstablished(s),
        });
    }
    if (has('adversarial') && o.inline) {
      for (const s of o.sessions)
        tasks.push({
          label: `adversarial keys vs random, ${sessionsLabel(s)} sessions, one thread`,
          fn: () => this.adversarial(s),
        });
    }
    if (has('filtered') && o.inline) {
      for (const s of o.sessions)
        tasks.push({
          label: `security groups + ACLs vs none, ${sessionsLabel(s)} sessions, one thread`,
          fn: () => this.filtered(s, 'filtered'),
        });
    }
    if (has('filter-table') && o.inline) {
      for (const s of o.sessions)
        tasks.push({
          label: `the NAT instance's filter table vs none, ${sessionsLabel(s)} sessions, one thread`,
          fn: () => this.filtered(s, 'filter-table'),
        });
    }
    if (has('setup'))
      for (const w of o.workers) {
        tasks.push({ label: `session setup, ${w} worker(s)`, fn: () => this.setup(w) });
        tasks.push({
          label: `session setup, ${w} worker(s), table below 64k`,
          fn: () => this.setupSmallTable(w),
        });
      }
    if (has('setup') && o.inline) {
      tasks.push({ label: 'session setup, one thread (no pool)', fn: () => this.inlineSetup() });
      // Issue 11's setup targets are per table size (>= 1 M/s up to 64k sessions, >= 500 k/s at 1M).
      for (const S of o.sessions.filter((x) => x >= SETUP_TARGET_TABLE))
        tasks.push({
          label: `session setup, one thread, table at ${sessionsLabel(S)} sessions`,
          fn: () => this.inlineSetupAt(S),
        });
    }
    if (has('mixed'))
      for (const w of o.workers)
        tasks.push({ label: `mixed (${o.profile.name}), ${w} worker(s)`, fn: () => this.mixed(w) });
    let capture: ReplayCapture | null = null;
    if (has('replay')) {
      tasks.push({
        label: 'replay: preparing the capture',
        fn: async () => {
          capture = await this.prepareCapture(o.replayPackets, '');
          return null;
        },
      });
      for (const w of o.workers)
        tasks.push({ label: `replay, ${w} worker(s)`, fn: () => this.replay(capture!, 'core', w) });
      // Against the I/O floor on the same file in the same run: tcpdump reading and writing it.
      if (hasTcpdump()) {
        tasks.push({ label: 'replay: tcpdump -r X -w Y', fn: () => this.tcpdump(capture!) });
        for (const w of o.workers)
          tasks.push({ label: `replay --out, ${w} worker(s)`, fn: () => this.replay(capture!, 'core', w, true) });
        // The same capture as taken on the inside host (generated captures only).
        if (!o.pcap)
          for (const w of o.workers)
            tasks.push({
              label: `replay --out one-sided, ${w} worker(s)`,
              fn: () => this.replay(capture!, 'core', w, true, true),
            });
        // A capture of a user's size (the engines' warm-up amortised), against tcpdump on it.
        if (!o.pcap && o.replayLargePackets > 0)
          tasks.push(
            ...this.onCapture(o.replayLargePackets, 'large', (large) => [
              { label: 'replay large: tcpdump -r X -w Y', fn: () => this.tcpdump(large()) },
              ...o.workers.map((w) => ({
                label: `replay large --out, ${w} worker(s)`,
                fn: () => this.replay(large(), 'core', w, true),
              })),
              ...o.workers.map((w) => ({
                label: `replay large --out one-sided, ${w} worker(s)`,
                fn: () => this.replay(large(), 'core', w, true, true),
              })),
            ]),
          );
      }
    }
    if (o.model) {
      if (has('established')) {
        for (const s of o.sessions.filter((x) => x <= MODEL_MAX_SESSIONS))
          tasks.push({ label: `model: established ${sessionsLabel(s)}`, fn: () => this.modelEstablished(s) });
      }
      if (has('setup')) tasks.push({ label: 'model: session setup', fn: () => this.modelSetup() });
      if (has('mixed')) tasks.push({ label: 'model: mixed', fn: () => this.modelMixed() });
      if (has('replay')) {
        tasks.push({ label: 'model: replay', fn: () => this.replay(capture!, 'model', 1) });
        // Issue 12: model,core against the model's own rate on the same packets (no replay around it).
        tasks.push({ label: 'model: raw on the replay capture', fn: () => this.modelRaw(capture!) });
        tasks.push({ label: 'model,core: replay', fn: () => this.replay(capture!, 'model+core', 1) });
        // The same on a longer capture: the default one is bound by the fresh core worker's
        // compiling, which a user's capture amortises (docs/replay.md Round six).
        if (!o.pcap && o.replayModelPackets > 0)
          tasks.push(
            ...this.onCapture(o.replayModelPackets, 'long', (long) => [
              { label: 'model: raw on the longer capture', fn: () => this.modelRaw(long()) },
              { label: 'model,core: replay of the longer capture', fn: () => this.replay(long(), 'model+core', 1) },
            ]),
          );
      }
      for (const w of ['filtered', 'filter-table'] as const)
        if (has(w)) tasks.push({ label: `model: ${w} vs none`, fn: () => this.filteredBaseline('model', w) });
    }
    if (o.kernel) tasks.push({ label: 'kernel oracle (short run)', fn: () => this.kernel() });
    if (o.kernel)
      for (const w of ['filtered', 'filter-table'] as const)
        if (has(w)) tasks.push({ label: `kernel: ${w} vs none`, fn: () => this.filteredBaseline('kernel', w) });
    if (o.micro) tasks.push({ label: 'microbenchmarks', fn: () => this.runMicro() });
    this.total = tasks.length;
    try {
      for (const t of tasks) {
        this.step(t.label);
        const line = await t.fn();
        this.finish(t.label, line);
      }
    } finally {
      if (capture) await (capture as ReplayCapture).cleanup();
      for (const c of this.generated) await c.cleanup(); // idempotent
    }
    this.derive();
  }

  // ---- core workloads ---------------------------------------------------------------------------

  private runner(
    scenario: Scenario,
    workers: number,
    capacity: number,
    packets: number,
    arenaPerPacket: number,
    maxLen: number,
    prefault = false,
  ): CoreRunner {
    const B = this.o.batchSize;
    const batches = Math.max(2, Math.ceil(packets / B));
    return new CoreRunner({
      scenario,
      workers,
      capacity,
      batches,
      batchSize: B,
      arenaBytes: Math.ceil(B * arenaPerPacket) + maxLen,
      seed: this.o.seed,
      layout: this.o.layout,
      prefault,
    });
  }

  /** Set-up through the pool in rounds of pre-loaded batches; returns the verdict tally and seconds. */
  private async setupThrough(
    r: CoreRunner,
    src: PacketSource,
    nowMs: number,
  ): Promise<{ check: BatchCheck; sec: number }> {
    const check: BatchCheck = { packets: 0, delivered: 0, drops: {} };
    const t0 = performance.now();
    while (src.remaining > 0) {
      const list = r.fillMany(src, nowMs);
      if (list.length === 0) break;
      const c = await r.driveChecked(list);
      check.packets += c.packets;
      check.delivered += c.delivered;
      for (const [k, v] of Object.entries(c.drops)) check.drops[k] = (check.drops[k] ?? 0) + v;
    }
    return { check, sec: (performance.now() - t0) / 1000 };
  }

  /**
   * Timed runs: each at least minRunSec (whole passes over `list`). Returns Mpps per run (wall
   * clock), and Mpps per CPU-second of this process (all threads: workers and main) per run.
   */
  private async timedPasses(
    r: CoreRunner,
    list: number[],
  ): Promise<{ mpps: number[]; cpuMpps: number[]; cpusGot: number[]; latency: LatencyStats | null }> {
    const per = r.packetsIn(list);
    // Warm-up: two untimed passes (JIT, caches), and a rate estimate to size the runs.
    await r.drive(list);
    const est = per / (await r.drive(list));
    const passes = Math.max(1, Math.ceil((this.o.minRunSec * est) / per));
    const mpps: number[] = [];
    const cpuMpps: number[] = [];
    const cpusGot: number[] = [];
    r.latency = new LatencyRecorder(this.o.runs * passes * list.length);
    for (let k = 0; k < this.o.runs; k++) {
      let sec = 0;
      const cpu = process.cpuUsage();
      const wall = performance.now();
      for (let p = 0; p < passes; p++) sec += await r.drive(list);
      const u = process.cpuUsage(cpu);
      mpps.push((passes * per) / sec / 1e6);
      cpuMpps.push((passes * per) / (u.user + u.system));
      // CPUs this process actually got: its CPU time (all threads) over the run's wall time.
      cpusGot.push((u.user + u.system) / 1000 / (performance.now() - wall));
    }
    const latency = r.latency.stats();
    r.latency = null;
    return { mpps, cpuMpps, cpusGot, latency };
  }

  private async established(S: number, W: number): Promise<string> {
    const o = this.o;
    const sc = benchScenario(this.base, S);
    const fs = new FlowSpace(sc);
    const wl = new EstablishedWorkload(fs, S, o.seed);
    // Pre-load one packet per session (at least 16 batches), so every pass visits every session.
    const streamPackets = Math.max(S, 16 * o.batchSize);
    const r = this.runner(sc, W, S, Math.max(streamPackets, 3 * Math.min(S, 65536)), 46, 64);
    try {
      const setup = await this.setupThrough(r, wl.setup(), T_SETUP);
      if (setup.check.delivered !== setup.check.packets)
        throw new Error(`bench: established set-up: ${checkText(setup.check)}`);
      const list = r.fillMany(wl.stream(0), T_STREAM, streamPackets);
      const check = await r.driveChecked(list);
      if (check.delivered !== check.packets) throw new Error(`bench: established stream: ${checkText(check)}`);
      const before = r.perWorkerPackets();
      const { mpps, cpuMpps, cpusGot, latency } = await this.timedPasses(r, list);
      const after = r.perWorkerPackets();
      const res: WorkloadResult = {
        workload: 'established',
        engine: 'core',
        workers: W,
        sessions: S,
        input: wl.describe(),
        measured:
          'worker pool: batch hand-over through the shared ring + Dataplane per packet (checks, L4 checksum verify, lookup, composed rewrite, output copy); frames pre-loaded and dispatched before timing',
        packetsPerRun: r.packetsIn(list) * Math.max(1, 1),
        samples: mpps,
        unit: 'Mpps',
        notes: {
          setupSec: setup.sec,
          setupCheck: checkText(setup.check),
          streamCheck: checkText(check),
          sessionsInTable: r.sessions(),
          bytesPerSession: r.bytesPerSession(),
          tableBytes: r.tableBytes(),
          perWorkerPackets: after.map((x, i) => x - before[i]),
          /** CPUs the process got during the timed runs (CPU seconds of all threads / wall seconds). */
          cpusGot: median(cpusGot),
          runsCpusGot: cpusGot,
          batchSize: o.batchSize,
          preloadedPackets: r.packetsIn(list),
        },
        ...(latency ? { latency } : {}),
      };
      this.results.push(res);
      const f = makeFigure({
        id: `established/sessions=${S}/workers=${W}/mpps`,
        workload: 'established',
        label: `established ${sessionsLabel(S)} sessions, ${W}w Mpps`,
        unit: 'Mpps',
        samples: mpps,
        higherIsBetter: true,
        workers: W,
        sessions: S,
        engine: 'core',
      });
      this.figures.push(
        f,
        nsFigure(f),
        makeFigure({
          id: `established/sessions=${S}/workers=${W}/cpu-mpps`,
          workload: 'established',
          label: `established ${sessionsLabel(S)} sessions, ${W}w Mpps per CPU-second`,
          unit: 'Mpps/CPU-s',
          samples: cpuMpps,
          higherIsBetter: true,
          workers: W,
          sessions: S,
          engine: 'core',
        }),
      );
      this.loadsPerPacket(S, r.bytesPerSession(), cpuMpps, `workers=${W}`, `${W}w`);
      if (W === 1 || !this.figures.some((x) => x.id === `established/sessions=${S}/bytes-per-session`)) {
        if (!this.figures.some((x) => x.id === `established/sessions=${S}/bytes-per-session`)) {
          this.figures.push(
            valueFigure({
              id: `established/sessions=${S}/bytes-per-session`,
              workload: 'established',
              label: `shared memory per session (${sessionsLabel(S)})`,
              unit: 'B/session',
              value: r.bytesPerSession(),
              higherIsBetter: false,
              sessions: S,
              engine: 'core',
            }),
          );
        }
      }
      return `established ${sessionsLabel(S)} sessions, ${W} worker(s): ${f.median.toFixed(2)} Mpps (${(1000 / f.median).toFixed(0)} ns/packet; min ${f.min.toFixed(2)}, max ${f.max.toFixed(2)}; the process got ${median(cpusGot).toFixed(2)} CPUs)${latencyLine(latency)}`;
    } finally {
      await r.close();
    }
  }

  /** Dependent-load latency per table size (bench/pointer-chase.ts), measured once per size. */
  private readonly chases = new Map<number, ChaseResult>();

  /**
   * This machine's dependent-load latency at the table's size (S sessions × B/session, measured
   * once per size: established/sessions=S/load-ns) and the established figure as loads per packet
   * (CPU ns per packet / ns per dependent load): how many fully dependent misses a packet costs.
   */
  private loadsPerPacket(S: number, bytesPerSession: number, cpuMpps: number[], idPart: string, label: string): void {
    let chase = this.chases.get(S);
    if (chase === undefined) {
      chase = dependentLoadNs(S * bytesPerSession);
      this.chases.set(S, chase);
      this.figures.push(
        makeFigure({
          id: `established/sessions=${S}/load-ns`,
          workload: 'established',
          label: `dependent load over the ${sessionsLabel(S)} table (${(chase.bytes / 1048576).toFixed(1)} MiB), ns`,
          unit: 'ns/load',
          samples: chase.runsNs,
          higherIsBetter: false,
          sessions: S,
          engine: 'core',
        }),
      );
    }
    const ns = chase.nsPerLoad;
    this.figures.push(
      makeFigure({
        id: `established/sessions=${S}/${idPart}/loads-per-packet`,
        workload: 'established',
        label: `established ${sessionsLabel(S)} sessions, ${label}: CPU time per packet in dependent loads`,
        unit: 'loads/packet',
        samples: cpuMpps.map((m) => 1000 / m / ns),
        higherIsBetter: false,
        sessions: S,
        engine: 'core',
      }),
    );
  }

  /**
   * The engine adapter's main-thread cost (CoreEngine.processFrames: validation, dispatch into
   * per-worker shares, descriptors, waiting): the main thread's CPU time per packet (Linux:
   * /proc/thread-self/schedstat; elsewhere the event loop's busy time), established UDP packets of
   * 1024 sessions in 4096-packet FrameBatches, two batches in flight. The event loop's busy time is
   * wall time: with W workers busy on W CPUs it also counts the time the main thread waited for a
   * CPU (measured: ~90 of ~180 ns/packet at 2 workers on 2 CPUs), so it is kept as a note only.
   */
  private async adapter(W: number): Promise<string> {
    const o = this.o;
    const S = 1024;
    const B = 4096;
    const sc = benchScenario(this.base, S);
    const fs = new FlowSpace(sc);
    const wl = new EstablishedWorkload(fs, S, o.seed);
    const e = createCoreEngine(sc, { workers: W, seed: o.seed, batchSize: B, layout: o.layout });
    const fill = (b: FrameBatch, src: PacketSource, nowMs: number): void => {
      let off = 0;
      let n = 0;
      while (n < b.maxPackets && src.remaining > 0 && off + src.maxLen <= b.arena.length) {
        off = (off + src.next(b, n, off, nowMs) + 7) & ~7;
        n++;
      }
      b.count = n;
    };
    try {
      const out: BatchOutput[] = [createBatchOutput(B, B * 64), createBatchOutput(B, B * 64)];
      const setup = wl.setup();
      const sb = createFrameBatch(B, B * 64);
      while (setup.remaining > 0) {
        fill(sb, setup, T_SETUP);
        await e.processFrames(sb, out[0]);
      }
      const batches: FrameBatch[] = [];
      const stream = wl.stream(0);
      for (let k = 0; k < 2; k++) {
        const b = createFrameBatch(B, B * 64);
        fill(b, stream, T_STREAM);
        batches.push(b);
      }
      await Promise.all([e.processFrames(batches[0], out[0]), e.processFrames(batches[1], out[1])]);
      for (let i = 0; i < batches[0].count; i++)
        if (resultFate(out[0].result[i]) !== FATE_DELIVERED)
          throw new Error(`bench: adapter packet ${i} not delivered`);
      const perRun = Math.max(8, Math.ceil((o.minRunSec * 2e6) / B));
      const samples: number[] = [];
      const busy: number[] = [];
      const cpu0 = mainThreadCpuNs();
      for (let r = 0; r < o.runs; r++) {
        const elu = performance.eventLoopUtilization();
        const c0 = mainThreadCpuNs();
        for (let k = 0; k < perRun; k += 2)
          await Promise.all([e.processFrames(batches[0], out[0]), e.processFrames(batches[1], out[1])]);
        const d = performance.eventLoopUtilization(elu);
        const c1 = mainThreadCpuNs();
        busy.push((d.active * 1e6) / (perRun * B));
        samples.push(cpu0 === null || c0 === null || c1 === null ? busy[r] : (c1 - c0) / (perRun * B));
      }
      const f = makeFigure({
        id: `adapter/workers=${W}/main-ns`,
        workload: 'established',
        label: `engine adapter (processFrames), ${W}w: main-thread ns per packet`,
        unit: 'ns/packet',
        samples,
        higherIsBetter: false,
        workers: W,
        engine: 'core',
      });
      this.figures.push(f);
      this.results.push({
        workload: 'established',
        engine: 'core',
        workers: W,
        sessions: S,
        input: `${S} established UDP sessions, 46-byte packets in ${B}-packet FrameBatches (two in flight)`,
        measured: `CoreEngine.processFrames: the main thread's ${cpu0 === null ? 'busy time (event-loop utilisation; no per-thread CPU clock here)' : 'CPU time (/proc/thread-self/schedstat)'} per packet — validation, dispatch into shares, descriptors, promise resolution; the workers' time not included`,
        packetsPerRun: perRun * B,
        samples,
        unit: 'ns/packet (main thread)',
        notes: { eventLoopBusyNs: median(busy) },
      });
      return `adapter, ${W} worker(s): ${f.median.toFixed(1)} ns per packet of main-thread ${cpu0 === null ? 'busy time' : 'CPU'} (processFrames; event loop busy ${median(busy).toFixed(1)} ns)`;
    } finally {
      await e.close();
    }
  }

  private async setup(W: number): Promise<string> {
    const o = this.o;
    const P = o.setupPerRun;
    // Warm-up: the slow path needs tens of thousands of packets before the JIT has optimised it.
    const warm = Math.max(2 * P, SETUP_WARMUP_FLOWS);
    const runs = o.runs + 1; // + warm-up
    const cap = warm + P * o.runs + 1024;
    const sc = benchScenario(this.base, cap);
    const fs = new FlowSpace(sc);
    const wl = new SetupWorkload(fs, 0);
    // Tables committed at creation (prefault): the runs grow the table into fresh pages, whose page
    // faults a long-running NAT pays once; their cost is reported as the tables' creation time.
    const t0 = performance.now();
    const r = this.runner(sc, W, cap, P, 46, 64, true);
    const createMs = performance.now() - t0;
    try {
      const rates: number[] = [];
      let check: BatchCheck | null = null;
      const rec = new LatencyRecorder(o.runs * r.ios.length);
      for (let k = 0; k < runs; k++) {
        if (k === 0) {
          check = await setupWarmUp(r, wl, T_SETUP, warm, P);
          continue;
        }
        const list = r.fillMany(wl.stream(), T_SETUP + k, P);
        r.latency = rec;
        const sec = await r.drive(list);
        r.latency = null;
        rates.push(r.packetsIn(list) / sec);
      }
      const latency = rec.stats();
      this.results.push({
        workload: 'setup',
        engine: 'core',
        workers: W,
        sessions: null,
        input: wl.describe(),
        measured: `worker pool: ${P} new flows per run, each a new conntrack entry + NAT mapping (slow path), after ${warm} warm-up flows; the table grows from ${warm} to ${cap - 1024} sessions over the runs`,
        packetsPerRun: P,
        samples: rates,
        unit: 'sessions/s',
        notes: {
          warmupCheck: check ? checkText(check) : null,
          sessionsInTable: r.sessions(),
          bytesPerSession: r.bytesPerSession(),
          prefault: true,
          tablesCreateMs: createMs,
        },
        ...(latency ? { latency } : {}),
      });
      const f = this.poolSetupFigure(W, '', `session setup, ${W}w sessions/s`, rates);
      return `session setup, ${W} worker(s): ${setupRange(f)}${latencyLine(latency)}`;
    } finally {
      await r.close();
    }
  }

  /** The figure setup/workers=W<tail>/sessions-per-s of a pool setup run's rates (pushed). */
  private poolSetupFigure(W: number, tail: string, label: string, rates: number[]): Figure {
    const f = makeFigure({
      id: `setup/workers=${W}${tail}/sessions-per-s`,
      workload: 'setup',
      label,
      unit: 'sessions/s',
      samples: rates,
      higherIsBetter: true,
      workers: W,
      engine: 'core',
    });
    this.figures.push(f);
    return f;
  }

  /**
   * Session setup through the pool into a table kept below 64k sessions (issue 11: ">= 1 M/s per
   * worker up to 64k sessions"; the growing-table figure above runs from 65k to 229k): before each
   * measured run the clock moves past the UDP timeout (untimed), so every session of the runs
   * before has expired and the run's P new flows fill an empty table.
   */
  private async setupSmallTable(W: number): Promise<string> {
    const o = this.o;
    const P = Math.min(o.setupPerRun, SETUP_TARGET_TABLE);
    const warm = Math.max(2 * P, SETUP_WARMUP_FLOWS);
    const cap = warm + 1024;
    const sc = benchScenario(this.base, cap);
    const fs = new FlowSpace(sc);
    const wl = new SetupWorkload(fs, 0);
    // Past every timeout an unanswered set-up flow can have (UDP; the expiry of one advance is
    // bounded, so a second one follows).
    const expireMs = (sc.conntrack.timeouts.udp + 1) * 1000;
    const r = this.runner(sc, W, cap, P, 46, 64, true);
    try {
      let t = T_SETUP;
      await setupWarmUp(r, wl, t, warm, P);
      const rates: number[] = [];
      let perRun = 0;
      for (let k = 0; k < o.runs; k++) {
        t += expireMs;
        await r.advance(t);
        await r.advance(t + 1);
        t += 1;
        const before = r.sessions();
        if (before !== 0)
          throw new Error(`bench: session setup (small table): ${before} sessions left after the expiry`);
        const list = r.fillMany(wl.stream(), t, P);
        const sec = await r.drive(list);
        perRun = r.packetsIn(list);
        // every new flow made a session of its own, in a table that held none before the run
        const after = r.sessions();
        if (after !== perRun)
          throw new Error(`bench: session setup (small table): ${after} sessions after a run of ${perRun} new flows`);
        rates.push(perRun / sec);
      }
      this.results.push({
        workload: 'setup',
        engine: 'core',
        workers: W,
        sessions: null,
        input: wl.describe(),
        measured: `worker pool: ${perRun} new flows per run into an empty table (every session of the runs before expired by an untimed advance past the UDP timeout), after ${warm} warm-up flows: the table grows from 0 to ${perRun} sessions in each run`,
        packetsPerRun: perRun,
        samples: rates,
        unit: 'sessions/s',
        notes: { bytesPerSession: r.bytesPerSession(), prefault: true, smallTable: 1, tableAtMost: perRun },
      });
      const f = this.poolSetupFigure(W, '/small-table', `session setup, ${W}w, table 0 to ${perRun} sessions/s`, rates);
      return `session setup, ${W} worker(s), table 0 → ${perRun}: ${setupRange(f)}`;
    } finally {
      await r.close();
    }
  }

  private async mixed(W: number): Promise<string> {
    const o = this.o;
    const p = o.profile;
    const P = o.mixedPerRun;
    const runs = o.runs + 1;
    const cap = Math.ceil(p.flows + P * runs * p.newFlowShare * 1.2) + 4096;
    const sc = benchScenario(this.base, cap);
    const fs = new FlowSpace(sc);
    const wl = new MixedWorkload(fs, p, o.seed);
    const sw = p.sizes.reduce((a, s) => a + s.weight, 0);
    const avg = p.sizes.reduce((a, s) => a + s.bytes * s.weight, 0) / sw;
    const r = this.runner(
      sc,
      W,
      cap,
      Math.max(P, 3 * Math.min(p.flows, 65536)) * 1.1,
      Math.max(avg * 1.3, 64),
      wl.maxLen,
      true,
    );
    try {
      const setup = await this.setupThrough(r, wl.setup(), T_SETUP);
      const rates: number[] = [];
      let check: BatchCheck | null = null;
      let bytes = 0;
      let pk = 0;
      for (let k = 0; k < runs; k++) {
        const b0 = wl.counts.bytes;
        const list = r.fillMany(wl.stream(), T_STREAM + k, P);
        if (k === 0) {
          check = await r.driveChecked(list);
          continue;
        }
        const sec = await r.drive(list);
        rates.push(r.packetsIn(list) / sec / 1e6);
        bytes += wl.counts.bytes - b0;
        pk += r.packetsIn(list);
      }
      this.results.push({
        workload: 'mixed',
        engine: 'core',
        workers: W,
        sessions: p.flows,
        input: wl.describe(),
        measured: `worker pool, ${P} packets per run (fresh packets each run: new flows stay new), fast and slow path as the traffic needs`,
        packetsPerRun: P,
        samples: rates,
        unit: 'Mpps',
        notes: {
          setupSec: setup.sec,
          setupCheck: checkText(setup.check),
          firstRunCheck: check ? checkText(check) : null,
          meanIpBytes: pk ? bytes / pk : null,
          counts: { ...wl.counts },
          sessionsInTable: r.sessions(),
        },
      });
      const f = makeFigure({
        id: `mixed/profile=${p.name}/workers=${W}/mpps`,
        workload: 'mixed',
        label: `mixed ${p.name}, ${W}w Mpps`,
        unit: 'Mpps',
        samples: rates,
        higherIsBetter: true,
        workers: W,
        sessions: p.flows,
        engine: 'core',
      });
      const gbps = makeFigure({
        id: `mixed/profile=${p.name}/workers=${W}/gbps`,
        workload: 'mixed',
        label: `mixed ${p.name}, ${W}w Gbit/s (IPv4 bytes)`,
        unit: 'Gbit/s',
        samples: rates.map((m) => (m * 1e6 * (pk ? bytes / pk : 0) * 8) / 1e9),
        higherIsBetter: true,
        workers: W,
        engine: 'core',
      });
      this.figures.push(f, nsFigure(f), gbps);
      return `mixed ${p.name}, ${W} worker(s): ${f.median.toFixed(2)} Mpps, ${gbps.median.toFixed(2)} Gbit/s (min ${f.min.toFixed(2)}, max ${f.max.toFixed(2)} Mpps)`;
    } finally {
      await r.close();
    }
  }

  // ---- one thread, no pool: the dataplane engineer's bench/core-throughput.ts ------------------------

  private async inlineEstablished(S: number): Promise<string> {
    const o = this.o;
    const packets = Math.max(262144, Math.round(o.minRunSec * 4e6));
    const r = await measureEstablished({ sessions: S, runs: o.runs, packets, seed: o.seed, layout: o.layout });
    this.results.push({
      workload: 'established',
      engine: 'core',
      workers: 0,
      sessions: S,
      input: `${S} established UDP sessions (ASSURED: out, reply, out 2.5 s later); 46-byte IPv4 UDP packets of random sessions, half app → internet, half internet → app (bench/core-throughput.ts)`,
      measured:
        'one thread, no pool: Dataplane.processBatch over pre-loaded 256-packet batches (bench/core-throughput.ts measureEstablished); no hand-over',
      packetsPerRun: packets,
      samples: r.runsMpps,
      unit: 'Mpps',
      notes: {
        cpuMpps: r.runsCpuMpps,
        fastPathShare: r.fastPathShare,
        setupMs: r.setupMs,
        bytesPerSession: r.bytesPerSession,
        frames: r.frames,
      },
    });
    const f = makeFigure({
      id: `established/sessions=${S}/inline/mpps`,
      workload: 'established',
      label: `established ${sessionsLabel(S)} sessions, one thread (no pool) Mpps`,
      unit: 'Mpps',
      samples: r.runsMpps,
      higherIsBetter: true,
      sessions: S,
      engine: 'core',
    });
    const c = makeFigure({
      id: `established/sessions=${S}/inline/cpu-mpps`,
      workload: 'established',
      label: `established ${sessionsLabel(S)} sessions, one thread Mpps per CPU-second`,
      unit: 'Mpps/CPU-s',
      samples: r.runsCpuMpps,
      higherIsBetter: true,
      sessions: S,
      engine: 'core',
    });
    this.figures.push(f, nsFigure(f), c);
    this.loadsPerPacket(S, r.bytesPerSession, r.runsCpuMpps, 'inline', 'one thread');
    return `established ${sessionsLabel(S)} sessions, one thread (no pool): ${f.median.toFixed(2)} Mpps (${c.median.toFixed(2)} per CPU-second), fast path ${(r.fastPathShare * 100).toFixed(1)}%`;
  }

  /**
   * Established packets of sessions whose keys were chosen to collide under the core's former
   * unkeyed flow-table hash (one socket to many remote:port pairs, src/traffic/workload.ts
   * collidingFanOut) against random keys, interleaved in the same run, one thread: the keyed hash
   * must keep the adversarial cost within 2x of random (issue 20).
   */
  private async adversarial(S: number): Promise<string> {
    const o = this.o;
    const packets = Math.max(262144, Math.round(o.minRunSec * 4e6));
    const ns: Record<'random' | 'adversarial', number[]> = { random: [], adversarial: [] };
    const cpuMpps: Record<'random' | 'adversarial', number[]> = { random: [], adversarial: [] };
    let fast = 1;
    for (let round = 0; round < 2; round++) {
      const order: Array<'random' | 'adversarial'> = round ? ['adversarial', 'random'] : ['random', 'adversarial'];
      for (const keys of order) {
        const r = await measureEstablished({
          sessions: S,
          runs: o.runs,
          packets,
          seed: o.seed,
          keys,
          layout: o.layout,
        });
        ns[keys].push(...r.runsMpps.map((x) => 1000 / x));
        cpuMpps[keys].push(...r.runsCpuMpps);
        if (keys === 'adversarial') fast = Math.min(fast, r.fastPathShare);
      }
    }
    const fig = (keys: 'random' | 'adversarial') =>
      makeFigure({
        id: `adversarial/sessions=${S}/keys=${keys}/inline/ns`,
        workload: 'adversarial',
        label: `established ${sessionsLabel(S)} sessions, ${keys} keys, one thread ns/packet`,
        unit: 'ns/packet',
        samples: ns[keys],
        higherIsBetter: false,
        sessions: S,
        engine: 'core',
      });
    const a = fig('adversarial');
    const r = fig('random');
    const cpuRatio = median(cpuMpps.random) / median(cpuMpps.adversarial);
    const ratio = valueFigure({
      id: `adversarial/sessions=${S}/ratio-to-random`,
      workload: 'adversarial',
      label: `adversarial / random keys, ${sessionsLabel(S)} sessions, ns per packet (CPU time)`,
      unit: 'x',
      value: cpuRatio,
      higherIsBetter: false,
      sessions: S,
      engine: 'core',
    });
    this.figures.push(a, r, ratio);
    this.results.push({
      workload: 'adversarial',
      engine: 'core',
      workers: 0,
      sessions: S,
      input: `${S} established UDP sessions of ONE socket 10.0.1.10:5000 to remote:port pairs whose orig keys share the top 8 bits of the core's former unkeyed flow-table hash (one probe cluster under it), against ${S} sessions with random keys (bench/core-throughput.ts), interleaved`,
      measured:
        'one thread, no pool: Dataplane.processBatch over pre-loaded 256-packet batches; ns per packet (wall clock) of each key set, and the ratio of CPU time per packet',
      packetsPerRun: packets,
      samples: ns.adversarial,
      unit: 'ns/packet',
      notes: { randomNs: ns.random, cpuRatio, fastPathShare: fast },
    });
    return `adversarial keys, ${sessionsLabel(S)} sessions: ${a.median.toFixed(0)} ns/packet vs ${r.median.toFixed(0)} random (CPU-time ratio ${cpuRatio.toFixed(2)}x)`;
  }

  /**
   * Established packets through a typical security-group + network-ACL setup (filteredScenario;
   * workload 'filtered') or the NAT instance's hardened filter table (filterTableScenario; workload
   * 'filter-table') against the same sessions without filters, interleaved in the same run, one
   * thread: security-grouped sessions must stay on the fast path and lose at most 10% (issue 16);
   * a filter table's established sessions replay their walk's counters on the fast path (docs/core.md "Filter table").
   */
  private async filtered(S: number, workload: 'filtered' | 'filter-table'): Promise<string> {
    const table = workload === 'filter-table';
    const what = table ? "the NAT instance's filter table" : 'security groups + ACLs';
    const o = this.o;
    const packets = Math.max(262144, Math.round(o.minRunSec * 4e6));
    const ns: Record<'none' | 'filtered', number[]> = { none: [], filtered: [] };
    const cpuMpps: Record<'none' | 'filtered', number[]> = { none: [], filtered: [] };
    let fast = 1;
    for (let round = 0; round < 2; round++) {
      const order: Array<'none' | 'filtered'> = round ? ['filtered', 'none'] : ['none', 'filtered'];
      for (const which of order) {
        const r = await measureEstablished({
          sessions: S,
          runs: o.runs,
          packets,
          seed: o.seed,
          filtered: which === 'filtered' && !table,
          filterTable: which === 'filtered' && table,
        });
        ns[which].push(...r.runsMpps.map((x) => 1000 / x));
        cpuMpps[which].push(...r.runsCpuMpps);
        if (which === 'filtered') fast = Math.min(fast, r.fastPathShare);
      }
    }
    const fig = (which: 'none' | 'filtered') =>
      makeFigure({
        id: `${workload}/sessions=${S}/filters=${which}/inline/ns`,
        workload,
        label: `established ${sessionsLabel(S)} sessions, ${which === 'none' ? 'no filters' : what}, one thread ns/packet`,
        unit: 'ns/packet',
        samples: ns[which],
        higherIsBetter: false,
        sessions: S,
        engine: 'core',
      });
    const f = fig('filtered');
    const n = fig('none');
    const cpuRatio = median(cpuMpps.none) / median(cpuMpps.filtered);
    const ratio = valueFigure({
      id: `${workload}/sessions=${S}/ratio-to-none`,
      workload,
      label: `${what} / none, ${sessionsLabel(S)} sessions, ns per packet (CPU time)`,
      unit: 'x',
      value: cpuRatio,
      higherIsBetter: false,
      sessions: S,
      engine: 'core',
    });
    this.figures.push(f, n, ratio);
    this.results.push({
      workload,
      engine: 'core',
      workers: 0,
      sessions: S,
      input: table
        ? `${S} established UDP sessions through vpc-nat-instance-open whose NAT instance has a hardened filter table (bench/core-throughput.ts filterTableScenario: INVALID dropped, ESTABLISHED accepted by FORWARD's second rule), against the same ${S} sessions without it, interleaved`
        : `${S} established UDP sessions through vpc-nat-instance-open with a typical security-group + network-ACL setup (bench/core-throughput.ts filteredScenario: app's and the NAT instance's ENIs track every flow, both subnets' ACLs are crossed), against the same ${S} sessions without filters, interleaved`,
      measured:
        'one thread, no pool: Dataplane.processBatch over pre-loaded 256-packet batches; ns per packet (wall clock) of each, and the ratio of CPU time per packet',
      packetsPerRun: packets,
      samples: ns.filtered,
      unit: 'ns/packet',
      notes: { noneNs: ns.none, cpuRatio, fastPathShare: fast },
    });
    return `${what}, ${sessionsLabel(S)} sessions: ${f.median.toFixed(0)} ns/packet vs ${n.median.toFixed(0)} without (CPU-time ratio ${cpuRatio.toFixed(2)}x, fast path ${(fast * 100).toFixed(1)}%)`;
  }

  /**
   * The 'filtered' and 'filter-table' workloads on the reference model or the kernel engine (issue
   * 16: filters benchmark on every engine): the same established sessions through the unfiltered
   * scenario and its filtered copy (the core's workloads' scenarios, bench/core-throughput.ts), one
   * engine each, measured in alternating rounds of the same run. 'filter-table' uses TCP sessions
   * (the hardened table lets tcp 80/443 out and rejects the workload's udp 443), 'filtered' UDP as
   * the core's. Packets/s per round; the ratio is none / filtered (the cost factor). The model is timed in CPU time (it runs in
   * this thread), the kernel in wall-clock time.
   */
  private async filteredBaseline(engine: 'model' | 'kernel', workload: 'filtered' | 'filter-table'): Promise<string> {
    const o = this.o;
    if (engine === 'kernel') {
      const pre = await checkKernelPrerequisites();
      if (!pre.ok) return `kernel ${workload} skipped: ${pre.missing.join('; ')}`;
    }
    const S = engine === 'model' ? 1024 : 16;
    const table = workload === 'filter-table';
    const what = table ? "the NAT instance's filter table" : 'security groups + ACLs';
    const scenarios = {
      none: unfilteredScenario(),
      filtered: table ? filterTableScenario() : filteredScenario(S),
    };
    for (const sc of Object.values(scenarios)) sc.conntrack.max = Math.max(sc.conntrack.max, 1024);
    const kind = table ? FLOW_TCP : FLOW_UDP;
    const wl = new EstablishedWorkload(new FlowSpace(scenarios.none), S, o.seed, kind);
    const packets = engine === 'model' ? o.modelPackets : Math.max(64, Math.round(o.kernelPackets / 4));
    const make = (sc: Scenario): Promise<Engine> =>
      engine === 'model'
        ? Promise.resolve(createModelEngine(sc, { seed: o.seed }))
        : createKernelEngine(sc, { timeMode: 'compress', seed: o.seed });
    const engines: Record<'none' | 'filtered', Engine | null> = { none: null, filtered: null };
    const rates: Record<'none' | 'filtered', number[]> = { none: [], filtered: [] };
    const delivered: Record<'none' | 'filtered', number> = { none: 0, filtered: 0 };
    try {
      for (const which of ['none', 'filtered'] as const) {
        const e = await make(scenarios[which]);
        engines[which] = e;
        await e.process(toInputs(wl.setup(), Infinity, T_SETUP));
      }
      // Warm-up round (not counted), then two rounds each, the order swapped every round.
      for (let round = 0; round < 3; round++) {
        const order = round % 2 ? (['filtered', 'none'] as const) : (['none', 'filtered'] as const);
        for (const which of order) {
          const e = engines[which];
          if (!e) throw new Error(`bench: no ${which} engine`);
          const inputs = toInputs(wl.stream(round * packets), packets, T_STREAM);
          const cpu0 = process.cpuUsage();
          const t = await this.timeEngine(e, inputs);
          const cpu = process.cpuUsage(cpu0);
          // The model runs in this thread: CPU time, robust on a shared machine. The kernel's work
          // is in its helper and softirqs: wall clock.
          const sec = engine === 'model' ? (cpu.user + cpu.system) / 1e6 : t.sec;
          delivered[which] = t.delivered;
          if (round > 0) rates[which].push(inputs.length / sec);
        }
      }
    } finally {
      for (const e of Object.values(engines)) await e?.close();
    }
    const ratio = median(rates.none) / median(rates.filtered);
    const input = `${S} established ${table ? 'TCP' : 'UDP'} sessions through ${table ? 'vpc-nat-instance-open whose NAT instance has a hardened filter table (bench/core-throughput.ts filterTableScenario)' : 'vpc-nat-instance-open with a typical security-group + network-ACL setup (bench/core-throughput.ts filteredScenario)'}, against the same sessions without it; alternating rounds of ${packets} packets`;
    const measured =
      engine === 'model'
        ? 'reference model, Engine.process, CPU time of this process per round (packets per CPU-second)'
        : "kernel engine's fast path (timeMode compress), Engine.process, wall clock per round (includes veth, injection and capture)";
    for (const which of ['none', 'filtered'] as const)
      this.results.push({
        workload,
        engine,
        workers: null,
        sessions: S,
        input: `${input} — ${which === 'none' ? 'without filters' : what}`,
        measured,
        packetsPerRun: packets,
        samples: rates[which].map((r) => r / 1e6),
        unit: 'Mpps',
        notes: { filters: which, delivered: delivered[which], of: packets },
      });
    this.figures.push(
      valueFigure({
        id: `${workload}/sessions=${S}/${engine}/ratio-to-none`,
        workload,
        label: `${engine}: ${what} / none, ${sessionsLabel(S)} sessions, time per packet`,
        unit: 'x',
        value: ratio,
        higherIsBetter: false,
        sessions: S,
        engine,
      }),
    );
    const pps = (x: number[]) => `${Math.round(median(x)).toLocaleString('en-US')} packets/s`;
    return `${engine}, ${what}, ${sessionsLabel(S)} sessions: ${pps(rates.filtered)} vs ${pps(rates.none)} without (×${ratio.toFixed(2)} the time per packet; delivered ${delivered.filtered}/${packets} and ${delivered.none}/${packets})`;
  }

  /** One thread: new flows into a table already holding S sessions (set up untimed per run). */
  private async inlineSetupAt(S: number): Promise<string> {
    const o = this.o;
    const flows = o.setupPerRun;
    const r = await measureSetup({ flows, runs: o.runs, layout: o.layout, prefill: S });
    this.results.push({
      workload: 'setup',
      engine: 'core',
      workers: 0,
      sessions: S,
      input: `${flows} new UDP flows (app → 198.18.x.y:53, a fresh source port or destination each) into a table holding ${S} sessions, fresh tables per run (bench/core-throughput.ts)`,
      measured: `one thread, no pool: Dataplane.processBatch, every packet the slow path (conntrack + NAT + confirm); the table grows from ${S} to ${S + flows} sessions`,
      packetsPerRun: flows,
      samples: r.runsPerSec,
      unit: 'sessions/s',
      notes: { cpuSessionsPerSec: r.cpuSessionsPerSec, prefault: r.prefault, tablesCreateMs: r.createMs, prefill: S },
    });
    const f = makeFigure({
      id: `setup/inline/table=${S}/sessions-per-s`,
      workload: 'setup',
      label: `session setup, one thread, table at ${sessionsLabel(S)} sessions, sessions/s`,
      unit: 'sessions/s',
      samples: r.runsPerSec,
      higherIsBetter: true,
      engine: 'core',
      sessions: S,
    });
    this.figures.push(f);
    return `session setup, one thread, table at ${sessionsLabel(S)} sessions: ${(f.median / 1e6).toFixed(3)} M sessions/s (${(r.cpuSessionsPerSec / 1e6).toFixed(3)} M per CPU-second)`;
  }

  private async inlineSetup(): Promise<string> {
    const o = this.o;
    const flows = o.setupPerRun * 4;
    const r = await measureSetup({ flows, runs: o.runs, layout: o.layout });
    this.results.push({
      workload: 'setup',
      engine: 'core',
      workers: 0,
      sessions: null,
      input: `${flows} new UDP flows (app → 198.18.x.y:53, a fresh source port or destination each), fresh tables per run (bench/core-throughput.ts)`,
      measured: 'one thread, no pool: Dataplane.processBatch, every packet the slow path (conntrack + NAT + confirm)',
      packetsPerRun: flows,
      samples: r.runsPerSec,
      unit: 'sessions/s',
      notes: { cpuSessionsPerSec: r.cpuSessionsPerSec, prefault: r.prefault, tablesCreateMs: r.createMs },
    });
    const f = makeFigure({
      id: 'setup/inline/sessions-per-s',
      workload: 'setup',
      label: 'session setup, one thread (no pool) sessions/s',
      unit: 'sessions/s',
      samples: r.runsPerSec,
      higherIsBetter: true,
      engine: 'core',
    });
    this.figures.push(f);
    return `session setup, one thread (no pool): ${(f.median / 1e6).toFixed(3)} M sessions/s`;
  }

  // ---- replay ---------------------------------------------------------------------------------------

  /** The captures onCapture generated (removed at the end of the run even when a task fails). */
  private readonly generated: ReplayCapture[] = [];

  /**
   * Tasks that generate a capture of `streamPackets` (prepareCapture), run `measure`'s tasks on it
   * (`cap()` is the capture once generated) and remove it.
   */
  private onCapture(
    streamPackets: number,
    size: 'large' | 'long',
    measure: (cap: () => ReplayCapture) => Array<{ label: string; fn: () => Promise<string | null> }>,
  ): Array<{ label: string; fn: () => Promise<string | null> }> {
    let cap: ReplayCapture | null = null;
    const get = (): ReplayCapture => {
      if (cap === null) throw new Error(`bench: the ${size} capture is not prepared`);
      return cap;
    };
    return [
      {
        label: `replay: preparing the ${size} capture`,
        fn: async () => {
          cap = await this.prepareCapture(streamPackets, size);
          this.generated.push(cap);
          return null;
        },
      },
      ...measure(get),
      {
        label: `replay: removing the ${size} capture`,
        fn: async () => {
          await cap?.cleanup();
          return null;
        },
      },
    ];
  }

  /**
   * The replay workload's capture: --pcap, or one generated from the profile (`streamPackets`
   * packets after the flows' set-up) with its one-sided twin. `size` '' is the default capture,
   * 'large' the one of a user's size (figure ids replay/large/...), 'long' model,core's longer one
   * (replay/long/...).
   */
  private async prepareCapture(streamPackets: number, size: '' | 'large' | 'long'): Promise<ReplayCapture> {
    const o = this.o;
    if (o.pcap) {
      const c = await scenarioForCapture(o.pcap.path, o.pcap.inside);
      let firstUs = 0;
      const rd = await openCapture(o.pcap.path);
      try {
        for await (const rec of rd) {
          firstUs = rec.timeUs;
          break;
        }
      } finally {
        await rd.close();
      }
      return {
        size,
        path: o.pcap.path,
        onePath: null,
        scenario: c.scenario,
        how: c.how,
        input: `capture ${o.pcap.path} (${c.hosts.records} records); scenario ${c.how}`,
        records: c.hosts.records,
        firstUs,
        cleanup: async () => {},
      };
    }
    // A capture of the mixed profile as seen at the VPC's edges: the inside host's packets, and the
    // internet's replies addressed to the NAT's Elastic IP; raw IPv4 link type.
    const p = o.profile;
    const dir = await mkdtemp(join(tmpdir(), 'natlab-bench-'));
    const path = join(dir, 'mixed.pcap');
    const onePath = join(dir, 'mixed-one-sided.pcap');
    // The default capture's scenario as it always was (conntrack max above what it could need);
    // the large one's holds the flows it makes (a table of millions would be the engine's
    // memory, not the replay's).
    let sc = benchScenario(this.base, p.flows + streamPackets + 4096);
    const cap = await writeMixedCapture(
      size === '' ? sc : benchScenario(this.base, p.flows),
      p,
      o.seed + 100,
      streamPackets,
      { setupMs: T_SETUP, streamMs: T_STREAM + 1000 },
      path,
      onePath,
    );
    if (size === 'large') sc = benchScenario(this.base, cap.flows + 4096);
    let removed = false;
    return {
      size,
      path,
      onePath,
      scenario: sc,
      how: `${OPEN_SCENARIO_NAME} (conntrack max raised)`,
      firstUs: T_SETUP * 1000,
      records: cap.records,
      input: `generated capture (raw IPv4, ${cap.records} packets, ${(cap.bytes / 1e6).toFixed(0)} MB): ${p.flows} flows' set-up (3 packets each) then ${streamPackets} packets of ${describeProfile(p)}`,
      cleanup: async () => {
        if (removed) return;
        removed = true;
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  /** `tcpdump -r X -w Y` on the replay's capture: the rate of reading and writing it (the I/O floor). */
  private async tcpdump(cap: ReplayCapture): Promise<string> {
    const o = this.o;
    const pre = figurePrefix(cap);
    const dir = await mkdtemp(join(tmpdir(), 'natlab-bench-tcpdump-'));
    const rates: number[] = [];
    let records = 0;
    try {
      const rd = await openCapture(cap.path);
      try {
        for await (const _rec of rd) records++;
      } finally {
        await rd.close();
      }
      for (let k = 0; k < runsFor(cap, o.runs); k++) {
        const t0 = performance.now();
        const r = spawnSync('tcpdump', ['-r', cap.path, '-w', join(dir, 'out.pcap')], { stdio: 'ignore' });
        const sec = (performance.now() - t0) / 1000;
        if (r.status !== 0) throw new Error(`tcpdump -r ${cap.path} -w ... exited ${r.status}`);
        rates.push(records / sec / 1e6);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    this.results.push({
      workload: 'replay',
      engine: 'tcpdump',
      workers: null,
      sessions: null,
      input: cap.input,
      measured:
        '`tcpdump -r X -w Y` on the replay capture (process start included): reading and writing the file, the floor a replay with --out is measured against',
      packetsPerRun: records,
      samples: rates,
      unit: 'Mpps',
      notes: { records, runs: rates.length, large: cap.size === 'large' ? 1 : 0 },
    });
    const f = makeFigure({
      id: `${pre}/tcpdump/mpps`,
      workload: 'replay',
      label: `tcpdump -r -w${cap.size === '' ? '' : ` (${cap.size} capture)`} Mpps`,
      unit: 'Mpps',
      samples: rates,
      higherIsBetter: true,
      engine: 'tcpdump',
    });
    this.figures.push(f);
    return `tcpdump -r -w (${records} packets): ${f.median.toFixed(3)} Mpps`;
  }

  private async replay(
    cap: ReplayCapture,
    engine: 'core' | 'model' | 'model+core',
    W: number,
    writeOutputs = false,
    oneSided = false,
  ): Promise<string> {
    const o = this.o;
    const input = oneSided ? cap.onePath! : cap.path;
    const outDir = writeOutputs ? await mkdtemp(join(tmpdir(), 'natlab-bench-replay-')) : null;
    const runs = engine !== 'core' ? Math.min(o.runs, 2) : runsFor(cap, o.runs);
    const rates: number[] = [];
    const walls: number[] = [];
    const cpuSplits: { main: number; engine: number; other: number }[] = [];
    let records = 0;
    let delivered = 0;
    for (let k = 0; k < runs; k++) {
      const tidsBefore = threadCpuNs();
      const e: Engine =
        engine !== 'model'
          ? createCoreEngine(cap.scenario, { workers: W, seed: o.seed, layout: o.layout })
          : createModelEngine(cap.scenario, { seed: o.seed });
      const model = engine === 'model+core' ? createModelEngine(cap.scenario, { seed: o.seed }) : null;
      const keep: Engine = {
        ...e,
        name: e.name,
        process: (b) => e.process(b),
        // The zero-copy hand-over replay uses when an engine has it (the core; docs/frame-batch.md).
        processFrames: e.processFrames
          ? (b, o, first, count, plan) => e.processFrames!(b, o, first, count, plan)
          : undefined,
        advance: (t) => e.advance(t),
        conntrack: () => e.conntrack(),
        conntrackCount: e.conntrackCount ? () => e.conntrackCount!() : undefined,
        natCounters: () => e.natCounters(),
        close: async () => {},
      };
      try {
        if (engine !== 'model') await e.process(warmupFrames(W, cap.firstUs)); // every worker thread is up before the clock starts
        const cpu0 = threadCpuNs();
        const engineTids = new Set([...(cpu0?.keys() ?? [])].filter((t) => tidsBefore !== null && !tidsBefore.has(t)));
        const t0 = performance.now();
        const out = await runReplay({
          input,
          outDir,
          outputFormat: 'pcap',
          scenario: cap.scenario,
          scenarioHow: cap.how,
          engines: model !== null ? ['model', 'core'] : [engine],
          workers: W,
          seed: o.seed,
          engineFactory: async (name) => (name === 'model' && model !== null ? model : keep),
        });
        const sec = (performance.now() - t0) / 1000;
        walls.push(sec * 1000);
        const split = threadSplitMs(cpu0, engineTids, mainTid());
        if (split !== null) cpuSplits.push(split);
        records = out.report.input.records;
        delivered = out.report.engines[0]?.delivered ?? 0;
        if (model !== null && !out.report.agree)
          throw new Error(`bench: model and core differ on ${input} (${out.report.differences.count} differences)`);
        if (oneSided && !(out.report.engines[0]?.readdressed.flow > 0))
          throw new Error(`bench: the one-sided capture ${input} had no reply re-addressed (not one-sided)`);
        rates.push(out.report.input.records / sec / 1e6);
      } finally {
        await e.close();
      }
    }
    if (outDir !== null) await rm(outDir, { recursive: true, force: true });
    const coreW = engine !== 'model';
    const pre = figurePrefix(cap);
    const tag = (writeOutputs ? '/out' : '') + (oneSided ? '/one-sided' : '');
    const what = `replay${cap.size === '' ? '' : ` (${cap.size} capture)`}${writeOutputs ? ' --out' : ''}${oneSided ? ' one-sided' : ''}`;
    this.results.push({
      workload: 'replay',
      engine: engine === 'model+core' ? 'model' : engine,
      workers: engine !== 'model' ? W : null,
      sessions: null,
      input: oneSided
        ? `${cap.input}, as captured on the inside host (one-sided: the internet's replies addressed to its private address, re-addressed by replay to each engine's mapping)`
        : cap.input,
      measured: writeOutputs
        ? '`natlab replay --out DIR --format pcap` end to end, as below, and every output written to per-egress pcap files'
        : '`natlab replay` end to end, one engine, a fresh engine per run (its threads started before the clock): read the capture, prepare each 4096-record chunk into a shared FrameBatch (link strip, ingress, numeric flow keys), hand-over (core: processFrames, results in its BatchOutput; model: process() on copies), accounting from the packed result words, flow re-addressing; the next chunk read while the engine works; no output files',
      packetsPerRun: records,
      samples: rates,
      unit: 'Mpps',
      notes: {
        records,
        delivered,
        runs,
        engines: engine === 'model+core' ? 'model,core' : engine,
        outputsWritten: writeOutputs ? 1 : 0,
        oneSided: oneSided ? 1 : 0,
        large: cap.size === 'large' ? 1 : 0,
        long: cap.size === 'long' ? 1 : 0,
        wallMs: median(walls),
        // Median CPU ms per run: main thread, the engine's worker threads, the process's other
        // threads (V8 compiling the fresh workers' code, GC, libuv). Absent without /proc.
        ...(cpuSplits.length > 0
          ? {
              cpuMsMain: median(cpuSplits.map((x) => x.main)),
              cpuMsEngineThreads: median(cpuSplits.map((x) => x.engine)),
              cpuMsOtherThreads: median(cpuSplits.map((x) => x.other)),
            }
          : {}),
      },
    });
    const f = makeFigure({
      id: `${pre}/${engine}${tag}${coreW ? `/workers=${W}` : ''}/mpps`,
      workload: 'replay',
      label: `${what} ${engine === 'model+core' ? 'model,core' : engine}${coreW ? `, ${W}w` : ''} Mpps`,
      unit: 'Mpps',
      samples: rates,
      higherIsBetter: true,
      workers: coreW ? W : undefined,
      engine: engine === 'model+core' ? 'model' : engine,
    });
    this.figures.push(f);
    const cpu =
      cpuSplits.length > 0
        ? `; per run: wall ${median(walls).toFixed(0)} ms, CPU main ${median(cpuSplits.map((x) => x.main)).toFixed(0)} ms, engine threads ${median(cpuSplits.map((x) => x.engine)).toFixed(0)} ms, other threads ${median(cpuSplits.map((x) => x.other)).toFixed(0)} ms`
        : '';
    return `${what} (${records} packets, ${delivered} delivered) through ${engine === 'model+core' ? 'model,core' : engine}${engine !== 'model' ? ` with ${W} worker(s)` : ''}: ${f.median.toFixed(3)} Mpps${cpu}`;
  }

  /**
   * The model's own rate on the replay capture's packets: Engine.process on them (InputPackets made
   * before the clock: link header stripped, ingress from the source address as replay decides
   * it), a fresh model per run, batches of 4096 — what `--engines model,core` is measured against.
   */
  private async modelRaw(cap: ReplayCapture): Promise<string> {
    const o = this.o;
    const ingress = new IngressMap(cap.scenario);
    const pv = new PacketView();
    const packets: InputPacket[] = [];
    const rd = await openCapture(cap.path);
    try {
      for await (const rec of rd) {
        if (parseFrame(rec.data, 0, rec.data.length, rec.linkType, pv) === PARSE_TRUNCATED_L2) continue;
        const at = ingress.classify(pv.src);
        if (at === INGRESS_NOWHERE || pv.capLen <= 0) continue;
        // a copy (rec.data is a Buffer: its slice would be a view of the reader's memory)
        packets.push({
          timeUs: rec.timeUs,
          ingress: at,
          frame: new Uint8Array(rec.data.subarray(pv.l3Off, pv.l3Off + pv.capLen)),
        });
      }
    } finally {
      await rd.close();
    }
    const rates: number[] = [];
    for (let k = 0; k < Math.min(o.runs, 2); k++) {
      const m = createModelEngine(cap.scenario, { seed: o.seed });
      // Fresh frames per run (the model may rewrite the frames it is given), made before the clock.
      const fresh = packets.map((x) => ({ ...x, frame: x.frame.slice() }));
      let delivered = 0;
      const t0 = performance.now();
      for (let i = 0; i < fresh.length; i += 4096)
        for (const r of await m.process(fresh.slice(i, i + 4096))) if (r.fate === FATE_DELIVERED) delivered++;
      rates.push(fresh.length / ((performance.now() - t0) / 1000) / 1e6);
      // The replay figures deliver the whole default capture; so must this run.
      if (delivered !== fresh.length && !o.pcap)
        throw new Error(
          `bench: the model delivered ${delivered} of ${fresh.length} packets of ${cap.path} (expected all)`,
        );
      await m.close();
    }
    this.results.push({
      workload: 'replay',
      engine: 'model',
      workers: null,
      sessions: null,
      input: cap.input,
      measured:
        "the reference model's Engine.process on the capture's packets (made before the clock), batches of 4096, a fresh model per run: the rate `--engines model,core` is measured against",
      packetsPerRun: packets.length,
      samples: rates,
      unit: 'Mpps',
      notes: { raw: 1, runs: rates.length, long: cap.size === 'long' ? 1 : 0 },
    });
    const f = makeFigure({
      id: `${figurePrefix(cap)}/model/raw-mpps`,
      workload: 'replay',
      label: `model raw on the replay${cap.size === '' ? '' : ` (${cap.size})`} capture Mpps`,
      unit: 'Mpps',
      samples: rates,
      higherIsBetter: true,
      engine: 'model',
    });
    this.figures.push(f);
    return `model raw on the replay capture (${packets.length} packets): ${f.median.toFixed(3)} Mpps`;
  }

  // ---- baselines ---------------------------------------------------------------------------------

  private async timeEngine(e: Engine, inputs: InputPacket[]): Promise<{ sec: number; delivered: number }> {
    const t0 = performance.now();
    const res = await e.process(inputs);
    const sec = (performance.now() - t0) / 1000;
    return { sec, delivered: res.filter((x) => x.fate === FATE_DELIVERED).length };
  }

  private async modelEstablished(S: number): Promise<string> {
    const o = this.o;
    const sc = benchScenario(this.base, S);
    const wl = new EstablishedWorkload(new FlowSpace(sc), S, o.seed);
    const e = createModelEngine(sc, { seed: o.seed });
    try {
      await e.process(toInputs(wl.setup(), Infinity, T_SETUP));
      const runs = Math.min(o.runs, 3);
      const rates: number[] = [];
      let delivered = 0;
      for (let k = 0; k <= runs; k++) {
        const inputs = toInputs(wl.stream(k * o.modelPackets), o.modelPackets, T_STREAM);
        const t = await this.timeEngine(e, inputs);
        delivered = t.delivered;
        if (k > 0) rates.push(inputs.length / t.sec / 1e6);
      }
      this.pushModel(
        'established',
        `established/sessions=${S}/model/mpps`,
        `model: established ${sessionsLabel(S)} Mpps`,
        S,
        rates,
        wl.describe(),
        `reference model, Engine.process over ${o.modelPackets} packets per run (a sample of the same stream the core gets; rates are per packet)`,
        { delivered, of: o.modelPackets },
      );
      return `model, established ${sessionsLabel(S)}: ${median(rates).toFixed(3)} Mpps (sample of ${o.modelPackets} packets per run)`;
    } finally {
      await e.close();
    }
  }

  private async modelSetup(): Promise<string> {
    const o = this.o;
    const n = o.modelPackets;
    const runs = Math.min(o.runs, 3);
    const sc = benchScenario(this.base, n * (runs + 1) + 1024);
    const wl = new SetupWorkload(new FlowSpace(sc), 0);
    const e = createModelEngine(sc, { seed: o.seed });
    try {
      const rates: number[] = [];
      for (let k = 0; k <= runs; k++) {
        const inputs = toInputs(wl.stream(), n, T_SETUP + k);
        const t = await this.timeEngine(e, inputs);
        if (k > 0) rates.push(inputs.length / t.sec);
      }
      this.results.push({
        workload: 'setup',
        engine: 'model',
        workers: null,
        sessions: null,
        input: wl.describe(),
        measured: `reference model, Engine.process over ${n} new flows per run (a sample; rates are per packet)`,
        packetsPerRun: n,
        samples: rates,
        unit: 'sessions/s',
        notes: {},
      });
      this.figures.push(
        makeFigure({
          id: 'setup/model/sessions-per-s',
          workload: 'setup',
          label: 'model: session setup sessions/s',
          unit: 'sessions/s',
          samples: rates,
          higherIsBetter: true,
          engine: 'model',
        }),
      );
      return `model, session setup: ${(median(rates) / 1e6).toFixed(3)} M sessions/s`;
    } finally {
      await e.close();
    }
  }

  private async modelMixed(): Promise<string> {
    const o = this.o;
    const p = o.profile;
    const runs = Math.min(o.runs, 3);
    const sc = benchScenario(this.base, Math.ceil(p.flows + o.modelPackets * (runs + 1) * p.newFlowShare * 1.2) + 4096);
    const wl = new MixedWorkload(new FlowSpace(sc), p, o.seed);
    const e = createModelEngine(sc, { seed: o.seed });
    try {
      await e.process(toInputs(wl.setup(), Infinity, T_SETUP));
      const rates: number[] = [];
      for (let k = 0; k <= runs; k++) {
        const inputs = toInputs(wl.stream(), o.modelPackets, T_STREAM + k);
        const t = await this.timeEngine(e, inputs);
        if (k > 0) rates.push(inputs.length / t.sec / 1e6);
      }
      this.pushModel(
        'mixed',
        `mixed/profile=${p.name}/model/mpps`,
        `model: mixed ${p.name} Mpps`,
        p.flows,
        rates,
        wl.describe(),
        `reference model, Engine.process over ${o.modelPackets} packets per run (the start of the same stream the core gets; rates are per packet)`,
        {},
      );
      return `model, mixed ${p.name}: ${median(rates).toFixed(3)} Mpps`;
    } finally {
      await e.close();
    }
  }

  private pushModel(
    workload: WorkloadName,
    id: string,
    label: string,
    sessions: number,
    rates: number[],
    input: string,
    measured: string,
    notes: Record<string, unknown>,
  ): void {
    this.results.push({
      workload,
      engine: 'model',
      workers: null,
      sessions,
      input,
      measured,
      packetsPerRun: this.o.modelPackets,
      samples: rates,
      unit: 'Mpps',
      notes,
    });
    this.figures.push(
      makeFigure({
        id,
        workload,
        label,
        unit: 'Mpps',
        samples: rates,
        higherIsBetter: true,
        sessions,
        engine: 'model',
      }),
    );
  }

  private async kernel(): Promise<string> {
    const o = this.o;
    const pre = await checkKernelPrerequisites();
    if (!pre.ok) {
      this.notes.push(`kernel oracle not measured: ${pre.missing.join('; ')}`);
      return `kernel oracle skipped: ${pre.missing.join('; ')}`;
    }
    const S = 16;
    const sc = benchScenario(this.base, 1024);
    const wl = new EstablishedWorkload(new FlowSpace(sc), S, o.seed);
    const e = await createKernelEngine(sc, { timeMode: 'compress', seed: o.seed });
    const measured =
      "Linux netfilter in network namespaces through the fast path: one pinned helper injects each packet, sends fences until the kernel is done with it, collects its frames and evidence, a batch of packets per round trip (docs/kernel-oracle.md) — includes veth, injection and capture, not the kernel's forwarding capacity";
    try {
      await e.process(toInputs(wl.setup(), Infinity, T_SETUP));
      const est = toInputs(wl.stream(0), o.kernelPackets, T_STREAM);
      const a = await this.timeEngine(e, est);
      const sw = new SetupWorkload(new FlowSpace(sc), 1000);
      const nw = toInputs(sw.stream(), o.kernelPackets, T_STREAM + 1);
      const b = await this.timeEngine(e, nw);
      const estRate = est.length / a.sec / 1e6;
      // The one-at-a-time path on the same workload, same run: the fast path's factor.
      const single = await createKernelEngine(sc, { timeMode: 'compress', seed: o.seed, injection: 'single' });
      let singleRate = 0;
      try {
        await single.process(toInputs(wl.setup(), Infinity, T_SETUP));
        const est1 = toInputs(wl.stream(0), o.kernelSinglePackets, T_STREAM);
        singleRate = est1.length / (await this.timeEngine(single, est1)).sec / 1e6;
      } finally {
        await single.close();
      }
      const setupRate = nw.length / b.sec;
      this.results.push({
        workload: 'established',
        engine: 'kernel',
        workers: null,
        sessions: S,
        input: `${wl.describe()} (short run: ${est.length} packets)`,
        measured,
        packetsPerRun: est.length,
        samples: [estRate],
        unit: 'Mpps',
        notes: { delivered: a.delivered, warnings: e.warnings },
      });
      this.results.push({
        workload: 'setup',
        engine: 'kernel',
        workers: null,
        sessions: null,
        input: `${sw.describe()} (short run: ${nw.length} new flows)`,
        measured,
        packetsPerRun: nw.length,
        samples: [setupRate],
        unit: 'sessions/s',
        notes: { delivered: b.delivered },
      });
      this.results.push({
        workload: 'established',
        engine: 'kernel',
        workers: null,
        sessions: S,
        input: `${wl.describe()} (one at a time: ${o.kernelSinglePackets} packets)`,
        measured:
          'the original one-at-a-time kernel path (inject on a veth, quiet time 3 ms, collect, per packet from Node)',
        packetsPerRun: o.kernelSinglePackets,
        samples: [singleRate],
        unit: 'Mpps',
        notes: { injection: 'single', fastPathFactor: singleRate > 0 ? estRate / singleRate : null },
      });
      this.figures.push(
        makeFigure({
          id: 'established/kernel/mpps',
          workload: 'established',
          label: `kernel: established (${S} sessions) Mpps`,
          unit: 'Mpps',
          samples: [estRate],
          higherIsBetter: true,
          sessions: S,
          engine: 'kernel',
        }),
      );
      this.figures.push(
        makeFigure({
          id: 'setup/kernel/sessions-per-s',
          workload: 'setup',
          label: 'kernel: session setup sessions/s',
          unit: 'sessions/s',
          samples: [setupRate],
          higherIsBetter: true,
          engine: 'kernel',
        }),
      );
      return `kernel oracle (incl. veth + injection): established ${(estRate * 1e6).toFixed(0)} packets/s (${a.delivered}/${est.length} delivered; one at a time ${(singleRate * 1e6).toFixed(0)} packets/s, ×${singleRate > 0 ? (estRate / singleRate).toFixed(0) : '?'}), setup ${setupRate.toFixed(0)} sessions/s`;
    } finally {
      await e.close();
    }
  }

  private async runMicro(): Promise<string> {
    this.micro = await runMicro({ time: this.o.microTimeMs });
    for (const m of this.micro) {
      this.figures.push(
        makeFigure({
          id: `micro/${m.group}/${m.name}`,
          workload: 'micro',
          label: m.name,
          unit: 'ns/op',
          samples: [m.nsMedian, m.nsMin, m.nsMax].filter(Number.isFinite),
          higherIsBetter: false,
          engine: m.group === 'core' ? 'core' : undefined,
        }),
      );
      const f = this.figures[this.figures.length - 1];
      f.median = m.nsMedian;
    }
    return `microbenchmarks: ${this.micro.length} tasks`;
  }

  // ---- derived figures: scaling, ratios --------------------------------------------------------

  private derive(): void {
    const find = (id: string) => this.figures.find((f) => f.id === id);
    const W = this.o.workers;
    const add: Figure[] = [];
    // Scaling efficiency vs one worker: rate(W) / (W × rate(1)).
    for (const f of this.figures) {
      if (f.engine !== 'core' || !f.workers || f.workers === 1 || !/\/(mpps|sessions-per-s)$/.test(f.id)) continue;
      const one = find(f.id.replace(`/workers=${f.workers}/`, '/workers=1/'));
      if (!one) continue;
      add.push(
        valueFigure({
          id: f.id.replace(/\/(mpps|sessions-per-s)$/, '/scaling'),
          workload: f.workload,
          label: `${f.label.replace(/ (Mpps|sessions\/s)$/, '')} scaling efficiency vs 1 worker`,
          unit: 'x',
          value: f.median / (f.workers * one.median),
          higherIsBetter: true,
          workers: f.workers,
          sessions: f.sessions,
          engine: 'core',
          samples: f.samples.map((x) => x / (f.workers! * one.median)),
        }),
      );
    }
    // Ratios of the baselines to the core (same workload; core at 1 worker and at the most workers).
    const wMax = Math.max(...W);
    const ratio = (baseId: string, coreId: (w: number) => string, label: string, extra: Partial<Figure> = {}) => {
      const b = find(baseId);
      if (!b) return;
      for (const w of new Set([1, wMax])) {
        const c = find(coreId(w));
        if (!c) continue;
        add.push(
          valueFigure({
            id: `${baseId.replace(/\/(mpps|sessions-per-s)$/, '')}/ratio-to-core-workers=${w}`,
            workload: b.workload,
            label: `${label}: core (${w}w) / ${b.engine}`,
            unit: 'x',
            value: c.median / b.median,
            higherIsBetter: true,
            workers: w,
            engine: b.engine,
            ...extra,
          }),
        );
      }
    };
    for (const s of this.o.sessions)
      ratio(
        `established/sessions=${s}/model/mpps`,
        (w) => `established/sessions=${s}/workers=${w}/mpps`,
        `established ${sessionsLabel(s)}`,
        { sessions: s },
      );
    ratio('setup/model/sessions-per-s', (w) => `setup/workers=${w}/sessions-per-s`, 'session setup');
    ratio(
      `mixed/profile=${this.o.profile.name}/model/mpps`,
      (w) => `mixed/profile=${this.o.profile.name}/workers=${w}/mpps`,
      `mixed ${this.o.profile.name}`,
    );
    ratio('replay/model/mpps', (w) => `replay/core/workers=${w}/mpps`, 'replay');
    // --engines model,core against the model's own rate on the same packets (issue 12: >= 0.9),
    // on the default capture and on the longer one.
    for (const pre of ['replay', 'replay/long']) {
      const mc = find(`${pre}/model+core/workers=1/mpps`);
      const raw = find(`${pre}/model/raw-mpps`);
      if (mc && raw)
        add.push(
          valueFigure({
            id: `${pre}/model+core/ratio-to-model-raw`,
            workload: 'replay',
            label: `replay --engines model,core vs the model raw on the same packets${pre === 'replay' ? '' : ' (longer capture)'} (target >= 0.9)`,
            unit: 'x',
            value: mc.median / raw.median,
            higherIsBetter: true,
            engine: 'model',
          }),
        );
    }
    // Replay --out against tcpdump on the same file, the default capture and the large one. The
    // one-sided capture has the two-sided one's records and sizes: the same tcpdump floor.
    for (const pre of ['replay', 'replay/large']) {
      const big = pre === 'replay' ? '' : ' (large capture)';
      ratio(
        `${pre}/tcpdump/mpps`,
        (w) => `${pre}/core/out/workers=${w}/mpps`,
        `replay --out${big} vs tcpdump -r -w (target >= 0.8 two-sided)`,
      );
      const td = find(`${pre}/tcpdump/mpps`);
      for (const w of new Set([1, wMax])) {
        const c = find(`${pre}/core/out/one-sided/workers=${w}/mpps`);
        if (!td || !c) continue;
        add.push(
          valueFigure({
            id: `${pre}/tcpdump/ratio-to-core-one-sided-workers=${w}`,
            workload: 'replay',
            label: `replay --out one-sided${big} vs tcpdump -r -w (target >= 0.5): core (${w}w) / tcpdump`,
            unit: 'x',
            value: c.median / td.median,
            higherIsBetter: true,
            workers: w,
            engine: 'tcpdump',
          }),
        );
      }
    }
    // Kernel: against the core at the smallest session count measured.
    const sMin = Math.min(...this.o.sessions);
    ratio(
      'established/kernel/mpps',
      (w) => `established/sessions=${sMin}/workers=${w}/mpps`,
      `established (kernel ${16} sessions, core ${sessionsLabel(sMin)})`,
    );
    ratio('setup/kernel/sessions-per-s', (w) => `setup/workers=${w}/sessions-per-s`, 'session setup');
    this.figures.push(...add);
  }
}

/** Runs per figure on a capture: the large one's runs are seconds each (at most 3). */
/**
 * The setup workloads' warm-up (the slow path needs tens of thousands of packets before the JIT has
 * optimised it): `warm` new flows at `nowMs` in rounds of at most `perRound`; every packet must
 * create its session. Returns the tally.
 */
async function setupWarmUp(
  r: CoreRunner,
  wl: SetupWorkload,
  nowMs: number,
  warm: number,
  perRound: number,
): Promise<BatchCheck> {
  const check: BatchCheck = { packets: 0, delivered: 0, drops: {} };
  for (let done = 0; done < warm; ) {
    const c = await r.driveChecked(r.fillMany(wl.stream(), nowMs, Math.min(perRound, warm - done)));
    if (c.packets === 0) throw new Error('bench: session setup warm-up: no packet written');
    done += c.packets;
    check.packets += c.packets;
    check.delivered += c.delivered;
    for (const [key, v] of Object.entries(c.drops)) check.drops[key] = (check.drops[key] ?? 0) + v;
  }
  if (check.delivered !== check.packets) throw new Error(`bench: session setup: ${checkText(check)}`);
  return check;
}

/** A setup figure's median with its range, in M sessions/s (the progress line). */
function setupRange(f: Figure): string {
  return `${(f.median / 1e6).toFixed(3)} M sessions/s (min ${(f.min / 1e6).toFixed(3)}, max ${(f.max / 1e6).toFixed(3)})`;
}

/** The figure ids' prefix of a capture's results: replay/... for the default one, replay/<size>/... else. */
function figurePrefix(cap: ReplayCapture): string {
  return cap.size === '' ? 'replay' : `replay/${cap.size}`;
}

function runsFor(cap: ReplayCapture, runs: number): number {
  return cap.size === 'large' ? Math.min(runs, 3) : runs;
}

/** True when tcpdump is on the PATH (the replay workload's I/O-floor baseline). */
function hasTcpdump(): boolean {
  return spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** New flows processed (and checked) before the timed session-setup runs. */
export const SETUP_WARMUP_FLOWS = 65536;

/** --quick caps the mixed profile's active flows (their set-up dominates a quick run). */
export const QUICK_PROFILE_FLOWS = 2000;

export async function runBench(o: BenchOptions, progress: (e: ProgressEvent) => void = () => {}): Promise<BenchReport> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const start = loadavg();
  const capped: string[] = [];
  if (
    o.quick &&
    o.profile.flows > QUICK_PROFILE_FLOWS &&
    (o.workloads.includes('mixed') || o.workloads.includes('replay'))
  ) {
    capped.push(`--quick: the profile's ${o.profile.flows} active flows are capped at ${QUICK_PROFILE_FLOWS}`);
    o = { ...o, profile: { ...o.profile, flows: QUICK_PROFILE_FLOWS } };
  }
  const s = new Suite(o, progress);
  s.notes.push(...capped);
  await s.run();
  const notes = [...s.notes];
  const end = loadavg();
  const cores = availableParallelism();
  if (Math.max(start[0], end[0]) > cores * 0.75) {
    notes.push(
      `the machine was busy: load average ${start[0].toFixed(1)} at start, ${end[0].toFixed(1)} at end on ${cores} cores — other processes competed for the CPUs, figures are pessimistic and noisy`,
    );
  }
  const durationSec = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  const cpuSec = (used.user + used.system) / 1e6;
  return {
    kind: 'natlab-bench',
    version: 1,
    date: new Date().toISOString(),
    machine: machineInfo(),
    parameters: { ...o, profile: o.profile, profileDescription: describeProfile(o.profile) },
    durationSec,
    load: { start, end },
    processCpu: { cpuSec, cpusGot: cpuSec / durationSec },
    results: s.results,
    figures: s.figures,
    micro: s.micro,
    notes,
  };
}
