// Writes one benchmark result JSON into results/ with the machine description.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem, availableParallelism } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function machineInfo(): Record<string, unknown> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    /* not a git checkout */
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    commit,
  };
}

export async function writeBenchResult(kind: string, data: Record<string, unknown>, dir = 'results'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${kind}-${stamp}.json`);
  await writeFile(
    file,
    `${JSON.stringify({ kind, date: new Date().toISOString(), machine: machineInfo(), ...data }, null, 2)}\n`,
  );
  return file;
}
