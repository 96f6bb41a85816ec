// Per-batch latency of the worker pool (`natlab bench`): the time from posting a batch's first
// descriptor to main seeing its last share complete, recorded into preallocated typed arrays (one
// performance.now() at the post and one at the completion per batch; no allocation in the timed
// loop), and its percentiles as CSIT and RFC 8219-style latency reports give them (p50, p99,
// p99.9, max). Batch-normalised cost: that time divided by the batch's packets (ns per packet).

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LatencyStats {
  /** Batches recorded (p99.9 differs from max only from 1000 batches on). */
  batches: number;
  /** Mean packets per batch. */
  packetsPerBatch: number;
  /** µs from posting a batch to main seeing it complete (includes queueing behind the batches in flight). */
  batchUs: Percentiles;
  /** batchUs × 1000 ÷ packets of that batch: batch-normalised cost, ns per packet. */
  nsPerPacket: Percentiles;
}

/** Nearest-rank percentile of an ascending array (q in (0, 1]). */
export function nearestRank(sorted: Float64Array, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
}

export function percentiles(xs: Float64Array): Percentiles {
  const s = Float64Array.from(xs).sort();
  return { p50: nearestRank(s, 0.5), p99: nearestRank(s, 0.99), p999: nearestRank(s, 0.999), max: nearestRank(s, 1) };
}

/** Fixed-capacity recorder: batches beyond the capacity are not recorded (counted in `dropped`). */
export class LatencyRecorder {
  private readonly us: Float64Array;
  private readonly packets: Float64Array;
  private n = 0;
  dropped = 0;

  constructor(capacity: number) {
    this.us = new Float64Array(Math.max(1, capacity));
    this.packets = new Float64Array(Math.max(1, capacity));
  }

  /** One batch of `packets` packets, posted at `postMs` and seen complete at `doneMs` (performance.now()). */
  record(postMs: number, doneMs: number, packets: number): void {
    const i = this.n;
    if (i >= this.us.length) {
      this.dropped++;
      return;
    }
    this.us[i] = (doneMs - postMs) * 1000;
    this.packets[i] = packets;
    this.n = i + 1;
  }

  get count(): number {
    return this.n;
  }

  /** Percentiles of what was recorded, or null when nothing was. */
  stats(): LatencyStats | null {
    const n = this.n;
    if (n === 0) return null;
    const us = this.us.subarray(0, n);
    const ns = new Float64Array(n);
    let pk = 0;
    for (let i = 0; i < n; i++) {
      const p = Math.max(1, this.packets[i]);
      ns[i] = (us[i] * 1000) / p;
      pk += this.packets[i];
    }
    return { batches: n, packetsPerBatch: pk / n, batchUs: percentiles(us), nsPerPacket: percentiles(ns) };
  }
}

/** 'p50 12 / p99 30 / p99.9 41 / max 55 µs' */
export function latencyText(p: Percentiles, unit: string): string {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  return `p50 ${f(p.p50)} / p99 ${f(p.p99)} / p99.9 ${f(p.p999)} / max ${f(p.max)} ${unit}`;
}
