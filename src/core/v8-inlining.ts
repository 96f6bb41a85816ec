// V8's inlining budget for the core's code (docs/core.md "Session 7").
//
// TurboFan inlines a call only while the bytecode it has already inlined into the function being
// optimised stays under --max-inlined-bytecode-size-cumulative (920 bytes by default). The slow
// path is a chain of mid-sized methods (the walk, the NAT hooks, the port search, confirm, the
// flow-table probes), each calling several others: with the default budget most of the chain
// stays real calls — every one a frame, its arguments tagged (a 32-bit address or ports word at
// or above 2^31 boxed as a heap number, ~125 bytes of garbage per new flow) and the callee's
// loads of `this` fields repeated. With a budget of CORE_INLINE_BUDGET the port search inlines its
// lookups, confirm its inserts and the bysource link, the NAT hook its rewrites, the walk the IGW:
// session setup measured ×1.15–1.25 less CPU per new flow, the established fast path unchanged.
// The price is compile time (the first ~100k setups of a fresh thread cost ~10–20 % more CPU).
//
// V8 flags are per process: this raises the budget for every isolate of the process (the core's
// workers and the main thread) once, before the core's code is compiled. A budget given on the
// command line (node --max-inlined-bytecode-size-cumulative=N, or NODE_OPTIONS) is kept.

import { setFlagsFromString } from 'node:v8';

/** The cumulative inlining budget (bytes of bytecode) the core runs with. */
export const CORE_INLINE_BUDGET = 4000;

const FLAG = '--max-inlined-bytecode-size-cumulative';

let applied = false;

/** Raises V8's cumulative inlining budget to CORE_INLINE_BUDGET (once per process; an explicit flag wins). */
export function raiseInliningBudget(): void {
  if (applied) return;
  applied = true;
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((a) => a.startsWith(FLAG) || a.startsWith(FLAG.replace(/-/g, '_')))) return;
  setFlagsFromString(`${FLAG}=${CORE_INLINE_BUDGET}`);
}
