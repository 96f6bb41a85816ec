// JUnit XML from natlab fuzz, replay and corpus verify: every file validates against the common
// Jenkins/Ant JUnit schema (test/helpers/junit.xsd, checked with xmllint from libxml2-utils), and
// failures carry what to run next (the counterexample's replay command and saved path, the flow's
// frames to filter on). A document that breaks the schema is rejected, so the check can fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { junitXml, xmlText } from '../../src/diff/sinks/junit.ts';
import { fuzzSuite, replaySuite } from '../../src/diff/sinks/junit-cases.ts';
import { FlowCollector } from '../../src/diff/sinks/flows.ts';
import { runFuzz, type FuzzEngineSpec } from '../../src/diff/fuzz/fuzz.ts';
import { runReplay, type EngineFactory } from '../../src/diff/replay/replay.ts';
import { engineAvailable, makeEngine } from '../../src/diff/engines.ts';
import { generatedInput } from '../../src/diff/replay/corpus.ts';
import { scriptedCaptures } from '../../src/traffic/scripted.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import type { Engine } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { plantedNatClash } from '../helpers/planted.ts';
import { main } from '../../src/cli/main.ts';

const XSD = join(import.meta.dirname, '..', 'helpers', 'junit.xsd');
const HAVE_XMLLINT = spawnSync('xmllint', ['--version']).status === 0;
const HAVE_MODEL = await engineAvailable('model');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'natlab-junit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** xmllint's verdict on a JUnit file: '' when it validates, else its complaint. */
function schemaCheck(path: string): string {
  const r = spawnSync('xmllint', ['--noout', '--schema', XSD, path], { encoding: 'utf8' });
  return r.status === 0 ? '' : `${r.stderr}`.trim() || `xmllint exit ${r.status}`;
}

function quiet<T>(f: () => Promise<T>): Promise<T> {
  const w = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  return f().finally(() => {
    process.stdout.write = w;
    process.stderr.write = e;
  });
}

describe('junitXml', () => {
  it('escapes markup and replaces characters XML cannot hold', () => {
    expect(xmlText(`a<b>&"c'\u0001\uD800`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;\uFFFD\uFFFD');
  });

  it.runIf(HAVE_XMLLINT)('a document with every element validates; a broken one does not', () => {
    const ok = join(dir, 'ok.xml');
    writeFileSync(
      ok,
      junitXml([
        {
          name: 'suite <1>',
          properties: { seed: 7, note: 'a\nb' },
          systemOut: 'out',
          cases: [
            { name: 'pass', classname: 'x.y', timeS: 0.5 },
            {
              name: 'fail "quoted"',
              classname: 'x.y',
              failure: { message: 'm\n2', type: 'T', text: 'line1\nline2 <&> \u0007' },
              systemOut: 'so',
            },
            { name: 'error', classname: 'x.y', error: { message: 'e', type: 'E', text: 'boom' } },
            { name: 'skip', classname: 'x.y', skipped: 'not here' },
          ],
        },
      ]),
    );
    expect(schemaCheck(ok)).toBe('');
    const bad = join(dir, 'bad.xml');
    writeFileSync(bad, readFileSync(ok, 'utf8').replace(/ classname="x.y"/, ''));
    expect(schemaCheck(bad)).toMatch(/classname/);
    const bad2 = join(dir, 'bad2.xml');
    writeFileSync(bad2, readFileSync(ok, 'utf8').replace(/tests="4" failures="1"/, 'tests="four" failures="1"'));
    expect(schemaCheck(bad2)).not.toBe('');
  });
});

describe.runIf(HAVE_XMLLINT && HAVE_MODEL)('natlab commands write schema-valid JUnit', () => {
  it('replay: one case per flow, the differing flow fails saying where to look', async () => {
    const input = join(dir, 'dns-udp.pcap');
    writeFileSync(input, generatedInput(scriptedCaptures().find((c) => c.name === 'dns-udp')!));
    const broken: EngineFactory = plantedNatClash(5);
    const s = loadOpenScenario();
    const flows = new FlowCollector(s);
    const out = join(dir, 'replay');
    const { report } = await runReplay({
      input,
      outDir: out,
      scenario: s,
      scenarioHow: 'test',
      engines: ['model', 'broken'],
      engineFactory: broken,
      outputFormat: 'pcapng',
      sinks: [flows],
    });
    const suite = replaySuite(report, flows.list(), {
      command: `natlab replay --in ${input} --out ${out}`,
      outDir: out,
      annotated: true,
    });
    const path = join(dir, 'replay.xml');
    writeFileSync(path, junitXml([suite]));
    expect(schemaCheck(path)).toBe('');
    const names = suite.cases.map((c) => c.name);
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(new Set(names).size).toBe(names.length);
    const failing = suite.cases.filter((c) => c.failure);
    // The flow whose packet was dropped, and the conntrack tables (the reply never reached broken's entry).
    expect(failing.map((c) => c.name)).toEqual([
      'udp 10.0.1.10:53002 <> 198.51.100.53:53',
      'conntrack tables at the end',
    ]);
    expect(failing[1].failure!.message).toMatch(/seen-reply true vs false/);
    expect(failing[0].failure!.message).toMatch(
      /^2 of 2 packets differ; first: input #5 model vs broken: fate differs/,
    );
    expect(failing[0].failure!.text).toContain(`${out}/model.pcapng`);
    expect(failing[0].failure!.text).toContain('frame.comment contains "input #5 "');
    // Every packet of the capture is in exactly one flow's case.
    expect(flows.list().reduce((a, f) => a + f.packets, 0)).toBe(report.input.records);
  });

  it('replay CLI --junit: every flow passes when the engines agree', async () => {
    const input = join(dir, 'tcp.pcap');
    writeFileSync(input, generatedInput(scriptedCaptures().find((c) => c.name === 'tcp-sessions')!));
    const path = join(dir, 'replay-cli.xml');
    expect(
      await quiet(() =>
        main([
          'replay',
          '--scenario',
          'vpc-nat-instance-open',
          '--in',
          input,
          '--out',
          join(dir, 'rcli'),
          '--engines',
          'model',
          '--junit',
          path,
        ]),
      ),
    ).toBe(0);
    expect(schemaCheck(path)).toBe('');
    const xml = readFileSync(path, 'utf8');
    expect(xml).toMatch(/<testsuite name="natlab replay [^"]*tcp.pcap" tests="\d+" failures="0"/);
    expect((xml.match(/<testcase /g) ?? []).length).toBeGreaterThanOrEqual(3);
  });

  it('corpus verify --junit: one case per entry', async () => {
    const path = join(dir, 'corpus.xml');
    expect(
      await quiet(() =>
        main(['corpus', 'verify', '--engines', 'model', '--only', 'dns-udp,tcp-sessions', '--junit', path]),
      ),
    ).toBe(0);
    expect(schemaCheck(path)).toBe('');
    const xml = readFileSync(path, 'utf8');
    expect(xml).toMatch(/<testcase name="dns-udp" classname="natlab.corpus"/);
    expect(xml).toMatch(/<testcase name="tcp-sessions" classname="natlab.corpus"/);
    expect(xml).toMatch(/tests="2" failures="0"/);
  });

  it('fuzz: a passing shard is one passing case (CLI)', async () => {
    const path = join(dir, 'fuzz-ok.xml');
    expect(
      await quiet(() =>
        main([
          'fuzz',
          '--engines',
          'model,core',
          '--workers',
          '0',
          '--runs',
          '2',
          '--seed',
          '3',
          '--shard',
          '1/4',
          '--no-save',
          '--junit',
          path,
        ]),
      ),
    ).toBe(0);
    expect(schemaCheck(path)).toBe('');
    const xml = readFileSync(path, 'utf8');
    expect(xml).toMatch(/<testcase name="seed 3 shard 1\/4" classname="natlab.fuzz.model-vs-core"/);
    expect(xml).toMatch(/tests="1" failures="0"/);
  });

  it('fuzz: a failing shard carries the shrunk counterexample, its path and the replay command', async () => {
    // The model with a planted bug: UDP to the internet leaves with a stale checksum.
    const planted: FuzzEngineSpec = {
      name: 'buggy',
      create: async (s: Scenario, seed: number) => {
        const inner = await makeEngine('model', s, { seed });
        return {
          name: 'buggy',
          async process(batch) {
            const rs = await inner.process(batch);
            return rs.map((r) => ({
              ...r,
              outputs: r.outputs.map((o) => {
                const f = o.frame;
                const ihl = (f[0] & 15) << 2;
                if (o.egress !== 0 || f[9] !== 17 || f.length < ihl + 8 || (f[ihl + 6] | f[ihl + 7]) === 0) return o;
                const c = f.slice();
                c[ihl + 7] ^= 1;
                return { egress: o.egress, frame: c };
              }),
            }));
          },
          advance: (t) => inner.advance(t),
          conntrack: () => inner.conntrack(),
          natCounters: () => inner.natCounters(),
          close: () => inner.close(),
        } as Engine;
      },
    };
    const model: FuzzEngineSpec = {
      name: 'model',
      create: (s: Scenario, seed: number) => makeEngine('model', s, { seed }),
    };
    const saveDir = join(dir, 'cx');
    const rep = await runFuzz({ engines: [model, planted], seed: 7, runs: 200, saveDir, shrinkTimeS: 5 });
    expect(rep.failure).not.toBeNull();
    const suite = fuzzSuite(rep, { engines: ['model', 'buggy'], shard: { index: 0, count: 2 } });
    const path = join(dir, 'fuzz-fail.xml');
    writeFileSync(path, junitXml([suite]));
    expect(schemaCheck(path)).toBe('');
    const c = suite.cases[0];
    expect(c.failure!.type).toBe('EngineDifference');
    expect(c.failure!.text).toContain(`counterexample: ${rep.failure!.savedTo}`);
    expect(c.failure!.text).toContain(`replay it: natlab fuzz --replay ${rep.failure!.savedTo}`);
    expect(readFileSync(path, 'utf8')).toContain('<failure message="run ');
    // the document CI receives names the same path
    expect(execFileSync('xmllint', ['--xpath', 'string(//failure)', path], { encoding: 'utf8' })).toContain(
      rep.failure!.savedTo!,
    );
  }, 120_000);
});
