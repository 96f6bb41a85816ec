// The per-worker conntrack quota (docs/core.md "Table-full accounting"): with 2 workers and
// nf_conntrack_max 5, worker 0 owns 3 entries of each NAT instance and worker 1 owns 2. The saved
// counterexample (corpora/regressions/20261204-conntrack-3e678931, found by the mutant runner's
// baseline at --workers 2) floods 8 UDP flows at nat1's own address, port 53: all 8 dispatch to
// worker 1 (inbound: key = destination port, 53 mod 2 = 1), which keeps its newest 2 while the
// model's one table keeps the newest 5. The second (corpora/regressions/20261205-reason-264b3dd9,
// the 2-worker shapes campaign's seed 3) has max 1: worker 1's quota is 0, so its first flow is
// refused (ct-table-full) where the model has room. The workers record where one first reached its
// quota below the max; from that packet on the instance's differences are classified
// 'core-ct-quota' — and nothing before it, on another instance, or of another kind.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeEngine, type EngineName } from '../../src/diff/engines.ts';
import { loadRegression, replayRegression, REGRESSIONS_DIR } from '../../src/diff/fuzz/regressions.ts';
import { createCoreEngine } from '../../src/core/engine.ts';
import {
  CLASS_CORE_CT_QUOTA,
  CLASS_CORE_ICMP_SHARE,
  CLASS_CORE_SG_SHARE,
  CLASS_CORE_SPLIT_FLOW,
} from '../../src/core/differences.ts';
import type { DifferenceFacts } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

const CASE = join(REGRESSIONS_DIR, '20261204-conntrack-3e678931');
const CASE_ZERO = join(REGRESSIONS_DIR, '20261205-reason-264b3dd9');
const CASE_SPLIT = join(REGRESSIONS_DIR, '20261205-fate-2e8e6da1');
const CASE_SG = join(REGRESSIONS_DIR, '20261205-reason-1a4304aa');
const CASE_ICMP = join(REGRESSIONS_DIR, '20261205-output-count-4576e896');

async function replay(workers: number, edit?: (s: Scenario) => Scenario, dir = CASE) {
  const reg = loadRegression(dir);
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
    expect(out.session.classifiedExamples.get(CLASS_CORE_CT_QUOTA)).toContain(
      "a worker reached its quota of nat1's max 5 (split over 2 workers) at packet #2",
    );
  }, 60_000);

  it('max 1 at 2 workers: worker 1 (quota 0) refuses the first flow it owns; that packet is classified', async () => {
    const out = await replay(2, undefined, CASE_ZERO);
    expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
    // Packet #0, and at the end nat0's nat PREROUTING counter (the model's packet reached it).
    expect(out.session.classified.get(CLASS_CORE_CT_QUOTA)).toBe(2);
    expect(out.session.classifiedExamples.get(CLASS_CORE_CT_QUOTA)).toContain(
      "a worker reached its quota of nat0's max 1 (split over 2 workers) at packet #0",
    );
    const one = await replay(1, undefined, CASE_ZERO);
    expect(one.differences).toEqual([]);
    expect(one.session.classified.size).toBe(0);
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

  it('classifies only that instance, from that packet on, and only comparisons of the core', async () => {
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
      // nat1's table: worker 1 reached its quota 2 at packet #2 (its third flow).
      expect(core.classifyDifference(tableFacts([line('model', 31012, 53)]))?.id).toBe(CLASS_CORE_CT_QUOTA);
      // After that decision either side may hold entries the other lacks (the model early-drops its
      // oldest, the worker its own oldest): both are the quota's doing on nat1.
      expect(core.classifyDifference(tableFacts([line('core', 31012, 52)]))?.id).toBe(CLASS_CORE_CT_QUOTA);
      // nat0's table: no worker of nat0 ever reached its quota — a real difference.
      const nat0 = line('model', 31012, 53).replace('(instance 1)', '(instance 0)');
      expect(core.classifyDifference(tableFacts([nat0]))).toBeNull();
      // One unexplained line makes the whole group unexplained.
      expect(core.classifyDifference(tableFacts([line('model', 31012, 53), nat0]))).toBeNull();
      // nat counters of nat1 (a refused flow never reached its nat table), not of nat0.
      const counters = (i: number) =>
        `nat counters instance ${i} PREROUTING rule -1: model 3 pkts/96 bytes vs core 0/0`;
      expect(core.classifyDifference(tableFacts([counters(1)], 'counters'))?.id).toBe(CLASS_CORE_CT_QUOTA);
      expect(core.classifyDifference(tableFacts([counters(0)], 'counters'))).toBeNull();
      // Not a table difference of a kind the quota explains.
      expect(core.classifyDifference(tableFacts([line('model', 31012, 53)], 'fate'))).toBeNull();
      // Packet differences: a packet through nat1 from packet #2 on, not before; never an invariant.
      const pkt = (index: number, kind = 'fate', input = inputs[0]) => ({
        index,
        differences: [{ kind, message: 'packet #…' }],
        engines: ['model', 'core'] as const,
        inputs: [input, input] as const,
        results: null,
      });
      expect(core.classifyDifference(pkt(2))?.id).toBe(CLASS_CORE_CT_QUOTA);
      expect(core.classifyDifference(pkt(7))?.id).toBe(CLASS_CORE_CT_QUOTA);
      expect(core.classifyDifference(pkt(1))).toBeNull();
      expect(core.classifyDifference(pkt(7, 'invariant'))).toBeNull();
      // A packet to nat0's Elastic IP (203.0.113.10): nat0 never hit a quota.
      const toNat0 = { ...inputs[0], frame: inputs[0].frame.slice() };
      toNat0.frame[19] = 10;
      expect(core.classifyDifference(pkt(7, 'fate', toNat0))).toBeNull();
      // The session may name the core otherwise (the mutant runner's 'core-mutant')...
      expect(
        core.classifyDifference({ ...tableFacts([line('model', 31012, 53)]), engines: ['model', 'core-mutant'] })?.id,
      ).toBe(CLASS_CORE_CT_QUOTA);
      // ...but an entry of an engine outside the pair is not the core's to explain.
      expect(core.classifyDifference(tableFacts([line('kernel', 31012, 53)]))).toBeNull();
      // One worker owns the whole max: nothing to classify.
      expect(one.classifyDifference(tableFacts([line('model', 31012, 53)]))).toBeNull();
      expect(one.classifyDifference(pkt(7))).toBeNull();
    } finally {
      await core.close();
      await one.close();
    }
  }, 60_000);

  it('a VPC-internal flow whose directions dispatch to different workers: its packets are classified core-split-flow', async () => {
    const out = await replay(2, undefined, CASE_SPLIT);
    expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
    expect(out.session.classified.get(CLASS_CORE_SPLIT_FLOW)).toBe(1);
    const one = await replay(1, undefined, CASE_SPLIT);
    expect(one.differences).toEqual([]);
    expect(one.session.classified.size).toBe(0);
    // The same flow with ports both owned by worker 0 (600 → 54) is not split: a difference stays one.
    const reg = loadRegression(CASE_SPLIT);
    const core = createCoreEngine(reg.scenario, { workers: 2, seed: reg.meta.engineSeed });
    try {
      const pkt = reg.events.find((e) => e.kind === 'packet');
      if (pkt?.kind !== 'packet') throw new Error('no packet');
      const frame = Uint8Array.from(Buffer.from(pkt.frame, 'hex'));
      const facts = (f: Uint8Array, ingress: number) => ({
        index: 0,
        differences: [{ kind: 'fate', message: 'packet #0 …' }],
        engines: ['model', 'core'] as const,
        inputs: [
          { ingress, frame: f, timeUs: 0 },
          { ingress, frame: f, timeUs: 0 },
        ] as const,
        results: null,
      });
      const nat0 = reg.scenario.instances.findIndex((i) => i.name === 'nat0') + 1;
      expect(core.classifyDifference(facts(frame, nat0))?.id).toBe(CLASS_CORE_SPLIT_FLOW);
      const same = frame.slice();
      same[23] = 54; // dport 53 -> 54 (the checksum does not matter to the rule)
      expect(core.classifyDifference(facts(same, nat0))).toBeNull();
    } finally {
      await core.close();
    }
  }, 60_000);

  it("an ENI's allowance of 1 at 2 workers: worker 1's share of 0 refuses the flow; classified core-sg-share from there", async () => {
    const out = await replay(2, undefined, CASE_SG);
    expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
    expect(out.session.classified.get(CLASS_CORE_SG_SHARE)).toBe(1);
    expect(out.session.classifiedExamples.get(CLASS_CORE_SG_SHARE)).toContain('refused a flow at packet #0');
    const one = await replay(1, undefined, CASE_SG);
    expect(one.differences).toEqual([]);
    expect(one.session.classified.size).toBe(0);
  }, 60_000);

  it('per-worker ICMP rate limits: the core sends one time exceeded more; classified core-icmp-share, never the reverse', async () => {
    const out = await replay(2, undefined, CASE_ICMP);
    expect(out.differences.map((d) => `[${d.kind}] ${d.message}`)).toEqual([]);
    expect(out.session.classified.get(CLASS_CORE_ICMP_SHARE)).toBe(1);
    const one = await replay(1, undefined, CASE_ICMP);
    expect(one.differences).toEqual([]);
    expect(one.session.classified.size).toBe(0);
    // The same results with the engines' roles swapped (the model with the extra error) is not it.
    const reg = loadRegression(CASE_ICMP);
    const core = createCoreEngine(reg.scenario, { workers: 2, seed: reg.meta.engineSeed });
    try {
      const last = out.session.results[0].length - 1;
      const inp = out.session.inputs[1][last];
      const facts = (
        engines: readonly [string, string],
        results: readonly [never, never] | readonly [unknown, unknown],
      ) => ({
        index: last,
        differences: [{ kind: 'output-count', message: 'packet …' }],
        engines,
        inputs: [inp, inp] as const,
        results: results as never,
      });
      const model = out.session.results[0][last];
      const mine = out.session.results[1][last];
      expect(mine.outputs.length).toBe(model.outputs.length + 1);
      expect(core.classifyDifference(facts(['model', 'core'], [model, mine]))?.id).toBe(CLASS_CORE_ICMP_SHARE);
      expect(core.classifyDifference(facts(['model', 'core'], [mine, model]))).toBeNull();
      // Another difference beside the output count: not it.
      expect(
        core.classifyDifference({
          ...facts(['model', 'core'], [model, mine]),
          differences: [
            { kind: 'output-count', message: '…' },
            { kind: 'ct', message: '…' },
          ],
        }),
      ).toBeNull();
    } finally {
      await core.close();
    }
  }, 60_000);
});
