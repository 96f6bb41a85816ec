// Byte rewrites (src/model/mangle.ts): for any valid packet, the kernel-style incremental updates
// leave valid checksums — the same result a full recomputation gives, except where ones'
// complement has two zeros (then the kernel's form is kept: never 0x0000 for UDP).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildTcp, buildUdp, verifyIpv4Header, verifyL4Checksum } from '../../src/packet/index.ts';
import { ipDecreaseTtl, natManipPkt, MANIP_DST, MANIP_SRC } from '../../src/model/mangle.ts';
import { pv } from './helpers.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 0, max: 65535 });

describe('mangle', () => {
  it('ip_decrease_ttl keeps the IP header checksum valid', () => {
    fc.assert(
      fc.property(
        u32,
        u32,
        fc.integer({ min: 2, max: 255 }),
        fc.integer({ min: 0, max: 65535 }),
        (src, dst, ttl, id) => {
          const p = buildTcp({ src, dst, sport: 1, dport: 2, flags: 2, ttl, ipId: id });
          ipDecreaseTtl(p);
          const v = pv(p);
          expect(v.ttl).toBe(ttl - 1);
          expect(verifyIpv4Header(p, v)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('SRC and DST manips keep TCP and UDP checksums valid; UDP 0 stays 0', () => {
    fc.assert(
      fc.property(
        u32,
        u32,
        port,
        port,
        u32,
        port,
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 40 }),
        (src, dst, sp, dp, na, np, udp, noCsum, len) => {
          const payload = new Uint8Array(len).map((_, i) => (i * 37 + sp) & 255);
          const p = udp
            ? buildUdp({ src, dst, sport: sp, dport: dp, payload, noChecksum: noCsum })
            : buildTcp({ src, dst, sport: sp, dport: dp, flags: 16, payload });
          for (const manip of [MANIP_SRC, MANIP_DST]) {
            const target =
              manip === MANIP_SRC ? { src: na, dst, sport: np, dport: dp } : { src, dst: na, sport: sp, dport: np };
            const q = p.slice();
            expect(natManipPkt(q, 0, target, udp ? 17 : 6, manip)).toBe(true);
            const v = pv(q);
            expect([v.src, v.dst, v.sport, v.dport]).toEqual([target.src, target.dst, target.sport, target.dport]);
            expect(verifyIpv4Header(q, v)).toBe(true);
            expect(verifyL4Checksum(q, v)).toBe(true);
            if (udp && noCsum) expect(v.l4Csum).toBe(0);
            if (udp && !noCsum) expect(v.l4Csum).not.toBe(0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a packet too short to rewrite is refused (the kernel drops it)', () => {
    const p = buildUdp({ src: 1, dst: 2, sport: 3, dport: 4 }).slice(0, 24);
    p[0] = 0x45;
    expect(natManipPkt(p, 0, { src: 9, dst: 2, sport: 5, dport: 4 }, 17, MANIP_SRC)).toBe(false);
  });
});
