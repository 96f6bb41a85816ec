// `natlab bench`: benchmark runs of the fast core with the model and kernel as baselines, results
// as JSON + README + SVG charts, and `natlab bench compare A.json B.json`. The suite itself lives
// in bench/ (bench/suite.ts); docs/benchmarks.md explains the workloads and figures.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import cliProgress from 'cli-progress';
import { EXIT_OK, type Command } from './command.ts';
import { CORE_LAYOUTS, type CoreLayout } from '../core/engine.ts';
import { UsageError, intOption, parseArgs, type ParsedArgs } from './args.ts';
import { checkInputFile, checkOutputFile, prepareOutputDir } from './output-location.ts';
import { DEFAULT_PROFILE, loadProfile } from '../traffic/profile.ts';
import { DEFAULT_INSIDE, scenarioForCapture } from '../diff/replay/scenario.ts';

const USAGE = `usage: natlab bench [options]
       natlab bench compare A.json B.json
       natlab bench report RESULT.json [--out DIR]

Measures the fast core (worker threads over shared memory) on workloads named after the field's
practice (fd.io CSIT, RFC 2544 / RFC 9693), with the reference model and — when root and the tools
are available — the Linux kernel oracle as baselines on the same input, plus microbenchmarks.
Prints a table; a full run writes results/bench-<date>.json (machine, parameters, raw samples),
results/README.md and SVG charts. See docs/benchmarks.md.

workloads (--workloads, default all):
  established   S established UDP sessions, 64-byte frames of them in random order (per --sessions)
  setup         every frame opens a new flow: sessions/s
  mixed         traffic from a profile: new-flow share, TCP/UDP/ICMP mix, sizes, Zipf/uniform popularity
  replay        a capture through \`natlab replay\` end to end (generated from the profile, or --pcap)
  filtered      the established packets behind a typical security-group + network-ACL setup against
                the same sessions without filters (one thread): the filters' cost on the fast path;
                also on the model and the kernel engine (with --model / --kernel as usual)
  filter-table  the established packets through the NAT instance's hardened filter table against the
                same sessions without it (one thread): the table's cost on the fast path; also on the model and
                the kernel engine

options:
  --quick               small sizes (sessions 1k,16k; profile flows capped at 2000), fewer runs: about a
                        minute (CI smoke run); writes results only where --json / --out say
  --workers LIST        worker counts, e.g. 1,2 (default: 1 and powers of two up to the cores)
  --sessions LIST       established sessions, e.g. 1k,64k,256k,1M (k = 1024, M = 1048576)
  --workloads LIST      established,setup,mixed,replay,adversarial,filtered,filter-table
  --runs N              measured runs per figure after warm-up (default 5; quick 3)
  --min-run-ms N        an established-flow run lasts at least N ms (default 400; quick 50)
  --setup-flows N       new flows per session-setup run (default 32768; quick 16384)
  --mixed-packets N     packets per mixed run (default 65536; quick 8192)
  --replay-packets N    packets of the generated capture (default 32768; quick 4096)
  --replay-large-packets N
                        packets of the large generated capture, replayed --out against tcpdump on
                        the same file (default 1M; quick 0 = skipped)
  --replay-model-packets N
                        packets of the longer capture --engines model,core is also measured on
                        against the model alone (default 250k; quick 0 = skipped; needs the model)
  --profile P           traffic profile: imix-zipf (default), small-udp-uniform, churn, or a YAML/JSON file
  --pcap FILE           replay this capture instead of a generated one
  --inside CIDRS        with --pcap: the inside networks (default ${DEFAULT_INSIDE})
  --no-model            skip the reference-model baseline
  --no-kernel           skip the kernel-oracle baseline (it needs root; skipped with a note otherwise)
  --no-micro            skip the microbenchmarks
  --no-inline           skip the one-thread, no-pool Dataplane figures (bench/core-throughput.ts)
  --json FILE           write the result JSON here (too)
  --out DIR             results directory: JSON, README.md, the charts (throughput, scaling, setup, latency .svg)
                        (default results/ for a full run; none for --quick)
  --seed N              workload seed (default 1)
  --layout L            the core's table layout: record (default; 152 B/session) or line (one cache
                        line per established packet; 227 B/session) — docs/core.md "Layouts"
  --no-progress         no progress bar

compare: prints the change of every figure between two result files with a verdict: overlapping
min–max ranges are "no change", otherwise faster/slower (better/worse) by the change of the median.
report: regenerates README.md and the SVG charts from a result JSON.`;

const SIZE_RE = /^(\d+)([kKmM]?)$/;

export function parseCount(text: string, what: string, min: number, max: number): number {
  const m = SIZE_RE.exec(text.trim());
  if (!m) throw new UsageError(`${what}: '${text}' is not a count (e.g. 1k, 64k, 1M, 5000)`);
  const n = Number(m[1]) * (m[2] === 'k' || m[2] === 'K' ? 1024 : m[2] === 'm' || m[2] === 'M' ? 1 << 20 : 1);
  if (n < min || n > max) throw new UsageError(`${what}: ${text} is outside ${min}..${max}`);
  return n;
}

function list(a: ParsedArgs, name: string): string[] | null {
  const v = a.values.get(name);
  if (v === undefined) return null;
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`--${name}: empty list`);
  return items;
}

async function writeOutputs(report: import('../../bench/suite.ts').BenchReport, dir: string): Promise<string[]> {
  const { writeBenchReport } = await import('../../bench/output.ts');
  return writeBenchReport(report, dir);
}

async function runCompare(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {});
  if (a.positional.length !== 2)
    throw new UsageError('compare needs two result files: natlab bench compare A.json B.json');
  const { readReport, formatCompare } = await import('../../bench/report.ts');
  const [pa, pb] = a.positional;
  const [ra, rb] = [await readReport(pa), await readReport(pb)];
  process.stdout.write(`${formatCompare(pa, pb, ra, rb)}\n`);
  return EXIT_OK;
}

async function runReport(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { values: ['out'] });
  if (a.positional.length !== 1)
    throw new UsageError('report needs one result file: natlab bench report RESULT.json [--out DIR]');
  const { readReport } = await import('../../bench/report.ts');
  const { writeReadmeAndCharts } = await import('../../bench/output.ts');
  const dir = a.values.get('out') ?? dirname(a.positional[0]);
  prepareOutputDir(dir, a.values.has('out') ? '--out' : 'report directory');
  const r = await readReport(a.positional[0]);
  const files = await writeReadmeAndCharts(r, dir, basename(a.positional[0]));
  process.stdout.write(`${files.map((f) => `wrote ${f}`).join('\n')}\n`);
  return EXIT_OK;
}

async function runSuite(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    flags: ['quick', 'no-kernel', 'no-model', 'no-micro', 'no-inline', 'no-progress'],
    values: [
      'workers',
      'sessions',
      'workloads',
      'runs',
      'min-run-ms',
      'setup-flows',
      'mixed-packets',
      'replay-packets',
      'replay-large-packets',
      'replay-model-packets',
      'profile',
      'pcap',
      'inside',
      'json',
      'out',
      'seed',
      'layout',
    ],
  });
  if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
  const { defaultOptions, runBench, WORKLOADS } = await import('../../bench/suite.ts');
  const quick = a.flags.has('quick');
  const o = defaultOptions(quick);
  const w = list(a, 'workers');
  if (w) o.workers = [...new Set(w.map((x) => parseCount(x, '--workers', 1, 64)))].sort((p, q) => p - q);
  const s = list(a, 'sessions');
  if (s) o.sessions = [...new Set(s.map((x) => parseCount(x, '--sessions', 16, 4 << 20)))].sort((p, q) => p - q);
  const wl = list(a, 'workloads');
  if (wl) {
    for (const x of wl)
      if (!(WORKLOADS as readonly string[]).includes(x))
        throw new UsageError(`--workloads: unknown workload '${x}' (${WORKLOADS.join(', ')})`);
    o.workloads = wl as typeof o.workloads;
  }
  o.runs = intOption(a, 'runs', o.runs, 1, 100);
  o.minRunSec = intOption(a, 'min-run-ms', Math.round(o.minRunSec * 1000), 1, 600_000) / 1000;
  if (a.values.has('setup-flows'))
    o.setupPerRun = parseCount(a.values.get('setup-flows')!, '--setup-flows', 16, 4 << 20);
  if (a.values.has('mixed-packets'))
    o.mixedPerRun = parseCount(a.values.get('mixed-packets')!, '--mixed-packets', 16, 4 << 20);
  if (a.values.has('replay-packets'))
    o.replayPackets = parseCount(a.values.get('replay-packets')!, '--replay-packets', 16, 4 << 20);
  if (a.values.has('replay-large-packets')) {
    const v = a.values.get('replay-large-packets')!;
    o.replayLargePackets = v === '0' ? 0 : parseCount(v, '--replay-large-packets', 16, 64 << 20);
  }
  if (a.values.has('replay-model-packets')) {
    const v = a.values.get('replay-model-packets')!;
    o.replayModelPackets = v === '0' ? 0 : parseCount(v, '--replay-model-packets', 16, 16 << 20);
  }
  o.seed = intOption(a, 'seed', 1, 1, 0x7fffffff);
  if (a.values.has('layout')) {
    const l = a.values.get('layout')!;
    if (!(CORE_LAYOUTS as readonly string[]).includes(l))
      throw new UsageError(`--layout: unknown layout '${l}' (${CORE_LAYOUTS.join(', ')})`);
    o.layout = l as CoreLayout;
  }
  o.profile = await loadProfile(a.values.get('profile') ?? DEFAULT_PROFILE);
  if (a.values.has('pcap')) o.pcap = { path: a.values.get('pcap')!, inside: a.values.get('inside') ?? DEFAULT_INSIDE };
  else if (a.values.has('inside')) throw new UsageError('--inside only applies with --pcap');
  if (o.pcap) {
    // Every input is checked before the first benchmark: a bad capture fails in a second, not
    // after the other workloads ran (a header-only pass, as replay's own first pass).
    checkInputFile(o.pcap.path, '--pcap');
    await scenarioForCapture(o.pcap.path, o.pcap.inside);
  }
  o.kernel = !a.flags.has('no-kernel');
  o.model = !a.flags.has('no-model');
  o.micro = !a.flags.has('no-micro');
  o.inline = !a.flags.has('no-inline');
  const outDir = a.values.get('out') ?? (quick ? null : 'results');
  const jsonFile = a.values.get('json') ?? null;
  if (outDir) prepareOutputDir(outDir, a.values.has('out') ? '--out' : 'results directory');
  if (jsonFile) checkOutputFile(jsonFile, '--json');

  const tty = process.stderr.isTTY === true && !a.flags.has('no-progress');
  let bar: cliProgress.SingleBar | null = null;
  const t0 = performance.now();
  if (tty) {
    bar = new cliProgress.SingleBar(
      {
        format: 'bench [{bar}] {value}/{total} | {elapsed}s | {task}',
        hideCursor: true,
        stream: process.stderr,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  const report = await runBench(o, (e) => {
    const elapsed = ((performance.now() - t0) / 1000).toFixed(0);
    if (bar) {
      if (e.done === 0 && e.line === null && !bar.isActive) bar.start(e.total, 0, { task: e.label, elapsed });
      if (e.line) {
        bar.stop();
        process.stderr.write(`  ${e.line}\n`);
        bar.start(e.total, e.done, { task: e.label, elapsed });
      } else bar.update(e.done, { task: e.label, elapsed });
    } else if (e.line) process.stderr.write(`[${e.done}/${e.total}] ${e.line}\n`);
    else if (!a.flags.has('no-progress')) process.stderr.write(`[${e.done}/${e.total}] ${e.label} ...\n`);
  });
  bar?.stop();
  const { formatTerminal } = await import('../../bench/report.ts');
  process.stdout.write(`${formatTerminal(report)}\n`);
  const written: string[] = [];
  if (jsonFile) {
    await mkdir(dirname(jsonFile), { recursive: true });
    await writeFile(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    written.push(jsonFile);
  }
  if (outDir) written.push(...(await writeOutputs(report, outDir)));
  for (const f of written) process.stdout.write(`wrote ${f}\n`);
  return EXIT_OK;
}

export const command: Command = {
  name: 'bench',
  summary:
    'benchmark the fast core (Mpps, sessions/s, bytes/session, scaling) against the model and kernel; compare runs',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    if (argv[0] === 'compare') return runCompare(argv.slice(1));
    if (argv[0] === 'report') return runReport(argv.slice(1));
    return runSuite(argv);
  },
};
