// The replay corpus (corpora/manifest.yaml): generated captures for the bundled scenarios and
// real captures from ../shared/corpora, each with its expected outputs per engine. `verify`
// replays every entry through every available engine and fails on any difference between the
// engines or any change from the saved expected outputs; `update` rewrites them. Cold path.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { LINKTYPE_ETHERNET } from '../../packet/constants.ts';
import { encodePcap, readCapture } from '../../pcap/index.ts';
import { BUILTIN_SCENARIO_NAME, SCENARIOS_DIR, loadBuiltinScenario, loadScenario } from '../../scenario/index.ts';
import { InputError } from '../../spec/errors.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { scriptedCaptures, scriptedEthernet, type ScriptedCapture } from '../../traffic/scripted.ts';
import { outputFileName, runReplay, type EngineFactory, type KeptResult } from './replay.ts';
import { ENGINE_NAMES, engineAvailability, findEngine, type EngineName } from '../engines.ts';
import { comparePacket, PortRenaming, type PacketCompareContext } from '../compare/compare.ts';
import type { PacketResult } from '../../spec/engine.ts';
import { CT_NAMES, FATE_DELIVERED, FATE_DROPPED, reasonCode, reasonName } from '../../spec/reasons.ts';
import { POINT_INTERNET, instancePoint, pointName } from '../../spec/scenario.ts';
import { scenarioForCapture } from './scenario.ts';
import type { EngineSummary, ReplayReport } from './report.ts';

/** The project's corpora/ directory. */
export const CORPORA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'corpora');
export const MANIFEST_NAME = 'manifest.yaml';

/** Where `shared:` inputs live: $NATLAB_SHARED_CORPORA, else ../shared/corpora beside the clone. */
export function sharedCorporaDir(): string {
  return process.env.NATLAB_SHARED_CORPORA ?? resolve(CORPORA_DIR, '..', '..', 'shared', 'corpora');
}

export interface CorpusEntry {
  name: string;
  description: string;
  /** 'generated' (input written by src/traffic/scripted.ts) or 'real'. */
  kind: 'generated' | 'real';
  /** Input capture: relative to corpora/, or `shared:<path>` under the shared corpora. */
  input: string;
  /** generated only: the scripted capture's name. */
  generator: string | null;
  /**
   * 'builtin' (scenarios/vpc-nat-instance.yaml), the bare name of a file in scenarios/ (e.g.
   * 'vpc-nat-instance-open'), a scenario file relative to corpora/, or null with `inside`.
   */
  scenario: string | null;
  /** --inside CIDRs: the scenario is built around the capture. */
  inside: string | null;
  /** Kernel engine clock for this entry ('real' default; 'compress' for captures with long gaps). */
  kernelTime: 'real' | 'compress';
  /** Expected replay exit code (0 unless the entry is a deliberately broken capture). */
  expectExit: number;
  knownDifferences: KnownDifference[];
}

const ENTRY_KEYS = [
  'name',
  'description',
  'kind',
  'input',
  'generator',
  'scenario',
  'inside',
  'kernelTime',
  'expectExit',
  'knownDifferences',
];

/**
 * A difference between two engines that is understood and tracked (an engine bug or a documented
 * divergence): tolerated on this entry, and reported. Strict: when the difference no longer
 * occurs, verify fails until the manifest line is removed.
 */
export interface KnownDifference {
  engines: [string, string];
  why: string;
}

export function entryDir(e: CorpusEntry, root = CORPORA_DIR): string {
  return join(root, e.kind, e.name);
}

export function inputPath(e: CorpusEntry, root = CORPORA_DIR): string {
  return e.input.startsWith('shared:')
    ? join(sharedCorporaDir(), e.input.slice('shared:'.length))
    : join(root, e.input);
}

export async function loadManifest(root = CORPORA_DIR): Promise<CorpusEntry[]> {
  const file = join(root, MANIFEST_NAME);
  let data: unknown;
  try {
    data = parseYaml(await readFile(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file}: ${(e as Error).message}`, file);
  }
  const list = (data as { entries?: unknown })?.entries;
  if (!Array.isArray(list)) throw new InputError(`${file}: 'entries' must be a list`, file, 'entries');
  const seen = new Set<string>();
  return list.map((raw, i) => {
    const where = `entries[${i}]`;
    const o = raw as Record<string, unknown>;
    const bad = (what: string) => new InputError(`${file}: ${where}: ${what}`, file, where);
    if (!o || typeof o !== 'object') throw bad('not a mapping');
    for (const k of Object.keys(o))
      if (!ENTRY_KEYS.includes(k)) throw bad(`unknown key '${k}' (expected ${ENTRY_KEYS.join(', ')})`);
    const str = (k: string, req: boolean): string | null => {
      const v = o[k];
      if (v === undefined || v === null) {
        if (req) throw bad(`'${k}' is required`);
        return null;
      }
      if (typeof v !== 'string') throw bad(`'${k}' must be a string`);
      return v;
    };
    const name = str('name', true)!;
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(name))
      throw bad(`name '${name}' must be lower-case letters, digits, '-', '_' or '.'`);
    if (seen.has(name)) throw bad(`duplicate name '${name}'`);
    seen.add(name);
    const kind = str('kind', true);
    if (kind !== 'generated' && kind !== 'real') throw bad(`kind must be generated or real, not '${kind}'`);
    const kernelTime = str('kernelTime', false) ?? 'real';
    if (kernelTime !== 'real' && kernelTime !== 'compress') throw bad(`kernelTime must be real or compress`);
    const scenario = str('scenario', false);
    const inside = str('inside', false);
    if ((scenario === null) === (inside === null)) throw bad(`give exactly one of 'scenario' and 'inside'`);
    const generator = str('generator', false);
    if (kind === 'generated' && !generator) throw bad(`a generated entry needs 'generator'`);
    const expectExit = o.expectExit === undefined ? 0 : o.expectExit;
    if (expectExit !== 0 && expectExit !== 1 && expectExit !== 2) throw bad(`expectExit must be 0, 1 or 2`);
    const known: KnownDifference[] = [];
    if (o.knownDifferences !== undefined) {
      if (!Array.isArray(o.knownDifferences))
        throw bad(`knownDifferences must be a list of { engines: a,b, why: text }`);
      o.knownDifferences.forEach((k: unknown, j: number) => {
        const kd = k as { engines?: unknown; why?: unknown };
        const pair = typeof kd?.engines === 'string' ? kd.engines.split(',').map((x) => x.trim()) : [];
        if (pair.length !== 2 || typeof kd.why !== 'string' || !kd.why)
          throw bad(`knownDifferences[${j}]: needs engines: 'a,b' and why: text`);
        known.push({ engines: [pair[0], pair[1]], why: kd.why });
      });
    }
    const description =
      str('description', false) ??
      (generator ? (scriptedCaptures().find((c) => c.name === generator)?.description ?? '') : '');
    return {
      name,
      description,
      kind,
      input: str('input', true)!,
      generator,
      scenario,
      inside,
      kernelTime,
      expectExit,
      knownDifferences: known,
    };
  });
}

/** The input capture bytes of a generated entry, as the generator writes them now. */
export function generatedInput(c: ScriptedCapture): Uint8Array {
  return encodePcap(
    c.frames.map((f) => ({
      tsSec: Math.floor(f.timeUs / 1e6),
      tsNsec: (f.timeUs % 1e6) * 1000,
      data: scriptedEthernet(f),
    })),
    { linkType: LINKTYPE_ETHERNET },
  );
}

/** A manifest `scenario` value naming a file of scenarios/ (no '/', no extension). */
const BUNDLED_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export async function entryScenario(e: CorpusEntry, root = CORPORA_DIR): Promise<{ scenario: Scenario; how: string }> {
  if (e.scenario === 'builtin')
    return { scenario: loadBuiltinScenario(), how: `built-in scenario ${BUILTIN_SCENARIO_NAME}` };
  if (e.scenario !== null && BUNDLED_NAME.test(e.scenario)) {
    const p = join(SCENARIOS_DIR, `${e.scenario}.yaml`);
    if (!existsSync(p)) throw new InputError(`no scenario '${e.scenario}' in scenarios/ (${p})`);
    return { scenario: loadScenario(p), how: `scenario ${e.scenario} (scenarios/${e.scenario}.yaml)` };
  }
  if (e.scenario !== null) {
    const p = join(root, e.scenario);
    return { scenario: loadScenario(p), how: `scenario ${e.scenario}` };
  }
  const c = await scenarioForCapture(inputPath(e, root), e.inside!, Infinity, e.name);
  return { scenario: c.scenario, how: c.how };
}

/** What results.json of one engine holds: deterministic (no timings). */
export interface ExpectedResults {
  entry: string;
  engine: string;
  scenario: string;
  summary: Omit<EngineSummary, 'engineMs' | 'mappingsEvicted'>;
  packets: KeptResult[];
}

function expectedResults(e: CorpusEntry, r: ReplayReport, engine: string, kept: KeptResult[]): ExpectedResults {
  const s = r.engines.find((x) => x.engine === engine)!;
  const { engineMs: _ms, mappingsEvicted: _ev, ...rest } = s;
  const sorted = <T>(o: Record<string, T>) =>
    Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  // Counters in a canonical key order, so the file only changes when a count does.
  const summary = { ...rest, droppedByReason: sorted(rest.droppedByReason), ct: sorted(rest.ct) };
  return { entry: e.name, engine, scenario: r.scenario.name, summary, packets: kept };
}

export interface EntryOutcome {
  name: string;
  ok: boolean;
  engines: string[];
  /** One line per problem (engine differences, changes from the expected outputs). */
  problems: string[];
  /** What --update wrote. */
  updated: string[];
  packets: number;
  /** Known differences of the entry that occurred (tolerated), and how many differences they made. */
  known: string[];
  knownCount?: number;
  /** Why the entry was not run (its real capture is not available here); ok stays true. */
  skipped?: string;
  /** Wall-clock seconds the entry took (its own run; entries may overlap with --parallel). */
  seconds: number;
}

export interface VerifyOptions {
  engines: string[];
  /** Core worker threads (default 1: the corpus is small, start-up dominates). */
  workers?: number;
  update?: boolean;
  only?: string[];
  root?: string;
  engineFactory?: EngineFactory;
  /** Called as each entry finishes. */
  onEntry?: (o: EntryOutcome) => void;
  /**
   * Fail (instead of skipping) entries whose real capture lives in the shared corpora when that
   * folder is absent. CI sets it: there the folder is always beside the clone.
   */
  requireShared?: boolean;
  /** Kernel engine injection path ('batch' default; 'single' = one at a time, for comparison). */
  kernelInjection?: 'batch' | 'single';
  /**
   * Entries verified at the same time (default 1). Each has its own engines (the kernel engine its
   * own namespace set), so they are independent; their real-time waits and namespace set-up overlap.
   * Outcomes are still reported in manifest order.
   */
  parallel?: number;
}

async function readAll(path: string): Promise<Array<{ timeUs: number; data: Uint8Array }>> {
  const out: Array<{ timeUs: number; data: Uint8Array }> = [];
  for await (const r of readCapture(path)) out.push({ timeUs: r.timeUs, data: new Uint8Array(r.data) });
  return out;
}

/** First difference between two output captures, or null. */
async function comparePcaps(saved: string, fresh: string): Promise<string | null> {
  const a = await readAll(saved);
  const b = await readAll(fresh);
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i].data;
    const y = b[i].data;
    if (a[i].timeUs !== b[i].timeUs)
      return `packet #${i + 1}: timestamp ${a[i].timeUs} us saved, ${b[i].timeUs} us now`;
    if (x.length !== y.length || x.some((v, k) => v !== y[k])) {
      let k = 0;
      while (k < x.length && x[k] === y[k]) k++;
      return `packet #${i + 1}: bytes differ from offset ${k} (saved ${x.length} bytes, now ${y.length})`;
    }
  }
  if (a.length !== b.length) return `${a.length} packets saved, ${b.length} now`;
  return null;
}

function firstJsonDifference(saved: ExpectedResults, now: ExpectedResults): string {
  const ss = JSON.stringify(saved.summary);
  const ns = JSON.stringify(now.summary);
  const n = Math.max(saved.packets.length, now.packets.length);
  for (let i = 0; i < n; i++) {
    const a = JSON.stringify(saved.packets[i] ?? null);
    const b = JSON.stringify(now.packets[i] ?? null);
    if (a !== b) return `input #${i + 1}: saved ${a}; now ${b}`;
  }
  if (ss !== ns) return `summary: saved ${ss}; now ${ns}`;
  return 'scenario or header changed';
}

/** True when every difference of the run is between a known pair (so exit 1 is expected). */
function problemsAreOnlyKnown(r: ReplayReport, isKnown: (a: string, b: string) => boolean): boolean {
  return (
    r.differences.first.every((d) => isKnown(d.engines[0], d.engines[1])) &&
    r.differences.conntrack.every((c) => {
      const m = /^(\S+) vs (\S+): /.exec(c);
      return m !== null && isKnown(m[1], m[2]);
    })
  );
}

/** A saved run (results.json + the egress pcaps) as PacketResults, frames without Ethernet. */
async function loadSavedRun(saved: ExpectedResults, dir: string, s: Scenario): Promise<PacketResult[]> {
  const frames = new Map<string, Uint8Array[]>();
  const pointOf = (name: string) =>
    name === 'internet' ? POINT_INTERNET : instancePoint(s.instances.findIndex((i) => i.name === name));
  for (let p = 0; p <= s.instances.length; p++) {
    const name = pointName(s, p);
    const file = join(dir, outputFileName(s, p));
    frames.set(name, existsSync(file) ? (await readAll(file)).map((r) => r.data.subarray(14)) : []);
  }
  return saved.packets.map((k) => ({
    fate: k.fate === 'delivered' ? FATE_DELIVERED : FATE_DROPPED,
    reason: reasonCode(k.reason),
    detail: k.detail,
    ct: Math.max(0, CT_NAMES.indexOf(k.ct)),
    outputs: k.outputs.map((o) => ({
      egress: pointOf(o.egress),
      frame: frames.get(o.egress)?.[o.n - 1] ?? new Uint8Array(0),
    })),
  }));
}

/** Replays one entry through the engines and checks it (or rewrites its expected outputs). */
export async function verifyEntry(e: CorpusEntry, opts: VerifyOptions): Promise<EntryOutcome> {
  const t0 = performance.now();
  const out = await checkEntry(e, opts);
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

async function checkEntry(e: CorpusEntry, opts: VerifyOptions): Promise<EntryOutcome> {
  const root = opts.root ?? CORPORA_DIR;
  const out: EntryOutcome = {
    name: e.name,
    ok: true,
    engines: opts.engines,
    problems: [],
    updated: [],
    packets: 0,
    known: [],
    seconds: 0,
  };
  const problem = (m: string) => {
    out.ok = false;
    out.problems.push(m);
  };
  const dir = entryDir(e, root);
  const input = inputPath(e, root);
  // Generated inputs must be what the generator writes now.
  if (e.kind === 'generated') {
    const gen = scriptedCaptures().find((c) => c.name === e.generator);
    if (!gen) {
      problem(`generator '${e.generator}' does not exist in src/traffic/scripted.ts`);
      return out;
    }
    const bytes = generatedInput(gen);
    const saved = existsSync(input) ? new Uint8Array(await readFile(input)) : null;
    const same = saved !== null && saved.length === bytes.length && saved.every((v, i) => v === bytes[i]);
    if (!same) {
      if (opts.update) {
        await mkdir(dirname(input), { recursive: true });
        await writeFile(input, bytes);
        out.updated.push(e.input);
      } else
        problem(
          saved === null
            ? `input ${e.input} is missing (run natlab corpus verify --update)`
            : `input ${e.input} differs from what generator '${e.generator}' writes now (a deliberate change? natlab corpus verify --update)`,
        );
    }
  }
  if (e.input.startsWith('shared:') && !opts.requireShared && !existsSync(sharedCorporaDir())) {
    // A clone without the shared corpora (any user's machine): the generated entries still run.
    out.skipped = `real capture not available here: ${sharedCorporaDir()} does not exist (set NATLAB_SHARED_CORPORA or check out shared/ beside the clone)`;
    return out;
  }
  if (!existsSync(input)) {
    problem(
      `input ${input} not found${e.input.startsWith('shared:') ? ' (set NATLAB_SHARED_CORPORA or check out ../shared beside the clone)' : ''}`,
    );
    return out;
  }
  let scenario: Scenario;
  let how: string;
  try {
    ({ scenario, how } = await entryScenario(e, root));
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    problem(`scenario: ${err.message}`);
    return out;
  }
  const tmp = await mkdtemp(join(tmpdir(), `natlab-corpus-${e.name}-`));
  try {
    const { report, kept, keptRaw } = await runReplay({
      input,
      outDir: tmp,
      scenario,
      scenarioHow: how,
      engines: opts.engines,
      keepResults: true,
      maxDifferences: 1000,
      workers: opts.workers ?? 1,
      engineExtra: { kernel: { timeMode: e.kernelTime, injection: opts.kernelInjection ?? 'batch' } },
      engineFactory: opts.engineFactory,
    });
    out.packets = report.input.records;
    // Differences between engines: a failure unless the pair is a known difference of this entry.
    const isKnown = (a: string, b: string) =>
      e.knownDifferences.some(
        (k) => (k.engines[0] === a && k.engines[1] === b) || (k.engines[0] === b && k.engines[1] === a),
      );
    const seenPairs = new Set<string>();
    let knownCount = 0;
    for (const d of report.differences.first) {
      seenPairs.add([...d.engines].sort().join());
      if (isKnown(d.engines[0], d.engines[1])) knownCount++;
      else problem(`engines differ: ${d.message}`);
    }
    for (const c of report.differences.conntrack) {
      const m = /^(\S+) vs (\S+): /.exec(c);
      if (m) seenPairs.add([m[1], m[2]].sort().join());
      if (m && isKnown(m[1], m[2])) knownCount++;
      else problem(`engines differ (conntrack at end): ${c}`);
    }
    if (report.differences.count > report.differences.first.length)
      problem(`... ${report.differences.count - report.differences.first.length} more differences not listed`);
    for (const k of e.knownDifferences) {
      if (!k.engines.every((x) => opts.engines.includes(x))) continue;
      if (!seenPairs.has([...k.engines].sort().join()))
        problem(
          `known difference ${k.engines.join(' vs ')} no longer occurs (${k.why}): remove it from corpora/${MANIFEST_NAME}`,
        );
      else out.known.push(`${k.engines.join(' vs ')}: ${k.why}`);
    }
    if (knownCount) out.knownCount = knownCount;
    const expectExit =
      report.exitCode === 1 && knownCount > 0 && problemsAreOnlyKnown(report, isKnown) ? 1 : e.expectExit;
    if (report.exitCode !== expectExit) {
      problem(
        `replay exit ${report.exitCode}, expected ${expectExit}${report.input.error ? ` (${report.input.error})` : ''}`,
      );
    }
    for (const engine of opts.engines) {
      const expDir = join(dir, 'expected', engine);
      const now = expectedResults(e, report, engine, kept![engine]);
      const files = (await readdir(join(tmp, engine))).filter((f) => f.endsWith('.pcap')).sort();
      if (opts.update) {
        await rm(expDir, { recursive: true, force: true });
        await mkdir(expDir, { recursive: true });
        await writeFile(join(expDir, 'results.json'), `${JSON.stringify(now, null, 1)}\n`);
        for (const f of files) await copyFile(join(tmp, engine, f), join(expDir, f));
        out.updated.push(`${e.kind}/${e.name}/expected/${engine}/`);
        continue;
      }
      const resFile = join(expDir, 'results.json');
      if (!existsSync(resFile)) {
        problem(`${engine}: no saved expected outputs (${resFile}); run natlab corpus verify --update to record them`);
        continue;
      }
      const saved = JSON.parse(await readFile(resFile, 'utf8')) as ExpectedResults;
      const savedFiles = (await readdir(expDir)).filter((f) => f.endsWith('.pcap')).sort();
      if (savedFiles.join() !== files.join()) {
        problem(`${engine}: output files ${files.join(', ')} now, saved ${savedFiles.join(', ')}`);
        continue;
      }
      if (findEngine(engine)?.randomChoices) {
        // This engine (the kernel) picks some ports and IP ids at random: compare with the saved
        // run the way two engines are compared (up to a consistent renaming of chosen ports,
        // generated IP ids).
        const savedRun = await loadSavedRun(saved, expDir, scenario);
        const nowRun = keptRaw![engine];
        const ctx: PacketCompareContext = {
          names: [`saved ${engine}`, `${engine} now`],
          renaming: new PortRenaming(scenario),
          scenario,
        };
        let n = 0;
        for (let i = 0; i < Math.max(savedRun.length, nowRun.length); i++) {
          const a = savedRun[i];
          const b = nowRun[i];
          if (!a || !b) {
            problem(`${engine}: ${savedRun.length} results saved, ${nowRun.length} now`);
            break;
          }
          const input = b.fed ?? new Uint8Array(0);
          const ds = b.fed
            ? comparePacket(i + 1, { timeUs: b.timeUs, ingress: b.ingress, frame: input }, a, b.result, ctx)
            : a.fate !== b.result.fate || a.reason !== b.result.reason
              ? [{ message: `packet #${i + 1}: saved ${reasonName(a.reason)}, now ${reasonName(b.result.reason)}` }]
              : [];
          for (const d of ds) if (n++ < 10) problem(`${engine}: changed from the saved expected outputs: ${d.message}`);
        }
        continue;
      }
      if (JSON.stringify(saved) !== JSON.stringify(now))
        problem(`${engine}: results changed from the saved expected outputs: ${firstJsonDifference(saved, now)}`);
      for (const f of files) {
        const d = await comparePcaps(join(expDir, f), join(tmp, engine, f));
        if (d) problem(`${engine}: ${f} changed from the saved expected output: ${d}`);
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return out;
}

export interface VerifyOutcome {
  ok: boolean;
  entries: EntryOutcome[];
}

export async function verifyCorpus(opts: VerifyOptions): Promise<VerifyOutcome> {
  const root = opts.root ?? CORPORA_DIR;
  const entries = await loadManifest(root);
  if (opts.only?.length) {
    const unknown = opts.only.filter((n) => !entries.some((e) => e.name === n));
    if (unknown.length)
      throw new InputError(
        `unknown corpus entr${unknown.length > 1 ? 'ies' : 'y'}: ${unknown.join(', ')} (see ${join(root, MANIFEST_NAME)})`,
      );
  }
  const todo = entries.filter((e) => !opts.only?.length || opts.only.includes(e.name));
  const outcomes: Array<EntryOutcome | undefined> = new Array(todo.length);
  // A bounded pool of lanes; each takes the next entry. onEntry sees outcomes in manifest order:
  // an outcome waits until every earlier entry has been reported.
  let next = 0;
  let reported = 0;
  const lane = async (): Promise<void> => {
    while (next < todo.length) {
      const k = next++;
      outcomes[k] = await verifyEntry(todo[k], opts);
      for (; reported < todo.length && outcomes[reported] !== undefined; reported++)
        opts.onEntry?.(outcomes[reported]!);
    }
  };
  const lanes = Math.max(1, Math.min(opts.parallel ?? 1, todo.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  const done = outcomes as EntryOutcome[];
  return { ok: done.every((o) => o.ok), entries: done };
}

/**
 * Every engine that can run here: model and core when they are in the build, the kernel when its
 * prerequisites are met (root, ip, iptables, conntrack); `skipped` says why one is left out.
 */
export async function availableEngines(): Promise<{ engines: EngineName[]; skipped: string[] }> {
  const engines: EngineName[] = [];
  const skipped: string[] = [];
  for (const e of ENGINE_NAMES) {
    const a = await engineAvailability(e);
    if (a.ok) engines.push(e);
    else skipped.push(`${e}: ${a.missing}`);
  }
  return { engines, skipped };
}
