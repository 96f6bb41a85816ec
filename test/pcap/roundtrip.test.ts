// Property tests: what the writers write the reader reads back (timestamps at both resolutions,
// lengths, bytes, link types); pcapng files with any byte order, timestamp resolution and block
// mix read as their records say; reading does not depend on chunk boundaries; a file cut at any
// byte yields every complete record before the cut plus a warning; corrupted files give
// InputErrors, never crashes.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { PcapWriter, encodePcap, openCapture, type PcapWriteRecord } from '../../src/pcap/index.ts';
import type { CaptureRecord, OpenOptions, RecordSink } from '../../src/pcap/types.ts';
import { InputError } from '../../src/spec/errors.ts';
import { SharedMemoryPool } from '../../src/spec/shared-memory.ts';
import { concat, epb, idb, nameOpt, pb, shb, spb, tsoffsetOpt, tsresolOpt, unknownBlock } from './pcapng-build.ts';
import { readAll, readUntilError, tmpDir } from './util.ts';

const tmp = tmpDir();
afterAll(() => tmp.cleanup());
let fileNo = 0;
const nextPath = (ext = 'pcap') => tmp.file(`f${fileNo++}.${ext}`);

const LINK_TYPES = [0, 1, 101, 113, 228, 276];

const recordArb = fc.record({
  tsSec: fc.integer({ min: 0, max: 0xffffffff }),
  tsNsec: fc.integer({ min: 0, max: 999_999_999 }),
  data: fc.uint8Array({ maxLength: 200 }),
  extra: fc.nat({ max: 3000 }),
});
type GenRec = { tsSec: number; tsNsec: number; data: Uint8Array; extra: number };
const toWrite = (r: GenRec): PcapWriteRecord => ({
  tsSec: r.tsSec,
  tsNsec: r.tsNsec,
  data: r.data,
  origLen: r.data.length + r.extra,
});

const optsArb = fc.record({
  linkType: fc.constantFrom(...LINK_TYPES),
  nanosecond: fc.boolean(),
  snapLen: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
});

function expectRecords(
  got: Awaited<ReturnType<typeof readAll>>,
  recs: GenRec[],
  o: { linkType: number; nanosecond: boolean; snapLen?: number },
): void {
  expect(got.records.length).toBe(recs.length);
  expect(got.info.format).toBe('pcap');
  expect(got.info.linkType).toBe(o.linkType);
  expect(got.info.tsResolution).toBe(o.nanosecond ? 'ns' : 'us');
  expect(got.info.snapLen).toBe(o.snapLen ?? 262144);
  expect(got.warnings).toEqual([]);
  recs.forEach((r, i) => {
    const g = got.records[i];
    const nsec = o.nanosecond ? r.tsNsec : Math.floor(r.tsNsec / 1000) * 1000;
    expect(g.index).toBe(i);
    expect(g.tsSec).toBe(r.tsSec);
    expect(g.tsNsec).toBe(nsec);
    expect(g.timeUs).toBe(r.tsSec * 1e6 + Math.floor(r.tsNsec / 1000));
    expect(g.linkType).toBe(o.linkType);
    expect(g.origLen).toBe(r.data.length + r.extra);
    expect(Buffer.from(g.data).equals(Buffer.from(r.data.subarray(0, o.snapLen ?? r.data.length)))).toBe(true);
  });
}

describe('pcap write then read', () => {
  it('encodePcap round-trips timestamps (us and ns), lengths, bytes and link types', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(recordArb, { maxLength: 20 }), optsArb, async (recs, o) => {
        const p = nextPath();
        writeFileSync(p, encodePcap(recs.map(toWrite), o));
        expectRecords(await readAll(p), recs, o);
      }),
      { numRuns: 120 },
    );
  });

  it('PcapWriter writes the same bytes as encodePcap, and they read back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(recordArb, { maxLength: 20 }), optsArb, async (recs, o) => {
        const p = nextPath();
        const w = await PcapWriter.open(p, o);
        for (const r of recs) await w.write(toWrite(r));
        await w.close();
        expect(w.count).toBe(recs.length);
        const bytes = readFileSync(p);
        expect(bytes.equals(Buffer.from(encodePcap(recs.map(toWrite), o)))).toBe(true);
        expect(w.bytes).toBe(bytes.length);
        expectRecords(await readAll(p), recs, o);
      }),
      { numRuns: 60 },
    );
  });

  it('the file writer streams many records through its staging buffer and drains', async () => {
    const p = nextPath();
    const w = await PcapWriter.open(p, { linkType: 101, nanosecond: true });
    const n = 20_000;
    const data = new Uint8Array(1500).map((_, i) => i & 0xff);
    for (let i = 0; i < n; i++)
      await w.write({ tsSec: 1_700_000_000 + i, tsNsec: i, data: data.subarray(0, 40 + (i % 1400)) });
    await w.close();
    const r = await readAll(p);
    expect(r.records.length).toBe(n);
    expect(r.records[n - 1].tsSec).toBe(1_700_000_000 + n - 1);
    expect(r.records[n - 1].tsNsec).toBe(n - 1);
    expect(r.records[777].data.length).toBe(40 + 777);
    expect(r.records[777].data[100]).toBe(100);
  });

  it('keeps the order of writes that are not awaited', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            tsSec: fc.nat(),
            tsNsec: fc.nat({ max: 999_999_999 }),
            data: fc.uint8Array({ maxLength: 30000 }),
          }),
          { maxLength: 30 },
        ),
        async (recs) => {
          const p = nextPath();
          const w = await PcapWriter.open(p, { linkType: 1, nanosecond: true });
          const pending = recs.map((r) => w.write(r));
          await w.close();
          await Promise.all(pending);
          expect(readFileSync(p).equals(Buffer.from(encodePcap(recs, { linkType: 1, nanosecond: true })))).toBe(true);
        },
      ),
      { numRuns: 15 },
    );
  });

  it('reads only as far as the consumer has got (streaming, backpressure)', async () => {
    const recs = Array.from({ length: 4000 }, (_, i) => ({
      tsSec: i,
      tsNsec: 0,
      data: new Uint8Array(1400).fill(i & 0xff),
    }));
    const bytes = encodePcap(recs, { linkType: 1 });
    for (const [name, data] of [
      ['s.pcap', bytes],
      ['s.pcapng', concat(shb(true), idb(true, 1), ...recs.map((r) => epb(true, 0, [0, r.tsSec * 1e6], r.data)))],
    ] as const) {
      const path = tmp.file(name, data);
      for (const parser of ['native', 'pcap-parser'] as const) {
        const r = await openCapture(path, { chunkSize: 64 * 1024, parser });
        expect(r.fileSize).toBe(data.length);
        const it = r[Symbol.asyncIterator]();
        await it.next();
        // One chunk plus one chunk of read-ahead, whatever the file size (5.7 MB here).
        expect(r.bytesRead, `${name} ${parser}`).toBeLessThanOrEqual(2 * 64 * 1024);
        let n = 1;
        for (let x = await it.next(); !x.done; x = await it.next()) n++;
        expect(n).toBe(recs.length);
        expect(r.bytesRead).toBe(data.length);
      }
    }
  });

  it('rejects what classic pcap cannot hold', async () => {
    expect(() => encodePcap([{ tsSec: 2 ** 32, tsNsec: 0, data: new Uint8Array(1) }], { linkType: 1 })).toThrow(
      /tsSec/,
    );
    expect(() => encodePcap([{ tsSec: 0, tsNsec: 1e9, data: new Uint8Array(1) }], { linkType: 1 })).toThrow(/tsNsec/);
    expect(() => encodePcap([{ tsSec: 0, tsNsec: 0, data: new Uint8Array(4), origLen: 3 }], { linkType: 1 })).toThrow(
      /origLen/,
    );
    expect(() => encodePcap([], { linkType: 107 })).toThrow(/link type 107 \(FRELAY\)/);
    expect(() => encodePcap([], { linkType: 1, snapLen: 300000 })).toThrow(/snapLen/);
    await expect(PcapWriter.open(`${tmp.dir}/no/such/dir/x.pcap`, { linkType: 1 })).rejects.toThrow(
      /x\.pcap: cannot create: no such directory/,
    );
  });
});

describe('reading is independent of chunk boundaries and of the record decoder', () => {
  it('any chunk size, and the pcap-parser decoder, give the same records, warnings and errors', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordArb, { minLength: 1, maxLength: 12 }),
        optsArb,
        fc.integer({ min: 16, max: 300 }),
        fc.nat(),
        async (recs, o, chunk, cut) => {
          const full = encodePcap(recs.map(toWrite), o);
          // Sometimes also cut the file so the truncated-record path meets chunk edges.
          const bytes = cut % 3 === 0 ? full.subarray(0, Math.max(24, full.length - 1 - (cut % 40))) : full;
          const p = nextPath();
          writeFileSync(p, bytes);
          const a = await readUntilError(p);
          const b = await readUntilError(p, { chunkSize: chunk });
          expect(b.error?.message).toBe(a.error?.message);
          expect(b.warnings).toEqual(a.warnings);
          expect(b.records).toEqual(a.records);
          const c = await readUntilError(p, { chunkSize: chunk, parser: 'pcap-parser' });
          expect(c.error?.message).toBe(a.error?.message);
          expect(c.warnings).toEqual(a.warnings);
          expect(c.records).toEqual(a.records);
          // The bulk path (readInto, records straight into a sink, read buffers reused) delivers the same.
          const d = await readIntoUntilError(p, { chunkSize: chunk, reuseBuffers: true }, 1 + (cut % 5));
          expect(d.error?.message).toBe(a.error?.message);
          expect(d.warnings).toEqual(a.warnings);
          expect(d.records).toEqual(a.records);
          // ... and so does it reading into a shared memory pool (a record cut by a read's edge is
          // completed in the room before the next read, or joined when it is longer).
          const pool = SharedMemoryPool.create(1 << 16, 1 << 22);
          const e = await readIntoUntilError(p, { chunkSize: chunk, reuseBuffers: true, pool }, 1 + (cut % 5));
          expect(e.error?.message).toBe(a.error?.message);
          expect(e.warnings).toEqual(a.warnings);
          expect(e.records).toEqual(a.records);
        },
      ),
      { numRuns: 80 },
    );
  });
});

/** readUntilError through readInto (`max` records per call), records rebuilt from the sink's arguments. */
async function readIntoUntilError(
  path: string,
  opts: OpenOptions,
  max: number,
): Promise<{ records: CaptureRecord[]; warnings: string[]; error: Error | null }> {
  const records: CaptureRecord[] = [];
  let warnings: string[] = [];
  const sink: RecordSink = {
    record(index, tsSec, tsNsec, timeUs, linkType, buf, off, capLen, origLen) {
      const data = Uint8Array.from(buf.subarray(off, off + capLen));
      records.push({ index, tsSec, tsNsec, timeUs, linkType, data, origLen, interfaceId: 0, comment: null });
    },
  };
  try {
    const r = await openCapture(path, opts);
    warnings = r.warnings;
    while ((await r.readInto(sink, max)) > 0);
  } catch (e) {
    return { records, warnings, error: e as Error };
  }
  return { records, warnings, error: null };
}

// ---- pcapng --------------------------------------------------------------------------------

/** Independent oracle for timestamps: BigInt arithmetic on the raw 64-bit value. */
function expectTs(raw: bigint, tsresol: number, offset: number): { sec: number; nsec: number } {
  const pow10 = (tsresol & 0x80) === 0;
  const e = BigInt(tsresol & 0x7f);
  const unit = pow10 ? 10n ** e : 1n << e;
  const sec = raw / unit;
  const nsec = ((raw % unit) * 1_000_000_000n) / unit;
  return { sec: Number(sec) + offset, nsec: Number(nsec) };
}

const ifaceArb = fc.record({
  linkType: fc.constantFrom(...LINK_TYPES),
  // none (default 10^-6), ms, us, ns, ps, 2^-10, 2^-20, 2^-32
  tsresol: fc.constantFrom(-1, 3, 6, 9, 12, 0x80 | 10, 0x80 | 20, 0x80 | 32),
  snapLen: fc.constantFrom(0, 65535, 262144),
  tsoffset: fc.constantFrom(0, 0, 1000),
});
const ngPacketArb = fc.record({
  iface: fc.nat(),
  raw: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  data: fc.uint8Array({ maxLength: 120 }),
  extra: fc.nat({ max: 100 }),
  kind: fc.constantFrom('epb', 'epb', 'pb', 'spb'),
  unknownBefore: fc.constantFrom(0, 0, 0, 4, 5, 0xbad),
});
const sectionArb = fc.record({
  le: fc.boolean(),
  ifaces: fc.array(ifaceArb, { minLength: 1, maxLength: 3 }),
  packets: fc.array(ngPacketArb, { maxLength: 8 }),
});

describe('pcapng', () => {
  it('reads sections of either byte order, each interface with its link type and resolution', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sectionArb, { minLength: 1, maxLength: 3 }), async (sections) => {
        const parts: Uint8Array[] = [];
        const want: { sec: number; nsec: number; linkType: number; data: Uint8Array; origLen: number }[] = [];
        for (const s of sections) {
          parts.push(shb(s.le, { opts: [nameOpt('natlab test')] }));
          s.ifaces.forEach((f, k) => {
            const opts = [nameOpt(`if${k}`)];
            if (f.tsresol >= 0) opts.push(tsresolOpt(f.tsresol));
            if (f.tsoffset) opts.push(tsoffsetOpt(s.le, f.tsoffset));
            parts.push(idb(s.le, f.linkType, { snapLen: f.snapLen, opts }));
          });
          for (const p of s.packets) {
            if (p.unknownBefore) parts.push(unknownBlock(s.le, p.unknownBefore, 12));
            const ifId = p.iface % s.ifaces.length;
            const f = s.ifaces[ifId];
            const origLen = p.data.length + p.extra;
            if (p.kind === 'spb') {
              // SPB: interface 0, no timestamp, no captured length: the data is the packet
              // (origLen bytes) cut to interface 0's snapshot length.
              const f0 = s.ifaces[0];
              const cap = f0.snapLen ? Math.min(p.data.length, f0.snapLen) : p.data.length;
              parts.push(spb(s.le, p.data.subarray(0, cap), p.data.length));
              want.push({
                sec: 0,
                nsec: 0,
                linkType: f0.linkType,
                data: p.data.subarray(0, cap),
                origLen: p.data.length,
              });
              continue;
            }
            const hi = Number(p.raw >> 32n);
            const lo = Number(p.raw & 0xffffffffn);
            parts.push(
              p.kind === 'pb'
                ? pb(s.le, ifId, [hi, lo], p.data, origLen)
                : epb(s.le, ifId, [hi, lo], p.data, { origLen }),
            );
            const ts = expectTs(p.raw, f.tsresol < 0 ? 6 : f.tsresol, f.tsoffset);
            want.push({ ...ts, linkType: f.linkType, data: p.data, origLen });
          }
        }
        const path = nextPath('pcapng');
        writeFileSync(path, concat(...parts));
        const got = await readAll(path);
        expect(got.info.format).toBe('pcapng');
        expect(got.info.byteOrder).toBe(sections[0].le ? 'LE' : 'BE');
        expect(got.info.sections).toBe(sections.length);
        expect(got.info.interfaces.length).toBe(sections.reduce((n, s) => n + s.ifaces.length, 0));
        expect(got.info.linkType).toBe(sections[0].ifaces[0].linkType);
        expect(got.info.interfaces[0].name).toBe('if0');
        expect(got.warnings).toEqual([]);
        expect(got.records.length).toBe(want.length);
        want.forEach((w, i) => {
          const g = got.records[i];
          expect({ i, sec: g.tsSec, nsec: g.tsNsec, lt: g.linkType, origLen: g.origLen }).toEqual({
            i,
            sec: w.sec,
            nsec: w.nsec,
            lt: w.linkType,
            origLen: w.origLen,
          });
          expect(Buffer.from(g.data).equals(Buffer.from(w.data))).toBe(true);
          expect(g.index).toBe(i);
        });
      }),
      { numRuns: 120 },
    );
  });

  it('reports the timestamp resolution of the first interface', async () => {
    const cases: [number, string][] = [
      [-1, 'us'],
      [6, 'us'],
      [9, 'ns'],
      [3, '10^-3'],
      [0x80 | 20, '2^-20'],
    ];
    for (const [res, text] of cases) {
      const path = nextPath('pcapng');
      writeFileSync(path, concat(shb(true), idb(true, 1, { opts: res >= 0 ? [tsresolOpt(res)] : [] })));
      expect((await readAll(path)).info.tsResolution).toBe(text);
    }
  });
});

// ---- truncation and corruption --------------------------------------------------------------

function samplePcapng(le: boolean): Uint8Array {
  const d = (n: number) => new Uint8Array(n).map((_, i) => (i * 7) & 0xff);
  return concat(
    shb(le),
    idb(le, 1, { opts: [tsresolOpt(9)] }),
    epb(le, 0, [0, 1000], d(60)),
    unknownBlock(le, 5, 16),
    epb(le, 0, [1, 2000], d(61)),
    spb(le, d(62)),
    epb(le, 0, [2, 3], d(63)),
  );
}

describe('truncated files', () => {
  it.each(['native', 'pcap-parser'] as const)(
    'a pcap cut at any byte (%s decoder): every complete record before the cut, and a warning if a record was cut',
    async (parser) => {
      const recs = [0, 1, 2, 3].map((i) => ({
        tsSec: 100 + i,
        tsNsec: i * 1000,
        data: new Uint8Array(30 + i).fill(i),
      }));
      const full = encodePcap(recs, { linkType: 1 });
      const ends: number[] = [24];
      for (let i = 0, o = 24; i < recs.length; i++) ends.push((o += 16 + recs[i].data.length));
      for (let cut = 0; cut <= full.length; cut++) {
        const p = nextPath();
        writeFileSync(p, full.subarray(0, cut));
        const r = await readUntilError(p, { parser });
        if (cut < 24) {
          expect(r.error).toBeInstanceOf(InputError);
          expect(r.error!.message).toMatch(
            cut === 0 ? /empty file/ : cut < 4 ? /too short/ : new RegExp(`file header is ${cut} bytes, needs 24`),
          );
          continue;
        }
        expect(r.error).toBeNull();
        const complete = ends.filter((e) => e <= cut).length - 1;
        expect(r.records.length).toBe(complete);
        if (ends.includes(cut)) expect(r.warnings).toEqual([]);
        else {
          expect(r.warnings.length).toBe(1);
          expect(r.warnings[0]).toMatch(
            new RegExp(`record ${complete} \\(offset ${ends[complete]}\\): truncated final record`),
          );
          const partial = cut - ends[complete];
          expect(r.warnings[0]).toContain(
            partial < 16
              ? `header: ${partial} of 16 bytes`
              : `header says ${recs[complete].data.length} bytes captured, the file ends after ${partial - 16}`,
          );
        }
      }
    },
  );

  it('a pcapng cut at any byte: every complete packet before the cut, and a warning if a block was cut', async () => {
    for (const le of [true, false]) {
      const full = samplePcapng(le);
      const whole = await readAll(tmp.file(`full-${le}.pcapng`, full));
      expect(whole.records.length).toBe(4);
      for (let cut = 0; cut < full.length; cut++) {
        const p = nextPath('pcapng');
        writeFileSync(p, full.subarray(0, cut));
        const r = await readUntilError(p);
        if (cut < 28) {
          expect(r.error).toBeInstanceOf(InputError);
          continue;
        }
        expect(r.error).toBeNull();
        expect(r.records.length).toBeLessThanOrEqual(4);
        r.records.forEach((rec, i) => expect(rec).toEqual(whole.records[i]));
        const atBoundary = r.warnings.length === 0;
        if (!atBoundary) expect(r.warnings[0]).toMatch(/truncated final block/);
      }
    }
  });
});

describe('corrupted files', () => {
  it('random byte changes give records or an InputError, never another exception', async () => {
    const recs = [0, 1, 2].map((i) => ({ tsSec: i, tsNsec: 0, data: new Uint8Array(40).fill(i) }));
    const bases = [
      encodePcap(recs, { linkType: 1 }),
      encodePcap(recs, { linkType: 101, nanosecond: true }),
      samplePcapng(true),
      samplePcapng(false),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        async (which, edits) => {
          const b = Uint8Array.from(bases[which]);
          for (const [at, v] of edits) b[at % b.length] = v;
          const p = nextPath();
          writeFileSync(p, b);
          const r = await readUntilError(p);
          if (r.error && !(r.error instanceof InputError)) throw r.error;
          if (r.error) expect(r.error.message).toContain(p);
          if (which < 2) {
            // Both classic decoders agree on damaged files too.
            const q = await readUntilError(p, { parser: 'pcap-parser' });
            expect(q.error?.message).toBe(r.error?.message);
            expect(q.warnings).toEqual(r.warnings);
            expect(q.records).toEqual(r.records);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
