// Fault tolerance of the core engine: a worker that throws, or whose thread is terminated,
// mid-run is replaced; the run completes and every output, the conntrack table and the counters
// equal those of a run without the fault (byte for byte: same ports, same order).
import { describe, expect, it } from 'vitest';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import type { ConntrackEntry, InputPacket, NatRuleCounter, PacketResult } from '../../src/spec/engine.ts';
import { type CoreEngineOptions, createCoreEngine } from '../../src/core/engine.ts';
import { mixedTraffic } from './engine-traffic.ts';

const S = loadOpenScenario();
const INPUTS = mixedTraffic(S, 400, 21);
const BATCH = 128;

interface Run {
  results: PacketResult[];
  conntrack: ConntrackEntry[];
  counters: NatRuleCounter[];
  drops: number[];
  restarts: number;
  interrupted: number;
  faultLog: string[];
  threads: number;
}

async function run(opts: CoreEngineOptions, inputs: InputPacket[] = INPUTS): Promise<Run> {
  const e = createCoreEngine(S, { seed: 9, batchSize: BATCH, ...opts });
  try {
    const results: PacketResult[] = [];
    // Several process() calls, each several chunks: faults land mid-call and mid-chunk.
    for (let i = 0; i < inputs.length; i += 700) results.push(...(await e.process(inputs.slice(i, i + 700))));
    return {
      results,
      conntrack: await e.conntrack(),
      counters: await e.natCounters(),
      drops: e.dropCounters(),
      restarts: e.pool!.restarts,
      interrupted: e.pool!.interruptedPackets,
      faultLog: [...e.pool!.faultLog],
      threads: e.pool!.threadCount,
    };
  } finally {
    await e.close();
  }
}

const clean = new Map<number, Promise<Run>>();
function cleanRun(workers: number): Promise<Run> {
  if (!clean.has(workers)) clean.set(workers, run({ workers }));
  return clean.get(workers)!;
}

function expectSameRun(got: Run, want: Run): void {
  expect(got.interrupted).toBe(0); // injected faults strike between packets: exact recovery
  expect(got.results.length).toBe(want.results.length);
  const firstDiff = got.results.findIndex((r, i) => JSON.stringify(r) !== JSON.stringify(want.results[i]));
  expect(firstDiff).toBe(-1);
  expect(got.conntrack).toEqual(want.conntrack);
  expect(got.counters).toEqual(want.counters);
  expect(got.drops).toEqual(want.drops);
}

// The 'line' layout's faulted runs are compared with the 'record' layout's clean run: the layout
// changes no output, and a replacement worker resumes from the entries its predecessor left.
describe.each([
  [1, 'record'],
  [2, 'record'],
  [2, 'line'],
])('core engine faults, %i worker(s), layout %s', (workers, layout) => {
  const mid = Math.floor(INPUTS.length * 0.45);

  it('a worker that throws mid-batch is re-issued; outputs equal a clean run', async () => {
    const got = await run({ workers, layout, faults: { throwAtPacket: mid } });
    expect(got.restarts).toBe(1);
    expect(got.faultLog.join('\n')).toMatch(/injected fault: worker throws before packet/);
    expectSameRun(got, await cleanRun(workers));
  });

  it('a worker thread terminated mid-batch is replaced; outputs equal a clean run', async () => {
    const got = await run({ workers, layout, faults: { terminateAtPacket: mid + 3 } });
    expect(got.restarts).toBe(1);
    expect(got.faultLog.join('\n')).toMatch(/terminating thread .* \(injected\)/);
    expect(got.faultLog.join('\n')).toMatch(/worker exited/);
    expect(got.threads).toBe(workers); // piscina started a replacement
    expectSameRun(got, await cleanRun(workers));
  });

  it('terminateAtBatch: the owner of the middle packet of batch k dies there; outputs equal a clean run', async () => {
    const got = await run({ workers, layout, faults: { terminateAtBatch: 7 } });
    expect(got.restarts).toBe(1);
    expectSameRun(got, await cleanRun(workers));
  });
});

describe('core engine faults: the clean runs are meaningful', () => {
  it('the traffic creates sessions on every worker and the fault points fall mid-run', async () => {
    const r = await cleanRun(2);
    expect(r.conntrack.length).toBeGreaterThan(100);
    expect(INPUTS.length).toBeGreaterThan(7 * BATCH * 1.5);
  });

  it('one fault per engine', () => {
    expect(() => createCoreEngine(S, { workers: 1, faults: { throwAtPacket: 1, holdAtPacket: 2 } })).toThrow(
      /at most one/,
    );
  });
});
