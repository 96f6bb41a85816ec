// The benchmark report's data model: figures with their raw samples, and the statistics over them.
// Shared by the suite (bench/suite.ts), the terminal table and README (bench/report.ts), the charts
// (bench/svg.ts) and `natlab bench compare`.

export interface Figure {
  /** Stable key across runs, e.g. 'established/sessions=65536/workers=2/mpps'. */
  id: string;
  workload: string;
  /** What is measured, for tables. */
  label: string;
  unit: string;
  /** Median, minimum and maximum over the measured runs (warm-up excluded). */
  median: number;
  min: number;
  max: number;
  /** Raw per-run values (same unit). */
  samples: number[];
  higherIsBetter: boolean;
  workers?: number;
  sessions?: number;
  engine?: 'core' | 'model' | 'kernel' | 'tcpdump';
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function makeFigure(f: Omit<Figure, 'median' | 'min' | 'max'>): Figure {
  const xs = f.samples.filter((x) => Number.isFinite(x));
  return { ...f, median: median(xs), min: xs.length ? Math.min(...xs) : NaN, max: xs.length ? Math.max(...xs) : NaN };
}

/** ns/packet figure from a Mpps figure (the min ns is at the max Mpps). */
export function nsFigure(mpps: Figure): Figure {
  return makeFigure({
    ...mpps,
    id: mpps.id.replace(/mpps$/, 'ns'),
    label: mpps.label.replace(/Mpps/, 'ns/packet'),
    unit: 'ns/packet',
    samples: mpps.samples.map((x) => 1000 / x),
    higherIsBetter: false,
  });
}

/** A derived single-value figure (ratios, bytes/session): min = max = median. */
export function valueFigure(
  f: Omit<Figure, 'median' | 'min' | 'max' | 'samples'> & { value: number; samples?: number[] },
): Figure {
  const { value, ...rest } = f;
  return makeFigure({ ...rest, samples: f.samples ?? [value] });
}

/** Human number: 3 significant digits, thin grouping for big values. */
export function fmt(x: number, unit = ''): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  let s: string;
  if (a >= 1e6 && unit !== 'Mpps') s = `${(x / 1e6).toPrecision(3)} M`;
  else if (a >= 1e4 && unit !== 'Mpps') s = `${(x / 1e3).toPrecision(3)} k`;
  else if (a >= 100) s = x.toFixed(0);
  else if (a >= 10) s = x.toFixed(1);
  else if (a >= 1) s = x.toFixed(2);
  else if (a === 0) s = '0';
  else s = x.toPrecision(2);
  return s.replace(/ $/, '');
}

/** '1k', '64k', '1M' for session counts (powers of two, as the CLI accepts them). */
export function sessionsLabel(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n >> 20}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n >> 10}k`;
  return String(n);
}
