// `npx natlab` / `npm run`: when npm is killed (SIGTERM or SIGKILL), the natlab process it
// started through `sh -c` stops too instead of running to completion (bin/launcher-watch.mjs).
// A real `npm exec -c`, killed; the natlab process is found by a marker in its environment.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NATLAB_BIN } from '../helpers/cli.ts';

const hasNpm = spawnSync('npm', ['--version']).status === 0;
const hasProc = (() => {
  try {
    readdirSync('/proc/self');
    return true;
  } catch {
    return false;
  }
})();

/** Pids of processes whose environment holds the marker and that run bin/natlab.mjs. */
function natlabPids(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readFileSync(`/proc/${d}/environ`, 'latin1').includes(`NATLAB_TEST_MARK=${marker}`)) continue;
      // node bin/natlab.mjs itself (not the `sh -c` that started it)
      const argv = readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0');
      if (/(^|\/)node$/.test(argv[0]) && argv[1] === NATLAB_BIN) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // a zombie is not running any more
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe.skipIf(!hasNpm || !hasProc)('natlab under npm stops when npm is killed', () => {
  for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${sig} to npm exec`, async () => {
      const marker = randomUUID();
      const npm = spawn('npm', ['exec', '--offline', '-c', `node ${NATLAB_BIN} fuzz --time 120 --seed 1 --no-save`], {
        env: { ...process.env, NATLAB_TEST_MARK: marker },
        stdio: 'ignore',
        detached: true,
      });
      try {
        expect(await until(() => natlabPids(marker).length === 1, 30_000)).toBe(true);
        const [pid] = natlabPids(marker);
        // Let it get going (tsx loaded, the fuzzer running), then kill npm alone.
        await new Promise((r) => setTimeout(r, 1500));
        expect(alive(pid)).toBe(true);
        process.kill(npm.pid!, sig);
        expect(await until(() => !alive(pid), 10_000)).toBe(true);
      } finally {
        for (const p of natlabPids(marker)) process.kill(p, 'SIGKILL');
        try {
          process.kill(-npm.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, 60_000);
  }

  it('outside npm nothing is watched (nohup keeps its meaning)', () => {
    const env = { ...process.env };
    delete env.npm_command;
    delete env.npm_lifecycle_event;
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `import('./bin/launcher-watch.mjs').then(m => console.log(m.watchLauncher(${JSON.stringify({})}) === null))`,
      ],
      { encoding: 'utf8', env },
    );
    expect(r.stdout.trim()).toBe('true');
  });
});
