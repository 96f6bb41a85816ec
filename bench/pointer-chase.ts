// This machine's dependent-load latency over a working set of a given size: a pointer chase
// through one word per 64-byte cache line, in a random cyclic order (each load's address is the
// previous load's value, so no two loads overlap and the prefetchers cannot guess the next line).
// `natlab bench` measures it at each established table's size and divides the CPU time per
// packet by it: "loads per packet" says how many fully dependent cache misses one packet costs,
// i.e. how close the fast path is to the memory limit (docs/benchmarks.md).

const LINE_WORDS = 16; // 64-byte lines of 4-byte words

/** The chase's array: one link per cache line of `bytes` (at least 4 KiB), a single random cycle. */
function buildCycle(bytes: number, seed: number): Int32Array {
  const lines = Math.max(64, Math.floor(bytes / 64));
  const a = new Int32Array(lines * LINE_WORDS);
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  let x = seed | 0 || 1;
  for (let i = lines - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (let k = 0; k < lines; k++) a[order[k] * LINE_WORDS] = order[(k + 1) % lines] * LINE_WORDS;
  return a;
}

function chase(a: Int32Array, loads: number): number {
  let p = 0;
  for (let k = 0; k < loads; k++) p = a[p];
  return p;
}

export interface ChaseResult {
  /** Working-set bytes. */
  bytes: number;
  /** CPU ns per dependent load: median of the runs. */
  nsPerLoad: number;
  runsNs: number[];
}

/**
 * Dependent-load latency over `bytes` of memory: `runs` timed chases of `loads` loads each after
 * one warm-up pass over the whole cycle; CPU time of this process (the machine may be shared).
 */
export function dependentLoadNs(bytes: number, runs = 3, loads = 2_000_000): ChaseResult {
  const a = buildCycle(bytes, 0x2545f491);
  let sink = chase(a, a.length / LINE_WORDS); // touch every line once (page faults, TLB)
  const runsNs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const cpu = process.cpuUsage();
    sink ^= chase(a, loads);
    const u = process.cpuUsage(cpu);
    runsNs.push(((u.user + u.system) * 1000) / loads);
  }
  if (sink === 0x7fffffff) runsNs.push(0); // keeps the chase observable (never true: links are line offsets)
  const sorted = [...runsNs].sort((x, y) => x - y);
  return { bytes, nsPerLoad: sorted[Math.floor(sorted.length / 2)], runsNs };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  for (const mb of [0.0625, 0.5, 4, 16, 64, 256]) {
    const r = dependentLoadNs(mb * 1048576);
    console.log(`${String(mb).padStart(7)} MiB: ${r.nsPerLoad.toFixed(1)} ns per dependent load`);
  }
}
