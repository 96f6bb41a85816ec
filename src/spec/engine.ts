import type { BatchOutput, FrameBatch } from './frame-batch.ts';

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

/**
 * What a comparison found for one packet (or for the end-of-run tables), handed to an engine so
 * it can recognise one of its documented differences (docs/kernel-differences.md) by a rule.
 */
export interface DifferenceFacts {
  /** Packet index (0-based, in the order the engines got them), or -1 for end-of-run tables. */
  index: number;
  /** Every difference found for it: kind (diff/compare.ts: fate, reason, ct, frame, conntrack, ...) and message. */
  differences: ReadonlyArray<{ kind: string; message: string }>;
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
   * Optional: recognises a difference between this engine and another as one documented for this
   * engine (known, counted under its class, not a failure). Null: unclassified (a real difference).
   */
  classifyDifference?(facts: DifferenceFacts): DifferenceClass | null;
  /** Process packets in order; one result per input, same order. */
  process(batch: readonly InputPacket[]): Promise<PacketResult[]>;
  /**
   * Zero-copy form of process(): packets [0, batch.count) in order, results into `out`
   * (docs/frame-batch.md). Engines that have it are fed this way by the differential runner.
   */
  processFrames?(batch: FrameBatch, out: BatchOutput): Promise<void>;
  /** Advance the virtual clock with no traffic (expires entries). */
  advance(timeUs: number): Promise<void>;
  conntrack(): Promise<ConntrackEntry[]>;
  natCounters(): Promise<NatRuleCounter[]>;
  close(): Promise<void>;
}

export interface EngineOptions {
  /** Seed for any random choice (port search offsets); engines must be deterministic per seed. */
  seed?: number;
  /** Core: worker threads. */
  workers?: number;
}
