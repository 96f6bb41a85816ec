// The worker pool and its ring without the dataplane: 'probe' workers count each packet they
// process, so exactly-once delivery across batches, pipelining and injected faults is visible.
import { afterAll, describe, expect, it } from 'vitest';
import { CorePool } from '../../src/core/pool.ts';
import {
  FAULT_HOLD,
  FAULT_TERMINATE,
  FAULT_THROW,
  FAULT_THROW_ALWAYS,
  FAULT_THROW_INSIDE,
  COMMIT_IN_FLIGHT,
  inFlightOf,
  OP_ADVANCE,
  OP_PROCESS,
  RING_SLOTS,
  commitWord,
  committedOf,
} from '../../src/core/ring.ts';

const N = 1000;
let pool: CorePool | null = null;
let holdHook: ((w: number) => void) | null = null;

afterAll(async () => {
  await pool?.close();
});

/** Fresh probe counters on a pool (pools are shared across tests: starting threads is the slow part). */
function start(workers: number): { pool: CorePool; probe: Int32Array } {
  // One spare slot past the packets: the probe worker stores each advance's time there.
  const probe = new Int32Array(new SharedArrayBuffer((N + 1) * 4));
  const idx = [0, 1].map(() => {
    const a = new Int32Array(new SharedArrayBuffer(N * 4));
    for (let i = 0; i < N; i++) a[i] = i;
    return a;
  });
  // shared and the frames are not read in probe mode; the index lists are.
  const p = new CorePool({
    workers,
    shared: {} as never,
    mode: 'probe',
    probe,
    faults: true,
    onHold: (w) => holdHook?.(w),
  });
  for (const list of idx) p.register({ batch: {} as never, out: {} as never, idx: list });
  return { pool: p, probe };
}

let shared2: { pool: CorePool; probe: Int32Array } | null = null;
/** The 2-worker pool shared by the tests, with its probe counters zeroed. */
function pool2(): { pool: CorePool; probe: Int32Array } {
  if (shared2 === null) {
    shared2 = start(2);
    pool = shared2.pool;
  }
  shared2.probe.fill(0);
  return shared2;
}

/** Post `batches` batches, each split evenly across the workers, at most two in flight. */
async function run(p: CorePool, batches: number): Promise<void> {
  const W = p.workers;
  const share = Math.ceil(N / W);
  const inflight: number[][] = [];
  for (let b = 0; b < batches; b++) {
    const seqs: number[] = [];
    for (let w = 0; w < W; w++) {
      const first = w * share;
      seqs.push(await p.post(w, OP_PROCESS, b & 1, first, Math.min(share, N - first), 0, b));
    }
    inflight.push(seqs);
    if (inflight.length === 2) {
      const s = inflight.shift()!;
      for (let w = 0; w < W; w++) await p.waitFor(w, s[w]);
    }
  }
  for (const s of inflight) for (let w = 0; w < W; w++) await p.waitFor(w, s[w]);
}

function expectEach(probe: Int32Array, n: number): void {
  const wrong: string[] = [];
  for (let i = 0; i < N; i++) if (probe[i] !== n) wrong.push(`packet ${i}: ${probe[i]}`);
  expect(wrong.slice(0, 5)).toEqual([]);
}

describe('ring commit marker', () => {
  it('binds the committed count to its descriptor', () => {
    expect(committedOf(commitWord(5, 17), 5)).toBe(17);
    expect(committedOf(commitWord(5, 17), 6)).toBe(0);
    expect(committedOf(commitWord(5 + 128, 3), 5)).toBe(3);
    expect(committedOf(commitWord(0x7fffffff, 9), 0x7fffffff)).toBe(9);
    expect(committedOf(0, 1)).toBe(0);
    const inFlight = commitWord(5, 17) | COMMIT_IN_FLIGHT;
    expect(committedOf(inFlight, 5)).toBe(17);
    expect(inFlightOf(inFlight, 5)).toBe(true);
    expect(inFlightOf(inFlight, 6)).toBe(false);
    expect(inFlightOf(commitWord(5, 18), 5)).toBe(false);
  });
});

describe('core pool', () => {
  it('delivers every packet of every batch exactly once, 1 and 2 workers, across ring wrap-around', async () => {
    const one = start(1);
    try {
      await run(one.pool, 3 * RING_SLOTS + 1);
      expectEach(one.probe, 3 * RING_SLOTS + 1);
      expect(one.pool.restarts).toBe(0);
    } finally {
      await one.pool.close();
    }
    const { pool: p, probe } = pool2();
    await run(p, 3 * RING_SLOTS + 1);
    expectEach(probe, 3 * RING_SLOTS + 1);
    expect(p.restarts).toBe(0);
  });

  it('runs advance descriptors on the worker they are posted to, in order, counting no packet', async () => {
    const { pool: p, probe } = pool2();
    const s0 = await p.post(0, OP_ADVANCE, 0, 0, 0, 1234, -1);
    await p.waitFor(0, s0);
    expect(Atomics.load(probe, N)).toBe(1234);
    const s1 = await p.post(1, OP_ADVANCE, 0, 0, 0, 5678, -1);
    await p.waitFor(1, s1);
    expect(Atomics.load(probe, N)).toBe(5678);
    // Queued behind a batch: the advance runs after the batch's packets.
    await run(p, 1);
    const s2 = await p.post(0, OP_ADVANCE, 0, 0, 0, 91011, -1);
    await p.waitFor(0, s2);
    expect(Atomics.load(probe, N)).toBe(91011);
    expectEach(probe, 1);
  });

  it('a worker that throws mid-batch is re-issued and resumes after its last committed packet', async () => {
    const { pool: p, probe } = pool2();
    const restarts = p.restarts;
    const starts = p.starts(1);
    p.armFault(FAULT_THROW, 3, 700); // worker 1's share of batch 3
    await run(p, 6);
    expect(p.faultFired()).toBe(true);
    expect(p.restarts).toBe(restarts + 1);
    expect(p.faultLog.join('\n')).toMatch(/worker 1: injected fault/);
    expect(p.starts(1)).toBe(starts + 1);
    expect(p.interruptedPackets).toBe(0); // it died between packets: the recovery is exact
    expectEach(probe, 6);
  });

  it('a fault inside a packet is recovered and reported as such', async () => {
    const { pool: p, probe } = pool2();
    const before = p.interruptedPackets;
    p.armFault(FAULT_THROW_INSIDE, 1, 600); // worker 1's share [500, 1000): its 101st packet
    await run(p, 3);
    expect(p.interruptedPackets).toBe(before + 1);
    expect(p.faultLog.join('\n')).toMatch(/worker 1: died inside packet 100 of its share of batch 1/);
    expectEach(probe, 3); // the probe counts after the throw point, so the re-run is exact here
  });

  it('a thread terminated mid-batch is replaced and its share completed exactly once', async () => {
    const { pool: p, probe } = pool2();
    const restarts = p.restarts;
    const starts = p.starts(0);
    p.armFault(FAULT_TERMINATE, 2, 123); // worker 0's share
    await run(p, 5);
    expect(p.faultFired()).toBe(true);
    expect(p.restarts).toBe(restarts + 1);
    expect(p.faultLog.join('\n')).toMatch(/worker 0: worker exited/);
    expect(p.starts(0)).toBe(starts + 1);
    expect(p.threadCount).toBe(2);
    expectEach(probe, 5);
  });

  it('holds a worker mid-batch: state written before the held packet is visible, after it is not', async () => {
    const { pool: p, probe } = pool2();
    let seen: number[] | null = null;
    holdHook = (w) => {
      seen = [w, probe[0], probe[399], probe[400], probe[499]];
    };
    const restarts = p.restarts;
    p.armFault(FAULT_HOLD, 1, 400); // worker 0's share [0, 500)
    await run(p, 2);
    holdHook = null;
    expect(seen).toEqual([0, 2, 2, 1, 1]);
    expect(p.restarts).toBe(restarts);
    expectEach(probe, 2);
  });

  it('gives up on a worker that keeps failing at the same packet instead of looping', async () => {
    const one = start(1);
    try {
      one.pool.armFault(FAULT_THROW_ALWAYS, 1, 250);
      await expect(run(one.pool, 3)).rejects.toThrow(
        /core worker 0 failed 4 times without progress .*always throws before packet 250/,
      );
      expect(one.pool.restarts).toBe(3);
      expect(one.probe[249]).toBe(2);
      expect(one.probe[250]).toBe(1); // never processed twice, never processed in batch 1
    } finally {
      await one.pool.close();
    }
  });

  it('close() stops every thread', async () => {
    const { pool: p } = pool2();
    await run(p, 1);
    await p.close();
    expect(p.threadCount).toBe(0);
    await expect(p.post(0, OP_PROCESS, 0, 0, 1, 0, 0)).rejects.toThrow(/closed/);
  });
});
