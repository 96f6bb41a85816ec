// natlab fuzz: differential fuzzing of the engines (model vs core, optionally the kernel).
import { randomInt } from 'node:crypto';
import cliProgress from 'cli-progress';
import { EXIT_DIFF, EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { intOption, parseArgs, UsageError } from './args.ts';
import { checkOutputFile, prepareOutputDir } from './output-location.ts';
import { formatFailure, runFuzz, type FuzzEngineSpec, type FuzzProgress } from '../diff/fuzz/fuzz.ts';
import { engineAvailability, engineDescriptor, makeEngine, parseEngineName, type EngineName } from '../diff/engines.ts';
import { loadRegression, replayRegression, REGRESSIONS_DIR, updateExpected } from '../diff/fuzz/regressions.ts';
import { fuzzSuite } from '../diff/sinks/junit-cases.ts';
import { writeJUnit } from '../diff/sinks/junit.ts';

const usage = `usage: natlab fuzz [--runs N | --time S] [--seed X] [--shard i/n] [--engines model,core[,kernel]] [--json]
       natlab fuzz --seed X --run R [--engines ...]      reproduce run R of campaign X (shrinks again)
       natlab fuzz --replay corpora/regressions/<id> [--engines ...]

Differential fuzzing: fast-check generates random VPC scenarios (NAT instances with random nat
tables, tiny --to-ports ranges, SNAT/DNAT, Elastic IPs, source/dest check, small conntrack
tables) and traffic scripts (TCP handshakes, data, FIN/RST, simultaneous open, stray segments,
UDP request/response and floods, ICMP echo, ICMP errors quoting earlier outputs, clock jumps past
timeouts, replays, malformed frames). Every packet goes through every engine; verdicts, output
frames (up to a consistent renaming of chosen ports) and conntrack tables are compared, and
invariants are checked on every output. A difference an engine documents (the kernel's
docs/kernel-differences.md: K3, E5, ...; recognised by the rules in src/oracle/differences.ts) is
counted under its class and the campaign goes on; any other fails the run, is shrunk, saved to
${REGRESSIONS_DIR}/<id>/ and printed with the one command that replays it.

options:
  --runs N            runs (scenario + command script each; default 100)
  --time S            run for S seconds instead (stops starting runs after S)
  --seed X            campaign seed (default: random, printed)
  --shard i/n         only runs r with r mod n = i (split a campaign across jobs)
  --run R             only run R of the campaign (reproduce a reported failure)
  --engines LIST      engines, the first is the reference (default model,core)
  --max-commands N    commands per run (default 40)
  --parallel N        runs at a time (default 1), each with its own engines; for the kernel,
                      its own namespace set — kernel runs mostly wait for real time, so they
                      overlap well
  --workers N         core worker threads; 0 (default) runs the core's dataplane inline on the
                      fuzzer's thread (no thread start-up per run: ~10x more runs; the thread
                      plumbing has its own pool and fault tests)
  --layout L          core table layout: record (default) or line (docs/core.md "Layouts")
  --shrink-time S     budget for shrinking a failure (default 60; every step restarts the engines)
  --confirm-runs N    re-run a shrunk failure N times on fresh engines before it counts
                      (default 3 with the kernel, 0 otherwise): one met again by fewer than
                      half depended on the real clock's timing — reported "not reproduced",
                      saved, and the campaign goes on (docs/kernel-oracle.md)
  --save-dir DIR      where counterexamples go (default ${REGRESSIONS_DIR})
  --no-save           do not save counterexamples
  --pin               with --run: save that run as a regression even if the engines agree
  --replay DIR        replay a saved counterexample; exit 1 if the engines still disagree
  --update            with --replay, after a deliberate behaviour change: the engines agree, so
                      rewrite the saved expected outputs (results, conntrack, pcaps) from this run
  --junit FILE        write JUnit XML: one test case for this campaign shard; a failure carries
                      the shrunk counterexample, its saved path and the command that replays it
  --json              machine-readable report on stdout
exit: 0 no difference (or only unreproduced ones), 1 difference found, 2 bad usage`;

function parseShard(s: string | undefined): { index: number; count: number } | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m) throw new UsageError(`--shard: '${s}' is not i/n (e.g. 0/4)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new UsageError(`--shard: ${s}: need 0 <= i < n`);
  return { index, count };
}

export async function engineSpecs(names: EngineName[], workers: number, layout?: string): Promise<FuzzEngineSpec[]> {
  return names.map((name) => {
    const d = engineDescriptor(name);
    // workers 0: engines with threads run on this thread (no thread start-up per run).
    return {
      name,
      realClock: d.realClock,
      fixedConntrackMax: d.fixedConntrackMax,
      awsFilters: d.awsFilters === true,
      filterTables: d.fuzzFilterTables === true,
      create: (s, seed) => makeEngine(name, s, { seed, workers, layout, extra: d.fuzzOptions }),
    };
  });
}

export const command: Command = {
  name: 'fuzz',
  summary: 'differential fuzzing of model vs core (vs kernel); shrinks and saves counterexamples',
  usage,
  async run(argv: string[]): Promise<number> {
    const a = parseArgs(argv, {
      flags: ['json', 'no-save', 'pin', 'update'],
      values: [
        'runs',
        'time',
        'seed',
        'shard',
        'engines',
        'max-commands',
        'parallel',
        'workers',
        'layout',
        'save-dir',
        'replay',
        'run',
        'shrink-time',
        'confirm-runs',
        'junit',
      ],
    });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    const json = a.flags.has('json');
    let names: EngineName[];
    try {
      names = (a.values.get('engines') ?? 'model,core').split(',').filter(Boolean).map(parseEngineName);
    } catch (e) {
      throw new UsageError(`--engines: ${(e as Error).message}`);
    }
    if (names.length < 2 && !a.values.has('replay'))
      throw new UsageError('--engines: give at least two engines to compare');
    if (new Set(names).size !== names.length) throw new UsageError('--engines: an engine is listed twice');
    const workers = intOption(a, 'workers', 0, 0, 64);
    if (a.values.has('junit')) checkOutputFile(a.values.get('junit')!, '--junit');
    const out = (s: string) => process.stdout.write(`${s}\n`);
    const log = (s: string) => (json ? process.stderr : process.stdout).write(`${s}\n`);

    for (const n of names) {
      const av = await engineAvailability(n);
      if (!av.ok) {
        process.stderr.write(`natlab fuzz: the ${n} engine cannot run here: ${av.missing}\n`);
        return EXIT_USAGE;
      }
    }

    // Replay a saved counterexample.
    const replayDir = a.values.get('replay');
    if (replayDir !== undefined) {
      for (const o of ['runs', 'time', 'seed', 'shard', 'run'])
        if (a.values.has(o)) throw new UsageError(`--replay cannot be combined with --${o}`);
      const reg = loadRegression(replayDir);
      const useNames = a.values.has('engines') ? names : (reg.meta.engines.map(parseEngineName) as EngineName[]);
      const specs = await engineSpecs(useNames, workers, a.values.get('layout'));
      const engines = [];
      for (const sp of specs)
        engines.push({ name: sp.name, engine: await sp.create(reg.scenario, reg.meta.engineSeed) });
      const res = await replayRegression(reg, engines);
      const mism = [...res.mismatches].filter(([, l]) => l.length > 0);
      const update = a.flags.has('update');
      const updated = update && res.differences.length === 0 ? updateExpected(reg, res) : null;
      if (json) {
        out(
          JSON.stringify(
            {
              dir: replayDir,
              engines: useNames,
              packets: res.session.packets,
              differences: res.differences,
              classified: Object.fromEntries(res.session.classified),
              mismatches: Object.fromEntries(mism),
              ...(update ? { updated } : {}),
            },
            null,
            1,
          ),
        );
      } else {
        log(
          `replayed ${replayDir}: ${res.session.packets} packets through ${useNames.join(', ')} (${reg.meta.summary.split('\n')[0]})`,
        );
        for (const d of res.differences) log(`  [${d.kind}] ${d.message}`);
        for (const [id, n] of res.session.classified)
          log(`  known difference ${id} ×${n}: ${res.session.classifiedExamples.get(id) ?? ''}`);
        for (const [n, l] of mism)
          log(
            `  ${n} differs from its saved results:\n${l
              .slice(0, 5)
              .map((x) => `    ${x}`)
              .join('\n')}`,
          );
        log(res.differences.length ? `${res.differences.length} difference(s): still failing` : 'engines agree');
        if (update)
          log(
            updated === null
              ? 'expected outputs not updated: the engines disagree'
              : `expected outputs rewritten (${updated.length ? `changed: ${updated.join(', ')}` : 'unchanged'})`,
          );
      }
      const junitFile = a.values.get('junit');
      if (junitFile) {
        const d = res.differences;
        await writeJUnit(junitFile, [
          {
            name: 'natlab fuzz --replay',
            properties: { engines: useNames.join(',') },
            cases: [
              {
                name: replayDir,
                classname: 'natlab.fuzz.regression',
                systemOut: `${res.session.packets} packets through ${useNames.join(', ')}`,
                failure: d.length
                  ? {
                      message: `[${d[0].kind}] ${d[0].message}`.slice(0, 1000),
                      type: 'EngineDifference',
                      text: [
                        ...d.map((x) => `[${x.kind}] ${x.message}`),
                        '',
                        `replay: natlab fuzz --replay ${replayDir}`,
                      ].join('\n'),
                    }
                  : undefined,
              },
            ],
          },
        ]);
      }
      return res.differences.length ? EXIT_DIFF : EXIT_OK;
    }

    if (a.values.has('runs') && a.values.has('time')) throw new UsageError('give --runs or --time, not both');
    // A run number means nothing without its campaign: --run R reproduces run R of seed X.
    if (a.values.has('run') && !a.values.has('seed'))
      throw new UsageError('--run R needs --seed X (the campaign the run belongs to)');
    const seed = a.values.has('seed') ? intOption(a, 'seed', 0, 0, 0xffffffff) : randomInt(0, 0x7fffffff);
    const runs = a.values.has('runs') ? intOption(a, 'runs', 100, 1) : undefined;
    const timeS = a.values.has('time') ? intOption(a, 'time', 60, 1) : undefined;
    const onlyRun = a.values.has('run') ? intOption(a, 'run', 0, 0) : undefined;
    const shard = parseShard(a.values.get('shard'));
    const maxCommands = intOption(a, 'max-commands', 40, 1, 10000);
    const parallel = intOption(a, 'parallel', 1, 1, 64);
    const shrinkTimeS = intOption(a, 'shrink-time', 60, 0, 86400);
    const confirmRuns = a.values.has('confirm-runs') ? intOption(a, 'confirm-runs', 3, 0, 20) : undefined;
    const saveDir = a.flags.has('no-save') ? null : (a.values.get('save-dir') ?? REGRESSIONS_DIR);
    if (a.flags.has('update')) throw new UsageError('--update needs --replay DIR (the counterexample to re-record)');
    if (a.flags.has('pin') && onlyRun === undefined) throw new UsageError('--pin needs --run R (the run to keep)');
    if (a.flags.has('no-save') && a.values.has('save-dir'))
      throw new UsageError('--no-save and --save-dir exclude each other');
    // Counterexamples are written at the end of a long campaign: check the place now (not created).
    if (saveDir !== null)
      prepareOutputDir(saveDir, a.values.has('save-dir') ? '--save-dir' : 'counterexample directory', false);
    const engines = await engineSpecs(names, workers, a.values.get('layout'));

    log(
      `natlab fuzz: seed ${seed}, engines ${names.join(' vs ')}${shard ? `, shard ${shard.index}/${shard.count}` : ''}${onlyRun !== undefined ? `, run ${onlyRun}` : ''}, ${timeS !== undefined ? `${timeS} s` : `${runs ?? 100} runs`}`,
    );
    const tty = !json && process.stdout.isTTY === true;
    let bar: cliProgress.SingleBar | null = null;
    let lastLine = 0;
    const onProgress = (p: FuzzProgress) => {
      if (tty) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              format:
                ' {bar} {value}/{total} runs | {scenarios} scenarios {commands} commands {packets} packets | {phase}',
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.runs ?? timeS ?? 0, 0, { scenarios: 0, commands: 0, packets: 0, phase: '' });
        }
        const value = p.runs !== null ? p.run : Math.min(timeS ?? 0, Math.round(p.elapsedMs / 1000));
        bar.update(value, {
          scenarios: p.scenarios,
          commands: p.commands,
          packets: p.packets,
          phase: p.phase === 'shrink' ? 'shrinking…' : '',
        });
      } else if (!json && (p.phase !== 'run' || Date.now() - lastLine > 5000)) {
        if (p.phase === 'shrink' && Date.now() - lastLine < 5000) return;
        lastLine = Date.now();
        log(
          `  ${p.run}${p.runs ? `/${p.runs}` : ''} runs, ${p.scenarios} scenarios, ${p.commands} commands, ${p.packets} packets, ${(p.elapsedMs / 1000).toFixed(1)} s${p.phase === 'shrink' ? ' (shrinking)' : ''}`,
        );
      }
    };
    // Engines that all draw ports from the model's generator (EngineDescriptor.modelPortChoices):
    // between them a renaming is a difference, not a tolerance.
    const exactPorts = names.every((n) => {
      const c = engineDescriptor(n).modelPortChoices;
      return c === 'always' || (c === 'one-worker' && workers <= 1);
    });
    const report = await runFuzz({
      engines,
      exactPorts,
      seed,
      runs,
      timeS,
      shard,
      maxCommands,
      parallel,
      saveDir,
      onlyRun,
      pin: a.flags.has('pin'),
      shrinkTimeS,
      confirmRuns,
      onProgress,
    });
    (bar as cliProgress.SingleBar | null)?.stop();
    const junit = a.values.get('junit');
    if (junit) await writeJUnit(junit, [fuzzSuite(report, { engines: names, shard })]);
    if (json) {
      out(JSON.stringify(report, null, 1));
    } else {
      log(
        `seed ${seed}: ${report.runs} runs, ${report.scenarios} scenarios, ${report.commands} commands, ${report.packets} packets in ${(report.elapsedMs / 1000).toFixed(1)} s`,
      );
      const known = Object.entries(report.classified);
      if (known.length) {
        log(
          `documented differences recognised (docs/kernel-differences.md; the core's with --workers ≥ 2: docs/fuzzing.md), not failures:`,
        );
        for (const [id, n] of known)
          log(`  ${id.padEnd(8)} ${String(n).padStart(6)}  e.g. ${report.classifiedExamples[id] ?? ''}`);
      }
      if (report.unreproduced.length) {
        log(
          `${report.unreproduced.length} failure(s) not reproduced by their re-runs on fresh engines (timing of the real clock; saved for analysis, not failures):`,
        );
        for (const f of report.unreproduced) log(formatFailure(f).replace(/^/gm, '  '));
      }
      if (report.failure) log(formatFailure(report.failure));
      else log(known.length ? 'no unclassified difference found' : 'no difference found');
      if (report.pinned) log(`pinned: saved to ${report.pinned}`);
    }
    return report.failure ? EXIT_DIFF : EXIT_OK;
  },
};
