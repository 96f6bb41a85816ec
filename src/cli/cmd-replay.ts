// `natlab replay`: replays a capture through the engines, writes each egress point's capture per
// engine, and explains every difference between the engines.
import { writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import cliProgress from 'cli-progress';
import { EXIT_USAGE, type Command } from './command.ts';
import { UsageError, intOption, parseArgs } from './args.ts';
import { checkInputFile, checkOutputFile, prepareOutputDir } from './output-location.ts';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../packet/constants.ts';
import { loadScenario, resolveScenarioPath } from '../scenario/index.ts';
import {
  DEFAULT_ENGINES,
  engineAvailability,
  engineUnsupported,
  parseEngineName,
  type EngineName,
} from '../diff/engines.ts';
import { runReplay, type ReplayOptions } from '../diff/replay/replay.ts';
import { DEFAULT_INSIDE, scenarioForCapture } from '../diff/replay/scenario.ts';
import { formatReplaySummary } from '../diff/replay/report.ts';
import { FlowCollector } from '../diff/sinks/flows.ts';
import { DifferenceCollector } from '../diff/sinks/differences.ts';
import { writeReplayHtml } from '../diff/sinks/report-html.ts';
import { INPUT_CAPTURE_FILE } from '../diff/sinks/input-capture.ts';
import { engineCaptureName } from '../diff/replay/replay.ts';
import { replaySuite } from '../diff/sinks/junit-cases.ts';
import { writeJUnit } from '../diff/sinks/junit.ts';
import { CAPTURE_SUBNET_LEN_MIN } from '../scenario/capture.ts';
import { SUBNET_LEN_MAX } from '../scenario/load.ts';

const USAGE = `usage: natlab replay --in X.pcap --out DIR [--scenario F | --inside CIDR[,CIDR] [--subnet-len-min N]]
                     [--engines model,core,kernel] [--workers N] [--layout L] [--seed N] [--limit N]
                     [--link ethernet|raw] [--format pcapng|pcap] [--max-diffs N]
                     [--kernel-time real|compress] [--kernel-max-wait S] [--junit FILE] [--html FILE]
                     [--json] [--no-progress]

Replays a capture (pcap or pcapng) through the engines and compares them packet by packet.

Ingress: each frame enters where its source lives: an instance's private IP -> that instance's
ENI; an address outside the VPC -> the internet gateway. Frames whose source belongs nowhere
(inside the VPC but no instance, an Elastic IP as source, non-unicast) are counted, not fed.
Non-IPv4 frames and frames without a readable IPv4 header are counted, not fed; every other
frame (bad checksums, bad lengths, fragments, ...) is fed and the engines say why they drop it.
Timestamps drive the clock (backward steps are clamped and counted).

One-sided captures: a far-side frame addressed to an instance's private address is re-addressed
to the mapping each engine made for its flow (learned from that engine's own outputs), or to the
instance's Elastic IP; the report lists the re-addressed frames.

options:
  --in FILE          the capture to replay (required)
  --out DIR          where the captures and DIR/report.json go (required)
  --format F         pcapng (default): annotated captures for Wireshark: DIR/<engine>.pcapng
                     (an interface per egress point, named internet, app-10.0.1.10, ..., and
                     "dropped"; each packet's story in its comment: frame.comment) and
                     DIR/input.pcapng (every input with its fate on every engine);
                     pcap: DIR/<engine>/internet.pcap, DIR/<engine>/<instance>-<ip>.pcap
  --scenario F       scenario file or name in scenarios/ (e.g. vpc-nat-instance)
  --inside CIDRs     without --scenario: build a scenario around the capture's own addresses:
                     hosts inside these CIDRs sit in a private subnet behind a NAT instance,
                     all others are internet hosts (default ${DEFAULT_INSIDE})
  --subnet-len-min N with --inside: private subnets may grow to /N (default ${CAPTURE_SUBNET_LEN_MIN}) to move an
                     inside host off an address AWS reserves (10.0.0.1 is the VPC router of
                     every subnet up to 10.0.0.0/7: --subnet-len-min 6 makes it an ordinary host)
  --engines LIST     comma-separated engines (default: model,core, those available)
  --workers N        core engine worker threads
  --layout L         core engine table layout: record (default, 152 B/session) or line (one
                     cache line per established packet, 227 B/session); same outputs
  --seed N           seed for the engines' random choices (default 1)
  --limit N          replay only the first N packets
  --link TYPE        output link type: ethernet (default, synthetic stable MACs) or raw (IPv4)
  --max-diffs N      differences kept and listed (default 20)
  --kernel-time M    kernel engine clock: real (default: gaps between timestamps are really
                     waited, up to 10 s in all) or compress (back to back; conntrack timers do
                     not see the gaps)
  --junit FILE       write JUnit XML: one test case per flow of the capture (a failure per flow
                     where the engines differ, saying where to look and how to replay)
  --html FILE        write a self-contained HTML report: counters per engine, the differences
                     with their packets decoded side by side, a timeline per flow, links to the
                     annotated captures
  --kernel-max-wait S  real seconds the kernel engine may wait in all with --kernel-time real
                     (default 10)
  --json             print report.json on stdout instead of the summary
  --no-progress      no progress bar (it is shown only on a terminal anyway)

exit: 0 engines agree, 1 engines differ, 2 bad input or usage (an unreadable capture, or a
capture that breaks off: everything before the break is still replayed and reported). A
truncated final record is a warning, not an error.
`;

export const command: Command = {
  name: 'replay',
  summary: 'replay a capture through the engines, write their outputs, explain every difference',
  usage: USAGE,
  async run(argv) {
    const a = parseArgs(argv, {
      flags: ['json', 'no-progress'],
      values: [
        'in',
        'out',
        'scenario',
        'inside',
        'engines',
        'workers',
        'layout',
        'seed',
        'limit',
        'link',
        'max-diffs',
        'kernel-time',
        'format',
        'junit',
        'html',
        'kernel-max-wait',
        'subnet-len-min',
      ],
    });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    const input = a.values.get('in');
    const outDir = a.values.get('out');
    if (!input) throw new UsageError('--in FILE is required');
    if (!outDir) throw new UsageError('--out DIR is required');
    if (a.values.has('scenario') && a.values.has('inside'))
      throw new UsageError('--scenario and --inside exclude each other');
    const link = a.values.get('link') ?? 'ethernet';
    if (link !== 'ethernet' && link !== 'raw') throw new UsageError(`--link: '${link}' is not ethernet or raw`);
    const format = a.values.get('format') ?? 'pcapng';
    if (format !== 'pcapng' && format !== 'pcap') throw new UsageError(`--format: '${format}' is not pcapng or pcap`);
    const limit = a.values.has('limit') ? intOption(a, 'limit', 0, 1) : undefined;
    const workers = a.values.has('workers') ? intOption(a, 'workers', 1, 1, 256) : undefined;
    const seed = intOption(a, 'seed', 1, 0, 0xffffffff);
    const maxDiffs = intOption(a, 'max-diffs', 20, 1, 100000);
    const kernelTime = a.values.get('kernel-time') ?? 'real';
    if (kernelTime !== 'real' && kernelTime !== 'compress')
      throw new UsageError(`--kernel-time: '${kernelTime}' is not real or compress`);
    const kernelMaxWaitS = intOption(a, 'kernel-max-wait', 10, 0, 86400);
    if (a.values.has('subnet-len-min') && a.values.has('scenario'))
      throw new UsageError(
        '--subnet-len-min applies to --inside (a scenario built around the capture), not to --scenario',
      );
    const subnetLenMin = intOption(a, 'subnet-len-min', CAPTURE_SUBNET_LEN_MIN, 2, SUBNET_LEN_MAX);
    if (a.values.has('kernel-max-wait') && kernelTime === 'compress')
      throw new UsageError('--kernel-max-wait applies to --kernel-time real only');
    // Where we read and write, before any work (docs/errors.md).
    checkInputFile(input, '--in');
    prepareOutputDir(outDir, '--out');
    if (a.values.has('junit')) checkOutputFile(a.values.get('junit')!, '--junit');

    let engines: EngineName[];
    const list = a.values.get('engines');
    if (list) {
      engines = [];
      for (const e of list
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        let name: EngineName;
        try {
          name = parseEngineName(e);
        } catch (err) {
          throw new UsageError(`--engines: ${(err as Error).message}`);
        }
        if (engines.includes(name)) throw new UsageError(`--engines: '${e}' given twice`);
        engines.push(name);
      }
      if (engines.length === 0) throw new UsageError('--engines: empty list');
    } else engines = [...DEFAULT_ENGINES];
    for (const e of engines) {
      const av = await engineAvailability(e);
      if (!av.ok) {
        process.stderr.write(`natlab replay: the ${e} engine cannot run here: ${av.missing}\n`);
        return EXIT_USAGE;
      }
    }

    let scenario;
    let how: string;
    if (a.values.has('scenario')) {
      const path = resolveScenarioPath(a.values.get('scenario'));
      scenario = loadScenario(path);
      how = `--scenario ${path}`;
    } else {
      const choice = await scenarioForCapture(
        input,
        a.values.get('inside') ?? DEFAULT_INSIDE,
        limit ?? Infinity,
        undefined,
        { subnetLenMin },
      );
      scenario = choice.scenario;
      how = choice.how;
    }

    // An engine that cannot judge this scenario (the kernel engine and NAT gateways) is skipped, saying why.
    for (const e of [...engines]) {
      const why = engineUnsupported(e, scenario);
      if (!why) continue;
      process.stderr.write(`natlab replay: skipping the ${e} engine: ${why}\n`);
      engines = engines.filter((x) => x !== e);
    }
    if (engines.length === 0) {
      process.stderr.write('natlab replay: no engine left that can judge this scenario\n');
      return EXIT_USAGE;
    }

    const json = a.flags.has('json');
    const tty = process.stderr.isTTY && !a.flags.has('no-progress');
    let bar: cliProgress.SingleBar | null = null;
    const opts: ReplayOptions = {
      input,
      outDir,
      scenario,
      scenarioHow: how,
      engines,
      workers,
      layout: a.values.get('layout'),
      seed,
      limit,
      maxDifferences: maxDiffs,
      outputLinkType: link === 'raw' ? LINKTYPE_RAW : LINKTYPE_ETHERNET,
      outputFormat: format,
      engineExtra: {
        kernel: {
          timeMode: kernelTime,
          maxWaitMs: kernelMaxWaitS * 1000,
          // The kernel engine's errors advise replay's own option names.
          optionNames: { maxWait: '--kernel-max-wait', compress: '--kernel-time compress' },
        },
      },
    };
    if (tty) {
      bar = new cliProgress.SingleBar(
        {
          format: 'replay [{bar}] {percentage}% | {records} packets | {rate} pps | ETA {eta_formatted}',
          hideCursor: true,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      const t0 = performance.now();
      let started = false;
      opts.onProgress = (records, bytes, total) => {
        const rate = Math.round((records * 1000) / Math.max(1, performance.now() - t0)).toLocaleString('en-US');
        // Progress by bytes of the file, or by packets when --limit stops early.
        const max = limit !== undefined ? limit : Math.max(total, 1);
        const value = limit !== undefined ? records : bytes;
        if (!started) {
          bar!.start(max, 0, { records: 0, rate: 0 });
          started = true;
        }
        bar!.update(Math.min(value, max), { records: records.toLocaleString('en-US'), rate });
      };
    }
    const junit = a.values.get('junit');
    const html = a.values.get('html');
    const flows = junit || html ? new FlowCollector(scenario) : null;
    const diffDetails = html ? new DifferenceCollector(scenario, maxDiffs) : null;
    opts.sinks = [flows, diffDetails].filter((x) => x !== null);
    let outcome;
    try {
      outcome = await runReplay(opts);
    } finally {
      bar?.stop();
    }
    const r = outcome.report;
    await writeFile(join(outDir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
    if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else process.stdout.write(`${formatReplaySummary(r, maxDiffs)}\n  report: ${join(outDir, 'report.json')}\n`);
    if (junit && flows) {
      const command = ['natlab', 'replay', ...argv.filter((x, k) => x !== '--junit' && argv[k - 1] !== '--junit')].join(
        ' ',
      );
      await writeJUnit(junit, [replaySuite(r, flows.list(), { command, outDir, annotated: format === 'pcapng' })]);
    }
    if (html && flows && diffDetails) {
      const href = (f: string) => relative(dirname(html), join(outDir, f)) || f;
      const captures = [{ label: 'report.json', href: href('report.json') }];
      if (format === 'pcapng')
        captures.push(
          { label: INPUT_CAPTURE_FILE, href: href(INPUT_CAPTURE_FILE) },
          ...engines.map((e) => ({ label: engineCaptureName(e), href: href(engineCaptureName(e)) })),
        );
      else captures.push(...engines.map((e) => ({ label: `${e}/`, href: href(e) })));
      await writeReplayHtml(html, { report: r, differences: diffDetails.details, flows: flows.list(), captures });
      if (!json) process.stdout.write(`  html: ${html}\n`);
    }
    if (r.input.error) process.stderr.write(`natlab replay: ${r.input.error}\n`);
    return r.exitCode;
  },
};
