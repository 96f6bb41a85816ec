// Single-thread throughput of the core Dataplane (no threads, no pool): `npx tsx bench/core-throughput.ts`
//
// Input: pre-loaded 46-byte IPv4 UDP packets (20 IP + 8 UDP + 18 payload = the IPv4 part of a
// 64-byte Ethernet frame), of sessions that already exist and are ASSURED (UDP streams), half
// app → internet (MASQUERADE + IGW), half internet → app (IGW + de-NAT), in a random session order,
// through vpc-nat-instance-open (the built-in without its NATSG security group, which would drop
// UDP). Frames sit in 256-packet BatchIOs (each with its own arena, as the pool hands them over);
// the measured loop is Dataplane.processBatch only.
// Session setup: every frame a new UDP flow (app → 198.18.x.y:53 from a fresh source port / dst).
//
// Options: --sessions 1000,65536,1048576  --runs 5  --packets 4000000  --json (print JSON only)

import { performance } from 'node:perf_hooks';
import { compileScenarioObject, loadOpenScenario, scenarioToObject } from '../src/scenario/index.ts';
import type { Scenario } from '../src/spec/scenario.ts';
import {
  createCoreBatch,
  createCoreShared,
  sharedBytesPerSession,
  sharedBytesTotal,
  type CoreBatch,
  type CoreLayout,
  CORE_LAYOUTS,
  DEFAULT_LAYOUT,
  Dataplane,
  readSessionCounts,
} from '../src/core/bench-api.ts';
import { resultFate, resultOutCount, resultReason } from '../src/spec/frame-batch.ts';
import { buildUdp, parseIpv4Addr } from '../src/packet/index.ts';
import { writeBenchResult } from './results.ts';
import { collidingFanOut } from '../src/traffic/workload.ts';

const APP_POINT = 3;
const APP = parseIpv4Addr('10.0.1.10');
const EIP = parseIpv4Addr('203.0.113.10');
const REMOTE_BASE = parseIpv4Addr('198.18.0.0');
const CHUNK = 256;
const PAYLOAD = new Uint8Array(18);

export interface EstablishedOptions {
  sessions: number;
  runs?: number;
  /** Packets per measured run. */
  packets?: number;
  /** Distinct pre-built frames (cycled). */
  frames?: number;
  seed?: number;
  /**
   * Session keys: 'random' (spread source ports and remotes, the default) or 'adversarial' (one
   * socket 10.0.1.10:5000 to remote:port pairs chosen to collide under the core's former unkeyed
   * flow-table hash: src/traffic/workload.ts collidingFanOut).
   */
  keys?: 'random' | 'adversarial';
  /** Flow-table layout (src/core/layout.ts CoreLayout; default: the engine's default). */
  layout?: CoreLayout;
  /**
   * A typical security-group + network-ACL setup on the path (filteredScenario): the same
   * sessions with every ENI filtered and an ACL on each subnet (docs/benchmarks.md "filtered").
   */
  filtered?: boolean;
  /**
   * The NAT instance's own filter table on the path (filterTableScenario: a hardened table, as
   * scenarios/nat-instance-hardened.yaml): the same sessions meet its FORWARD chain (replayed by the fast path).
   */
  filterTable?: boolean;
}

/** The hardened FORWARD chain of scenarios/nat-instance-hardened.yaml (docs/semantics.md §13). */
const HARDENED_FILTER = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:EGRESS - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 10.0.0.0/16 -j EGRESS
-A EGRESS -p tcp -m multiport --dports 80,443 -j ACCEPT
-A EGRESS -p udp --dport 53 -j ACCEPT
-A EGRESS -p icmp --icmp-type echo-request -j ACCEPT
-A EGRESS -j REJECT --reject-with icmp-admin-prohibited
COMMIT
`;

/**
 * The scenario of the unfiltered side of every filter workload and of the established workload:
 * vpc-nat-instance-open, the built-in without its NATSG security group (which would drop the
 * workloads' UDP) — one place to change what "no filters" means.
 */
export function unfilteredScenario(): Scenario {
  return loadOpenScenario();
}

/** vpc-nat-instance-open whose NAT instance carries HARDENED_FILTER beside its nat table. */
export function filterTableScenario(): Scenario {
  // biome-ignore lint/suspicious/noExplicitAny: a scenario file object is untyped.
  const o = scenarioToObject(loadOpenScenario()) as Record<string, any>;
  o.instances.nat.iptables = HARDENED_FILTER + o.instances.nat.iptables;
  return compileScenarioObject(o, '<bench filter table>');
}

/**
 * vpc-nat-instance-open (the built-in without its NATSG group) with a typical security-group and
 * network-ACL setup (docs/semantics.md §11): the NAT instance's group allows everything from the VPC in (AWS's "open alternative" of
 * the NAT group) and everything out; app's group allows nothing in (its flows' responses are
 * tracked) and everything out (AWS's default); each subnet has an ACL with the classic rules (the
 * VPC, the ephemeral range for replies, everything out). Every flow of the workload is tracked by
 * app's and the NAT instance's ENIs and crosses both subnets' ACLs.
 */
export function filteredScenario(sessions: number): Scenario {
  // biome-ignore lint/suspicious/noExplicitAny: a scenario file object is untyped.
  const o = scenarioToObject(loadOpenScenario()) as Record<string, any>;
  const tracking = { allowance: Math.max(262144, 2 * sessions) };
  o.securityGroups = {
    natsg: { inbound: [{ protocol: 'all', cidr: '10.0.0.0/16' }] },
    appsg: { inbound: [] },
  };
  o.instances.nat.securityGroups = ['natsg'];
  o.instances.nat.connectionTracking = tracking;
  o.instances.app.securityGroups = ['appsg'];
  o.instances.app.connectionTracking = tracking;
  const acl = {
    inbound: [
      { rule: 100, action: 'allow', protocol: 'all', cidr: '10.0.0.0/16' },
      { rule: 200, action: 'allow', protocol: 'tcp', ports: '1024-65535', cidr: '0.0.0.0/0' },
      { rule: 210, action: 'allow', protocol: 'udp', ports: '1024-65535', cidr: '0.0.0.0/0' },
    ],
    outbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
  };
  o.networkAcls = { priv: { subnets: ['private'], ...acl }, pub: { subnets: ['public'], ...acl } };
  return compileScenarioObject(o, '<bench filtered>');
}

export interface RunStats {
  mpps: number;
  nsPerPacket: number;
  runsMpps: number[];
}

function sessionTuple(s: number): { sport: number; dst: number; dport: number } {
  return { sport: 1024 + (s % 60000), dst: (REMOTE_BASE + Math.floor(s / 60000)) >>> 0, dport: 53 };
}

/** The sessions' tuples of a key set (see EstablishedOptions.keys). */
function keySet(
  sessions: number,
  keys: 'random' | 'adversarial',
): (s: number) => { sport: number; dst: number; dport: number } {
  if (keys === 'random') return sessionTuple;
  const { dst, dport } = collidingFanOut(sessions, APP, ADVERSARIAL_SPORT, REMOTE_BASE);
  return (s) => ({ sport: ADVERSARIAL_SPORT, dst: dst[s], dport: dport[s] });
}

const ADVERSARIAL_SPORT = 5000;

function median(xs: number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
}

function makeChunks(frames: Uint8Array[], ingress: number[], timeMs: number): CoreBatch[] {
  const ios: CoreBatch[] = [];
  for (let c = 0; c < frames.length; c += CHUNK) {
    const n = Math.min(CHUNK, frames.length - c);
    const io = createCoreBatch(n, n * 64);
    writeChunk(io, frames, ingress, c, n, timeMs);
    ios.push(io);
  }
  return ios;
}

/** Writes frames [first, first + n) into one CoreBatch (8-byte aligned, as FrameBatch wants), all at timeMs. */
function writeChunk(
  io: CoreBatch,
  frames: readonly Uint8Array[],
  ingress: readonly number[],
  first: number,
  n: number,
  timeMs: number,
): void {
  const b = io.batch;
  let off = 0;
  for (let k = 0; k < n; k++) {
    const f = frames[first + k];
    b.arena.set(f, off);
    b.off[k] = off;
    b.len[k] = f.length;
    b.ingress[k] = ingress[first + k];
    b.timeUs[k] = timeMs * 1000;
    off = (off + f.length + 7) & ~7;
  }
  b.count = n;
}

/** Runs all packets of one CoreBatch through dp (its idx is the identity). */
function runChunk(dp: Dataplane, io: CoreBatch): void {
  dp.processBatch(io.batch, io.out, io.idx, 0, io.batch.count);
}

function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Established-session throughput of one Dataplane (one thread). */
export async function measureEstablished(opts: EstablishedOptions) {
  const sessions = opts.sessions;
  const runs = opts.runs ?? 5;
  const packets = opts.packets ?? 4_000_000;
  const nFrames = Math.min(opts.frames ?? 1 << 18, Math.max(2 * sessions, 4096));
  const scenario = opts.filtered
    ? filteredScenario(sessions)
    : opts.filterTable
      ? filterTableScenario()
      : unfilteredScenario();
  scenario.conntrack.max = Math.max(sessions, 1024);
  const shared = createCoreShared(scenario, { workers: 1, seed: opts.seed ?? 1, layout: opts.layout });
  const dp = new Dataplane(shared, 0);
  const tupleOf = keySet(sessions, opts.keys ?? 'random');
  // Set up: orig at t=0, reply at t=1, orig at t=2500 (after 2 s: stream, ASSURED) per session.
  const setupFrames: Uint8Array[] = [];
  const setupIngress: number[] = [];
  const t0 = performance.now();
  for (const [phase, t] of [
    [0, 0],
    [1, 1],
    [0, 2500],
  ] as const) {
    setupFrames.length = 0;
    setupIngress.length = 0;
    for (let s = 0; s < sessions; s++) {
      const { sport, dst, dport } = tupleOf(s);
      if (phase === 0) setupFrames.push(buildUdp({ src: APP, dst, sport, dport, payload: PAYLOAD }));
      else setupFrames.push(buildUdp({ src: dst, dst: EIP, sport: dport, dport: sport, payload: PAYLOAD }));
      setupIngress.push(phase === 0 ? APP_POINT : 0);
      if (setupFrames.length === 65536 || s === sessions - 1) {
        const ios = makeChunks(setupFrames, setupIngress, t);
        for (const io of ios) runChunk(dp, io);
        setupFrames.length = 0;
        setupIngress.length = 0;
      }
    }
  }
  const setupMs = performance.now() - t0;
  // Measured frames: random sessions, alternating directions.
  const rnd = xorshift(opts.seed ?? 7);
  const frames: Uint8Array[] = [];
  const ingress: number[] = [];
  for (let k = 0; k < nFrames; k++) {
    const s = rnd() % sessions;
    const { sport, dst, dport } = tupleOf(s);
    if (k & 1) {
      frames.push(buildUdp({ src: dst, dst: EIP, sport: dport, dport: sport, payload: PAYLOAD }));
      ingress.push(0);
    } else {
      frames.push(buildUdp({ src: APP, dst, sport, dport, payload: PAYLOAD }));
      ingress.push(APP_POINT);
    }
  }
  const ios = makeChunks(frames, ingress, 3000);
  const fast0 = dp.fastCount;
  const slow0 = dp.slowCount;
  const cpuMpps: number[] = [];
  const runOnce = (n: number): number => {
    const chunks = Math.ceil(n / CHUNK);
    const cpu = process.cpuUsage();
    const t = performance.now();
    for (let c = 0; c < chunks; c++) {
      runChunk(dp, ios[c % ios.length]);
    }
    const ms = performance.now() - t;
    const u = process.cpuUsage(cpu);
    cpuMpps.push((chunks * CHUNK) / (u.user + u.system));
    return (chunks * CHUNK) / (ms * 1000);
  };
  runOnce(Math.min(packets, 1_000_000)); // warm-up (JIT, caches)
  cpuMpps.length = 0;
  const runsMpps: number[] = [];
  for (let r = 0; r < runs; r++) runsMpps.push(runOnce(packets));
  const fast = dp.fastCount - fast0;
  const total = fast + dp.slowCount - slow0;
  // Sanity: every measured packet must have been delivered by the fast path.
  const io0 = ios[0];
  for (let k = 0; k < io0.batch.count; k++) {
    const w = io0.out.result[k];
    if (resultFate(w) !== 0 || resultOutCount(w) !== 1)
      throw new Error(`bench: packet ${k} not delivered (fate ${resultFate(w)} reason ${resultReason(w)})`);
  }
  const mpps = median(runsMpps);
  return {
    sessions,
    layout: shared.layout,
    frames: nFrames,
    frameBytes: 46,
    mpps,
    nsPerPacket: 1000 / mpps,
    runsMpps,
    /** Packets per CPU-µs of this process (robust to other processes sharing the cores). */
    cpuMpps: median(cpuMpps),
    runsCpuMpps: cpuMpps,
    fastPathShare: fast / total,
    setupMs,
    bytesPerSession: sharedBytesPerSession(shared),
    sharedBytes: sharedBytesTotal(shared),
  };
}

export interface SetupOptions {
  flows?: number;
  runs?: number;
  layout?: CoreLayout;
  /** Commit the tables' pages before each timed run (src/core/layout.ts prefaultTables; default true). */
  prefault?: boolean;
  /**
   * Sessions set up (untimed) before each run's measured flows: the rate of setups into a table
   * that already holds this many (issue 11's targets are per table size: up to 64k, and at 1M).
   */
  prefill?: number;
}

/** The first packet of setup flow s: app → sessionTuple(s)'s remote, port 53. */
function setupFrame(s: number): Uint8Array {
  const { sport, dst } = sessionTuple(s);
  return buildUdp({ src: APP, dst, sport, dport: 53, payload: PAYLOAD });
}

/** Session creation rate: every frame a new UDP flow (slow path: conntrack + NAT + confirm). */
export async function measureSetup(opts: SetupOptions = {}) {
  const flows = opts.flows ?? 500_000;
  const runs = opts.runs ?? 5;
  const prefill = opts.prefill ?? 0;
  const frames: Uint8Array[] = [];
  for (let s = prefill; s < prefill + flows; s++) frames.push(setupFrame(s));
  const fromApp: number[] = new Array(CHUNK).fill(APP_POINT);
  const ios = makeChunks(frames, new Array(flows).fill(APP_POINT), 0);
  const prefillChunk = createCoreBatch(CHUNK, CHUNK * 64);
  const scenario = loadOpenScenario();
  scenario.conntrack.max = prefill + flows;
  const rates: number[] = [];
  const cpuRates: number[] = [];
  const createMs: number[] = [];
  const prefault = opts.prefault ?? true;
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    const shared = createCoreShared(scenario, { workers: 1, seed: r + 1, layout: opts.layout, prefault });
    createMs.push(performance.now() - t0);
    const dp = new Dataplane(shared, 0);
    for (let first = 0; first < prefill; first += CHUNK) {
      const n = Math.min(CHUNK, prefill - first);
      const chunk: Uint8Array[] = [];
      for (let s = first; s < first + n; s++) chunk.push(setupFrame(s));
      writeChunk(prefillChunk, chunk, fromApp, 0, n, 0);
      runChunk(dp, prefillChunk);
    }
    if (dp.slowCount !== prefill) throw new Error('bench: setup prefill did not take the slow path for every flow');
    const t = performance.now();
    const cpu = process.cpuUsage();
    for (const io of ios) runChunk(dp, io);
    const ms = performance.now() - t;
    const u = process.cpuUsage(cpu);
    if (r > 0) cpuRates.push(flows / ((u.user + u.system) / 1e6));
    if (dp.slowCount !== prefill + flows) throw new Error('bench: setup did not take the slow path for every flow');
    const live = readSessionCounts(shared).reduce((a, b) => a + b, 0);
    if (live !== prefill + flows)
      throw new Error(`bench: setup left ${live} sessions, not one per flow (${prefill} + ${flows})`);
    if (r > 0) rates.push(flows / (ms / 1000)); // run 0 = warm-up
  }
  const rate = median(rates);
  return {
    flows,
    prefill,
    layout: opts.layout ?? DEFAULT_LAYOUT,
    sessionsPerSec: rate,
    nsPerSession: 1e9 / rate,
    runsPerSec: rates,
    cpuSessionsPerSec: median(cpuRates),
    prefault,
    /** Median ms to create (and with prefault commit) the tables, outside the timed runs. */
    createMs: median(createMs),
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (k: string, d: string): string => {
    const i = args.indexOf(k);
    return i >= 0 && args[i + 1] ? args[i + 1] : d;
  };
  const json = args.includes('--json');
  const sizes = get('--sessions', '1000,65536,1048576').split(',').map(Number);
  const runs = Number(get('--runs', '5'));
  const packets = Number(get('--packets', '4000000'));
  // --layout record,line: every layout at every size, interleaved (an A/B in one process).
  const layouts = get('--layout', DEFAULT_LAYOUT).split(',') as CoreLayout[];
  for (const l of layouts) if (!CORE_LAYOUTS.includes(l)) throw new Error(`--layout: unknown layout ${l}`);
  const established = [];
  for (const n of sizes)
    for (const layout of layouts) {
      const r = await measureEstablished({ sessions: n, runs, packets, layout });
      established.push(r);
      if (!json) {
        console.log(
          `established ${layout.padEnd(6)} ${String(n).padStart(8)} sessions: ${r.mpps.toFixed(2)} Mpps (${r.cpuMpps.toFixed(2)} per CPU-s)  ${r.nsPerPacket.toFixed(1)} ns/pkt  ` +
            `(runs ${r.runsMpps.map((x) => x.toFixed(2)).join(' ')})  fast-path ${(r.fastPathShare * 100).toFixed(1)}%  ` +
            `${r.bytesPerSession.toFixed(1)} B/session  setup ${(r.setupMs / 1000).toFixed(1)} s`,
        );
      }
    }
  const setups = [];
  for (const layout of layouts) {
    const setup = await measureSetup({ flows: Number(get('--flows', '500000')), runs, layout });
    setups.push(setup);
    if (!json)
      console.log(
        `session setup ${layout}: ${(setup.sessionsPerSec / 1e6).toFixed(2)} M sessions/s (${(setup.cpuSessionsPerSec / 1e6).toFixed(2)} per CPU-s)  ${setup.nsPerSession.toFixed(0)} ns/session (runs ${setup.runsPerSec.map((x) => (x / 1e6).toFixed(2)).join(' ')})`,
      );
  }
  const setup = setups[0];
  const input = {
    description:
      '46-byte IPv4 UDP packets (the IPv4 part of 64-byte Ethernet frames) of existing ASSURED UDP sessions, ' +
      'half app->internet (MASQUERADE + IGW), half internet->app, random session order, 256-packet batches, ' +
      'vpc-nat-instance-open, one Dataplane on one thread; setup: every frame a new UDP flow',
  };
  if (args.includes('--no-write')) return;
  const file = await writeBenchResult('core-throughput', { input, established, setup, setups });
  if (json) console.log(JSON.stringify({ established, setup, file }, null, 2));
  else console.log(`wrote ${file}`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
