// ICMP errors (docs/semantics.md §6): matching through the quoted packet, translation inside and
// outside in both directions, checksum and redirect drops, errors the NAT instance generates.
import { describe, expect, it } from 'vitest';
import {
  buildIcmpError,
  describePacket,
  F_ACK,
  F_SYN,
  ICMP_DEST_UNREACH,
  ICMP_PORT_UNREACH,
  ICMP_REDIRECT,
  ICMP_TIME_EXCEEDED,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.ts';
import {
  CT_INVALID,
  CT_RELATED,
  DROP_ICMP_BAD_CHECKSUM,
  DROP_ICMP_REDIRECT_NAT,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
} from '../../src/spec/reasons.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { A, engine, expectValidOutputs, ping, point, pv, scenario, send, tcp, udp } from './helpers.ts';

function established(e: ReturnType<typeof engine>, s: ReturnType<typeof scenario>): Uint8Array {
  send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1 }));
  const r = send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 100, ack: 2 }));
  return r.outputs[0].frame; // what app received
}

describe('ICMP errors', () => {
  it('an error app sends about a packet it received goes out translated (inner destination, outer source)', () => {
    const s = scenario();
    const e = engine(s);
    const got = established(e, s);
    const err = buildIcmpError({
      src: A('10.0.1.10'),
      dst: A('198.51.100.7'),
      type: ICMP_DEST_UNREACH,
      code: ICMP_PORT_UNREACH,
      quoted: got,
    });
    const r = send(e, s, 'app', err);
    expect(r.ct).toBe(CT_RELATED);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.outputs[0].egress).toBe(POINT_INTERNET);
    expect(describePacket(r.outputs[0].frame)).toBe(
      'icmp 203.0.113.10 > 198.51.100.7 unreachable port [tcp 198.51.100.7:443 > 203.0.113.10:40000] ttl=63',
    );
    expectValidOutputs(r);
    const v = pv(r.outputs[0].frame);
    const inner = r.outputs[0].frame.slice(v.innerOff, v.innerOff + 20);
    expect(verifyIpv4Header(inner, pv(inner))).toBe(true);
  });

  it("an error whose outer destination is not the flow's is INVALID (outer daddr != inner) and not translated", () => {
    const s = scenario();
    const e = engine(s);
    const got = established(e, s);
    const err = buildIcmpError({
      src: A('10.0.1.10'),
      dst: A('192.0.2.99'),
      type: ICMP_DEST_UNREACH,
      code: ICMP_PORT_UNREACH,
      quoted: got,
    });
    const r = send(e, s, 'app', err);
    expect(r.ct).toBe(CT_INVALID);
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP);
  });

  it('an error quoting an unknown flow is INVALID', () => {
    const s = scenario();
    const e = engine(s);
    const q = tcp('203.0.113.10:1', '198.51.100.7:2');
    const r = send(
      e,
      s,
      'internet',
      buildIcmpError({ src: A('198.51.100.7'), dst: A('203.0.113.10'), type: ICMP_DEST_UNREACH, code: 1, quoted: q }),
    );
    expect(r.ct).toBe(CT_INVALID);
    expect(r.outputs.map((o) => o.egress)).toEqual([point(s, 'nat')]); // the NAT instance's own stack
  });

  it('bad ICMP checksum: INVALID with conntrack.checksum on; DROP_ICMP_BAD_CHECKSUM with it off', () => {
    for (const checksum of [true, false]) {
      const s = scenario((x) => {
        x.conntrack.checksum = checksum;
      });
      const e = engine(s);
      const q = send(e, s, 'app', udp('10.0.1.10:5353', '198.51.100.53:53')).outputs[0].frame;
      const err = buildIcmpError({
        src: A('198.51.100.53'),
        dst: A('203.0.113.10'),
        type: ICMP_DEST_UNREACH,
        code: ICMP_PORT_UNREACH,
        quoted: q,
      });
      err[22] ^= 0xff;
      const r = send(e, s, 'internet', err);
      if (checksum) {
        expect(r.ct).toBe(CT_INVALID);
        expect(r.outputs.map((o) => o.egress)).toEqual([point(s, 'nat')]);
      } else {
        expect(r.ct).toBe(CT_RELATED);
        expect(r.reason).toBe(DROP_ICMP_BAD_CHECKSUM);
        expect(r.outputs).toHaveLength(0);
      }
    }
  });

  it('a redirect about a NATed connection is dropped (redirects are only translated without NAT)', () => {
    const s = scenario();
    const e = engine(s);
    const q = send(e, s, 'app', udp('10.0.1.10:5353', '198.51.100.53:53')).outputs[0].frame;
    const r = send(
      e,
      s,
      'internet',
      buildIcmpError({
        src: A('198.51.100.53'),
        dst: A('203.0.113.10'),
        type: ICMP_REDIRECT,
        code: 1,
        quoted: q,
        rest: A('198.51.100.1'),
      }),
    );
    expect(r.ct).toBe(CT_RELATED);
    expect(r.reason).toBe(DROP_ICMP_REDIRECT_NAT);
  });

  it('an error quoting a full TCP header gets the quoted TCP checksum patched too', () => {
    const s = scenario();
    const e = engine(s);
    const out = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { len: 10 })).outputs[0].frame;
    const err = buildIcmpError({
      src: A('198.51.100.1'),
      dst: A('203.0.113.10'),
      type: ICMP_DEST_UNREACH,
      code: 1,
      quoted: out,
      quoteLen: out.length,
    });
    const r = send(e, s, 'internet', err);
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    const v = pv(r.outputs[0].frame);
    const inner = r.outputs[0].frame.slice(v.innerOff);
    const iv = pv(inner);
    expect(describePacket(inner)).toBe('tcp 10.0.1.10:40000 > 198.51.100.7:443 S len=10 ttl=63');
    expect(verifyL4Checksum(inner, iv)).toBe(true);
    expectValidOutputs(r);
  });

  it('TTL 1 on an inbound reply: the time exceeded goes back to the remote, translated like the flow', () => {
    const s = scenario();
    const e = engine(s);
    established(e, s);
    const r = send(
      e,
      s,
      'internet',
      tcp('198.51.100.7:443', '203.0.113.10:40000', F_ACK, { seq: 101, ack: 2, ttl: 1 }),
    );
    expect(r.reason).toBe(DROP_TTL_EXCEEDED);
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0].egress).toBe(POINT_INTERNET);
    expect(describePacket(r.outputs[0].frame)).toBe(
      'icmp 203.0.113.10 > 198.51.100.7 time-exceeded ttl [tcp 198.51.100.7:443 > 203.0.113.10:40000] ttl=64',
    );
    expectValidOutputs(r);
  });

  it('no ICMP error is sent about an ICMP error', () => {
    const s = scenario();
    const e = engine(s);
    const err = buildIcmpError({
      src: A('10.0.1.10'),
      dst: A('198.51.100.7'),
      type: ICMP_TIME_EXCEEDED,
      code: 0,
      quoted: tcp('198.51.100.7:1', '10.0.1.10:2'),
      ttl: 1,
    });
    const r = send(e, s, 'app', err);
    expect(r.reason).toBe(DROP_TTL_EXCEEDED);
    expect(r.outputs).toHaveLength(0);
    const p = send(
      e,
      s,
      'app',
      (() => {
        const b = ping('10.0.1.10', '192.0.2.1', 3);
        b[8] = 1;
        b[10] = 0;
        b[11] = 0;
        return fixIp(b);
      })(),
    );
    expect(p.reason).toBe(DROP_TTL_EXCEEDED);
    expect(p.outputs).toHaveLength(1); // an echo request does get one
  });
});

function fixIp(b: Uint8Array): Uint8Array {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (b[i] << 8) | b[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  b[10] = c >>> 8;
  b[11] = c & 0xff;
  return b;
}
