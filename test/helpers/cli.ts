// Runs natlab commands for tests: in-process (main(), the same code path bin/natlab.mjs runs,
// stdout/stderr captured) or as a real process (bin/natlab.mjs through node).
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** An exception that escaped main() (a crash: bin/natlab.mjs would print a stack trace). */
  crash: Error | null;
}

/** A Node stack frame or an uncaught error header: never allowed in natlab's output. */
export const STACK_TRACE_RE =
  /^\s+at .+(:\d+:\d+\)?|\(native\))$|^(\w*Error|TypeError|RangeError)(\s\[\w+\])?: |node:internal/m;

export async function runInProcess(argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const o = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const e = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    return { code: await main(argv), stdout, stderr, crash: null };
  } catch (err) {
    return { code: null, stdout, stderr, crash: err as Error };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

export const NATLAB_BIN = 'bin/natlab.mjs';

export function runProcess(argv: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [NATLAB_BIN, ...argv], { encoding: 'utf8', timeout: 120_000, ...opts });
  return { code: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), crash: r.error ?? null };
}
