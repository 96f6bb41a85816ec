// `natlab demo` (what `npm start` runs): a one-minute tour of natlab's main job on the built-in
// scenario — the NAT instance path traced hop by hop (an HTTPS connection AWS's recommended NAT
// security group passes, a DNS query it drops), replay verification of the built-in corpus on
// every available engine, a short differential fuzz campaign and the quick benchmark — ending with
// one summary table. Each step is the real subcommand, so what the tour shows is what users run.
import { EXIT_DIFF, EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { parseArgs, UsageError } from './args.ts';

interface Step {
  title: string;
  /** The command line a user would type for this step. */
  argv: string[];
  load: () => Promise<{ command: Command }>;
}

const USAGE = `usage: natlab demo [--skip STEP,...] [--fuzz-seconds S]

The tour of natlab on the built-in scenario (scenarios/vpc-nat-instance.yaml: a NAT instance with
AWS's recommended NATSG security group, which passes only HTTP and HTTPS), about a minute:
  trace    natlab trace "tcp 10.0.1.10:40000 > 198.51.100.7:443 S" "udp 10.0.1.10:40001 > 198.51.100.7:53"
                                       (HTTPS through the NAT instance and back; a DNS query to an
                                        internet resolver dropped by the group: sg-deny)
  corpus   natlab corpus verify        (replay verification on every available engine; the kernel
                                        engine only as root with ip/iptables/conntrack installed)
  fuzz     natlab fuzz --time S        (model vs core, fresh seed, printed)
  bench    natlab bench --quick        (core throughput, model baseline)
then one summary table. Each step is the subcommand itself; run it alone for its full options.

options:
  --skip LIST        steps to leave out (comma-separated: trace,corpus,fuzz,bench)
  --fuzz-seconds S   length of the fuzz step (default 15)
exit: 0 every step passed, 1 a step found a difference, 2 a step could not run.
`;

function steps(fuzzSeconds: number): Step[] {
  return [
    {
      title: 'trace',
      argv: [
        'trace',
        'tcp 10.0.1.10:40000 > 198.51.100.7:443 S',
        'udp 10.0.1.10:40001 > 198.51.100.7:53',
        '--conntrack',
      ],
      load: () => import('./cmd-trace.ts'),
    },
    { title: 'corpus', argv: ['corpus', 'verify'], load: () => import('./cmd-corpus.ts') },
    { title: 'fuzz', argv: ['fuzz', '--time', String(fuzzSeconds), '--no-save'], load: () => import('./cmd-fuzz.ts') },
    { title: 'bench', argv: ['bench', '--quick'], load: () => import('./cmd-bench.ts') },
  ];
}

function verdict(code: number): string {
  return code === EXIT_OK ? 'ok' : code === EXIT_DIFF ? 'DIFFERENCE' : 'could not run';
}

export const command: Command = {
  name: 'demo',
  summary: 'the tour (npm start): trace, corpus replay verification, fuzz, quick bench, summary',
  usage: USAGE,
  async run(argv) {
    const a = parseArgs(argv, { values: ['skip', 'fuzz-seconds'] });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    const skip = new Set(
      (a.values.get('skip') ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
    const fuzzSeconds = Number(a.values.get('fuzz-seconds') ?? 15);
    if (!Number.isFinite(fuzzSeconds) || fuzzSeconds <= 0)
      throw new UsageError('--fuzz-seconds: give a positive number');
    const all = steps(fuzzSeconds);
    for (const s of skip) if (!all.some((x) => x.title === s)) throw new UsageError(`--skip: unknown step '${s}'`);
    const rows: Array<{ step: string; cmd: string; result: string; seconds: string }> = [];
    let worst = EXIT_OK;
    for (const step of all) {
      if (skip.has(step.title)) continue;
      const cmdline = `natlab ${step.argv.map((x) => (/\s/.test(x) ? JSON.stringify(x) : x)).join(' ')}`;
      process.stdout.write(`\n━━ ${step.title}: ${cmdline}\n\n`);
      const t0 = performance.now();
      let code: number;
      try {
        const { command: cmd } = await step.load();
        code = await cmd.run(step.argv.slice(1));
      } catch (e) {
        process.stderr.write(`natlab demo: step ${step.title} failed: ${(e as Error).stack ?? e}\n`);
        code = EXIT_USAGE;
      }
      const secs = (performance.now() - t0) / 1000;
      rows.push({ step: step.title, cmd: cmdline, result: verdict(code), seconds: secs.toFixed(1) });
      if (code === EXIT_USAGE || (code === EXIT_DIFF && worst === EXIT_OK)) worst = code;
    }
    const w = Math.max(...rows.map((r) => r.cmd.length));
    process.stdout.write(
      `\n━━ summary\n\n  ${'step'.padEnd(7)} ${'command'.padEnd(w)}  ${'result'.padEnd(13)} seconds\n`,
    );
    for (const r of rows)
      process.stdout.write(
        `  ${r.step.padEnd(7)} ${r.cmd.padEnd(w)}  ${r.result.padEnd(13)} ${r.seconds.padStart(7)}\n`,
      );
    return worst;
  },
};
