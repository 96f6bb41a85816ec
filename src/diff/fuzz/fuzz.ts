// The differential fuzzer: fast-check generates a scenario and a command sequence, the commands
// run through every engine (DiffSession), any difference or invariant violation fails the run,
// fast-check shrinks it, and the shrunk counterexample is re-run once to be recorded and saved.
//
// A campaign is a sequence of runs; run r uses seed runSeed(seed, r), so a campaign splits across
// machines deterministically (`--shard i/n` takes the runs with r mod n = i) and any single run
// replays from its printed seed (and path).

import fc from 'fast-check';
import type { Engine } from '../../spec/engine.ts';
import type { Scenario } from '../../spec/scenario.ts';
import {
  fuzzScenario,
  fuzzScenarioSpecArbFor,
  describeFuzzSpec,
  type FuzzScenarioSpec,
} from '../../traffic/fuzz-scenario.ts';
import { fuzzCommandsArb, FuzzReal, type FuzzModel } from './commands.ts';
import { DiffSession, DifferenceError, type SessionEngine } from './session.ts';
import type { Difference } from '../compare/compare.ts';
import { saveRegression } from './regressions.ts';
import { releaseEngineMemory } from './release-memory.ts';

export interface FuzzEngineSpec {
  name: string;
  create(scenario: Scenario, seed: number): Promise<Engine>;
  /** The engine runs on a real clock (EngineDescriptor.realClock): see FuzzOptions.realTime. */
  realClock?: boolean;
  /** The engine cannot enforce the scenario's conntrack maximum (EngineDescriptor.fixedConntrackMax). */
  fixedConntrackMax?: boolean;
  /** Implements security groups and network ACLs (EngineDescriptor.awsFilters): when every engine does, scenarios get them. */
  awsFilters?: boolean;
  /** Evaluates the NAT instances' filter tables in fuzz campaigns (EngineDescriptor.fuzzFilterTables): when every engine does, scenarios get them. */
  filterTables?: boolean;
}

export interface FuzzProgress {
  run: number;
  runs: number | null;
  scenarios: number;
  commands: number;
  packets: number;
  elapsedMs: number;
  phase: 'run' | 'shrink' | 'done';
}

export interface FuzzOptions {
  engines: FuzzEngineSpec[];
  seed: number;
  /** Number of runs (default 100 unless timeS is given). */
  runs?: number;
  /** Wall-clock budget in seconds (stops starting new runs after it). */
  timeS?: number;
  shard?: { index: number; count: number };
  maxCommands?: number;
  /** A flood[] command slot is a flow shape at scale (shape[]) 1 in this many times (default SHAPE_ONE_IN). */
  shapeOneIn?: number;
  /**
   * An engine runs in real time (the kernel: its clock cannot jump): scenarios get short timeouts
   * and clock steps stay ±0.5 s away from them. Default: true when an engine has realClock.
   */
  realTime?: boolean;
  /**
   * Every engine chooses ports like the model (the model and a one-worker core share one seeded
   * generator): a renaming between them is a difference, not a tolerance. Default false.
   */
  exactPorts?: boolean;
  /** With onlyRun: save the run as a regression even though it passes (pin an interesting case). */
  pin?: boolean;
  /** Wall-clock budget for shrinking a failure (default 60 s). */
  shrinkTimeS?: number;
  /** Run only this run index of the campaign (reproduces a reported failure, shrinking included). */
  onlyRun?: number;
  /** Runs at a time (default 1): independent runs in parallel lanes. */
  parallel?: number;
  /** Where to save counterexamples (null: do not save). */
  saveDir?: string | null;
  /**
   * Re-runs of a shrunk failure on fresh engines before it counts (default 3 when an engine runs
   * in real time, else 0). A failure that fewer than half of them meet again (same first
   * difference kind) depended on the real clock's scheduling — the model is deterministic — so it
   * is reported under `unreproduced`, saved, and the campaign goes on.
   */
  confirmRuns?: number;
  onProgress?(p: FuzzProgress): void;
}

export interface FuzzFailure {
  seed: number;
  run: number;
  runSeed: number;
  path: string;
  scenario: string;
  commands: string[];
  differences: Difference[];
  savedTo: string | null;
  /** Replays the saved case (or, when not saved, re-runs the run). */
  replayCommand: string;
  /** Re-runs the campaign's run (shrinking again): works without the saved directory. */
  reproduceCommand: string;
  error?: string;
  /** Re-runs of the shrunk case on fresh engines, and how many met the same failure again. */
  confirmation?: { runs: number; failed: number };
}

export interface FuzzReport {
  seed: number;
  runs: number;
  scenarios: number;
  commands: number;
  packets: number;
  shrinks: number;
  elapsedMs: number;
  /**
   * The most flows one shape[] command sent in a run with every packet delivered (reference
   * engine, engines agreeing): shows the campaign reached scale (0: no complete shape ran).
   */
  shapeFlowsDelivered: number;
  failure: FuzzFailure | null;
  /**
   * Failures that their confirmation re-runs did not meet again (FuzzOptions.confirmRuns): timing
   * of the real clock, not a difference of the engines' semantics. Saved; not failures.
   */
  unreproduced: FuzzFailure[];
  /** Where a pinned run was saved. */
  pinned?: string;
  /** Documented differences recognised by an engine's rule (not failures), per class id. */
  classified: Record<string, number>;
  /** One example per class. */
  classifiedExamples: Record<string, string>;
}

/** Deterministic per-run seed (32-bit mix of the campaign seed and the run index). */
export function runSeed(seed: number, run: number): number {
  let h = (seed ^ Math.imul(run + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) & 0x7fffffff;
}

interface Captured {
  spec: FuzzScenarioSpec;
  scenario: Scenario;
  engineSeed: number;
  session: DiffSession;
  /** The commands as run (re-runnable: a confirmation runs them again on fresh engines). */
  cmds: readonly fc.AsyncCommand<FuzzModel, FuzzReal>[];
  commands: string[];
  error: unknown;
}

/** What a campaign counts; zeroed. */
function emptyCounters(): Counters {
  return { scenarios: 0, commands: 0, packets: 0, shapeFlowsDelivered: 0, classified: {}, classifiedExamples: {} };
}

interface Counters {
  scenarios: number;
  commands: number;
  packets: number;
  shapeFlowsDelivered: number;
  classified: Record<string, number>;
  classifiedExamples: Record<string, string>;
}

/** The engines of a fuzz campaign run in real time (the kernel): see FuzzOptions.realTime. */
function isRealTime(opts: FuzzOptions): boolean {
  return opts.realTime ?? opts.engines.some((e) => e.realClock === true);
}

/**
 * One run: fresh engines on the scenario, the commands through a DiffSession, the tables compared
 * at the end. Counts into `counters`; reports the run (failed or not) to `onExec`; throws the
 * run's difference or error.
 */
async function executeRun(
  opts: FuzzOptions,
  counters: Counters,
  cmds: readonly fc.AsyncCommand<FuzzModel, FuzzReal>[],
  spec: FuzzScenarioSpec,
  engineSeed: number,
  onExec: (c: Captured) => void,
): Promise<void> {
  const scenario = fuzzScenario(spec);
  const engines: SessionEngine[] = [];
  let session: DiffSession | null = null;
  const list = [...cmds];
  try {
    // Start the engines in parallel and warm them up (the core starts its worker threads on
    // first use, ~2 s each): advance(0) is a no-op on the virtual clock.
    const made = await Promise.allSettled(opts.engines.map((e) => e.create(scenario, engineSeed)));
    made.forEach((m, i) => {
      if (m.status === 'fulfilled') engines.push({ name: opts.engines[i].name, engine: m.value });
    });
    const bad = made.find((m) => m.status === 'rejected');
    if (bad) throw (bad as PromiseRejectedResult).reason;
    await Promise.all(engines.map((e) => e.engine.advance(0)));
    session = new DiffSession(scenario, engines, { throwOnDifference: true, exactPorts: opts.exactPorts });
    const real = new FuzzReal(session, scenario);
    real.coarseTime = isRealTime(opts);
    counters.scenarios++;
    let error: unknown = null;
    try {
      await fc.asyncModelRun(() => ({ model: { flows: 0 } as FuzzModel, real }), list);
      await session.finish();
    } catch (e) {
      error = e;
      await session.captureTables().catch(() => undefined);
    }
    counters.commands += list.length;
    counters.packets += session.packets;
    counters.shapeFlowsDelivered = Math.max(counters.shapeFlowsDelivered, real.shapeFlowsDelivered);
    for (const [id, n] of session.classified) counters.classified[id] = (counters.classified[id] ?? 0) + n;
    for (const [id, ex] of session.classifiedExamples) counters.classifiedExamples[id] ??= ex;
    onExec({ spec, scenario, engineSeed, session, cmds: list, commands: list.map(String), error });
    if (error) throw error;
  } finally {
    if (session) await session.close();
    else for (const e of engines) await e.engine.close().catch(() => undefined);
    releaseEngineMemory();
  }
}

function makeProperty(opts: FuzzOptions, counters: Counters, onExec: (c: Captured) => void, skip: () => boolean) {
  const maxCommands = opts.maxCommands ?? 40;
  // Commands first: fast-check shrinks tuple elements in order, and dropping commands is the
  // biggest win per (expensive) execution.
  const realTime = isRealTime(opts);
  return fc.asyncProperty(
    fuzzCommandsArb(maxCommands, opts.shapeOneIn),
    // NAT gateways only where every engine can judge them (not the kernel engine: docs/kernel-differences.md).
    fuzzScenarioSpecArbFor({
      shortTimeouts: realTime,
      defaultCtMax: opts.engines.some((e) => e.fixedConntrackMax === true),
      natGateways: opts.engines.every((e) => e.name !== 'kernel' && e.realClock !== true),
      awsFilters: opts.engines.every((e) => e.awsFilters === true),
      filterTables: opts.engines.every((e) => e.filterTables === true),
    }),
    fc.integer({ min: 1, max: 0x7fffffff }),
    async (cmds, spec, engineSeed) => {
      // Past the shrink budget every further candidate "passes" at once, so fast-check ends with
      // the smallest failing case found so far.
      if (skip()) return;
      await executeRun(opts, counters, [...cmds], spec, engineSeed, onExec);
    },
  );
}

/** The kind of a run's failure, to tell "the same failure again" from another one. */
function failureKind(error: unknown): string {
  return error instanceof DifferenceError ? (error.differences[0]?.kind ?? 'difference') : 'error';
}

/**
 * Runs a shrunk failure again on fresh engines, `runs` times, and counts the re-runs that fail the
 * same way. Bounded: each re-run is one run of the (shrunk) command list.
 */
async function confirmFailure(opts: FuzzOptions, c: Captured, runs: number): Promise<{ runs: number; failed: number }> {
  const want = failureKind(c.error);
  let failed = 0;
  for (let i = 0; i < runs; i++) {
    const scratch: Counters = emptyCounters();
    try {
      await executeRun(opts, scratch, c.cmds, c.spec, c.engineSeed, () => undefined);
    } catch (e) {
      if (failureKind(e) === want) failed++;
    }
  }
  return { runs, failed };
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = Date.now();
  const counters: Counters = emptyCounters();
  const report: FuzzReport = {
    seed: opts.seed,
    runs: 0,
    scenarios: 0,
    commands: 0,
    packets: 0,
    shapeFlowsDelivered: 0,
    shrinks: 0,
    elapsedMs: 0,
    failure: null,
    unreproduced: [],
    classified: {},
    classifiedExamples: {},
  };
  const confirmRuns = opts.confirmRuns ?? (isRealTime(opts) ? 3 : 0);
  const shard = opts.shard ?? { index: 0, count: 1 };
  const maxRuns =
    opts.onlyRun !== undefined ? 1 : (opts.runs ?? (opts.timeS !== undefined ? Number.MAX_SAFE_INTEGER : 100));
  const deadline = opts.timeS !== undefined ? t0 + opts.timeS * 1000 : Infinity;
  const progress = (run: number, phase: FuzzProgress['phase']) =>
    opts.onProgress?.({
      run,
      runs: Number.isFinite(maxRuns) && maxRuns < Number.MAX_SAFE_INTEGER ? maxRuns : null,
      ...counters,
      elapsedMs: Date.now() - t0,
      phase,
    });

  let done = 0;
  let started = 0;
  let nextR = opts.onlyRun ?? 0;
  let stop = false;
  const add = (c: Counters, d: Counters): void => {
    c.scenarios += d.scenarios;
    c.commands += d.commands;
    c.packets += d.packets;
    c.shapeFlowsDelivered = Math.max(c.shapeFlowsDelivered, d.shapeFlowsDelivered);
    for (const [id, n] of Object.entries(d.classified)) c.classified[id] = (c.classified[id] ?? 0) + n;
    for (const [id, ex] of Object.entries(d.classifiedExamples)) c.classifiedExamples[id] ??= ex;
  };
  // Independent runs in parallel lanes (each its own engines; for the kernel, its own namespace
  // set): runs that mostly wait for real time overlap. One lane reproduces a single run.
  const lanes = opts.onlyRun !== undefined ? 1 : Math.max(1, opts.parallel ?? 1);
  const lane = async (): Promise<void> => {
    while (!stop && started < maxRuns && Date.now() < deadline) {
      const r = nextR++;
      if (opts.onlyRun === undefined && r % shard.count !== shard.index) continue;
      started++;
      const rs = runSeed(opts.seed, r);
      let first = true;
      const box: { last: Captured | null; first: Captured | null } = { last: null, first: null };
      const mine: Counters = emptyCounters();
      let shrinkDeadline = Infinity;
      const prop = makeProperty(
        opts,
        mine,
        (c) => {
          if (!first && !c.error) return;
          if (first) {
            box.first = c;
            first = false;
            shrinkDeadline = Date.now() + (opts.shrinkTimeS ?? 60) * 1000;
          } else progress(done, 'shrink');
          if (c.error) box.last = c;
        },
        () => !first && Date.now() > shrinkDeadline,
      );
      const details = await fc.check(prop, { seed: rs, numRuns: 1, endOnFailure: false });
      done++;
      report.runs = done;
      if (!details.failed) {
        add(counters, mine);
        progress(done, 'run');
        if (opts.pin && box.first && opts.saveDir !== null) {
          const c = box.first;
          report.pinned = saveRegression({
            dir: opts.saveDir ?? 'corpora/regressions',
            id: `pinned-${rs.toString(16)}`,
            scenario: c.scenario,
            session: c.session,
            differences: [],
            conntrack: c.session.tables ?? undefined,
            meta: {
              engineSeed: c.engineSeed,
              seed: opts.seed,
              run: r,
              runSeed: rs,
              path: '',
              commands: c.commands,
              summary: `pinned: engines agree on run ${r} of seed ${opts.seed} (${describeFuzzSpec(c.spec)})`,
            },
          });
        }
        continue;
      }
      // Counters count the original run only, not shrinking re-executions.
      if (stop) return; // another lane failed first: its failure is the report's
      const orig: Counters = { ...emptyCounters(), scenarios: 1 };
      if (box.first) {
        for (const [id, n] of box.first.session.classified) orig.classified[id] = (orig.classified[id] ?? 0) + n;
        for (const [id, ex] of box.first.session.classifiedExamples) orig.classifiedExamples[id] ??= ex;
        orig.commands = box.first.commands.length;
        orig.packets = box.first.session.packets;
      }
      add(counters, orig);
      const path = details.counterexamplePath ?? '';
      // fast-check's counterexample is the last failing execution (each accepted shrink fails).
      const c: Captured | null = box.last;
      const err = c?.error ?? details.errorInstance;
      const differences = err instanceof DifferenceError ? err.differences : [];
      const confirmation = c && confirmRuns > 0 ? await confirmFailure(opts, c, confirmRuns) : undefined;
      const reproduced = !confirmation || confirmation.failed * 2 > confirmation.runs;
      if (reproduced) {
        if (stop) return;
        stop = true;
        report.shrinks = details.numShrinks;
      }
      const failure: FuzzFailure = {
        seed: opts.seed,
        run: r,
        runSeed: rs,
        path,
        scenario: c ? describeFuzzSpec(c.spec) : '',
        commands: c?.commands ?? [],
        differences,
        savedTo: null,
        replayCommand: `natlab fuzz --engines ${opts.engines.map((e) => e.name).join(',')} --seed ${opts.seed} --run ${r}`,
        reproduceCommand: `natlab fuzz --engines ${opts.engines.map((e) => e.name).join(',')} --seed ${opts.seed} --run ${r}`,
        error: err instanceof DifferenceError ? undefined : String((err as Error)?.stack ?? err),
        confirmation,
      };
      if (c && opts.saveDir !== null) {
        const id = `${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${reproduced ? '' : 'unreproduced-'}${differences[0]?.kind ?? 'error'}-${rs.toString(16)}`;
        const confirmed = confirmation
          ? ` (${reproduced ? 'met again' : 'NOT met again'} in ${confirmation.failed} of ${confirmation.runs} re-runs)`
          : '';
        const summary = differences.length
          ? `${differences[0].kind}: ${differences[0].message.split('\n')[0]}${confirmed}`
          : `error: ${String((err as Error)?.message ?? err).split('\n')[0]}${confirmed}`;
        failure.savedTo = saveRegression({
          dir: opts.saveDir ?? 'corpora/regressions',
          id,
          scenario: c.scenario,
          session: c.session,
          differences,
          conntrack: c.session.tables ?? undefined,
          meta: { engineSeed: c.engineSeed, seed: opts.seed, run: r, runSeed: rs, path, commands: c.commands, summary },
        });
        failure.replayCommand = `natlab fuzz --replay ${failure.savedTo}`;
      }
      if (!reproduced) {
        report.unreproduced.push(failure);
        progress(done, 'run');
        continue;
      }
      report.failure = failure;
      return;
    }
  };
  await Promise.all(Array.from({ length: lanes }, () => lane()));
  Object.assign(report, counters);
  report.elapsedMs = Date.now() - t0;
  progress(done, 'done');
  return report;
}

/** The failure as a story, for terminals and logs. */
export function formatFailure(f: FuzzFailure): string {
  const lines = [
    `FAILED run ${f.run} (campaign seed ${f.seed}, run seed ${f.runSeed}, fast-check path ${f.path || '-'})`,
    `scenario: ${f.scenario}`,
    'commands (shrunk):',
    ...f.commands.map((c) => `  ${c}`),
  ];
  if (f.differences.length)
    lines.push('differences:', ...f.differences.slice(0, 10).map((d) => `  [${d.kind}] ${d.message}`));
  if (f.error) lines.push(`error: ${f.error}`);
  if (f.confirmation)
    lines.push(
      `confirmation: met again in ${f.confirmation.failed} of ${f.confirmation.runs} re-runs on fresh engines${f.confirmation.failed * 2 > f.confirmation.runs ? '' : " — not reproduced: the real clock's timing, not a failure"}`,
    );
  if (f.savedTo) lines.push(`saved to ${f.savedTo}`);
  lines.push(`replay: ${f.replayCommand}`);
  if (f.reproduceCommand !== f.replayCommand) lines.push(`or re-run: ${f.reproduceCommand}`);
  return lines.join('\n');
}
