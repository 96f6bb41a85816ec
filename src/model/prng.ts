// A seeded PRNG for the kernel's get_random_u16() in the NAT port search, so the model is
// deterministic per seed (the generator is src/spec/prng.ts, shared with the core).

import { PRNG_INCREMENT, prngInitialState, prngOutput } from '../spec/prng.ts';

export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = prngInitialState(seed);
  }

  /** Uniform uint32. */
  next(): number {
    this.state = (this.state + PRNG_INCREMENT) >>> 0;
    return prngOutput(this.state);
  }

  /** get_random_u16(). */
  u16(): number {
    return this.next() & 0xffff;
  }
}
