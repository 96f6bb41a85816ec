// The real captures in ../shared/corpora (tcpdump's, zeek's and libpcap's test files): every file
// reads without a crash, the broken ones give their clear errors, counts match the MANIFEST and
// Wireshark's capinfos, pcapng twins (from the corpus and made with editcap) read like their pcap
// originals, and each malformed packet gets the parse status naming its defect.
import { describe, expect, it, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/spec/errors.ts';
import { summarizeCapture, type CaptureSummary } from '../../src/pcap/summary.ts';
import { CORPORA, HAVE_CORPORA, readAll, readUntilError, tmpDir } from './util.ts';

interface Entry {
  file: string;
  linkType: string;
  count: number | null;
}

function manifest(): Entry[] {
  return readFileSync(join(CORPORA, 'MANIFEST.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('file\t'))
    .map((l) => {
      const c = l.split('\t');
      return { file: c[0], linkType: c[4], count: /^\d+$/.test(c[5]) ? Number(c[5]) : null };
    });
}

function tool(name: string): boolean {
  try {
    execFileSync(name, ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Files natlab refuses, and the message that says why. */
const EXPECTED_ERRORS: Record<string, RegExp> = {
  'libpcap/pcap-empty-file.pcap': /file header: empty file \(0 bytes\)/,
  'libpcap/pcap-truncated-hdr-23.pcap': /file header: file header is 23 bytes, needs 24/,
  // Rule (docs/captures.md): like libpcap, natlab reads pcap 2.0-2.4 only; tshark reads 2.5 as 2.4.
  'libpcap/pcap-invalid-version-2.pcap': /file header: unsupported pcap version 2\.5/,
  'libpcap/linktype-reserved-field-not-zero.pcap': /link-type field 0x00300000 has reserved bits 16-25 set/,
  'libpcap/pcapng-invalid-vers-1.pcapng': /Section Header Block, offset 0\): unsupported pcapng version 0\.1/,
  'libpcap/shb-option-too-long.pcapng':
    /Section Header Block, offset 0\): block total length in header \(52\) and trailer \(\d+\) don't match/,
  'tcpdump/icmp-cksum-oobr-2.pcap': /link type 9 \(PPP\) is not supported/,
  'tcpdump/icmp-rfc5837.pcap': /link type 9 \(PPP\) is not supported/,
  'tcpdump/icmp-icmp_print-oobr-2.pcap': /link type 107 \(FRELAY\) is not supported/,
};

/** Warnings natlab gives for readable files (all other files: none). */
const EXPECTED_WARNINGS: Record<string, RegExp[]> = {
  'zeek/trunc-hdr.pcap': [/record 0 \(offset 24\): captured length 8 exceeds the snapshot length 1/],
  'tcpdump/timestamp_invalid_micro.pcap': [
    /record 1: invalid timestamp: microseconds field 1000000/,
    /record 2: invalid timestamp: microseconds field 2147483648/,
  ],
  'tcpdump/timestamp_invalid_nano.pcap': [
    /record 1: invalid timestamp: nanoseconds field 1000000000/,
    /record 2: invalid timestamp: nanoseconds field 2147483648/,
  ],
};

/**
 * natlab's parse status per packet, decided from `tshark -V` / `tcpdump -v` of each file. Where
 * several defects stack, the status is the first one Linux's ip_rcv would hit (header pulled
 * before lengths are compared), which is the order parseFrame checks in.
 */
const EXPECTED_STATUS: Record<string, Record<string, number>> = {
  // [|ether]: 8 captured bytes, an Ethernet header needs 14.
  'zeek/trunc-hdr.pcap': { 'truncated-link-header': 1 },
  // [|ip]: 6 bytes of IPv4 header captured.
  'zeek/ip4-trunc.pcap': { 'truncated-ip-header': 1 },
  // snaplen 33: 19 bytes of IPv4 header.
  'tcpdump/ipv4_invalid_length.pcap': { 'truncated-ip-header': 1 },
  // IHL 4 (16-byte header): tcpdump 'bad-hlen 16'.
  'tcpdump/ipv4_invalid_hdr_length.pcap': { 'bad-ihl': 1 },
  // IHL 15 (60 bytes) with 20 bytes captured; tshark also flags total length 20 < 60 as bogus, but
  // the header itself is cut first.
  'zeek/ipv4-truncated-broken-header.pcap': { 'truncated-ip-options': 1 },
  'zeek/ipv4-internally-truncated-header.pcap': { 'truncated-ip-options': 1 },
  // Total length 0: tcpdump 'bad-len 0', tshark 'Bogus IP length'.
  'zeek/ip-bogus-header-len.pcap': { 'bad-total-length': 1 },
  'tcpdump/ipv4_tcp_http_xml_tso.pcap': { 'bad-total-length': 1 },
  'tcpdump/icmp-length-zero.pcapng': { 'bad-total-length': 1 },
  // Total length 1 byte more than the data; cut by the snapshot length; fuzzed lengths.
  'tcpdump/ipv4_invalid_total_length.pcap': { 'truncated-packet': 1 },
  'tcpdump/dns_udp_2.pcap': { ok: 1, 'truncated-packet': 1 },
  'tcpdump/tcp_rst_data-trunc.pcap': { 'truncated-packet': 1 },
  'tcpdump/icmp-cksum-oobr-1.pcap': { 'truncated-packet': 1 },
  'tcpdump/icmp-cksum-oobr-3.pcapng': { 'truncated-packet': 1 },
  'zeek/udp-contents-truncated-oob.pcap': { 'truncated-packet': 1 },
  // [|icmp]: 40-byte captures of 98-byte echo packets; the IPv4 total length (84) is already
  // more than what was captured (26), so the packet is cut before its ICMP header is.
  'zeek/icmp-header-trunc.pcap': { 'truncated-packet': 2 },
  'zeek/tcp.pcap': { ok: 9, 'truncated-packet': 3 },
  'zeek/truncated-header.pcap': { ok: 12, 'truncated-packet': 12 },
  // IPv4 header checksum 0x0001.
  'zeek/ip4-bad-chksum.pcap': { 'bad-ip-checksum': 1 },
  // Non-first fragments; first fragments parse (with MF set).
  'zeek/fragmented-1.pcap': { ok: 2, fragment: 1 },
  'zeek/fragmented-3.pcap': { ok: 1, fragment: 4 },
  'zeek/fragmented-4.pcap': { ok: 3, fragment: 3 },
  // Tiny first fragment: TCP data offset claims options beyond the 24 bytes present.
  'zeek/fragmented-syn.pcap': { fragment: 1, 'truncated-tcp-options': 1 },
  // ICMP errors quoting less than an IPv4 header + 8 bytes (only a header; nothing at all).
  'zeek/icmp-destunreach-ip.pcap': { 'icmp-error-too-short': 1 },
  'zeek/icmp-destunreach-no-context.pcap': { 'icmp-error-too-short': 1 },
  // LINKTYPE_IPV4 carrying an IPv6 packet.
  'tcpdump/LINKTYPE_IPV4_invalid.pcap': { 'bad-ip-version': 1 },
  // Well-formed ones, for contrast.
  'zeek/icmp-destunreach-udp.pcap': { ok: 1 },
  'zeek/icmp-timeexceeded.pcap': { ok: 1 },
  'zeek/4in4.pcap': { ok: 1 },
  'zeek/wikipedia.pcap': { ok: 121, 'not-ipv4': 15 },
  'tcpdump/tcp-handshake-nano.pcap': { ok: 3 },
  'tcpdump/tcp_rst_diag_payload.pcap': { ok: 1 },
  'zeek/timeout-with-pings.pcap': { ok: 15 },
  'zeek/payload-syn.pcap': { ok: 6 },
};

/** Files whose L4 checksums are wrong (zeek chksums/, offload captures); all others: 0. */
const EXPECTED_BAD_L4: Record<string, number> = {
  'zeek/ip4-tcp-bad-chksum.pcap': 1,
  'zeek/ip4-udp-bad-chksum.pcap': 1,
  'zeek/ip4-icmp-bad-chksum.pcap': 1,
  'tcpdump/gso-ipv4.pcap': 1,
  'tcpdump/tcp_rst_diag_payload.pcap': 1,
  'tcpdump/print-flags.pcap': 2,
};

describe.skipIf(!HAVE_CORPORA)(
  `corpus (../shared/corpora)${HAVE_CORPORA ? '' : ': SKIPPED, the folder is missing beside the project'}`,
  () => {
    const entries = HAVE_CORPORA ? manifest() : [];
    const summaries = new Map<string, CaptureSummary>();
    const errors = new Map<string, Error>();

    it('the MANIFEST lists every file in the corpus', () => {
      expect(entries.length).toBeGreaterThan(60);
      const listed = new Set(entries.map((e) => e.file));
      for (const d of ['tcpdump', 'zeek', 'libpcap']) {
        for (const f of readdirSync(join(CORPORA, d))) {
          expect(listed.has(`${d}/${f}`), `${d}/${f}`).toBe(true);
        }
      }
    });

    it('every file is read to the end or refused with an InputError (no crash)', async () => {
      for (const e of entries) {
        const path = join(CORPORA, e.file);
        try {
          summaries.set(e.file, await summarizeCapture(path));
        } catch (err) {
          if (!(err instanceof InputError)) throw new Error(`${e.file}: ${String(err)}`, { cause: err });
          expect(err.message.startsWith(path), err.message).toBe(true);
          errors.set(e.file, err);
        }
      }
      expect(summaries.size + errors.size).toBe(entries.length);
    });

    it('the pcap-parser decoder reads every classic pcap like the native one', async () => {
      let n = 0;
      for (const e of entries.filter((x) => x.file.endsWith('.pcap'))) {
        const path = join(CORPORA, e.file);
        const a = await readUntilError(path);
        const b = await readUntilError(path, { parser: 'pcap-parser' });
        expect(b.error?.message, e.file).toBe(a.error?.message);
        expect(b.warnings, e.file).toEqual(a.warnings);
        expect(b.records, e.file).toEqual(a.records);
        n++;
      }
      expect(n).toBeGreaterThan(55);
    });

    it('broken files give the clear errors', () => {
      expect([...errors.keys()].sort()).toEqual(Object.keys(EXPECTED_ERRORS).sort());
      for (const [f, re] of Object.entries(EXPECTED_ERRORS)) expect(errors.get(f)?.message, f).toMatch(re);
    });

    it('packet counts match the MANIFEST', () => {
      let checked = 0;
      for (const e of entries) {
        const s = summaries.get(e.file);
        if (!s) continue;
        expect(e.count, `${e.file}: MANIFEST has a count`).not.toBeNull();
        expect(s.packets, e.file).toBe(e.count);
        checked++;
      }
      expect(checked).toBeGreaterThan(55);
    });

    it('warnings name the records they are about; clean files have none', () => {
      for (const [f, s] of summaries) {
        const want = EXPECTED_WARNINGS[f] ?? [];
        expect(s.warnings.length, `${f}: ${s.warnings.join('; ')}`).toBe(want.length);
        want.forEach((re, i) => expect(s.warnings[i]).toMatch(re));
      }
    });

    it('with strictSnapLen a record longer than the snapshot length is an InputError naming it', async () => {
      const r = await readUntilError(join(CORPORA, 'zeek/trunc-hdr.pcap'), { strictSnapLen: true });
      expect(r.error).toBeInstanceOf(InputError);
      expect(r.error!.message).toMatch(/record 0 \(offset 24\): captured length 8 exceeds the snapshot length 1/);
    });

    it('file descriptions: format, byte order, link type, resolution', () => {
      const d = (f: string) => summaries.get(f)!.info;
      expect(d('tcpdump/unaligned-nfs-1.pcap')).toMatchObject({
        format: 'pcap',
        byteOrder: 'BE',
        version: '2.4',
        linkType: 1,
        tsResolution: 'us',
      });
      expect(d('tcpdump/tcp-handshake-nano.pcap')).toMatchObject({
        format: 'pcap',
        byteOrder: 'LE',
        linkType: 113,
        linkTypeNames: ['LINUX_SLL'],
        tsResolution: 'ns',
      });
      expect(d('tcpdump/tcp_rst_diag_payload.pcap')).toMatchObject({ linkType: 0, linkTypeNames: ['NULL'] });
      expect(d('zeek/timeout-with-pings.pcap')).toMatchObject({ linkType: 228, linkTypeNames: ['IPV4'] });
      expect(d('zeek/payload-syn.pcap')).toMatchObject({ linkType: 101, linkTypeNames: ['RAW'] });
      expect(d('tcpdump/icmp-length-zero.pcapng')).toMatchObject({
        format: 'pcapng',
        version: '1.0',
        linkType: 1,
        tsResolution: 'ns',
        sections: 1,
      });
      expect(d('zeek/retransmit-timeout.pcapng')).toMatchObject({
        format: 'pcapng',
        byteOrder: 'LE',
        linkType: 1,
        tsResolution: 'us',
        snapLen: 65535,
      });
      // Past 2106: 64-bit pcapng timestamps are not cut to 32-bit seconds.
      expect(summaries.get('tcpdump/time_2106_overflow.pcapng')!.first).toEqual({ sec: 2 ** 32, nsec: 0 });
      expect(summaries.get('tcpdump/time_2106_max.pcap')!.first).toEqual({ sec: 2 ** 32 - 1, nsec: 0 });
    });

    it('malformed packets get the parse status naming their defect', () => {
      for (const [f, want] of Object.entries(EXPECTED_STATUS)) {
        expect(summaries.get(f)?.parseStatus, f).toEqual(want);
      }
    });

    it('bad L4 checksums are found where the files have them', () => {
      for (const [f, s] of summaries) expect(s.badL4Checksum, f).toBe(EXPECTED_BAD_L4[f] ?? 0);
    });

    it('pcapng twins in the corpus read like their pcap originals', async () => {
      const a = await readAll(join(CORPORA, 'tcpdump/empty.pcap'));
      const b = await readAll(join(CORPORA, 'tcpdump/empty.pcapng'));
      expect(b.records).toEqual(a.records);
      expect(b.info.linkType).toBe(a.info.linkType);
      // Same packet under two raw link types.
      const v4 = await readAll(join(CORPORA, 'tcpdump/LINKTYPE_IPV4.pcap'));
      const raw = await readAll(join(CORPORA, 'tcpdump/LINKTYPE_RAW_ipv4.pcap'));
      expect(Buffer.from(v4.records[0].data).equals(Buffer.from(raw.records[0].data))).toBe(true);
      // The -trunc file is the same record one byte short.
      const full = await readAll(join(CORPORA, 'tcpdump/tcp_rst_data.pcap'));
      const cut = await readAll(join(CORPORA, 'tcpdump/tcp_rst_data-trunc.pcap'));
      expect(Buffer.from(cut.records[0].data).equals(Buffer.from(full.records[0].data.subarray(0, 111)))).toBe(true);
      expect(cut.records[0].origLen).toBe(full.records[0].origLen);
      // Invalid timestamps aside, the same handshake as the nanosecond file.
      const nano = await readAll(join(CORPORA, 'tcpdump/tcp-handshake-nano.pcap'));
      const bad = await readAll(join(CORPORA, 'tcpdump/timestamp_invalid_nano.pcap'));
      expect(bad.records.map((r) => Buffer.from(r.data).toString('hex'))).toEqual(
        nano.records.map((r) => Buffer.from(r.data).toString('hex')),
      );
    });

    describe.skipIf(!tool('capinfos'))(
      `against Wireshark capinfos${tool('capinfos') ? '' : ': SKIPPED, capinfos not installed'}`,
      () => {
        it('packet counts and earliest/latest timestamps agree', () => {
          const files = [...summaries.keys()].filter(
            (f) => !EXPECTED_WARNINGS[f]?.some((re) => /timestamp/.test(re.source)),
          );
          const out = execFileSync('capinfos', ['-T', '-r', '-c', '-a', '-e', '-S', ...files], {
            cwd: CORPORA,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          let n = 0;
          for (const line of out.split('\n').filter(Boolean)) {
            const [f, count, first, last] = line.split('\t');
            const s = summaries.get(f)!;
            expect(s.packets, f).toBe(Number(count));
            if (s.packets === 0) continue;
            const digits = s.info.tsResolution === 'us' ? 6 : 9;
            const fmt = (t: { sec: number; nsec: number }) =>
              `${t.sec}.${String(t.nsec).padStart(9, '0').slice(0, digits)}`;
            const times = { min: fmt(s.first!), max: fmt(s.last!) };
            // capinfos reports the earliest and latest, not the first and last record.
            if (s.outOfOrder === 0) expect(times, f).toEqual({ min: first, max: last });
            n++;
          }
          expect(n).toBeGreaterThan(50);
        });
      },
    );

    describe.skipIf(!tool('editcap'))(
      `pcapng written by Wireshark (editcap) reads like the pcap${tool('editcap') ? '' : ': SKIPPED, editcap not installed'}`,
      () => {
        const tmp = tmpDir();
        afterAll(() => tmp.cleanup());
        it('every readable capture converted with editcap -F pcapng gives the same records', async () => {
          let n = 0;
          for (const [f, s] of summaries) {
            if (EXPECTED_WARNINGS[f]) continue; // editcap rewrites invalid timestamps / snaplen its own way
            if (s.info.format === 'pcapng' && s.last && s.last.sec > 0xffffffff) continue; // classic pcap cannot hold it
            const src = join(CORPORA, f);
            const orig = await readAll(src);
            const out = tmp.file(f.replace('/', '_') + (s.info.format === 'pcap' ? '.pcapng' : '.pcap'));
            execFileSync('editcap', ['-F', s.info.format === 'pcap' ? 'pcapng' : 'pcap', src, out], {
              stdio: 'ignore',
            });
            const conv = await readAll(out);
            expect(conv.info.format, f).toBe(s.info.format === 'pcap' ? 'pcapng' : 'pcap');
            // (editcap writes no Interface Description Block for a file without packets.)
            if (orig.records.length) expect(conv.info.linkType, f).toBe(orig.info.linkType);
            expect(conv.warnings, f).toEqual([]);
            expect(conv.records.length, f).toBe(orig.records.length);
            orig.records.forEach((r, i) => {
              const c = conv.records[i];
              expect({ f, i, sec: c.tsSec, nsec: c.tsNsec, origLen: c.origLen, lt: c.linkType }).toEqual({
                f,
                i,
                sec: r.tsSec,
                nsec: r.tsNsec,
                origLen: r.origLen,
                lt: r.linkType,
              });
              expect(Buffer.from(c.data).equals(Buffer.from(r.data)), `${f} record ${i}`).toBe(true);
            });
            n++;
          }
          expect(n).toBeGreaterThan(50);
        });
      },
    );
  },
);
