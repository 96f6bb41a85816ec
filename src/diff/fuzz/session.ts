// A streaming differential session: packets (in the reference engine's port space) go through
// every engine — each other engine gets the frame renamed into its own port space by the
// PortRenaming learnt so far — results are compared as they come, and engine-independent
// invariants are checked on every output. Used by the fuzzer and by regression replay (same
// code path, so a saved counterexample replays exactly as it was found).

import type { TimelineEvent } from '../../spec/timeline.ts';
import type { ConntrackEntry, Engine, InputPacket, PacketResult } from '../../spec/engine.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { POINT_INTERNET, pointName } from '../../spec/scenario.ts';
import { CT_ESTABLISHED, FATE_DROPPED, FATE_DELIVERED } from '../../spec/reasons.ts';
import { formatConntrackLine } from '../../spec/conntrack-format.ts';
import { PacketView, parseIpv4, PARSE_OK, PARSE_STATUS_NAMES } from '../../packet/parse.ts';
import { verifyL4Checksum } from '../../packet/checksum.ts';
import { describePacket } from '../../packet/format.ts';
import { formatIpv4 } from '../../packet/addr.ts';
import { isIcmpErrorFrame, isIcmpErrorType, PROTO_ICMP, PROTO_UDP } from '../../packet/constants.ts';
import { applyDamage, type Damage } from '../../traffic/fuzz-damage.ts';
import { awsFiltersToObject } from '../../scenario/security-groups-yaml.ts';
import {
  comparePacket,
  compareConntrack,
  compareCounters,
  compareGatewayConnections,
  compareGatewayCounters,
  PortRenaming,
  type Difference,
  type PacketCompareContext,
} from '../compare/compare.ts';

export interface SessionEngine {
  name: string;
  engine: Engine;
}

/** Where a reply must arrive: the original sender's point and address (same in every engine). */
export interface ReplyExpectation {
  egress: number;
  dst: number;
  dport: number;
}

export type SessionEvent =
  | {
      kind: 'packet';
      index: number;
      input: InputPacket;
      clean: Uint8Array;
      damage?: Damage;
      expect?: ReplyExpectation;
      note?: string;
    }
  | { kind: 'advance'; timeUs: number }
  /** Security-group rules / ACL entries changed (Engine.setFilterRules): the new ones, file format. */
  | { kind: 'filters'; timeUs: number; filters: Record<string, unknown>; note?: string }
  /** A scenario timeline event (Engine.applyTimelineEvent) at the current time. */
  | { kind: 'timeline'; timeUs: number; event: TimelineEvent };

export class DifferenceError extends Error {
  constructor(readonly differences: Difference[]) {
    super(differences.map((d) => d.message).join('\n'));
    this.name = 'DifferenceError';
  }
}

export interface SendOptions {
  /** Where the reply must arrive (checked when the packet is an ESTABLISHED reply). */
  expect?: ReplyExpectation;
  /** Damage applied to every engine's copy after renaming (malformed-frame commands). */
  damage?: Damage;
  timeUs?: number;
  /** The command that sent it (for reports). */
  note?: string;
}

export interface SessionOptions {
  /** Throw DifferenceError at the first difference/violation (fuzzing: lets fast-check shrink). */
  throwOnDifference?: boolean;
  /** Check the engine-independent invariants (default true). */
  invariants?: boolean;
  /**
   * Ask the engines (Engine.classifyDifference) to recognise documented differences (default
   * true): those are counted in `classified` by class, not failures.
   */
  classify?: boolean;
  /**
   * The engines choose ports identically (model and a one-worker core: one generator, one seed):
   * a renaming between them is a difference (PortRenaming `exact`). Default false.
   */
  exactPorts?: boolean;
}

const pvA = new PacketView();
const pvB = new PacketView();

export class DiffSession {
  readonly events: SessionEvent[] = [];
  /** Per engine (same order as engines), every result. */
  readonly results: PacketResult[][];
  /** Per engine, the input frames it actually got (its own port space). */
  readonly inputs: InputPacket[][];
  readonly differences: Difference[] = [];
  readonly renamings: PortRenaming[];
  private readonly ctxs: PacketCompareContext[];
  /** Tolerances applied (kernel-unseen drops...), counted, for reports. */
  readonly tolerated = new Map<string, number>();
  private readonly eips: Set<number>;
  timeUs = 0;
  packets = 0;
  /** Packets not sent because no faithful renaming existed (see send). */
  skipped = 0;
  /** Conntrack tables per engine, as last fetched (finish or captureTables). */
  tables: ConntrackEntry[][] | null = null;

  constructor(
    readonly scenario: Scenario,
    readonly engines: SessionEngine[],
    readonly opts: SessionOptions = {},
  ) {
    if (engines.length < 1) throw new Error('DiffSession needs at least one engine');
    this.results = engines.map(() => []);
    this.inputs = engines.map(() => []);
    this.renamings = engines.slice(1).map(() => new PortRenaming(scenario, opts.exactPorts === true));
    this.ctxs = engines.slice(1).map((e, j) => ({
      names: [engines[0].name, e.name] as [string, string],
      renaming: this.renamings[j],
      scenario,
      normaliserA: engines[0].engine.outputNormaliser,
      normaliserB: e.engine.outputNormaliser,
      engineA: engines[0].engine,
      engineB: e.engine,
      tolerated: this.tolerated,
    }));
    this.eips = new Set([
      ...scenario.instances.flatMap((i) => (i.elasticIp === null ? [] : [i.elasticIp >>> 0])),
      ...(scenario.natGateways ?? []).flatMap((g) =>
        g.addresses.flatMap((a) => (a.elasticIp === null ? [] : [a.elasticIp >>> 0])),
      ),
    ]);
  }

  /** Documented differences recognised by an engine's rule, per class id ('K3', 'E5', ...). */
  readonly classified = new Map<string, number>();
  /** The first example of each class (for reports). */
  readonly classifiedExamples = new Map<string, string>();

  /** Removes (and counts) the differences an engine recognises as documented; returns the rest. */
  private classifyKnown(d: Difference[]): Difference[] {
    if (this.opts.classify === false) return d;
    const groups = new Map<string, Difference[]>();
    for (let n = 0; n < d.length; n++) {
      const x = d[n];
      // A packet's differences are judged together; end-of-run table differences one by one.
      const k = x.index >= 0 ? `${x.index}|${x.engines[0]}|${x.engines[1]}` : `table ${n}`;
      const g = groups.get(k);
      if (g) g.push(x);
      else groups.set(k, [x]);
    }
    const tableDifferences = d.filter((x) => x.index < 0).map((x) => ({ kind: x.kind, message: x.message }));
    const rest: Difference[] = [];
    for (const g of groups.values()) {
      const { index, engines } = g[0];
      const ja = this.engines.findIndex((e) => e.name === engines[0]);
      const jb = this.engines.findIndex((e) => e.name === engines[1]);
      const pair = ja >= 0 && jb >= 0 && ja !== jb;
      const packet = pair && index >= 0 && index < this.results[ja].length && index < this.results[jb].length;
      const facts = {
        index,
        differences: g.map((x) => ({ kind: x.kind, message: x.message })),
        engines,
        inputs: packet ? ([this.inputs[ja][index], this.inputs[jb][index]] as const) : null,
        results: packet ? ([this.results[ja][index], this.results[jb][index]] as const) : null,
        tableDifferences: index < 0 ? tableDifferences : undefined,
      };
      const c =
        pair && !g.some((x) => x.kind === 'invariant')
          ? (this.engines[jb].engine.classifyDifference?.(facts) ??
            this.engines[ja].engine.classifyDifference?.(facts) ??
            null)
          : null;
      if (!c) {
        rest.push(...g);
        continue;
      }
      this.classified.set(c.id, (this.classified.get(c.id) ?? 0) + 1);
      if (!this.classifiedExamples.has(c.id))
        this.classifiedExamples.set(c.id, `${c.why}: ${g[0].message.split('\n')[0]}`);
    }
    return rest;
  }

  private fail(all: Difference[]): void {
    const d = this.classifyKnown(all);
    if (d.length === 0) return;
    this.differences.push(...d);
    if (this.opts.throwOnDifference) throw new DifferenceError(d);
  }

  /** The time the next packet gets (1 ms after the previous event unless given). */
  nextTime(): number {
    return this.timeUs + 1000;
  }

  /**
  /**
   * Sends one packet; returns the reference result, or null when it cannot be sent faithfully:
   * it refers to a port that is stale in the reference and re-used by another session in another
   * engine (random port choices made the worlds diverge legitimately). Nothing is recorded then.
   */
  async send(ingress: number, frame: Uint8Array, so: SendOptions = {}): Promise<PacketResult | null> {
    const timeUs = so.timeUs ?? this.nextTime();
    const { expect, damage, note } = so;
    if (timeUs < this.timeUs) throw new Error(`packet time ${timeUs} µs is before the current time ${this.timeUs} µs`);
    const renamed: Uint8Array[] = [];
    for (const r of this.renamings) {
      const f = r.renameFrameStrict(frame);
      if (!f) {
        this.skipped++;
        return null;
      }
      renamed.push(f);
    }
    this.timeUs = timeUs;
    const index = this.packets++;
    const inputA: InputPacket = { timeUs, ingress, frame: damage ? applyDamage(frame, damage) : frame };
    this.events.push({ kind: 'packet', index, input: inputA, clean: frame, damage, expect, note });
    const res: PacketResult[] = [];
    for (let j = 0; j < this.engines.length; j++) {
      let input = inputA;
      if (j > 0) {
        // Damage first, then rename the damaged frame: renaming patches checksums incrementally,
        // which does not commute with damage (a corrupted checksum must stay corrupted by the same
        // amount, as Linux's NAT leaves it), and a damaged frame's ports are renamed by position.
        const f = damage ? this.renamings[j - 1].renameFrame(inputA.frame) : renamed[j - 1];
        input = { timeUs, ingress, frame: f };
      }
      this.inputs[j].push(input);
      const [r] = await this.engines[j].engine.process([input]);
      if (!r) throw new Error(`engine ${this.engines[j].name} returned no result for packet #${index}`);
      this.results[j].push(r);
      res.push(r);
    }
    const diffs: Difference[] = [];
    for (let j = 1; j < this.engines.length; j++)
      diffs.push(...comparePacket(index, inputA, res[0], res[j], this.ctxs[j - 1]));
    if (this.opts.invariants !== false) {
      for (let j = 0; j < this.engines.length; j++)
        diffs.push(...this.checkOutputs(index, j, this.inputs[j][index], res[j], expect));
    }
    this.fail(diffs);
    return res[0];
  }

  async advance(timeUs: number): Promise<void> {
    if (timeUs < this.timeUs) throw new Error(`advance to ${timeUs} µs is before the current time ${this.timeUs} µs`);
    this.timeUs = timeUs;
    this.events.push({ kind: 'advance', timeUs });
    for (const e of this.engines) await e.engine.advance(timeUs);
  }

  /** Every engine's security-group rules and ACL entries become next's (a mid-run change). */
  async setFilterRules(next: Scenario, note?: string): Promise<void> {
    this.events.push({
      kind: 'filters',
      timeUs: this.timeUs,
      filters: awsFiltersToObject(next),
      ...(note ? { note } : {}),
    });
    for (const e of this.engines) {
      if (!e.engine.setFilterRules) throw new Error(`engine ${e.name} cannot change filter rules mid-run`);
      await e.engine.setFilterRules(next);
    }
  }

  /** Every engine applies a scenario timeline event now (spec/timeline.ts). */
  async applyTimelineEvent(event: TimelineEvent): Promise<void> {
    this.events.push({ kind: 'timeline', timeUs: this.timeUs, event });
    for (const e of this.engines) {
      if (!e.engine.applyTimelineEvent) throw new Error(`engine ${e.name} cannot apply timeline events`);
      await e.engine.applyTimelineEvent(event, this.timeUs);
    }
  }

  /** Conntrack tables and counters compared; reply-tuple uniqueness checked in every engine. */
  async finish(): Promise<void> {
    const tables = await this.captureTables();
    const diffs: Difference[] = [];
    for (let j = 1; j < this.engines.length; j++) {
      diffs.push(...compareConntrack(tables[0], tables[j], this.ctxs[j - 1].names, this.renamings[j - 1]));
      const ca = await this.engines[0].engine.natCounters();
      const cb = await this.engines[j].engine.natCounters();
      diffs.push(...compareCounters(ca, cb, this.ctxs[j - 1].names));
      const ea = this.engines[0].engine;
      const eb = this.engines[j].engine;
      if (ea.filterCounters && eb.filterCounters)
        diffs.push(
          ...compareCounters(await ea.filterCounters(), await eb.filterCounters(), this.ctxs[j - 1].names, 'filter'),
        );
      if (ea.natGatewayCounters && eb.natGatewayCounters)
        diffs.push(
          ...compareGatewayCounters(
            await ea.natGatewayCounters(),
            await eb.natGatewayCounters(),
            this.ctxs[j - 1].names,
          ),
        );
      if (ea.natGatewayConnections && eb.natGatewayConnections)
        diffs.push(
          ...compareGatewayConnections(
            await ea.natGatewayConnections(),
            await eb.natGatewayConnections(),
            (this.scenario.natGateways ?? []).map((g) => g.name),
            this.ctxs[j - 1].names,
            this.opts.exactPorts === true,
          ),
        );
    }
    if (this.opts.invariants !== false) {
      for (let j = 0; j < this.engines.length; j++)
        diffs.push(...uniqueTupleViolations(this.engines[j].name, tables[j]));
    }
    this.fail(diffs);
  }

  async captureTables(): Promise<ConntrackEntry[][]> {
    const tables: ConntrackEntry[][] = [];
    for (const e of this.engines) tables.push(await e.engine.conntrack());
    this.tables = tables;
    return tables;
  }

  async close(): Promise<void> {
    for (const e of this.engines) {
      try {
        await e.engine.close();
      } catch {
        // closing is best effort
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Invariants on one engine's outputs, regardless of the other engines.

  private checkOutputs(
    index: number,
    j: number,
    input: InputPacket,
    r: PacketResult,
    expect?: ReplyExpectation,
  ): Difference[] {
    const name = this.engines[j].name;
    const out: Difference[] = [];
    const v = (msg: string) =>
      out.push({
        index,
        kind: 'invariant',
        engines: [name, name],
        message: `packet #${index} ${describePacket(input.frame)} from ${pointName(this.scenario, input.ingress)}: ${name} ${msg}`,
      });
    const inSt = parseIpv4(input.frame, 0, input.frame.length, pvA);
    const inOk = inSt === PARSE_OK;
    const inL4Valid = inOk && verifyL4Checksum(input.frame, pvA);
    const inUdpZero = inOk && pvA.proto === PROTO_UDP && pvA.l4Csum === 0;
    const inProto = pvA.proto;
    // An ICMP error input (even a malformed one, forwarded INVALID) is not "generated" output.
    const inIsErr = isIcmpErrorFrame(input.frame);
    for (let k = 0; k < r.outputs.length; k++) {
      const o = r.outputs[k];
      const f = o.frame;
      const st = parseIpv4(f, 0, f.length, pvB);
      // A dropped input's outputs are all generated (an ICMP error, a NAT gateway's RST).
      const generated =
        (pvB.proto === PROTO_ICMP && isIcmpErrorType(pvB.icmpType) && !inIsErr) || r.fate === FATE_DROPPED;
      if (o.egress === POINT_INTERNET && (pvB.ihl >= 20 || st === PARSE_OK) && !this.eips.has(pvB.src >>> 0)) {
        v(
          `sent output ${k} to the internet from ${formatIpv4(pvB.src)}, which is not an Elastic IP (${describePacket(f)})`,
        );
      }
      if (generated) {
        if (st !== PARSE_OK)
          v(`generated output ${k} does not parse (${PARSE_STATUS_NAMES[st]}): ${describePacket(f)}`);
        else if (!verifyL4Checksum(f, pvB)) v(`generated output ${k} has a bad ICMP checksum: ${describePacket(f)}`);
        continue;
      }
      if (!inOk) continue; // malformed at L4 (INVALID, forwarded as is): nothing to verify
      if (st !== PARSE_OK) {
        v(`output ${k} does not parse (${PARSE_STATUS_NAMES[st]}) though its input did: ${describePacket(f)}`);
        continue;
      }
      if (pvB.proto !== inProto) continue;
      const outValid = verifyL4Checksum(f, pvB);
      if (inIsErr) {
        if (inL4Valid && !outValid) v(`output ${k}: ICMP error checksum became wrong: ${describePacket(f)}`);
      } else if (inL4Valid !== outValid) {
        v(
          `output ${k}: L4 checksum ${inL4Valid ? 'was valid but is wrong' : 'was wrong but is now valid'} after forwarding: ${describePacket(f)}`,
        );
      }
      if (inUdpZero && pvB.l4Csum !== 0) v(`output ${k}: UDP checksum 0 (none) became ${pvB.l4Csum}`);
    }
    if (expect && r.ct === CT_ESTABLISHED && r.fate === FATE_DELIVERED && r.outputs.length > 0) {
      const o = r.outputs[0];
      parseIpv4(o.frame, 0, o.frame.length, pvB);
      const port = pvB.proto === PROTO_ICMP ? pvB.icmpId : pvB.dport;
      if (o.egress !== expect.egress || pvB.dst >>> 0 !== expect.dst >>> 0 || port !== expect.dport) {
        v(
          `delivered a reply to ${pointName(this.scenario, o.egress)} as ${describePacket(o.frame)}, but the connection's sender is ${formatIpv4(expect.dst)}:${expect.dport} at ${pointName(this.scenario, expect.egress)}`,
        );
      }
    }
    return out;
  }
}

/** No two live entries of one instance may share a tuple (reply-tuple uniqueness). */
export function uniqueTupleViolations(engine: string, entries: readonly ConntrackEntry[]): Difference[] {
  const seen = new Map<string, ConntrackEntry>();
  const out: Difference[] = [];
  for (const e of entries) {
    for (const t of [e.orig, e.reply]) {
      const k = `${e.instance}|${e.proto}|${t.src >>> 0}|${t.sport}|${t.dst >>> 0}|${t.dport}`;
      const prev = seen.get(k);
      if (prev && prev !== e) {
        out.push({
          index: -1,
          kind: 'invariant',
          engines: [engine, engine],
          message: `${engine}: two live conntrack entries share a tuple:\n  ${formatConntrackLine(prev)}\n  ${formatConntrackLine(e)}`,
        });
      }
      seen.set(k, e);
    }
  }
  return out;
}
