// The pcapng writer: its files read back through natlab's own reader (interfaces, names,
// timestamps at both resolutions, comments, snapshot cuts, padding) and through Wireshark's
// tshark (frame.comment, the interface names, a display filter on the comment, no expert errors).
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  PcapngWriter,
  encodePcapng,
  pcapngHeader,
  timestampWords,
  type PcapngWriteRecord,
} from '../../src/pcap/pcapng-writer.ts';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../src/packet/constants.ts';
import { buildEthernet, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { parseIpv4Addr as ip } from '../../src/packet/addr.ts';
import { F_SYN } from '../../src/packet/constants.ts';
import { HAVE_TSHARK, tsharkCheck } from '../helpers/tshark.ts';
import { readAll, tmpDir } from './util.ts';

const tmp = tmpDir();
afterAll(() => tmp.cleanup());

describe('timestampWords', () => {
  it('matches a BigInt oracle at ns and us resolution, up to the largest second', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 18_446_744_072 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        fc.boolean(),
        (sec, ns, nano) => {
          const ts = nano
            ? BigInt(sec) * 1_000_000_000n + BigInt(ns)
            : BigInt(sec) * 1_000_000n + BigInt(Math.floor(ns / 1000));
          const [hi, lo] = timestampWords(sec, ns, nano);
          expect(BigInt(hi) * 2n ** 32n + BigInt(lo)).toBe(ts);
          expect(hi).toBeLessThan(2 ** 32);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('pcapng writer layout', () => {
  it('pads every block and option to 32 bits and repeats the block length in the trailer', () => {
    const bytes = encodePcapng(
      [
        { tsSec: 1, tsNsec: 2, data: Uint8Array.of(0x45), comment: 'x' },
        { tsSec: 1, tsNsec: 3, data: new Uint8Array(5), comment: 'héllo' },
        { tsSec: 1, tsNsec: 4, data: new Uint8Array(8) },
      ],
      { interfaces: [{ linkType: LINKTYPE_RAW, name: 'internet' }] },
    );
    const b = Buffer.from(bytes);
    let off = 0;
    const types: number[] = [];
    while (off < b.length) {
      const t = b.readUInt32LE(off);
      const len = b.readUInt32LE(off + 4);
      expect(len % 4).toBe(0);
      expect(b.readUInt32LE(off + len - 4)).toBe(len);
      types.push(t);
      off += len;
    }
    expect(off).toBe(b.length);
    expect(types).toEqual([0x0a0d0d0a, 1, 6, 6, 6]);
    // First EPB: 28 bytes fixed + 4 (1 byte padded) + comment option 4+4 + end 4 + trailer 4 = 48.
    const head = pcapngHeader({ interfaces: [{ linkType: LINKTYPE_RAW, name: 'internet' }] }).length;
    expect(b.readUInt32LE(head + 4)).toBe(48);
    // No comment: no options at all (28 + 8 + 4).
    expect(types.length).toBe(5);
    const last = b.length - 40;
    expect(b.readUInt32LE(last + 4)).toBe(40);
  });

  it('rejects bad arguments as caller bugs', () => {
    expect(() => encodePcapng([], { interfaces: [] })).toThrow(/at least one interface/);
    expect(() => encodePcapng([], { interfaces: [{ linkType: 9 }] })).toThrow(/link type 9/);
    expect(() =>
      encodePcapng([{ tsSec: 0, tsNsec: 0, data: new Uint8Array(1), interfaceId: 1 }], {
        interfaces: [{ linkType: 101 }],
      }),
    ).toThrow(/interface id 1/);
    expect(() =>
      encodePcapng([{ tsSec: -1, tsNsec: 0, data: new Uint8Array(1) }], { interfaces: [{ linkType: 101 }] }),
    ).toThrow(/tsSec -1/);
    expect(() =>
      encodePcapng([{ tsSec: 0, tsNsec: 1e9, data: new Uint8Array(1) }], { interfaces: [{ linkType: 101 }] }),
    ).toThrow(/tsNsec/);
  });
});

const recordArb = (ifaces: number) =>
  fc.record({
    interfaceId: fc.integer({ min: 0, max: ifaces - 1 }),
    tsSec: fc.integer({ min: 0, max: 2 ** 34 }),
    tsNsec: fc.integer({ min: 0, max: 999_999_999 }),
    data: fc.uint8Array({ minLength: 0, maxLength: 70 }),
    comment: fc.option(fc.string({ maxLength: 40, unit: 'binary' }), { nil: undefined }),
  });

describe('pcapng writer round trip through the reader', () => {
  it('interfaces, names, timestamps, data, original lengths and comments come back', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            name: fc.string({ maxLength: 20 }),
            raw: fc.boolean(),
            snapLen: fc.integer({ min: 20, max: 100 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        async (ifs, nano, seed) => {
          const recs = fc.sample(fc.array(recordArb(ifs.length), { maxLength: 12 }), {
            numRuns: 1,
            seed,
          })[0] as PcapngWriteRecord[];
          const interfaces = ifs.map((f) => ({
            linkType: f.raw ? LINKTYPE_RAW : LINKTYPE_ETHERNET,
            name: f.name,
            snapLen: f.snapLen,
          }));
          const path = tmp.file(
            `rt-${seed}.pcapng`,
            encodePcapng(recs, { interfaces, resolution: nano ? 'ns' : 'us' }),
          );
          const { info, records, warnings } = await readAll(path);
          expect(warnings).toEqual([]);
          expect(info.format).toBe('pcapng');
          expect(info.interfaces.map((f) => f.name)).toEqual(ifs.map((f) => f.name.replace(/\0+$/, '')));
          expect(info.interfaces.map((f) => f.tsResolution)).toEqual(ifs.map(() => (nano ? 'ns' : 'us')));
          expect(records.length).toBe(recs.length);
          records.forEach((r, i) => {
            const w = recs[i];
            const snap = ifs[w.interfaceId!].snapLen;
            expect(r.interfaceId).toBe(w.interfaceId);
            expect(r.linkType).toBe(interfaces[w.interfaceId!].linkType);
            expect(r.tsSec).toBe(w.tsSec);
            expect(r.tsNsec).toBe(nano ? w.tsNsec : Math.floor(w.tsNsec / 1000) * 1000);
            expect([...r.data]).toEqual([...w.data.subarray(0, snap)]);
            expect(r.origLen).toBe(w.data.length);
            expect(r.comment).toBe(w.comment ? w.comment : null);
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the streaming writer writes the same bytes as encodePcapng, across staging hand-offs', async () => {
    const interfaces = [
      { linkType: LINKTYPE_RAW, name: 'internet' },
      { linkType: LINKTYPE_RAW, name: 'app-10.0.1.10' },
    ];
    const recs: PcapngWriteRecord[] = Array.from({ length: 3000 }, (_, i) => ({
      interfaceId: i % 2,
      tsSec: 1_700_000_000 + i,
      tsNsec: i * 1000,
      data: new Uint8Array(40 + (i % 7)).fill(i & 255),
      comment: i % 3 ? `input #${i + 1}: delivered` : undefined,
    }));
    const path = tmp.file('stream.pcapng');
    const w = await PcapngWriter.open(path, { interfaces, comment: 'natlab test' });
    for (const r of recs) await w.write(r);
    await w.close();
    expect(
      Buffer.from(readFileSync(path)).equals(Buffer.from(encodePcapng(recs, { interfaces, comment: 'natlab test' }))),
    ).toBe(true);
    expect(w.count).toBe(3000);
  });

  it('cannot create a file in a missing directory: InputError naming the path', async () => {
    await expect(PcapngWriter.open('/nonexistent-dir/x.pcapng', { interfaces: [{ linkType: 101 }] })).rejects.toThrow(
      /x.pcapng: cannot create: no such directory/,
    );
  });
});

describe.skipIf(!HAVE_TSHARK)('tshark reads what the pcapng writer writes', () => {
  const A = ip('10.0.1.10');
  const B = ip('198.51.100.7');
  const syn = buildTcp({ src: A, dst: B, sport: 40000, dport: 443, flags: F_SYN, seq: 1 });
  const udp = buildUdp({ src: A, dst: B, sport: 40001, dport: 9999, payload: new Uint8Array(11).fill(0x61) });

  it('interface names, comments, the comment filter, and no expert errors', async () => {
    const path = tmp.file(
      'tshark.pcapng',
      encodePcapng(
        [
          {
            interfaceId: 0,
            tsSec: 1_700_000_000,
            tsNsec: 123_456_789,
            data: buildEthernet(syn),
            comment: 'input #1: delivered to internet (ct NEW)',
          },
          {
            interfaceId: 1,
            tsSec: 1_700_000_001,
            tsNsec: 5,
            data: udp,
            comment: 'input #2: dropped (no-route) — «core» differs',
          },
          { interfaceId: 1, tsSec: 1_700_000_002, tsNsec: 0, data: udp },
        ],
        {
          interfaces: [
            { linkType: LINKTYPE_ETHERNET, name: 'internet' },
            { linkType: LINKTYPE_RAW, name: 'app-10.0.1.10', description: 'app' },
          ],
        },
      ),
    );
    const fields = execFileSync(
      'tshark',
      [
        '-n',
        '-r',
        path,
        '-T',
        'fields',
        '-e',
        'frame.number',
        '-e',
        'frame.interface_name',
        '-e',
        'frame.comment',
        '-e',
        'frame.time_epoch',
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(fields.map((f) => f[1])).toEqual(['internet', 'app-10.0.1.10', 'app-10.0.1.10']);
    expect(fields[0][2]).toBe('input #1: delivered to internet (ct NEW)');
    expect(fields[1][2]).toBe('input #2: dropped (no-route) — «core» differs');
    expect(fields[2][2]).toBe('');
    expect(fields[0][3]).toMatch(/^1700000000\.123456789/);
    const dropped = execFileSync(
      'tshark',
      ['-n', '-r', path, '-Y', 'frame.comment contains "dropped"', '-T', 'fields', '-e', 'frame.number'],
      { encoding: 'utf8' },
    ).trim();
    expect(dropped).toBe('2');
    const check = await tsharkCheck(path);
    expect(check.problems).toEqual([]);
  });
});
