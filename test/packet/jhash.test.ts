// jhash2 (include/linux/jhash.h, lookup3's hashword) and find_best_ips_proto's address choice
// (issue 15 K7). Vectors: lookup3's (no words: the initial value) and the kernel header's macros
// compiled with gcc (uint32_t, -O2) on the words below; the addresses the Linux kernel itself
// chooses are the model-vs-kernel case "SNAT --to-source range" (test/oracle/cases.ts).
import { describe, expect, it } from 'vitest';
import { bswap32, jhash2, natRangeAddress, reciprocalScale } from '../../src/packet/jhash.ts';
import { parseIpv4Addr as A } from '../../src/packet/addr.ts';

describe('jhash2', () => {
  it('of no words is JHASH_INITVAL + initval (lookup3 hashword)', () => {
    expect(jhash2([], 0, 0, 0)).toBe(0xdeadbeef);
    expect(jhash2([], 0, 0, 0xdeadbeef)).toBe((0xdeadbeef * 2) >>> 0);
  });

  it("matches the kernel's jhash2 compiled from include/linux/jhash.h", () => {
    expect(jhash2([1, 2, 3, 4], 0, 4, 0)).toBe(1716064838);
    expect(jhash2([0x0a01000a, 0, 0, 0], 0, 4, 0x07643cc6)).toBe(4266885876);
    expect(jhash2([0xdeadbeef, 1, 2], 0, 3, 7)).toBe(1196590774);
    expect(jhash2([42], 0, 1, 0)).toBe(2069814598);
    expect(jhash2([1, 2, 3, 4, 5, 6, 7], 0, 7, 99)).toBe(2667429806);
  });

  it('depends on every word, the length and the initval, and stays a u32', () => {
    const base = jhash2([1, 2, 3, 4], 0, 4, 0);
    expect(base).toBeGreaterThanOrEqual(0);
    expect(base).toBeLessThan(2 ** 32);
    for (let w = 0; w < 4; w++) {
      const k = [1, 2, 3, 4];
      k[w] ^= 1;
      expect(jhash2(k, 0, 4, 0)).not.toBe(base);
    }
    expect(jhash2([1, 2, 3, 4], 0, 4, 1)).not.toBe(base);
    expect(jhash2([1, 2, 3, 4, 0], 0, 5, 0)).not.toBe(base);
    // An offset into a longer array reads the same words.
    expect(jhash2([9, 9, 1, 2, 3, 4], 2, 4, 0)).toBe(base);
  });

  it('reciprocal_scale is the exact high word of a 64-bit product', () => {
    expect(reciprocalScale(0xffffffff, 0xffffffff)).toBe(0xfffffffe);
    expect(reciprocalScale(0x80000000, 16)).toBe(8);
    expect(reciprocalScale(0x7fffffff, 16)).toBe(7);
    expect(reciprocalScale(123456789, 0)).toBe(0);
    for (const [v, d] of [
      [0xdeadbeef, 1000],
      [0x12345678, 0xfffffff],
      [0xfedcba98, 3],
    ])
      expect(reciprocalScale(v, d)).toBe(Number((BigInt(v) * BigInt(d)) >> 32n));
  });

  it('bswap32 is the little-endian load of a network-order address', () => {
    expect(bswap32(A('10.0.1.10'))).toBe(0x0a01000a);
    expect(bswap32(0x01020304)).toBe(0x04030201);
  });
});

describe('natRangeAddress (find_best_ips_proto)', () => {
  it('stays inside the range, one address maps to itself, --persistent ignores the destination', () => {
    const lo = A('10.0.0.10');
    const hi = A('10.0.0.25');
    const seen = new Set<number>();
    for (let s = 0; s < 64; s++) {
      const a = natRangeAddress(A('10.0.1.0') + s, A('198.51.100.7'), lo, hi, false);
      expect(a).toBeGreaterThanOrEqual(lo);
      expect(a).toBeLessThanOrEqual(hi);
      seen.add(a);
    }
    expect(seen.size).toBeGreaterThan(8);
    expect(natRangeAddress(A('10.0.1.10'), A('1.2.3.4'), lo, lo, false)).toBe(lo);
    const p = (d: string) => natRangeAddress(A('10.0.1.10'), A(d), lo, hi, true);
    expect(new Set(['198.51.100.7', '198.51.100.8', '203.0.113.1'].map(p)).size).toBe(1);
  });
});
