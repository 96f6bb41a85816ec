// Conntrack rules of docs/semantics.md §3 and §5 not covered elsewhere: which packets allocate
// (table-full check before L4 validation), checksum validation switch, ICMP query rules, generic
// protocols (addresses only: a second host clashes), unconfirmed entries on drops.
import { describe, expect, it } from 'vitest';
import { buildIpv4, F_ACK, F_SYN, ICMP_TIMESTAMP, buildIcmpQuery } from '../../src/packet/index.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NEW,
  DROP_CT_TABLE_FULL,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_NAT_CLASH,
  FATE_DELIVERED,
} from '../../src/spec/reasons.ts';
import { A, engine, ping, point, pv, scenario, send, tcp, udp, withApp2 } from './helpers.ts';

function badChecksum(f: Uint8Array, l4csum: number): Uint8Array {
  f[20 + l4csum] ^= 0x5a;
  return f;
}

describe('allocation and table full', () => {
  it('a packet with no entry allocates before its tracker rejects it: it still early-drops a non-ASSURED entry', () => {
    const s = scenario((x) => {
      x.conntrack.max = 1;
    });
    const e = engine(s);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'));
    expect(e.conntrackSync()).toHaveLength(1);
    const r = send(e, s, 'app', badChecksum(tcp('10.0.1.10:40000', '198.51.100.7:443'), 16));
    expect(r.ct).toBe(CT_INVALID);
    expect(e.conntrackSync()).toHaveLength(0); // evicted by the INVALID packet's allocation
  });

  it('...and with only ASSURED entries an INVALID packet with no entry is dropped DROP_CT_TABLE_FULL', () => {
    const s = scenario((x) => {
      x.conntrack.max = 1;
    });
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1 }));
    send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 9, ack: 2 }));
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 2, ack: 10 }));
    expect(e.conntrackSync()[0].assured).toBe(true);
    for (const f of [
      tcp('10.0.1.10:40001', '198.51.100.7:443', F_SYN | F_ACK), // SYN/ACK with no entry
      ping('198.51.100.7', '203.0.113.10', 5, true), // unsolicited echo reply
    ]) {
      const r = send(e, s, f[12] === 10 ? 'app' : 'internet', f);
      expect(r.reason).toBe(DROP_CT_TABLE_FULL);
    }
    // Packets the kernel rejects before allocating are not table-full drops.
    const badIcmp = badChecksum(ping('10.0.1.10', '192.0.2.1', 9), 2);
    const r = send(e, s, 'app', badIcmp);
    expect(r.ct).toBe(CT_INVALID);
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP);
    // Existing connections are unaffected.
    expect(send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 2, ack: 10 })).ct).toBe(
      CT_ESTABLISHED,
    );
  });

  it('conntrack.checksum off: a bad TCP checksum is tracked and NATed (incremental update keeps it wrong)', () => {
    const s = scenario((x) => {
      x.conntrack.checksum = false;
    });
    const e = engine(s);
    const r = send(e, s, 'app', badChecksum(tcp('10.0.1.10:40000', '198.51.100.7:443'), 16));
    expect(r.ct).toBe(CT_NEW);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(pv(r.outputs[0].frame).src).toBe(A('203.0.113.10'));
  });

  it('a UDP checksum of 0 is "no checksum": valid, and it stays 0 through NAT and the IGW', () => {
    const s = scenario();
    const e = engine(s);
    const r = send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53', { noChecksum: true }));
    expect(r.ct).toBe(CT_NEW);
    expect(pv(r.outputs[0].frame).l4Csum).toBe(0);
  });
});

describe('ICMP queries and other protocols', () => {
  it('timestamp requests are tracked like echo; their replies come back', () => {
    const s = scenario();
    const e = engine(s);
    const q = buildIcmpQuery({
      src: A('10.0.1.10'),
      dst: A('192.0.2.1'),
      type: ICMP_TIMESTAMP,
      id: 31,
      payload: new Uint8Array(12),
    });
    const r = send(e, s, 'app', q);
    expect(r.ct).toBe(CT_NEW);
    const back = send(
      e,
      s,
      'internet',
      buildIcmpQuery({
        src: A('192.0.2.1'),
        dst: A('203.0.113.10'),
        type: ICMP_TIMESTAMP + 1,
        id: 31,
        payload: new Uint8Array(12),
      }),
    );
    expect(back.ct).toBe(CT_ESTABLISHED);
    expect(back.outputs[0].egress).toBe(point(s, 'app'));
  });

  it('generic protocols are tracked by addresses only: a second host to the same remote clashes', () => {
    const s = scenario(withApp2);
    const e = engine(s);
    const gre = (src: string): Uint8Array =>
      buildIpv4({ src: A(src), dst: A('198.51.100.7'), proto: 47, payload: new Uint8Array(8) });
    const r1 = send(e, s, 'app', gre('10.0.1.10'));
    expect(r1.fate).toBe(FATE_DELIVERED);
    expect(pv(r1.outputs[0].frame).src).toBe(A('203.0.113.10'));
    expect(e.conntrackSync()[0].timeout).toBe(600);
    const r2 = send(e, s, 'app2', gre('10.0.1.11'));
    expect(r2.reason).toBe(DROP_NAT_CLASH);
    expect(e.conntrackSync()).toHaveLength(1);
  });
});
