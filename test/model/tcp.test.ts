// TCP tracking rules of docs/semantics.md §4: flag validity, new-entry rules, the transition table
// special cases (re-open, ignore + re-sync, simultaneous open, challenge ACK), RST handling.
import { describe, expect, it } from 'vitest';
import { F_ACK, F_CWR, F_ECE, F_FIN, F_PSH, F_RST, F_SYN, F_URG } from '../../src/packet/index.ts';
import { CT_ESTABLISHED, CT_INVALID, CT_NEW, FATE_DELIVERED } from '../../src/spec/reasons.ts';
import {
  tcpFlagsValid,
  tcpPacketClass,
  tcpTransition,
  TCP_ACK_SET,
  TCP_ESTABLISHED,
  TCP_IG,
  TCP_IV,
  TCP_NONE,
  TCP_RST_SET,
  TCP_SYN_SENT,
  TCP_SYN_SET,
  TCP_SYNACK_SET,
  TCP_FIN_SET,
  TCP_NONE_SET,
  TCP_TIME_WAIT,
  TCP_SYN_SENT2,
  TCP_CLOSE,
} from '../../src/model/tcp-state.ts';
import { engine, pv, scenario, send, tcp } from './helpers.ts';

const APP = '10.0.1.10:40000';
const SRV = '198.51.100.7:443';
const PUB = '203.0.113.10:40000';

function handshake(e: ReturnType<typeof engine>, s: ReturnType<typeof scenario>, t = 0): void {
  send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 1 }), t);
  send(e, s, 'internet', tcp(SRV, PUB, F_SYN | F_ACK, { seq: 100, ack: 2 }), t + 1);
  send(e, s, 'app', tcp(APP, SRV, F_ACK, { seq: 2, ack: 101 }), t + 2);
}

describe('tcp flags and classes', () => {
  it('valid flag combinations after masking PSH/ECE/CWR', () => {
    const valid = [
      F_SYN,
      F_SYN | F_URG,
      F_SYN | F_ACK,
      F_RST,
      F_RST | F_ACK,
      F_FIN | F_ACK,
      F_FIN | F_ACK | F_URG,
      F_ACK,
      F_ACK | F_URG,
    ];
    for (let f = 0; f < 256; f++) {
      const core = f & ~(F_PSH | F_ECE | F_CWR);
      expect(tcpFlagsValid(f), `flags ${f}`).toBe(valid.includes(core));
    }
  });

  it('packet class priority: RST, SYN(+ACK), FIN, ACK, none', () => {
    expect(tcpPacketClass(F_RST | F_SYN | F_FIN | F_ACK)).toBe(TCP_RST_SET);
    expect(tcpPacketClass(F_SYN | F_ACK)).toBe(TCP_SYNACK_SET);
    expect(tcpPacketClass(F_SYN | F_FIN)).toBe(TCP_SYN_SET);
    expect(tcpPacketClass(F_FIN | F_ACK)).toBe(TCP_FIN_SET);
    expect(tcpPacketClass(F_ACK | F_PSH)).toBe(TCP_ACK_SET);
    expect(tcpPacketClass(F_PSH)).toBe(TCP_NONE_SET);
  });

  it('the newest table: a few cells that changed across versions', () => {
    expect(tcpTransition(0, TCP_SYNACK_SET, TCP_ESTABLISHED)).toBe(TCP_IV); // older kernels: IG
    expect(tcpTransition(1, TCP_SYN_SET, TCP_TIME_WAIT)).toBe(TCP_SYN_SENT); // older: IV
    expect(tcpTransition(0, TCP_ACK_SET, TCP_NONE)).toBe(TCP_ESTABLISHED);
    expect(tcpTransition(1, TCP_SYN_SET, TCP_SYN_SENT)).toBe(TCP_SYN_SENT2);
    expect(tcpTransition(1, TCP_ACK_SET, TCP_SYN_SENT)).toBe(TCP_IG);
    expect(tcpTransition(0, TCP_RST_SET, TCP_SYN_SENT2)).toBe(TCP_CLOSE);
  });
});

describe('tcp conntrack through the NAT instance', () => {
  it('only SYN or (loose) ACK create entries; SYN/ACK, FIN, RST with no entry are INVALID and forwarded un-NATed', () => {
    const s = scenario();
    for (const f of [F_SYN | F_ACK, F_FIN | F_ACK, F_RST, F_RST | F_ACK]) {
      const e = engine(s);
      const r = send(e, s, 'app', tcp(APP, SRV, f));
      expect(r.ct, `flags ${f}`).toBe(CT_INVALID);
      expect(e.conntrackSync()).toHaveLength(0);
      expect(r.hops.map((h) => h.name)).not.toContain('MASQUERADE');
    }
  });

  it('invalid flag combinations are INVALID even on an established entry', () => {
    const s = scenario();
    const e = engine(s);
    handshake(e, s);
    const r = send(e, s, 'app', tcp(APP, SRV, F_SYN | F_FIN), 10);
    expect(r.ct).toBe(CT_INVALID);
    expect(pv(r.hops[r.hops.length - 1].packet).src).toBe(pv(tcp(APP, SRV)).src); // not NATed
  });

  it('tcpLoose off: a mid-stream ACK is INVALID', () => {
    const s = scenario((x) => {
      x.conntrack.tcpLoose = false;
    });
    const e = engine(s);
    expect(send(e, s, 'app', tcp(APP, SRV, F_ACK)).ct).toBe(CT_INVALID);
    expect(e.conntrackSync()).toHaveLength(0);
  });

  it('a picked-up flow becomes ASSURED on its first packet after the reply', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp(APP, SRV, F_ACK, { seq: 5, ack: 7 }), 0);
    send(e, s, 'internet', tcp(SRV, PUB, F_ACK, { seq: 7, ack: 5 }), 1);
    let c = e.conntrackSync()[0];
    expect(c).toMatchObject({ seenReply: true, assured: false, timeout: 300 });
    send(e, s, 'app', tcp(APP, SRV, F_ACK, { seq: 5, ack: 7 }), 2);
    c = e.conntrackSync()[0];
    expect(c).toMatchObject({ assured: true, timeout: 432000 });
  });

  it('ORIG SYN in ESTABLISHED is ignored: NATed, state and timer unchanged', () => {
    const s = scenario();
    const e = engine(s);
    handshake(e, s);
    const r = send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 5000 }), 1000);
    expect(r.ct).toBe(CT_ESTABLISHED);
    expect(pv(r.outputs[0].frame).src).toBe(pv(tcp(PUB, SRV)).src);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'ESTABLISHED', timeout: 431999 });
  });

  it('a SYN/ACK answering an ignored SYN re-syncs the entry to SYN_RECV', () => {
    const s = scenario();
    const e = engine(s);
    handshake(e, s);
    send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 5000 }), 1000);
    send(e, s, 'internet', tcp(SRV, PUB, F_SYN | F_ACK, { seq: 9000, ack: 4242 }), 1001); // wrong ack: ignored
    expect(e.conntrackSync()[0].state).toBe('ESTABLISHED');
    send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 5000 }), 1002);
    send(e, s, 'internet', tcp(SRV, PUB, F_SYN | F_ACK, { seq: 9000, ack: 5001 }), 1003);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'SYN_RECV', timeout: 60 });
  });

  it('re-open from TIME_WAIT (a FIN was seen): the old entry is killed, the SYN starts a new connection', () => {
    const s = scenario();
    const e = engine(s);
    handshake(e, s);
    send(e, s, 'app', tcp(APP, SRV, F_FIN | F_ACK, { seq: 2, ack: 101 }), 10);
    send(e, s, 'internet', tcp(SRV, PUB, F_FIN | F_ACK, { seq: 101, ack: 3 }), 11);
    send(e, s, 'app', tcp(APP, SRV, F_ACK, { seq: 3, ack: 102 }), 12);
    expect(e.conntrackSync()[0].state).toBe('TIME_WAIT');
    const r = send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 99999 }), 20);
    expect(r.ct).toBe(CT_NEW);
    const c = e.conntrackSync();
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ state: 'SYN_SENT', assured: false, seenReply: false, timeout: 120 });
    expect(e.natCountersSync().find((x) => x.chain === 'POSTROUTING' && x.rule === 0)?.packets).toBe(2);
  });

  it("SYN in CLOSE after the peer's RST (no FIN, last RST from the other side) is ignored, not a re-open", () => {
    const s = scenario();
    const e = engine(s);
    handshake(e, s);
    send(e, s, 'internet', tcp(SRV, PUB, F_RST, { seq: 101 }), 10);
    expect(e.conntrackSync()[0].state).toBe('CLOSE');
    const r = send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 7 }), 11);
    expect(r.ct).toBe(CT_ESTABLISHED);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'CLOSE', assured: true });
    // ...but after our own RST the SYN re-opens.
    send(e, s, 'app', tcp(APP, SRV, F_RST, { seq: 2 }), 12);
    send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 8 }), 13);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'SYN_SENT', assured: false });
  });

  describe('RST sequence check (issue 15 D1: nf_conntrack_tcp_packet, case TCP_CONNTRACK_CLOSE)', () => {
    // After the handshake the client has ACKed 101 and the server 2: the expected RST sequence
    // numbers are 101 (from the server) and 2 (from the client).
    it('an in-window RST whose seq is not exactly the expected one keeps ESTABLISHED (challenge ACK)', () => {
      const s = scenario((x) => {
        x.conntrack.timeouts.tcpClose = 3;
      });
      const e = engine(s);
      handshake(e, s);
      const r = send(e, s, 'internet', tcp(SRV, PUB, F_RST, { seq: 5000 }), 10);
      expect(r.ct).toBe(CT_ESTABLISHED);
      expect(r.outputs).toHaveLength(1); // accepted and NATed to the app
      expect(e.conntrackSync()[0]).toMatchObject({ state: 'ESTABLISHED', assured: true, timeout: 3 });
      // The connection goes on: the client's challenge ACK, then the server's data, 5 s later.
      send(e, s, 'app', tcp(APP, SRV, F_ACK, { seq: 2, ack: 101 }), 1000);
      const d = send(e, s, 'internet', tcp(SRV, PUB, F_ACK, { seq: 101, ack: 2 }), 6000);
      expect(d.ct).toBe(CT_ESTABLISHED);
      expect(pv(d.outputs[0].frame).dst).toBe(pv(tcp(APP, SRV)).src);
    });

    it('an RST below the expected seq is INVALID: not NATed, state unchanged', () => {
      const s = scenario();
      const e = engine(s);
      handshake(e, s);
      const r = send(e, s, 'internet', tcp(SRV, PUB, F_RST, { seq: 50 }), 10);
      expect(r.ct).toBe(CT_INVALID);
      expect(r.outputs).toHaveLength(1); // delivered un-NATed: to the NAT instance itself
      expect(e.conntrackSync()[0].state).toBe('ESTABLISHED');
    });

    it('nf_conntrack_tcp_ignore_invalid_rst=1: an RST below the expected seq is accepted and keeps ESTABLISHED', () => {
      const s = scenario((x) => {
        x.conntrack.tcpIgnoreInvalidRst = true;
      });
      const e = engine(s);
      handshake(e, s);
      const r = send(e, s, 'internet', tcp(SRV, PUB, F_RST, { seq: 50 }), 10);
      expect(r.ct).toBe(CT_ESTABLISHED);
      expect(pv(r.outputs[0].frame).dst).toBe(pv(tcp(APP, SRV)).src); // NATed to the app
      expect(e.conntrackSync()[0].state).toBe('ESTABLISHED');
      // Not yet established (no ASSURED): below the expected seq it now closes.
      const f = engine(s);
      send(f, s, 'app', tcp(APP, SRV, F_SYN, { seq: 1 }), 0);
      send(f, s, 'internet', tcp(SRV, PUB, F_SYN | F_ACK, { seq: 100, ack: 2 }), 1);
      send(f, s, 'app', tcp(APP, SRV, F_RST, { seq: 1 }), 2);
      expect(f.conntrackSync()[0].state).toBe('CLOSE');
    });

    it('an exact RST closes; so does one right after its own data segment ("part of a train")', () => {
      const s = scenario();
      const e = engine(s);
      handshake(e, s);
      send(e, s, 'internet', tcp(SRV, PUB, F_RST | F_ACK, { seq: 101, ack: 2 }), 10);
      expect(e.conntrackSync()[0].state).toBe('CLOSE');
      const f = engine(s);
      handshake(f, s);
      send(f, s, 'internet', tcp(SRV, PUB, F_ACK, { seq: 101, ack: 2, len: 19 }), 10);
      send(f, s, 'internet', tcp(SRV, PUB, F_RST, { seq: 120 }), 11);
      expect(f.conntrackSync()[0].state).toBe('CLOSE');
    });

    it('not yet established (SYN_RECV): an RST at or above the expected seq closes, inexact or not', () => {
      const s = scenario();
      const e = engine(s);
      send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 1 }), 0);
      send(e, s, 'internet', tcp(SRV, PUB, F_SYN | F_ACK, { seq: 100, ack: 2 }), 1);
      send(e, s, 'app', tcp(APP, SRV, F_RST, { seq: 777 }), 2);
      // nf_conntrack_tcp_established() is false (SYN_RECV, not ASSURED): no challenge-ACK case.
      expect(e.conntrackSync()[0].state).toBe('CLOSE');
    });
  });

  it('simultaneous open: SYN_SENT2, then a REPLY ACK in SYN_RECV establishes', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 1 }), 0);
    send(e, s, 'internet', tcp(SRV, PUB, F_SYN, { seq: 100 }), 1);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'SYN_SENT2', timeout: 119 }); // SYN in SS: no renewal
    send(e, s, 'app', tcp(APP, SRV, F_SYN | F_ACK, { seq: 1, ack: 101 }), 2);
    expect(e.conntrackSync()[0].state).toBe('SYN_RECV');
    send(e, s, 'internet', tcp(SRV, PUB, F_ACK, { seq: 101, ack: 2 }), 3);
    expect(e.conntrackSync()[0]).toMatchObject({ state: 'ESTABLISHED', assured: true });
  });

  it('RFC 5961: the challenge ACK after an ignored SYN in LAST_ACK does not move to TIME_WAIT', () => {
    const s = scenario();
    const e = engine(s);
    handshake(e, s);
    send(e, s, 'app', tcp(APP, SRV, F_FIN | F_ACK, { seq: 2, ack: 101 }), 10);
    send(e, s, 'internet', tcp(SRV, PUB, F_FIN | F_ACK, { seq: 101, ack: 3 }), 11);
    expect(e.conntrackSync()[0].state).toBe('LAST_ACK');
    send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 777 }), 12); // ignored in LAST_ACK
    send(e, s, 'internet', tcp(SRV, PUB, F_ACK, { seq: 102, ack: 3 }), 13); // challenge ACK
    expect(e.conntrackSync()[0].state).toBe('LAST_ACK');
    send(e, s, 'internet', tcp(SRV, PUB, F_ACK, { seq: 102, ack: 3 }), 14);
    expect(e.conntrackSync()[0].state).toBe('TIME_WAIT');
  });

  it('an RST before any reply deletes the entry but is still NATed', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp(APP, SRV, F_SYN, { seq: 1 }), 0);
    const r = send(e, s, 'app', tcp(APP, SRV, F_RST, { seq: 2 }), 1);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(pv(r.outputs[0].frame).src).toBe(pv(tcp(PUB, SRV)).src);
    expect(e.conntrackSync()).toHaveLength(0);
  });

  it('truncated TCP header from inside is INVALID and forwarded un-NATed', () => {
    const s = scenario();
    const e = engine(s);
    const f = tcp(APP, SRV);
    f[20 + 12] = 0x40; // data offset 4 words < 5
    const r = send(e, s, 'app', f); // (the IP header is untouched: only L4 is broken)
    expect(r.ct).toBe(CT_INVALID);
    expect(r.hops.some((h) => h.name === 'NAT instance nat: conntrack INVALID')).toBe(true);
    expect(r.hops.map((h) => h.name)).not.toContain('MASQUERADE');
    expect(e.conntrackSync()).toHaveLength(0);
  });
});
