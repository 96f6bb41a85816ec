// Runs every probe on every engine (a fresh engine instance per probe session), gathers the
// verdicts per requirement, checks that the engines agree, and derives the RFC 5780 style
// classification line. A disagreement is a difference (the command exits 1).

import type { Scenario } from '../../spec/scenario.ts';
import { formatIpv4 } from '../../packet/addr.ts';
import { makeEngine, type EngineName } from '../engines.ts';
import { findTopology, natDescription, ProbeContext, type EngineMaker, type Topology } from './kit.ts';
import { PROBES, type Judgement, type Verdict } from './probes.ts';
import { REQUIREMENTS, type Requirement } from './requirements.ts';
import { probeShadow, shadowTargets, type ShadowResult } from './shadow.ts';

export interface ConformanceOptions {
  seed?: number;
  /** Extra factory options per engine (e.g. kernel settleMs). */
  engineExtra?: Partial<Record<EngineName, Record<string, unknown>>>;
  /** Called after each probe (progress). */
  onProbe?: (engine: string, probe: string) => void;
}

export interface Classification {
  mapping: string;
  filtering: string;
  hairpinning: string;
  /** Shortest and longest UDP binding lifetimes observed, seconds. */
  udpLifetime: string;
  /** The RFC 3489 name STUN tools still print. */
  rfc3489: string;
  line: string;
}

export interface Row {
  requirement: Requirement;
  /** Per engine. */
  judgements: Record<string, Judgement>;
  /** The verdict the judging engines share (or 'differs'). */
  verdict: Verdict | 'differs';
  agreed: boolean;
}

export interface ShadowRow {
  target: string;
  results: Record<string, ShadowResult>;
  agreed: boolean;
}

export interface ConformanceReport {
  scenario: string;
  source: string;
  where: { nat: string; external: string; inside: string[]; internet: string[] };
  /** What was probed: a NAT instance (Linux) or a NAT gateway (AWS's managed NAT). */
  natKind: 'instance' | 'gateway';
  engines: string[];
  rows: Row[];
  shadow: ShadowRow[];
  classification: Record<string, Classification>;
  differences: string[];
  /** Per engine: what the engines warned about (a verdict may be unreliable then). */
  warnings: Record<string, string[]>;
  elapsedMs: Record<string, number>;
}

/** Quiet time that ends the collection of a packet's frames on the kernel engine, ms. */
export const KERNEL_SETTLE_MS = 20;

export function engineMaker(name: EngineName, opts: ConformanceOptions = {}): EngineMaker {
  const seed = opts.seed ?? 1;
  const extra = opts.engineExtra?.[name] ?? {};
  switch (name) {
    case 'model':
      return { name, clock: 'virtual', reassembles: false, make: (s) => makeEngine('model', s, { seed, extra }) };
    case 'core':
      return {
        name,
        clock: 'virtual',
        reassembles: false,
        make: (s) => makeEngine('core', s, { seed, extra: { inline: true, ...extra } }),
      };
    case 'kernel':
      // settleMs 20 (default 3): on a loaded machine frames of a packet can come after 3 ms of
      // quiet, and a probe must not lose them (the engine warns when it happens).
      return {
        name,
        clock: 'real',
        reassembles: true,
        make: (s) =>
          makeEngine('kernel', s, { seed, extra: { maxWaitMs: 30_000, settleMs: KERNEL_SETTLE_MS, ...extra } }),
      };
  }
}

function classify(j: Record<string, Judgement>): Classification {
  const mapping = j['4787-REQ-1']?.value ?? 'unknown';
  const filtering = j['4787-REQ-8']?.value ?? 'unknown';
  const hairpinning = j['4787-REQ-9']?.value === 'hairpin' ? 'yes' : 'no';
  const lo = j['4787-REQ-5']?.value ?? '?';
  const hi = j['4787-REQ-5c']?.value ?? '?';
  const udpLifetime = lo === hi ? lo : `${lo} (${hi} once two-way for > 2 s)`;
  let rfc3489: string;
  if (mapping !== 'endpoint-independent') rfc3489 = 'symmetric';
  else if (filtering === 'endpoint-independent') rfc3489 = 'full cone';
  else if (filtering === 'address-dependent') rfc3489 = 'restricted cone';
  else rfc3489 = 'port-restricted cone';
  const line = `mapping ${mapping}, filtering ${filtering}, hairpinning ${hairpinning}, UDP binding lifetime ${udpLifetime} (RFC 3489: ${rfc3489})`;
  return { mapping, filtering, hairpinning, udpLifetime, rfc3489, line };
}

interface EngineRun {
  judgements: Record<string, Judgement>;
  shadow: ShadowResult[];
  warnings: string[];
}

async function runEngine(topo: Topology, maker: EngineMaker, opts: ConformanceOptions): Promise<EngineRun> {
  const judgements: Record<string, Judgement> = {};
  const warnings: string[] = [];
  const keep = (ctx: ProbeContext, probe: string): void => {
    for (const w of ctx.warnings) warnings.push(`${probe}: ${w}`);
  };
  for (const p of PROBES) {
    const ctx = new ProbeContext(topo, maker);
    try {
      Object.assign(judgements, await p.run(ctx));
    } finally {
      await ctx.closeAll();
      keep(ctx, p.name);
    }
    opts.onProbe?.(maker.name, p.name);
  }
  const shadow: ShadowResult[] = [];
  for (const t of shadowTargets(topo)) {
    const ctx = new ProbeContext(topo, maker);
    try {
      shadow.push(await probeShadow(ctx, t));
    } finally {
      await ctx.closeAll();
      keep(ctx, `shadow ${t.name}`);
    }
    opts.onProbe?.(maker.name, `shadow ${t.name}`);
  }
  return { judgements, shadow, warnings };
}

/**
 * Runs the probes on each engine: a name (model, core, kernel) or an EngineMaker of the caller's
 * (tests wrap an engine to check that a different behaviour is reported as a difference).
 */
export async function runConformance(
  scenario: Scenario,
  engineList: readonly (EngineName | EngineMaker)[],
  opts: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const topo = findTopology(scenario);
  const makers = engineList.map((e) => (typeof e === 'string' ? engineMaker(e, opts) : e));
  const engines = makers.map((m) => m.name);
  if (new Set(engines).size !== engines.length)
    throw new Error(`runConformance: engine names must be distinct (${engines.join(', ')})`);
  const per: Record<string, EngineRun> = {};
  const elapsedMs: Record<string, number> = {};
  for (const m of makers) {
    const t0 = performance.now();
    per[m.name] = await runEngine(topo, m, opts);
    elapsedMs[m.name] = Math.round(performance.now() - t0);
  }
  const differences: string[] = [];
  const rows: Row[] = REQUIREMENTS.map((req) => {
    const judgements: Record<string, Judgement> = {};
    for (const e of engines) {
      judgements[e] = per[e].judgements[req.id] ?? { verdict: 'untestable', evidence: 'no probe answered it' };
    }
    const judged = engines.filter((e) => judgements[e].verdict !== 'untestable');
    const keys = new Set(
      judged.map((e) => `${judgements[e].verdict}${judgements[e].verdict === 'info' ? `:${judgements[e].value}` : ''}`),
    );
    const agreed = keys.size <= 1;
    if (!agreed) {
      differences.push(
        `${req.rfc} ${req.label} (${req.title}): ${engines.map((e) => `${e} ${judgements[e].verdict}${judgements[e].value ? ` (${judgements[e].value})` : ''}`).join(', ')}`,
      );
    }
    const verdict: Verdict | 'differs' = !agreed
      ? 'differs'
      : judged.length
        ? judgements[judged[0]].verdict
        : 'untestable';
    return { requirement: req, judgements, verdict, agreed };
  });
  const targets = per[engines[0]]?.shadow.map((s) => s.target) ?? [];
  const shadow: ShadowRow[] = targets.map((target, i) => {
    const results: Record<string, ShadowResult> = {};
    for (const e of engines) results[e] = per[e].shadow[i];
    const keys = new Set(engines.map((e) => `${results[e].status}/${results[e].mitigation}/${results[e].hairpin}`));
    const agreed = keys.size <= 1;
    if (!agreed)
      differences.push(
        `port shadowing of ${target}: ${engines.map((e) => `${e} ${results[e].status}${results[e].mitigation ? ` (${results[e].mitigation})` : ''}, hairpin ${results[e].hairpin ? 'yes' : 'no'}`).join(', ')}`,
      );
    return { target, results, agreed };
  });
  const classification: Record<string, Classification> = {};
  for (const e of engines) classification[e] = classify(per[e].judgements);
  const lines = new Set(
    engines.map((e) => {
      const c = classification[e];
      return `${c.mapping}/${c.filtering}/${c.hairpinning}`;
    }),
  );
  if (lines.size > 1)
    differences.push(`classification: ${engines.map((e) => `${e}: ${classification[e].line}`).join('; ')}`);
  const s = topo.scenario;
  return {
    scenario: s.name,
    source: s.source,
    where: {
      nat: natDescription(topo),
      external: formatIpv4(topo.external),
      inside: topo.inside.map((i) => `${s.instances[i].name} ${formatIpv4(s.instances[i].privateIp)}`),
      internet: topo.remotes.map(formatIpv4),
    },
    natKind: topo.gateway >= 0 ? 'gateway' : 'instance',
    engines: [...engines],
    rows,
    shadow,
    classification,
    differences,
    warnings: Object.fromEntries(engines.map((e) => [e, per[e].warnings])),
    elapsedMs,
  };
}
