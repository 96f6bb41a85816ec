// `natlab pcap info`: text and JSON output, exit 2 for unreadable files (after describing the
// others), usage errors.
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { command } from '../../src/cli/cmd-pcap.ts';
import { UsageError } from '../../src/cli/args.ts';
import { encodePcap } from '../../src/pcap/index.ts';
import { buildEthernet, buildIcmpEcho, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { F_SYN, LINKTYPE_ETHERNET } from '../../src/packet/constants.ts';
import { tmpDir } from './util.ts';

const tmp = tmpDir();
afterAll(() => tmp.cleanup());

const A = 0x0a00010a;
const B = 0xc6336407;
const tcp = buildTcp({ src: A, dst: B, sport: 1, dport: 2, flags: F_SYN });
const udp = buildUdp({ src: A, dst: B, sport: 3, dport: 4 });
const badTcp = Uint8Array.from(tcp);
badTcp[36] ^= 1; // TCP checksum
const arp = buildEthernet(udp);
arp[12] = 0x08;
arp[13] = 0x06;
const ipTrunc = buildEthernet(udp).subarray(0, 14 + 10);

const frames = [
  buildEthernet(tcp),
  buildEthernet(udp),
  buildEthernet(badTcp),
  buildEthernet(buildIcmpEcho({ src: A, dst: B, id: 1 })),
  arp,
  ipTrunc,
];
const good = tmp.file(
  'good.pcap',
  encodePcap(
    frames.map((data, i) => ({ tsSec: 1_600_000_000 + i, tsNsec: 5000, data })),
    { linkType: LINKTYPE_ETHERNET },
  ),
);
const junk = tmp.file('junk.pcap', Buffer.from('this is text, not a capture'));

function capture() {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  return { out: () => out, err: () => err };
}
afterEach(() => vi.restoreAllMocks());

describe('natlab pcap info', () => {
  it('describes a capture in text', async () => {
    const c = capture();
    expect(await command.run(['info', good])).toBe(0);
    const o = c.out();
    expect(o).toContain(`${good}:`);
    expect(o).toMatch(/format: +pcap 2\.4, little-endian/);
    expect(o).toMatch(/link type: +EN10MB \(1\)/);
    expect(o).toMatch(/timestamps: +microseconds/);
    expect(o).toMatch(/packets: +6\n/);
    expect(o).toMatch(/first packet: +2020-09-13T12:26:40\.000005Z/);
    expect(o).toMatch(/last packet: +2020-09-13T12:26:45\.000005Z/);
    expect(o).toMatch(/parse status: +ok 4, not-ipv4 1, truncated-ip-header 1/);
    expect(o).toMatch(/L4 protocols: +tcp 2, udp 1, icmp 1/);
    expect(o).toMatch(/not IPv4: +arp 1/);
    expect(o).toMatch(/bad L4 checksum: +1/);
    expect(c.err()).toBe('');
  });

  it('--json: one object per file; an unreadable file is reported and makes the exit 2', async () => {
    const c = capture();
    expect(await command.run(['info', '--json', junk, good])).toBe(2);
    const j = JSON.parse(c.out());
    expect(j).toHaveLength(2);
    expect(j[0]).toEqual({ file: junk, ok: false, error: expect.stringMatching(/unknown magic number 0x74686973/) });
    expect(j[1]).toMatchObject({
      file: good,
      ok: true,
      format: 'pcap',
      byteOrder: 'LE',
      version: '2.4',
      linkTypes: [{ number: 1, name: 'EN10MB' }],
      tsResolution: 'us',
      snapLen: 262144,
      packets: 6,
      badL4Checksum: 1,
      parseStatus: { ok: 4, 'not-ipv4': 1, 'truncated-ip-header': 1 },
      l4: { tcp: 2, udp: 1, icmp: 1 },
      notIpv4: { arp: 1 },
      first: { sec: 1_600_000_000, nsec: 5000, iso: '2020-09-13T12:26:40.000005Z' },
      warnings: [],
    });
    expect(c.err()).toMatch(/natlab pcap info: .*junk\.pcap: file header: unknown magic number/);
  });

  it('usage errors', async () => {
    await expect(command.run(['info'])).rejects.toThrow(UsageError);
    await expect(command.run(['stats', good])).rejects.toThrow(/unknown pcap subcommand 'stats'/);
    await expect(command.run(['info', '--bogus', good])).rejects.toThrow(/unknown option --bogus/);
  });

  it('runs as `natlab pcap info` from the command line', async () => {
    const bin = resolve(import.meta.dirname, '../../bin/natlab.mjs');
    const r = await new Promise<{ code: number; out: string; err: string }>((res) => {
      execFile(process.execPath, [bin, 'pcap', 'info', good, junk], (e, out, err) =>
        res({ code: e ? (e.code as number) : 0, out, err }),
      );
    });
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/packets: +6/);
    expect(r.err).toMatch(/junk\.pcap: file header: unknown magic number/);
  });
});
