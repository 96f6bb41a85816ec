// `natlab compare A B`: the same traffic through two scenarios (two NAT designs), packet by packet
// — which flows behave differently, and how (counts by what each side did). Each side is a
// replay (src/diff/replay/replay.ts) of the same capture on its own scenario with one engine; the
// ingress of a packet is found by address in each scenario, and a one-sided capture's replies are
// re-addressed to each side's own NAT mapping, so the designs may use different public addresses.
// Outputs are compared by what happened (fate, reason, where outputs went, which packets were
// generated), never byte for byte: the designs translate to different addresses by design.

import { PacketView, parseIpv4 } from '../../packet/parse.ts';
import { describePacket } from '../../packet/format.ts';
import { F_RST, PROTO_ICMP, PROTO_TCP, isIcmpErrorType } from '../../packet/constants.ts';
import type { PacketResult } from '../../spec/engine.ts';
import { FATE_DELIVERED, reasonName } from '../../spec/reasons.ts';
import { pointName, type Scenario } from '../../spec/scenario.ts';
import type { PacketStory } from '../sinks/annotate.ts';
import { runReplay, type ReplayOptions } from '../replay/replay.ts';

export interface ScenarioCompareOptions {
  a: Scenario;
  b: Scenario;
  /** Capture file (pcap/pcapng). */
  input: string;
  /** Engine both sides run on (default model). */
  engine?: string;
  seed?: number;
  workers?: number;
  /** Example packets kept per difference class. */
  maxExamples?: number;
  /** Engine construction (tests). */
  engineFactory?: ReplayOptions['engineFactory'];
}

/** What one side did with one packet, as comparable text. */
export interface PacketOutcome {
  fate: 'delivered' | 'dropped' | 'not fed';
  reason: string;
  /** Where its outputs went (point names), generated ones marked ('RST to app'). */
  outputs: string[];
}

export interface DifferenceClass {
  /** "delivered to internet" → "dropped: natgw-idle-timeout, RST to app" */
  a: string;
  b: string;
  packets: number;
  flows: number;
  examples: string[];
}

export interface ScenarioComparison {
  names: [string, string];
  engine: string;
  input: string;
  packets: number;
  flows: number;
  differingPackets: number;
  differingFlows: number;
  /** Per side: delivered, dropped, and drops by reason. */
  sides: Array<{
    delivered: number;
    dropped: number;
    byReason: Record<string, number>;
    /** NAT gateway counters (CloudWatch metric names) per gateway, for a side with gateways. */
    natGateways: Record<string, Record<string, number>>;
  }>;
  differences: DifferenceClass[];
}

/** One line for an outcome: "delivered to internet", "dropped: natgw-idle-timeout, RST to app". */
export function outcomeText(o: PacketOutcome): string {
  if (o.fate === 'not fed') return 'not fed (no ingress)';
  if (o.fate === 'delivered') return `delivered to ${o.outputs.join(', ') || 'nowhere'}`;
  return `dropped: ${o.reason}${o.outputs.length ? `, ${o.outputs.join(', ')}` : ''}`;
}

const pv = new PacketView();

function outputKind(frame: Uint8Array): string {
  parseIpv4(frame, 0, frame.length, pv);
  if (pv.proto === PROTO_TCP && (pv.tcpFlags & F_RST) !== 0) return 'RST';
  if (pv.proto === PROTO_ICMP && isIcmpErrorType(pv.icmpType)) return 'ICMP error';
  return 'packet';
}

function outcomeOf(s: Scenario, r: PacketResult | null): PacketOutcome {
  if (!r) return { fate: 'not fed', reason: '', outputs: [] };
  const delivered = r.fate === FATE_DELIVERED;
  const outputs = r.outputs.map((o, k) => {
    const to = pointName(s, o.egress);
    // The delivered packet is output 0; anything else (and every output of a dropped one) was generated.
    return delivered && k === 0 ? to : `${outputKind(o.frame)} to ${to}`;
  });
  return { fate: delivered ? 'delivered' : 'dropped', reason: delivered ? '' : reasonName(r.reason), outputs };
}

interface SideRecord {
  outcome: PacketOutcome;
  flow: string | null;
  text: string;
}

async function runSide(
  o: ScenarioCompareOptions,
  s: Scenario,
  engine: string,
): Promise<{ records: SideRecord[]; gateways: Record<string, Record<string, number>> }> {
  const out: SideRecord[] = [];
  const sink = {
    packet(story: PacketStory): void {
      const v = story.verdicts[0];
      out[story.input - 1] = {
        outcome: outcomeOf(s, story.ingress < 0 || !v ? null : v.result),
        flow: story.flow ?? null,
        text: story.frame ? describePacket(story.frame) : '(not IPv4)',
      };
    },
  };
  const { report } = await runReplay({
    input: o.input,
    outDir: null,
    scenario: s,
    scenarioHow: `scenario ${s.name}`,
    engines: [engine],
    seed: o.seed,
    workers: o.workers,
    sinks: [sink],
    engineFactory: o.engineFactory,
  });
  return { records: out, gateways: report.engines[0]?.natGateways ?? {} };
}

export async function compareScenarios(o: ScenarioCompareOptions): Promise<ScenarioComparison> {
  const engine = o.engine ?? 'model';
  const sa = await runSide(o, o.a, engine);
  const sb = await runSide(o, o.b, engine);
  const ra = sa.records;
  const rb = sb.records;
  const n = Math.max(ra.length, rb.length);
  const sides = [ra, rb].map((rs) => {
    const byReason: Record<string, number> = {};
    let delivered = 0;
    let dropped = 0;
    for (const r of rs) {
      if (!r) continue;
      if (r.outcome.fate === 'delivered') delivered++;
      else if (r.outcome.fate === 'dropped') {
        dropped++;
        byReason[r.outcome.reason] = (byReason[r.outcome.reason] ?? 0) + 1;
      }
    }
    return { delivered, dropped, byReason, natGateways: (rs === ra ? sa : sb).gateways };
  });
  const classes = new Map<string, DifferenceClass & { flowSet: Set<string> }>();
  const flows = new Set<string>();
  const differingFlows = new Set<string>();
  let differingPackets = 0;
  const maxEx = o.maxExamples ?? 3;
  for (let i = 0; i < n; i++) {
    const a = ra[i];
    const b = rb[i];
    if (!a || !b) continue;
    const flow = a.flow ?? b.flow ?? `packet ${i + 1}`;
    flows.add(flow);
    const ta = outcomeText(a.outcome);
    const tb = outcomeText(b.outcome);
    if (ta === tb) continue;
    differingPackets++;
    differingFlows.add(flow);
    const key = `${ta}\u0000${tb}`;
    let c = classes.get(key);
    if (!c) {
      c = { a: ta, b: tb, packets: 0, flows: 0, examples: [], flowSet: new Set() };
      classes.set(key, c);
    }
    c.packets++;
    c.flowSet.add(flow);
    if (c.examples.length < maxEx) c.examples.push(`#${i + 1} ${a.text}`);
  }
  const differences = [...classes.values()]
    .map(({ flowSet, ...c }) => ({ ...c, flows: flowSet.size }))
    .sort((x, y) => y.packets - x.packets || x.a.localeCompare(y.a));
  return {
    names: [o.a.name, o.b.name],
    engine,
    input: o.input,
    packets: n,
    flows: flows.size,
    differingPackets,
    differingFlows: differingFlows.size,
    sides,
    differences,
  };
}

function table(rows: string[][]): string[] {
  const w = rows.reduce<number[]>((acc, r) => r.map((c, i) => Math.max(acc[i] ?? 0, c.length)), []);
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])))
      .join('  ')
      .trimEnd(),
  );
}

const num = (x: number) => x.toLocaleString('en-US');
const plural = (x: number, what: string) => `${num(x)} ${what}${x === 1 ? '' : 's'}`;

export function formatScenarioComparison(c: ScenarioComparison, traffic: string): string {
  const [na, nb] = c.names;
  const L: string[] = [];
  L.push(`natlab compare: A = ${na}, B = ${nb} (engine ${c.engine}) on ${traffic}`);
  L.push(
    `  ${num(c.packets)} packets in ${num(c.flows)} flows: ${c.differingPackets === 0 ? 'both designs do the same with every packet' : `${num(c.differingPackets)} packets in ${num(c.differingFlows)} flows behave differently`}`,
  );
  L.push('');
  const rows: string[][] = [['', `A: ${na}`, `B: ${nb}`]];
  rows.push(['delivered', num(c.sides[0].delivered), num(c.sides[1].delivered)]);
  rows.push(['dropped', num(c.sides[0].dropped), num(c.sides[1].dropped)]);
  const reasons = [...new Set(c.sides.flatMap((s) => Object.keys(s.byReason)))].sort();
  for (const r of reasons) rows.push([`  ${r}`, num(c.sides[0].byReason[r] ?? 0), num(c.sides[1].byReason[r] ?? 0)]);
  for (const [k, side] of c.sides.entries()) {
    for (const [g, metrics] of Object.entries(side.natGateways)) {
      const nonZero = Object.entries(metrics).filter(([, v]) => v !== 0);
      if (nonZero.length === 0) continue;
      const cells = (v: number) => (k === 0 ? [num(v), ''] : ['', num(v)]);
      rows.push([`${k === 0 ? 'A' : 'B'}: NAT gateway ${g}`, '', '']);
      for (const [m, v] of nonZero) rows.push([`  ${m}`, ...cells(v)]);
    }
  }
  L.push(...table(rows).map((s) => `  ${s}`));
  if (c.differences.length) {
    L.push('', '  what differs (packets, flows):');
    for (const d of c.differences) {
      L.push(`  ${plural(d.packets, 'packet')} in ${plural(d.flows, 'flow')}:`);
      L.push(`      A: ${d.a}`);
      L.push(`      B: ${d.b}`);
      for (const e of d.examples) L.push(`      e.g. ${e}`);
    }
  }
  return `${L.join('\n')}\n`;
}
