import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  checksumOf,
  csumReplace16,
  csumReplace32,
  udpCsumReplace32,
  udpCsumReplace16,
  csumDelta32,
  csumDelta16,
  csumAddDeltas,
  csumApplyDelta,
  ipv4HeaderChecksum,
  l4Checksum,
} from '../../src/packet/checksum.ts';
import { PacketView, parseIpv4 } from '../../src/packet/parse.ts';
import { buildTcp, buildUdp } from '../../src/packet/build.ts';

// Checksums are ones' complement: 0x0000 and 0xFFFF both encode "sum is zero" in edge cases where
// the data sums to 0xFFFF. Compare the checksums through what they verify to.
const same = (a: number, b: number) => a === b || ((a ^ b) === 0xffff && (a === 0 || a === 0xffff));

const words = fc.uint8Array({ minLength: 2, maxLength: 64 }).filter((b) => b.length % 2 === 0);

describe('RFC 1071 full checksum', () => {
  it('known vector (RFC 1071 §3 example bytes)', () => {
    const b = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    // sum = 0x0001 + 0xf203 + 0xf4f5 + 0xf6f7 = 0x2ddf0 -> fold 0xddf2 -> ~ = 0x220d
    expect(checksumOf(b, 0, b.length)).toBe(0x220d);
  });
  it('odd lengths pad with a zero byte', () => {
    expect(checksumOf(Uint8Array.of(0xab), 0, 1)).toBe(~0xab00 & 0xffff);
  });
  it('IPv4 header of a known packet', () => {
    // Example header from Wikipedia "IPv4 header checksum": checksum 0xb861
    const h = Uint8Array.of(
      0x45,
      0x00,
      0x00,
      0x73,
      0x00,
      0x00,
      0x40,
      0x00,
      0x40,
      0x11,
      0xb8,
      0x61,
      0xc0,
      0xa8,
      0x00,
      0x01,
      0xc0,
      0xa8,
      0x00,
      0xc7,
    );
    expect(ipv4HeaderChecksum(h, 0, 20)).toBe(0xb861);
  });
});

describe('RFC 1624 incremental update equals a full recompute', () => {
  it('16-bit field edits', () => {
    fc.assert(
      fc.property(words, fc.nat(), fc.integer({ min: 0, max: 0xffff }), (data, at, v) => {
        const i = (at % (data.length / 2)) * 2;
        const before = checksumOf(data, 0, data.length);
        const old = (data[i] << 8) | data[i + 1];
        const d = data.slice();
        d[i] = v >>> 8;
        d[i + 1] = v & 255;
        expect(same(csumReplace16(before, old, v), checksumOf(d, 0, d.length))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
  it('32-bit field edits, and delta composition', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 64 }).filter((b) => b.length % 4 === 0),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (data, at, v, p) => {
          const i = (at % (data.length / 4)) * 4;
          const before = checksumOf(data, 0, data.length);
          const old = ((data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]) >>> 0;
          const d = data.slice();
          d[i] = v >>> 24;
          d[i + 1] = (v >>> 16) & 255;
          d[i + 2] = (v >>> 8) & 255;
          d[i + 3] = v & 255;
          const full = checksumOf(d, 0, d.length);
          expect(same(csumReplace32(before, old, v), full)).toBe(true);
          // a precomputed composite delta (address + port) applied once = two sequential updates
          const j = (i + 4) % data.length;
          const oldP = (d[j] << 8) | d[j + 1];
          const d2 = d.slice();
          d2[j] = p >>> 8;
          d2[j + 1] = p & 255;
          const delta = csumAddDeltas(csumDelta32(old, v), csumDelta16(oldP, p));
          expect(same(csumApplyDelta(before, delta), checksumOf(d2, 0, d2.length))).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });
  it('NAT rewrite of a TCP packet: incremental pseudo-header + port update verifies', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 30 }),
        (src, newSrc, sport, newSport, payload) => {
          const p = buildTcp({ src, dst: 0xc6336407, sport, dport: 443, flags: 2, payload });
          const pv = new PacketView();
          parseIpv4(p, 0, p.length, pv);
          const tcpCsum = csumReplace16(csumReplace32(pv.l4Csum, src, newSrc), sport, newSport);
          const q = buildTcp({ src: newSrc, dst: 0xc6336407, sport: newSport, dport: 443, flags: 2, payload });
          const qv = new PacketView();
          parseIpv4(q, 0, q.length, qv);
          expect(same(tcpCsum, qv.l4Csum)).toBe(true);
          expect(same(csumReplace32(pv.ipCsum, src, newSrc), qv.ipCsum)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
  it('UDP rules: zero stays zero; a computed zero becomes 0xFFFF', () => {
    expect(udpCsumReplace32(0, 0x0a00010a, 0x0a00000a)).toBe(0);
    expect(udpCsumReplace16(0, 1, 2)).toBe(0);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (c, o, n) => {
          const r = udpCsumReplace16(c, o, n);
          expect(r).not.toBe(0);
          const plain = csumReplace16(c, o, n);
          expect(r).toBe(plain === 0 ? 0xffff : plain);
        },
      ),
    );
    // l4Checksum writes a computed 0 as 0xFFFF for UDP
    const u = buildUdp({ src: 0, dst: 0, sport: 0, dport: 0 });
    const pv = new PacketView();
    parseIpv4(u, 0, u.length, pv);
    expect(l4Checksum(u, pv)).not.toBe(0);
  });
  it('an already-wrong checksum stays wrong by the same amount', () => {
    const p = buildUdp({ src: 1, dst: 2, sport: 3, dport: 4 });
    const pv = new PacketView();
    parseIpv4(p, 0, p.length, pv);
    const wrong = (pv.l4Csum + 5) & 0xffff;
    const a = csumReplace32(pv.l4Csum, 1, 99);
    const b = csumReplace32(wrong, 1, 99);
    expect(b).not.toBe(a);
  });
});
