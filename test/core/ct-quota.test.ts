// The per-worker conntrack quota (docs/core.md "Table-full accounting"): with 2 workers and
// nf_conntrack_max 5, worker 0 owns 3 entries of each NAT instance and worker 1 owns 2. The saved
// counterexample (corpora/regressions/20261204-conntrack-3e678931, found by the mutant runner's
// baseline at --workers 2) floods 8 UDP flows at nat1's own address, port 53: all 8 dispatch to
// worker 1 (inbound: key = destination port, 53 mod 2 = 1), which keeps its newest 2 while the
// model's one table keeps the newest 5. The core classifies exactly that as 'core-ct-quota' —
// only when the owning worker is at its quota — and nothing else.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeEngine, type EngineName } from '../../src/diff/engines.ts';
import { loadRegression, replayRegression, REGRESSIONS_DIR } from '../../src/diff/fuzz/regressions.ts';
import { createCoreEngine } from '../../src/core/engine.ts';
import { CLASS_CORE_CT_QUOTA } from '../../src/core/differences.ts';
import type { DifferenceFacts } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

const CASE = join(REGRESSIONS_DIR, '20261204-conntrack-3e678931');

async function replay(workers: number, edit?: (s: Scenario) => Scenario) {
  const reg = loadRegression(CASE);
  if (edit) reg.scenario = edit(reg.scenario);
  const names: EngineName[] = ['model', 'core'];
  const engines = [];
  for (const n of names)
    engines.push({
      name: n,
      engine: await makeEngine(n, reg.scenario, {
        seed: reg.meta.engineSeed,
        workers: n === 'core' ? workers : undefined,
      }),
    });
  return replayRegression(reg, engines);
}

const line = (who: string, sport: number, dport: number) =>
  `conntrack (instance 1): only ${who} has udp      17 29 src=198.51.100.7 dst=10.0.0.11 sport=${sport} dport=${dport} [UNREPLIED] src=10.0.0.11 dst=198.51.100.7 sport=${dport} dport=${sport} mark=0 use=1`;

const tableFacts = (messages: string[], kind = 'conntrack'): DifferenceFacts => ({
  index: -1,
  differences: messages.map((message) => ({ kind, message })),
  engines: ['model', 'core'],
  inputs: null,
  results: null,
});

describe('core: the per-worker conntrack quota as a classified difference', () => {
  it('at 2 workers the flood leaves worker 1 at its quota of 2; the 3 entries only the model keeps are classified', async () => {
    const out = await replay(2);
    expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
    expect(out.session.classified.get(CLASS_CORE_CT_QUOTA)).toBe(3);
    expect(out.session.classifiedExamples.get(CLASS_CORE_CT_QUOTA)).toContain('worker 1 holds its quota 2');
  }, 60_000);

  it('at 1 worker the engines agree with nothing classified', async () => {
    const out = await replay(1);
    expect(out.differences).toEqual([]);
    expect(out.session.classified.size).toBe(0);
  }, 60_000);

  it('with room in the worker (max 16: quota 8 each) the engines agree with nothing classified', async () => {
    const out = await replay(2, (s) => ({ ...s, conntrack: { ...s.conntrack, max: 16 } }));
    expect(out.differences).toEqual([]);
    expect(out.session.classified.size).toBe(0);
  }, 60_000);

  it('classifies nothing a worker below its quota, another engine, or another kind of difference explains', async () => {
    const reg = loadRegression(CASE);
    const core = createCoreEngine(reg.scenario, { workers: 2, seed: reg.meta.engineSeed });
    const one = createCoreEngine(reg.scenario, { workers: 1, seed: reg.meta.engineSeed });
    try {
      const inputs = reg.events.flatMap((e) =>
        e.kind === 'packet'
          ? [{ ingress: 0, frame: Uint8Array.from(Buffer.from(e.frame, 'hex')), timeUs: e.timeUs }]
          : [],
      );
      await core.process(inputs);
      await one.process(inputs);
      const perInstance = (await core.conntrack()).filter((e) => e.instance === 1);
      expect(perInstance.map((e) => e.orig.sport)).toEqual([31015, 31016]);
      // The real case: owned by worker 1 (dport 53), which holds 2 = its quota.
      expect(core.classifyDifference(tableFacts([line('model', 31012, 53)]))?.id).toBe(CLASS_CORE_CT_QUOTA);
      // Owned by worker 0 (dport 52): 0 entries of its quota 3 — a real difference.
      expect(core.classifyDifference(tableFacts([line('model', 31012, 52)]))).toBeNull();
      // One unexplained line makes the whole group unexplained.
      expect(core.classifyDifference(tableFacts([line('model', 31012, 53), line('model', 31012, 52)]))).toBeNull();
      // An entry only the core has is never the quota's doing.
      expect(core.classifyDifference(tableFacts([line('core', 31012, 53)]))).toBeNull();
      // Not a table-only difference.
      expect(core.classifyDifference(tableFacts([line('model', 31012, 53)], 'fate'))).toBeNull();
      expect(core.classifyDifference({ ...tableFacts([line('model', 31012, 53)]), index: 3 })).toBeNull();
      // The session may name the core otherwise (the mutant runner's 'core-mutant')...
      expect(
        core.classifyDifference({ ...tableFacts([line('model', 31012, 53)]), engines: ['model', 'core-mutant'] })?.id,
      ).toBe(CLASS_CORE_CT_QUOTA);
      // ...but an entry the named engine lacks is not the core's to explain, nor one from outside the pair.
      expect(core.classifyDifference(tableFacts([line('kernel', 31012, 53)]))).toBeNull();
      // One worker owns the whole max: nothing to classify.
      expect(one.classifyDifference(tableFacts([line('model', 31012, 53)]))).toBeNull();
    } finally {
      await core.close();
      await one.close();
    }
  }, 60_000);
});
