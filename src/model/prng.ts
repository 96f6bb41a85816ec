// A small seeded PRNG (mulberry32) for the kernel's get_random_u16() in the NAT port search, so
// the model is deterministic per seed.

export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = (seed >>> 0) ^ 0x9e3779b9;
  }

  /** Uniform uint32. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** get_random_u16(). */
  u16(): number {
    return this.next() & 0xffff;
  }
}
