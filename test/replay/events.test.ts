// Timeline events mid-stream (ReplayOptions.events): each engine has every packet before an
// event's time handed over when the event is applied, and none after it — on the zero-copy path
// (the core's processFrames) and the object path (the model's process), two- and one-sided.
import { describe, expect, it } from 'vitest';
import { runReplay, type EngineFactory, type ReplayEvent } from '../../src/diff/replay/replay.ts';
import { makeEngine, type EngineName } from '../../src/diff/engines.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { readCapture } from '../../src/pcap/index.ts';
import type { Engine } from '../../src/spec/engine.ts';

const scenario = loadOpenScenario();
const ONE_SIDED = 'corpora/generated/icmp-unreachable/input.pcap';
const TWO_SIDED = 'corpora/generated/tcp-sessions/input.pcap';

/** The engine with its hand-overs logged: packets handed over so far, by time. */
function logged(log: string[], times: number[]): EngineFactory {
  return async (name, s, o) => {
    const e = await makeEngine(name as EngineName, s, o);
    const w: Engine = Object.create(e);
    let handed = 0;
    w.process = async (b) => {
      for (const p of b) times.push(p.timeUs);
      handed += b.length;
      return e.process(b);
    };
    if (e.processFrames)
      w.processFrames = async (batch, out, first = 0, count = batch.count - first) => {
        for (let j = first; j < first + count; j++) times.push(batch.timeUs[j]);
        handed += count;
        return e.processFrames!(batch, out, first, count);
      };
    w.close = async () => {
      log.push(`${name} closed after ${handed}`);
      return e.close();
    };
    return w;
  };
}

async function timesOf(path: string): Promise<number[]> {
  const t: number[] = [];
  for await (const r of readCapture(path)) t.push(r.timeUs);
  return t;
}

describe('replay timeline events', () => {
  for (const [what, path] of [
    ['two-sided', TWO_SIDED],
    ['one-sided', ONE_SIDED],
  ] as const) {
    it(`${what}: an event sees exactly the packets before its time (model and core, chunks of 3)`, async () => {
      const capture = await timesOf(path);
      expect(capture.length).toBeGreaterThan(6);
      // Between packets 2 and 3, exactly at packet 5's time, and after the end.
      const at = [capture[2] - 1, capture[5], capture[capture.length - 1] + 1e6];
      const log: string[] = [];
      const times: Record<string, number[]> = { model: [], core: [] };
      const seen: string[] = [];
      const events: ReplayEvent[] = at.map((timeUs, x) => ({
        timeUs,
        apply: async (_e, name) => {
          const before = times[name].filter((t) => t < timeUs).length;
          seen.push(`${name} event ${x}: ${times[name].length} handed, ${before} before`);
          expect(times[name].every((t) => t < timeUs)).toBe(true);
        },
      }));
      const factories: Record<string, EngineFactory> = {
        model: logged(log, times.model),
        core: logged(log, times.core),
      };
      const out = await runReplay({
        input: path,
        outDir: null,
        scenario,
        scenarioHow: 'test',
        engines: ['model', 'core'],
        chunkSize: 3,
        events,
        engineFactory: (n, s, o) => factories[n](n, s, o),
      });
      expect(out.report.exitCode).toBe(0);
      // Every record of these captures is fed: an event sees every packet before its time.
      expect(out.report.input.fed).toBe(capture.length);
      for (const name of ['model', 'core']) {
        expect(seen.filter((l) => l.startsWith(name))).toEqual(
          at.map((t, x) => {
            const n = capture.filter((c) => c < t).length;
            return `${name} event ${x}: ${n} handed, ${n} before`;
          }),
        );
      }
      expect(seen.filter((l) => l.startsWith('model'))).toEqual(
        seen.filter((l) => l.startsWith('core')).map((l) => l.replace('core', 'model')),
      );
      // Same results as without events (the events here change nothing).
      const plain = await runReplay({
        input: path,
        outDir: null,
        scenario,
        scenarioHow: 'test',
        engines: ['model', 'core'],
        chunkSize: 3,
      });
      expect(out.report.engines.map((e) => ({ ...e, engineMs: 0 }))).toEqual(
        plain.report.engines.map((e) => ({ ...e, engineMs: 0 })),
      );
    });
  }

  it('refuses events out of time order', async () => {
    const noop = async () => undefined;
    await expect(
      runReplay({
        input: TWO_SIDED,
        outDir: null,
        scenario,
        scenarioHow: 'test',
        engines: ['model'],
        events: [
          { timeUs: 2, apply: noop },
          { timeUs: 1, apply: noop },
        ],
      }),
    ).rejects.toThrow(/time order/);
  });
});
