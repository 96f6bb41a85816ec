// Bob Jenkins' lookup3 word hash as the kernel has it (include/linux/jhash.h: jhash2,
// __jhash_mix, __jhash_final, JHASH_INITVAL), and the one place natlab needs it: the address a
// SNAT/DNAT range picks (find_best_ips_proto in net/netfilter/nf_nat_core.c, docs/semantics.md §8).
// 32-bit integer arithmetic throughout (`| 0`, `>>> 0`): no allocation, usable on the hot path.

/** JHASH_INITVAL: an arbitrary value ("the golden ratio" in lookup2, 0xdeadbeef in lookup3). */
export const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/**
 * jhash2(k, length, initval) over `length` 32-bit words of `k` starting at `off`; the result as
 * an unsigned 32-bit number. Words are the values the kernel loads (on a little-endian CPU an
 * address's bytes in network order read as a u32 are the byte-swapped number: see bswap32).
 */
export function jhash2(k: ArrayLike<number>, off: number, length: number, initval: number): number {
  let a = (JHASH_INITVAL + (length << 2) + initval) | 0;
  let b = a;
  let c = a;
  let n = length;
  let i = off;
  // Bounded: n decreases by 3 each round.
  while (n > 3) {
    a = (a + k[i]) | 0;
    b = (b + k[i + 1]) | 0;
    c = (c + k[i + 2]) | 0;
    // __jhash_mix
    a = (a - c) | 0;
    a ^= rol32(c, 4);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rol32(a, 6);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rol32(b, 8);
    b = (b + a) | 0;
    a = (a - c) | 0;
    a ^= rol32(c, 16);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rol32(a, 19);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rol32(b, 4);
    b = (b + a) | 0;
    n -= 3;
    i += 3;
  }
  if (n === 0) return c >>> 0;
  if (n === 3) c = (c + k[i + 2]) | 0;
  if (n >= 2) b = (b + k[i + 1]) | 0;
  a = (a + k[i]) | 0;
  // __jhash_final
  c ^= b;
  c = (c - rol32(b, 14)) | 0;
  a ^= c;
  a = (a - rol32(c, 11)) | 0;
  b ^= a;
  b = (b - rol32(a, 25)) | 0;
  c ^= b;
  c = (c - rol32(b, 16)) | 0;
  a ^= c;
  a = (a - rol32(c, 4)) | 0;
  b ^= a;
  b = (b - rol32(a, 14)) | 0;
  c ^= b;
  c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

/** The u32 a little-endian CPU loads from an IPv4 address stored in network order. */
export function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/** reciprocal_scale(val, ep_ro): ⌊val × ep_ro / 2^32⌋ for u32 operands, exactly (no 64-bit product in a double). */
export function reciprocalScale(val: number, epRo: number): number {
  const v = val >>> 0;
  const d = epRo >>> 0;
  const hi = v >>> 16;
  const lo = v & 0xffff;
  return Math.floor((hi * d + Math.floor((lo * d) / 65536)) / 65536) >>> 0;
}

/** Scratch for natRangeAddress: union nf_inet_addr of the tuple's source (IPv4: one word, three zero). */
const SRC_WORDS = new Uint32Array(4);

/**
 * find_best_ips_proto for IPv4 with a range of more than one address: the address of [lo, hi]
 * (host order) for the tuple's source `src` and destination `dst` (host order, the tuple as the
 * hook sees it: original source, destination after any earlier DNAT). jhash2 over the 4 words of
 * the source's union nf_inet_addr with initval = the destination word (zone 0), or 0 with
 * `--persistent`; then lo + reciprocal_scale(hash, hi - lo + 1). Little-endian kernel (x86-64, arm64).
 */
export function natRangeAddress(src: number, dst: number, lo: number, hi: number, persistent: boolean): number {
  SRC_WORDS[0] = bswap32(src);
  SRC_WORDS[1] = 0;
  SRC_WORDS[2] = 0;
  SRC_WORDS[3] = 0;
  const j = jhash2(SRC_WORDS, 0, 4, persistent ? 0 : bswap32(dst) | 0);
  const dist = ((hi >>> 0) - (lo >>> 0) + 1) >>> 0;
  return ((lo >>> 0) + reciprocalScale(j, dist)) >>> 0;
}
