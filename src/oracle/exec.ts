// Running the system tools the kernel oracle needs. Always argument arrays (spawn, never a shell),
// so no scenario value can be interpreted by a shell.
import { spawn, execFileSync } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  /** Text written to the command's stdin (e.g. `ip -batch -`, `iptables-restore`). */
  input?: string;
  /** Run inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  /** Resolve with a non-zero exit code instead of rejecting. */
  allowFail?: boolean;
  timeoutMs?: number;
}

/** A system command failed; the message names the command, its exit code and its stderr. */
export class KernelCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number,
    readonly stderr: string,
  ) {
    super(`command failed (exit ${code}): ${argv.join(' ')}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    this.name = 'KernelCommandError';
  }
}

export function withNetns(netns: string | undefined, cmd: string, args: readonly string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, cmd, ...args] : [cmd, ...args];
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = withNetns(opts.netns, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new KernelCommandError(argv, -1, e.message));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const r: RunResult = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `killed by ${signal}` : ''),
        code: code ?? 128,
      };
      if (r.code !== 0 && !opts.allowFail) reject(new KernelCommandError(argv, r.code, r.stderr));
      else resolve(r);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Synchronous variant for exit/signal handlers (no event loop left to wait on). */
export function runSync(cmd: string, args: readonly string[], input = ''): RunResult {
  try {
    const stdout = execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
    return { stdout: stdout.toString('utf8'), stderr: '', code: 0 };
  } catch (e) {
    const x = e as { status?: number; stdout?: Buffer; stderr?: Buffer };
    return {
      stdout: x.stdout?.toString('utf8') ?? '',
      stderr: x.stderr?.toString('utf8') ?? String(e),
      code: x.status ?? -1,
    };
  }
}

/** A helper process natlab talks to over stdin (the per-namespace agents, the injection hub). */
export interface PipedChild {
  stdin: { end(): void };
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
  kill(signal: NodeJS.Signals): boolean;
  once(event: 'exit', listener: () => void): unknown;
}

/** Closes the child's stdin and SIGKILLs it if it still runs (at once; see stopChild to wait). */
export function killChild(c: PipedChild | null): void {
  if (!c) return;
  try {
    c.stdin.end();
  } catch {
    // already closed
  }
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Kills the child as killChild does and waits until it has exited. */
export async function stopChild(c: PipedChild | null): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((res) => c.once('exit', () => res()));
  killChild(c);
  await exited;
}
