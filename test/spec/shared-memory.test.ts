import { describe, expect, it } from 'vitest';
import { SharedMemoryPool } from '../../src/spec/shared-memory.ts';

describe('SharedMemoryPool', () => {
  it('carves aligned shared regions and copies between them as memmove does', () => {
    const pool = SharedMemoryPool.create(1 << 16, 1 << 20)!;
    expect(pool).not.toBeNull();
    const a = pool.alloc(1000)!;
    const b = pool.alloc(3000)!;
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(pool.addressOf(a) % 64).toBe(0);
    expect(pool.addressOf(b)).toBeGreaterThanOrEqual(pool.addressOf(a) + 1000);
    for (let i = 0; i < a.length; i++) a[i] = (i * 7 + 3) & 0xff;
    // Every length and both alignments of source and destination, as the frames of a capture.
    for (const [from, to, n] of [
      [0, 0, 0],
      [1, 3, 1],
      [5, 16, 40],
      [13, 8, 330],
      [0, 1, 999],
    ]) {
      b.fill(0xee);
      pool.copy(pool.addressOf(b) + to, pool.addressOf(a) + from, n);
      expect(b.subarray(to, to + n)).toEqual(a.subarray(from, from + n));
      if (to > 0) expect(b[to - 1]).toBe(0xee);
      expect(b[to + n]).toBe(0xee);
    }
    // Overlapping, both ways.
    const ref = Array.from(a.subarray(0, 200));
    pool.copy(pool.addressOf(a) + 10, pool.addressOf(a), 100);
    expect(Array.from(a.subarray(10, 110))).toEqual(ref.slice(0, 100));
    pool.copy(pool.addressOf(a), pool.addressOf(a) + 10, 100);
    expect(Array.from(a.subarray(0, 100))).toEqual(ref.slice(0, 100));
  });

  it('grows for larger regions, keeps the earlier ones valid, and says null when full', () => {
    const pool = SharedMemoryPool.create(1 << 16, 1 << 20)!;
    const first = pool.alloc(60_000)!;
    first[0] = 42;
    const big = pool.alloc(500_000)!; // past the initial 64 KiB: the memory grows
    expect(big.length).toBe(500_000);
    expect(first[0]).toBe(42);
    pool.copy(pool.addressOf(big) + 7, pool.addressOf(first), 1);
    expect(big[7]).toBe(42);
    expect(pool.addressOf(first)).toBe(0);
    expect(pool.alloc(1 << 20)).toBeNull(); // beyond the maximum
    expect(pool.addressOf(new Uint8Array(new SharedArrayBuffer(16)))).toBe(-1);
    expect(pool.addressOf(new Uint8Array(16))).toBe(-1);
  });
});
