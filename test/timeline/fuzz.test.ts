// timeline[...] fuzz commands (docs/fuzzing.md): every kind of event the fuzzer picks, applied to
// the model and the core mid-flow, agrees; a session with timeline events saves as a regression
// and replays to the same results.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeEngine } from '../../src/diff/engines.ts';
import { timelineAction } from '../../src/diff/fuzz/commands.ts';
import { loadRegression, replayRegression, saveRegression } from '../../src/diff/fuzz/regressions.ts';
import { DiffSession } from '../../src/diff/fuzz/session.ts';
import { buildTcp, parseIpv4Addr as ip, F_ACK, F_SYN } from '../../src/packet/index.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { scenarioAfter } from '../../src/spec/timeline.ts';
import { parseObject } from '../scenario/helpers.ts';
import { haObject } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'natlab-timeline-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('timeline[...] fuzz commands', () => {
  it('picks each kind when the scenario offers it, and none when it does not', () => {
    const s = parseObject(haObject([]));
    const texts = [0, 1, 2, 3, 4].map((w) => timelineAction(s, w, 0, 2)?.text ?? null);
    expect(texts).toEqual([
      'stopInstance nat',
      null, // nothing is stopped
      'replaceRoute public 0.0.0.0/0 → eni:natb',
      'moveElasticIp nat → app',
      'moveEni nat → natb',
    ]);
    const stopped = scenarioAfter(s, timelineAction(s, 0, 0, 0)!.action);
    expect(timelineAction(stopped, 1, 0, 0)?.text).toBe('startInstance nat');
  });

  it('model and core agree across every kind of event; the session saves and replays as a regression', async () => {
    const s = parseObject(haObject([]));
    const engines = [
      { name: 'model', engine: await makeEngine('model', s, { seed: 3 }) },
      { name: 'core', engine: await makeEngine('core', s, { seed: 3, workers: 0 }) },
    ];
    const session = new DiffSession(s, engines, { throwOnDifference: false });
    let cur = s;
    let sport = 41000;
    const flow = async (): Promise<void> => {
      const p = sport++;
      await session.send(
        2,
        buildTcp({ src: ip('10.0.1.10'), sport: p, dst: ip('198.51.100.7'), dport: 443, flags: F_SYN, seq: 1 }),
      );
      for (const eip of ['203.0.113.10', '203.0.113.11'])
        await session.send(
          POINT_INTERNET,
          buildTcp({
            src: ip('198.51.100.7'),
            sport: 443,
            dst: ip(eip),
            dport: p,
            flags: F_SYN | F_ACK,
            seq: 9,
            ack: 2,
          }),
        );
      await session.send(
        2,
        buildTcp({
          src: ip('10.0.1.10'),
          sport: p,
          dst: ip('198.51.100.7'),
          dport: 443,
          flags: F_ACK,
          seq: 2,
          ack: 10,
        }),
      );
    };
    try {
      await flow();
      for (const [w, a, b] of [
        [2, 0, 2],
        [0, 0, 0],
        [4, 0, 0],
        [3, 1, 0],
        [1, 0, 0],
        [2, 0, 5],
        [2, 0, 4],
      ]) {
        const act = timelineAction(cur, w, a, b);
        if (!act) continue;
        await session.applyTimelineEvent({ at: 0, absolute: false, action: act.action, text: act.text });
        cur = scenarioAfter(cur, act.action);
        await flow();
      }
      await session.finish();
      expect(session.differences.map((d) => d.message)).toEqual([]);
      expect(session.events.filter((e) => e.kind === 'timeline').length).toBeGreaterThanOrEqual(5);
      const saved = saveRegression({
        dir,
        id: 'timeline-kinds',
        scenario: s,
        session,
        meta: { engineSeed: 3, seed: 0, run: 0, runSeed: 0, path: '', commands: [], summary: 'timeline kinds' },
        differences: [],
      });
      const reg = loadRegression(saved);
      const again = [
        { name: 'model', engine: await makeEngine('model', s, { seed: 3 }) },
        { name: 'core', engine: await makeEngine('core', s, { seed: 3, workers: 0 }) },
      ];
      const out = await replayRegression(reg, again);
      expect(out.differences).toEqual([]);
      expect([...out.mismatches.values()].flat()).toEqual([]);
    } finally {
      await session.close();
    }
  });
});
