// One-sided captures re-addressed in the engine's hand-over (a re-addressing plan, spec/
// readdress-plan.ts) give exactly what re-addressing on replay's thread with a hand-over before each
// reply gives: the same report, the same output captures byte for byte, the same kept results —
// with one hand-over per chunk instead of one per new flow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EngineFactory, runReplay, type ReplayOptions } from '../../src/diff/replay/replay.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import { generatedInput } from '../../src/diff/replay/corpus.ts';
import { scriptedCaptures } from '../../src/traffic/scripted.ts';
import { loadOpenScenario, loadScenario } from '../../src/scenario/index.ts';
import { benchScenario } from '../../src/traffic/workload.ts';
import { validateProfile } from '../../src/traffic/profile.ts';
import { writeMixedCapture } from '../../bench/replay-capture.ts';
import type { Engine } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

let dir: string;
const caps = new Map<string, string>();
let mixedOne = '';
let mixedScenario: Scenario;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natlab-plan-test-'));
  for (const c of scriptedCaptures()) {
    const p = join(dir, `${c.name}.pcap`);
    await writeFile(p, generatedInput(c));
    caps.set(c.name, p);
  }
  // Many new flows, each answered (the set-up's second packet), then established traffic with
  // more new flows: a hand-over per reply on the old path.
  const profile = validateProfile(
    {
      name: 'plan-test',
      newFlowShare: 0.1,
      mix: { tcp: 2, udp: 1, icmp: 1 },
      sizes: [46, { bytes: 576, weight: 2 }],
      flows: 700,
      popularity: { zipf: 1 },
    },
    'plan-test',
  );
  mixedScenario = benchScenario(loadOpenScenario(), 700);
  mixedOne = join(dir, 'mixed-one-sided.pcap');
  await writeMixedCapture(
    mixedScenario,
    profile,
    7,
    3000,
    { setupMs: 1000, streamMs: 5000 },
    join(dir, 'mixed.pcap'),
    mixedOne,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** makeEngine, counting the core's hand-overs. */
function counting(calls: { n: number }): EngineFactory {
  return async (name, sc, o) => {
    const e = await makeEngine(name as 'model' | 'core', sc, o);
    if (!e.processFrames) return e;
    const inner = e.processFrames.bind(e);
    (e as Engine).processFrames = (b, out, first, count, plan) => {
      calls.n++;
      return inner(b, out, first, count, plan);
    };
    return e;
  };
}

async function files(d: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (p: string, rel: string): Promise<void> => {
    for (const ent of await readdir(p, { withFileTypes: true })) {
      if (ent.isDirectory()) await walk(join(p, ent.name), `${rel}${ent.name}/`);
      else if (ent.name !== 'report.json') out.set(`${rel}${ent.name}`, await readFile(join(p, ent.name)));
    }
  };
  await walk(d, '');
  return out;
}

/** The report without what depends on the clock. */
function stable(r: unknown): unknown {
  const x = structuredClone(r) as Record<string, unknown>;
  delete x.wallMs;
  delete x.pps;
  delete x.peakRssMb;
  for (const e of x.engines as Array<Record<string, unknown>>) delete e.engineMs;
  return x;
}

async function both(name: string, o: Omit<ReplayOptions, 'outDir' | 'engineFactory' | 'readdressInEngine'>) {
  const runs = [];
  for (const inEngine of [false, true]) {
    const calls = { n: 0 };
    const outDir = join(dir, `${name}-${inEngine ? 'plan' : 'main'}`);
    const r = await runReplay({
      ...o,
      outDir,
      outputFormat: 'pcap',
      keepResults: true,
      engineFactory: counting(calls),
      readdressInEngine: inEngine,
    });
    runs.push({ r, calls: calls.n, out: await files(outDir) });
  }
  const [a, b] = runs;
  expect(stable(b.r.report)).toEqual(stable(a.r.report));
  expect(b.r.kept).toEqual(a.r.kept);
  expect([...b.out.keys()].sort()).toEqual([...a.out.keys()].sort());
  for (const [f, bytes] of a.out) expect(Buffer.compare(b.out.get(f)!, bytes), f).toBe(0);
  return { main: a, plan: b };
}

describe('one-sided re-addressing in the engine (a plan in the hand-over)', () => {
  it('many new flows: the same report and outputs, one hand-over per chunk instead of one per reply', async () => {
    const { main, plan } = await both('mixed', {
      input: mixedOne,
      scenario: mixedScenario,
      scenarioHow: 'test',
      engines: ['core'],
      workers: 1,
      chunkSize: 512,
    });
    const rd = plan.r.report.engines[0].readdressed;
    expect(rd.flow).toBeGreaterThanOrEqual(700); // every flow's set-up reply
    const chunks = Math.ceil(plan.r.report.input.records / 512);
    expect(plan.calls).toBe(chunks);
    expect(main.calls).toBeGreaterThan(chunks + 600); // a hand-over before each new flow's reply
  });

  it('model and core together (the model re-addressed on replay thread, the core in its hand-over)', async () => {
    const { plan } = await both('mixed-two', {
      input: mixedOne,
      scenario: mixedScenario,
      scenarioHow: 'test',
      engines: ['model', 'core'],
      workers: 1,
      chunkSize: 1000,
    });
    expect(plan.r.report.agree).toBe(true);
  });

  it('the scripted one-sided captures (ICMP errors through the quoted flow, cut frames, collisions), small chunks', async () => {
    const twoApps = loadScenario(
      join(import.meta.dirname, '..', '..', 'corpora', 'generated', 'port-collision', 'scenario.yaml'),
    );
    let planned = 0;
    for (const [name, input] of caps) {
      const { plan } = await both(`s-${name}`, {
        input,
        scenario: name === 'port-collision' ? twoApps : loadOpenScenario(),
        scenarioHow: 'test',
        engines: ['core'],
        workers: 1,
        chunkSize: 5,
      });
      planned += plan.r.report.engines[0].readdressed.flow;
    }
    expect(planned).toBeGreaterThan(20);
  });

  it('two workers keep re-addressing on replay thread (a plan needs one worker): the same outputs', async () => {
    const { plan, main } = await both('mixed-w2', {
      input: mixedOne,
      scenario: mixedScenario,
      scenarioHow: 'test',
      engines: ['core'],
      workers: 2,
      chunkSize: 1024,
    });
    expect(plan.calls).toBe(main.calls);
  });
});
