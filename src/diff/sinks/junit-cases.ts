// natlab's outcomes as JUnit suites (sinks/junit.ts writes them): a fuzz campaign shard, a
// replay's flows, the corpus entries. A failure's text always says what to run next.
import { basename } from 'node:path';
import type { EntryOutcome } from '../replay/corpus.ts';
import type { FuzzReport } from '../fuzz/fuzz.ts';
import { formatFailure } from '../fuzz/fuzz.ts';
import type { ReplayReport } from '../replay/report.ts';
import type { FlowRecord } from './flows.ts';
import type { JUnitCase, JUnitSuite } from './junit.ts';

export interface FuzzSuiteInfo {
  engines: string[];
  shard?: { index: number; count: number };
}

/** One case per campaign shard: the shard's runs; a failure carries the shrunk counterexample. */
export function fuzzSuite(r: FuzzReport, info: FuzzSuiteInfo): JUnitSuite {
  const shard = info.shard ?? { index: 0, count: 1 };
  const name = `seed ${r.seed} shard ${shard.index}/${shard.count}`;
  const c: JUnitCase = {
    name,
    classname: `natlab.fuzz.${info.engines.join('-vs-')}`,
    timeS: r.elapsedMs / 1000,
    systemOut: `${r.runs} runs, ${r.scenarios} scenarios, ${r.commands} commands, ${r.packets} packets, ${r.shrinks} shrink steps`,
  };
  for (const u of r.unreproduced)
    c.systemOut += `\nnot reproduced by ${u.confirmation?.runs ?? 0} re-runs (real-clock timing, not a failure): run ${u.run}, ${u.differences[0] ? `[${u.differences[0].kind}] ${u.differences[0].message.split('\n')[0]}` : (u.error ?? '').split('\n')[0]}; saved to ${u.savedTo ?? '(not saved)'}`;
  const f = r.failure;
  if (f) {
    const first = f.differences[0];
    const message = first ? `[${first.kind}] ${first.message}` : (f.error ?? 'the engines differ');
    c.failure = {
      message: `run ${f.run}: ${message}`.slice(0, 1000),
      type: first ? 'EngineDifference' : 'FuzzError',
      text: [
        formatFailure(f),
        '',
        `counterexample: ${f.savedTo ?? '(not saved: --no-save)'}`,
        `replay it: ${f.replayCommand}`,
        `re-run the campaign's run (shrinking again): ${f.reproduceCommand}`,
      ].join('\n'),
    };
    c.systemOut = `${c.systemOut}\ncounterexample: ${f.savedTo ?? '(not saved)'}\nreplay: ${f.replayCommand}`;
  }
  return {
    name: 'natlab fuzz',
    timeS: r.elapsedMs / 1000,
    cases: [c],
    properties: {
      seed: r.seed,
      shard: `${shard.index}/${shard.count}`,
      engines: info.engines.join(','),
      runs: r.runs,
      packets: r.packets,
    },
  };
}

export interface ReplaySuiteInfo {
  /** The command line that reproduces the replay (printed in failures). */
  command: string;
  /** Where the annotated captures are (relative names in the report resolve against it). */
  outDir: string;
  /** Annotated pcapng written (failures say which frame comment to filter on). */
  annotated: boolean;
}

/** One case per flow of the capture; conntrack-table differences and read errors as cases too. */
export function replaySuite(r: ReplayReport, flows: FlowRecord[], info: ReplaySuiteInfo): JUnitSuite {
  const cls = `natlab.replay.${
    basename(r.input.path)
      .replace(/\.(pcapng|pcap|cap)$/i, '')
      .replace(/[^A-Za-z0-9_-]/g, '_') || 'capture'
  }`;
  const engines = r.engines.map((e) => e.engine);
  const cases: JUnitCase[] = flows.map((f) => {
    const c: JUnitCase = {
      name: f.name,
      classname: cls,
      systemOut: `${f.packets} packets (inputs #${f.firstInput}..#${f.lastInput}), ${f.dropped} dropped by an engine, ${f.differing} differing`,
    };
    if (f.differing > 0 && engines.length > 1) {
      const d = f.differences[0];
      const where = info.annotated
        ? `open ${engines.map((e) => `${info.outDir}/${e}.pcapng`).join(' and ')} in Wireshark, filter: frame.comment contains "input #${d.input} " (or "DIFFERS")`
        : `outputs under ${info.outDir}/<engine>/`;
      c.failure = {
        message:
          `${f.differing} of ${f.packets} packets differ; first: input #${d.input} ${d.engines.join(' vs ')}: ${d.text}`.slice(
            0,
            1000,
          ),
        type: 'EngineDifference',
        text: [
          ...f.differences.map((x) => `input #${x.input} [${x.kind}] ${x.engines.join(' vs ')}: ${x.text}`),
          '',
          where,
          `replay: ${info.command}`,
        ].join('\n'),
      };
    }
    return c;
  });
  if (r.differences.conntrack.length) {
    cases.push({
      name: 'conntrack tables at the end',
      classname: cls,
      failure: {
        message: r.differences.conntrack[0].slice(0, 1000),
        type: 'ConntrackDifference',
        text: [...r.differences.conntrack, '', `replay: ${info.command}`].join('\n'),
      },
    });
  }
  if (r.input.error) {
    cases.push({
      name: 'read the whole capture',
      classname: cls,
      error: { message: r.input.error.slice(0, 1000), type: 'InputError', text: r.input.error },
    });
  }
  return {
    name: `natlab replay ${r.input.path}`,
    timeS: r.wallMs / 1000,
    cases,
    properties: {
      engines: engines.join(','),
      scenario: r.scenario.name,
      packets: r.input.records,
      differences: r.differences.count,
      exitCode: r.exitCode,
    },
  };
}

/** One case per corpus entry (timeS by entry name when known). */
export function corpusSuite(
  entries: EntryOutcome[],
  engines: string[],
  timeS: Map<string, number> = new Map(),
): JUnitSuite {
  const cases = entries.map((e): JUnitCase => {
    const c: JUnitCase = {
      name: e.name,
      classname: 'natlab.corpus',
      timeS: timeS.get(e.name),
      systemOut: [
        `${e.packets} packets on ${e.engines.join(', ')}`,
        ...e.known.map((k) => `known difference: ${k}`),
        ...e.updated.map((u) => `updated ${u}`),
      ].join('\n'),
    };
    if (e.skipped) c.skipped = e.skipped;
    else if (!e.ok) {
      c.failure = {
        message: (e.problems[0] ?? 'failed').slice(0, 1000),
        type: 'CorpusMismatch',
        text: [
          ...e.problems,
          '',
          `re-run: natlab corpus verify --only ${e.name} --engines ${e.engines.join(',')}`,
        ].join('\n'),
      };
    }
    return c;
  });
  return { name: 'natlab corpus verify', cases, properties: { engines: engines.join(',') } };
}
