// `natlab compare A.yaml B.yaml [--in X.pcap]`: the same traffic through two scenarios (two NAT
// designs), side by side — which flows behave differently and how (src/diff/compare/scenarios.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_DIFF, EXIT_OK, type Command } from './command.ts';
import { intOption, parseArgs, UsageError } from './args.ts';
import { checkInputFile } from './output-location.ts';
import { loadScenario, resolveScenarioPath } from '../scenario/index.ts';
import { compareScenarios, formatScenarioComparison } from '../diff/compare/scenarios.ts';
import { engineAvailability, engineUnsupported, parseEngineName } from '../diff/engines.ts';
import { natDesignsCapture, scriptedEthernet, APP } from '../traffic/scripted.ts';
import { encodePcap } from '../pcap/writer.ts';
import { LINKTYPE_ETHERNET } from '../packet/constants.ts';
import { formatIpv4 } from '../packet/addr.ts';
import type { Scenario } from '../spec/scenario.ts';

const USAGE = `usage: natlab compare A B [--in X.pcap] [--engine E] [--seed N] [--json]

Runs the same traffic through scenario A and scenario B (two NAT designs: the NAT AMI, fck-nat,
alterNAT, a NAT gateway, your own) and shows, side by side, what each did with it: packets
delivered and dropped by reason, and every way the two differ, with the number of packets and
flows and example packets. Packets enter where their source address lives in each scenario; a
capture taken on a private host (one-sided) has its replies re-addressed to each design's own
public address and port, as natlab replay does.

A, B: scenario files, or names in scenarios/ (vpc-nat-instance, vpc-nat-instance-open, nat-gateway,
      fck-nat, alternat). vpc-nat-instance's NAT instance has AWS's NATSG security group (HTTP/HTTPS
      only): compare vpc-nat-instance-open to see the NAT designs alone.

options:
  --in X.pcap    the traffic (pcap or pcapng); default: natlab's NAT-designs traffic from a
                 private host of A (a short TCP session, a TCP connection idle 400 s, DNS, a UDP
                 reply after 60 s, ping, GRE, fragments, a TTL-1 probe, a port unreachable, an
                 unsolicited SYN)
  --engine E     model (default) or core; the kernel engine cannot judge NAT gateways
  --seed N       seed of the engines' random choices (default 1)
  --json         the comparison as JSON

exit: 0 both designs do the same with every packet, 1 they differ, 2 bad input or usage.

example:
  natlab compare vpc-nat-instance-open nat-gateway
`;

/** A private host of A that B has too (by address), routed through a NAT: the default traffic's source. */
function insideHost(a: Scenario, b: Scenario): number {
  for (const i of a.instances) {
    const rt = a.routeTables[a.subnets[i.subnet].routeTable];
    const dflt = rt.routes.find((r) => r.dest.len === 0);
    if (!dflt || dflt.target === 'igw' || i.nat) continue;
    if (b.instances.some((x) => x.privateIp === i.privateIp)) return i.privateIp;
  }
  return APP;
}

export const command: Command = {
  name: 'compare',
  summary:
    'the same traffic through two scenarios (e.g. NAT instance vs NAT gateway): which flows behave differently, counts by reason',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { flags: ['json'], values: ['in', 'engine', 'seed'] });
    if (args.positional.length !== 2)
      throw new UsageError(`give two scenarios to compare (got ${args.positional.length})`);
    let engine;
    try {
      engine = parseEngineName(args.values.get('engine') ?? 'model');
    } catch (e) {
      throw new UsageError(`--engine: ${(e as Error).message}`);
    }
    const seed = intOption(args, 'seed', 1, 0, 0x7fffffff);
    const a = loadScenario(resolveScenarioPath(args.positional[0]));
    const b = loadScenario(resolveScenarioPath(args.positional[1]));
    const av = await engineAvailability(engine);
    if (!av.ok) throw new UsageError(`the ${engine} engine cannot run here: ${av.missing}`);
    for (const s of [a, b]) {
      const why = engineUnsupported(engine, s);
      if (why) throw new UsageError(`--engine ${engine}: ${why}`);
    }
    let input = args.values.get('in');
    let traffic: string;
    let tmp: string | null = null;
    if (input !== undefined) {
      checkInputFile(input, '--in');
      traffic = input;
    } else {
      const host = insideHost(a, b);
      const cap = natDesignsCapture(host);
      tmp = mkdtempSync(join(tmpdir(), 'natlab-compare-'));
      input = join(tmp, 'nat-designs.pcap');
      writeFileSync(
        input,
        encodePcap(
          cap.frames.map((f) => ({
            tsSec: Math.floor(f.timeUs / 1e6),
            tsNsec: (f.timeUs % 1e6) * 1000,
            data: scriptedEthernet(f),
          })),
          { linkType: LINKTYPE_ETHERNET },
        ),
      );
      traffic = `natlab's NAT-designs traffic from ${formatIpv4(host)} (${cap.frames.length} packets)`;
    }
    try {
      const c = await compareScenarios({ a, b, input, engine, seed });
      if (args.flags.has('json')) process.stdout.write(`${JSON.stringify({ traffic, ...c }, null, 2)}\n`);
      else process.stdout.write(formatScenarioComparison(c, traffic));
      return c.differingPackets > 0 ? EXIT_DIFF : EXIT_OK;
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  },
};
