// The static HTML replay report: one self-contained file (no external resource), rendered by
// headless Chromium: the page's inline script builds the summary, the differences table (packets
// decoded side by side) and the per-flow timelines from the embedded JSON, so the DOM dump proves
// it rendered. Skips (saying why) where Chromium is not installed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReplay, type EngineFactory } from '../../src/diff/replay/replay.ts';
import { engineAvailable } from '../../src/diff/engines.ts';
import { generatedInput } from '../../src/diff/replay/corpus.ts';
import { scriptedCaptures } from '../../src/traffic/scripted.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { FlowCollector } from '../../src/diff/sinks/flows.ts';
import { DifferenceCollector, decodePacket } from '../../src/diff/sinks/differences.ts';
import { replayHtml, scriptJson } from '../../src/diff/sinks/report-html.ts';
import { main } from '../../src/cli/main.ts';
import { plantedNatClash } from '../helpers/planted.ts';
import { buildUdp } from '../../src/packet/build.ts';
import { parseIpv4Addr as ip } from '../../src/packet/addr.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const HAVE_MODEL = await engineAvailable('model');
let dir: string;
let input: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'natlab-html-'));
  input = join(dir, 'dns-udp.pcap');
  writeFileSync(input, generatedInput(scriptedCaptures().find((c) => c.name === 'dns-udp')!));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Headless Chromium's DOM after the page's scripts ran (no network, a throwaway profile). */
function dumpDom(file: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'natlab-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`,
    '--virtual-time-budget=5000',
    '--dump-dom',
    `file://${file}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { maxBuffer: 64 << 20, timeout: 90_000 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err && !stdout) reject(new Error(`chromium failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The model, except that the 5th packet it sees is dropped as a NAT clash (a planted bug). */
const factory: EngineFactory = plantedNatClash(5);

describe('HTML report building blocks', () => {
  it('embedded JSON cannot close its script element', () => {
    const j = scriptJson({ s: '</script><script>alert(1)</script><!--', t: '\u2028' });
    expect(j).not.toMatch(/<|>/);
    expect(JSON.parse(j)).toEqual({ s: '</script><script>alert(1)</script><!--', t: '\u2028' });
  });

  it('decodes header fields', () => {
    const f = buildUdp({
      src: ip('10.0.1.10'),
      dst: ip('198.51.100.7'),
      sport: 40000,
      dport: 9999,
      payload: new Uint8Array(4),
      df: true,
    });
    const d = decodePacket(f);
    expect(d.fields).toMatchObject({
      status: 'ok',
      src: '10.0.1.10',
      dst: '198.51.100.7',
      proto: 'udp',
      sport: '40000',
      dport: '9999',
      ttl: '64',
      df: '1',
      len: '32',
    });
    expect(d.fields['l4 checksum']).toMatch(/^0x[0-9a-f]{4}$/);
    expect(d.hex.split(' ')).toHaveLength(32);
  });
});

describe.skipIf(!HAVE_MODEL)('the HTML replay report', () => {
  let html: string;
  beforeAll(async () => {
    const s = loadOpenScenario();
    const flows = new FlowCollector(s);
    const diffs = new DifferenceCollector(s);
    const out = join(dir, 'out');
    const { report } = await runReplay({
      input,
      outDir: out,
      scenario: s,
      scenarioHow: 'test',
      engines: ['model', 'broken'],
      engineFactory: factory,
      outputFormat: 'pcapng',
      sinks: [flows, diffs],
    });
    html = join(out, 'report.html');
    writeFileSync(
      html,
      replayHtml({
        report,
        differences: diffs.details,
        flows: flows.list(),
        captures: [
          { label: 'model.pcapng', href: 'model.pcapng' },
          { label: 'input.pcapng', href: 'input.pcapng' },
        ],
      }),
    );
  });

  it('is one self-contained file: nothing loads from elsewhere', () => {
    const text = readFileSync(html, 'utf8');
    expect(text).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i);
    expect(text).not.toMatch(/https?:\/\//);
    expect(text).toMatch(/Content-Security-Policy" content="default-src 'none'/);
  });

  it.skipIf(!HAVE_CHROMIUM)(
    'renders in headless Chromium: summary, the differences table, flow timelines, capture links',
    async () => {
      const dom = await dumpDom(html);
      expect(dom).toMatch(/<body[^>]*data-rendered="true"/);
      // Summary counters per engine.
      expect(dom).toMatch(/<table id="summary">/);
      expect(dom).toMatch(/<th>(&nbsp;){3}nat-clash<\/th><td class="num">0<\/td><td class="num">1<\/td>/);
      // The differences table, built by the page's script from the embedded JSON.
      const diffTable = /<table id="differences">([\s\S]*?)<\/table>\s*<\/details>\s*<\/td><\/tr>/.exec(dom);
      expect(diffTable, 'differences table rendered').not.toBeNull();
      expect(dom).toMatch(/<tr class="differs" data-input="5">/);
      expect(dom).toMatch(/broken: dropped \(nat-clash\)/);
      expect(dom).toMatch(/model vs broken: fate differs/);
      expect(dom).toMatch(/<td class="mono">udp 10\.0\.1\.10:53002 &gt; 198\.51\.100\.53:53[^<]*<\/td>/);
      // Per-flow timeline with the dropped packet marked.
      expect(dom).toMatch(/<table id="flows">/);
      expect(dom).toMatch(/<td class="drop eng-drop">dropped \(nat-clash\)<\/td>/);
      expect(dom).toMatch(/<a href="model.pcapng">model.pcapng<\/a>/);
    },
    120_000,
  );

  it.skipIf(!HAVE_CHROMIUM)(
    'CLI --html: a replay where the engines agree renders with no differences',
    async () => {
      const out = join(dir, 'cli');
      const page = join(dir, 'cli.html');
      const w = process.stdout.write.bind(process.stdout);
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        expect(
          await main([
            'replay',
            '--scenario',
            'vpc-nat-instance-open',
            '--in',
            input,
            '--out',
            out,
            '--engines',
            'model',
            '--html',
            page,
          ]),
        ).toBe(0);
      } finally {
        process.stdout.write = w;
      }
      const dom = await dumpDom(page);
      expect(dom).toMatch(/data-rendered="true"/);
      expect(dom).toMatch(/<p id="no-differences"[^>]*>One engine: nothing to compare\.<\/p>/);
      expect(dom).toMatch(/<a href="cli\/model.pcapng">model.pcapng<\/a>/);
      expect(dom).toMatch(/<span id="verdict" class="verdict-ok">engines agree<\/span>/);
    },
    120_000,
  );
});

// The two render tests above skip without Chromium; say why once.
if (!HAVE_CHROMIUM)
  process.stderr.write(
    `html-report: the render tests are skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)\n`,
  );
