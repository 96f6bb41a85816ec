// `natlab trace`: follow packets through the reference model hop by hop, with the headers as they
// are at each hop, the verdict and reason, and the reply path back for delivered queries.
import { EXIT_OK, type Command } from './command.ts';
import { UsageError, parseArgs, intOption } from './args.ts';
import { loadScenario, resolveScenarioPath } from '../scenario/index.ts';
import { createModelEngine, formatFilterListing, formatNatTableListing } from '../model/index.ts';
import { ingressFor, parsePacketSpec, tracePacket, type TracedPacket } from '../model/trace.ts';
import { PacketView, parseIpv4 } from '../packet/parse.ts';
import { formatConntrackLine } from '../spec/conntrack-format.ts';
import { pointName } from '../spec/scenario.ts';

const USAGE = `usage: natlab trace [--scenario F] [--json] [--time MS] [--seed N] [--no-reply]
                    [--conntrack] [--nat-table] PACKET...

Follows each PACKET through the reference model of the VPC (docs/model.md): every hop of its path
(ENI, VPC router and route table, NAT instance conntrack and nat rules, IGW static NAT) with the
headers as they are at that hop, then the fate and drop reason. When a query (TCP SYN, UDP, ICMP
echo) is delivered, its natural reply (SYN/ACK, UDP back, echo reply) is traced back through the
same engine, so the conntrack state the query created is used. Several PACKETs are processed in
order in one engine.

PACKET (one argument each, tcpdump-like):
  tcp A:P > B:Q FLAGS [seq N] [ack N] [win N] [len N] [ttl N] [at MS]
      FLAGS: letters S A F R P U ('.' = A), e.g. S, SA, A, FA, R
  udp A:P > B:Q [len N] [ttl N] [at MS]
  icmp A > B echo|echo-reply [id N] [seq N] [len N] [ttl N] [at MS]
A packet enters at the instance whose private IP is its source, else from the internet (a
source outside the VPC). 'at MS' sets its virtual time (default --time); times must not go back.

options:
  --scenario F   scenario file or name in scenarios/ (default: the built-in vpc-nat-instance, whose
                 NAT instance has AWS's NATSG security group: only TCP 80/443 pass it;
                 vpc-nat-instance-open is the same VPC without it)
  --time MS      virtual time of packets without 'at' (default 0)
  --seed N       seed of the NAT port search (default 1)
  --no-reply     do not trace replies
  --conntrack    print the conntrack table afterwards (conntrack -L format)
  --nat-table    print each NAT instance's nat table with counters (iptables -t nat -L -v -n), and
                 its filter table if it has one (iptables -L -v -n)
  --json         one JSON document instead of text

example:
  natlab trace "tcp 10.0.1.10:40000 > 198.51.100.7:443 S"
  natlab trace "udp 10.0.1.10:5000 > 198.51.100.53:53"        # dropped by the NATSG group: sg-deny
  natlab trace --scenario vpc-nat-instance-open --conntrack "udp 10.0.1.10:5000 > 198.51.100.53:53" "udp 10.0.1.10:5000 > 198.51.100.53:53 at 40000"

exit: 0 traced (whatever the packets' fate); 2 bad packet spec, scenario or usage.
`;

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function textOf(t: TracedPacket, title: string, indent: string): string[] {
  const out = [`${indent}${title}: ${t.spec}  (from ${t.ingress}, t=${t.timeMs} ms)`];
  t.hops.forEach((h, i) => {
    out.push(`${indent}  ${String(i + 1).padStart(2)}. ${h.name}`);
    out.push(`${indent}      ${h.packet}${h.checksumsOk ? '' : '  [checksum not valid]'}`);
    out.push(`${indent}      ${h.note}`);
  });
  const last = t.hops.find((h) => h.drop !== undefined) ?? t.hops[t.hops.length - 1];
  if (t.fate === 'delivered') {
    const where = t.outputs[t.result.delivered]?.egress ?? '?';
    out.push(`${indent}  => delivered to ${where} (ct ${t.ct})`);
  } else {
    out.push(`${indent}  => DROPPED at '${last?.name ?? '?'}': ${t.reason} (ct ${t.ct})`);
  }
  const extra = t.outputs.filter((_, i) => i !== t.result.delivered);
  for (const o of extra) out.push(`${indent}  => also sent to ${o.egress}: ${o.packet}`);
  if (t.reply) out.push(...textOf(t.reply, 'reply', `${indent}  `));
  return out;
}

function jsonOf(t: TracedPacket): object {
  return {
    packet: t.spec,
    ingress: t.ingress,
    timeMs: t.timeMs,
    hops: t.hops.map((h) => ({
      name: h.name,
      packet: h.packet,
      note: h.note,
      drop: h.drop,
      egress: h.egress,
      checksumsOk: h.checksumsOk,
      hex: hex(h.bytes),
    })),
    fate: t.fate,
    reason: t.reason,
    ct: t.ct,
    outputs: t.outputs.map((o) => ({ egress: o.egress, packet: o.packet, hex: hex(o.bytes) })),
    reply: t.reply ? jsonOf(t.reply) : null,
  };
}

export const command: Command = {
  name: 'trace',
  summary: 'follow packets hop by hop through the reference model (and their replies back)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, {
      flags: ['json', 'conntrack', 'nat-table', 'no-reply'],
      values: ['scenario', 'time', 'seed'],
    });
    if (args.positional.length === 0)
      throw new UsageError('give at least one PACKET, e.g. "tcp 10.0.1.10:40000 > 198.51.100.7:443 S"');
    const time = intOption(args, 'time', 0);
    const seed = intOption(args, 'seed', 1, 0, 0xffffffff);
    const scenario = loadScenario(resolveScenarioPath(args.values.get('scenario')));
    const specs = args.positional.map((p) => parsePacketSpec(p));
    const engine = createModelEngine(scenario, { seed });
    const pv = new PacketView();
    const traces: TracedPacket[] = [];
    let now = time;
    for (const s of specs) {
      parseIpv4(s.frame, 0, s.frame.length, pv);
      const ingress = ingressFor(scenario, pv.src);
      const t = s.atMs ?? Math.max(now, time);
      if (t < now) throw new UsageError(`packet '${s.text}': time ${t} ms is before the previous packet's ${now} ms`);
      now = t;
      traces.push(tracePacket(engine, s.text, s.frame, ingress, t, !args.flags.has('no-reply')));
    }
    const natInstances = scenario.instances.map((i, k) => ({ i, k })).filter((x) => x.i.nat);
    if (args.flags.has('json')) {
      const doc: Record<string, unknown> = { scenario: scenario.source, packets: traces.map(jsonOf) };
      if (args.flags.has('conntrack')) {
        doc.conntrack = engine
          .conntrackSync()
          .map((e) => ({ ...e, instanceName: pointName(scenario, e.instance + 1), line: formatConntrackLine(e) }));
      }
      if (args.flags.has('nat-table')) {
        doc.natTable = Object.fromEntries(
          natInstances.map(({ i, k }) => [
            i.name,
            {
              listing: formatNatTableListing(engine, k),
              counters: engine.natCountersSync().filter((c) => c.instance === k),
              ...(i.filter
                ? {
                    filterListing: formatFilterListing(
                      i.filter,
                      engine.filterCountersSync().filter((c) => c.instance === k),
                    ),
                    filterCounters: engine.filterCountersSync().filter((c) => c.instance === k),
                  }
                : {}),
            },
          ]),
        );
      }
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return EXIT_OK;
    }
    const out: string[] = [`scenario: ${scenario.name} (${scenario.source})`];
    traces.forEach((t, i) => {
      out.push('');
      out.push(...textOf(t, `packet ${i + 1}`, ''));
    });
    if (args.flags.has('conntrack')) {
      for (const { i, k } of natInstances) {
        const lines = engine
          .conntrackSync()
          .filter((e) => e.instance === k)
          .map(formatConntrackLine);
        out.push(
          '',
          `conntrack -L on ${i.name} (t=${engine.timeMs} ms):`,
          ...lines,
          `conntrack v1.4.8 (conntrack-tools): ${lines.length} flow entries have been shown.`,
        );
      }
    }
    if (args.flags.has('nat-table')) {
      for (const { i, k } of natInstances) {
        out.push('', `iptables -t nat -L -v -n on ${i.name}:`, formatNatTableListing(engine, k).replace(/\n$/, ''));
        if (i.filter) {
          const listing = formatFilterListing(
            i.filter,
            engine.filterCountersSync().filter((c) => c.instance === k),
          );
          out.push('', `iptables -L -v -n on ${i.name}:`, listing.replace(/\n$/, ''));
        }
      }
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return EXIT_OK;
  },
};
