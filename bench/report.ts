// Rendering of a benchmark report: the terminal table, results/README.md (with the charts), and
// `natlab bench compare` (change per figure with a noise-aware verdict).
import { readFile } from 'node:fs/promises';
import { InputError } from '../src/spec/errors.ts';
import type { BenchReport, WorkloadResult } from './suite.ts';
import { type Figure, fmt, sessionsLabel } from './figures.ts';
import { REFERENCES } from './references.ts';
import type { LatencyStats } from './latency.ts';

function find(r: BenchReport, id: string): Figure | undefined {
  return r.figures.find((f) => f.id === id);
}

function range(f: Figure | undefined): string {
  if (!f) return '–';
  if (f.samples.length <= 1 || f.min === f.max) return fmt(f.median, f.unit);
  return `${fmt(f.median, f.unit)} (${fmt(f.min, f.unit)}–${fmt(f.max, f.unit)})`;
}

function val(f: Figure | undefined): string {
  return f ? fmt(f.median, f.unit) : '–';
}

/** Plain text table (monospace), or Markdown when md = true. */
function table(head: string[], rows: string[][], md: boolean): string {
  if (md) {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    return [
      `| ${head.map(esc).join(' | ')} |`,
      `| ${head.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
      ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
    ].join('\n');
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export interface Section {
  title: string;
  head: string[];
  rows: string[][];
  /** Input description and what is measured. */
  about: string[];
}

function firstResult(r: BenchReport, pred: (x: WorkloadResult) => boolean): WorkloadResult | undefined {
  return r.results.find(pred);
}

/** Core results through the pool that carry per-batch latency, with a short label each (older results have none). */
export function latencyResults(r: BenchReport): Array<{ label: string; short: string; l: LatencyStats }> {
  return r.results
    .filter((x) => x.engine === 'core' && x.workers && x.latency)
    .map((x) => ({
      label:
        x.workload === 'established'
          ? `established ${sessionsLabel(x.sessions ?? 0)}, ${x.workers}w`
          : `${x.workload}, ${x.workers}w`,
      short:
        x.workload === 'established'
          ? `${sessionsLabel(x.sessions ?? 0)}·${x.workers}w`
          : `${x.workload}·${x.workers}w`,
      l: x.latency!,
    }));
}

/** The report's tables, one per workload family. */
export function sections(r: BenchReport): Section[] {
  const out: Section[] = [];
  const workers = [...new Set(r.figures.filter((f) => f.engine === 'core' && f.workers).map((f) => f.workers!))].sort(
    (a, b) => a - b,
  );
  const wMax = workers.length ? workers[workers.length - 1] : 1;
  const sessions = [
    ...new Set(r.figures.filter((f) => /^established\/sessions=\d+\/workers=/.test(f.id)).map((f) => f.sessions!)),
  ].sort((a, b) => a - b);
  if (sessions.length) {
    const inline = r.figures.some((f) => /^established\/sessions=\d+\/inline\/mpps$/.test(f.id));
    const head = [
      'sessions',
      ...(inline ? ['1 thread, no pool: Mpps (min–max)'] : []),
      ...workers.map((w) => `${w}w Mpps (min–max)`),
      ...workers.map((w) => `${w}w ns/pkt`),
      ...workers.map((w) => `${w}w Mpps/CPU-s`),
      ...workers.filter((w) => w > 1).map((w) => `${w}w scaling`),
      'B/session',
      'model Mpps',
      `core ${wMax}w / model`,
    ];
    const rows = sessions.map((s) => [
      sessionsLabel(s),
      ...(inline ? [range(find(r, `established/sessions=${s}/inline/mpps`))] : []),
      ...workers.map((w) => range(find(r, `established/sessions=${s}/workers=${w}/mpps`))),
      ...workers.map((w) => val(find(r, `established/sessions=${s}/workers=${w}/ns`))),
      ...workers.map((w) => val(find(r, `established/sessions=${s}/workers=${w}/cpu-mpps`))),
      ...workers.filter((w) => w > 1).map((w) => val(find(r, `established/sessions=${s}/workers=${w}/scaling`))),
      val(find(r, `established/sessions=${s}/bytes-per-session`)),
      val(find(r, `established/sessions=${s}/model/mpps`)),
      val(find(r, `established/sessions=${s}/model/ratio-to-core-workers=${wMax}`)),
    ]);
    const x = firstResult(r, (y) => y.workload === 'established' && y.engine === 'core');
    const k = firstResult(r, (y) => y.workload === 'established' && y.engine === 'kernel');
    const xi = firstResult(r, (y) => y.workload === 'established' && y.engine === 'core' && y.workers === 0);
    const about = [
      `Input: ${x?.input.replace(/^\d+ established/, 'S established') ?? ''}`,
      `Measured: ${x?.measured ?? ''}. Runs: ${(r.parameters as { runs?: number }).runs} after warm-up, each at least ${(r.parameters as { minRunSec?: number }).minRunSec} s. ` +
        'Mpps/CPU-s: packets per CPU-second of the whole process (workers and main thread), robust to other load on the machine.',
    ];
    if (xi)
      about.push(
        `1 thread, no pool: ${xi.measured.replace(/^one thread, no pool: /, '')}; input: ${xi.input.replace(/^\d+ established/, 'S established')}.`,
      );
    if (k) {
      about.push(
        `Kernel oracle (${k.sessions} sessions, ${k.packetsPerRun} packets): ${fmt(k.samples[0] * 1e6)} packets/s — ${k.measured}. Core ${wMax}w / kernel: ${val(find(r, `established/kernel/ratio-to-core-workers=${wMax}`))}.`,
      );
    }
    out.push({ title: 'Established-flow throughput', head, rows, about });
  }
  const setup = workers.map((w) => find(r, `setup/workers=${w}/sessions-per-s`)).filter(Boolean) as Figure[];
  if (setup.length) {
    const rows = [
      ['core, one thread (no pool)', range(find(r, 'setup/inline/sessions-per-s')), '', ''],
      ...r.figures
        .filter((f) => /^setup\/inline\/table=\d+\/sessions-per-s$/.test(f.id))
        .map((f) => [`core, one thread, table at ${sessionsLabel(f.sessions ?? 0)} sessions`, range(f), '', '']),
      ...setup.flatMap((f) => {
        const small = find(r, `setup/workers=${f.workers}/small-table/sessions-per-s`);
        const smallAt = firstResult(
          r,
          (y) => y.workload === 'setup' && y.workers === f.workers && y.notes.smallTable === 1,
        )?.packetsPerRun;
        return [
          [
            `core, ${f.workers} worker(s)`,
            range(f),
            f.workers! > 1 ? val(find(r, `setup/workers=${f.workers}/scaling`)) : '',
            '',
          ],
          ...(small
            ? [[`core, ${f.workers} worker(s), table 0 to ${sessionsLabel(smallAt ?? 0)}`, range(small), '', '']]
            : []),
        ];
      }),
      [
        'reference model',
        range(find(r, 'setup/model/sessions-per-s')),
        '',
        val(find(r, `setup/model/ratio-to-core-workers=${wMax}`)),
      ],
      [
        'kernel oracle (incl. veth + injection)',
        range(find(r, 'setup/kernel/sessions-per-s')),
        '',
        val(find(r, `setup/kernel/ratio-to-core-workers=${wMax}`)),
      ],
    ].filter((row) => row[1] !== '–');
    const x = firstResult(r, (y) => y.workload === 'setup' && y.engine === 'core');
    out.push({
      title: 'Session setup rate',
      head: ['engine', 'sessions/s (min–max)', 'scaling', `core ${wMax}w / this`],
      rows,
      about: [
        `Input: ${x?.input ?? ''}`,
        `Measured: ${x?.measured ?? ''}.`,
        ...(r.figures.some((f) => f.id.startsWith('setup/inline/table='))
          ? [
              'One thread, table at S sessions: the same new flows set up into a table already holding S (set up untimed before each run), for the targets per table size.',
            ]
          : []),
        ...(r.figures.some((f) => /^setup\/workers=\d+\/small-table\//.test(f.id))
          ? [
              'Table 0 to N: through the pool, each run into an empty table — the sessions of the runs before expired by an untimed advance past the UDP timeout (issue 11: up to 64k sessions).',
            ]
          : []),
      ],
    });
  }
  const mixed = r.figures.filter((f) => f.engine === 'core' && /^mixed\/profile=[^/]+\/workers=\d+\/mpps$/.test(f.id));
  if (mixed.length) {
    const rows = mixed.map((f) => [
      `core, ${f.workers} worker(s)`,
      range(f),
      val(find(r, f.id.replace(/mpps$/, 'ns'))),
      val(find(r, f.id.replace(/mpps$/, 'gbps'))),
      f.workers! > 1 ? val(find(r, f.id.replace(/mpps$/, 'scaling'))) : '',
    ]);
    const model = r.figures.find((f) => /^mixed\/profile=[^/]+\/model\/mpps$/.test(f.id));
    if (model)
      rows.push([
        'reference model',
        range(model),
        val(find(r, model.id.replace(/mpps$/, 'ns'))),
        '',
        `core ${wMax}w / model ${val(find(r, model.id.replace(/\/mpps$/, `/ratio-to-core-workers=${wMax}`)))}`,
      ]);
    const x = firstResult(r, (y) => y.workload === 'mixed' && y.engine === 'core');
    out.push({
      title: 'Mixed traffic (profile)',
      head: ['engine', 'Mpps (min–max)', 'ns/pkt', 'Gbit/s', 'scaling / ratio'],
      rows,
      about: [`Input: ${x?.input ?? ''}`, `Measured: ${x?.measured ?? ''}.`],
    });
  }
  const replay = r.figures.filter((f) =>
    /^replay\/((long\/)?model\/raw-mpps|(long\/)?model\+core\/workers=\d+\/mpps|core\/workers=\d+\/mpps|model\/mpps)$/.test(
      f.id,
    ),
  );
  if (replay.length) {
    const longResult = firstResult(r, (y) => y.workload === 'replay' && y.notes.long === 1);
    const longRecords = longResult?.packetsPerRun;
    const longInput = longResult?.input;
    const rows = replay.map((f) => {
      const long = f.id.startsWith('replay/long/');
      const pre = long ? 'replay/long' : 'replay';
      const both = f.id.startsWith(`${pre}/model+core/`);
      const raw = f.id === `${pre}/model/raw-mpps`;
      const on = long ? `, longer capture (${longRecords ?? '?'} records)` : '';
      return [
        both
          ? `model,core (core ${f.workers} worker)${on}`
          : raw
            ? `reference model alone, no replay${on}`
            : f.engine === 'core'
              ? `core, ${f.workers} worker(s)`
              : 'reference model',
        range(f),
        both
          ? `${val(find(r, `${pre}/model+core/ratio-to-model-raw`))} of the model alone`
          : f.id === 'replay/model/mpps'
            ? val(find(r, `replay/model/ratio-to-core-workers=${wMax}`))
            : '',
      ];
    });
    const x = firstResult(r, (y) => y.workload === 'replay');
    // model,core is bound by the CPUs the process gets: the model on the main thread, the core's
    // fresh worker (and V8 compiling its code) beside it — the ratio reads honestly only with them.
    const cpus = r.results
      .filter((y) => y.workload === 'replay' && y.notes.engines === 'model,core')
      .map((y) => {
        const n = y.notes as Record<string, number>;
        if (!(n.wallMs > 0) || n.cpuMsMain === undefined) return null;
        const cpusGot = (n.cpuMsMain + n.cpuMsEngineThreads + n.cpuMsOtherThreads) / n.wallMs;
        return `model,core${n.long === 1 ? ' on the longer capture' : ''} per run: wall ${fmt(n.wallMs)} ms; CPU main thread (the model, the comparison) ${fmt(n.cpuMsMain)} ms, core worker ${fmt(n.cpuMsEngineThreads)} ms, other threads (V8 compiling the fresh worker's code, GC) ${fmt(n.cpuMsOtherThreads)} ms — the process got ${cpusGot.toFixed(2)} CPUs.`;
      })
      .filter((x): x is string => x !== null);
    out.push({
      title: 'Capture replay (natlab replay, end to end)',
      head: ['engine', 'Mpps (min–max)', `core ${wMax}w / model`],
      rows,
      about: [
        `Input: ${x?.input ?? ''}`,
        ...(longInput ? [`Longer capture (model,core against the model alone): ${longInput}`] : []),
        `Measured: ${x?.measured ?? ''}.`,
        ...cpus,
      ],
    });
  }
  // Replay --out against tcpdump -r -w on the same file in the same run (default and large capture).
  const io: string[][] = [];
  for (const pre of ['replay', 'replay/large']) {
    const td = find(r, `${pre}/tcpdump/mpps`);
    if (!td) continue;
    const capture = pre === 'replay' ? 'default' : 'large';
    io.push([`${capture}: tcpdump -r X -w Y`, range(td), '', '']);
    for (const f of r.figures.filter((x) =>
      new RegExp(`^${pre}/core/out/(one-sided/)?workers=\\d+/mpps$`).test(x.id),
    )) {
      const one = f.id.includes('/one-sided/');
      const res = r.results.find(
        (x) =>
          x.workload === 'replay' &&
          x.engine === 'core' &&
          x.workers === f.workers &&
          x.notes.outputsWritten === 1 &&
          x.notes.oneSided === (one ? 1 : 0) &&
          (x.notes.large ?? 0) === (pre === 'replay' ? 0 : 1),
      );
      const n = res?.notes ?? {};
      const cpu =
        n.cpuMsMain !== undefined
          ? `${n.wallMs !== undefined ? `wall ${fmt(Number(n.wallMs))}; ` : ''}main ${fmt(Number(n.cpuMsMain))}, worker(s) ${fmt(Number(n.cpuMsEngineThreads))}, other ${fmt(Number(n.cpuMsOtherThreads))}`
          : '';
      io.push([
        `${capture}: core --out${one ? ' one-sided' : ''}, ${f.workers}w`,
        range(f),
        range({ ...f, median: f.median / td.median, min: f.min / td.median, max: f.max / td.median, unit: 'x' }),
        cpu,
      ]);
    }
  }
  const largeInput = firstResult(
    r,
    (y) => y.workload === 'replay' && y.engine === 'tcpdump' && y.notes.large === 1,
  )?.input;
  if (io.length)
    out.push({
      title: 'Replay against the I/O floor (tcpdump -r X -w Y, same file, same run)',
      head: ['run', 'Mpps (min–max)', 'ratio to tcpdump', 'ms per run: wall; CPU by thread'],
      rows: io,
      about: [
        `Input: ${firstResult(r, (y) => y.workload === 'replay' && y.engine === 'tcpdump')?.input ?? ''}${largeInput ? `; large: ${largeInput}` : ''}.`,
        "Targets (issue 12): two-sided >= 0.8, one-sided >= 0.5. The default capture is warm-up-bound (a fresh worker compiles its code); the large one is the speed of a capture of a user's size.",
      ],
    });
  const lat = latencyResults(r);
  if (lat.length) {
    const f = (x: number) => fmt(x);
    out.push({
      title: 'Per-batch latency (through the worker pool)',
      head: [
        'workload',
        'batches',
        'pkts/batch',
        'µs p50',
        'µs p99',
        'µs p99.9',
        'µs max',
        'ns/pkt p50',
        'ns/pkt p99',
        'ns/pkt p99.9',
        'ns/pkt max',
      ],
      rows: lat.map(({ label, l }) => [
        label,
        String(l.batches),
        f(l.packetsPerBatch),
        f(l.batchUs.p50),
        f(l.batchUs.p99),
        f(l.batchUs.p999),
        f(l.batchUs.max),
        f(l.nsPerPacket.p50),
        f(l.nsPerPacket.p99),
        f(l.nsPerPacket.p999),
        f(l.nsPerPacket.max),
      ]),
      about: [
        'Per batch, over every timed batch of the runs: µs from posting the batch to main seeing its last share complete ' +
          "(ring hand-over, queueing behind the batches in flight, processing); ns/pkt: that time ÷ the batch's packets (batch-normalised cost). " +
          'Nearest-rank percentiles; p99.9 equals max below 1000 batches.',
      ],
    });
  }
  if (r.micro.length) {
    out.push({
      title: 'Microbenchmarks (tinybench, one thread)',
      head: ['task', 'ns/op median', 'min', 'max'],
      rows: r.micro.map((m) => [
        `${m.group}: ${m.name}`,
        m.nsMedian.toFixed(1),
        m.nsMin.toFixed(1),
        m.nsMax.toFixed(1),
      ]),
      about: ['Per packet or key (each iteration handles 1024).'],
    });
  }
  return out;
}

/** A few sentences with the headline figures (README top, terminal end). */
export function headline(r: BenchReport): string[] {
  const L: string[] = [];
  const workers = [...new Set(r.figures.filter((f) => f.engine === 'core' && f.workers).map((f) => f.workers!))].sort(
    (a, b) => a - b,
  );
  const wMax = workers.length ? workers[workers.length - 1] : 1;
  const sessions = [
    ...new Set(r.figures.filter((f) => /^established\/sessions=\d+\/workers=/.test(f.id)).map((f) => f.sessions!)),
  ].sort((a, b) => a - b);
  for (const w of workers) {
    const parts = sessions
      .map((s) => {
        const f = find(r, `established/sessions=${s}/workers=${w}/mpps`);
        return f ? `${fmt(f.median, 'Mpps')} Mpps at ${sessionsLabel(s)}` : null;
      })
      .filter(Boolean);
    if (parts.length)
      L.push(`Established flows, ${w} worker${w > 1 ? 's' : ''}: ${parts.join(', ')} sessions (64-byte frames).`);
  }
  const inl = sessions
    .map((s) => {
      const f = find(r, `established/sessions=${s}/inline/mpps`);
      return f ? `${fmt(f.median, 'Mpps')} at ${sessionsLabel(s)}` : null;
    })
    .filter(Boolean);
  if (inl.length) L.push(`One Dataplane in one thread (no hand-over): ${inl.join(', ')} Mpps.`);
  const st = workers.map((w) => find(r, `setup/workers=${w}/sessions-per-s`)).filter(Boolean) as Figure[];
  if (st.length)
    L.push(
      `Session setup: ${st.map((f) => `${fmt(f.median)} sessions/s with ${f.workers} worker${f.workers! > 1 ? 's' : ''}`).join(', ')}.`,
    );
  const bps = r.figures.find((f) => f.id.endsWith('/bytes-per-session'));
  if (bps)
    L.push(
      `Shared memory: ${fmt(bps.median)} bytes per session (session record + flow-table slots of its three keys).`,
    );
  const ratios = r.figures.filter((f) => f.id.includes(`/ratio-to-core-workers=${wMax}`));
  const m = ratios
    .filter((f) => f.engine === 'model')
    .map((f) => `${f.workload}${f.sessions ? ` (${sessionsLabel(f.sessions)} sessions)` : ''} ×${fmt(f.median)}`);
  if (m.length)
    L.push(`Core (${wMax} worker${wMax > 1 ? 's' : ''}) vs the reference model on the same input: ${m.join(', ')}.`);
  const k = ratios.filter((f) => f.engine === 'kernel').map((f) => `${f.workload} ×${fmt(f.median)}`);
  if (k.length)
    L.push(
      `Core vs the kernel oracle (a per-packet round trip through veth and injection, not Linux's forwarding capacity): ${k.join(', ')}.`,
    );
  return L;
}

function machineLine(r: BenchReport): string {
  const m = r.machine as Record<string, unknown>;
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}, commit ${m.commit}; ${r.date}; ${r.durationSec.toFixed(0)} s; load average ${r.load.start[0].toFixed(1)} → ${r.load.end[0].toFixed(1)}${r.processCpu ? `; the process got ${r.processCpu.cpusGot.toFixed(2)} CPUs on average (${r.processCpu.cpuSec.toFixed(0)} CPU-s)` : ''}`;
}

export function formatTerminal(r: BenchReport): string {
  const L: string[] = [`natlab bench — ${machineLine(r)}`, ''];
  for (const s of sections(r)) {
    L.push(s.title, table(s.head, s.rows, false), '');
  }
  for (const x of headline(r)) L.push(x);
  for (const n of r.notes) L.push(`note: ${n}`);
  return L.join('\n');
}

export function formatReadme(r: BenchReport, jsonName: string, charts: string[]): string {
  const L: string[] = [];
  L.push('# natlab benchmark results', '');
  L.push(
    `Latest run: \`${jsonName}\` (regenerated by \`npm run bench\`; every run's JSON with raw samples stays in this directory). ` +
      'How to read these figures and what they include: [docs/benchmarks.md](../docs/benchmarks.md).',
    '',
  );
  L.push(`Machine: ${machineLine(r)}.`, '');
  for (const n of r.notes) L.push(`> **Note:** ${n}`, '');
  const h = headline(r);
  if (h.length) L.push('## Headline', '', ...h.map((x) => `- ${x}`), '');
  for (const c of charts) L.push(`![${c.replace(/\.svg$/, '')}](${c})`, '');
  if (charts.length) {
    L.push('Reference lines on the charts (not measured here; targets in red, anchors in purple):', '');
    for (const ref of REFERENCES) {
      const v =
        ref.value !== undefined
          ? `${fmt(ref.value)} ${ref.unit}`
          : `${ref.bySessions!.map((p) => `${fmt(p.value)} at ${sessionsLabel(p.sessions)}`).join(', ')} ${ref.unit}`;
      L.push(`- **${ref.kind}: ${ref.label}** — ${v}. Source: ${ref.source}.`);
    }
    L.push('');
  }
  for (const s of sections(r)) {
    L.push(`## ${s.title}`, '', table(s.head, s.rows, true), '');
    for (const a of s.about) L.push(`${a}`, '');
  }
  L.push(
    'Compare two runs: `natlab bench compare results/A.json results/B.json` (overlapping min–max ranges are reported as no change).',
    '',
  );
  return L.join('\n');
}

// ---- compare ---------------------------------------------------------------------------------------

export interface Change {
  id: string;
  label: string;
  unit: string;
  a: Figure;
  b: Figure;
  /** Change of the median, % (positive = higher). */
  pct: number;
  verdict: 'no change' | 'faster' | 'slower' | 'better' | 'worse';
}

export async function readReport(path: string): Promise<BenchReport> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new InputError(`${path}: cannot read: ${(e as Error).message}`, path);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not JSON: ${(e as Error).message}`, path);
  }
  const o = obj as Partial<BenchReport>;
  if (o?.kind !== 'natlab-bench' || !Array.isArray(o.figures))
    throw new InputError(`${path}: not a natlab bench result (kind 'natlab-bench' with figures[])`, path, 'kind');
  o.figures.forEach((f, i) => {
    if (typeof f?.id !== 'string' || typeof f.median !== 'number' || !Array.isArray(f.samples))
      throw new InputError(`${path}: figures[${i}]: expected id, median, min, max, samples`, path, `figures[${i}]`);
  });
  return o as BenchReport;
}

/** Change per figure present in both; overlapping min–max ranges are "no change". */
export function compareReports(
  a: BenchReport,
  b: BenchReport,
): { changes: Change[]; onlyA: string[]; onlyB: string[] } {
  const changes: Change[] = [];
  const bm = new Map(b.figures.map((f) => [f.id, f]));
  for (const fa of a.figures) {
    const fb = bm.get(fa.id);
    if (!fb) continue;
    const pct = ((fb.median - fa.median) / Math.abs(fa.median)) * 100;
    const overlap = fa.min <= fb.max && fb.min <= fa.max;
    let verdict: Change['verdict'] = 'no change';
    if (!overlap && Number.isFinite(pct)) {
      const up = fb.median > fa.median;
      const good = up === fa.higherIsBetter;
      const rate = /Mpps|sessions\/s|Gbit\/s|ns\//.test(fa.unit);
      verdict = rate ? (good ? 'faster' : 'slower') : good ? 'better' : 'worse';
    }
    changes.push({ id: fa.id, label: fa.label, unit: fa.unit, a: fa, b: fb, pct, verdict });
  }
  const ids = new Set(a.figures.map((f) => f.id));
  return {
    changes,
    onlyA: a.figures.filter((f) => !bm.has(f.id)).map((f) => f.id),
    onlyB: b.figures.filter((f) => !ids.has(f.id)).map((f) => f.id),
  };
}

export function formatCompare(aPath: string, bPath: string, a: BenchReport, b: BenchReport): string {
  const { changes, onlyA, onlyB } = compareReports(a, b);
  const L: string[] = [`A: ${aPath} — ${machineLine(a)}`, `B: ${bPath} — ${machineLine(b)}`];
  if ((a.machine as Record<string, unknown>).cpu !== (b.machine as Record<string, unknown>).cpu)
    L.push('warning: different CPUs — differences are not only the code');
  L.push('');
  const rows = changes.map((c) => [
    c.label,
    c.unit,
    `${fmt(c.a.median, c.unit)} [${fmt(c.a.min, c.unit)}–${fmt(c.a.max, c.unit)}]`,
    `${fmt(c.b.median, c.unit)} [${fmt(c.b.min, c.unit)}–${fmt(c.b.max, c.unit)}]`,
    Number.isFinite(c.pct) ? `${c.pct >= 0 ? '+' : ''}${c.pct.toFixed(1)}%` : '–',
    c.verdict === 'no change' ? 'no change (ranges overlap)' : `${c.verdict} ${Math.abs(c.pct).toFixed(1)}%`,
  ]);
  L.push(table(['figure', 'unit', 'A median [min–max]', 'B median [min–max]', 'change', 'verdict'], rows, false));
  const n = (v: Change['verdict']) => changes.filter((c) => c.verdict === v).length;
  L.push(
    '',
    `${changes.length} figures compared: ${n('faster') + n('better')} faster/better, ${n('slower') + n('worse')} slower/worse, ${n('no change')} no change.`,
  );
  if (onlyA.length) L.push(`only in A: ${onlyA.join(', ')}`);
  if (onlyB.length) L.push(`only in B: ${onlyB.join(', ')}`);
  return L.join('\n');
}
