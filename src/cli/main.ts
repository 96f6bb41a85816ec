// The `natlab` command: dispatches to subcommands in src/cli/cmd-*.ts.
import { EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError } from './args.ts';
import { InputError, boundMessage, excerpt } from '../spec/errors.ts';
import { describeFsError } from './output-location.ts';
import { readFileSync } from 'node:fs';

// Subcommands, in the order `natlab --help` lists them. Each module exports `command`.
const COMMANDS: Array<() => Promise<{ command: Command }>> = [
  // natlab-commands: one line per subcommand module
  () => import('./cmd-demo.ts'),
  () => import('./cmd-bench.ts'),
  () => import('./cmd-trace.ts'),
  () => import('./cmd-kernel.ts'),
  () => import('./cmd-replay.ts'),
  () => import('./cmd-verify.ts'),
  () => import('./cmd-corpus.ts'),
  () => import('./cmd-scenario.ts'),
  () => import('./cmd-check.ts'),
  () => import('./cmd-compare.ts'),
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
    'usage: natlab <command> [options]      (natlab <command> --help or natlab help <command> for details)',
    '       natlab --version',
    '',
    'commands:',
    ...cmds.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 a check failed (difference found), 2 bad input or usage',
  ].join('\n');
}

/** The version of package.json (natlab --version). */
export function natlabVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Lines of an error message kept at most. */
const MESSAGE_LINES_MAX = 30;

/**
 * The safety net behind every validator: each line of an error message bounded and escaped (a
 * message quoting a 1 MB value or binary bytes never reaches the terminal whole), at most
 * MESSAGE_LINES_MAX lines.
 */
function safeLines(msg: string): string {
  const lines = msg.split('\n');
  const kept = lines.slice(0, MESSAGE_LINES_MAX).map(boundMessage);
  if (lines.length > MESSAGE_LINES_MAX) kept.push(`  (${lines.length - MESSAGE_LINES_MAX} more lines)`);
  return kept.join('\n');
}

function findCommand(cmds: Command[], name: string): Command | undefined {
  // Two-word commands ("pcap info", "kernel cleanup") are dispatched by their first word.
  return cmds.find((c) => c.name === name || c.name.split(' ')[0] === name);
}

export async function main(argv: string[]): Promise<number> {
  const cmds = await loadCommands();
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    if (rest.length) {
      process.stderr.write(`natlab: ${name} takes no arguments\n`);
      return EXIT_USAGE;
    }
    process.stdout.write(`natlab ${natlabVersion()} (node ${process.versions.node})\n`);
    return EXIT_OK;
  }
  if (name === 'help' && rest.length > 0) {
    // `natlab help replay`: that command's help.
    const c = rest.length === 1 ? findCommand(cmds, rest[0]) : undefined;
    if (!c) {
      process.stderr.write(
        `natlab help: ${rest.length === 1 ? `unknown command '${excerpt(rest[0])}'` : 'give one command name'}\n\n${help(cmds)}\n`,
      );
      return EXIT_USAGE;
    }
    process.stdout.write(`${c.usage.trimEnd()}\n`);
    return EXIT_OK;
  }
  if (!name) {
    process.stderr.write(`${help(cmds)}\n`);
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help(cmds)}\n`);
    return EXIT_OK;
  }
  const cmd = findCommand(cmds, name);
  if (!cmd) {
    process.stderr.write(`natlab: unknown command '${excerpt(name)}'\n\n${help(cmds)}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage.trimEnd()}\n`);
    return EXIT_OK;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`natlab ${cmd.name}: ${safeLines(e.message)}\n\n${cmd.usage.trimEnd()}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof InputError) {
      process.stderr.write(`natlab ${cmd.name}: ${safeLines(e.message)}\n`);
      return EXIT_USAGE;
    }
    // A file the command reads or writes failed (disk full mid-run, permissions changed, ...):
    // one line, exit 2 — bad environment, not an engine difference and not a crash.
    const fs = describeFsError(e);
    if (fs !== null) {
      process.stderr.write(`natlab ${cmd.name}: ${fs}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}
