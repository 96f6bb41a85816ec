// KernelEngine: the scenario built in network namespaces, packets replayed through the real Linux
// kernel one at a time (inject, wait until quiet, collect), results in the engine-neutral form.
import type {
  ConntrackEntry,
  DifferenceClass,
  DifferenceFacts,
  Engine,
  EngineDescriptor,
  EngineOptions,
  FilterRuleCounter,
  InputPacket,
  NatRuleCounter,
  OutputFrame,
  OutputNormaliser,
  PacketResult,
} from '../spec/engine.ts';
import { classifyKernelDifference, instanceOwnAddresses, sgFlowKey } from './differences.ts';
import type { Scenario } from '../spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../spec/scenario.ts';
import { InputError } from '../spec/errors.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NEW,
  CT_NONE,
  CT_RELATED,
  DROP_BLACKHOLE,
  DROP_CT_TABLE_FULL,
  DROP_FRAGMENT,
  DROP_IP_FORWARD_OFF,
  DROP_KERNEL_UNSEEN,
  DROP_LOCAL_DELIVERY,
  DROP_MALFORMED,
  DROP_NAT_CLASH,
  DROP_NO_INGRESS,
  DROP_NO_ROUTE,
  DROP_NO_HOST,
  DROP_ICMP_BAD_CHECKSUM,
  DROP_ICMP_REDIRECT_NAT,
  DROP_SRC_DST_CHECK_DST,
  DROP_SRC_DST_CHECK_SRC,
  DROP_INSTANCE_STOPPED,
  DROP_TTL_EXCEEDED,
  DROP_FILTER_REJECT,
  DROP_NACL_DENY,
  DROP_SG_ALLOWANCE,
  DROP_SG_DENY,
  FATE_DELIVERED,
  FATE_DROPPED,
  REASON_NONE,
} from '../spec/reasons.ts';
import {
  PacketView,
  parseIpv4,
  PARSE_FRAGMENT,
  PARSE_OK,
  PARSE_BAD_IP_VERSION,
  isIpLevelMalformation,
  ETH_HDR_LEN,
  ETHERTYPE_IPV4,
  PROTO_ICMP,
  F_FIN,
  F_RST,
  ICMP_DEST_UNREACH,
  PROTO_TCP,
  ICMP_TIME_EXCEEDED,
  ICMP_REDIRECT,
  isIcmpErrorFrame,
  verifyL4Checksum,
  csumReplace16,
} from '../packet/index.ts';
import { rd16, rd32, wr32 } from '../packet/bytes.ts';
import { readFile } from 'node:fs/promises';
import { Agent, PACKET_OUTGOING } from './agent.ts';
import { run } from './exec.ts';
import { igwMapOf, igwTranslate, isElasticIp, type IgwMap } from './igw.ts';
import { newRunId, netnsOwnerPid } from './names.ts';
import { Hub, HUB_BATCH, setnsSyscall, type HubPacket } from './hub.ts';
import { checkKernelPrerequisites, describeMissing } from './prereq.ts';
import {
  parseAgentStats,
  parseConntrackList,
  parseFilterCounters,
  parseIptablesCounters,
  sortConntrack,
  type NetnsStats,
} from './parse.ts';
import { registerLive, deleteNetns, listNatlabNetns, cleanupLeftovers } from './cleanup.ts';
import {
  planTopology,
  FENCE_TX_IF,
  FENCE_RX_IF,
  type TopologyPlan,
  type NetnsSpec,
  RECENT_BLACKHOLE,
  RECENT_CT_ESTABLISHED,
  RECENT_CT_INVALID,
  RECENT_CT_NEW,
  RECENT_CT_RELATED,
  RECENT_LOCAL_IN,
  RECENT_FILTER_RST,
  RECENT_FILTER_UNREACH,
  RECENT_LOCAL_OUT_DROPPED,
  EVIDENCE_ICMP_RL_GLOBAL,
  EVIDENCE_ICMP_RL_HOST,
  RECENT_NOROUTE,
  RECENT_NOHOST,
  RECENT_SDCHECK_DST,
  RECENT_SDCHECK_SRC,
  RECENT_STOPPED,
  OWN_OUTPUT_CHAIN,
  routeLines,
  stoppedRule,
} from './topology.ts';
import {
  RECENT_NACL_DENY,
  RECENT_SG_ALLOWANCE,
  RECENT_SG_DENY,
  RECENT_SG_INVALID,
  SG_INSTANCE_IF,
  SG_ROUTER_IF,
  aclUpdateText,
  sgUpdateText,
} from './aws-filters.ts';
import { filterUpdateProblem } from '../scenario/filter-update.ts';
import { type TimelineEvent, flushedBy, scenarioAfter } from '../spec/timeline.ts';
import { ICMP_ERROR_MAX_LEN } from '../spec/timeouts.ts';

export type KernelTimeMode = 'real' | 'compress';
export type KernelInjection = 'batch' | 'single';

export interface KernelEngineOptions extends EngineOptions {
  /**
   * 'real' (default): packet timestamps and advance() are honoured by really waiting (the kernel's
   * clock cannot be advanced), within `maxWaitMs`; beyond it the engine refuses with an error.
   * 'compress': never wait; the kernel sees the packets back to back (conntrack timers do not see
   * the capture's gaps; advance() is then refused).
   */
  timeMode?: KernelTimeMode;
  /** Total real waiting allowed over the engine's life, ms (default 10 000). */
  maxWaitMs?: number;
  /** Quiet time that ends the collection of one packet's frames, ms (default 3). */
  settleMs?: number;
  /**
   * 'batch' (default): the fast path — one pinned helper holds every namespace's socket and runs
   * inject / fence until done / collect itself, many packets per round trip (hub-script.ts).
   * 'single': the original one-at-a-time path (inject, quiet time `settleMs`, collect, per packet
   * from Node), kept for comparison. 'batch' falls back to 'single' (with a warning) where the fast
   * path cannot run (no taskset, unknown setns syscall number).
   */
  injection?: KernelInjection;
  /** Keep the namespaces after close() (debugging; `natlab kernel --cleanup` removes them). */
  keep?: boolean;
  /**
   * How the calling command spells the options its errors advise (default: `natlab kernel`'s
   * --max-wait and --time compress). A missing name is not advised: advice names only options
   * that exist where the user typed the command.
   */
  optionNames?: { maxWait?: string; compress?: string };
  /** Progress/debug lines. */
  log?: (line: string) => void;
}

/** An output frame of the kernel engine: `frame` is normalised, `captured` is what the wire carried. */
export interface KernelOutputFrame extends OutputFrame {
  /** Bytes as captured at the egress point (for the internet: before the user-space IGW). */
  captured: Uint8Array;
  /** What was applied to `captured` to give `frame`: 'igw' (1:1 EIP mapping), 'ttl+1' (see docs). */
  adjustments: string[];
}

/** The kernel engine's extra result detail (a PacketResult, plus what the kernel showed). */
export interface KernelPacketResult extends PacketResult {
  outputs: KernelOutputFrame[];
  /** xt_recent evidence per namespace that explained the verdict, e.g. ['router:nl_sdsrc']. */
  evidence: string[];
}

/** Thrown when the machine cannot run the oracle (not root, tools missing). */
export class KernelUnavailableError extends Error {
  constructor(readonly missing: string[]) {
    super(`kernel oracle unavailable: ${missing.join('; ')}`);
    this.name = 'KernelUnavailableError';
  }
}

const DEFAULT_MAX_WAIT_MS = 10_000;
const DEFAULT_SETTLE_MS = 3;
/** Bound on IGW hairpins (a frame leaving to an EIP re-enters the VPC) per input. */
const MAX_HAIRPINS = 4;
/** Bound on collection rounds per injection. */
const MAX_SETTLE_ROUNDS = 200;

/** Describes how kernel outputs were normalised (for diff reports). */
export const KERNEL_NORMALISATION_NOTE =
  'the VPC router namespace adds 1 to the TTL before forwarding (iptables TTL --ttl-inc 1), so it is TTL-neutral like the AWS VPC router; ' +
  'a TTL of 255 cannot be raised, so forwarded copies of TTL-255 inputs get TTL+1 in user space (adjustment "ttl+1"); the IGW is applied in user space (adjustment "igw")';

/** Kernel frames are normalised as they are captured (the note says how); this carries the note. */
export const kernelOutputNormaliser: OutputNormaliser = {
  description: KERNEL_NORMALISATION_NOTE,
  apply(out: OutputFrame): Uint8Array {
    return out.frame;
  },
};

/** Why the fast path cannot run here, or null. */
async function fastPathMissing(): Promise<string | null> {
  if (setnsSyscall() < 0) return `no setns syscall number known for ${process.arch}`;
  const r = await run('taskset', ['-c', '0', 'true'], { allowFail: true }).catch(() => null);
  if (r?.code !== 0) return 'taskset (util-linux) cannot pin a process';
  return null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function stripEthernet(b: Uint8Array): Uint8Array | null {
  if (b.length < ETH_HDR_LEN) return null;
  const et = (b[12] << 8) | b[13];
  if (et !== ETHERTYPE_IPV4) return null;
  return b.slice(ETH_HDR_LEN);
}

function macToBytes(m: string): number[] {
  return m.split(':').map((x) => parseInt(x, 16));
}

function ethernet(ip: Uint8Array, dst: number[], src: number[]): Uint8Array {
  const f = new Uint8Array(ETH_HDR_LEN + ip.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = ETHERTYPE_IPV4 >>> 8;
  f[13] = ETHERTYPE_IPV4 & 255;
  f.set(ip, ETH_HDR_LEN);
  return f;
}

/** Adds `delta` to the TTL of the IPv4 header at `off` (capped at 255), patching its checksum. */
function bumpTtl(b: Uint8Array, off: number, delta: number): boolean {
  if (b.length < off + 20) return false;
  const old = (b[off + 8] << 8) | b[off + 9];
  const ttl = Math.min(255, b[off + 8] + delta);
  if (ttl === b[off + 8]) return false;
  b[off + 8] = ttl;
  const neu = (b[off + 8] << 8) | b[off + 9];
  const c = csumReplace16((b[off + 10] << 8) | b[off + 11], old, neu);
  b[off + 10] = c >>> 8;
  b[off + 11] = c & 255;
  return true;
}

/** One packet between its injection and its verdict. */
interface PacketState {
  input: InputPacket;
  /** Parse status of the input (PARSE_*). */
  st: number;
  inTtl: number;
  inIsIcmpError: boolean;
  /** The input's L4 checksum is right (computed for ICMP errors only). */
  verifiedL4: boolean;
  icmpType: number;
  mf: number;
  result: KernelPacketResult;
  sendErrno: number;
  igwDrop: number;
  /** Frames addressed to a NAT instance itself: outputs if its stack received them (INPUT). */
  localCandidates: Map<number, Uint8Array[]>;
  /** Instances that received a frame addressed to someone else (to forward). */
  transitAt: Set<number>;
}

interface PointAgent {
  point: number;
  agent: Agent;
  /** Ethernet addresses for frames injected here: [dst, src]. */
  macs: [number[], number[]];
}

export class KernelEngine implements Engine {
  readonly name = 'kernel';
  readonly outputNormaliser = kernelOutputNormaliser;
  /**
   * The kernel's conntrack timers run on the real clock while natlab works (and, with --time
   * compress, never see the capture's gaps): its timeouts are not compared (the tolerance is
   * unbounded). The kernel engine's owner may narrow it (e.g. the real time the run took).
   */
  readonly timingTolerance = Infinity;
  /** Things this machine's kernel cannot reproduce exactly (e.g. nf_conntrack_max is global). */
  readonly warnings: string[] = [];
  /** Largest delay between a packet's timestamp and its real injection, ms ('real' mode). */
  maxLagMs = 0;
  /** Real time waited so far, ms. */
  waitedMs = 0;
  /** Frames that arrived after their packet's quiet time (not attributed; see warnings). */
  lateFrames = 0;
  /** The injection path in use ('batch' unless asked for 'single' or unavailable here). */
  injection: KernelInjection = 'batch';
  /**
   * Per packet processed, how far behind its timestamp the kernel was, ms (0 in 'compress' mode):
   * in 'single' mode measured at injection, in 'batch' mode at the moment its result reached
   * Node (an upper bound of the injection delay). Index = order of process() inputs over the
   * engine's life.
   */
  readonly lagMs: number[] = [];
  /** Fence rounds over all packets ('batch' mode). */
  fenceRounds = 0;
  /**
   * Per scenario instance: TCP segments delivered to its own stack (addressed to its private IP),
   * each of which its stack may answer with a RST that conntrack sees (K3, differences.ts).
   */
  readonly localTcpDeliveries: number[] = [];
  /** K3: flows (sgFlowKey) of those segments. */
  private readonly localTcpFlows = new Set<string>();
  /** E11: flows with a segment a security-group namespace called INVALID, and how many segments. */
  private readonly sgInvalidFlows = new Set<string>();
  private sgInvalidSegments = 0;
  private sgInvalidDrops = 0;
  /** E16/E17 (differences.ts): TCP flows with a FIN or RST sent or received by an ENI with security groups. */
  private readonly sgClosedFlows = new Set<string>();
  /** E17: flows of packets classified E17. */
  private readonly sgReopenedFlows = new Set<string>();
  /** E16: flows of packets classified E16. */
  private readonly sgAllowanceFlows = new Set<string>();
  /** E11/E16 (differences.ts): flows whose packet the contract refused at the allowance and the kernel tracked, by class. */
  private readonly sgAllowanceFlowClass = new Map<string, string>();
  /** E11/E16: packets the other engine refused at an allowance and the kernel's ENI let through. */
  private sgAllowancePassed = 0;
  /** TTL 0 inputs the router namespace dropped (E5): no instance's nat table saw them. */
  readonly unseenTtl0 = { packets: 0, bytes: 0 };
  /** E5 (differences.ts): the flows of those inputs. */
  private readonly unseenTtl0Flows = new Set<string>();
  /** K9 (differences.ts): forwarding passes and bytes the routing loops of classified packets may have cost. */
  private readonly routingLoopPasses = { packets: 0, bytes: 0 };
  /** K6 (differences.ts): first fragments to an instance itself, and the bytes of the ICMP errors their expiry may send. */
  private readonly reassemblyExpiries = { packets: 0, bytes: 0 };
  /** K5 (differences.ts): the redirects of packets classified K5, and their bytes. */
  private readonly redirectsSent = { packets: 0, bytes: 0 };
  /** K2 (differences.ts): ICMP errors of packets classified K2 that one side sent and the other's rate limit refused. */
  private readonly rateLimitSurplus = { kernel: { packets: 0, bytes: 0 }, other: { packets: 0, bytes: 0 } };

  private agents: Agent[] = [];
  private points = new Map<number, PointAgent>();
  /** Agents whose namespaces hold evidence (router, forwarding instances), by role label. */
  private statAgents: Array<{ label: string; instance: number; agent: Agent }> = [];
  private captureAgents: PointAgent[] = [];
  private lastCt = new Map<number, Record<string, number>>();
  /** Per instance: the last /proc/net/snmp figures (TTL expiries, ICMP rate-limit refusals). */
  private lastSnmp = new Map<number, NonNullable<NetnsStats['snmp']>>();
  private hub: Hub | null = null;
  /** Points in hub socket order (socket id = index). */
  private hubPoints: PointAgent[] = [];

  private igw: IgwMap;
  private pv = new PacketView();
  private unregister: (() => void) | null = null;
  private closed = false;
  private vt0: number | null = null;
  private rt0 = 0;
  private readonly timeMode: KernelTimeMode;
  private readonly maxWaitMs: number;
  private readonly settleMs: number;

  private constructor(
    /** The scenario as the timeline events so far left it (applyTimelineEvent). */
    public scenario: Scenario,
    readonly plan: TopologyPlan,
    private readonly opts: KernelEngineOptions,
  ) {
    this.igw = igwMapOf(scenario);
    this.timeMode = opts.timeMode ?? 'real';
    this.maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    this.settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
    this.warnings.push(...plan.warnings);
  }

  /** Namespace names of this run (router, internet, instances). */
  get netnsNames(): string[] {
    return this.plan.netns.map((n) => n.name);
  }

  static async create(scenario: Scenario, opts: KernelEngineOptions = {}): Promise<KernelEngine> {
    const pre = await checkKernelPrerequisites();
    if (!pre.ok) throw new KernelUnavailableError(pre.missing);
    // A run killed with SIGKILL cannot clean up: its namespaces carry its process id (names.ts),
    // so the next run removes every set whose owner is gone, and says so.
    const stale = await cleanupLeftovers(false);
    // Never reuse a name that exists (close() would then delete someone else's namespace).
    const existing = new Set(await listNatlabNetns());
    let plan = planTopology(scenario, newRunId());
    for (let i = 0; i < 8 && plan.netns.some((n) => existing.has(n.name)); i++)
      plan = planTopology(scenario, newRunId());
    if (plan.netns.some((n) => existing.has(n.name)))
      throw new Error('kernel engine: could not find unused namespace names');
    const e = new KernelEngine(scenario, plan, opts);
    if (stale.length) {
      const owners = [...new Set(stale.map((n) => netnsOwnerPid(n)))].join(', ');
      const w = `removed ${stale.length} namespace(s) left behind by natlab run(s) whose process (${owners}) is gone: ${stale.join(' ')}`;
      e.warnings.push(w);
      e.log(`kernel: ${w}`);
    }
    e.unregister = registerLive({
      netns: e.netnsNames,
      kill: () => {
        e.hub?.kill();
        e.agents.forEach((a) => a.kill());
      },
    });
    try {
      await e.build();
    } catch (err) {
      await e.close();
      throw err;
    }
    return e;
  }

  private log(l: string): void {
    this.opts.log?.(l);
  }

  private async build(): Promise<void> {
    const p = this.plan;
    const t0 = performance.now();
    const ms = (): string => `${(performance.now() - t0).toFixed(0)} ms`;
    this.log(`kernel: building ${p.netns.length} namespaces (run ${p.runId})`);
    await run('ip', ['-batch', '-'], { input: p.netns.map((n) => `netns add ${n.name}\n`).join('') });
    this.log(`kernel: namespaces added (${ms()})`);
    await run('ip', ['-n', p.router, '-batch', '-'], { input: `${p.linkBatch.join('\n')}\n` });
    for (const b of p.sgLinkBatches)
      await run('ip', ['-n', b.netns, '-batch', '-'], { input: `${b.lines.join('\n')}\n` });
    this.log(`kernel: links added (${ms()})`);
    // Agents first: they write the sysctls (IPv6 off, RX checksum offload off, ...) before any
    // interface comes up; their packet sockets open once the interfaces are configured.
    for (const n of p.netns) this.agents.push(new Agent(n.name, n.agentIf, n.capture, n.setup));
    await Promise.all(this.agents.map((a) => a.start()));
    for (const a of this.agents) this.warnings.push(...a.setupWarnings);
    this.log(`kernel: agents ready, sysctls set (${ms()})`);
    await Promise.all(
      p.netns.map(async (n) => {
        await run('ip', ['-n', n.name, '-batch', '-'], { input: `${n.ipBatch.join('\n')}\n` });
        await this.loadIptables(n);
      }),
    );
    this.injection = this.opts.injection ?? 'batch';
    const fastMissing = this.injection === 'batch' ? await fastPathMissing() : null;
    if (fastMissing) {
      this.warnings.push(`fast injection path unavailable (${fastMissing}): packets go one at a time`);
      this.injection = 'single';
    }
    // 'single': each agent injects/captures on its own socket. 'batch': the hub holds them all.
    if (this.injection === 'single') await Promise.all(this.agents.map((a) => a.open()));
    this.log(`kernel: namespaces configured (${ms()})`);
    // nf_conntrack_max is read-only outside the initial namespace on most kernels: fine when the
    // global value (read, never written) is the scenario's; otherwise say so once.
    const ctMax = this.scenario.conntrack.max;
    const refused = this.warnings.filter((w) => w.includes('nf_conntrack_max'));
    if (refused.length) {
      for (const w of refused) this.warnings.splice(this.warnings.indexOf(w), 1);
      const global = Number(
        (await readFile('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').catch(() => '')).trim(),
      );
      if (global !== ctMax) {
        this.warnings.push(
          `conntrack max: the scenario's ${ctMax} cannot be set per namespace on this kernel (nf_conntrack_max is global, ${global || 'unknown'}): table-full behaviour is not reproduced`,
        );
      }
    }
    // Agents by role: injection/capture points, evidence holders.
    p.netns.forEach((n, k) => {
      const a = this.agents[k];
      if (n.role === 'router') this.statAgents.push({ label: 'router', instance: -1, agent: a });
      else if (n.role === 'sg')
        this.statAgents.push({ label: `sg:${this.scenario.instances[n.instance].name}`, instance: -1, agent: a });
      else if (n.role === 'internet') {
        const pa: PointAgent = {
          point: POINT_INTERNET,
          agent: a,
          macs: [macToBytes(p.macs.routerIgw), macToBytes(p.macs.internet)],
        };
        this.points.set(POINT_INTERNET, pa);
        this.captureAgents.push(pa);
      } else {
        const i = n.instance;
        const pa: PointAgent = {
          point: instancePoint(i),
          agent: a,
          macs: [macToBytes(p.macs.routerEni[i]), macToBytes(p.macs.instance[i])],
        };
        this.points.set(pa.point, pa);
        if (n.capture) this.captureAgents.push(pa);
        this.statAgents.push({ label: this.scenario.instances[i].name, instance: i, agent: a });
      }
    });
    // Baseline for the conntrack statistics deltas.
    for (const s of this.statAgents) {
      const x = parseAgentStats(await s.agent.stats());
      this.lastCt.set(s.instance, x.ct);
      if (s.instance >= 0 && x.snmp) this.lastSnmp.set(s.instance, x.snmp);
    }
    if (this.injection === 'batch') await this.startHub();
    this.log(`kernel: ready (${p.netns.map((n) => n.name).join(', ')})`);
  }

  private async loadIptables(n: NetnsSpec): Promise<void> {
    if (n.iptablesScenario !== null) {
      // A fresh namespace has no rules to keep: when the scenario's text holds only the nat table,
      // one restore loads it and natlab's own tables together.
      const onlyNat = !/^\*(?!nat\b)/m.test(n.iptablesScenario);
      const input = onlyNat ? n.iptablesScenario + n.iptablesOwn : n.iptablesScenario;
      const r = await run('iptables-restore', [], { netns: n.name, input, allowFail: true });
      if (r.code !== 0) {
        const inst = this.scenario.instances[n.instance];
        throw new InputError(
          `${this.scenario.source}: instance ${inst?.name ?? n.instance}: iptables-restore rejected its nat table: ${r.stderr.trim()}`,
          this.scenario.source,
          `instances.${inst?.name}.iptables`,
        );
      }
      if (onlyNat) return;
    }
    if (n.iptablesOwn) await run('iptables-restore', ['--noflush'], { netns: n.name, input: n.iptablesOwn });
  }

  // ---------------------------------------------------------------------------------------------
  // Time

  /** Waits until `timeUs` is due (real mode); returns how late it already was, ms. */
  private async honourTime(timeUs: number, what: string): Promise<number> {
    const now = performance.now();
    if (this.vt0 === null) {
      this.vt0 = timeUs;
      this.rt0 = now;
      return 0;
    }
    if (this.timeMode === 'compress') return 0;
    const due = this.rt0 + (timeUs - this.vt0) / 1000;
    const d = due - now;
    if (d <= 0) {
      this.maxLagMs = Math.max(this.maxLagMs, -d);
      return -d;
    }
    if (this.waitedMs + d > this.maxWaitMs) {
      const names = this.opts.optionNames ?? { maxWait: '--max-wait', compress: '--time compress' };
      const advice = ['shorten the conntrack timeouts in the scenario'];
      if (names.maxWait) advice.push(`raise ${names.maxWait}`);
      if (names.compress) advice.push(`use ${names.compress}`);
      throw new InputError(
        `kernel engine: ${what} at t=${(timeUs / 1e6).toFixed(6)} s needs ${(d / 1000).toFixed(1)} s of real waiting ` +
          `(the kernel's clock cannot be advanced), beyond the allowed ${(this.maxWaitMs / 1000).toFixed(1)} s in total ` +
          `(${(this.waitedMs / 1000).toFixed(1)} s used): ${advice.slice(0, -1).join(', ')}${advice.length > 1 ? ' or ' : ''}${advice[advice.length - 1]}`,
      );
    }
    await sleep(d);
    this.waitedMs += d;
    return 0;
  }

  async advance(timeUs: number): Promise<void> {
    this.assertOpen();
    if (this.timeMode === 'compress') {
      throw new InputError(
        `kernel engine: advance() needs real waiting, which ${this.opts.optionNames?.compress ?? '--time compress'} disables`,
      );
    }
    await this.honourTime(timeUs, 'advance()');
  }

  /**
   * A timeline event for real (docs/kernel-oracle.md "Timeline events"), only in this run's own
   * namespaces: the router's routes whose effective target changed are replaced (a route to a
   * stopped instance goes to the blackhole sink), a stopped instance gets a recording FORWARD drop
   * on its router link (removed when it starts), an emptied instance's conntrack is flushed with
   * `conntrack -F` in its namespace, and the user-space IGW maps the Elastic IPs anew.
   */
  async applyTimelineEvent(event: TimelineEvent, timeUs: number): Promise<void> {
    this.assertOpen();
    await this.honourTime(timeUs, `timeline event ${event.text}`);
    const prev = this.scenario;
    const next = scenarioAfter(prev, event.action);
    if (event.action.kind === 'setFilterRules') await this.setFilterRules(next);
    const router = this.plan.router;
    const before = new Set(routeLines(prev));
    const changed = routeLines(next).filter((l) => !before.has(l));
    if (changed.length > 0) await run('ip', ['-n', router, '-batch', '-'], { input: `${changed.join('\n')}\n` });
    for (let i = 0; i < next.instances.length; i++) {
      const was = prev.instances[i].stopped === true;
      const is = next.instances[i].stopped === true;
      if (was !== is) await run('iptables', [is ? '-A' : '-D', ...stoppedRule(i)], { netns: router });
    }
    for (const i of flushedBy(event.action))
      if (this.plan.instances[i]) await run('conntrack', ['-F'], { netns: this.plan.instances[i] });
    this.igw = igwMapOf(next);
    this.scenario = next;
  }

  // ---------------------------------------------------------------------------------------------
  // Packets

  async process(batch: readonly InputPacket[]): Promise<KernelPacketResult[]> {
    this.assertOpen();
    const out = this.hub ? await this.processBatched(batch) : await this.processEach(batch);
    this.countLocalTcp(out);
    this.noteSgInvalid(batch, out);
    this.countSgClosing(batch, out);
    this.countUnseenTtl0(batch, out);
    this.countReassemblyExpiries(batch, out);
    return out;
  }

  /** K6 (differences.ts): first fragments to an instance itself, whose reassembly may expire with an ICMP error. */
  private countReassemblyExpiries(batch: readonly InputPacket[], results: readonly PacketResult[]): void {
    const own = instanceOwnAddresses(this.scenario);
    results.forEach((r, i) => {
      const f = batch[i]?.frame;
      if (!f || f.length < 20 || r.fate === FATE_DELIVERED) return;
      const fragWord = rd16(f, 6);
      if ((fragWord & 0x1fff) !== 0 || (fragWord & 0x2000) === 0 || !own.has(rd32(f, 16))) return;
      this.reassemblyExpiries.packets++;
      // icmp_send() quotes as much of the datagram's head (this fragment) as fits in a 576-byte error.
      this.reassemblyExpiries.bytes += Math.min(28 + rd16(f, 2), ICMP_ERROR_MAX_LEN);
    });
  }

  /** E16 (differences.ts): FIN and RST segments at an ENI with security groups, which close its tracked flow. */
  private countSgClosing(batch: readonly InputPacket[], results: readonly PacketResult[]): void {
    const insts = this.scenario.instances;
    const filtered = (point: number): boolean => {
      const i = point - instancePoint(0);
      return i >= 0 && i < insts.length && (insts[i].security?.groups.length ?? 0) > 0;
    };
    const closing = (f: Uint8Array): boolean => {
      if (f.length < 20 || f[9] !== PROTO_TCP || (rd16(f, 6) & 0x1fff) !== 0) return false;
      const l4 = (f[0] & 15) * 4;
      return f.length > l4 + 13 && (f[l4 + 13] & (F_FIN | F_RST)) !== 0;
    };
    const closes = (f: Uint8Array): void => {
      const key = sgFlowKey(f);
      if (key) this.sgClosedFlows.add(key);
    };
    results.forEach((r, i) => {
      const p = batch[i];
      if (p && filtered(p.ingress) && closing(p.frame)) closes(p.frame);
      for (const o of r.outputs) if (filtered(o.egress) && closing(o.frame)) closes(o.frame);
    });
  }

  /** E5 inputs: TTL 0, dropped in the router namespace before any instance saw them. */
  private countUnseenTtl0(batch: readonly InputPacket[], results: readonly PacketResult[]): void {
    results.forEach((r, i) => {
      const f = batch[i]?.frame;
      if (!f || f.length < 20 || f[8] !== 0 || r.reason !== DROP_KERNEL_UNSEEN || r.outputs.length > 0) return;
      this.unseenTtl0.packets++;
      this.unseenTtl0.bytes += rd16(f, 2);
      const key = sgFlowKey(f);
      if (key) this.unseenTtl0Flows.add(key);
      // As the instance's conntrack would have seen it: to its private address (the IGW's static NAT).
      const inst = this.scenario.instances.find((x) => x.elasticIp !== null && x.elasticIp >>> 0 === rd32(f, 16));
      if (inst) {
        const atInstance = new Uint8Array(f);
        wr32(atInstance, 16, inst.privateIp >>> 0);
        const k2 = sgFlowKey(atInstance);
        if (k2) this.unseenTtl0Flows.add(k2);
      }
    });
  }

  /** E11 (differences.ts): remembers the flows of packets an ENI's conntrack called INVALID. */
  private noteSgInvalid(batch: readonly InputPacket[], results: readonly KernelPacketResult[]): void {
    results.forEach((r, i) => {
      if (!r.evidence.some((e) => e.startsWith('sg:') && e.endsWith(`:${RECENT_SG_INVALID}`))) return;
      this.sgInvalidSegments++;
      for (const b of [batch[i].frame, ...r.outputs.map((o) => o.frame)]) {
        const key = sgFlowKey(b);
        if (key) this.sgInvalidFlows.add(key);
      }
    });
  }

  private async processEach(batch: readonly InputPacket[]): Promise<KernelPacketResult[]> {
    const out: KernelPacketResult[] = [];
    for (const p of batch) {
      const lag = await this.honourTime(p.timeUs, 'packet');
      this.lagMs.push(lag);
      out.push(await this.processOne(p));
    }
    return out;
  }

  private countLocalTcp(results: readonly PacketResult[]): void {
    const insts = this.scenario.instances;
    for (const r of results)
      for (const o of r.outputs) {
        const f = o.frame;
        if (f.length < 20 || f[9] !== PROTO_TCP) continue;
        const i = o.egress - instancePoint(0);
        if (i < 0 || i >= insts.length || rd32(f, 16) !== insts[i].privateIp >>> 0) continue;
        this.localTcpDeliveries[i] = (this.localTcpDeliveries[i] ?? 0) + 1;
        const key = sgFlowKey(f);
        if (key) this.localTcpFlows.add(key);
      }
  }

  private async startHub(): Promise<void> {
    const p = this.plan;
    const points = [...this.points.values()];
    this.hubPoints = points;
    const sockets = points.map((pa, id) => ({ id, netns: pa.agent.netns, ifname: pa.agent.ifname }));
    const stats = this.statAgents.map((s, id) => {
      const pid = s.agent.pid;
      if (pid === undefined) throw new Error(`kernel engine: agent in ${s.agent.netns} has no process id`);
      // Conntrack statistics and /proc/net/snmp are read only where the verdict uses them
      // (instances; finish()) and only after a packet that crossed the instance's link: reading
      // and parsing /proc/net/snmp costs ~15-50 µs per namespace (docs/kernel-oracle.md).
      if (s.instance < 0) return { id, pid };
      const counterSocket = sockets.findIndex((k) => k.netns === s.agent.netns);
      if (counterSocket < 0) throw new Error(`kernel engine: instance namespace ${s.agent.netns} has no hub socket`);
      return { id, pid, counterSocket };
    });
    const inet = points.findIndex((pa) => pa.point === POINT_INTERNET);
    const hub = new Hub(
      {
        sockets,
        activity: p.netns
          .filter((n) => n.role === 'sg')
          .flatMap((n) => [SG_INSTANCE_IF, SG_ROUTER_IF].map((ifname) => ({ netns: n.name, ifname }))),
        fence: { netns: p.router, tx: FENCE_TX_IF, rx: FENCE_RX_IF },
        stats,
        eips: [...this.igw.toPrivate.keys()],
        inet,
      },
      Hub.pickCpu(),
    );
    this.hub = hub;
    await hub.start();
    this.log(`kernel: fast path ready (hub pinned to CPU ${hub.cpu})`);
  }

  /** Real time (performance.now()) at which a packet stamped `timeUs` is due; -Infinity in 'compress'. */
  private dueAt(timeUs: number): number {
    if (this.vt0 === null || this.timeMode === 'compress') return -Infinity;
    return this.rt0 + (timeUs - this.vt0) / 1000;
  }

  /** The fast path: runs of packets already due go to the hub in one round trip each. */
  private async processBatched(batch: readonly InputPacket[]): Promise<KernelPacketResult[]> {
    const hub = this.hub!;
    const out: KernelPacketResult[] = new Array(batch.length);
    const sockOf = new Map<PointAgent, number>();
    this.hubPoints.forEach((pa, id) => sockOf.set(pa, id));
    const inetSock = this.hubPoints.findIndex((pa) => pa.point === POINT_INTERNET);
    let i = 0;
    while (i < batch.length) {
      // The first packet of a run waits for its time (as in 'single' mode); the run takes every
      // following packet that is already due, so the kernel never runs ahead of the virtual clock.
      await this.honourTime(batch[i].timeUs, 'packet');
      const now = performance.now();
      const items: Array<{ sock: number; frame: Uint8Array }> = [];
      const pending: Array<{ k: number; state: PacketState }> = [];
      let j = i;
      for (; j < batch.length && items.length < HUB_BATCH; j++) {
        if (j > i && this.dueAt(batch[j].timeUs) > now) break;
        const b = this.begin(batch[j]);
        if ('done' in b) {
          out[j] = b.done;
          continue;
        }
        items.push({ sock: sockOf.get(b.pa)!, frame: ethernet(b.frame, b.pa.macs[0], b.pa.macs[1]) });
        pending.push({ k: j, state: b.state });
      }
      const results = items.length ? await hub.run(items) : [];
      const lagOf = new Map<number, number>();
      for (let m = 0; m < results.length; m++) {
        const { k, state } = pending[m];
        let r = results[m];
        const perHop = [r];
        for (let hop = 0; hop <= MAX_HAIRPINS; hop++) {
          if (r.errno) state.sendErrno = r.errno;
          const hairpin = this.absorb(state, this.hubFrames(r), hop);
          if (!hairpin) break;
          const pa = this.points.get(POINT_INTERNET)!;
          [r] = await hub.run([{ sock: inetSock, frame: ethernet(hairpin, pa.macs[0], pa.macs[1]) }]);
          perHop.push(r);
        }
        out[k] = this.finish(state, this.hubStats(perHop));
        let late = 0;
        for (const h of perHop) {
          late += h.late;
          this.fenceRounds += h.rounds;
        }
        this.noteLate(late);
        const lag = Math.max(0, perHop[perHop.length - 1].doneAt - this.dueAt(batch[k].timeUs));
        lagOf.set(k, lag === Infinity ? 0 : lag);
      }
      // A hairpin stops the hub after its packet: continue right after the last one processed.
      const next = results.length < pending.length ? pending[results.length].k : j;
      for (let k = i; k < next; k++) {
        const due = this.dueAt(batch[k].timeUs);
        const lag = lagOf.get(k) ?? (due === -Infinity ? 0 : Math.max(0, now - due));
        this.lagMs.push(lag);
        this.maxLagMs = Math.max(this.maxLagMs, lag);
      }
      i = next;
    }
    return out;
  }

  private hubFrames(r: HubPacket): Array<{ point: number; bytes: Uint8Array }> {
    const frames: Array<{ point: number; bytes: Uint8Array }> = [];
    for (const f of r.frames) {
      if (f.pktType === PACKET_OUTGOING) continue;
      const ipb = stripEthernet(f.bytes);
      if (ipb) frames.push({ point: this.hubPoints[f.sock].point, bytes: ipb });
    }
    return frames;
  }

  /** Evidence per stat namespace over a packet's hops: xt_recent hits united, counters the last. */
  private hubStats(perHop: HubPacket[]): Array<{ label: string; instance: number; stats: NetnsStats }> {
    return this.statAgents.map((s, id) => {
      const recent = new Set<string>();
      let ct: Record<string, number> = {};
      let snmp: NetnsStats['snmp'];
      for (const h of perHop) {
        const x = parseAgentStats(h.stats.get(id) ?? '');
        for (const r of x.recent) recent.add(r);
        if (Object.keys(x.ct).length) ct = x.ct;
        if (x.snmp) snmp = x.snmp;
      }
      return { label: s.label, instance: s.instance, stats: snmp ? { ct, recent, snmp } : { ct, recent } };
    });
  }

  private noteLate(late: number): void {
    if (late <= 0) return;
    if (this.lateFrames === 0) {
      this.warnings.push(
        this.injection === 'single'
          ? `frames arrived after the ${this.settleMs} ms quiet time and were not attributed (raise settleMs / --settle-ms)`
          : 'frames arrived after their packet was done (a kernel timer, e.g. fragment reassembly) and were not attributed',
      );
    }
    this.lateFrames += late;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('kernel engine is closed');
  }

  /** Injects and collects until quiet; returns frames per capture point. */
  private async injectAndCollect(
    pa: PointAgent,
    ip: Uint8Array,
  ): Promise<{ errno: number; frames: Array<{ point: number; bytes: Uint8Array }> }> {
    const frames: Array<{ point: number; bytes: Uint8Array }> = [];
    // Anything still arriving now came after the previous packet's quiet time: count it (never
    // attribute it to this packet) and say so.
    await Promise.all(this.captureAgents.map((c) => c.agent.sync()));
    let late = 0;
    for (const c of this.captureAgents)
      late += c.agent.take().filter((f) => f.pktType !== PACKET_OUTGOING && stripEthernet(f.bytes)).length;
    this.noteLate(late);
    const errno = await pa.agent.inject(ethernet(ip, pa.macs[0], pa.macs[1]));
    // Round 0 right after send() (veth delivers in the sender's softirq), then rounds spaced by
    // settleMs until one brings nothing new.
    let quiet = 0;
    for (let round = 0; round < MAX_SETTLE_ROUNDS && (round < 2 || quiet < 1); round++) {
      if (round > 0) await sleep(this.settleMs);
      await Promise.all(this.captureAgents.map((c) => c.agent.sync()));
      let got = 0;
      for (const c of this.captureAgents) {
        for (const f of c.agent.take()) {
          // Incoming frames only: what the VPC delivered to this point.
          if (f.pktType === PACKET_OUTGOING) continue;
          const ipb = stripEthernet(f.bytes);
          if (!ipb) continue;
          frames.push({ point: c.point, bytes: ipb });
          got++;
        }
      }
      quiet = got === 0 ? quiet + 1 : 0;
    }
    return { errno, frames };
  }

  private async collectStats(): Promise<Array<{ label: string; instance: number; stats: NetnsStats }>> {
    return Promise.all(
      this.statAgents.map(async (s) => ({
        label: s.label,
        instance: s.instance,
        stats: parseAgentStats(await s.agent.stats()),
      })),
    );
  }

  /** Where a packet stands between injection hops (shared by the single and the batch path). */
  private begin(
    p: InputPacket,
  ): { done: KernelPacketResult } | { state: PacketState; pa: PointAgent; frame: Uint8Array } {
    const pv = this.pv;
    const st = parseIpv4(p.frame, 0, p.frame.length, pv);
    const state: PacketState = {
      input: p,
      st,
      inTtl: p.frame.length >= 9 ? p.frame[8] : 0,
      inIsIcmpError: st === PARSE_OK && pv.proto === PROTO_ICMP && pv.isIcmpError === 1,
      verifiedL4:
        st === PARSE_OK && pv.proto === PROTO_ICMP && pv.isIcmpError === 1 ? verifyL4Checksum(p.frame, pv) : false,
      icmpType: st === PARSE_OK && pv.proto === PROTO_ICMP ? pv.icmpType : -1,
      mf: st === PARSE_OK ? pv.mf : 0,
      result: { fate: FATE_DROPPED, reason: DROP_KERNEL_UNSEEN, detail: 0, ct: CT_NONE, outputs: [], evidence: [] },
      sendErrno: 0,
      igwDrop: REASON_NONE,
      localCandidates: new Map(),
      transitAt: new Set(),
    };
    const result = state.result;
    const sender = this.scenario.instances[p.ingress - instancePoint(0)];
    if (sender?.stopped) {
      // A stopped instance sends nothing (the model's order: an IP-level malformation first).
      result.reason = isIpLevelMalformation(st) ? DROP_MALFORMED : DROP_INSTANCE_STOPPED;
      if (isIpLevelMalformation(st)) result.detail = st;
      return { done: result };
    }
    const pa = this.points.get(p.ingress);
    if (!pa) {
      result.reason = DROP_NO_INGRESS;
      return { done: result };
    }
    let frame = p.frame;
    if (p.ingress === POINT_INTERNET) {
      // The first router (ip_rcv) drops an IP-level malformation before any mapping: say so
      // rather than "unknown destination" when its (garbled) destination is no Elastic IP.
      if (isIpLevelMalformation(st)) {
        result.reason = DROP_MALFORMED;
        result.detail = st;
        return { done: result };
      }
      const t = igwTranslate(this.igw, frame, false);
      if (t.reason !== REASON_NONE) {
        result.reason = t.reason;
        result.detail = t.detail;
        return { done: result };
      }
      frame = t.frame;
    }
    return { state, pa, frame };
  }

  /** Sorts one hop's captured frames into outputs; returns the frame to send back in (hairpin). */
  private absorb(
    s: PacketState,
    frames: ReadonlyArray<{ point: number; bytes: Uint8Array }>,
    hop: number,
  ): Uint8Array | null {
    const result = s.result;
    let hairpin: Uint8Array | null = null;
    for (const f of frames) {
      if (f.point !== POINT_INTERNET) {
        const i = f.point - 1;
        const inst = this.scenario.instances[i];
        const dst =
          f.bytes.length >= 20
            ? ((f.bytes[16] << 24) | (f.bytes[17] << 16) | (f.bytes[18] << 8) | f.bytes[19]) >>> 0
            : -1;
        if (dst !== inst.privateIp >>> 0) s.transitAt.add(i);
        else if (inst.nat === null)
          result.outputs.push({ egress: f.point, frame: f.bytes, captured: f.bytes, adjustments: [] });
        else {
          const l = s.localCandidates.get(i) ?? [];
          l.push(f.bytes);
          s.localCandidates.set(i, l);
        }
        continue;
      }
      const t = igwTranslate(this.igw, f.bytes, true);
      if (t.reason !== REASON_NONE) {
        s.igwDrop = t.reason;
        continue;
      }
      const dst =
        f.bytes.length >= 20 ? ((f.bytes[16] << 24) | (f.bytes[17] << 16) | (f.bytes[18] << 8) | f.bytes[19]) >>> 0 : 0;
      if (isElasticIp(this.igw, dst) && hairpin === null && hop < MAX_HAIRPINS) {
        // Leaving to one of the VPC's own Elastic IPs: the IGW sends it straight back in.
        const back = igwTranslate(this.igw, t.frame, false);
        if (back.reason === REASON_NONE) {
          hairpin = back.frame;
          continue;
        }
      }
      result.outputs.push({ egress: POINT_INTERNET, frame: t.frame, captured: f.bytes, adjustments: ['igw'] });
    }
    return hairpin;
  }

  private async processOne(p: InputPacket): Promise<KernelPacketResult> {
    const b = this.begin(p);
    if ('done' in b) return b.done;
    const s = b.state;
    let pa = b.pa;
    let frame = b.frame;
    for (let hop = 0; hop <= MAX_HAIRPINS; hop++) {
      const { errno, frames } = await this.injectAndCollect(pa, frame);
      if (errno) s.sendErrno = errno;
      const hairpin = this.absorb(s, frames, hop);
      if (!hairpin) break;
      pa = this.points.get(POINT_INTERNET)!;
      frame = hairpin;
    }
    return this.finish(s, await this.collectStats());
  }

  /** The verdict, from the outputs and the evidence the namespaces hold after the packet. */
  private finish(
    s: PacketState,
    stats: ReadonlyArray<{ label: string; instance: number; stats: NetnsStats }>,
  ): KernelPacketResult {
    const result = s.result;
    const inTtl = s.inTtl;
    const inIsIcmpError = s.inIsIcmpError;
    const st = s.st;
    const hits = new Set<string>();
    let ctCode = CT_NONE;
    let ctDrops = 0;
    let ctClash = 0;
    let ttlExpired = 0;
    let icmpLimited = false;
    /** Instances whose stack received something (nl_local) while this packet was handled. */
    const localInAt = new Set<number>();
    for (const x of stats) {
      for (const r of x.stats.recent) {
        hits.add(r);
        result.evidence.push(`${x.label}:${r}`);
      }
      if (x.instance >= 0 && x.stats.recent.has(RECENT_LOCAL_IN)) localInAt.add(x.instance);
      if (x.instance >= 0) {
        const c = this.ctOf(x.stats.recent);
        if (c !== CT_NONE) ctCode = c;
        const cand = s.localCandidates.get(x.instance);
        if (cand && x.stats.recent.has(RECENT_LOCAL_IN)) {
          for (const b of cand)
            result.outputs.push({ egress: instancePoint(x.instance), frame: b, captured: b, adjustments: [] });
        }
        // No statistics: the fast path did not read them because the packet never crossed this
        // instance's link, so they did not move.
        const cur = x.stats.ct;
        if (Object.keys(cur).length > 0) {
          const prev = this.lastCt.get(x.instance) ?? {};
          ctDrops += (cur.drop ?? 0) - (prev.drop ?? 0) + (cur.early_drop ?? 0) - (prev.early_drop ?? 0);
          ctClash += (cur.insert_failed ?? 0) - (prev.insert_failed ?? 0);
          this.lastCt.set(x.instance, { ...prev, ...cur });
        }
        const sn = x.stats.snmp;
        const was = this.lastSnmp.get(x.instance);
        if (sn && was) {
          ttlExpired += sn.ttlExpired - was.ttlExpired;
          // An ICMP error the instance's rate limits refused (docs/semantics.md §6): evidence for K2.
          if (sn.rlGlobal > was.rlGlobal) result.evidence.push(`${x.label}:${EVIDENCE_ICMP_RL_GLOBAL}`);
          if (sn.rlHost > was.rlHost) result.evidence.push(`${x.label}:${EVIDENCE_ICMP_RL_HOST}`);
          if (sn.rlGlobal > was.rlGlobal || sn.rlHost > was.rlHost) icmpLimited = true;
        }
        if (sn) this.lastSnmp.set(x.instance, sn);
      }
    }
    result.ct = ctCode;

    // Normalise, and tell forwarded copies from ICMP errors the path generated.
    let forwarded = 0;
    let generatedType = -1;
    let sawRejectRst = false;
    /** Instances a generated ICMP error of this packet was delivered to (their stack's nl_local is the error's). */
    const errorSinks = new Set<number>();
    for (const o of result.outputs) {
      const b = o.frame;
      const isErr = b.length >= 28 && isIcmpErrorFrame(b);
      // A filter REJECT's tcp-reset (recorded at the instance's OUTPUT) is generated too.
      const rejectRst =
        hits.has(RECENT_FILTER_RST) &&
        b.length >= 40 &&
        b[9] === PROTO_TCP &&
        (b[((b[0] & 15) << 2) + 13] & F_RST) !== 0;
      if (rejectRst) {
        sawRejectRst = true;
        continue;
      }
      const generated = isErr && !inIsIcmpError;
      if (generated) {
        errorSinks.add(o.egress - instancePoint(0));
        const ihl = (b[0] & 15) << 2;
        generatedType = b[ihl];
        // The quoted packet crossed the router at TTL 255 and lost one.
        const inner = ihl + 8;
        if (inTtl === 255 && b.length >= inner + 20 && b[inner + 8] === 254) {
          const n = new Uint8Array(b);
          const oldInnerWord = (n[inner + 8] << 8) | n[inner + 9];
          const oldInnerCsum = (n[inner + 10] << 8) | n[inner + 11];
          bumpTtl(n, inner, 1);
          let ic = (n[ihl + 2] << 8) | n[ihl + 3];
          ic = csumReplace16(ic, oldInnerWord, (n[inner + 8] << 8) | n[inner + 9]);
          ic = csumReplace16(ic, oldInnerCsum, (n[inner + 10] << 8) | n[inner + 11]);
          n[ihl + 2] = ic >>> 8;
          n[ihl + 3] = ic & 255;
          o.frame = n;
          o.adjustments.push('ttl+1');
        }
      } else {
        forwarded++;
        if (inTtl === 255) {
          const n = new Uint8Array(b);
          if (bumpTtl(n, 0, 1)) {
            o.frame = n;
            o.adjustments.push('ttl+1');
          }
        }
      }
    }

    if (forwarded > 0) {
      result.fate = FATE_DELIVERED;
      result.reason = REASON_NONE;
      return result;
    }
    result.fate = FATE_DROPPED;
    const fwdOff = [...s.transitAt].some((i) => !this.scenario.instances[i].sysctls.ipForward);
    // A TTL expiry whose time exceeded the rate limits refused leaves only the counters.
    if (generatedType === ICMP_TIME_EXCEEDED || (generatedType < 0 && ttlExpired > 0))
      result.reason = DROP_TTL_EXCEEDED;
    else if (
      sawRejectRst ||
      (generatedType === ICMP_DEST_UNREACH && hits.has(RECENT_FILTER_UNREACH)) ||
      // A REJECT's answer that left its instance (recorded at OUTPUT, not dropped by natlab's
      // guard) and died on the way back, e.g. at a network ACL: the packet was still rejected
      // (campaign seed 995002 run 36: an outbound-deny ACL on the NAT instance's subnet).
      (generatedType < 0 &&
        (hits.has(RECENT_FILTER_RST) || hits.has(RECENT_FILTER_UNREACH)) &&
        !hits.has(RECENT_LOCAL_OUT_DROPPED)) ||
      // The only other error natlab's instances generate is a REJECT's unreachable (sent, it is
      // recorded at OUTPUT; refused by the rate limits, only the counters show it).
      (generatedType < 0 && icmpLimited && ttlExpired === 0)
    )
      result.reason = DROP_FILTER_REJECT;
    else if (fwdOff) result.reason = DROP_IP_FORWARD_OFF;
    else if (hits.has(RECENT_STOPPED)) result.reason = DROP_INSTANCE_STOPPED;
    else if (hits.has(RECENT_SDCHECK_SRC)) result.reason = DROP_SRC_DST_CHECK_SRC;
    else if (hits.has(RECENT_SDCHECK_DST)) result.reason = DROP_SRC_DST_CHECK_DST;
    else if (hits.has(RECENT_SG_ALLOWANCE)) result.reason = DROP_SG_ALLOWANCE;
    else if (hits.has(RECENT_SG_DENY)) result.reason = DROP_SG_DENY;
    else if (hits.has(RECENT_NACL_DENY)) result.reason = DROP_NACL_DENY;
    else if (s.igwDrop !== REASON_NONE) result.reason = s.igwDrop;
    else if (hits.has(RECENT_BLACKHOLE)) result.reason = DROP_BLACKHOLE;
    else if (hits.has(RECENT_NOROUTE)) result.reason = DROP_NO_ROUTE;
    else if (hits.has(RECENT_NOHOST)) result.reason = DROP_NO_HOST;
    else if (ctCode === CT_RELATED && inIsIcmpError && !s.verifiedL4) result.reason = DROP_ICMP_BAD_CHECKSUM;
    else if (ctCode === CT_RELATED && inIsIcmpError && s.icmpType === ICMP_REDIRECT)
      result.reason = DROP_ICMP_REDIRECT_NAT;
    // (An instance that received only this packet's generated ICMP error — a redirect to the
    // sender, campaign seed 995012 run 71 — says nothing about where the packet itself went.)
    else if ([...localInAt].some((i) => !errorSinks.has(i))) result.reason = DROP_LOCAL_DELIVERY;
    else if (ctClash > 0) result.reason = DROP_NAT_CLASH;
    else if (ctDrops > 0) result.reason = DROP_CT_TABLE_FULL;
    else if (st === PARSE_FRAGMENT || (st === PARSE_OK && s.mf === 1)) result.reason = DROP_FRAGMENT;
    // A version other than 4 in an IPv4 frame (ethertype 0x0800; the IPv6 nibble included): ip_rcv()
    // drops it as a header error — malformed (bad-ip-version), as the model and replay say.
    else if (isIpLevelMalformation(st) || st === PARSE_BAD_IP_VERSION) {
      result.reason = DROP_MALFORMED;
      result.detail = st;
    } else result.reason = DROP_KERNEL_UNSEEN;
    if (s.sendErrno) result.evidence.push(`send errno ${s.sendErrno}`);
    return result;
  }

  private ctOf(recent: Set<string>): number {
    if (recent.has(RECENT_CT_NEW)) return CT_NEW;
    if (recent.has(RECENT_CT_ESTABLISHED)) return CT_ESTABLISHED;
    if (recent.has(RECENT_CT_RELATED)) return CT_RELATED;
    if (recent.has(RECENT_CT_INVALID)) return CT_INVALID;
    return CT_NONE;
  }

  /** Recognises the documented kernel differences (docs/kernel-differences.md; rules in differences.ts). */
  classifyDifference(facts: DifferenceFacts): DifferenceClass | null {
    const cls = classifyKernelDifference(facts, {
      scenario: this.scenario,
      name: this.name,
      lagMs: this.lagMs,
      maxLagMs: this.maxLagMs,
      localTcpDeliveries: this.localTcpDeliveries,
      localTcpFlows: this.localTcpFlows,
      sgInvalidFlows: this.sgInvalidFlows,
      sgInvalidSegments: this.sgInvalidSegments,
      sgInvalidDrops: this.sgInvalidDrops,
      sgAllowanceFlows: this.sgAllowanceFlows,
      sgClosedFlows: this.sgClosedFlows,
      sgReopenedFlows: this.sgReopenedFlows,
      sgAllowanceFlowClass: this.sgAllowanceFlowClass,
      sgAllowancePassed: this.sgAllowancePassed,
      unseenTtl0: this.unseenTtl0,
      unseenTtl0Flows: this.unseenTtl0Flows,
      routingLoopPasses: this.routingLoopPasses,
      reassemblyExpiries: this.reassemblyExpiries,
      redirectsSent: this.redirectsSent,
      rateLimitSurplus: this.rateLimitSurplus,
    });
    // K5 packets: the redirects went through the sending instance's OUTPUT chain.
    if (cls?.id === 'K5' && facts.results && facts.index !== -1) {
      for (const o of facts.results[facts.engines[0] === this.name ? 0 : 1].outputs) {
        const b = o.frame;
        if (!isIcmpErrorFrame(b) || b[(b[0] & 15) * 4] !== ICMP_REDIRECT) continue;
        this.redirectsSent.packets++;
        this.redirectsSent.bytes += b.length;
      }
    }
    // E17 packets: their flow's later packets differ the same way.
    if (cls?.id === 'E17' && facts.inputs && facts.index !== -1) {
      const key = sgFlowKey(facts.inputs[facts.engines[0] === this.name ? 0 : 1].frame);
      if (key) this.sgReopenedFlows.add(key);
    }
    // K2 packets: the errors one side's rate limit let through went through its instance's OUTPUT chain.
    if (cls?.id === 'K2' && facts.results && facts.index !== -1) {
      const mine = facts.engines[0] === this.name ? 0 : 1;
      const errors = (r: PacketResult) => r.outputs.filter((o) => isIcmpErrorFrame(o.frame)).map((o) => o.frame.length);
      const kernel = errors(facts.results[mine]);
      const other = errors(facts.results[1 - mine]);
      const [more, fewer, side] =
        kernel.length > other.length
          ? [kernel, other, this.rateLimitSurplus.kernel]
          : [other, kernel, this.rateLimitSurplus.other];
      // at most the largest of the errors, each
      side.packets += more.length - fewer.length;
      side.bytes += (more.length - fewer.length) * Math.max(...more);
    }
    // K9 packets: the kernel forwarded the loop until the TTL ran out (bounded by the input's TTL).
    if (cls?.id === 'K9' && facts.inputs && facts.index !== -1) {
      const f = facts.inputs[facts.engines[0] === this.name ? 0 : 1].frame;
      if (f.length >= 20) {
        this.routingLoopPasses.packets += f[8];
        this.routingLoopPasses.bytes += f[8] * rd16(f, 2);
      }
    }
    // E11 drops: the other engine's NAT instances counted (and tracked) what the kernel's ENI
    // dropped — whether it then delivered the packet or dropped it beyond the ENI (e.g. the
    // receiving instance's filter INPUT policy: campaign seed 995003 run 2).
    if (cls?.id === 'E11' && facts.results && facts.index !== -1) {
      const i = facts.engines[0] === this.name ? 0 : 1;
      const other = facts.results[1 - i];
      if (
        facts.results[i].fate !== FATE_DELIVERED &&
        (other.fate === FATE_DELIVERED ||
          (other.reason !== DROP_SG_DENY && other.reason !== DROP_SG_ALLOWANCE && other.reason !== DROP_NACL_DENY))
      )
        this.sgInvalidDrops++;
    }
    // E16 packets: the kernel's ENI let through what the contract refused; its flow may leave
    // conntrack entries and nat counts only the kernel has (bounded by sgAllowancePassed).
    if (cls?.id === 'E16' && facts.results && facts.inputs && facts.index !== -1) {
      const i = facts.engines[0] === this.name ? 0 : 1;
      const r = facts.results[i];
      for (const b of [facts.inputs[i].frame, ...r.outputs.map((o) => o.frame)]) {
        const key = sgFlowKey(b);
        if (key) this.sgAllowanceFlows.add(key);
      }
    }
    // E11/E16 allowance packets: the contract refused them at the allowance, the kernel's ENI
    // tracked them — the rest of their flow differs the same way (campaign seed 995014 run 23:
    // the reply to a SYN only the kernel's ENI tracked met web's inbound rules in the contract).
    if ((cls?.id === 'E11' || cls?.id === 'E16') && facts.results && facts.inputs && facts.index !== -1) {
      const i = facts.engines[0] === this.name ? 0 : 1;
      if (facts.results[1 - i].reason === DROP_SG_ALLOWANCE && facts.results[i].reason !== DROP_SG_ALLOWANCE)
        for (const b of [facts.inputs[i].frame, ...facts.results[i].outputs.map((o) => o.frame)]) {
          const key = sgFlowKey(b);
          if (key && !this.sgAllowanceFlowClass.has(key)) this.sgAllowanceFlowClass.set(key, cls.id);
        }
    }
    if ((cls?.id === 'E11' || cls?.id === 'E16') && facts.results && facts.index !== -1) {
      const i = facts.engines[0] === this.name ? 0 : 1;
      const kr = facts.results[i];
      // Let through: not refused at the allowance, and either not by a security group at all or
      // only after a NAT instance's conntrack saw it (an instance's own egress group: campaign seed
      // 994001 run 86 — the packet was counted in that instance's nat chains first).
      if (
        facts.results[1 - i].reason === DROP_SG_ALLOWANCE &&
        kr.reason !== DROP_SG_ALLOWANCE &&
        (kr.reason !== DROP_SG_DENY || kr.ct !== CT_NONE)
      )
        this.sgAllowancePassed++;
    }
    return cls;
  }

  /**
   * Mid-run rule change (Engine.setFilterRules, docs/semantics.md §11): each security-group
   * namespace's rule chains and the router's ACL chains are replaced with `iptables-restore
   * --noflush` (a declared chain is flushed and refilled in one commit per table); the ENIs'
   * conntrack tables — their tracked flows — stay.
   */
  async setFilterRules(next: Scenario): Promise<void> {
    this.assertOpen();
    const why = filterUpdateProblem(this.scenario, next);
    if (why) throw new InputError(`kernel engine: setFilterRules: ${why}`);
    const updates: Array<{ netns: string; text: string }> = [];
    this.plan.sg.forEach((netns, i) => {
      if (netns !== null) updates.push({ netns, text: sgUpdateText(next, i) });
    });
    const acl = aclUpdateText(next);
    if (acl) updates.push({ netns: this.plan.router, text: acl });
    for (const u of updates) await run('iptables-restore', ['--noflush'], { netns: u.netns, input: u.text });
  }

  // ---------------------------------------------------------------------------------------------
  // State

  /** `conntrack -L` text of each NAT instance, keyed by instance index. */
  async conntrackText(): Promise<Map<number, string>> {
    this.assertOpen();
    const m = new Map<number, string>();
    for (const n of this.plan.netns) {
      if (n.role !== 'instance' || !this.scenario.instances[n.instance].nat) continue;
      const r = await run('conntrack', ['-L'], { netns: n.name, allowFail: true });
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr))
        throw new Error(`conntrack -L in ${n.name} failed: ${r.stderr.trim()}`);
      m.set(n.instance, r.stdout);
    }
    return m;
  }

  async conntrack(): Promise<ConntrackEntry[]> {
    const out: ConntrackEntry[] = [];
    for (const [i, text] of await this.conntrackText()) out.push(...parseConntrackList(text, i));
    return sortConntrack(out);
  }

  /** `iptables -t nat -L -v -n -x` text of each NAT instance, keyed by instance index. */
  async iptablesText(): Promise<Map<number, string>> {
    this.assertOpen();
    const m = new Map<number, string>();
    for (const n of this.plan.netns) {
      if (n.role !== 'instance' || !this.scenario.instances[n.instance].nat) continue;
      const r = await run('iptables', ['-t', 'nat', '-L', '-v', '-n', '-x'], { netns: n.name });
      m.set(n.instance, r.stdout);
    }
    return m;
  }

  async natCounters(): Promise<NatRuleCounter[]> {
    const out: NatRuleCounter[] = [];
    for (const [i, text] of await this.iptablesText()) out.push(...parseIptablesCounters(text, i));
    return out;
  }

  /**
   * The scenario filter tables' counters (Engine.filterCounters): `iptables -t filter -L -v -n -x`
   * of each NAT instance with a filter table, natlab's own OUTPUT guard left out (parseFilterCounters).
   */
  async filterCounters(): Promise<FilterRuleCounter[]> {
    this.assertOpen();
    const out: FilterRuleCounter[] = [];
    for (const n of this.plan.netns) {
      if (n.role !== 'instance') continue;
      const inst = this.scenario.instances[n.instance];
      if (!inst.nat || !inst.filter) continue;
      const r = await run('iptables', ['-t', 'filter', '-L', '-v', '-n', '-x'], { netns: n.name });
      out.push(...parseFilterCounters(r.stdout, n.instance, OWN_OUTPUT_CHAIN));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.hub?.stop().catch(() => {});
    await Promise.all(this.agents.map((a) => a.stop().catch(() => {})));
    if (!this.opts.keep) await deleteNetns(this.netnsNames);
    this.unregister?.();
    this.unregister = null;
  }
}

/**
 * Why the kernel engine cannot judge `scenario`, or null: a NAT gateway is AWS's managed service,
 * not Linux — there is nothing to build in a namespace that would be ground truth for it
 * (docs/kernel-differences.md "NAT gateways").
 */
export function kernelUnsupported(scenario: Scenario): string | null {
  const g = scenario.natGateways ?? [];
  if (g.length === 0) return null;
  return `scenario ${scenario.name} has NAT gateway${g.length > 1 ? 's' : ''} (${g.map((x) => x.name).join(', ')}): the kernel engine cannot judge a NAT gateway, which is AWS's managed service and not Linux (compare model and core; docs/kernel-differences.md)`;
}

/** The engine factory. */
export function createKernelEngine(scenario: Scenario, opts: KernelEngineOptions = {}): Promise<KernelEngine> {
  const why = kernelUnsupported(scenario);
  if (why) return Promise.reject(new InputError(`kernel engine: ${why}`));
  return KernelEngine.create(scenario, opts);
}

/** The kernel oracle as the differential runner sees it (diff/engines.ts). */
export const kernelEngineDescriptor: EngineDescriptor = {
  name: 'kernel',
  summary: 'ground truth: the scenario built in Linux network namespaces (root, ip, iptables, conntrack, perl)',
  realClock: true,
  randomChoices: true,
  fixedConntrackMax: true,
  // Security groups and network ACLs are built for real (aws-filters.ts, docs/kernel-oracle.md).
  awsFilters: true,
  // The NAT instances' filter tables are loaded as real iptables (topology.ts), their counters
  // read back (filterCounters); a REJECT's ICMP errors meet the real rate limits (K2, classified).
  fuzzFilterTables: true,
  // Fuzz runs step the clock past timeouts: the kernel really waits for each step.
  fuzzOptions: { maxWaitMs: 600_000 },
  async available() {
    const pre = await checkKernelPrerequisites();
    return { ok: pre.ok, missing: pre.ok ? '' : describeMissing(pre) };
  },
  unsupported: kernelUnsupported,
  create: (scenario, opts) => createKernelEngine(scenario, opts),
};

export interface KernelRun {
  results: KernelPacketResult[];
  conntrack: ConntrackEntry[];
  counters: NatRuleCounter[];
  warnings: string[];
}

/**
 * Runs a list of packets through a fresh kernel engine for a scenario and returns everything a
 * comparison needs; the namespaces are gone when it returns (also on error). `advanceToUs`, when
 * given, is honoured after the packets (conntrack expiry), before the tables are read.
 */
export async function runKernel(
  scenario: Scenario,
  inputs: readonly InputPacket[],
  opts: KernelEngineOptions & { advanceToUs?: number } = {},
): Promise<KernelRun> {
  const e = await createKernelEngine(scenario, opts);
  try {
    const results = await e.process(inputs);
    if (opts.advanceToUs !== undefined) await e.advance(opts.advanceToUs);
    const conntrack = await e.conntrack();
    const counters = await e.natCounters();
    return { results, conntrack, counters, warnings: [...e.warnings] };
  } finally {
    await e.close();
  }
}

export { describeMissing };
