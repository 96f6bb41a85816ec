// The packets behind the first differences of a replay, decoded field by field per engine (a
// PacketSink), so a report can put them side by side: the input, and on every engine the verdict
// and each output's headers. Bounded: the first `max` differing packets.
import { formatIpv4 } from '../../packet/addr.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import { describePacket } from '../../packet/format.ts';
import { PacketView, parseIpv4, PARSE_STATUS_NAMES } from '../../packet/parse.ts';
import { CT_NAMES, FATE_DELIVERED } from '../../spec/reasons.ts';
import { pointName, type Scenario } from '../../spec/scenario.ts';
import { differenceTail, reasonText, type PacketSink, type PacketStory } from './annotate.ts';

/** Header fields of one packet, as strings (absent fields omitted). */
export type DecodedFields = Record<string, string>;

export interface DecodedPacket {
  summary: string;
  fields: DecodedFields;
  /** The first bytes, hex (64 at most). */
  hex: string;
}

export interface DifferenceDetail {
  input: number;
  timeUs: number;
  from: string;
  packet: DecodedPacket | null;
  kinds: string[];
  texts: string[];
  engines: Array<{
    engine: string;
    verdict: string;
    ct: string;
    readdressed: string;
    outputs: Array<{ to: string } & DecodedPacket>;
  }>;
}

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];
const pv = new PacketView();

function hex16(x: number): string {
  return `0x${x.toString(16).padStart(4, '0')}`;
}

/** Decodes an IPv4 packet into named header fields. */
export function decodePacket(f: Uint8Array): DecodedPacket {
  let summary: string;
  try {
    summary = describePacket(f);
  } catch {
    summary = `${f.length} bytes`;
  }
  parseIpv4(f, 0, f.length, pv);
  const d: DecodedFields = {};
  d.status = PARSE_STATUS_NAMES[pv.status] ?? String(pv.status);
  if (pv.ihl > 0) {
    d.len = String(pv.totalLen);
    d.ttl = String(pv.ttl);
    d['ip id'] = String(pv.ipId);
    d['ip checksum'] = hex16(pv.ipCsum);
    d.src = formatIpv4(pv.src);
    d.dst = formatIpv4(pv.dst);
    d.proto =
      pv.proto === PROTO_TCP
        ? 'tcp'
        : pv.proto === PROTO_UDP
          ? 'udp'
          : pv.proto === PROTO_ICMP
            ? 'icmp'
            : String(pv.proto);
    if (pv.df) d.df = '1';
    if (pv.mf || pv.fragOff) d.fragment = `offset ${pv.fragOff}${pv.mf ? ' MF' : ''}`;
    const l4 = pv.ihl;
    if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) {
      d.sport = String(pv.sport);
      d.dport = String(pv.dport);
    }
    if (pv.proto === PROTO_TCP) {
      d.flags = TCP_FLAG_NAMES.filter((_, k) => pv.tcpFlags & (1 << k)).join(',') || '-';
      d.seq = String(pv.tcpSeq >>> 0);
      d.ack = String(pv.tcpAck >>> 0);
      if (f.length >= l4 + 18) d['l4 checksum'] = hex16((f[l4 + 16] << 8) | f[l4 + 17]);
    } else if (pv.proto === PROTO_UDP) {
      if (f.length >= l4 + 8) d['l4 checksum'] = hex16((f[l4 + 6] << 8) | f[l4 + 7]);
    } else if (pv.proto === PROTO_ICMP && pv.icmpType >= 0) {
      d['icmp type/code'] = `${pv.icmpType}/${pv.icmpCode}`;
      if (!pv.isIcmpError) d['icmp id'] = String(pv.icmpId);
      if (f.length >= l4 + 4) d['l4 checksum'] = hex16((f[l4 + 2] << 8) | f[l4 + 3]);
      if (pv.isIcmpError) {
        d.quoted = `${formatIpv4(pv.innerSrc)}${pv.innerSport || pv.innerDport ? `:${pv.innerSport}` : ''} > ${formatIpv4(pv.innerDst)}${pv.innerSport || pv.innerDport ? `:${pv.innerDport}` : ''} (proto ${pv.innerProto})`;
      }
    }
  }
  const hex =
    Array.from(f.subarray(0, 64), (b) => b.toString(16).padStart(2, '0')).join(' ') + (f.length > 64 ? ' …' : '');
  return { summary, fields: d, hex };
}

export class DifferenceCollector implements PacketSink {
  readonly details: DifferenceDetail[] = [];

  constructor(
    private readonly scenario: Scenario,
    private readonly max = 50,
  ) {}

  packet(story: PacketStory): void {
    if (story.differences.length === 0 || this.details.length >= this.max) return;
    const s = this.scenario;
    this.details.push({
      input: story.input,
      timeUs: story.timeUs ?? 0,
      from: story.ingress < 0 ? 'not fed' : pointName(s, story.ingress),
      packet: story.frame ? decodePacket(story.frame) : null,
      kinds: [...new Set(story.differences.map((d) => d.kind))],
      texts: story.differences.map((d) => `${d.engines[0]} vs ${d.engines[1]}: ${differenceTail(d)}`),
      engines: story.verdicts.map((v) => ({
        engine: v.engine,
        verdict: v.result.fate === FATE_DELIVERED ? 'delivered' : `dropped (${reasonText(v.result)})`,
        ct: CT_NAMES[v.result.ct] ?? String(v.result.ct),
        readdressed: v.readdressed,
        outputs: v.result.outputs.map((o) => ({ to: pointName(s, o.egress), ...decodePacket(o.frame) })),
      })),
    });
  }
}
