// Real-clock engines (the kernel) cannot decide an expiry that lands within their lag: the fuzzer's
// clock steps keep clear of every recent packet's timeout boundary, not only the last packet's.
import { describe, expect, it } from 'vitest';
import { clearOfTimeoutBoundaries } from '../../src/diff/fuzz/commands.ts';
import type { SessionEvent } from '../../src/diff/fuzz/session.ts';

function real(timeUs: number, packetTimesUs: number[], timeouts: number[]) {
  const events = packetTimesUs.map(
    (t, index) =>
      ({ kind: 'packet', index, input: { timeUs: t, ingress: 0, frame: new Uint8Array(0) } }) as SessionEvent,
  );
  return { timeoutSteps: () => timeouts, session: { timeUs, events } };
}

describe('clearOfTimeoutBoundaries', () => {
  it('keeps a step that lands away from every boundary', () => {
    expect(clearOfTimeoutBoundaries(real(4_014_000, [4_001_000, 4_014_000], [3]), 1.5)).toBe(1.5);
  });

  it('moves a second step off the expiry of packets sent before the first (seed 880006 run 14)', () => {
    // A flood at 4.001-4.012 s (UDP timeout 3 s), one step of 1.5 s already taken: another 1.5 s
    // would land at 7.014 s, 2-13 ms after the flood's entries expire.
    const flood = Array.from({ length: 12 }, (_, i) => 4_001_000 + i * 1000);
    const step = clearOfTimeoutBoundaries(real(5_514_000, [...flood, 4_014_000], [3]), 1.5);
    const at = 5_514_000 + step * 1e6;
    for (const p of flood) expect(Math.abs(at - (p + 3e6))).toBeGreaterThanOrEqual(500_000);
    expect(step).toBeGreaterThan(1.5);
    expect(step).toBeLessThanOrEqual(2.5);
  });

  it('is bounded when no clear landing exists (dense boundaries): returns after 40 tries', () => {
    const dense = Array.from({ length: 200 }, (_, i) => i * 100_000);
    const step = clearOfTimeoutBoundaries(real(20_000_000, dense, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 0.5);
    expect(step).toBeGreaterThanOrEqual(0.5);
    expect(step).toBeLessThanOrEqual(0.5 + 40 * 0.25);
  });
});
