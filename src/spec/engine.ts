import type { BatchOutput, FrameBatch } from './frame-batch.ts';
import type { ReaddressPlan } from './readdress-plan.ts';
import type { NatGatewayConnection, NatGatewayCounters } from './nat-gateway.ts';
import type { Scenario } from './scenario.ts';
import type { TimelineEvent } from './timeline.ts';

// The contract every engine (model, core, kernel) implements. Frames are IPv4 packets: the IPv4
// header starts at byte 0 (link-layer headers are stripped by the caller and re-added by writers).

export interface InputPacket {
  /** Virtual clock, microseconds (packet timestamp). Must not decrease. */
  timeUs: number;
  /** Where the packet enters: POINT_INTERNET or instancePoint(i) (see spec/scenario.ts). */
  ingress: number;
  /** The IPv4 packet. Engines never modify the caller's bytes. */
  frame: Uint8Array;
}

export interface OutputFrame {
  /** Where it left: POINT_INTERNET, or the instance it was delivered to. */
  egress: number;
  frame: Uint8Array;
}

export interface PacketResult {
  /** FATE_DELIVERED or FATE_DROPPED (spec/reasons.ts). */
  fate: number;
  /** DROP_* code; REASON_NONE when delivered. */
  reason: number;
  /** Extra code for the reason: the parse status for DROP_MALFORMED, else 0. */
  detail: number;
  /** Conntrack classification at the (last) NAT instance on the path, CT_* (CT_NONE if none). */
  ct: number;
  /**
   * Frames that left because of this packet, in order: the forwarded packet, and any ICMP error
   * the path generated (e.g. time exceeded back to the sender). Dropped packets may still have
   * outputs (the ICMP error).
   */
  outputs: OutputFrame[];
}

/** One conntrack entry in engine-neutral form (what `conntrack -L` prints). */
export interface CtTuple {
  src: number;
  dst: number;
  /** TCP/UDP source port; ICMP: the query id. */
  sport: number;
  /** TCP/UDP destination port; ICMP: (type << 8) | code. */
  dport: number;
}

export interface ConntrackEntry {
  /** Which NAT instance holds it (index into Scenario.instances). */
  instance: number;
  proto: number;
  /** TCP state name as conntrack prints it (ESTABLISHED, SYN_SENT, ...); '' for UDP/ICMP. */
  state: string;
  /** Whole seconds until expiry, as conntrack -L prints. */
  timeout: number;
  orig: CtTuple;
  reply: CtTuple;
  assured: boolean;
  seenReply: boolean;
}

/** iptables nat counters: per rule, connections (first packets) and their bytes. */
export interface NatRuleCounter {
  instance: number;
  chain: string;
  /** Rule index in its chain, or -1 for the chain policy. */
  rule: number;
  packets: number;
  bytes: number;
}

/** iptables filter counters: per rule, packets and bytes (rule -1: the built-in chain's policy). */
export type FilterRuleCounter = NatRuleCounter;

/**
 * How an engine's output frames are brought to the contract's view before they are compared
 * (e.g. an extra hop the engine cannot avoid). Always listed in reports (`description`).
 */
export interface OutputNormaliser {
  /** One line for the report, e.g. "kernel: TTL +1 on frames leaving to the internet (veth hop)". */
  description: string;
  /** Returns the normalised frame (a copy when changed) for an output of `input`. */
  apply(out: OutputFrame, input: InputPacket): Uint8Array;
}

/**
 * What a comparison found for one packet (or for the end-of-run tables), handed to an engine so
 * it can recognise one of its documented differences (docs/kernel-differences.md) by a rule.
 */
export interface DifferenceFacts {
  /** Packet index (0-based, in the order the engines got them), or -1 for end-of-run tables. */
  index: number;
  /** Every difference found for it: kind (diff/compare/compare.ts: fate, reason, ct, frame, conntrack, ...) and message. */
  differences: ReadonlyArray<{ kind: string; message: string }>;
  /**
   * End of run (index -1): every table difference of this comparison, of which `differences` is a
   * part — for a rule that recognises a pair (one entry on each side). Absent: `differences` is all.
   */
  tableDifferences?: ReadonlyArray<{ kind: string; message: string }>;
  /** The engines compared: [reference, other]; the classifying engine is one of them. */
  engines: readonly [string, string];
  /** Packet differences: the input as each engine got it, and each engine's result (same order as `engines`). */
  inputs: readonly [InputPacket, InputPacket] | null;
  results: readonly [PacketResult, PacketResult] | null;
}

/** A recognised difference: the documented class (e.g. 'K3') and why this one belongs to it. */
export interface DifferenceClass {
  id: string;
  why: string;
}

export interface Engine {
  readonly name: string;
  /**
   * Optional (engines with EngineDescriptor.awsFilters): replaces the rules of the security groups
   * and the entries of the network ACLs mid-run with those of `next` — AWS's modify-rule / replace-
   * entry operations (docs/semantics.md §11 "Changing rules mid-run"). The groups, their ENIs, the
   * tracking settings and the ACLs' subnets must stay (scenario/filter-update.ts). Tracked flows
   * survive; untracked flows and ACLs meet the new rules with their next packet.
   */
  setFilterRules?(next: Scenario): Promise<void>;
  /**
   * Optional: applies a scenario timeline event (spec/timeline.ts) at capture time `timeUs` (the
   * clock first advances to it): the engine's scenario becomes scenarioAfter(current, event.action)
   * and the conntrack of flushedBy(event.action) is emptied. Every later packet meets the new state.
   */
  applyTimelineEvent?(event: TimelineEvent, timeUs: number): Promise<void>;
  /**
   * Optional: recognises a difference between this engine and another as one documented for this
   * engine (known, counted under its class, not a failure). Null: unclassified (a real difference).
   */
  classifyDifference?(facts: DifferenceFacts): DifferenceClass | null;
  /**
   * Applied to this engine's outputs before any comparison (the kernel engine's extra Linux hops);
   * its description is printed with every comparison involving the engine. Absent: frames as they are.
   */
  readonly outputNormaliser?: OutputNormaliser;
  /**
   * Conntrack timeouts of this engine may differ from another engine's by up to this many seconds
   * (an engine on a real clock: its timers run while natlab works). Absent: compared exactly.
   */
  readonly timingTolerance?: number;
  /** Process packets in order; one result per input, same order. */
  process(batch: readonly InputPacket[]): Promise<PacketResult[]>;
  /**
   * Zero-copy form of process(): packets [first, first + count) in order (default: [0,
   * batch.count)), results into `out` at the same indices (docs/frame-batch.md). Engines that have
   * it are fed this way by the differential runner; a range lets the runner hand over part of a
   * batch (one-sided replay: up to a reply that needs an earlier packet's mapping) with no copy.
   */
  processFrames?(
    batch: FrameBatch,
    out: BatchOutput,
    first?: number,
    count?: number,
    plan?: ReaddressPlan,
  ): Promise<void>;
  /**
   * True when processFrames takes a re-addressing plan (spec/readdress-plan.ts): the engine
   * re-addresses the planned frames in the batch itself, in the same hand-over (the core with one
   * worker). Absent: never pass one.
   */
  readonly readdressPlans?: boolean;
  /** Advance the virtual clock with no traffic (expires entries). */
  advance(timeUs: number): Promise<void>;
  conntrack(): Promise<ConntrackEntry[]>;
  /**
   * Optional: how many entries conntrack() would list now, without building them (a run with one
   * engine reports only the count at its end).
   */
  conntrackCount?(): Promise<number>;
  natCounters(): Promise<NatRuleCounter[]>;
  /**
   * Optional: the instances' filter-table counters (docs/semantics.md §13; rule -1: a chain's
   * policy), for every NAT instance with a filter table. Compared when both engines have it.
   */
  filterCounters?(): Promise<FilterRuleCounter[]>;
  /**
   * NAT gateway counters (CloudWatch metric names, src/spec/nat-gateway.ts), one per NAT gateway
   * of the scenario. Absent: the engine cannot run NAT gateways (the kernel engine).
   */
  natGatewayCounters?(): Promise<NatGatewayCounters[]>;
  /**
   * The NAT gateways' connection tables (src/spec/nat-gateway.ts), sorted by
   * compareNatGatewayConnections. Absent: the engine cannot run NAT gateways.
   */
  natGatewayConnections?(): Promise<NatGatewayConnection[]>;
  close(): Promise<void>;
}

export interface EngineOptions {
  /** Seed for any random choice (port search offsets); engines must be deterministic per seed. */
  seed?: number;
  /** Core: worker threads; 0 = no threads, the dataplane runs on the calling thread. */
  workers?: number;
  /**
   * Core: the memory layout of its tables ('record' or 'line', docs/core.md "Layouts"); it changes
   * speed and memory, never outputs. Engines without layouts ignore it.
   */
  layout?: string;
}

/** Whether an engine can run on this machine, and if not, what is missing (one line). */
export interface EngineAvailability {
  ok: boolean;
  missing: string;
}

/**
 * What the runner knows about an engine before building one: its public factory and traits.
 * Each engine module exports one (model/index.ts, core/engine.ts, oracle/index.ts); diff/engines.ts
 * lists them in a static table — the only place that names every engine.
 */
export interface EngineDescriptor {
  readonly name: string;
  /** One line for help texts. */
  readonly summary: string;
  /**
   * The engine runs on a real clock (it waits; it cannot jump): fuzzers keep clock steps away
   * from timeouts, and conntrack timeouts are compared with its Engine.timingTolerance.
   */
  readonly realClock: boolean;
  /**
   * Its port and IP-id choices differ between two runs with the same seed: a saved run is compared
   * with a new one like two engines (up to a consistent renaming), not byte for byte.
   */
  readonly randomChoices: boolean;
  /**
   * The engine draws its port choices from the model's seeded generator (src/spec/prng.ts) in the
   * model's order — always, or only with at most one worker (more workers restrict each worker's
   * choices to ports whose replies come back to it). Engines that all do so are compared with
   * exact port choices (fuzz `exactPorts`); absent: the engine chooses its own way.
   */
  readonly modelPortChoices?: 'always' | 'one-worker';
  /**
   * The engine cannot enforce a scenario's conntrack maximum (the kernel: nf_conntrack_max is
   * global, docs/kernel-differences.md E3): fuzzers keep scenarios at the default maximum.
   */
  readonly fixedConntrackMax?: boolean;
  /**
   * Implements security groups and network ACLs (docs/semantics.md §11). Absent = no: `create`
   * refuses scenarios that use them and the fuzzer generates none for runs with this engine.
   */
  readonly awsFilters?: boolean;
  /**
   * The fuzzer may give the NAT instances random filter tables (docs/semantics.md §13) in campaigns
   * whose every engine says so. Absent: none (the kernel engine evaluates filter tables, but a
   * REJECT's ICMP errors are rate-limited there, docs/kernel-differences.md K2).
   */
  readonly fuzzFilterTables?: boolean;
  /** Options `create` takes beyond EngineOptions for the differential fuzzer's runs (kernel: a wait budget for clock steps). */
  readonly fuzzOptions?: Record<string, unknown>;
  /** Checks this machine (root, tools); absent = always available. */
  available?(): Promise<EngineAvailability>;
  /**
   * Why this engine cannot judge `scenario` (one line), or null. Absent: it judges every scenario.
   * Commands skip such an engine for that scenario and say why; create() refuses it (InputError).
   */
  unsupported?(scenario: Scenario): string | null;
  /** Builds an engine; `opts` carries EngineOptions plus engine-specific options. */
  create(scenario: Scenario, opts: EngineOptions & Record<string, unknown>): Engine | Promise<Engine>;
}
