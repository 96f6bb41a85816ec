import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listRegressions } from '../../src/diff/fuzz/regressions.ts';

function natlab(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/natlab.mjs', 'fuzz', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('natlab fuzz', () => {
  it('rejects bad usage with exit 2 and a reason', async () => {
    const run = async (...args: string[]) => {
      let err = '';
      const spy = vi
        .spyOn(process.stderr, 'write')
        .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
      try {
        return { code: await main(['fuzz', ...args]), err };
      } finally {
        spy.mockRestore();
      }
    };
    expect(await run('--engines', 'model')).toMatchObject({ code: 2 });
    expect((await run('--engines', 'model,model')).err).toMatch(/listed twice/);
    expect((await run('--engines', 'model,quantum')).err).toMatch(/unknown engine 'quantum'/);
    expect((await run('--runs', '1', '--time', '1')).err).toMatch(/--runs or --time/);
    expect((await run('--shard', '3/2')).err).toMatch(/need 0 <= i < n/);
    expect((await run('--pin')).err).toMatch(/--pin needs --run/);
    expect((await run('--update')).err).toMatch(/--update needs --replay DIR/);
    const missing = await run('--replay', 'corpora/regressions/no-such-case');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/not a regression directory/);
  }, 60_000);

  it('--replay DIR --update re-records the expected outputs after a deliberate change', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'natlab-update-'));
    try {
      const src = listRegressions().find((d) => d.endsWith('20261204-fate-5bbd65a9'))!;
      const dir = join(tmp, 'case');
      cpSync(src, dir, { recursive: true });
      const file = join(dir, 'expected', 'model', 'results.json');
      const good = readFileSync(file, 'utf8');
      const saved = JSON.parse(good) as { results: Array<{ reason: string }> };
      saved.results[0].reason = 'stale-expectation';
      writeFileSync(file, JSON.stringify(saved));
      const before = natlab('--replay', dir, '--engines', 'model,core');
      expect(before.code).toBe(0);
      expect(before.out).toMatch(/model differs from its saved results/);
      const r = natlab('--replay', dir, '--engines', 'model,core', '--update');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/expected outputs rewritten \(changed: model\)/);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(JSON.parse(good));
      const again = natlab('--replay', dir, '--engines', 'model,core', '--update');
      expect(again.out).toMatch(/expected outputs rewritten \(unchanged\)/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  it('replays a saved regression (engines agree: exit 0)', () => {
    const dir = listRegressions()[0];
    const r = natlab('--replay', dir, '--engines', 'model');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/replayed .* packets through model/);
    expect(r.out).toMatch(/engines agree/);
  }, 60_000);

  it('--json reports the seed and the counts; exit status follows the failure', () => {
    const save = mkdtempSync(join(tmpdir(), 'natlab-cli-'));
    try {
      const r = natlab('--runs', '2', '--seed', '5', '--json', '--save-dir', save, '--shrink-time', '5');
      expect([0, 1]).toContain(r.code);
      const j = JSON.parse(r.out);
      expect(j.seed).toBe(5);
      expect(j.runs).toBeGreaterThan(0);
      expect(j.packets).toBeGreaterThan(0);
      expect(r.code === 1).toBe(j.failure !== null);
      if (j.failure) expect(j.failure.replayCommand).toMatch(/^natlab fuzz --replay /);
    } finally {
      rmSync(save, { recursive: true, force: true });
    }
  }, 120_000);
});
