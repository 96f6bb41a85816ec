import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  PacketView,
  parseIpv4,
  parseFrame,
  PARSE_OK,
  PARSE_BAD_IHL,
  PARSE_BAD_IP_VERSION,
  PARSE_BAD_TOTAL_LENGTH,
  PARSE_TRUNCATED_PACKET,
  PARSE_BAD_IP_CHECKSUM,
  PARSE_FRAGMENT,
  PARSE_TRUNCATED_L4,
  PARSE_BAD_TCP_DATA_OFFSET,
  PARSE_TRUNCATED_TCP_OPTIONS,
  PARSE_BAD_UDP_LENGTH,
  PARSE_ICMP_ERROR_TOO_SHORT,
  PARSE_TRUNCATED_IP_HEADER,
  PARSE_TRUNCATED_L2,
  PARSE_NOT_IPV4,
  PARSE_TRUNCATED_IP_OPTIONS,
  PARSE_ICMP_INNER_MALFORMED,
  PARSE_UNSUPPORTED_LINKTYPE,
  isIpLevelMalformation,
} from '../../src/packet/parse.ts';
import {
  buildTcp,
  buildUdp,
  buildIcmpEcho,
  buildIcmpError,
  buildIpv4,
  buildEthernet,
  fixChecksums,
} from '../../src/packet/build.ts';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_NULL,
  LINKTYPE_LINUX_SLL2,
  PROTO_TCP,
  PROTO_UDP,
  PROTO_ICMP,
  F_SYN,
  F_ACK,
  ICMP_DEST_UNREACH,
  ICMP_PORT_UNREACH,
  isIcmpErrorFrame,
} from '../../src/packet/constants.ts';
import { verifyIpv4Header, verifyL4Checksum } from '../../src/packet/checksum.ts';
import { parseIpv4Addr, formatIpv4, parseCidr, cidrContains, cidrOverlaps } from '../../src/packet/addr.ts';
import { describePacket } from '../../src/packet/format.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 0, max: 65535 });
const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });

describe('build ∘ parse identity', () => {
  it('TCP', () => {
    fc.assert(
      fc.property(
        u32,
        u32,
        port,
        port,
        u32,
        u32,
        fc.integer({ min: 0, max: 255 }),
        bytes(64),
        fc.integer({ min: 1, max: 255 }),
        fc.uint8Array({ minLength: 0, maxLength: 40 }),
        (src, dst, sport, dport, seq, ack, flags, payload, ttl, options) => {
          const p = buildTcp({ src, dst, sport, dport, seq, ack, flags, payload, ttl, options });
          const pv = new PacketView();
          expect(parseIpv4(p, 0, p.length, pv)).toBe(PARSE_OK);
          expect([pv.src, pv.dst, pv.sport, pv.dport, pv.tcpSeq, pv.tcpAck, pv.tcpFlags, pv.ttl, pv.proto]).toEqual([
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            ttl,
            PROTO_TCP,
          ]);
          expect(pv.tcpDataOff).toBe(20 + ((options.length + 3) & ~3));
          expect(pv.payloadLen).toBe(payload.length);
          expect(Array.from(p.subarray(pv.payloadOff, pv.payloadOff + pv.payloadLen))).toEqual(Array.from(payload));
          expect(verifyIpv4Header(p, pv)).toBe(true);
          expect(verifyL4Checksum(p, pv)).toBe(true);
        },
      ),
    );
  });

  it('UDP (with and without checksum) and ICMP echo, through Ethernet with and without VLAN', () => {
    fc.assert(
      fc.property(
        u32,
        u32,
        port,
        port,
        bytes(100),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
        (src, dst, sport, dport, payload, noChecksum, vlan) => {
          const p = buildUdp({ src, dst, sport, dport, payload, noChecksum });
          const f = buildEthernet(p, { vlan });
          const pv = new PacketView();
          expect(parseFrame(f, 0, f.length, LINKTYPE_ETHERNET, pv)).toBe(PARSE_OK);
          expect(pv.vlanId).toBe(vlan ?? -1);
          expect([pv.src, pv.dst, pv.sport, pv.dport, pv.proto, pv.payloadLen]).toEqual([
            src,
            dst,
            sport,
            dport,
            PROTO_UDP,
            payload.length,
          ]);
          expect(pv.l4Csum === 0).toBe(noChecksum);
          expect(verifyL4Checksum(f, pv)).toBe(true);
          const e = buildIcmpEcho({ src, dst, id: sport, seq: dport, payload });
          expect(parseIpv4(e, 0, e.length, pv)).toBe(PARSE_OK);
          expect([pv.proto, pv.icmpType, pv.icmpId, pv.icmpSeq, pv.sport]).toEqual([
            PROTO_ICMP,
            8,
            sport,
            dport,
            sport,
          ]);
          expect(verifyL4Checksum(e, pv)).toBe(true);
        },
      ),
    );
  });

  it('ICMP error carries the embedded header and first 8 bytes', () => {
    fc.assert(
      fc.property(u32, u32, port, port, (src, dst, sport, dport) => {
        const orig = buildUdp({ src, dst, sport, dport, payload: new Uint8Array(20) });
        const err = buildIcmpError({
          src: dst,
          dst: src,
          type: ICMP_DEST_UNREACH,
          code: ICMP_PORT_UNREACH,
          quoted: orig,
        });
        const pv = new PacketView();
        expect(parseIpv4(err, 0, err.length, pv)).toBe(PARSE_OK);
        expect(pv.isIcmpError).toBe(1);
        expect([pv.innerProto, pv.innerSrc, pv.innerDst, pv.innerSport, pv.innerDport]).toEqual([
          PROTO_UDP,
          src,
          dst,
          sport,
          dport,
        ]);
        expect(pv.innerL4Len).toBe(8);
        expect(verifyL4Checksum(err, pv)).toBe(true);
      }),
    );
  });
});

describe('malformations get the status naming the defect', () => {
  const pv = new PacketView();
  const good = buildTcp({ src: 0x0a00010a, dst: 0xc6336407, sport: 40000, dport: 443, flags: F_SYN });
  const mut = (f: (b: Uint8Array) => void, refix = true) => {
    const b = good.slice();
    f(b);
    if (refix) {
      b[10] = 0;
      b[11] = 0;
      const ihl = (b[0] & 15) * 4;
      let s = 0;
      for (let i = 0; i < Math.min(ihl, b.length) - 1; i += 2) s += (b[i] << 8) | b[i + 1];
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      b[10] = (~s >> 8) & 255;
      b[11] = ~s & 255;
    }
    return b;
  };
  it.each([
    ['truncated IP header', good.subarray(0, 19), PARSE_TRUNCATED_IP_HEADER],
    [
      'version 6',
      mut((b) => {
        b[0] = 0x65;
      }),
      PARSE_BAD_IP_VERSION,
    ],
    [
      'IHL 4',
      mut((b) => {
        b[0] = 0x44;
      }, false),
      PARSE_BAD_IHL,
    ],
    [
      'IHL beyond capture',
      mut((b) => {
        b[0] = 0x4f;
      }, false).subarray(0, 40),
      PARSE_TRUNCATED_IP_OPTIONS,
    ],
    [
      'total length 0',
      mut((b) => {
        b[2] = 0;
        b[3] = 0;
      }),
      PARSE_BAD_TOTAL_LENGTH,
    ],
    [
      'total length > captured',
      mut((b) => {
        b[3] += 1;
      }),
      PARSE_TRUNCATED_PACKET,
    ],
    [
      'bad header checksum',
      mut((b) => {
        b[10] ^= 0xff;
      }, false),
      PARSE_BAD_IP_CHECKSUM,
    ],
    [
      'non-first fragment',
      mut((b) => {
        b[6] = 0;
        b[7] = 1;
      }),
      PARSE_FRAGMENT,
    ],
    [
      'TCP data offset 4',
      mut((b) => {
        b[32] = 0x40;
      }),
      PARSE_BAD_TCP_DATA_OFFSET,
    ],
    [
      'TCP options beyond segment',
      mut((b) => {
        b[32] = 0xf0;
      }),
      PARSE_TRUNCATED_TCP_OPTIONS,
    ],
  ])('%s', (_name, frame, status) => {
    expect(parseIpv4(frame, 0, frame.length, pv)).toBe(status);
  });

  it('truncated L4, bad UDP length, short ICMP error, bad inner header', () => {
    const tcp10 = buildIpv4({ src: 1, dst: 2, proto: PROTO_TCP, payload: new Uint8Array(10) });
    expect(parseIpv4(tcp10, 0, tcp10.length, pv)).toBe(PARSE_TRUNCATED_L4);
    const udp = buildUdp({ src: 1, dst: 2, sport: 1, dport: 2, payload: new Uint8Array(4) });
    udp[25] = 40; // UDP length beyond the datagram
    expect(parseIpv4(udp, 0, udp.length, pv)).toBe(PARSE_BAD_UDP_LENGTH);
    const short = buildIpv4({
      src: 1,
      dst: 2,
      proto: PROTO_ICMP,
      payload: Uint8Array.of(3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0),
    });
    expect(parseIpv4(short, 0, short.length, pv)).toBe(PARSE_ICMP_ERROR_TOO_SHORT);
    const inner = new Uint8Array(36);
    inner[0] = 3;
    inner[1] = 3;
    inner[8] = 0x65;
    const bad = buildIpv4({ src: 1, dst: 2, proto: PROTO_ICMP, payload: inner });
    expect(parseIpv4(bad, 0, bad.length, pv)).toBe(PARSE_ICMP_INNER_MALFORMED);
  });

  it('link layers: truncated, non-IPv4, cooked, loopback, unsupported', () => {
    const eth = buildEthernet(good);
    expect(parseFrame(eth, 0, 10, LINKTYPE_ETHERNET, pv)).toBe(PARSE_TRUNCATED_L2);
    const arp = eth.slice();
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(parseFrame(arp, 0, arp.length, LINKTYPE_ETHERNET, pv)).toBe(PARSE_NOT_IPV4);
    expect(pv.etherType).toBe(0x0806);
    const sll = new Uint8Array(16 + good.length);
    sll[14] = 8;
    sll.set(good, 16);
    expect(parseFrame(sll, 0, sll.length, LINKTYPE_LINUX_SLL, pv)).toBe(PARSE_OK);
    const sll2 = new Uint8Array(20 + good.length);
    sll2[0] = 8;
    sll2.set(good, 20);
    expect(parseFrame(sll2, 0, sll2.length, LINKTYPE_LINUX_SLL2, pv)).toBe(PARSE_OK);
    const lo = new Uint8Array(4 + good.length);
    lo[0] = 2;
    lo.set(good, 4);
    expect(parseFrame(lo, 0, lo.length, LINKTYPE_NULL, pv)).toBe(PARSE_OK);
    expect(parseFrame(good, 0, good.length, LINKTYPE_RAW, pv)).toBe(PARSE_OK);
    expect(pv.dport).toBe(443);
    expect(parseFrame(good, 0, good.length, 107, pv)).toBe(PARSE_UNSUPPORTED_LINKTYPE);
  });

  it('Ethernet padding beyond the IP total length is ignored', () => {
    const small = buildUdp({ src: 1, dst: 2, sport: 1, dport: 2 });
    const padded = new Uint8Array(60);
    padded.set(buildEthernet(small));
    expect(parseFrame(padded, 0, 60, LINKTYPE_ETHERNET, pv)).toBe(PARSE_OK);
    expect(pv.capLen).toBe(28);
    expect(verifyL4Checksum(padded, pv)).toBe(true);
  });

  it('IP-level malformations are exactly the ones Linux drops in ip_rcv', () => {
    expect(isIpLevelMalformation(PARSE_BAD_IP_CHECKSUM)).toBe(true);
    expect(isIpLevelMalformation(PARSE_TRUNCATED_IP_HEADER)).toBe(true);
    expect(isIpLevelMalformation(PARSE_FRAGMENT)).toBe(false);
    expect(isIpLevelMalformation(PARSE_TRUNCATED_L4)).toBe(false);
    expect(isIpLevelMalformation(PARSE_OK)).toBe(false);
  });

  it('parsing never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(0, 1, 101, 113, 228, 276, 999), (b, lt) => {
        const st = parseFrame(b, 0, b.length, lt, pv);
        expect(st).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('addresses and formatting', () => {
  it('round trips and rejects bad text', () => {
    fc.assert(
      fc.property(u32, (a) => {
        expect(parseIpv4Addr(formatIpv4(a))).toBe(a);
      }),
    );
    expect(() => parseIpv4Addr('10.0.0.256')).toThrow(/invalid IPv4/);
    expect(() => parseIpv4Addr('10.0.0')).toThrow(/invalid IPv4/);
    expect(() => parseCidr('10.0.0.1/24')).toThrow(/host bits/);
    const c = parseCidr('10.0.0.0/16');
    expect(cidrContains(c, parseIpv4Addr('10.0.255.1'))).toBe(true);
    expect(cidrContains(c, parseIpv4Addr('10.1.0.1'))).toBe(false);
    expect(cidrOverlaps(parseCidr('10.0.1.0/24'), c)).toBe(true);
    expect(cidrOverlaps(parseCidr('10.1.0.0/24'), c)).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), 0xffffffff)).toBe(true);
  });
  it('describes packets like tcpdump', () => {
    const p = buildTcp({
      src: parseIpv4Addr('10.0.1.10'),
      dst: parseIpv4Addr('198.51.100.7'),
      sport: 40000,
      dport: 443,
      flags: F_SYN | F_ACK,
    });
    expect(describePacket(p)).toBe('tcp 10.0.1.10:40000 > 198.51.100.7:443 S. ttl=64');
    const u = buildUdp({
      src: parseIpv4Addr('10.0.1.10'),
      dst: parseIpv4Addr('198.51.100.7'),
      sport: 40000,
      dport: 53,
    });
    const e = buildIcmpError({
      src: parseIpv4Addr('198.51.100.7'),
      dst: parseIpv4Addr('10.0.1.10'),
      type: 3,
      code: 3,
      quoted: u,
    });
    expect(describePacket(e)).toBe(
      'icmp 198.51.100.7 > 10.0.1.10 unreachable port [udp 10.0.1.10:40000 > 198.51.100.7:53] ttl=64',
    );
  });
  it('fixChecksums repairs a corrupted packet', () => {
    const p = buildUdp({ src: 1, dst: 2, sport: 3, dport: 4, payload: Uint8Array.of(1, 2, 3) });
    p[27] ^= 0x55;
    p[10] ^= 1;
    fixChecksums(p);
    const pv = new PacketView();
    expect(parseIpv4(p, 0, p.length, pv)).toBe(PARSE_OK);
    expect(verifyL4Checksum(p, pv)).toBe(true);
  });
});

describe('isIcmpErrorFrame', () => {
  it('an ICMP error is one; a later fragment whose data starts with an error type byte is not', () => {
    const quoted = buildUdp({
      src: parseIpv4Addr('10.0.1.10'),
      dst: parseIpv4Addr('10.0.0.20'),
      sport: 1,
      dport: 53,
      payload: new Uint8Array(4),
    });
    const err = buildIcmpError({
      src: parseIpv4Addr('10.0.0.20'),
      dst: parseIpv4Addr('10.0.1.10'),
      type: 3,
      code: 3,
      quoted,
    });
    expect(isIcmpErrorFrame(err)).toBe(true);
    // Regression (model-vs-kernel campaign seed 880003 run 96): offset 8, data byte 12 (parameter problem).
    const later = buildIpv4({
      src: parseIpv4Addr('10.0.0.20'),
      dst: parseIpv4Addr('10.0.1.10'),
      proto: 1,
      payload: new Uint8Array([12, 0, 9, 59, 0, 0, 0, 0]),
      fragOff: 8,
    });
    expect(isIcmpErrorFrame(later)).toBe(false);
    const first = buildIpv4({ ...{ src: 1, dst: 2, proto: 1 }, payload: err.subarray(20), mf: true });
    expect(isIcmpErrorFrame(first)).toBe(true);
    expect(isIcmpErrorFrame(buildUdp({ src: 1, dst: 2, sport: 3, dport: 4, payload: new Uint8Array([3]) }))).toBe(
      false,
    );
  });
});
