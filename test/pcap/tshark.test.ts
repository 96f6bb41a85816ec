// Captures natlab writes are read by Wireshark's tshark as what they are, with no malformed-packet
// or bad-checksum expert info; and a corrupted checksum is reported (so this test can fail).
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { PcapWriter, encodePcap } from '../../src/pcap/index.ts';
import {
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  ICMP_DEST_UNREACH,
  ICMP_TIME_EXCEEDED,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from '../../src/packet/constants.ts';
import { buildEthernet, buildIcmpEcho, buildIcmpError, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { parseIpv4Addr as ip } from '../../src/packet/addr.ts';
import { HAVE_TSHARK, tsharkCheck } from '../helpers/tshark.ts';
import { CORPORA, HAVE_CORPORA, tmpDir } from './util.ts';

const tmp = tmpDir();
afterAll(() => tmp.cleanup());

const A = ip('10.0.1.10');
const B = ip('198.51.100.7');
const R = ip('203.0.113.1');
const MSS_SACK_WS = Uint8Array.of(2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7); // MSS 1460, SACK-permitted, NOP, WS 7
const payload = (n: number) => new Uint8Array(n).map((_, i) => 0x41 + (i % 26));

/** A TCP connection, UDP (with and without checksum), ICMP echo and ICMP errors quoting both. */
function packets(): { ip: Uint8Array; proto: number }[] {
  const t = (o: Partial<Parameters<typeof buildTcp>[0]>) =>
    buildTcp({ src: A, dst: B, sport: 40000, dport: 8443, flags: F_ACK, seq: 1001, ack: 5001, ...o });
  const syn = buildTcp({
    src: A,
    dst: B,
    sport: 40000,
    dport: 8443,
    flags: F_SYN,
    seq: 1000,
    options: MSS_SACK_WS,
    df: true,
  });
  const udp = buildUdp({ src: A, dst: B, sport: 40001, dport: 40002, payload: payload(33) });
  const list = [
    syn,
    buildTcp({
      src: B,
      dst: A,
      sport: 8443,
      dport: 40000,
      flags: F_SYN | F_ACK,
      seq: 5000,
      ack: 1001,
      options: MSS_SACK_WS,
    }),
    t({}),
    t({ flags: F_ACK | F_PSH, payload: payload(100) }),
    buildTcp({ src: B, dst: A, sport: 8443, dport: 40000, flags: F_ACK, seq: 5001, ack: 1101 }),
    t({ flags: F_FIN | F_ACK, seq: 1101 }),
    buildTcp({ src: B, dst: A, sport: 8443, dport: 40000, flags: F_RST, seq: 5001, ack: 0 }),
    udp,
    buildUdp({ src: B, dst: A, sport: 40002, dport: 40001, payload: payload(7), noChecksum: true }),
    buildIcmpEcho({ src: A, dst: B, id: 7, seq: 1, payload: payload(56) }),
    buildIcmpEcho({ src: B, dst: A, id: 7, seq: 1, reply: true, payload: payload(56) }),
    buildIcmpError({ src: B, dst: A, type: ICMP_DEST_UNREACH, code: 3, quoted: udp }),
    buildIcmpError({ src: R, dst: A, type: ICMP_TIME_EXCEEDED, code: 0, quoted: syn }),
    buildIcmpError({ src: R, dst: A, type: ICMP_DEST_UNREACH, code: 4, quoted: syn, quoteLen: syn.length, rest: 1400 }),
  ];
  return list.map((p) => ({ ip: p, proto: p[9] }));
}

function decoded(path: string): string[] {
  return execFileSync('tshark', ['-n', '-r', path, '-T', 'fields', '-e', 'ip.proto', '-E', 'occurrence=f'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .split('\n')
    .filter(Boolean);
}

describe.skipIf(!HAVE_TSHARK)(
  `tshark reads what natlab writes${HAVE_TSHARK ? '' : ': SKIPPED, tshark not installed'}`,
  () => {
    const pk = packets();
    const base = 1_700_000_000;

    it('Ethernet (with and without VLAN tag), microseconds, file writer: clean', async () => {
      const p = tmp.file('eth.pcap');
      const w = await PcapWriter.open(p, { linkType: LINKTYPE_ETHERNET });
      for (const [i, x] of pk.entries())
        await w.write({
          tsSec: base + i,
          tsNsec: i * 1000,
          data: buildEthernet(x.ip, i % 3 === 2 ? { vlan: 42 } : {}),
        });
      await w.close();
      const r = await tsharkCheck(p);
      expect(r.problems).toEqual([]);
      expect(r.ok).toBe(true);
      expect(decoded(p)).toEqual(pk.map((x) => String(x.proto)));
    });

    it('raw IP, nanoseconds, encodePcap: clean, timestamps as written', async () => {
      const p = tmp.file(
        'raw.pcap',
        encodePcap(
          pk.map((x, i) => ({ tsSec: base + i, tsNsec: 123_456_789, data: x.ip })),
          { linkType: LINKTYPE_RAW, nanosecond: true },
        ),
      );
      const r = await tsharkCheck(p);
      expect(r.problems).toEqual([]);
      expect(decoded(p)).toEqual(pk.map((x) => String(x.proto)));
      const t = execFileSync('tshark', ['-r', p, '-T', 'fields', '-e', 'frame.time_epoch', '-c', '1'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(t.trim()).toBe(`${base}.123456789`);
    });

    it('a corrupted checksum or a broken length is reported', async () => {
      // [packet index, byte offset in the IP packet, what it breaks]; one file, one frame per case.
      const cases: [number, number, RegExp][] = [
        [3, 20 + 16, /checksum\/error: Bad checksum/], // TCP checksum
        [7, 20 + 6, /checksum\/error: Bad checksum/], // UDP checksum
        [9, 20 + 2, /checksum\/warning: Bad checksum/], // ICMP checksum
        [0, 10, /checksum\/error: Bad checksum/], // IP header checksum
        [3, 3, /protocol\/error: IPv4 total length exceeds packet length/], // IP total length beyond the data
      ];
      const frames = cases.map(([k, at]) => {
        const pkt = Uint8Array.from(pk[k].ip);
        pkt[at] ^= 0x5a;
        return { tsSec: base, tsNsec: 0, data: pkt as Uint8Array };
      });
      // A clean frame last: problems are attributed to the right frames.
      frames.push({ tsSec: base, tsNsec: 0, data: pk[1].ip });
      const r = await tsharkCheck(tmp.file('bad.pcap', encodePcap(frames, { linkType: LINKTYPE_RAW })));
      expect(r.ok).toBe(false);
      cases.forEach(([k, at, re], i) => {
        const mine = r.problems.filter((p) => p.startsWith(`frame ${i + 1}: `));
        expect(mine.join('\n'), `case ${k}/${at}`).toMatch(re);
      });
      expect(r.problems.filter((p) => p.startsWith(`frame ${frames.length}: `))).toEqual([]);
    });

    it.runIf(HAVE_CORPORA && existsSync(join(CORPORA, 'zeek/ip4-tcp-bad-chksum.pcap')))(
      'agrees with the corpus checksum pairs',
      async () => {
        expect((await tsharkCheck(join(CORPORA, 'zeek/ip4-tcp-good-chksum.pcap'))).ok).toBe(true);
        const bad = await tsharkCheck(join(CORPORA, 'zeek/ip4-tcp-bad-chksum.pcap'));
        expect(bad.ok).toBe(false);
        expect(bad.problems[0]).toMatch(/frame 1: checksum/);
      },
    );

    it('a file tshark cannot read is a problem', async () => {
      const r = await tsharkCheck(tmp.file('junk.pcap', Buffer.from('not a capture at all')));
      expect(r.ok).toBe(false);
      expect(r.problems[0]).toMatch(/^tshark failed/);
    });
  },
);
