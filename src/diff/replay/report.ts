// The replay report: what `natlab replay` writes to DIR/report.json and prints as a summary.
// Cold path. The JSON shape is documented in docs/replay.md; add fields, never rename them.

import { type FailoverReport, formatFailoverReport } from './failover.ts';

export interface ReplayFrameRef {
  /** Output file, relative to the report's directory (e.g. "model/internet.pcap"). */
  file: string;
  /** 1-based packet number in that file. */
  n: number;
}

export interface ReplayDifference {
  /** 1-based packet number in the input capture. */
  input: number;
  kind: string;
  engines: [string, string];
  message: string;
  /** Where each engine's outputs for this input are, per engine. */
  outputs: Record<string, ReplayFrameRef[]>;
}

export interface ReaddressExample {
  input: number;
  engine: string;
  /** "flow" (learned from the engine's outputs), "elastic-ip" (static 1:1) or "unmapped". */
  how: string;
  from: string;
  to: string;
}

export interface EngineSummary {
  engine: string;
  /** Frames fed to this engine. */
  packetsIn: number;
  delivered: number;
  dropped: number;
  /** Every input (fed or not) by drop reason name; not-fed frames count here too. */
  droppedByReason: Record<string, number>;
  /** Delivered packets whose addresses or ports (ICMP id) changed on the way. */
  translated: number;
  /**
   * Conntrack entries the engine created: connections counted by its nat table (POSTROUTING and
   * INPUT, rules and policies), not NEW packets (a retransmitted SYN is NEW again). null if the
   * engine could not say.
   */
  sessionsCreated: number | null;
  /** Inputs by conntrack classification (NEW, ESTABLISHED, RELATED, INVALID, none). */
  ct: Record<string, number>;
  /** Output frames per egress point name. */
  outputs: Record<string, { file: string; frames: number }>;
  /** Generated packets (ICMP errors built by a NAT instance) among the outputs. */
  generated: number;
  /** One-sided captures: far-side frames re-addressed to this engine's mapping, by how. */
  readdressed: { flow: number; elasticIp: number; unmapped: number };
  /** Learned mappings evicted to bound memory (a later reply of that flow is replayed unmapped). */
  mappingsEvicted: number;
  /** conntrack entries alive at the end (null if the engine could not say). */
  conntrackAtEnd: number | null;
  /** Wall time spent inside engine.process, ms. */
  engineMs: number;
  /** NAT gateway counters (CloudWatch metric names) per gateway name, when the scenario has gateways. */
  natGateways?: Record<string, Record<string, number>>;
}

export interface ReplayReport {
  tool: 'natlab replay';
  version: 1;
  input: {
    path: string;
    format: string;
    linkTypes: string[];
    records: number;
    /** Records fed to the engines, and counted before them (by cause). */
    fed: number;
    notFed: Record<string, number>;
    /** The first frames counted before the engines (packet number, what, why). */
    notFedExamples: Array<{ input: number; frame: string; why: string }>;
    byParseStatus: Record<string, number>;
    fromInstances: number;
    fromInternet: number;
    /** Far-side frames addressed to a private address (one-sided capture). */
    toPrivate: number;
    clampedTimestamps: number;
    maxBackstepUs: number;
    durationUs: number;
    /** Reader warnings (truncated final record, bad timestamps, ...). */
    warnings: string[];
    /** A fatal read error after which the capture could not be read further (exit 2). */
    error: string | null;
    /** --limit stopped reading early. */
    limited: boolean;
  };
  scenario: {
    name: string;
    source: string;
    /** How it was chosen ("--scenario F", "built around the capture: --inside ..."). */
    how: string;
    points: Array<{ point: number; name: string; privateIp: string | null; elasticIp: string | null }>;
  };
  engines: EngineSummary[];
  readdressExamples: ReaddressExample[];
  differences: {
    /** Pairs compared: the first engine against each other one. */
    pairs: Array<[string, string]>;
    count: number;
    /** Inputs with at least one difference. */
    packets: number;
    first: ReplayDifference[];
    conntrack: string[];
    notes: string[];
  };
  agree: boolean;
  exitCode: number;
  wallMs: number;
  /** Input packets per second through all engines, from the first packet to the end (engine start-up excluded). */
  pps: number;
  peakRssMb: number;
  /** Scenarios with a timeline: per event, which flows broke and how (failover.ts). */
  failover?: FailoverReport;
}

function n(x: number): string {
  return x.toLocaleString('en-US');
}

function table(rows: string[][]): string[] {
  const w: number[] = [];
  for (const r of rows) r.forEach((c, i) => (w[i] = Math.max(w[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** What the exit status means for this run, without claiming agreement about nothing. */
function exitText(r: ReplayReport): string {
  if (r.exitCode === 2) return 'bad input';
  if (r.exitCode === 1) return 'engines differ';
  if (r.engines.length < 2) return 'replayed';
  if (r.input.fed === 0) return 'nothing compared';
  return 'engines agree';
}

/** The human summary printed on stdout. */

export function formatReplaySummary(r: ReplayReport, maxDiffs = 10): string {
  const L: string[] = [];
  const i = r.input;
  L.push(
    `natlab replay ${i.path} (${i.format}, ${i.linkTypes.join('/') || 'no link type'}) on scenario ${r.scenario.name} [${r.scenario.how}]`,
  );
  L.push(
    `  input: ${n(i.records)} packets${i.limited ? ' (--limit reached)' : ''}, ${n(i.fed)} fed to the engines (${n(i.fromInstances)} from instances, ${n(i.fromInternet)} from the internet)`,
  );
  for (const [k, v] of Object.entries(i.notFed).sort((a, b) => b[1] - a[1])) L.push(`    not fed: ${n(v)} ${k}`);
  if (i.notFedExamples.length)
    L.push(
      `    first ones: ${i.notFedExamples
        .slice(0, 5)
        .map((x) => `#${x.input}${x.frame ? ` ${x.frame}` : ''}`)
        .join('; ')}`,
    );
  if (i.toPrivate)
    L.push(
      `  one-sided capture: ${n(i.toPrivate)} far-side packets addressed to a private address (re-addressed per engine, below)`,
    );
  if (i.clampedTimestamps)
    L.push(
      `  clock: ${n(i.clampedTimestamps)} timestamps went backwards (by up to ${(i.maxBackstepUs / 1e6).toFixed(6)} s) and were clamped`,
    );
  for (const w of i.warnings) L.push(`  warning: ${w}`);
  if (i.error) L.push(`  ERROR: ${i.error} (everything before it was replayed)`);
  L.push('');
  const es = r.engines;
  const rows: string[][] = [['', ...es.map((e) => e.engine)]];
  const row = (label: string, f: (e: EngineSummary) => string) => rows.push([label, ...es.map(f)]);
  row('packets in', (e) => n(e.packetsIn));
  row('delivered', (e) => n(e.delivered));
  row('  translated', (e) => n(e.translated));
  row('dropped', (e) => n(e.dropped));
  const reasons = [...new Set(es.flatMap((e) => Object.keys(e.droppedByReason)))].sort();
  for (const k of reasons) row(`  ${k}`, (e) => n(e.droppedByReason[k] ?? 0));
  row('sessions created', (e) => (e.sessionsCreated === null ? '-' : n(e.sessionsCreated)));
  row('conntrack at end', (e) => (e.conntrackAtEnd === null ? '-' : n(e.conntrackAtEnd)));
  row('ICMP errors generated', (e) => n(e.generated));
  if (i.toPrivate) {
    row('re-addressed (flow)', (e) => n(e.readdressed.flow));
    row('re-addressed (EIP 1:1)', (e) => n(e.readdressed.elasticIp));
    row('left unmapped', (e) => n(e.readdressed.unmapped));
  }
  const points = [...new Set(es.flatMap((e) => Object.keys(e.outputs)))].filter((p) =>
    es.some((e) => (e.outputs[p]?.frames ?? 0) > 0),
  );
  for (const p of points) row(`out ${p}`, (e) => n(e.outputs[p]?.frames ?? 0));
  const gws = [...new Set(es.flatMap((e) => Object.keys(e.natGateways ?? {})))];
  for (const g of gws) {
    const metrics = [...new Set(es.flatMap((e) => Object.keys(e.natGateways?.[g] ?? {})))];
    for (const m of metrics) row(`NAT gateway ${g} ${m}`, (e) => n(e.natGateways?.[g]?.[m] ?? 0));
  }
  row('engine time (s)', (e) => (e.engineMs / 1000).toFixed(2));
  L.push(...table(rows).map((s) => `  ${s}`));
  if (r.readdressExamples.length) {
    L.push('', '  re-addressed far-side packets (first ones):');
    // One line per input when every engine re-addressed it the same way.
    const byInput = new Map<number, ReaddressExample[]>();
    for (const x of r.readdressExamples) byInput.set(x.input, [...(byInput.get(x.input) ?? []), x]);
    let shown = 0;
    for (const [input, xs] of byInput) {
      if (shown++ >= 6) break;
      const same = xs.every((x) => x.how === xs[0].how && x.to === xs[0].to);
      const groups = same ? [xs] : xs.map((x) => [x]);
      for (const g of groups) {
        const x = g[0];
        const who = g.map((y) => y.engine).join(', ');
        L.push(
          `    #${input} [${who}: ${x.how}] ${x.from}${x.how === 'unmapped' ? ' (no mapping: replayed as captured)' : `\n        -> ${x.to}`}`,
        );
      }
    }
  }
  L.push('');
  const d = r.differences;
  if (es.length < 2) L.push(`  one engine (${es.map((e) => e.engine).join('') || 'none'}): nothing compared`);
  else if (i.fed === 0) L.push('  no packet was fed to the engines: nothing compared');
  else if (d.count === 0 && d.conntrack.length === 0) {
    L.push(`  engines agree on every packet (${d.pairs.map((p) => p.join(' vs ')).join(', ')})`);
  } else {
    L.push(
      `  DIFFERENCES: ${n(d.count)} on ${n(d.packets)} packets${d.conntrack.length ? `, ${d.conntrack.length} in the final conntrack tables` : ''}; first ones:`,
    );
    for (const x of d.first.slice(0, maxDiffs)) {
      L.push(`  - [${x.kind}] ${x.message}`);
      const refs = Object.entries(x.outputs).map(
        ([eng, fs]) => `${eng}: ${fs.length ? fs.map((f) => `${f.file} #${f.n}`).join(', ') : 'no output'}`,
      );
      L.push(`      input #${x.input}; ${refs.join('; ')}`);
    }
    for (const c of d.conntrack.slice(0, 5)) L.push(`  - [conntrack] ${c}`);
  }
  for (const note of d.notes) L.push(`  note: ${note}`);
  if (r.failover) {
    L.push('');
    L.push(
      ...formatFailoverReport(r.failover)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  L.push('');
  L.push(
    `  ${n(i.records)} packets x ${es.length} engine(s) in ${(r.wallMs / 1000).toFixed(2)} s (start-up included): ${n(Math.round(r.pps))} pps, peak RSS ${r.peakRssMb.toFixed(0)} MB; exit ${r.exitCode} (${exitText(r)})`,
  );
  return L.join('\n');
}
