// `natlab scenario check FILE...` and `natlab scenario show [FILE]`: validate scenario files and
// print what natlab compiles them to.
import { EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError, parseArgs } from './args.ts';
import { InputError } from '../spec/errors.ts';
import { loadScenario, resolveScenarioPath, ScenarioError } from '../scenario/index.ts';
import { describeScenario, scenarioWarnings } from '../scenario/describe.ts';
import { scenarioToObject, scenarioToYaml } from '../scenario/to-yaml.ts';

const USAGE = `usage: natlab scenario check [--json] [FILE...]
       natlab scenario show [--json] [FILE]

Scenario files describe a VPC (subnets, route tables, instances, the NAT instance's sysctls and
iptables nat table, internet hosts, conntrack settings) in YAML or JSON; docs/scenarios.md is the
format reference. FILE is a path or the name of a file in scenarios/ (e.g. vpc-nat-instance);
without FILE the built-in scenario (scenarios/vpc-nat-instance.yaml) is used.

subcommands:
  check   validate each FILE and print a summary: subnets, route tables, instances with their
          nat rules, internet hosts, conntrack settings, and warnings for likely mistakes (a
          route to an instance whose source/dest check is on or that does not forward, an
          Elastic IP in a subnet without an igw route, ...). Every error names the file, the
          line, the key path (instances.nat.privateIp) and what is wrong.
  show    print the compiled scenario as a scenario file with every default made explicit
          (the configure-pat boot script expanded into sysctls and iptables-save text)

options:
  --json  check: a JSON array of { file, ok, warnings, scenario | errors }; show: the scenario file as JSON

exit: 0 all files valid; 2 a file is invalid (check still checks the others) or usage error.
`;

export const command: Command = {
  name: 'scenario',
  summary: 'check scenario files (check FILE...) or print a compiled scenario (show [FILE])',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { flags: ['json'] });
    const [sub, ...files] = args.positional;
    const json = args.flags.has('json');
    if (sub === 'check') return check(files.length ? files : [''], json);
    if (sub === 'show') {
      if (files.length > 1) throw new UsageError('show takes at most one FILE');
      const s = loadScenario(resolveScenarioPath(files[0]));
      process.stdout.write(json ? JSON.stringify(scenarioToObject(s), null, 2) + '\n' : scenarioToYaml(s));
      return EXIT_OK;
    }
    throw new UsageError(sub === undefined ? 'missing subcommand (check or show)' : `unknown subcommand '${sub}' (check or show)`);
  },
};

async function check(files: string[], json: boolean): Promise<number> {
  let code = EXIT_OK;
  const results: object[] = [];
  for (const f of files) {
    const path = resolveScenarioPath(f);
    try {
      const s = loadScenario(path);
      const warnings = scenarioWarnings(s);
      if (json) results.push({ file: path, ok: true, warnings, scenario: scenarioToObject(s) });
      else process.stdout.write(`${path}: ok\n${describeScenario(s)}\n${warnings.map((w) => `  warning: ${w}\n`).join('')}`);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      code = EXIT_USAGE;
      if (json) {
        const errors =
          e instanceof ScenarioError
            ? e.items.map((i) => ({ line: i.line, where: i.where, message: i.msg }))
            : [{ line: 0, where: e.where ?? '', message: e.message }];
        results.push({ file: path, ok: false, errors });
      } else process.stderr.write(`natlab scenario check: ${e.message}\n`);
    }
  }
  if (json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  return code;
}
