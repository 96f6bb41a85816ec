// Saved counterexamples: corpora/regressions/<id>/ holds everything needed to replay a failure
// without the fuzzer:
//   scenario.yaml            the generated scenario (loads with `natlab scenario check`)
//   input.pcap               the reference engine's input frames (raw IPv4, LINKTYPE_RAW)
//   inputs.json              per packet: time, ingress point name, the clean frame (hex), any damage
//                            and reply expectation; clock advances; seeds, fast-check path, commands
//   expected/<engine>/results.json   every engine's verdicts and outputs as found
//   expected/<engine>/<point>.pcap   its output frames per egress point
//   differences.txt          the report; README.md: what failed and the one command that replays it
// Replay goes through DiffSession exactly as the fuzzer did (renaming learnt the same way).

import type { TimelineEvent } from '../../spec/timeline.ts';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConntrackEntry, Engine, PacketResult } from '../../spec/engine.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { POINT_INTERNET, instancePoint, pointName } from '../../spec/scenario.ts';
import { CT_NAMES, reasonCode, REASONS } from '../../spec/reasons.ts';
import { InputError } from '../../spec/errors.ts';
import { formatConntrackLine } from '../../spec/conntrack-format.ts';
import { encodePcap } from '../../pcap/writer.ts';
import { LINKTYPE_RAW } from '../../packet/constants.ts';
import { compileScenarioObject, loadScenario, scenarioToObject, scenarioToYaml } from '../../scenario/index.ts';
import { DAMAGE_KINDS, type Damage } from '../../traffic/fuzz-damage.ts';
import { DiffSession, type SessionEngine, type SessionEvent } from './session.ts';
import type { Difference } from '../compare/compare.ts';

export const REGRESSIONS_DIR = 'corpora/regressions';
export const REGRESSION_FORMAT = 1;

export interface RegressionMeta {
  format: number;
  id: string;
  /** Engines in the order they were compared (the first is the reference). */
  engines: string[];
  engineSeed: number;
  /** Campaign seed and run index (`natlab fuzz --seed S --run R` reproduces it), the run's
   * fast-check seed and the shrink path. */
  seed: number;
  run: number;
  runSeed: number;
  path: string;
  commands: string[];
  summary: string;
}

interface SavedPacket {
  kind: 'packet';
  timeUs: number;
  ingress: string;
  frame: string;
  damage?: Damage;
  expect?: { egress: string; dst: number; dport: number };
  note?: string;
}
interface SavedAdvance {
  kind: 'advance';
  timeUs: number;
}
interface SavedFilters {
  kind: 'filters';
  timeUs: number;
  /** securityGroups / networkAcls in the scenario file format, replacing the scenario's. */
  filters: Record<string, unknown>;
  note?: string;
}
/** A scenario timeline event (its resolved form, spec/timeline.ts), applied at timeUs. */
interface SavedTimeline {
  kind: 'timeline';
  timeUs: number;
  event: TimelineEvent;
}
interface InputsFile extends RegressionMeta {
  events: Array<SavedPacket | SavedAdvance | SavedFilters | SavedTimeline>;
}

export interface SavedResult {
  fate: string;
  reason: string;
  detail: number;
  ct: string;
  outputs: Array<{ egress: string; frame: string }>;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

function pointByName(s: Scenario, name: string, file: string, where: string): number {
  if (name === 'internet') return POINT_INTERNET;
  const i = s.instances.findIndex((x) => x.name === name);
  if (i < 0)
    throw new InputError(
      `${file}: ${where}: unknown point '${name}' (internet or one of ${s.instances.map((x) => x.name).join(', ')})`,
      file,
      where,
    );
  return instancePoint(i);
}

export function resultToSaved(s: Scenario, r: PacketResult): SavedResult {
  return {
    fate: r.fate === 0 ? 'delivered' : 'dropped',
    reason: REASONS[r.reason] ?? String(r.reason),
    detail: r.detail,
    ct: CT_NAMES[r.ct] ?? String(r.ct),
    outputs: r.outputs.map((o) => ({ egress: pointName(s, o.egress), frame: hex(o.frame) })),
  };
}

function tsOf(timeUs: number): { tsSec: number; tsNsec: number } {
  return { tsSec: Math.floor(timeUs / 1e6), tsNsec: (timeUs % 1e6) * 1000 };
}

export interface SaveInput {
  dir: string;
  id: string;
  scenario: Scenario;
  session: DiffSession;
  meta: Omit<RegressionMeta, 'format' | 'id' | 'engines'>;
  differences: Difference[];
  conntrack?: ConntrackEntry[][];
}

/**
 * Writes engine j's expected outputs (results.json with its conntrack table, one pcap per point)
 * under dir/expected/<engine>/, replacing what was there.
 */
function writeExpected(dir: string, s: Scenario, session: DiffSession, j: number, conntrack?: ConntrackEntry[]): void {
  const name = session.engines[j].name;
  const ed = join(dir, 'expected', name);
  rmSync(ed, { recursive: true, force: true });
  mkdirSync(ed, { recursive: true });
  const results = session.results[j].map((r) => resultToSaved(s, r));
  const ct = conntrack?.map(formatConntrackLine);
  writeFileSync(
    join(ed, 'results.json'),
    `${JSON.stringify({ engine: name, results, conntrack: ct ?? null }, null, 1)}\n`,
  );
  const byPoint = new Map<number, Array<{ tsSec: number; tsNsec: number; data: Uint8Array }>>();
  session.results[j].forEach((r, i) => {
    for (const o of r.outputs) {
      const list = byPoint.get(o.egress) ?? [];
      list.push({ ...tsOf(session.inputs[j][i].timeUs), data: o.frame });
      byPoint.set(o.egress, list);
    }
  });
  for (const [p, recs] of byPoint)
    writeFileSync(join(ed, `${pointName(s, p)}.pcap`), encodePcap(recs, { linkType: LINKTYPE_RAW }));
}

/**
 * After a deliberate behaviour change: rewrites the saved expected outputs of every engine of a
 * replay that agreed and that the regression was saved with (natlab fuzz --replay DIR --update).
 * Returns the engines whose saved results
 * changed. Refuses (throws) when the replay found differences: a counterexample that still fails
 * keeps the expectations it was saved with.
 */
export function updateExpected(reg: LoadedRegression, out: ReplayOutcome): string[] {
  if (out.differences.length) throw new Error(`${reg.dir}: the engines still disagree: expected outputs not updated`);
  const tables = out.session.tables;
  out.session.engines.forEach((e, j) => {
    if (reg.meta.engines.includes(e.name)) writeExpected(reg.dir, reg.scenario, out.session, j, tables?.[j]);
  });
  return [...out.mismatches].filter(([, l]) => l.length > 0).map(([n]) => n);
}

/** Writes a counterexample directory; returns its path. */
export function saveRegression(inp: SaveInput): string {
  const { scenario: s, session } = inp;
  const dir = join(inp.dir, inp.id);
  mkdirSync(join(dir, 'expected'), { recursive: true });
  const meta: RegressionMeta = {
    format: REGRESSION_FORMAT,
    id: inp.id,
    engines: session.engines.map((e) => e.name),
    ...inp.meta,
  };
  writeFileSync(
    join(dir, 'scenario.yaml'),
    scenarioToYaml(
      { ...s, name: `regression-${inp.id}`.slice(0, 63), source: '' },
      `fuzz counterexample ${inp.id}: ${meta.summary}`,
    ),
  );
  const events: InputsFile['events'] = session.events.map((e: SessionEvent) =>
    e.kind === 'advance'
      ? { kind: 'advance', timeUs: e.timeUs }
      : e.kind === 'timeline'
        ? { kind: 'timeline', timeUs: e.timeUs, event: e.event }
        : e.kind === 'filters'
          ? { kind: 'filters', timeUs: e.timeUs, filters: e.filters, ...(e.note ? { note: e.note } : {}) }
          : {
              kind: 'packet',
              timeUs: e.input.timeUs,
              ingress: pointName(s, e.input.ingress),
              frame: hex(e.clean),
              ...(e.damage ? { damage: e.damage } : {}),
              ...(e.expect
                ? { expect: { egress: pointName(s, e.expect.egress), dst: e.expect.dst, dport: e.expect.dport } }
                : {}),
              ...(e.note ? { note: e.note } : {}),
            },
  );
  const file: InputsFile = { ...meta, events };
  writeFileSync(join(dir, 'inputs.json'), `${JSON.stringify(file, null, 1)}\n`);
  const pkts = session.events.flatMap((e) => (e.kind === 'packet' ? [e.input] : []));
  writeFileSync(
    join(dir, 'input.pcap'),
    encodePcap(
      pkts.map((p) => ({ ...tsOf(p.timeUs), data: p.frame })),
      { linkType: LINKTYPE_RAW },
    ),
  );
  session.engines.forEach((_e, j) => writeExpected(dir, s, session, j, inp.conntrack?.[j]));
  writeFileSync(join(dir, 'differences.txt'), `${inp.differences.map((d) => `[${d.kind}] ${d.message}`).join('\n')}\n`);
  const replay = `natlab fuzz --replay ${dir}`;
  writeFileSync(
    join(dir, 'README.md'),
    [
      `# ${inp.id}`,
      '',
      `${meta.summary}`,
      '',
      `Engines: ${meta.engines.join(' vs ')} (engine seed ${meta.engineSeed}). Replay: \`${replay}\``,
      `or regenerate with the fuzzer (shrinking again): \`natlab fuzz --engines ${meta.engines.join(',')} --seed ${meta.seed} --run ${meta.run}\`.`,
      '',
      meta.path ? 'Commands (shrunk):' : 'Commands:',
      '',
      ...meta.commands.map((c) => `    ${c}`),
      '',
    ].join('\n'),
  );
  const index = join(inp.dir, 'README.md');
  const line = `- ${inp.id}: ${meta.summary.split('\n')[0]} — \`${replay}\`\n`;
  if (!existsSync(index))
    writeFileSync(
      index,
      `# Fuzz regressions\n\nEvery directory is replayed by test/fuzz/regressions.test.ts on every run.\n\n${line}`,
    );
  else writeFileSync(index, readFileSync(index, 'utf8') + line);
  return dir;
}

export interface LoadedRegression {
  dir: string;
  meta: RegressionMeta;
  scenario: Scenario;
  events: InputsFile['events'];
  expected: Map<string, { results: SavedResult[]; conntrack: string[] | null }>;
}

export function loadRegression(dir: string): LoadedRegression {
  const inputsPath = join(dir, 'inputs.json');
  if (!existsSync(inputsPath)) throw new InputError(`${dir}: not a regression directory (no inputs.json)`, dir);
  let file: InputsFile;
  try {
    file = JSON.parse(readFileSync(inputsPath, 'utf8')) as InputsFile;
  } catch (e) {
    throw new InputError(`${inputsPath}: not valid JSON (${(e as Error).message})`, inputsPath);
  }
  if (file.format !== REGRESSION_FORMAT)
    throw new InputError(`${inputsPath}: format ${file.format} is not ${REGRESSION_FORMAT}`, inputsPath, 'format');
  if (!Array.isArray(file.events)) throw new InputError(`${inputsPath}: events: expected a list`, inputsPath, 'events');
  const scenario = loadScenario(join(dir, 'scenario.yaml'));
  file.events.forEach((e, i) => {
    const where = `events[${i}]`;
    if (e.kind !== 'packet' && e.kind !== 'advance' && e.kind !== 'filters' && e.kind !== 'timeline')
      throw new InputError(
        `${inputsPath}: ${where}.kind: '${(e as { kind: string }).kind}' is not packet, advance, filters or timeline`,
        inputsPath,
        where,
      );
    if (!Number.isInteger(e.timeUs) || e.timeUs < 0)
      throw new InputError(`${inputsPath}: ${where}.timeUs: expected a non-negative integer`, inputsPath, where);
    if (e.kind === 'packet') {
      pointByName(scenario, e.ingress, inputsPath, `${where}.ingress`);
      if (typeof e.frame !== 'string' || !/^([0-9a-f]{2})*$/i.test(e.frame))
        throw new InputError(`${inputsPath}: ${where}.frame: expected hex bytes`, inputsPath, where);
      if (e.damage && !(DAMAGE_KINDS as readonly string[]).includes(e.damage.kind))
        throw new InputError(`${inputsPath}: ${where}.damage.kind: unknown '${e.damage.kind}'`, inputsPath, where);
    }
  });
  const expected = new Map<string, { results: SavedResult[]; conntrack: string[] | null }>();
  for (const name of file.engines) {
    const p = join(dir, 'expected', name, 'results.json');
    if (existsSync(p)) {
      const j = JSON.parse(readFileSync(p, 'utf8')) as { results: SavedResult[]; conntrack: string[] | null };
      expected.set(name, { results: j.results, conntrack: j.conntrack });
    }
  }
  return { dir, meta: file, scenario, events: file.events, expected };
}

export function listRegressions(root = REGRESSIONS_DIR): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'inputs.json')))
    .map((d) => join(root, d.name))
    .sort();
}

export interface ReplayOutcome {
  session: DiffSession;
  differences: Difference[];
  /** Per engine name: where its results differ from its saved expected results ("" = same). */
  mismatches: Map<string, string[]>;
}

/** Replays a regression through the given engines (first = reference). */
export async function replayRegression(
  reg: LoadedRegression,
  engines: SessionEngine[],
  opts: { exactPorts?: boolean } = {},
): Promise<ReplayOutcome> {
  const s = reg.scenario;
  const file = join(reg.dir, 'inputs.json');
  const session = new DiffSession(s, engines, { throwOnDifference: false, exactPorts: opts.exactPorts });
  try {
    for (const [i, e] of reg.events.entries()) {
      if (e.kind === 'advance') {
        await session.advance(e.timeUs);
        continue;
      }
      if (e.kind === 'timeline') {
        await session.applyTimelineEvent(e.event);
        continue;
      }
      if (e.kind === 'filters') {
        const next = compileScenarioObject({ ...scenarioToObject(s), ...e.filters }, `${file} events[${i}]`);
        await session.setFilterRules(next, e.note);
        continue;
      }
      const ingress = pointByName(s, e.ingress, file, `events[${i}].ingress`);
      const expect = e.expect
        ? {
            egress: pointByName(s, e.expect.egress, file, `events[${i}].expect.egress`),
            dst: e.expect.dst,
            dport: e.expect.dport,
          }
        : undefined;
      await session.send(ingress, unhex(e.frame), { timeUs: e.timeUs, damage: e.damage, expect, note: e.note });
    }
    await session.finish();
  } finally {
    await session.close();
  }
  const mismatches = new Map<string, string[]>();
  engines.forEach((e, j) => {
    const exp = reg.expected.get(e.name);
    if (!exp) return;
    const got = session.results[j].map((r) => resultToSaved(s, r));
    const lines: string[] = [];
    got.forEach((g, i) => {
      const want = exp.results[i];
      if (JSON.stringify(g) !== JSON.stringify(want))
        lines.push(`packet #${i}: saved ${JSON.stringify(want)}, now ${JSON.stringify(g)}`);
    });
    if (exp.results.length !== got.length) lines.push(`saved ${exp.results.length} results, now ${got.length}`);
    mismatches.set(e.name, lines);
  });
  return { session, differences: session.differences, mismatches };
}

/** Reason name → code, for tools reading results.json. */
export function savedReasonCode(r: SavedResult): number {
  return reasonCode(r.reason);
}

export type { Engine };
