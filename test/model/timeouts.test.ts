// Timeouts expire entries at the Linux defaults, checked at the exact boundary: alive at T−1 ms,
// gone at T (docs/semantics.md §7: dead iff nowMs >= refreshMs + T·1000).
import { describe, expect, it } from 'vitest';
import { F_ACK, F_FIN, F_RST, F_SYN } from '../../src/packet/index.ts';
import { DEFAULT_TIMEOUTS } from '../../src/spec/timeouts.ts';
import { CT_ESTABLISHED, CT_NEW } from '../../src/spec/reasons.ts';
import type { ModelEngine } from '../../src/model/index.ts';
import { engine, ping, point, scenario, send, tcp, udp } from './helpers.ts';

function entriesAt(e: ModelEngine, ms: number): number {
  e.advanceSync(ms * 1000);
  return e.conntrackSync().length;
}

/** Asserts the single entry is alive at expiry−1 ms (with the printed seconds) and gone at expiry. */
function expectExpiry(e: ModelEngine, expiryMs: number): void {
  expect(entriesAt(e, expiryMs - 1)).toBe(1);
  expect(e.conntrackSync()[0].timeout).toBe(0);
  expect(entriesAt(e, expiryMs)).toBe(0);
}

const S = 1000;

describe('conntrack timeouts at the Linux defaults', () => {
  it("defaults are the kernel's", () => {
    expect(DEFAULT_TIMEOUTS).toMatchObject({
      udp: 30,
      udpStream: 120,
      icmp: 30,
      tcpSynSent: 120,
      tcpSynRecv: 60,
      tcpEstablished: 432000,
      tcpTimeWait: 120,
      tcpClose: 10,
    });
  });

  it('UDP unreplied: 30 s after the last packet', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 1000);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 5000); // refreshes
    expect(e.conntrackSync()[0].timeout).toBe(30);
    expectExpiry(e, 5000 + 30 * S);
  });

  it('a reply at T−1 ms is de-NATed; at T the entry is gone and the reply goes to the NAT instance itself', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 0);
    const before = send(e, s, 'internet', udp('198.51.100.53:53', '203.0.113.10:5000'), 30 * S - 1);
    expect(before.outputs[0].egress).toBe(point(s, 'app'));
    const e2 = engine(s);
    send(e2, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 0);
    const after = send(e2, s, 'internet', udp('198.51.100.53:53', '203.0.113.10:5000'), 30 * S);
    expect(after.ct).toBe(CT_NEW);
    expect(after.outputs[0].egress).toBe(point(s, 'nat'));
  });

  it('UDP replied within 2 s stays 30 s and not ASSURED; after 2 s it becomes a 120 s ASSURED stream', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 0);
    send(e, s, 'internet', udp('198.51.100.53:53', '203.0.113.10:5000'), 1000);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 2000); // not after stream_ts (2000)
    let c = e.conntrackSync()[0];
    expect(c.seenReply).toBe(true);
    expect(c.assured).toBe(false);
    expect(c.timeout).toBe(30);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 2001);
    c = e.conntrackSync()[0];
    expect(c.assured).toBe(true);
    expect(c.timeout).toBe(120);
    expectExpiry(e, 2001 + 120 * S);
  });

  it('ICMP echo: 30 s, refreshed by the reply', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', ping('10.0.1.10', '192.0.2.1', 77), 0);
    const r = send(e, s, 'internet', ping('192.0.2.1', '203.0.113.10', 77, true), 400);
    expect(r.ct).toBe(CT_ESTABLISHED);
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    expectExpiry(e, 400 + 30 * S);
  });

  it('TCP SYN_SENT: 120 s from the first SYN; a retransmitted SYN does not renew it', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'), 0);
    const re = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'), 60 * S);
    expect(re.ct).toBe(CT_NEW);
    expect(e.conntrackSync()[0].timeout).toBe(60);
    expectExpiry(e, 120 * S);
  });

  it('TCP SYN_RECV 60 s, ESTABLISHED 5 days, FIN_WAIT/TIME_WAIT 120 s, CLOSE 10 s', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1 }), 0);
    send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 100, ack: 2 }), 10);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'SYN_RECV', timeout: 60 });
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 2, ack: 101 }), 20);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'ESTABLISHED', timeout: 432000, assured: true });
    expect(entriesAt(e, 20 + 432000 * S - 1)).toBe(1);
    const e2 = engine(s);
    send(e2, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1 }), 0);
    send(e2, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 100, ack: 2 }), 10);
    send(e2, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 2, ack: 101 }), 20);
    expectExpiry(e2, 20 + 432000 * S);

    const e3 = engine(s);
    send(e3, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1 }), 0);
    send(e3, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 100, ack: 2 }), 10);
    send(e3, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 2, ack: 101 }), 20);
    send(e3, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_FIN | F_ACK, { seq: 2, ack: 101 }), 30);
    expect(e3.conntrackSync()[0]).toMatchObject({ state: 'FIN_WAIT', timeout: 120 });
    send(e3, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_FIN | F_ACK, { seq: 101, ack: 3 }), 40);
    expect(e3.conntrackSync()[0]).toMatchObject({ state: 'LAST_ACK', timeout: 30 });
    send(e3, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 3, ack: 102 }), 50);
    expect(e3.conntrackSync()[0]).toMatchObject({ state: 'TIME_WAIT', timeout: 120 });
    expectExpiry(e3, 50 + 120 * S);

    const e4 = engine(s);
    send(e4, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN, { seq: 1 }), 0);
    send(e4, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { seq: 100, ack: 2 }), 10);
    send(e4, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_RST, { seq: 2 }), 20);
    expect(e4.conntrackSync()[0]).toMatchObject({ state: 'CLOSE', timeout: 10 });
    expectExpiry(e4, 20 + 10 * S);
  });

  it('a mid-stream ACK is picked up as ESTABLISHED, capped at 300 s until a reply is seen', () => {
    const s = scenario();
    const e = engine(s);
    const r = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_ACK, { seq: 5, ack: 9 }), 0);
    expect(r.ct).toBe(CT_NEW);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'ESTABLISHED', timeout: 300, assured: false });
    expectExpiry(e, 300 * S);
  });

  it('custom timeouts from the scenario are used', () => {
    const s = scenario((x) => {
      x.conntrack.timeouts.udp = 7;
    });
    const e = engine(s);
    send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53'), 0);
    expectExpiry(e, 7 * S);
  });
});
