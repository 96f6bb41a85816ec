// Hand-written SVG charts of a benchmark report (no chart library): throughput vs sessions per
// worker count, and scaling with workers. Plain SVG 1.1 with inline styles, so any browser (and
// GitHub's Markdown view) shows them.
import type { BenchReport } from './suite.ts';
import { type Figure, sessionsLabel } from './figures.ts';
import { referencesFor } from './references.ts';
import { latencyResults } from './report.ts';

const W = 720;
const H = 420;
const M = { l: 70, r: 190, t: 66, b: 60 };
/** Inset of the first and last x positions from the plot's edges. */
const X_PAD = 36;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function ticks(max: number): number[] {
  const step = max / 5;
  return [0, 1, 2, 3, 4, 5].map((k) => k * step);
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (v < 0.01) return v.toPrecision(1);
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2).replace(/0$/, '').replace(/\.0$/, '');
}

/** A labelled horizontal line across the plot (a target or an anchor's published figure). */
interface RefLine {
  y: number;
  label: string;
  color: string;
}

const TARGET_COLOR = '#b00020';
const ANCHOR_COLOR = '#6a5acd';

interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  /** Dotted instead of dashed (reference series). */
  dotted?: boolean;
  /** Leave out of the legend. */
  noLegend?: boolean;
  points: Array<{ x: number; y: number; lo?: number; hi?: number }>;
}

function chart(
  title: string,
  subtitle: string[],
  xLabel: string,
  yLabel: string,
  xs: Array<{ v: number; label: string }>,
  series: Series[],
  yMaxHint = 0,
  refs: RefLine[] = [],
  logY = false,
): string {
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const ys = [...refs.map((r) => r.y), ...series.flatMap((s) => s.points.map((p) => Math.max(p.y, p.hi ?? 0)))];
  const yMax = logY
    ? 10 ** Math.ceil(Math.log10(Math.max(...ys.filter((y) => y > 0), 1e-9)))
    : niceMax(Math.max(yMaxHint, ...ys));
  // Log scale: whole decades from the smallest positive value's to the largest's.
  const yMin = logY
    ? Math.min(yMax / 10, 10 ** Math.floor(Math.log10(Math.min(...ys.filter((y) => y > 0), yMax / 10))))
    : 0;
  const xi = new Map(xs.map((x, i) => [x.v, i]));
  const xPos = (v: number) =>
    M.l + (xs.length === 1 ? pw / 2 : X_PAD + ((xi.get(v) ?? 0) * (pw - 2 * X_PAD)) / (xs.length - 1));
  const yPos = logY
    ? (v: number) => M.t + ph - (Math.log10(Math.max(yMin, v) / yMin) / Math.log10(yMax / yMin)) * ph
    : (v: number) => M.t + ph - (Math.max(0, v) / yMax) * ph;
  const yTicks = logY
    ? Array.from({ length: Math.round(Math.log10(yMax / yMin)) + 1 }, (_, k) => yMin * 10 ** k)
    : ticks(yMax);
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  o.push(`<title>${esc(title)}</title>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="${M.l}" y="22" font-size="15" font-weight="bold" fill="#222">${esc(title)}</text>`);
  subtitle.forEach((line, i) =>
    o.push(`<text x="${M.l}" y="${39 + i * 14}" font-size="11" fill="#666">${esc(line)}</text>`),
  );
  for (const t of yTicks) {
    const y = yPos(t).toFixed(1);
    o.push(`<line x1="${M.l}" y1="${y}" x2="${M.l + pw}" y2="${y}" stroke="#e5e5e5" stroke-width="1"/>`);
    o.push(
      `<text x="${M.l - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${tickLabel(t)}</text>`,
    );
  }
  for (const x of xs) {
    const px = xPos(x.v).toFixed(1);
    o.push(`<line x1="${px}" y1="${M.t + ph}" x2="${px}" y2="${M.t + ph + 5}" stroke="#444"/>`);
    o.push(`<text x="${px}" y="${M.t + ph + 19}" text-anchor="middle" fill="#444">${esc(x.label)}</text>`);
  }
  o.push(`<line x1="${M.l}" y1="${M.t + ph}" x2="${M.l + pw}" y2="${M.t + ph}" stroke="#444"/>`);
  o.push(`<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${M.t + ph}" stroke="#444"/>`);
  o.push(`<text x="${M.l + pw / 2}" y="${H - 14}" text-anchor="middle" fill="#222">${esc(xLabel)}</text>`);
  o.push(
    `<text x="18" y="${M.t + ph / 2}" text-anchor="middle" fill="#222" transform="rotate(-90 18 ${M.t + ph / 2})">${esc(yLabel)}</text>`,
  );
  // Reference lines: dashed, labelled at the right end inside the plot, label above the line.
  // Lines whose labels would overlap take turns at the left and right ends.
  let lastY = -Infinity;
  let left = false;
  [...refs]
    .sort((a, b) => a.y - b.y)
    .forEach((r) => {
      const y = yPos(r.y);
      left = Math.abs(lastY - y) < 13 ? !left : false;
      lastY = y;
      o.push(
        `<line x1="${M.l}" y1="${y.toFixed(1)}" x2="${M.l + pw}" y2="${y.toFixed(1)}" stroke="${r.color}" stroke-width="1.2" stroke-dasharray="2 3" class="ref"/>`,
      );
      const lx = left ? M.l + 4 : M.l + pw - 4;
      const ly = left ? y + 12 : y - 4;
      o.push(
        `<text x="${lx}" y="${ly.toFixed(1)}" text-anchor="${left ? 'start' : 'end'}" font-size="10.5" fill="${r.color}" class="ref-label">${esc(`${r.label} (${tickLabel(r.y)})`)}</text>`,
      );
    });
  let legendRow = 0;
  series.forEach((s) => {
    const pts = s.points.filter((p) => Number.isFinite(p.y) && xi.has(p.x));
    if (pts.length === 0) return;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${xPos(p.x).toFixed(1)},${yPos(p.y).toFixed(1)}`).join(' ');
    const dash = s.dotted ? ' stroke-dasharray="2 3"' : s.dashed ? ' stroke-dasharray="6 4"' : '';
    o.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const p of pts) {
      const px = xPos(p.x).toFixed(1);
      if (p.lo !== undefined && p.hi !== undefined && Number.isFinite(p.lo) && Number.isFinite(p.hi)) {
        o.push(
          `<line x1="${px}" y1="${yPos(p.lo).toFixed(1)}" x2="${px}" y2="${yPos(p.hi).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`,
        );
        for (const v of [p.lo, p.hi])
          o.push(
            `<line x1="${(xPos(p.x) - 4).toFixed(1)}" y1="${yPos(v).toFixed(1)}" x2="${(xPos(p.x) + 4).toFixed(1)}" y2="${yPos(v).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`,
          );
      }
      if (s.dotted)
        o.push(
          `<text x="${px}" y="${(yPos(p.y) - 6).toFixed(1)}" text-anchor="middle" font-size="10" fill="${s.color}">${tickLabel(p.y)}</text>`,
        );
      else if (!s.dashed)
        o.push(
          `<circle cx="${px}" cy="${yPos(p.y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}: ${tickLabel(p.y)}`)}</title></circle>`,
        );
    }
    if (s.noLegend) return;
    const ly = M.t + 10 + legendRow++ * 20;
    const lx = M.l + pw + 18;
    o.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    o.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle" fill="#222">${esc(s.name)}</text>`);
  });
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

function coreFig(r: BenchReport, re: RegExp): Figure[] {
  return r.figures.filter((f) => f.engine === 'core' && re.test(f.id));
}

/** Throughput (Mpps) vs established sessions, one line per worker count, min–max bars. */
export function throughputChart(r: BenchReport): string | null {
  const figs = coreFig(r, /^established\/sessions=\d+\/workers=\d+\/mpps$/);
  if (figs.length === 0) return null;
  const sessions = [...new Set(figs.map((f) => f.sessions!))].sort((a, b) => a - b);
  const workers = [...new Set(figs.map((f) => f.workers!))].sort((a, b) => a - b);
  const series: Series[] = workers.map((w, k) => ({
    name: `core, ${w} worker${w > 1 ? 's' : ''}`,
    color: COLORS[k % COLORS.length],
    points: figs.filter((f) => f.workers === w).map((f) => ({ x: f.sessions!, y: f.median, lo: f.min, hi: f.max })),
  }));
  const model = r.figures.filter((f) => /^established\/sessions=\d+\/model\/mpps$/.test(f.id));
  if (model.length)
    series.push({
      name: 'reference model',
      color: '#7f7f7f',
      points: model.map((f) => ({ x: f.sessions!, y: f.median, lo: f.min, hi: f.max })),
    });
  // Targets and anchors per session count: dotted, each point labelled with its value.
  const refs: RefLine[] = [];
  for (const ref of referencesFor('Mpps')) {
    const color = ref.kind === 'target' ? TARGET_COLOR : ANCHOR_COLOR;
    if (ref.bySessions) {
      const pts = ref.bySessions
        .filter((p) => sessions.includes(p.sessions))
        .map((p) => ({ x: p.sessions, y: p.value }));
      if (pts.length) series.push({ name: ref.label, color, dotted: true, points: pts });
    } else if (ref.value !== undefined) refs.push({ y: ref.value, label: ref.label, color });
  }
  return chart(
    'Established-flow throughput vs sessions',
    ['64-byte frames, outbound; median of runs, bars min–max; dotted: targets (red), anchors (purple)', machineText(r)],
    'established sessions (log scale)',
    'Mpps',
    sessions.map((s) => ({ v: s, label: sessionsLabel(s) })),
    series,
    0,
    refs,
  );
}

/**
 * Session setup rate against the size of the table it inserts into: the setup workload's runs
 * each add the same number of flows to a growing table, so run k measures inserts into a table of
 * warm-up + k×flows-per-run sessions (x: the middle of each run). One line per worker count,
 * and the target as a labelled line.
 */
export function setupChart(r: BenchReport): string | null {
  const res = r.results.find((x) => x.workload === 'setup' && x.engine === 'core');
  const warm = /after (\d+) warm-up flows/.exec(res?.measured ?? '');
  const perRun = Number((r.parameters as Record<string, unknown>).setupPerRun);
  const figs = r.figures.filter(
    (f) => f.engine === 'core' && /^setup\/(workers=\d+|inline)\/sessions-per-s$/.test(f.id),
  );
  if (!warm || !(perRun > 0) || figs.length === 0) return null;
  const base = Number(warm[1]);
  const runs = Math.max(...figs.map((f) => f.samples.length));
  const xs = Array.from({ length: runs }, (_, k) => base + (k + 0.5) * perRun);
  const kSessions = (n: number) => `${Math.round(n / 1024)}k`;
  const series: Series[] = figs.map((f, k) => ({
    name: f.workers ? `core, ${f.workers} worker${f.workers > 1 ? 's' : ''}` : 'core, 1 thread, no pool',
    color: COLORS[k % COLORS.length],
    points: f.samples.map((v, i) => ({ x: xs[i], y: v / 1000 })),
  }));
  const refs = referencesFor('sessions/s')
    .filter((x) => x.value !== undefined)
    .map((x) => ({ y: x.value! / 1000, label: x.label, color: x.kind === 'target' ? TARGET_COLOR : ANCHOR_COLOR }));
  return chart(
    'Session setup rate vs conntrack table size',
    [
      `every packet a new UDP flow, ${perRun} per run, table ${kSessions(base)} → ${kSessions(base + runs * perRun)}; dotted: target`,
      machineText(r),
    ],
    'sessions in the table during the run',
    'k sessions/s',
    xs.map((x) => ({ v: x, label: kSessions(x) })),
    series,
    0,
    refs,
  );
}

function machineText(r: BenchReport): string {
  const m = r.machine as Record<string, unknown>;
  const busy = r.notes.some((n) => n.includes('machine was busy')) ? ' · machine busy (see README)' : '';
  return `${m.cpu}, ${m.cores} cores, Node ${m.node} · ${r.date.slice(0, 16).replace('T', ' ')} · commit ${m.commit}${busy}`;
}

/** Speedup over one worker (rate(W) / rate(1)) per workload and session count; ideal dashed. */
export function scalingChart(r: BenchReport): string | null {
  const figs = coreFig(
    r,
    /^(established\/sessions=\d+|mixed\/profile=[^/]+|setup)\/workers=\d+\/(mpps|sessions-per-s)$/,
  );
  const workers = [...new Set(figs.map((f) => f.workers!))].sort((a, b) => a - b);
  if (workers.length < 2 || !workers.includes(1)) return null;
  const groups = new Map<string, Figure[]>();
  for (const f of figs) {
    const key = f.id.replace(/\/workers=\d+\/(mpps|sessions-per-s)$/, '');
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const series: Series[] = [
    { name: 'ideal (linear)', color: '#999999', dashed: true, points: workers.map((w) => ({ x: w, y: w })) },
  ];
  let k = 0;
  for (const [key, fs] of groups) {
    const one = fs.find((f) => f.workers === 1);
    if (!one || !(one.median > 0)) continue;
    const name = key.startsWith('established')
      ? `established ${sessionsLabel(fs[0].sessions!)}`
      : key === 'setup'
        ? 'session setup'
        : key.replace('mixed/profile=', 'mixed ');
    series.push({
      name,
      color: COLORS[k++ % COLORS.length],
      points: fs.map((f) => ({
        x: f.workers!,
        y: f.median / one.median,
        lo: f.min / one.median,
        hi: f.max / one.median,
      })),
    });
  }
  return chart(
    'Scaling with worker threads',
    ['speedup over 1 worker (median rate ÷ 1-worker median), bars min–max; dashed: linear', machineText(r)],
    'workers',
    'speedup',
    workers.map((w) => ({ v: w, label: String(w) })),
    series,
    Math.max(...workers),
  );
}

/**
 * Per-batch latency through the worker pool: p50, p99, p99.9 and max of the batch's time from
 * post to completion (µs, log scale), one x position per workload and worker count.
 */
export function latencyChart(r: BenchReport): string | null {
  const lat = latencyResults(r);
  if (lat.length === 0) return null;
  const keys: Array<{ key: 'p50' | 'p99' | 'p999' | 'max'; name: string; dashed?: boolean }> = [
    { key: 'p50', name: 'p50' },
    { key: 'p99', name: 'p99' },
    { key: 'p999', name: 'p99.9' },
    { key: 'max', name: 'max', dashed: true },
  ];
  const series: Series[] = keys.map((k, i) => ({
    name: k.name,
    color: COLORS[i % COLORS.length],
    dashed: k.dashed,
    points: lat.map((x, j) => ({ x: j, y: x.l.batchUs[k.key] })),
  }));
  const batch = lat.map((x) => x.l.packetsPerBatch);
  return chart(
    'Per-batch latency through the worker pool',
    [
      `µs from posting a batch (~${Math.round(Math.min(...batch))}–${Math.round(Math.max(...batch))} packets) to main seeing it complete, over every timed batch; log scale`,
      machineText(r),
    ],
    'workload (established: sessions·workers; setup: workers)',
    'µs per batch (log scale)',
    lat.map((x, j) => ({ v: j, label: x.short })),
    series,
    0,
    [],
    true,
  );
}
