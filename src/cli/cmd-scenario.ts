// `natlab scenario check FILE...` and `natlab scenario show [FILE]`: validate scenario files and
// print what natlab compiles them to.
import { EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError, parseArgs } from './args.ts';
import { InputError } from '../spec/errors.ts';
import { loadScenario, resolveScenarioPath, ScenarioError } from '../scenario/index.ts';
import { describeScenario, scenarioWarnings } from '../scenario/describe.ts';
import { scenarioToObject, scenarioToYaml } from '../scenario/to-yaml.ts';
import { formatSkipped, importScenario } from '../scenario/import/index.ts';
import { writeFileSync } from 'node:fs';
import { checkOutputFile } from './output-location.ts';

const USAGE = `usage: natlab scenario check [--json] [FILE...]
       natlab scenario show [--json] [FILE]
       natlab scenario import [--out FILE] [options] INPUT...

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
  import  build a scenario from a real configuration (docs/import.md). INPUT: files or
          directories of aws ec2 describe-vpcs/-subnets/-route-tables/-instances/
          -network-interfaces/-addresses/-internet-gateways/-nat-gateways/-security-groups/
          -network-acls output, or terraform show -json state; and the NAT instances' own
          iptables-save, nft list ruleset (or nft -j), sysctl files, filed under a directory
          named after the instance (DIR/nat/iptables-save) or named INSTANCE.something.
          What the scenario cannot express is listed on stderr and in the file's comments.

options:
  --json             check: a JSON array of { file, ok, warnings, scenario | errors }; show: the scenario file as JSON
  --out FILE         import: write the scenario there (default: stdout)
  --name NAME        import: scenario name (default: the VPC's Name tag or id)
  --vpc ID           import: the VPC to import when the input holds several
  --host INST=FILE   import: FILE is instance INST's (id or Name) iptables-save/nft/sysctl file (repeatable)
  --nat-ami INST     import: INST runs the NAT AMI's configure-pat.sh (repeatable)
  --iface NAME       import: the hosts' name for their primary interface (default: detected, e.g. ens5); it becomes eth0
  --internet CIDR    import: internet hosts (repeatable; default 198.51.100.0/24 and 192.0.2.0/24)

exit: 0 all files valid; 2 a file is invalid (check still checks the others) or usage error.
`;

export const command: Command = {
  name: 'scenario',
  summary:
    'check scenario files (check FILE...), print a compiled scenario (show [FILE]), import a real VPC (import INPUT...)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, {
      flags: ['json'],
      values: ['out', 'name', 'vpc', 'iface'],
      multi: ['host', 'nat-ami', 'internet'],
    });
    const [sub, ...files] = args.positional;
    const json = args.flags.has('json');
    if (sub === 'import') return runImport(files, args);
    for (const o of ['out', 'name', 'vpc', 'iface'])
      if (args.values.has(o)) throw new UsageError(`--${o} belongs to scenario import`);
    for (const o of ['host', 'nat-ami', 'internet'])
      if (args.multi.has(o)) throw new UsageError(`--${o} belongs to scenario import`);
    if (sub === 'check') return check(files.length ? files : [''], json);
    if (sub === 'show') {
      if (files.length > 1) throw new UsageError('show takes at most one FILE');
      const s = loadScenario(resolveScenarioPath(files[0]));
      process.stdout.write(json ? `${JSON.stringify(scenarioToObject(s), null, 2)}\n` : scenarioToYaml(s));
      return EXIT_OK;
    }
    throw new UsageError(
      sub === undefined
        ? 'missing subcommand (check, show or import)'
        : `unknown subcommand '${sub}' (check, show or import)`,
    );
  },
};

function runImport(inputs: string[], args: ReturnType<typeof parseArgs>): number {
  if (inputs.length === 0 && !args.multi.has('host')) throw new UsageError('import needs INPUT files or directories');
  if (args.flags.has('json')) throw new UsageError('--json belongs to scenario check/show');
  const hostFiles = (args.multi.get('host') ?? []).map((h) => {
    const eq = h.indexOf('=');
    if (eq <= 0 || eq === h.length - 1) throw new UsageError(`--host ${h}: expected INSTANCE=FILE`);
    return { instance: h.slice(0, eq), path: h.slice(eq + 1) };
  });
  const out = args.values.get('out');
  // The output location before the import's work (docs/errors.md).
  if (out !== undefined) checkOutputFile(out, '--out');
  const r = importScenario(inputs, hostFiles, {
    name: args.values.get('name'),
    vpcId: args.values.get('vpc'),
    internet: args.multi.get('internet'),
    natAmi: args.multi.get('nat-ami'),
    iface: args.values.get('iface'),
    outName: out ?? 'imported.yaml',
  });
  if (out) {
    try {
      writeFileSync(out, r.yaml);
    } catch (e) {
      throw new InputError(
        `${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        out,
        '',
      );
    }
  } else process.stdout.write(r.yaml);
  const s = r.scenario;
  const err = process.stderr;
  err.write(
    `natlab scenario import: ${s.name}: ${s.subnets.length} subnets, ${s.routeTables.length} route tables, ${s.instances.length} instances${s.securityGroups?.length ? `, ${s.securityGroups.length} security groups` : ''}${s.networkAcls?.length ? `, ${s.networkAcls.length} network ACL${s.networkAcls.length === 1 ? '' : 's'}` : ''}${out ? ` → ${out}` : ''}\n`,
  );
  for (const n of r.notes) err.write(`  note: ${n}\n`);
  if (r.skipped.length) {
    err.write(`  skipped (${r.skipped.length}; not expressible in the scenario):\n`);
    for (const l of formatSkipped(r.skipped)) err.write(`    - ${l}\n`);
  }
  for (const w of scenarioWarnings(s)) err.write(`  warning: ${w}\n`);
  return EXIT_OK;
}

async function check(files: string[], json: boolean): Promise<number> {
  let code = EXIT_OK;
  const results: object[] = [];
  for (const f of files) {
    const path = resolveScenarioPath(f);
    try {
      const s = loadScenario(path);
      const warnings = scenarioWarnings(s);
      if (json) results.push({ file: path, ok: true, warnings, scenario: scenarioToObject(s) });
      else
        process.stdout.write(
          `${path}: ok\n${describeScenario(s)}\n${warnings.map((w) => `  warning: ${w}\n`).join('')}`,
        );
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
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return code;
}
