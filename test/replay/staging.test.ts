// The replay input's staged copy (input.ts: the reader's buffer copied once into the chunk's
// shared memory, frames moved inside it) and the ingress address index: the frames fed are the
// captured ones whatever the chunk size, when a chunk's arena has to grow and when records span
// the reader's buffers; AddrIndex answers as a Map would.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddrIndex } from '../../src/diff/replay/ingress.ts';
import { runReplay } from '../../src/diff/replay/replay.ts';
import { buildUdp } from '../../src/packet/build.ts';
import { LINKTYPE_RAW } from '../../src/packet/constants.ts';
import { openCapture } from '../../src/pcap/reader.ts';
import { encodePcap } from '../../src/pcap/writer.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { APP, SCRIPT_EPOCH_US } from '../../src/traffic/scripted.ts';

const SERVER = 0xc6336407; // 198.51.100.7
const PACKETS = 1500;

describe('AddrIndex', () => {
  it('answers as a Map<number, number> (property: high addresses, collisions, repeated keys)', () => {
    const addr = fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 7 }).map((x) => (0xc6336400 + x * 256) >>> 0),
    );
    fc.assert(
      fc.property(fc.array(addr, { maxLength: 40 }), fc.array(addr, { maxLength: 40 }), (keys, probes) => {
        const ref = new Map<number, number>();
        keys.forEach((k, i) => ref.set(k >>> 0, i));
        const idx = new AddrIndex(keys.map((k, i) => [k, i] as const));
        for (const a of [...keys, ...probes]) expect(idx.get(a)).toBe(ref.get(a >>> 0) ?? -1);
      }),
    );
  });
});

describe('staged input', () => {
  let dir: string;
  let input: string;
  const payloadOf = (i: number) => {
    // Sizes from 1 to 1472 bytes of payload: big frames outgrow a small chunk's arena.
    const p = new Uint8Array(1 + ((i * 389) % 1472));
    for (let x = 0; x < p.length; x++) p[x] = (i + x * 7) & 255;
    return p;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natlab-staging-'));
    input = join(dir, 'in.pcap');
    const recs = [];
    for (let i = 0; i < PACKETS; i++) {
      const us = SCRIPT_EPOCH_US + i * 100;
      const data = buildUdp({ src: APP, dst: SERVER, sport: 20000 + (i % 50), dport: 53, payload: payloadOf(i) });
      recs.push({ tsSec: Math.floor(us / 1e6), tsNsec: (us % 1e6) * 1000, data });
    }
    // ~1.1 MB: records cross the reader's 256 KiB buffers.
    await writeFile(input, encodePcap(recs, { linkType: LINKTYPE_RAW }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('feeds the captured frames: every payload arrives intact, the same files for any chunk size', async () => {
    const files: Buffer[] = [];
    for (const chunkSize of [1, 7, 4096]) {
      const out = join(dir, `out-${chunkSize}`);
      const { report } = await runReplay({
        input,
        outDir: out,
        outputFormat: 'pcap',
        outputLinkType: LINKTYPE_RAW,
        scenario: loadOpenScenario(),
        scenarioHow: 'test',
        engines: ['model'],
        chunkSize,
      });
      expect(report.exitCode).toBe(0);
      expect(report.engines[0].delivered).toBe(PACKETS);
      const path = join(out, 'model', 'internet.pcap');
      files.push(await readFile(path));
      let i = 0;
      const rd = await openCapture(path);
      for await (const r of rd) {
        const want = payloadOf(i++);
        expect(r.data.length).toBe(28 + want.length);
        expect(Buffer.from(r.data.subarray(28)).equals(Buffer.from(want))).toBe(true);
      }
      await rd.close();
      expect(i).toBe(PACKETS);
    }
    expect(files[1].equals(files[0])).toBe(true);
    expect(files[2].equals(files[0])).toBe(true);
  });

  it('the core alone (the bulk accounting, copies in the shared memory pool) counts and writes what the per-record path does', async () => {
    const run = async (name: string, chunkSize: number, keepResults: boolean, raw = false) => {
      const out = join(dir, name);
      const { report } = await runReplay({
        input,
        outDir: out,
        outputFormat: 'pcap',
        outputLinkType: raw ? LINKTYPE_RAW : undefined,
        scenario: loadOpenScenario(),
        scenarioHow: 'test',
        engines: ['core'],
        workers: 1,
        chunkSize,
        keepResults, // kept results take the per-record path (countOne)
      });
      const { engineMs: _ms, ...summary } = report.engines[0];
      return { summary, file: await readFile(join(out, 'core', 'internet.pcap')) };
    };
    const bulk = await run('core-bulk', 4096, false);
    const bulkSmall = await run('core-bulk-7', 7, false);
    const perRecord = await run('core-per-record', 4096, true);
    expect(bulk.summary.delivered).toBe(PACKETS);
    expect(bulk.summary).toEqual(perRecord.summary);
    expect(bulkSmall.summary).toEqual(perRecord.summary);
    expect(bulk.file.equals(perRecord.file)).toBe(true);
    expect(bulkSmall.file.equals(perRecord.file)).toBe(true);
    // Raw IPv4 outputs (no link header before the frame) the same way.
    const bulkRaw = await run('core-bulk-raw', 4096, false, true);
    const perRecordRaw = await run('core-per-record-raw', 4096, true, true);
    expect(bulkRaw.summary).toEqual(perRecordRaw.summary);
    expect(bulkRaw.file.equals(perRecordRaw.file)).toBe(true);
    expect(bulkRaw.file.length).toBe(bulk.file.length - 14 * PACKETS);
  });
});
