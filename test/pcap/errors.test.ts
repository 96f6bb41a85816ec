// Broken and unusual files built byte by byte: each gives its clear InputError (naming the file,
// the record or block, and the defect) or a warning, and records before a fatal defect are
// delivered first.
import { afterAll, describe, expect, it } from 'vitest';
import { encodePcap, openCapture } from '../../src/pcap/index.ts';
import { InputError } from '../../src/spec/errors.ts';
import { block, concat, epb, idb, shb, spb, unknownBlock, type Opt } from './pcapng-build.ts';
import { readAll, readUntilError, tmpDir } from './util.ts';

const tmp = tmpDir();
afterAll(() => tmp.cleanup());
let n = 0;
const file = (b: Uint8Array, ext = 'pcap') => tmp.file(`e${n++}.${ext}`, b);

async function errorOf(b: Uint8Array, ext = 'pcap'): Promise<{ message: string; records: number }> {
  const p = file(b, ext);
  const r = await readUntilError(p);
  expect(r.error, 'expected an InputError').toBeInstanceOf(InputError);
  expect(r.error!.message.startsWith(`${p}: `)).toBe(true);
  return { message: r.error!.message.slice(p.length + 2), records: r.records.length };
}

function pcapHeader(
  o: { magic?: number; le?: boolean; major?: number; minor?: number; snap?: number; lt?: number } = {},
): Uint8Array {
  const b = Buffer.alloc(24);
  const le = o.le ?? true;
  const w32 = (v: number, at: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  const w16 = (v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  w32(o.magic ?? 0xa1b2c3d4, 0);
  w16(o.major ?? 2, 4);
  w16(o.minor ?? 4, 6);
  w32(o.snap ?? 65535, 16);
  w32(o.lt ?? 1, 20);
  return b;
}

function pcapRecord(o: {
  sec?: number;
  frac?: number;
  cap: number;
  len?: number;
  le?: boolean;
  dataLen?: number;
}): Uint8Array {
  const b = Buffer.alloc(16 + (o.dataLen ?? o.cap));
  const le = o.le ?? true;
  const w32 = (v: number, at: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  w32(o.sec ?? 1, 0);
  w32(o.frac ?? 0, 4);
  w32(o.cap, 8);
  w32(o.len ?? o.cap, 12);
  b.fill(0xab, 16);
  return b;
}

describe('file-level errors', () => {
  it('names missing files, directories and unknown formats', async () => {
    await expect(openCapture(`${tmp.dir}/nope.pcap`)).rejects.toThrow(/nope\.pcap: cannot open: no such file/);
    await expect(openCapture(tmp.dir)).rejects.toThrow(/cannot open: not a regular file/);
    expect((await errorOf(Buffer.from('hello, this is not a capture'))).message).toMatch(
      /^file header: unknown magic number 0x68656c6c: not a pcap or pcapng file \(looks like text\)/,
    );
    expect((await errorOf(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0))).message).toMatch(
      /unknown magic number 0x1f8b0800.*gzip-compressed/,
    );
    expect((await errorOf(Uint8Array.of(0xd4, 0xc3))).message).toBe(
      'file header: file is 2 bytes, too short for a capture file header',
    );
  });

  it('rejects pcap versions other than 2.0-2.4, reserved link-type bits and unsupported link types', async () => {
    expect((await errorOf(pcapHeader({ minor: 5 }))).message).toMatch(
      /unsupported pcap version 2\.5 \(natlab reads 2\.0-2\.4, as libpcap does\)/,
    );
    expect((await errorOf(pcapHeader({ major: 3, minor: 0 }))).message).toMatch(/unsupported pcap version 3\.0/);
    expect((await errorOf(pcapHeader({ le: false, major: 1 }))).message).toMatch(/unsupported pcap version 1\.4/);
    expect((await errorOf(pcapHeader({ lt: 0x00010001 }))).message).toMatch(
      /link-type field 0x00010001 has reserved bits 16-25 set/,
    );
    expect((await errorOf(pcapHeader({ lt: 107 }))).message).toMatch(
      /^file header: link type 107 \(FRELAY\) is not supported; natlab reads/,
    );
    expect((await errorOf(pcapHeader({ lt: 105 }))).message).toMatch(/link type 105 \(IEEE802_11\) is not supported/);
    expect((await errorOf(pcapHeader({ lt: 4242 }))).message).toMatch(
      /link type 4242 \(LINKTYPE_4242\) is not supported/,
    );
  });

  it('accepts the FCS-length bits of the link-type field and reports the FCS length', async () => {
    const r = await readAll(file(concat(pcapHeader({ lt: 0x14000001 }), pcapRecord({ cap: 64 }))));
    expect(r.info.linkType).toBe(1);
    expect(r.info.interfaces[0].fcsLen).toBe(2);
    expect(r.records.length).toBe(1);
  });

  it('reads big-endian nanosecond pcap (magic a1b23c4d)', async () => {
    const r = await readAll(
      file(
        concat(
          pcapHeader({ le: false, magic: 0xa1b23c4d, lt: 101 }),
          pcapRecord({ le: false, sec: 7, frac: 999_999_999, cap: 20 }),
        ),
      ),
    );
    expect(r.info).toMatchObject({ byteOrder: 'BE', tsResolution: 'ns', linkType: 101 });
    expect(r.records[0]).toMatchObject({ tsSec: 7, tsNsec: 999_999_999, timeUs: 7_999_999, origLen: 20 });
  });

  it('reads version 2.2 files whose record lengths are swapped, as libpcap does', async () => {
    // caplen and len written in the other order: the smaller is the captured length.
    const rec = Buffer.from(pcapRecord({ cap: 60, len: 20, dataLen: 20 }));
    const r = await readAll(file(concat(pcapHeader({ minor: 2 }), rec)));
    expect(r.info.version).toBe('2.2');
    expect(r.records[0]).toMatchObject({ origLen: 60 });
    expect(r.records[0].data.length).toBe(20);
  });
});

describe('record-level problems', () => {
  it('a record above 256 KiB is an InputError naming it, after the records before it', async () => {
    const ok = encodePcap(
      [0, 1, 2].map((i) => ({ tsSec: i, tsNsec: 0, data: new Uint8Array(100) })),
      { linkType: 1 },
    );
    const bad = pcapRecord({ cap: 300_000, dataLen: 10 });
    const e = await errorOf(concat(ok, bad, pcapRecord({ cap: 5 })));
    expect(e.records).toBe(3);
    expect(e.message).toBe(
      `record 3 (offset ${ok.length}): captured length 300000 exceeds the 262144-byte maximum (damaged or fuzzed file)`,
    );
  });

  it('caplen above the snapshot length: kept with a warning, or an error with strictSnapLen', async () => {
    const b = concat(pcapHeader({ snap: 50 }), pcapRecord({ cap: 40 }), pcapRecord({ cap: 60 }));
    const r = await readAll(file(b));
    expect(r.records.map((x) => x.data.length)).toEqual([40, 60]);
    expect(r.warnings).toEqual([
      expect.stringMatching(
        /record 1 \(offset 80\): captured length 60 exceeds the snapshot length 50 of the file header \(record kept/,
      ),
    ]);
    const s = await readUntilError(file(b), { strictSnapLen: true });
    expect(s.records.length).toBe(1);
    expect(s.error!.message).toMatch(
      /record 1 \(offset 80\): captured length 60 exceeds the snapshot length 50 of the file header$/,
    );
  });

  it('caplen above the original length, and invalid microseconds, are warnings', async () => {
    const r = await readAll(
      file(concat(pcapHeader(), pcapRecord({ cap: 40, len: 30 }), pcapRecord({ sec: 5, frac: 2_500_000, cap: 4 }))),
    );
    expect(r.records.length).toBe(2);
    expect(r.records[1]).toMatchObject({ tsSec: 7, tsNsec: 500_000_000 });
    expect(r.warnings[0]).toMatch(/record 0 \(offset 24\): captured length 40 exceeds the original length 30/);
    expect(r.warnings[1]).toMatch(/record 1: invalid timestamp: microseconds field 2500000 >= 1000000/);
  });

  it('caps repeated warnings and says how many more there were', async () => {
    const recs = Array.from({ length: 12 }, () => pcapRecord({ frac: 1_000_001, cap: 1 }));
    const r = await readAll(file(concat(pcapHeader(), ...recs)));
    expect(r.records.length).toBe(12);
    expect(r.warnings.length).toBe(6);
    expect(r.warnings[5]).toMatch(/\.\.\. and 7 more invalid-timestamp warnings \(12 in all\)/);
  });
});

describe('pcapng blocks', () => {
  const pkt = new Uint8Array(40).fill(7);
  const head = (le = true) => concat(shb(le), idb(le, 1));

  it('block length not a multiple of 4, below 12, or different in the trailer', async () => {
    expect((await errorOf(concat(head(), block(true, 6, new Uint8Array(22))), 'pcapng')).message).toMatch(
      /^block 2 \(Enhanced Packet Block, offset 48\): block total length 34 is not a multiple of 4/,
    );
    expect((await errorOf(concat(head(), Uint8Array.of(6, 0, 0, 0, 8, 0, 0, 0)), 'pcapng')).message).toMatch(
      /block total length 8 is less than the minimum 12/,
    );
    const e = await errorOf(
      concat(head(), epb(true, 0, [0, 1], pkt), block(true, 6, new Uint8Array(40), { trailer: 99 })),
      'pcapng',
    );
    expect(e.records).toBe(1);
    expect(e.message).toBe(
      "block 3 (Enhanced Packet Block, offset 120): block total length in header (52) and trailer (99) don't match",
    );
  });

  it('an option overrunning its block', async () => {
    // IDB with an option claiming 200 bytes.
    const body = Buffer.alloc(8 + 8);
    body.writeUInt16LE(1, 0);
    body.writeUInt32LE(0, 4);
    body.writeUInt16LE(2, 8); // if_name
    body.writeUInt16LE(200, 10);
    const e = await errorOf(concat(shb(true), block(true, 1, body)), 'pcapng');
    expect(e.message).toMatch(
      /block 1 \(Interface Description Block, offset 28\): option 2 \(length 200\) overruns the block/,
    );
    const opts: Opt[] = [{ code: 3, value: new Uint8Array(300) }];
    const shbBad = Buffer.from(shb(true, { opts }));
    shbBad.writeUInt16LE(400, 26); // the option now claims 400 bytes
    expect((await errorOf(shbBad, 'pcapng')).message).toMatch(
      /Section Header Block, offset 0\): option 3 \(length 400\) overruns the block/,
    );
  });

  it('captured length overrunning the block, unknown interface, unsupported link type', async () => {
    const over = Buffer.from(epb(true, 0, [0, 0], pkt));
    over.writeUInt32LE(400, 20);
    expect((await errorOf(concat(head(), over), 'pcapng')).message).toMatch(
      /record 0, block 2 \(Enhanced Packet Block, offset 48\): captured length 400 overruns the block \(40 bytes of packet data\)/,
    );
    expect((await errorOf(concat(head(), epb(true, 3, [0, 0], pkt)), 'pcapng')).message).toMatch(
      /interface id 3 has no Interface Description Block in this section \(1 defined\)/,
    );
    const e = await errorOf(
      concat(shb(true), idb(true, 1), idb(true, 9), epb(true, 0, [0, 0], pkt), epb(true, 1, [0, 0], pkt)),
      'pcapng',
    );
    expect(e.records).toBe(1);
    expect(e.message).toMatch(
      /record 1, block 4 \(Enhanced Packet Block, offset \d+\), interface 1: link type 9 \(PPP\) is not supported/,
    );
  });

  it('bad byte-order magic, unsupported version, truncated section header', async () => {
    const bom = Buffer.from(head());
    bom.writeUInt32LE(0x11223344, 8);
    expect((await errorOf(bom, 'pcapng')).message).toMatch(/bad byte-order magic 0x11223344/);
    expect((await errorOf(concat(shb(false, { major: 2 }), idb(false, 1)), 'pcapng')).message).toMatch(
      /unsupported pcapng version 2\.0 \(natlab reads 1\.0\)/,
    );
    expect((await errorOf(shb(true).subarray(0, 20), 'pcapng')).message).toMatch(
      /file header is 20 bytes, a pcapng Section Header Block needs at least 28/,
    );
  });

  it('skips blocks it does not use, and reads SPB with the snapshot length of interface 0', async () => {
    const r = await readAll(
      file(
        concat(
          shb(true),
          unknownBlock(true, 4, 20),
          idb(true, 101, { snapLen: 30 }),
          unknownBlock(true, 0xbad, 4),
          spb(true, pkt.subarray(0, 30), 40),
          unknownBlock(true, 5, 32),
        ),
        'pcapng',
      ),
    );
    expect(r.info.skippedBlocks).toBe(3);
    expect(r.records.length).toBe(1);
    expect(r.records[0]).toMatchObject({ linkType: 101, origLen: 40, tsSec: 0, tsNsec: 0 });
    expect(r.records[0].data.length).toBe(30);
  });

  it('a record above 256 KiB in a pcapng is an InputError naming it', async () => {
    const big = new Uint8Array(270_000);
    const e = await errorOf(concat(head(), epb(true, 0, [0, 0], pkt), epb(true, 0, [0, 0], big)), 'pcapng');
    expect(e.records).toBe(1);
    expect(e.message).toMatch(
      /^record 1, block 3 \(Enhanced Packet Block, offset 120\): captured length 270000 exceeds the 262144-byte maximum/,
    );
  });
});
