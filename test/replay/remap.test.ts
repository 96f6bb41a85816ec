// Re-addressing of far-side frames (one-sided captures) and the ingress rules.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildIcmpEcho, buildIcmpError, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { PacketView, parseIpv4, PARSE_OK } from '../../src/packet/parse.ts';
import { csumDelta16, l4Checksum, verifyIpv4Header, verifyL4Checksum } from '../../src/packet/checksum.ts';
import { parseIpv4Addr } from '../../src/packet/addr.ts';
import { ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, PROTO_TCP } from '../../src/packet/constants.ts';
import {
  FlowMappings,
  inboundKey,
  inboundKeyRaw,
  outboundKey,
  readdressFrame,
  readdressRaw,
} from '../../src/diff/replay/remap.ts';
import { translatedSource } from '../../src/packet/readdress.ts';
import {
  IngressMap,
  INGRESS_NOWHERE,
  NOWHERE_ELASTIC_IP,
  NOWHERE_NOT_UNICAST,
  NOWHERE_VPC_NO_INSTANCE,
} from '../../src/diff/replay/ingress.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';

const APP = parseIpv4Addr('10.0.1.10');
const SERVER = parseIpv4Addr('198.51.100.7');
const PUB = parseIpv4Addr('203.0.113.10');

function parse(f: Uint8Array): PacketView {
  const pv = new PacketView();
  expect(parseIpv4(f, 0, f.length, pv)).toBe(PARSE_OK);
  return pv;
}

/** Inner (quoted) IPv4 header checksum of an ICMP error is valid. */
function innerHeaderOk(f: Uint8Array, pv: PacketView): boolean {
  let s = 0;
  for (let i = pv.innerOff; i < pv.innerOff + pv.innerIhl; i += 2) s += (f[i] << 8) | f[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

const portArb = fc.integer({ min: 1, max: 65535 });
const payloadArb = fc.uint8Array({ minLength: 0, maxLength: 64 });

describe('readdressFrame', () => {
  it('TCP/UDP: destination becomes the mapping, checksums stay valid (property)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        portArb,
        portArb,
        portArb,
        payloadArb,
        fc.boolean(),
        (tcp, sport, dport, pubPort, payload, noCsum) => {
          const f = tcp
            ? buildTcp({ src: SERVER, dst: APP, sport, dport, flags: 0x12, seq: 7, ack: 9, payload })
            : buildUdp({ src: SERVER, dst: APP, sport, dport, payload, noChecksum: noCsum });
          const pv = parse(f);
          const g = readdressFrame(f, pv, PUB, pubPort);
          const qv = parse(g);
          expect(qv.dst).toBe(PUB);
          expect(qv.dport).toBe(pubPort);
          expect(qv.src).toBe(SERVER);
          expect(qv.sport).toBe(sport);
          expect(verifyIpv4Header(g, qv)).toBe(true);
          expect(verifyL4Checksum(g, qv)).toBe(true);
          if (!tcp && noCsum) expect(qv.l4Csum).toBe(0); // no checksum stays no checksum
          // the caller's bytes are untouched
          expect(parse(f).dst).toBe(APP);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps a wrong L4 checksum exactly as wrong (incremental update)', () => {
    const f = buildTcp({ src: SERVER, dst: APP, sport: 443, dport: 40000, flags: 0x10, seq: 1, ack: 1 });
    f[20 + 16] ^= 0x21;
    const g = readdressFrame(f, parse(f), PUB, 1234);
    const qv = parse(g);
    expect(verifyL4Checksum(g, qv)).toBe(false);
    // the error (stored minus correct, ones' complement) is carried over unchanged
    const pf = parse(f);
    expect(csumDelta16(l4Checksum(g, qv), qv.l4Csum)).toBe(csumDelta16(l4Checksum(f, pf), pf.l4Csum));
  });

  it('ICMP echo reply: the id becomes the mapped id', () => {
    const f = buildIcmpEcho({
      src: SERVER,
      dst: APP,
      id: 0x4e4c,
      seq: 3,
      reply: true,
      payload: new Uint8Array(20).fill(7),
    });
    const g = readdressFrame(f, parse(f), PUB, 0x0101);
    const qv = parse(g);
    expect(qv.icmpId).toBe(0x0101);
    expect(qv.dst).toBe(PUB);
    expect(verifyL4Checksum(g, qv)).toBe(true);
  });

  it('ICMP errors: outer destination, quoted source and port rewritten, all checksums valid (property)', () => {
    fc.assert(
      fc.property(portArb, portArb, portArb, fc.integer({ min: 28, max: 60 }), (sport, dport, pubPort, quoteLen) => {
        const probe = buildUdp({ src: APP, dst: SERVER, sport, dport, payload: new Uint8Array(32).fill(1) });
        const f = buildIcmpError({
          src: SERVER,
          dst: APP,
          type: ICMP_DEST_UNREACH,
          code: ICMP_PORT_UNREACH,
          quoted: probe,
          quoteLen,
        });
        const pv = parse(f);
        expect(inboundKey(pv)).toBe(outboundKey(parse(probe)));
        const g = readdressFrame(f, pv, PUB, pubPort);
        const qv = parse(g);
        expect(qv.dst).toBe(PUB);
        expect(qv.innerSrc).toBe(PUB);
        expect(qv.innerSport).toBe(pubPort);
        expect(qv.innerDst).toBe(SERVER);
        expect(qv.innerDport).toBe(dport);
        expect(verifyIpv4Header(g, qv)).toBe(true);
        expect(verifyL4Checksum(g, qv)).toBe(true); // the ICMP checksum over the whole message
        expect(innerHeaderOk(g, qv)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('a fully quoted UDP datagram keeps a valid inner UDP checksum', () => {
    const probe = buildUdp({ src: APP, dst: SERVER, sport: 45000, dport: 9999, payload: new Uint8Array(12).fill(9) });
    const f = buildIcmpError({
      src: SERVER,
      dst: APP,
      type: ICMP_DEST_UNREACH,
      code: ICMP_PORT_UNREACH,
      quoted: probe,
      quoteLen: probe.length,
    });
    const g = readdressFrame(f, parse(f), PUB, 1024);
    const qv = parse(g);
    const inner = g.subarray(qv.innerOff);
    const iv = parse(new Uint8Array(inner));
    expect(iv.src).toBe(PUB);
    expect(iv.sport).toBe(1024);
    expect(verifyL4Checksum(inner, iv)).toBe(true);
  });
});

describe('flow keys and mappings', () => {
  it('an outbound packet and its reply share a key; the output gives the mapping', () => {
    const out = buildTcp({ src: APP, dst: SERVER, sport: 40000, dport: 443, flags: 0x02 });
    const reply = buildTcp({ src: SERVER, dst: APP, sport: 443, dport: 40000, flags: 0x12 });
    expect(outboundKey(parse(out))).toBe(inboundKey(parse(reply)));
    const translated = buildTcp({ src: PUB, dst: SERVER, sport: 1025, dport: 443, flags: 0x02 });
    const m = translatedSource(parse(out), parse(translated));
    expect(Math.floor(m / 65536)).toBe(PUB);
    expect(m % 65536).toBe(1025);
    // another protocol's output (a generated ICMP error) is not the flow's translation
    const err = buildIcmpError({ src: PUB, dst: APP, type: 11, code: 0, quoted: out });
    expect(translatedSource(parse(out), parse(err))).toBe(-1);
  });

  it('ICMP echo: request and reply share a key by id', () => {
    const req = buildIcmpEcho({ src: APP, dst: SERVER, id: 77, seq: 1 });
    const rep = buildIcmpEcho({ src: SERVER, dst: APP, id: 77, seq: 1, reply: true });
    expect(outboundKey(parse(req))).toBe(inboundKey(parse(rep)));
  });

  it('FlowMappings is bounded: the oldest mapping is evicted and counted', () => {
    const m = new FlowMappings(3);
    for (let i = 0; i < 5; i++) m.set(`k${i}`, PUB, 1000 + i);
    expect(m.size).toBe(3);
    expect(m.evicted).toBe(2);
    expect(m.get('k0')).toBe(-1);
    expect(m.get('k4')).toBe(PUB * 65536 + 1004);
  });

  it('raw re-addressing of a frame cut by the snapshot length touches only captured fields', () => {
    const f = buildTcp({
      src: SERVER,
      dst: APP,
      sport: 443,
      dport: 40000,
      flags: 0x18,
      seq: 1,
      ack: 1,
      payload: new Uint8Array(100),
    });
    const cut = f.slice(0, 30); // header + 10 bytes of TCP: ports present, checksum not
    expect(inboundKeyRaw(cut)).toBe(inboundKey(parse(f)));
    const g = readdressRaw(cut, PUB, 2000);
    expect(g.length).toBe(30);
    expect((g[22] << 8) | g[23]).toBe(2000);
    expect(g[9]).toBe(PROTO_TCP);
    const pv = new PacketView();
    parseIpv4(g, 0, g.length, pv);
    expect(pv.dst).toBe(PUB);
    expect(verifyIpv4Header(g, pv)).toBe(true);
  });
});

describe('ingress rules (built-in scenario)', () => {
  const s = loadOpenScenario();
  const m = new IngressMap(s);
  const idx = (name: string) => s.instances.findIndex((i) => i.name === name);
  it('an instance private IP enters at its ENI', () => {
    expect(m.classify(APP)).toBe(instancePoint(idx('app')));
    expect(m.classify(parseIpv4Addr('10.0.0.20'))).toBe(instancePoint(idx('web')));
  });
  it('addresses outside the VPC enter from the internet, listed or not', () => {
    expect(m.classify(SERVER)).toBe(POINT_INTERNET);
    expect(m.classify(parseIpv4Addr('8.8.8.8'))).toBe(POINT_INTERNET);
  });
  it('sources that belong nowhere are not guessed', () => {
    expect(m.classify(parseIpv4Addr('10.0.5.5'))).toBe(INGRESS_NOWHERE);
    expect(m.lastWhy).toBe(NOWHERE_VPC_NO_INSTANCE);
    expect(m.classify(PUB)).toBe(INGRESS_NOWHERE);
    expect(m.lastWhy).toBe(NOWHERE_ELASTIC_IP);
    for (const a of ['0.0.0.0', '127.0.0.1', '224.0.0.251', '255.255.255.255']) {
      expect(m.classify(parseIpv4Addr(a))).toBe(INGRESS_NOWHERE);
      expect(m.lastWhy).toBe(NOWHERE_NOT_UNICAST);
    }
  });
});
