// The `natlab` command: dispatches to subcommands in src/cli/cmd-*.ts.
import { EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError } from './args.ts';
import { InputError } from '../spec/errors.ts';

// Subcommands, in the order `natlab --help` lists them. Each module exports `command`.
const COMMANDS: Array<() => Promise<{ command: Command }>> = [
  // natlab-commands: one line per subcommand module
  () => import('./cmd-demo.ts'),
  () => import('./cmd-bench.ts'),
  () => import('./cmd-trace.ts'),
  () => import('./cmd-kernel.ts'),
  () => import('./cmd-replay.ts'),
  () => import('./cmd-corpus.ts'),
  () => import('./cmd-scenario.ts'),
  () => import('./cmd-check.ts'),
  () => import('./cmd-pcap.ts'),
  () => import('./cmd-fuzz.ts'),
  () => import('./cmd-conformance.ts'),
];

async function loadCommands(): Promise<Command[]> {
  const mods = await Promise.all(COMMANDS.map((load) => load()));
  return mods.map((m) => m.command);
}

function help(cmds: Command[]): string {
  const w = Math.max(...cmds.map((c) => c.name.length), 4);
  return [
    'natlab — NAT benchmark and differential tester for an AWS VPC NAT instance',
    '',
    'usage: natlab <command> [options]      (natlab <command> --help for details)',
    '',
    'commands:',
    ...cmds.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 a check failed (difference found), 2 bad input or usage',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const cmds = await loadCommands();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help(cmds) + '\n');
    return name ? EXIT_OK : EXIT_USAGE;
  }
  // Two-word commands ("pcap info", "kernel cleanup") are dispatched by their first word.
  const cmd = cmds.find((c) => c.name === name || c.name.split(' ')[0] === name);
  if (!cmd) {
    process.stderr.write(`natlab: unknown command '${name}'\n\n${help(cmds)}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage.trimEnd() + '\n');
    return EXIT_OK;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`natlab ${cmd.name}: ${e.message}\n\n${cmd.usage.trimEnd()}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof InputError) {
      process.stderr.write(`natlab ${cmd.name}: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}
