// `natlab kernel`: runs the kernel oracle alone on a capture (or checks prerequisites, or removes
// leftovers of crashed runs).
import { access, constants as fsConstants, mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { InputError } from '../spec/errors.ts';
import { EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError, intOption, parseArgs } from './args.ts';
import { checkInputFile } from './output-location.ts';
import { LINKTYPE_RAW } from '../packet/constants.ts';
import { describePacket } from '../packet/format.ts';
import { OPEN_SCENARIO_NAME, OPEN_SCENARIO_PATH, loadScenario, resolveScenarioPath } from '../scenario/index.ts';
import { runReplay, type ReplayOutcome } from '../diff/replay/replay.ts';
import { POINT_INTERNET, pointName } from '../spec/scenario.ts';
import type { Scenario } from '../spec/scenario.ts';
import { CT_NAMES, DROP_IGW_UNKNOWN_DST, FATE_DELIVERED, REASONS, reasonName } from '../spec/reasons.ts';
import { cidrContains } from '../packet/addr.ts';
import { rd32 } from '../packet/bytes.ts';
import { PARSE_STATUS_NAMES } from '../packet/parse.ts';
import {
  checkKernelPrerequisites,
  cleanupLeftovers,
  createKernelEngine,
  type KernelEngine,
  measureKernelSpeed,
  KernelUnavailableError,
  KERNEL_NORMALISATION_NOTE,
  type KernelPacketResult,
  type KernelTimeMode,
} from '../oracle/index.ts';

const USAGE = `usage: natlab kernel --scenario F --in X.pcap --out DIR [--json] [--time real|compress]
                     [--max-wait S] [--settle-ms N] [--limit N] [--keep] [--one-at-a-time]
       natlab kernel --check
       natlab kernel --cleanup [--all]

Runs a capture through the real Linux kernel: the scenario is built in network namespaces (one
per instance, a VPC router, the internet; the internet gateway's 1:1 Elastic IP mapping is
applied statelessly at the internet edge), each frame is injected where its source lives and
every frame leaving is captured and attributed to it. Needs root, iproute2, iptables, conntrack
and perl (Debian: apt-get install iproute2 iptables conntrack perl-base). docs/kernel-oracle.md.

options:
  --scenario F     scenario file or name in scenarios/ (default: the built-in vpc-nat-instance)
  --in FILE        capture to replay (pcap or pcapng; Ethernet, raw IP, Linux cooked, ...)
  --out DIR        writes DIR/internet.pcap and DIR/<instance>.pcap (raw IPv4, one per egress
                   point, normalised frames), DIR/results.json (verdict per packet),
                   DIR/conntrack.txt (conntrack -L per NAT instance) and DIR/iptables.txt
                   (iptables -t nat -L -v -n -x per NAT instance)
  --json           print the summary as JSON
  --time M         real (default): timestamp gaps are really waited (the kernel's clock cannot
                   be advanced), at most --max-wait seconds in all, else exit 2;
                   compress: back to back (conntrack timers do not see the gaps)
  --max-wait S     real seconds the run may wait in all (default 10)
  --one-at-a-time  the original injection path (one packet per round trip, then a quiet time)
                   instead of the fast path (docs/kernel-oracle.md), to compare the two
  --settle-ms N    --one-at-a-time: quiet time that ends one packet's collection (default 3)
  --limit N        only the first N packets
  --keep           leave the namespaces in place (inspect with ip netns; remove with --cleanup)
  --check          list the prerequisites and what is missing (exit 2 if anything is), then
                   measure this machine's packets/s through the kernel engine (established UDP
                   flows through vpc-nat-instance-open: the built-in without its NATSG group,
                   which would drop UDP)
  --cleanup        remove namespaces left by crashed natlab runs (only natlab-* names whose
                   creating process is gone; --all: also those of runs still going)

exit: 0 ok, 2 bad input, usage, or missing root/tools (the message says what is missing).
`;

/**
 * The output folder must be usable before any namespace is built (a kernel run can take minutes):
 * created if missing, a writable directory, not on a special filesystem.
 */
async function checkOutDir(dir: string): Promise<void> {
  const abs = resolve(dir);
  if (/^\/(proc|sys|dev)(\/|$)/.test(abs))
    throw new InputError(`--out ${dir}: not a place for output files (special filesystem)`, dir);
  const why = (e: unknown): string => {
    const c = (e as NodeJS.ErrnoException).code;
    return c === 'EACCES' || c === 'EPERM'
      ? 'permission denied'
      : c === 'ENOTDIR'
        ? 'a path component is a file'
        : c === 'EEXIST'
          ? 'exists and is not a directory'
          : c === 'EROFS'
            ? 'read-only filesystem'
            : c === 'ENOSPC'
              ? 'no space left on the device'
              : (e as Error).message;
  };
  try {
    await mkdir(abs, { recursive: true });
    if (!(await stat(abs)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'EEXIST' });
    await access(abs, fsConstants.W_OK);
  } catch (e) {
    throw new InputError(`--out ${dir}: cannot write there: ${why(e)}`, dir);
  }
}

/** Lag per packet summarised: median, and which conntrack timeouts it exceeded for how many packets. */
function lagReport(
  lagMs: readonly number[],
  timeouts: Record<string, number>,
): { medianMs: number; timeoutsExceeded: Array<{ timeout: string; seconds: number; packets: number }> } {
  const sorted = [...lagMs].sort((x, y) => x - y);
  const medianMs = sorted.length ? Math.round(sorted[sorted.length >> 1]) : 0;
  const timeoutsExceeded = Object.entries(timeouts)
    .map(([timeout, seconds]) => ({ timeout, seconds, packets: lagMs.filter((l) => l > seconds * 1000).length }))
    .filter((t) => t.packets > 0);
  return { medianMs, timeoutsExceeded };
}

/** Packets `--check` pushes through the kernel engine to measure it (about a second). */
const CHECK_PACKETS = 3000;

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

export const command: Command = {
  name: 'kernel',
  summary: 'run a capture through the real Linux kernel (network namespaces); --check, --cleanup',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const a = parseArgs(argv, {
      flags: ['json', 'check', 'cleanup', 'all', 'keep', 'one-at-a-time'],
      values: ['scenario', 'in', 'out', 'time', 'max-wait', 'settle-ms', 'limit'],
    });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    const json = a.flags.has('json');
    if (a.flags.has('check')) {
      const r = await checkKernelPrerequisites();
      if (!json) {
        for (const i of r.items)
          process.stdout.write(`${i.ok ? 'ok     ' : 'MISSING'} ${i.name.padEnd(16)} ${i.detail}\n`);
        if (r.iptablesBackend) process.stdout.write(`iptables backend: ${r.iptablesBackend}\n`);
      }
      // What this machine sustains now (the load is part of the figure: say it).
      const speed = r.ok ? await measureKernelSpeed(loadScenario(OPEN_SCENARIO_PATH), CHECK_PACKETS, 'batch') : null;
      const load = loadavg()
        .map((x) => x.toFixed(2))
        .join(' ');
      if (json)
        process.stdout.write(`${JSON.stringify({ ...r, speed, loadAverage: load, cpus: cpus().length }, null, 2)}\n`);
      else if (speed) {
        process.stdout.write(
          `speed: ${speed.packetsPerSecond} packets/s (${speed.packets} packets of established UDP flows, ${OPEN_SCENARIO_NAME}, ` +
            `${speed.injection === 'batch' ? 'fast path' : 'one at a time'}; load average ${load}, ${cpus().length} CPUs)\n`,
        );
      }
      return r.ok ? EXIT_OK : EXIT_USAGE;
    }
    if (a.flags.has('cleanup')) {
      const pre = await checkKernelPrerequisites();
      const need = pre.items.filter((i) => (i.name === 'root' || i.name === 'ip') && !i.ok);
      if (need.length) {
        process.stderr.write(`natlab kernel: cannot clean up: ${need.map((i) => i.detail).join('; ')}\n`);
        return EXIT_USAGE;
      }
      const removed = await cleanupLeftovers(a.flags.has('all'));
      if (json) process.stdout.write(`${JSON.stringify({ removed })}\n`);
      else
        process.stdout.write(
          removed.length ? `removed ${removed.length} namespace(s): ${removed.join(' ')}\n` : 'nothing to clean up\n',
        );
      return EXIT_OK;
    }
    const inPath = a.values.get('in');
    const outDir = a.values.get('out');
    if (!inPath) throw new UsageError('--in is required');
    if (!outDir) throw new UsageError('--out is required');
    const time = (a.values.get('time') ?? 'real') as KernelTimeMode;
    if (time !== 'real' && time !== 'compress') throw new UsageError(`--time: '${time}' is not real or compress`);
    const maxWait = intOption(a, 'max-wait', 10, 0, 86400);
    const settle = intOption(a, 'settle-ms', 3, 0, 10_000);
    const limit = intOption(a, 'limit', Number.MAX_SAFE_INTEGER, 1);

    const pre = await checkKernelPrerequisites();
    if (!pre.ok) {
      process.stderr.write(`natlab kernel: ${pre.missing.join('\n  ')}\n`);
      return EXIT_USAGE;
    }
    // What we read, before the run (the --out location: checkOutDir below; docs/errors.md).
    checkInputFile(inPath, '--in');
    const scenario = loadScenario(resolveScenarioPath(a.values.get('scenario') ?? null));

    // Before any namespace exists: a bad output location must not cost a whole kernel run.
    await checkOutDir(outDir);
    // The replay runner (src/diff/replay/replay.ts) with the kernel as its one engine: frames fed
    // as captured (no re-addressing), outputs as raw IPv4 per egress point in DIR, every result kept.
    // The capture is opened before the engine is built: a missing or unreadable one builds nothing.
    let engine: KernelEngine | null = null;
    let ctText = new Map<number, string>();
    let iptText = new Map<number, string>();
    let unavailable: string | null = null;
    let run: ReplayOutcome;
    try {
      run = await runReplay({
        input: inPath,
        outDir,
        scenario,
        scenarioHow: '',
        engines: ['kernel'],
        limit: a.values.has('limit') ? limit : undefined,
        outputLinkType: LINKTYPE_RAW,
        outputFormat: 'pcap',
        engineDirs: false,
        outputFileName: (sc: Scenario, pt: number) => `${safeName(pointName(sc, pt))}.pcap`,
        readdress: false,
        keepResults: true,
        engineFactory: async () => {
          try {
            engine = await createKernelEngine(scenario, {
              timeMode: time,
              maxWaitMs: maxWait * 1000,
              settleMs: settle,
              keep: a.flags.has('keep'),
              injection: a.flags.has('one-at-a-time') ? 'single' : 'batch',
              // Said at once (the run may be long): leftovers of killed runs removed.
              log: (l) => {
                if (/^kernel: removed /.test(l)) process.stderr.write(`natlab ${l}\n`);
              },
            });
          } catch (e) {
            if (e instanceof KernelUnavailableError) unavailable = e.message;
            throw e;
          }
          return engine;
        },
        beforeClose: async () => {
          if (engine === null) return;
          ctText = await engine.conntrackText();
          iptText = await engine.iptablesText();
        },
      });
    } catch (e) {
      if (unavailable !== null) {
        process.stderr.write(`natlab kernel: ${unavailable}\n`);
        return EXIT_USAGE;
      }
      throw e;
    }
    const k = engine as KernelEngine | null;
    if (k === null) throw new Error('natlab kernel: the kernel engine was not built');
    const report = run.report;
    const elapsedMs = report.engines[0].engineMs;
    const files: Record<string, string> = {};
    for (let pt = 0; pt <= scenario.instances.length; pt++)
      files[pointName(scenario, pt)] = join(outDir, `${safeName(pointName(scenario, pt))}.pcap`);
    const byReason: Record<string, number> = {};
    let delivered = 0;
    // Far-side frames addressed to a private VPC address (a one-sided capture taken on an inside
    // host): fed as they are, the IGW has no mapping for them. Replay re-addresses them.
    let privateReplies = 0;
    const perPacket = [];
    const notFed: Array<{ n: number; reason: string }> = [];
    const kept = run.kept!.kernel;
    const raw = run.keptRaw!.kernel;
    let fedIndex = 0;
    for (let x = 0; x < kept.length; x++) {
      const fed = raw[x].fed;
      if (fed === null) {
        notFed.push({ n: kept[x].input, reason: kept[x].reason });
        continue;
      }
      const r = raw[x].result as KernelPacketResult;
      const inp = raw[x];
      if (r.fate === FATE_DELIVERED) delivered++;
      if (
        r.reason === DROP_IGW_UNKNOWN_DST &&
        inp.ingress === POINT_INTERNET &&
        fed.length >= 20 &&
        cidrContains(scenario.vpcCidr, rd32(fed, 16))
      )
        privateReplies++;
      byReason[REASONS[r.reason]] = (byReason[REASONS[r.reason]] ?? 0) + 1;
      perPacket.push({
        n: kept[x].input,
        input: describePacket(fed),
        ingress: pointName(scenario, inp.ingress),
        fate: r.fate === FATE_DELIVERED ? 'delivered' : 'dropped',
        reason: reasonName(r.reason),
        detail: r.reason === 1 ? (PARSE_STATUS_NAMES[r.detail] ?? r.detail) : r.detail,
        ct: CT_NAMES[r.ct],
        evidence: r.evidence,
        lagMs: Math.round(k.lagMs[fedIndex] ?? 0),
        outputs: r.outputs.map((o) => ({
          egress: pointName(scenario, o.egress),
          frame: describePacket(o.frame),
          adjustments: o.adjustments,
        })),
      });
      fedIndex++;
    }
    const ctFile = join(outDir, 'conntrack.txt');
    const iptFile = join(outDir, 'iptables.txt');
    const section = (m: Map<number, string>): string =>
      [...m].map(([i, t]) => `# ${scenario.instances[i].name} (${pointName(scenario, i + 1)})\n${t}`).join('\n');
    await writeFile(ctFile, section(ctText));
    await writeFile(iptFile, section(iptText));
    const summary = {
      scenario: scenario.name,
      input: inPath,
      records: report.input.records,
      fed: report.input.fed,
      notFed: report.input.notFed,
      delivered,
      dropped: report.input.fed - delivered,
      byReason,
      conntrackEntries: [...ctText.values()].reduce((n, t) => n + t.split('\n').filter((l) => l.trim()).length, 0),
      elapsedMs: Math.round(elapsedMs),
      injection: k.injection,
      packetsPerSecond: elapsedMs > 0 ? Math.round((report.input.fed / elapsedMs) * 1000) : 0,
      maxLagMs: Math.round(k.maxLagMs),
      lag: lagReport(k.lagMs, scenario.conntrack.timeouts as unknown as Record<string, number>),
      waitedMs: Math.round(k.waitedMs),
      lateFrames: k.lateFrames,
      privateAddressedFromInternet: privateReplies,
      iptablesBackend: pre.iptablesBackend,
      warnings: k.warnings,
      normalisation: KERNEL_NORMALISATION_NOTE,
      files: { ...files, conntrack: ctFile, iptables: iptFile, results: join(outDir, 'results.json') },
    };
    await writeFile(
      join(outDir, 'results.json'),
      `${JSON.stringify({ summary, notFed, packets: perPacket }, null, 2)}\n`,
    );
    if (json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      const lines = [
        `kernel: ${summary.fed} of ${summary.records} packets fed (${scenario.name}), ${delivered} delivered, ${summary.dropped} dropped in ${(elapsedMs / 1000).toFixed(2)} s`,
        ...Object.entries(byReason).map(([k, v]) => `  ${k.padEnd(20)} ${v}`),
        ...Object.entries(report.input.notFed).map(([cause, v]) => `  not fed: ${cause}: ${v}`),
        `conntrack: ${summary.conntrackEntries} entries -> ${ctFile}`,
        ...[...ctText.values()].flatMap((t) =>
          t
            .split('\n')
            .filter((l) => l.trim())
            .slice(0, 10)
            .map((l) => `  ${l}`),
        ),
        `iptables counters -> ${iptFile}`,
        `captures: ${Object.values(files).join(' ')}`,
        `speed: ${summary.packetsPerSecond} packets/s (${k.injection === 'batch' ? 'fast path' : 'one at a time'}); lag behind the virtual clock: median ${summary.lag.medianMs} ms, max ${summary.maxLagMs} ms`,
        ...summary.lag.timeoutsExceeded.map(
          (t) =>
            `kernel lagged: ${t.packets} packet(s) reached the kernel more than the ${t.timeout} timeout (${t.seconds} s) after their timestamp: expiry-dependent results for them are not comparable`,
        ),
        ...k.warnings.map((w) => `warning: ${w}`),
        ...(privateReplies
          ? [
              `note: ${privateReplies} frame(s) from the internet were addressed to private VPC addresses and dropped at the IGW (igw-unknown-dst): a one-sided capture taken on an inside host? natlab kernel feeds frames as captured; \`natlab replay --engines kernel --in ${inPath}\` re-addresses them to the mapping the kernel made for their flow (docs/replay.md)`,
            ]
          : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return EXIT_OK;
  },
};
