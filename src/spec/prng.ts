// The deterministic stand-in for the kernel's get_random_u16() in the NAT port search
// (nf_nat_l4proto_unique_tuple): mulberry32. The model and the core draw from the same generator,
// seeded the same way, so with one core worker both engines pick the same ports in the same order —
// including whether a random search of a nearly exhausted range finds a free port at all (a
// difference no renaming can explain). The core keeps the state in shared memory (layout.ts ctl).

/** Added to the state before each draw. */
export const PRNG_INCREMENT = 0x6d2b79f5;

/** The generator's state for `seed` (uint32). Worker w of the core is seeded with seed + w. */
export function prngInitialState(seed: number): number {
  return ((seed >>> 0) ^ 0x9e3779b9) >>> 0;
}

/** The uint32 drawn from an (already advanced) state; int32 or uint32 views of it give the same. */
export function prngOutput(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
