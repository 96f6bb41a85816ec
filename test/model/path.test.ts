// Scenario tests of issue 3 on the built-in scenario: the NAT instance path, replies, inbound,
// source/dest check, mapping uniqueness, ICMP errors, TTL, INVALID, exhaustion, table full.
import { describe, expect, it } from 'vitest';
import {
  describePacket,
  buildIcmpError,
  F_ACK,
  F_RST,
  F_SYN,
  ICMP_DEST_UNREACH,
  ICMP_PORT_UNREACH,
  ICMP_TIME_EXCEEDED,
  PROTO_UDP,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NEW,
  CT_RELATED,
  DROP_CT_TABLE_FULL,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_IGW_UNKNOWN_DST,
  DROP_NAT_CLASH,
  DROP_SRC_DST_CHECK_DST,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
  FATE_DROPPED,
  REASON_NONE,
} from '../../src/spec/reasons.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { formatConntrackLine } from '../../src/spec/conntrack-format.ts';
import {
  A,
  engine,
  expectValidOutputs,
  idx,
  natRules,
  ping,
  point,
  pv,
  scenario,
  send,
  tcp,
  udp,
  withApp2,
} from './helpers.ts';

describe('built-in scenario: app → internet through the NAT instance', () => {
  it('a SYN takes the seven steps of the NAT instance path', () => {
    const s = scenario();
    const e = engine(s);
    const r = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    expect(r.hops.map((h) => h.name)).toEqual([
      'instance app → ENI',
      'VPC router (rtb private)',
      'NAT instance nat: conntrack NEW',
      'MASQUERADE',
      'VPC router (rtb public)',
      'IGW static NAT',
      'internet',
    ]);
    const d = r.hops.map((h) => describePacket(h.packet));
    expect(d[0]).toBe('tcp 10.0.1.10:40000 > 198.51.100.7:443 S ttl=64');
    expect(d[1]).toBe(d[0]); // the VPC router never changes a byte
    expect(d[2]).toBe('tcp 10.0.1.10:40000 > 198.51.100.7:443 S ttl=63');
    expect(d[3]).toBe('tcp 10.0.0.10:40000 > 198.51.100.7:443 S ttl=63');
    expect(r.hops[3].note).toBe('source 10.0.1.10:40000→10.0.0.10:40000');
    expect(d[5]).toBe('tcp 203.0.113.10:40000 > 198.51.100.7:443 S ttl=63');
    expect(r.hops[5].note).toContain('10.0.0.10→203.0.113.10');
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.reason).toBe(REASON_NONE);
    expect(r.ct).toBe(CT_NEW);
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0].egress).toBe(POINT_INTERNET);
    expectValidOutputs(r);
    const [c] = e.conntrackSync();
    expect(formatConntrackLine(c)).toBe(
      'tcp      6 120 SYN_SENT src=10.0.1.10 dst=198.51.100.7 sport=40000 dport=443 [UNREPLIED] src=198.51.100.7 dst=10.0.0.10 sport=443 dport=40000 mark=0 use=1',
    );
  });

  it('the reply path: SYN/ACK to the Elastic IP reaches app, de-masqueraded; the handshake ends ASSURED', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1000 }));
    const r = send(
      e,
      s,
      'internet',
      tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 5000, ack: 1001 }),
      10,
    );
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.ct).toBe(CT_ESTABLISHED);
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    expect(describePacket(r.outputs[0].frame)).toBe('tcp 198.51.100.7:443 > 10.0.1.10:40000 S. ttl=63');
    expect(r.hops.map((h) => h.name)).toEqual([
      'internet → IGW',
      'IGW static NAT',
      'NAT instance nat: conntrack ESTABLISHED',
      'reverse MASQUERADE',
      'VPC router (rtb public)',
      'instance app',
    ]);
    expectValidOutputs(r);
    const ack = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 1001, ack: 5001 }), 20);
    expect(ack.fate).toBe(FATE_DELIVERED);
    expect(ack.ct).toBe(CT_ESTABLISHED);
    expect(describePacket(ack.outputs[0].frame)).toBe('tcp 203.0.113.10:40000 > 198.51.100.7:443 . ttl=63');
    expectValidOutputs(ack);
    expect(formatConntrackLine(e.conntrackSync()[0])).toBe(
      'tcp      6 432000 ESTABLISHED src=10.0.1.10 dst=198.51.100.7 sport=40000 dport=443 src=198.51.100.7 dst=10.0.0.10 sport=443 dport=40000 [ASSURED] mark=0 use=1',
    );
  });

  it("inbound to the web server's Elastic IP is delivered to web, and its reply leaves from the Elastic IP", () => {
    const s = scenario();
    const e = engine(s);
    const r = send(e, s, 'internet', tcp('192.0.2.50:51000', '203.0.113.20:80'));
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.ct).toBe(0); // no NAT instance on this path
    expect(r.outputs[0].egress).toBe(point(s, 'web'));
    expect(describePacket(r.outputs[0].frame)).toBe('tcp 192.0.2.50:51000 > 10.0.0.20:80 S ttl=64');
    expectValidOutputs(r);
    const back = send(e, s, 'web', tcp('10.0.0.20:80', '192.0.2.50:51000', F_SYN | F_ACK, { ack: 1001 }));
    expect(back.fate).toBe(FATE_DELIVERED);
    expect(back.outputs[0].egress).toBe(POINT_INTERNET);
    expect(describePacket(back.outputs[0].frame)).toBe('tcp 203.0.113.20:80 > 192.0.2.50:51000 S. ttl=64');
    expect(back.hops.map((h) => h.name)).toEqual([
      'instance web → ENI',
      'VPC router (rtb public)',
      'IGW static NAT',
      'internet',
    ]);
    expectValidOutputs(back);
  });

  it('source/dest check left enabled on the NAT instance drops the NAT path at its ENI', () => {
    const s = scenario((x) => {
      x.instances[idx(x, 'nat')].sourceDestCheck = true;
    });
    const e = engine(s);
    const r = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_SRC_DST_CHECK_DST);
    expect(r.outputs).toHaveLength(0);
    const last = r.hops[r.hops.length - 1];
    expect(last.name).toBe('ENI nat (source/dest check)');
    expect(last.drop).toBe(DROP_SRC_DST_CHECK_DST);
    expect(e.conntrackSync()).toHaveLength(0);
  });

  it('two private hosts with the same source port to the same destination get distinct mappings', () => {
    const s = scenario(withApp2);
    const e = engine(s);
    const r1 = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    const r2 = send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443'));
    expect(r1.fate).toBe(FATE_DELIVERED);
    expect(r2.fate).toBe(FATE_DELIVERED);
    const p1 = pv(r1.outputs[0].frame);
    const p2 = pv(r2.outputs[0].frame);
    expect(p1.src).toBe(A('203.0.113.10'));
    expect(p2.src).toBe(A('203.0.113.10'));
    expect(p1.sport).toBe(40000); // port preserved for the first
    expect(p2.sport).not.toBe(40000);
    expect(p2.sport).toBeGreaterThanOrEqual(1024);
    expectValidOutputs(r2);
    // Each reply reaches its own host.
    const b2 = send(
      e,
      s,
      'internet',
      tcp('198.51.100.7:443', `203.0.113.10:${p2.sport}`, F_SYN | F_ACK, { ack: 1001 }),
    );
    expect(b2.outputs[0].egress).toBe(point(s, 'app2'));
    expect(describePacket(b2.outputs[0].frame)).toBe('tcp 198.51.100.7:443 > 10.0.1.11:40000 S. ttl=63');
    const b1 = send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { ack: 1001 }));
    expect(b1.outputs[0].egress).toBe(point(s, 'app'));
  });

  it('unsolicited inbound to the NAT Elastic IP does not reach the private subnet', () => {
    const s = scenario();
    const e = engine(s);
    for (const port of [40000, 22, 80]) {
      const r = send(e, s, 'internet', tcp(`198.51.100.7:443`, `203.0.113.10:${port}`));
      // The NAT instance's own stack gets it (conntrack NEW, no DNAT rule): never app.
      expect(r.outputs.map((o) => o.egress)).toEqual([point(s, 'nat')]);
      expect(r.hops[r.hops.length - 1].name).toBe('NAT instance nat: local delivery');
    }
    const u = send(e, s, 'internet', udp('198.51.100.7:53', '203.0.113.10:5000'));
    expect(u.outputs.map((o) => o.egress)).toEqual([point(s, 'nat')]);
    const p = send(e, s, 'internet', ping('198.51.100.7', '203.0.113.10', 9, true)); // echo reply with no entry
    expect(p.ct).toBe(CT_INVALID);
    expect(p.outputs.map((o) => o.egress)).toEqual([point(s, 'nat')]);
  });

  it('ICMP port unreachable for a masqueraded UDP flow reaches app with the quoted header restored', () => {
    const s = scenario();
    const e = engine(s);
    const q = send(e, s, 'app', udp('10.0.1.10:5353', '198.51.100.53:53', { len: 20 }));
    const onWire = q.outputs[0].frame; // as the remote got it: 203.0.113.10:5353 > 198.51.100.53:53
    expect(describePacket(onWire)).toBe('udp 203.0.113.10:5353 > 198.51.100.53:53 len=20 ttl=63');
    // The remote quotes the whole datagram (Linux does, up to 576 bytes), so the quoted UDP
    // checksum can be checked after translation.
    const err = buildIcmpError({
      src: A('198.51.100.53'),
      dst: A('203.0.113.10'),
      type: ICMP_DEST_UNREACH,
      code: ICMP_PORT_UNREACH,
      quoted: onWire,
      quoteLen: onWire.length,
    });
    const r = send(e, s, 'internet', err, 5);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.ct).toBe(CT_RELATED);
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    const out = r.outputs[0].frame;
    expect(describePacket(out)).toBe(
      'icmp 198.51.100.53 > 10.0.1.10 unreachable port [udp 10.0.1.10:5353 > 198.51.100.53:53] ttl=63',
    );
    expectValidOutputs(r);
    // The quoted packet is what app sent, TTL aside: same addresses and ports, and a valid IP
    // checksum and UDP checksum for its original addresses.
    const v = pv(out);
    const inner = out.slice(v.innerOff);
    const ipv = pv(inner);
    expect(ipv.status).toBe(0);
    expect(ipv.proto).toBe(PROTO_UDP);
    expect(ipv.l4Csum).not.toBe(0);
    expect(verifyIpv4Header(inner, ipv)).toBe(true);
    expect(verifyL4Checksum(inner, ipv)).toBe(true);
    expect(describePacket(inner)).toBe('udp 10.0.1.10:5353 > 198.51.100.53:53 len=20 ttl=63');
    // Errors never refresh: the entry's timer still runs from the query.
    expect(e.conntrackSync()[0].timeout).toBe(29);
  });

  it('TTL 1 through the NAT instance: dropped, and an ICMP time exceeded quoting it goes back to the sender', () => {
    const s = scenario();
    const e = engine(s);
    const sent = tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { ttl: 1 });
    const r = send(e, s, 'app', sent);
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_TTL_EXCEEDED);
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    const err = r.outputs[0].frame;
    const v = pv(err);
    expect(v.icmpType).toBe(ICMP_TIME_EXCEEDED);
    expect(v.icmpCode).toBe(0);
    expect(v.src).toBe(A('10.0.0.10'));
    expect(v.dst).toBe(A('10.0.1.10'));
    expect(v.ttl).toBe(64);
    expect(v.tos).toBe(0xc0);
    expect(v.df).toBe(0);
    // Linux quotes the whole packet as received (it fits in 576 bytes).
    expect(Array.from(err.slice(v.innerOff))).toEqual(Array.from(sent));
    expectValidOutputs(r);
    expect(e.conntrackSync()).toHaveLength(0); // the unconfirmed entry went away with the packet
  });

  it('bad TCP checksum from inside: INVALID, forwarded un-NATed, then dropped at the IGW', () => {
    const s = scenario();
    const e = engine(s);
    const bad = tcp('10.0.1.10:40000', '198.51.100.7:443');
    bad[20 + 16] ^= 0x55;
    const r = send(e, s, 'app', bad);
    expect(r.ct).toBe(CT_INVALID);
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP);
    const names = r.hops.map((h) => h.name);
    expect(names).toContain('NAT instance nat: conntrack INVALID');
    expect(names).not.toContain('MASQUERADE');
    expect(describePacket(r.hops[r.hops.length - 1].packet)).toBe('tcp 10.0.1.10:40000 > 198.51.100.7:443 S ttl=63');
    expect(e.conntrackSync()).toHaveLength(0);
  });

  it('unknown public destination at the IGW is dropped', () => {
    const s = scenario();
    const r = send(engine(s), s, 'internet', tcp('198.51.100.7:443', '203.0.113.99:40000'));
    expect(r.reason).toBe(DROP_IGW_UNKNOWN_DST);
  });

  it('port exhaustion with --to-ports 1024-1025: the third flow to the same destination is dropped NAT_CLASH', () => {
    const s = scenario((x) => {
      withApp2(x);
      natRules(x, ['-A POSTROUTING -s 10.0.0.0/16 -o eth0 -p tcp -j MASQUERADE --to-ports 1024-1025']);
    });
    const e = engine(s);
    const r1 = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    const r2 = send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443'));
    const r3 = send(e, s, 'app', tcp('10.0.1.10:40001', '198.51.100.7:443'));
    expect([r1.fate, r2.fate]).toEqual([FATE_DELIVERED, FATE_DELIVERED]);
    expect(new Set([pv(r1.outputs[0].frame).sport, pv(r2.outputs[0].frame).sport])).toEqual(new Set([1024, 1025]));
    expect(r3.fate).toBe(FATE_DROPPED);
    expect(r3.reason).toBe(DROP_NAT_CLASH);
    expect(e.conntrackSync()).toHaveLength(2);
    // Another destination still has both ports free.
    const r4 = send(e, s, 'app', tcp('10.0.1.10:40001', '198.51.100.8:443'));
    expect(r4.fate).toBe(FATE_DELIVERED);
  });

  it('table full with max 2: a non-ASSURED entry is early-dropped, else DROP_CT_TABLE_FULL', () => {
    const s = scenario((x) => {
      x.conntrack.max = 2;
    });
    const e = engine(s);
    // Two ASSURED TCP connections.
    for (const port of [40000, 40001]) {
      send(e, s, 'app', tcp(`10.0.1.10:${port}`, '198.51.100.7:443', F_SYN, { seq: 1 }));
      send(e, s, 'internet', tcp('198.51.100.7:443', `203.0.113.10:${port}`, F_SYN | F_ACK, { seq: 9, ack: 2 }));
      send(e, s, 'app', tcp(`10.0.1.10:${port}`, '198.51.100.7:443', F_ACK, { seq: 2, ack: 10 }));
    }
    expect(e.conntrackSync().map((c) => c.assured)).toEqual([true, true]);
    const r = send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'));
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_CT_TABLE_FULL);
    expect(e.conntrackSync()).toHaveLength(2);
    // Non-ASSURED entries (unreplied UDP) are early-dropped, oldest first.
    const e2 = engine(s);
    send(e2, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'));
    send(e2, s, 'app', udp('10.0.1.10:5001', '198.51.100.53:53'));
    const r2 = send(e2, s, 'app', udp('10.0.1.10:5002', '198.51.100.53:53'));
    expect(r2.fate).toBe(FATE_DELIVERED);
    expect(e2.conntrackSync().map((c) => c.orig.sport)).toEqual([5001, 5002]); // the oldest was evicted
  });

  it('a RST answering the SYN deletes the entry at once', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    const r = send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_RST | F_ACK, { ack: 1001 }));
    expect(r.fate).toBe(FATE_DELIVERED); // still de-NATed and forwarded
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    expect(e.conntrackSync()).toHaveLength(0);
  });
});
