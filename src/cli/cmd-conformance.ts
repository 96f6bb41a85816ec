// `natlab conformance`: RFC 4787 / 5382 / 5508 / 7857 behaviour of the scenario's NAT, probed on
// every engine, plus the RFC 5780 classification and the port-shadowing check.
import { EXIT_DIFF, EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError, parseArgs } from './args.ts';
import { OPEN_SCENARIO_PATH, loadScenario, resolveScenarioPath } from '../scenario/index.ts';
import { engineAvailable, parseEngineName, type EngineName } from '../diff/engines.ts';
import { conformanceJson, formatConformanceText, runConformance } from '../diff/conformance/index.ts';

const USAGE = `usage: natlab conformance [--scenario F] [--engines model,core,kernel] [--json] [--seed N]

Probes the scenario's NAT instance for the behaviour RFC 4787 (UDP), RFC 5382 (TCP), RFC 5508
(ICMP) and RFC 7857 require, on each engine: every probe runs packets through a fresh engine and
is judged from what comes out (and, for timers, the engine's own conntrack table). Prints one row
per requirement (level, verdict pass / fail / n/a, the evidence, and Linux's reason and knob when
it fails), an RFC 5780 classification line (mapping, filtering, hairpinning, binding lifetime, as
STUN NAT discovery tools print it), and the port-shadowing check of the kernel selftest nft_nat.sh
(for the NAT instance's own sshd and every DNAT port-forward). docs/conformance.md explains every
verdict.

options:
  --scenario F   scenario file or name in scenarios/ (default: vpc-nat-instance-open, the built-in
                 without its NATSG security group: the RFCs' probes are UDP, ICMP and TCP on
                 other ports, which NATSG drops at the NAT instance's ENI before the NAT sees
                 them; --scenario vpc-nat-instance shows that)
  --engines L    comma-separated engines (default model,core); kernel needs root (docs/kernel-oracle.md)
                 and takes about a minute (real time passes for the timer probes)
  --seed N       seed of the engines' random port choices (default 1)
  --settle-ms N  kernel engine: quiet time that ends one packet's collection (default 20; raise it
                 on a loaded machine when the report warns of frames that came late)
  --json         the report as JSON

Engine warnings (e.g. kernel frames that came late) are printed: a verdict may be unreliable then.

exit: 0 the engines agree on every verdict (whatever the verdicts are); 1 they differ;
      2 bad input or usage (e.g. a scenario without a NAT instance to probe).
`;

export const command: Command = {
  name: 'conformance',
  summary: 'RFC 4787/5382/5508/7857 conformance, RFC 5780 classification, port shadowing',
  usage: USAGE,
  async run(argv) {
    const a = parseArgs(argv, { flags: ['json'], values: ['scenario', 'engines', 'seed', 'settle-ms'] });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    const seedText = a.values.get('seed') ?? '1';
    if (!/^\d+$/.test(seedText)) throw new UsageError(`--seed: '${seedText}' is not a non-negative integer`);
    const settleText = a.values.get('settle-ms');
    if (settleText !== undefined && !/^[1-9]\d{0,4}$/.test(settleText))
      throw new UsageError(`--settle-ms: '${settleText}' is not a whole number of ms (1..99999)`);
    const engines: EngineName[] = [];
    for (const e of (a.values.get('engines') ?? 'model,core')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      let name: EngineName;
      try {
        name = parseEngineName(e);
      } catch (err) {
        throw new UsageError(`--engines: ${(err as Error).message}`);
      }
      if (engines.includes(name)) throw new UsageError(`--engines: '${e}' given twice`);
      if (!(await engineAvailable(name)))
        throw new UsageError(`--engines: engine '${name}' is not available in this build`);
      engines.push(name);
    }
    if (engines.length === 0) throw new UsageError('--engines: empty list');
    if (engines.includes('kernel')) {
      const { checkKernelPrerequisites, describeMissing } = await import('../oracle/index.ts');
      const pre = await checkKernelPrerequisites();
      if (!pre.ok) {
        process.stderr.write(`natlab conformance: ${describeMissing(pre)}\n`);
        return EXIT_USAGE;
      }
    }
    const scenario = loadScenario(
      a.values.has('scenario') ? resolveScenarioPath(a.values.get('scenario')) : OPEN_SCENARIO_PATH,
    );
    const tty = process.stderr.isTTY && !a.flags.has('json');
    const rep = await runConformance(scenario, engines, {
      seed: Number(seedText),
      engineExtra: settleText ? { kernel: { settleMs: Number(settleText) } } : undefined,
      onProbe: tty ? (e, p) => process.stderr.write(`\r\x1b[K${e}: ${p}`) : undefined,
    });
    if (tty) process.stderr.write('\r\x1b[K');
    process.stdout.write(
      a.flags.has('json') ? `${JSON.stringify(conformanceJson(rep), null, 2)}\n` : `${formatConformanceText(rep)}\n`,
    );
    return rep.differences.length ? EXIT_DIFF : EXIT_OK;
  },
};
