// Campaigns are deterministic per seed, and shards partition a campaign's runs exactly.
import { describe, expect, it } from 'vitest';
import { runFuzz, runSeed, type FuzzEngineSpec } from '../../src/diff/fuzz/fuzz.ts';
import { makeEngine } from '../../src/diff/engines.ts';

const engines: FuzzEngineSpec[] = [
  { name: 'model', create: (s, seed) => makeEngine('model', s, { seed }) },
  { name: 'model-b', create: (s, seed) => makeEngine('model', s, { seed: seed + 1 }) },
];
const counts = (r: { runs: number; scenarios: number; commands: number; packets: number }) => [
  r.runs,
  r.scenarios,
  r.commands,
  r.packets,
];

describe('campaign determinism and sharding', () => {
  it('the same seed gives the same campaign; shards 0/2 + 1/2 add up to the whole', async () => {
    const all = await runFuzz({ engines, seed: 99, runs: 6, saveDir: null });
    const again = await runFuzz({ engines, seed: 99, runs: 6, saveDir: null });
    expect(counts(again)).toEqual(counts(all));
    const s0 = await runFuzz({ engines, seed: 99, runs: 3, shard: { index: 0, count: 2 }, saveDir: null });
    const s1 = await runFuzz({ engines, seed: 99, runs: 3, shard: { index: 1, count: 2 }, saveDir: null });
    expect(s0.runs + s1.runs).toBe(6);
    expect(s0.packets + s1.packets).toBe(all.packets);
    expect(s0.commands + s1.commands).toBe(all.commands);
    expect(s0.packets).not.toBe(s1.packets);
  }, 60_000);

  it('--run R replays exactly run R of the campaign', async () => {
    const whole = await runFuzz({ engines, seed: 5, runs: 3, saveDir: null });
    const parts = [0, 1, 2].map((r) => runFuzz({ engines, seed: 5, onlyRun: r, saveDir: null }));
    const got = await Promise.all(parts);
    expect(got.reduce((a, r) => a + r.packets, 0)).toBe(whole.packets);
  }, 60_000);

  it('run seeds are distinct 31-bit values', () => {
    const seen = new Set(Array.from({ length: 1000 }, (_, r) => runSeed(7, r)));
    expect(seen.size).toBe(1000);
    for (const s of seen) expect(s >= 0 && s < 2 ** 31).toBe(true);
  });
});
