// Packet stories: the one-line comment an annotated capture carries per packet (pcapng
// opt_comment, Wireshark's frame.comment). Cold path: built once per written packet, only when
// annotated captures are written.
//
//   input #9 from internet (re-addressed: flow): delivered to app [ct RELATED]; hops internet > NAT (conntrack RELATED) > app
//   input #4 from app: dropped (no-route) [ct NEW]; hops app > VPC router: dropped | DIFFERS: core delivered to internet [ct NEW] (fate: ...)
//
// Words are chosen so that Wireshark display filters read naturally:
// `frame.comment contains "dropped"`, `... contains "DIFFERS"`, `... contains "ct NEW"`.
import { PARSE_STATUS_NAMES } from '../../packet/parse.ts';
import { describePacket } from '../../packet/format.ts';
import type { PacketResult } from '../../spec/engine.ts';
import {
  CT_NAMES,
  CT_NONE,
  DROP_MALFORMED,
  DROP_NO_INGRESS,
  DROP_NOT_IPV4,
  FATE_DELIVERED,
  reasonName,
} from '../../spec/reasons.ts';
import { POINT_INTERNET, pointName, type Scenario } from '../../spec/scenario.ts';
import { NOWHERE_WHY } from '../replay/ingress.ts';

/** Longest comment written (pcapng allows 65535 bytes; Wireshark's packet list stays readable). */
export const MAX_COMMENT = 2000;

export interface EngineVerdict {
  engine: string;
  result: PacketResult;
  /** How the frame fed to this engine was re-addressed: '' | 'flow' | 'elastic-ip' | 'unmapped'. */
  readdressed: string;
}

export interface StoryDifference {
  kind: string;
  engines: [string, string];
  message: string;
}

/** Everything known about one input packet after every engine processed it. */
export interface PacketStory {
  /** 1-based packet number in the input capture. */
  input: number;
  /** Ingress point, or -1 when the frame was not fed to the engines. */
  ingress: number;
  verdicts: EngineVerdict[];
  /** Differences found for this packet (first engine against each other one). */
  differences: StoryDifference[];
  /** Packet clock, microseconds. */
  timeUs?: number;
  /** The IPv4 packet as captured (link header stripped), null when not fed. */
  frame?: Uint8Array | null;
  /** The flow it belongs to (replay/remap.ts flowKey: proto|inside|port|remote|port), or null. */
  flow?: string | null;
}

/**
 * Something that consumes every packet's story as a replay runs (annotated captures, JUnit per
 * flow, the HTML report). Called in input order; must not keep `frame` views past the call
 * unless it copies them.
 */
export interface PacketSink {
  packet(story: PacketStory): void;
}

/** "no-route", "malformed (bad-ihl)", "not-ipv4 (ethertype 0x86dd)", "no-ingress (source ...)". */
export function reasonText(r: PacketResult): string {
  const name = reasonName(r.reason);
  if (r.reason === DROP_MALFORMED && r.detail) return `${name} (${PARSE_STATUS_NAMES[r.detail] ?? r.detail})`;
  if (r.reason === DROP_NOT_IPV4) return `${name} (ethertype 0x${r.detail.toString(16).padStart(4, '0')})`;
  if (r.reason === DROP_NO_INGRESS) return `${name} (${NOWHERE_WHY[r.detail] ?? r.detail})`;
  return r.detail ? `${name} (detail ${r.detail})` : name;
}

/** "delivered to internet [ct NEW]" / "dropped (no-route) [ct NEW], sent icmp ... to app". */
export function verdictText(s: Scenario, r: PacketResult): string {
  const ct = r.ct !== CT_NONE ? ` [ct ${CT_NAMES[r.ct] ?? r.ct}]` : '';
  const to = [...new Set(r.outputs.map((o) => pointName(s, o.egress)))];
  if (r.fate === FATE_DELIVERED) return `delivered to ${to.join(' and ') || 'nowhere'}${ct}`;
  const sent = r.outputs.length
    ? `, sent ${r.outputs.map((o) => `${safeDescribe(o.frame)} to ${pointName(s, o.egress)}`).join(', ')}`
    : '';
  return `dropped (${reasonText(r)})${ct}${sent}`;
}

/**
 * The hops known from the result: where the packet entered, the NAT instance's conntrack when
 * it reached one, and where it left (or that it was dropped). The engines report no finer path;
 * `natlab trace` prints every hop of one packet.
 */
export function hopsText(s: Scenario, ingress: number, r: PacketResult): string {
  if (ingress < 0) return 'not fed to the engines';
  const hops = [pointName(s, ingress)];
  if (r.ct !== CT_NONE) hops.push(`NAT (conntrack ${CT_NAMES[r.ct] ?? r.ct})`);
  if (r.fate === FATE_DELIVERED) {
    const first = r.outputs[0];
    if (first) hops.push(pointName(s, first.egress));
  } else hops.push(`dropped: ${reasonName(r.reason)}`);
  return hops.join(' > ');
}

function safeDescribe(f: Uint8Array): string {
  try {
    return describePacket(f);
  } catch {
    return `${f.length} bytes`;
  }
}

function head(s: Scenario, story: PacketStory, v: EngineVerdict | undefined): string {
  const from = story.ingress < 0 ? 'not fed' : `from ${pointName(s, story.ingress)}`;
  const re = v?.readdressed ? ` (re-addressed: ${v.readdressed})` : '';
  return `input #${story.input} ${from}${re}`;
}

function cap(text: string): string {
  return text.length <= MAX_COMMENT ? text : `${text.slice(0, MAX_COMMENT - 1)}…`;
}

/** The specific part of a difference message (after its last " — "), else the whole message. */
export function differenceTail(d: StoryDifference): string {
  const k = d.message.lastIndexOf(' — ');
  return k >= 0 ? d.message.slice(k + 3) : `${d.kind}: ${d.message}`;
}

/** What the other engines did where they differ from `engine` on this packet ('' when they agree). */
export function differsText(s: Scenario, story: PacketStory, engine: string): string {
  const byOther = new Map<string, string[]>();
  for (const d of story.differences) {
    if (!d.engines.includes(engine)) continue;
    const other = d.engines[0] === engine ? d.engines[1] : d.engines[0];
    byOther.set(other, [...(byOther.get(other) ?? []), differenceTail(d)]);
  }
  const parts = [...byOther].map(([other, tails]) => {
    const v = story.verdicts.find((x) => x.engine === other);
    return `${other} ${v ? verdictText(s, v.result) : '?'} (${tails.join('; ')})`;
  });
  return parts.length ? ` | DIFFERS: ${parts.join('; ')}` : '';
}

/**
 * Comment of a packet in one engine's capture: an output it sent (`output` >= 0: its index among
 * the result's outputs) or the input it dropped (`output` = -1).
 */
export function engineComment(s: Scenario, story: PacketStory, engine: string, output: number): string {
  const v = story.verdicts.find((x) => x.engine === engine);
  if (!v) return cap(`${head(s, story, v)}: no result from ${engine}`);
  const r = v.result;
  let what = verdictText(s, r);
  if (output >= 0 && r.outputs.length > 1) what += `; output ${output + 1} of ${r.outputs.length}`;
  if (output > 0 && r.fate === FATE_DELIVERED && r.outputs[output].egress !== r.outputs[0].egress)
    what += ` (this one to ${pointName(s, r.outputs[output].egress)})`;
  return cap(`${head(s, story, v)}: ${what}; hops ${hopsText(s, story.ingress, r)}${differsText(s, story, engine)}`);
}

/** Comment of an input packet in the input-side capture: every engine's verdict. */
export function inputComment(s: Scenario, story: PacketStory): string {
  const vs = story.verdicts;
  const same = vs.every((v) => verdictText(s, v.result) === verdictText(s, vs[0].result));
  const fates =
    same && vs.length
      ? `${vs.map((v) => v.engine).join(', ')}: ${verdictText(s, vs[0].result)}`
      : vs.map((v) => `${v.engine}: ${verdictText(s, v.result)}`).join('; ');
  const re = [...new Set(vs.map((v) => v.readdressed).filter(Boolean))];
  const from = story.ingress < 0 ? 'not fed' : `from ${pointName(s, story.ingress)}`;
  const diffs = story.differences.length ? ` | DIFFERS: ${pairsText(story.differences)}` : '';
  const hops = vs.length ? `; hops ${hopsText(s, story.ingress, vs[0].result)}` : '';
  return cap(
    `input #${story.input} ${from}${re.length ? ` (re-addressed: ${re.join('/')})` : ''}: ${fates}${hops}${diffs}`,
  );
}

/** Interface name of an egress point in an annotated capture: "internet", "app-10.0.1.10". */
export function pointInterfaceName(s: Scenario, point: number, formatIp: (a: number) => string): string {
  if (point === POINT_INTERNET) return 'internet';
  const inst = s.instances[point - 1];
  return inst ? `${inst.name}-${formatIp(inst.privateIp)}` : `point-${point}`;
}

/** "model vs core: fate differs; 1 vs 0 output frames" per pair of engines. */
function pairsText(ds: StoryDifference[]): string {
  const byPair = new Map<string, string[]>();
  for (const d of ds) {
    const k = `${d.engines[0]} vs ${d.engines[1]}`;
    byPair.set(k, [...(byPair.get(k) ?? []), differenceTail(d)]);
  }
  return [...byPair].map(([k, tails]) => `${k}: ${tails.join('; ')}`).join(' | ');
}
