// Per-flow view of a replay (a PacketSink): packets, drops and differences per flow, and a
// bounded timeline of each flow's packets on every engine. Feeds the JUnit report (one test case
// per flow) and the HTML report (per-flow timeline). Memory is bounded: at most `maxFlows` flows
// are tracked one by one (later ones are counted together), and a timeline keeps at most
// `maxTimeline` packets of at most `maxTimelines` flows.
import { formatIpv4 } from '../../packet/addr.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import { describePacket } from '../../packet/format.ts';
import { FATE_DELIVERED, reasonName } from '../../spec/reasons.ts';
import { pointName, type Scenario } from '../../spec/scenario.ts';
import { differenceTail, type PacketSink, type PacketStory } from './annotate.ts';

export interface TimelineEvent {
  input: number;
  timeUs: number;
  /** The packet as captured, described. */
  packet: string;
  from: string;
  /** Per engine: delivered to <point> / dropped (<reason>). */
  engines: Record<string, { delivered: boolean; text: string }>;
  differs: boolean;
}

export interface FlowRecord {
  key: string;
  /** "udp 10.0.1.10:53002 <> 198.51.100.53:53". */
  name: string;
  packets: number;
  firstInput: number;
  lastInput: number;
  /** Inputs dropped by at least one engine. */
  dropped: number;
  /** Inputs with at least one difference, and the first few. */
  differing: number;
  differences: Array<{ input: number; engines: [string, string]; kind: string; text: string }>;
  timeline: TimelineEvent[] | null;
}

const PROTO_NAMES: Record<number, string> = { [PROTO_TCP]: 'tcp', [PROTO_UDP]: 'udp', [PROTO_ICMP]: 'icmp' };

/** Readable name of a replay flow key (proto|inside|port|remote|port). */
export function flowName(key: string): string {
  const [proto, inside, iport, remote, rport] = key.split('|').map(Number);
  const p = PROTO_NAMES[proto] ?? `proto ${proto}`;
  if (proto === PROTO_ICMP) return `${p} ${formatIpv4(inside)} <> ${formatIpv4(remote)} id ${iport}`;
  return `${p} ${formatIpv4(inside)}:${iport} <> ${formatIpv4(remote)}:${rport}`;
}

function describe(f: Uint8Array | null | undefined): string {
  if (!f) return '(not fed)';
  try {
    return describePacket(f);
  } catch {
    return `${f.length} bytes`;
  }
}

export interface FlowCollectorOptions {
  maxFlows?: number;
  maxTimelines?: number;
  maxTimeline?: number;
  maxDifferencesPerFlow?: number;
}

export const NO_FLOW = '(packets outside any flow)';
export const OTHER_FLOWS = '(further flows, counted together)';

export class FlowCollector implements PacketSink {
  readonly flows = new Map<string, FlowRecord>();
  private timelines = 0;
  private readonly maxFlows: number;
  private readonly maxTimelines: number;
  private readonly maxTimeline: number;
  private readonly maxDiffs: number;

  constructor(
    private readonly scenario: Scenario,
    o: FlowCollectorOptions = {},
  ) {
    this.maxFlows = o.maxFlows ?? 5000;
    this.maxTimelines = o.maxTimelines ?? 200;
    this.maxTimeline = o.maxTimeline ?? 200;
    this.maxDiffs = o.maxDifferencesPerFlow ?? 5;
  }

  private recordFor(story: PacketStory): FlowRecord {
    let key = story.flow ?? NO_FLOW;
    let f = this.flows.get(key);
    if (!f && this.flows.size >= this.maxFlows) {
      key = OTHER_FLOWS;
      f = this.flows.get(key);
    }
    if (!f) {
      const named = key !== NO_FLOW && key !== OTHER_FLOWS;
      const withTimeline = this.timelines < this.maxTimelines;
      if (withTimeline) this.timelines++;
      f = {
        key,
        name: named ? flowName(key) : key,
        packets: 0,
        firstInput: story.input,
        lastInput: story.input,
        dropped: 0,
        differing: 0,
        differences: [],
        timeline: withTimeline ? [] : null,
      };
      this.flows.set(key, f);
    }
    return f;
  }

  packet(story: PacketStory): void {
    const f = this.recordFor(story);
    f.packets++;
    f.lastInput = story.input;
    if (story.verdicts.some((v) => v.result.fate !== FATE_DELIVERED)) f.dropped++;
    const differs = story.differences.length > 0;
    if (differs) {
      f.differing++;
      for (const d of story.differences) {
        if (f.differences.length >= this.maxDiffs) break;
        f.differences.push({ input: story.input, engines: d.engines, kind: d.kind, text: differenceTail(d) });
      }
    }
    if (f.timeline && f.timeline.length < this.maxTimeline) {
      const s = this.scenario;
      const engines: TimelineEvent['engines'] = {};
      for (const v of story.verdicts) {
        const r = v.result;
        const delivered = r.fate === FATE_DELIVERED;
        engines[v.engine] = {
          delivered,
          text: delivered
            ? `to ${[...new Set(r.outputs.map((o) => pointName(s, o.egress)))].join(', ')}`
            : `dropped (${reasonName(r.reason)})`,
        };
      }
      f.timeline.push({
        input: story.input,
        timeUs: story.timeUs ?? 0,
        packet: describe(story.frame),
        from: story.ingress < 0 ? 'not fed' : pointName(s, story.ingress),
        engines,
        differs,
      });
    }
  }

  /** Flows in order of first appearance. */
  list(): FlowRecord[] {
    return [...this.flows.values()];
  }
}
