// Annotated captures (--format pcapng): a replay where two engines differ writes one pcapng per
// engine (an interface per egress point plus "dropped") and an input-side pcapng, every packet
// commented with its story; Wireshark's tshark shows the reason under frame.comment, filters on
// it, and finds no expert errors. The report's packet numbers point at the commented frames.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReplay, type EngineFactory } from '../../src/diff/replay/replay.ts';
import { engineAvailable } from '../../src/diff/engines.ts';
import { generatedInput } from '../../src/diff/replay/corpus.ts';
import { scriptedCaptures } from '../../src/traffic/scripted.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { openCapture, type CaptureRecord } from '../../src/pcap/index.ts';
import { HAVE_TSHARK, tsharkCheck } from '../helpers/tshark.ts';
import { main } from '../../src/cli/main.ts';
import { plantedNatClash } from '../helpers/planted.ts';

const HAVE_MODEL = await engineAvailable('model');
let dir: string;
let input: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natlab-annotated-'));
  input = join(dir, 'dns-udp.pcap');
  await writeFile(input, generatedInput(scriptedCaptures().find((c) => c.name === 'dns-udp')!));
});
afterAll(async () => {
  if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
});

/** The model, except that the 5th packet it sees is dropped as a NAT clash (a planted bug). */
const factory: EngineFactory = plantedNatClash(5);

async function readAll(path: string): Promise<{ names: string[]; recs: CaptureRecord[] }> {
  const r = await openCapture(path);
  const recs: CaptureRecord[] = [];
  for await (const x of r) recs.push({ ...x, data: Uint8Array.from(x.data) });
  return { names: r.info.interfaces.map((f) => f.name), recs };
}

describe.skipIf(!HAVE_MODEL)('annotated captures (pcapng)', () => {
  let out: string;
  beforeAll(async () => {
    out = join(dir, 'diff');
    const { report } = await runReplay({
      input,
      outDir: out,
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model', 'broken'],
      engineFactory: factory,
      outputFormat: 'pcapng',
    });
    expect(report.exitCode).toBe(1);
  });

  it('writes input.pcapng and one pcapng per engine, no per-point pcaps', async () => {
    expect((await readdir(out)).sort()).toEqual(['broken.pcapng', 'input.pcapng', 'model.pcapng']);
  });

  it("each engine's file has an interface per egress point and every packet a comment", async () => {
    const { names, recs } = await readAll(join(out, 'model.pcapng'));
    expect(names).toEqual(['internet', 'nat-10.0.0.10', 'web-10.0.0.20', 'app-10.0.1.10', 'dropped']);
    expect(recs.length).toBeGreaterThan(0);
    for (const r of recs) expect(r.comment).toMatch(/^input #\d+ from \S+.*: (delivered|dropped)/);
    // The difference's packet: delivered by model, with what the other engine did.
    const five = recs.filter((r) => r.comment!.startsWith('input #5 '));
    expect(five).toHaveLength(1);
    expect(names[five[0].interfaceId]).toBe('internet');
    expect(five[0].comment).toMatch(
      /delivered to internet \[ct NEW\]; hops app > NAT \(conntrack NEW\) > internet \| DIFFERS: broken dropped \(nat-clash\)/,
    );
  });

  it("the dropping engine's file holds the dropped input on the 'dropped' interface, with the reason", async () => {
    const { names, recs } = await readAll(join(out, 'broken.pcapng'));
    const dropped = recs.filter((r) => names[r.interfaceId] === 'dropped');
    // #5 (the planted bug) and #6, its reply, which the broken engine cannot map back.
    expect(dropped).toHaveLength(2);
    expect(dropped[0].comment).toBe(
      'input #5 from app: dropped (nat-clash) [ct NEW]; hops app > NAT (conntrack NEW) > dropped: nat-clash | DIFFERS: model delivered to internet [ct NEW] (fate differs; 1 vs 0 output frames)',
    );
    expect(dropped[1].comment).toMatch(
      /^input #6 from internet \(re-addressed: unmapped\): dropped \(igw-unknown-dst\); hops internet > dropped: igw-unknown-dst \| DIFFERS: model delivered to app \[ct ESTABLISHED\]/,
    );
  });

  it('the report numbers the outputs in the pcapng files', async () => {
    const { report } = await runReplay({
      input,
      outDir: join(dir, 'again'),
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['model', 'broken'],
      engineFactory: factory,
      outputFormat: 'pcapng',
    });
    const d = report.differences.first[0];
    expect(d.outputs.model).toHaveLength(1);
    expect(d.outputs.model[0].file).toBe('model.pcapng');
    const { recs } = await readAll(join(dir, 'again', 'model.pcapng'));
    expect(recs[d.outputs.model[0].n - 1].comment).toMatch(/^input #5 /);
    expect(report.engines[0].outputs.internet.file).toBe('model.pcapng');
  });

  it("input.pcapng: every input byte for byte, on its ingress interface, with every engine's verdict", async () => {
    const orig: CaptureRecord[] = [];
    for await (const x of await openCapture(input)) orig.push({ ...x, data: Uint8Array.from(x.data) });
    const { names, recs } = await readAll(join(out, 'input.pcapng'));
    expect(recs).toHaveLength(orig.length);
    recs.forEach((r, i) => {
      expect([...r.data]).toEqual([...orig[i].data]);
      expect(r.tsSec).toBe(orig[i].tsSec);
      expect(names[r.interfaceId]).toMatch(/^(internet|app-10\.0\.1\.10)$/);
      expect(r.comment).toMatch(
        new RegExp(`^input #${i + 1} from ${names[r.interfaceId].replace(/-10\.0\.1\.10$/, '')}[ :]`),
      );
    });
    expect(recs[4].comment).toMatch(
      /model: delivered to internet \[ct NEW\]; broken: dropped \(nat-clash\) \[ct NEW\]/,
    );
    expect(recs[4].comment).toMatch(/DIFFERS: model vs broken: fate differs; 1 vs 0 output frames$/);
    expect(recs[0].comment).toMatch(/^input #1 from app: model, broken: delivered to internet/);
  });

  it.runIf(HAVE_TSHARK)('tshark: the reason under frame.comment, the "dropped" filter, no expert errors', async () => {
    const path = join(out, 'broken.pcapng');
    const hits = execFileSync(
      'tshark',
      [
        '-n',
        '-r',
        path,
        '-Y',
        'frame.comment contains "dropped"',
        '-T',
        'fields',
        '-e',
        'frame.interface_name',
        '-e',
        'frame.comment',
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n');
    expect(hits).toHaveLength(2);
    expect(hits[0]).toMatch(/^dropped\tinput #5 from app: dropped \(nat-clash\)/);
    const differs = execFileSync(
      'tshark',
      [
        '-n',
        '-r',
        join(out, 'input.pcapng'),
        '-Y',
        'frame.comment contains "DIFFERS"',
        '-T',
        'fields',
        '-e',
        'frame.number',
      ],
      { encoding: 'utf8' },
    ).trim();
    expect(differs).toBe('5\n6');
    for (const f of ['model.pcapng', 'broken.pcapng', 'input.pcapng'])
      expect((await tsharkCheck(join(out, f))).problems).toEqual([]);
  });

  it('CLI: pcapng is the default, --format pcap keeps the per-point pcaps, a bad --format is a usage error', async () => {
    const w = process.stdout.write.bind(process.stdout);
    const e = process.stderr.write.bind(process.stderr);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(
        await main([
          'replay',
          '--scenario',
          'vpc-nat-instance-open',
          '--in',
          input,
          '--out',
          join(dir, 'cli-ng'),
          '--engines',
          'model',
        ]),
      ).toBe(0);
      expect(
        await main([
          'replay',
          '--scenario',
          'vpc-nat-instance-open',
          '--in',
          input,
          '--out',
          join(dir, 'cli-pcap'),
          '--engines',
          'model',
          '--format',
          'pcap',
        ]),
      ).toBe(0);
      expect(
        await main([
          'replay',
          '--scenario',
          'vpc-nat-instance-open',
          '--in',
          input,
          '--out',
          join(dir, 'cli-bad'),
          '--engines',
          'model',
          '--format',
          'json',
        ]),
      ).toBe(2);
    } finally {
      process.stdout.write = w;
      process.stderr.write = e;
    }
    expect((await readdir(join(dir, 'cli-ng'))).sort()).toEqual(['input.pcapng', 'model.pcapng', 'report.json']);
    expect((await readdir(join(dir, 'cli-pcap', 'model'))).sort()).toEqual([
      'app-10.0.1.10.pcap',
      'internet.pcap',
      'nat-10.0.0.10.pcap',
      'web-10.0.0.20.pcap',
    ]);
  });
});
