// `natlab check [--scenario F] [--json]`: what can reach what, and why not — computed by the
// reference model on representative packets (src/diff/check/), plus lint warnings.
import { EXIT_DIFF, EXIT_OK, type Command } from './command.ts';
import { parseArgs, UsageError } from './args.ts';
import { loadScenario, resolveScenarioPath } from '../scenario/index.ts';
import { checkScenario, formatCheckReport } from '../diff/check/index.ts';

const USAGE = `usage: natlab check [--scenario F] [--json]

Reachability of the VPC, computed by the reference model (every probe is a packet through the
model's path, with its natural reply):
  - every subnet: can a new instance there reach the internet (tcp/443, tcp/80, udp/53,
    udp/123, icmp echo), by which path, translated to which public address; a public subnet
    (0.0.0.0/0 → igw) is probed with a public IP on the instance
  - every instance: the same from the instance itself
  - every Elastic IP: can the internet reach it (tcp/22, tcp/443, icmp and each DNAT port),
    landing where; a reply that leaves by another address is an asymmetric path
When a probe does not make it, the first reason on its path: source/dest check on, blackhole
route, no route, NAT rule does not match this source (and which field of which rule), ip_forward
off, no Elastic IP, routing loop, ...
Then warnings: rules that can never match, routes to an ENI whose source/dest check is on,
MASQUERADE with an out interface the instance does not have, NAT rules whose source misses a
subnet routed through them, a NAT instance whose own subnet routes 0.0.0.0/0 to itself, and the
scenario's own warnings. Security groups, network ACLs and filter tables are modelled: a probe
they drop is shown with the rule's verdict (sg-deny, nacl-deny, filter-drop); a subnet whose
failing probes are all such drops and that passes at least one probe is 'partly (filtered)' and
does not fail the check (the built-in's NATSG group passes only HTTP/HTTPS, by design).

options:
  --scenario F   scenario file or name in scenarios/ (default: the built-in vpc-nat-instance);
                 make one from a real VPC with natlab scenario import (docs/import.md)
  --json         the report as JSON: { reach: { subnets, instances, elasticIps }, lints, failing }

exit: 0 every subnet with a default route reaches the internet (through its rules); 1 one does not;
      2 bad input.
`;

export const command: Command = {
  name: 'check',
  summary: 'reachability of every subnet and Elastic IP, with the reason when not (model-computed), and lint warnings',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { flags: ['json'], values: ['scenario'] });
    if (args.positional.length)
      throw new UsageError(`unexpected argument '${args.positional[0]}' (use --scenario FILE)`);
    const s = loadScenario(resolveScenarioPath(args.values.get('scenario')));
    const rep = checkScenario(s);
    process.stdout.write(
      args.flags.has('json') ? `${JSON.stringify({ scenario: s.source, ...rep }, null, 2)}\n` : formatCheckReport(rep),
    );
    return rep.failing.length ? EXIT_DIFF : EXIT_OK;
  },
};
