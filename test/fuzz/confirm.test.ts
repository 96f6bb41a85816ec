// Confirmation re-runs (FuzzOptions.confirmRuns): a failure is re-run on fresh engines before it
// counts. One that the re-runs do not meet again (a real-clock engine's timing) is reported as
// unreproduced and the campaign goes on; one they meet again stops the campaign as before.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFuzz, type FuzzEngineSpec } from '../../src/diff/fuzz/fuzz.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import type { Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { PROTO_UDP } from '../../src/packet/constants.ts';

/**
 * The model with a planted bug (UDP to the internet keeps a stale checksum) while `bug.armed`;
 * `bug.once` disarms it when the first engine that applied it closes — a failure that happens once
 * and never again, like a packet the kernel met late.
 */
function withBug(inner: Engine, bug: { armed: boolean; once: boolean }): Engine {
  let applied = false;
  return {
    name: 'buggy',
    async process(batch: readonly InputPacket[]): Promise<PacketResult[]> {
      const rs = await inner.process(batch);
      if (!bug.armed) return rs;
      return rs.map((r) => ({
        ...r,
        outputs: r.outputs.map((o) => {
          const f = o.frame;
          const ihl = (f[0] & 15) << 2;
          if (
            o.egress !== POINT_INTERNET ||
            f[9] !== PROTO_UDP ||
            f.length < ihl + 8 ||
            (f[ihl + 6] | f[ihl + 7]) === 0
          )
            return o;
          applied = true;
          const c = f.slice();
          c[ihl + 7] ^= 0x01;
          return { egress: o.egress, frame: c };
        }),
      }));
    },
    advance: (t) => inner.advance(t),
    conntrack: () => inner.conntrack(),
    natCounters: () => inner.natCounters(),
    close: async () => {
      if (applied && bug.once) bug.armed = false;
      await inner.close();
    },
  };
}

const model: FuzzEngineSpec = {
  name: 'model',
  create: (s: Scenario, seed: number) => makeEngine('model', s, { seed }),
};
const buggy = (bug: { armed: boolean; once: boolean }): FuzzEngineSpec => ({
  name: 'buggy',
  create: async (s: Scenario, seed: number) => withBug(await makeEngine('model', s, { seed }), bug),
});

describe('confirmation re-runs', () => {
  it('a failure its re-runs do not meet again is reported unreproduced, saved, and the campaign goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-confirm-'));
    try {
      const bug = { armed: true, once: true };
      const rep = await runFuzz({
        engines: [model, buggy(bug)],
        seed: 7,
        runs: 40,
        saveDir: dir,
        shrinkTimeS: 2,
        confirmRuns: 3,
      });
      expect(bug.armed, 'the planted bug never fired').toBe(false);
      expect(rep.failure).toBeNull();
      expect(rep.runs).toBe(40);
      expect(rep.unreproduced).toHaveLength(1);
      const u = rep.unreproduced[0];
      expect(u.confirmation).toEqual({ runs: 3, failed: 0 });
      expect(u.differences.length).toBeGreaterThan(0);
      expect(u.savedTo).toMatch(/unreproduced-/);
      expect(existsSync(join(u.savedTo!, 'inputs.json'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a failure its re-runs meet again stops the campaign', async () => {
    const bug = { armed: true, once: false };
    const rep = await runFuzz({
      engines: [model, buggy(bug)],
      seed: 7,
      runs: 40,
      saveDir: null,
      shrinkTimeS: 5,
      confirmRuns: 3,
    });
    expect(rep.failure).not.toBeNull();
    expect(rep.failure!.confirmation).toEqual({ runs: 3, failed: 3 });
    expect(rep.unreproduced).toEqual([]);
    expect(rep.runs).toBeLessThan(40);
  }, 60_000);

  it('engines on a virtual clock are not re-run by default', async () => {
    const rep = await runFuzz({
      engines: [model, buggy({ armed: true, once: false })],
      seed: 7,
      runs: 40,
      saveDir: null,
      shrinkTimeS: 2,
    });
    expect(rep.failure).not.toBeNull();
    expect(rep.failure!.confirmation).toBeUndefined();
  }, 60_000);
});
