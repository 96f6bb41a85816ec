// Single-threaded Dataplane: the contract (docs/semantics.md) on the built-in scenario, the
// tables, port allocation, dispatch ownership and expiry. Packets are built with src/packet.

import { describe, expect, it } from 'vitest';
import { loadOpenScenario, parseScenario } from '../../src/scenario/index.ts';
import {
  buildIcmpEcho,
  buildIcmpError,
  buildIpv4,
  buildTcp,
  buildUdp,
  describePacket,
  fixChecksums,
  parseIpv4Addr as ip,
  F_ACK,
  F_FIN,
  F_RST,
  F_SYN,
  PacketView,
  parseIpv4,
  verifyL4Checksum,
  verifyIpv4Header,
} from '../../src/packet/index.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NEW,
  CT_RELATED,
  DROP_CT_TABLE_FULL,
  DROP_FRAGMENT,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_IGW_UNKNOWN_DST,
  DROP_IP_FORWARD_OFF,
  DROP_MALFORMED,
  DROP_NAT_CLASH,
  DROP_SRC_DST_CHECK_SRC,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
  FATE_DROPPED,
  REASON_NONE,
} from '../../src/spec/reasons.ts';
import { POINT_INTERNET, type Scenario } from '../../src/spec/scenario.ts';
import { Harness } from './dataplane-harness.ts';
import { readDropCounters, readNatCounters } from '../../src/core/ct-dump.ts';
import {
  createCoreShared,
  FE_ADDR,
  FE_EXPIRY,
  FE_FAST,
  FE_META,
  FE_PORT,
  FE_SIDE_DST,
  S_EXPIRY,
} from '../../src/core/layout.ts';
import { PROTO_TCP } from '../../src/packet/constants.ts';
import { Tables } from '../../src/core/tables.ts';
import { prefaultTables, sharedBytesPerSession } from '../../src/core/layout.ts';
import { NAT, WEB, APP, app, natIp, web, eip, webEip } from '../helpers/builtin.ts';

const srv = ip('198.51.100.7');
const srv2 = ip('198.51.100.8');

function d(f: Uint8Array): string {
  return describePacket(f, 0, f.length);
}
function outs(r: { outputs: { egress: number; frame: Uint8Array }[] }): string[] {
  return r.outputs.map((o) => `${o.egress} ${d(o.frame)}`);
}
function checksOk(f: Uint8Array): boolean {
  const pv = new PacketView();
  parseIpv4(f, 0, f.length, pv);
  return verifyIpv4Header(f, pv) && verifyL4Checksum(f, pv);
}

const SCEN_DNAT = `
name: dnat
vpc: { cidr: 10.0.0.0/16 }
routeTables:
  public: [ { dest: 0.0.0.0/0, target: igw } ]
  private: [ { dest: 0.0.0.0/0, target: eni:nat } ]
subnets:
  public: { cidr: 10.0.0.0/24, routeTable: public }
  private: { cidr: 10.0.1.0/24, routeTable: private }
instances:
  nat:
    subnet: public
    privateIp: 10.0.0.10
    elasticIp: 203.0.113.10
    sourceDestCheck: false
    sysctls: { net.ipv4.ip_forward: 1 }
    iptables: |
      *nat
      :PREROUTING ACCEPT [0:0]
      :INPUT ACCEPT [0:0]
      :OUTPUT ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.10:80
      -A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE
      COMMIT
  app:
    subnet: private
    privateIp: 10.0.1.10
internet: { hosts: [ 198.51.100.0/24 ] }
`;

function scenarioWith(extra: (s: Scenario) => void): Scenario {
  const s = loadOpenScenario();
  extra(s);
  return s;
}

describe('dataplane: the path on the built-in scenario', () => {
  it('MASQUERADE + IGW out, de-NAT back in; TCP handshake to ASSURED; fast path takes over', () => {
    const h = new Harness(loadOpenScenario());
    let r = h.send(buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_SYN }), APP, 0);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.ct).toBe(CT_NEW);
    expect(outs(r)).toEqual(['0 tcp 203.0.113.10:40000 > 198.51.100.7:443 S ttl=63']);
    expect(checksOk(r.outputs[0].frame)).toBe(true);
    r = h.send(buildTcp({ src: srv, dst: eip, sport: 443, dport: 40000, flags: F_SYN | F_ACK }), POINT_INTERNET, 10);
    expect(outs(r)).toEqual(['3 tcp 198.51.100.7:443 > 10.0.1.10:40000 S. ttl=63']);
    expect(r.ct).toBe(CT_ESTABLISHED);
    expect(h.conntrack()[0].state).toBe('SYN_RECV');
    r = h.send(buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_ACK }), APP, 20);
    let ct = h.conntrack();
    expect(ct[0].state).toBe('ESTABLISHED');
    expect(ct[0].assured).toBe(true);
    expect(ct[0].timeout).toBe(432000);
    const fast0 = h.fast;
    for (let k = 0; k < 3; k++) {
      r = h.send(
        buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_ACK, payload: new Uint8Array([1, 2, 3]) }),
        APP,
        30 + k,
      );
      expect(outs(r)).toEqual(['0 tcp 203.0.113.10:40000 > 198.51.100.7:443 . len=3 ttl=63']);
      expect(checksOk(r.outputs[0].frame)).toBe(true);
      r = h.send(
        buildTcp({ src: srv, dst: eip, sport: 443, dport: 40000, flags: F_ACK, ttl: 50 }),
        POINT_INTERNET,
        40 + k,
      );
      expect(outs(r)).toEqual(['3 tcp 198.51.100.7:443 > 10.0.1.10:40000 . ttl=49']);
      expect(checksOk(r.outputs[0].frame)).toBe(true);
      expect(r.ct).toBe(CT_ESTABLISHED);
    }
    expect(h.fast - fast0).toBeGreaterThanOrEqual(5);
    // FIN closes: slow path again, state FIN_WAIT.
    r = h.send(buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_FIN | F_ACK }), APP, 100);
    ct = h.conntrack();
    expect(ct[0].state).toBe('FIN_WAIT');
    expect(ct[0].timeout).toBe(120);
  });

  it("the fast path's output words stay int32 (addresses and ports words at 2^31 or above)", () => {
    // A field first given a Smi and later a uint32 at 2^31 or above changes representation: the
    // Dataplane's map is deprecated and every compiled function using it deoptimised — at the first
    // fast-path packet, after processBatch was compiled (docs/replay.md, Round seven).
    const h = new Harness(loadOpenScenario());
    h.send(buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_SYN }), APP, 0);
    h.send(buildTcp({ src: srv, dst: eip, sport: 443, dport: 40000, flags: F_SYN | F_ACK }), POINT_INTERNET, 10);
    h.send(buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_ACK }), APP, 20);
    const fast0 = h.fast;
    const r = h.send(buildTcp({ src: srv, dst: eip, sport: 443, dport: 40000, flags: F_ACK }), POINT_INTERNET, 30);
    expect(outs(r)).toEqual(['3 tcp 198.51.100.7:443 > 10.0.1.10:40000 . ttl=63']);
    expect(h.fast - fast0).toBe(1);
    const dp = h.dps[0] as unknown as { rSrc: number; rDst: number; rPorts: number };
    for (const v of [dp.rSrc, dp.rDst, dp.rPorts]) expect(v).toBe(v | 0);
    expect(dp.rSrc >>> 0).toBe(0xc6336407); // 198.51.100.7, the same bits
    h.send(buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags: F_ACK }), APP, 40);
    expect(h.fast - fast0).toBe(2);
    for (const v of [dp.rSrc, dp.rDst, dp.rPorts]) expect(v).toBe(v | 0);
    expect(dp.rDst >>> 0).toBe(0xc6336407);
    expect(dp.rPorts >>> 0).toBe(((40000 << 16) | 443) >>> 0);
  });

  it('the fast path and the slow path write identical bytes', () => {
    // Same traffic twice: once with the fast path usable, once forced slow (fresh harness per packet type).
    const h = new Harness(loadOpenScenario());
    h.send(buildUdp({ src: app, dst: srv, sport: 5000, dport: 53 }), APP, 0);
    h.send(buildUdp({ src: srv, dst: eip, sport: 53, dport: 5000 }), POINT_INTERNET, 1);
    h.send(buildUdp({ src: app, dst: srv, sport: 5000, dport: 53 }), APP, 2500); // stream → ASSURED
    expect(h.conntrack()[0].assured).toBe(true);
    const fast0 = h.fast;
    const f1 = buildUdp({
      src: app,
      dst: srv,
      sport: 5000,
      dport: 53,
      payload: new Uint8Array([9, 8, 7, 6, 5]),
      ttl: 17,
    });
    const a = h.send(f1, APP, 2600);
    const f2 = buildUdp({ src: srv, dst: eip, sport: 53, dport: 5000, payload: new Uint8Array([1]), ttl: 3 });
    const b = h.send(f2, POINT_INTERNET, 2700);
    expect(h.fast - fast0).toBe(2);
    // A second harness where the session exists but the direction's path was never recorded
    // (first packets of each direction are slow): compare bytes.
    const g = new Harness(loadOpenScenario());
    g.send(buildUdp({ src: app, dst: srv, sport: 5000, dport: 53 }), APP, 0);
    const b2 = g.send(f2, POINT_INTERNET, 2700);
    const a2 = g.send(f1, APP, 2800);
    expect(g.fast).toBe(0);
    expect(Buffer.from(a.outputs[0].frame).toString('hex')).toBe(Buffer.from(a2.outputs[0].frame).toString('hex'));
    expect(Buffer.from(b.outputs[0].frame).toString('hex')).toBe(Buffer.from(b2.outputs[0].frame).toString('hex'));
    // UDP checksum 0 stays 0.
    const z = h.send(buildUdp({ src: app, dst: srv, sport: 5000, dport: 53, noChecksum: true }), APP, 2900);
    const zf = z.outputs[0].frame;
    expect((zf[26] << 8) | zf[27]).toBe(0);
  });

  it('UDP: 30 s unreplied, stream after 2 s with a reply → 120 s ASSURED; expiry at the exact ms', () => {
    const h = new Harness(loadOpenScenario());
    const q = buildUdp({ src: app, dst: srv, sport: 5353, dport: 53 });
    const a = buildUdp({ src: srv, dst: eip, sport: 53, dport: 5353 });
    h.send(q, APP, 1000);
    expect(h.conntrack(1000)[0].timeout).toBe(30);
    expect(h.conntrack(30999).length).toBe(1);
    expect(h.conntrack(31000).length).toBe(0);
    // A reply at 30999 still matches; at the expiry ms it would not.
    let r = h.send(a, POINT_INTERNET, 30999);
    expect(r.ct).toBe(CT_ESTABLISHED);
    expect(h.conntrack()[0].assured).toBe(false);
    r = h.send(q, APP, 40000);
    expect(h.conntrack()[0].assured).toBe(true);
    expect(h.conntrack()[0].timeout).toBe(120);
    // Dead exactly at expiry: an unsolicited reply is now a new inbound flow (delivered to nat).
    r = h.send(a, POINT_INTERNET, 160000);
    expect(r.ct).toBe(CT_NEW);
    expect(outs(r)).toEqual(['1 udp 198.51.100.7:53 > 10.0.0.10:5353 ttl=64']);
  });

  it('ICMP echo: id preserved, reply de-NATed, 30 s, never ASSURED; unsolicited reply INVALID', () => {
    const h = new Harness(loadOpenScenario());
    let r = h.send(buildIcmpEcho({ src: app, dst: srv, id: 7, seq: 1 }), APP, 0);
    expect(outs(r)).toEqual(['0 icmp 203.0.113.10 > 198.51.100.7 echo id=7 seq=1 ttl=63']);
    expect(checksOk(r.outputs[0].frame)).toBe(true);
    r = h.send(buildIcmpEcho({ src: srv, dst: eip, id: 7, seq: 1, reply: true }), POINT_INTERNET, 5);
    expect(outs(r)).toEqual(['3 icmp 198.51.100.7 > 10.0.1.10 echo-reply id=7 seq=1 ttl=63']);
    const ct = h.conntrack();
    expect(ct[0].seenReply).toBe(true);
    expect(ct[0].assured).toBe(false);
    expect(ct[0].timeout).toBe(30);
    expect(h.conntrack(4999)[0].timeout).toBe(25);
    r = h.send(buildIcmpEcho({ src: srv, dst: eip, id: 99, reply: true }), POINT_INTERNET, 6);
    expect(r.ct).toBe(CT_INVALID);
  });

  it('bad L4 checksum → INVALID, forwarded un-NATed (then dropped by the IGW)', () => {
    const h = new Harness(loadOpenScenario());
    const f = buildUdp({ src: app, dst: srv, sport: 1, dport: 2 });
    f[27] ^= 0x55;
    const r = h.send(f, APP, 0);
    expect(r.ct).toBe(CT_INVALID);
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP);
    expect(h.conntrack().length).toBe(0);
  });

  it('TTL exceeded at the NAT: drop, ICMP time exceeded from the NAT back to the sender, no entry', () => {
    const h = new Harness(loadOpenScenario());
    const f = buildUdp({ src: app, dst: srv, sport: 4444, dport: 53, ttl: 1 });
    const r = h.send(f, APP, 0);
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_TTL_EXCEEDED);
    expect(outs(r)).toEqual([
      '3 icmp 10.0.0.10 > 10.0.1.10 time-exceeded ttl [udp 10.0.1.10:4444 > 198.51.100.7:53] ttl=64',
    ]);
    const e = r.outputs[0].frame;
    expect(e[1]).toBe(0xc0);
    expect(checksOk(e)).toBe(true);
    expect(h.conntrack().length).toBe(0);
  });

  it('ICMP error from the internet about a NATed flow: RELATED, inner and outer translated', () => {
    const h = new Harness(loadOpenScenario());
    const out = h.send(buildUdp({ src: app, dst: srv, sport: 4000, dport: 53 }), APP, 0).outputs[0].frame;
    const err = buildIcmpError({ src: srv2, dst: eip, type: 3, code: 3, quoted: out });
    const r = h.send(err, POINT_INTERNET, 10);
    expect(r.ct).toBe(CT_RELATED);
    expect(outs(r)).toEqual([
      '3 icmp 198.51.100.8 > 10.0.1.10 unreachable port [udp 10.0.1.10:4000 > 198.51.100.7:53] ttl=63',
    ]);
    expect(checksOk(r.outputs[0].frame)).toBe(true);
    // Never refreshes: timeout still counts from the first packet.
    expect(h.conntrack(10)[0].timeout).toBe(29);
  });

  it('drops: src/dst check, IGW unknown dst, fragment, malformed, ip_forward off', () => {
    const h = new Harness(loadOpenScenario());
    let r = h.send(buildUdp({ src: ip('10.0.1.99'), dst: srv, sport: 1, dport: 2 }), APP, 0);
    expect(r.reason).toBe(DROP_SRC_DST_CHECK_SRC);
    r = h.send(buildUdp({ src: srv, dst: ip('203.0.113.99'), sport: 1, dport: 2 }), POINT_INTERNET, 0);
    expect(r.reason).toBe(DROP_IGW_UNKNOWN_DST);
    r = h.send(buildIpv4({ src: app, dst: srv, proto: 17, payload: new Uint8Array(16), mf: true }), APP, 0);
    expect(r.reason).toBe(DROP_FRAGMENT);
    const bad = buildUdp({ src: app, dst: srv, sport: 1, dport: 2 });
    bad[10] ^= 1;
    r = h.send(bad, APP, 0);
    expect(r.reason).toBe(DROP_MALFORMED);
    expect(r.detail).toBeGreaterThan(0);
    r = h.send(buildUdp({ src: web, dst: srv, sport: 1, dport: 2 }), WEB + 0, 0);
    expect(outs(r)).toEqual(['0 udp 203.0.113.20:1 > 198.51.100.7:2 ttl=64']);
    const off = new Harness(
      scenarioWith((s) => {
        s.instances[0].sysctls.ipForward = false;
      }),
    );
    r = off.send(buildUdp({ src: app, dst: srv, sport: 1, dport: 2 }), APP, 0);
    expect(r.reason).toBe(DROP_IP_FORWARD_OFF);
    expect(off.conntrack().length).toBe(0);
    expect(readDropCounters(h.shared)[DROP_FRAGMENT]).toBe(1);
  });

  it('TCP: INVALID first packets, loose pickup capped at 300 s, RST before reply deletes, re-open in TIME_WAIT', () => {
    const h = new Harness(loadOpenScenario());
    let r = h.send(buildTcp({ src: app, dst: srv, sport: 1000, dport: 80, flags: F_SYN | F_ACK }), APP, 0);
    expect(r.ct).toBe(CT_INVALID);
    r = h.send(buildTcp({ src: app, dst: srv, sport: 1000, dport: 80, flags: F_FIN }), APP, 0);
    expect(r.ct).toBe(CT_INVALID);
    r = h.send(buildTcp({ src: app, dst: srv, sport: 2000, dport: 80, flags: F_ACK }), APP, 0);
    expect(r.ct).toBe(CT_NEW);
    expect(h.conntrack()[0].timeout).toBe(300);
    expect(h.conntrack()[0].state).toBe('ESTABLISHED');
    r = h.send(buildTcp({ src: app, dst: srv, sport: 3000, dport: 80, flags: F_SYN }), APP, 0);
    r = h.send(buildTcp({ src: srv, dst: eip, sport: 80, dport: 3000, flags: F_RST | F_ACK }), POINT_INTERNET, 1);
    expect(outs(r)).toEqual(['3 tcp 198.51.100.7:80 > 10.0.1.10:3000 R. ttl=63']);
    expect(h.conntrack().filter((e) => e.orig.sport === 3000).length).toBe(0);
    // Full close to TIME_WAIT, then a new SYN re-opens.
    const c = (flags: number, t: number) =>
      h.send(buildTcp({ src: app, dst: srv, sport: 4000, dport: 80, flags }), APP, t);
    const s = (flags: number, t: number) =>
      h.send(buildTcp({ src: srv, dst: eip, sport: 80, dport: 4000, flags }), POINT_INTERNET, t);
    c(F_SYN, 10);
    s(F_SYN | F_ACK, 11);
    c(F_ACK, 12);
    c(F_FIN | F_ACK, 13);
    s(F_FIN | F_ACK, 14);
    c(F_ACK, 15);
    const e = () => h.conntrack().find((x) => x.orig.sport === 4000)!;
    expect(e().state).toBe('TIME_WAIT');
    r = c(F_SYN, 20);
    expect(r.ct).toBe(CT_NEW);
    expect(e().state).toBe('SYN_SENT');
    expect(e().assured).toBe(false);
  });

  it('table full: evicts the oldest non-ASSURED entry; none → DROP_CT_TABLE_FULL', () => {
    const h = new Harness(
      scenarioWith((s) => {
        s.conntrack.max = 3;
      }),
    );
    for (let k = 0; k < 3; k++) h.send(buildUdp({ src: app, dst: srv, sport: 100 + k, dport: 53 }), APP, k);
    h.send(buildUdp({ src: app, dst: srv, sport: 200, dport: 53 }), APP, 10);
    expect(h.conntrack().map((e) => e.orig.sport)).toEqual([101, 102, 200]);
    // Make all ASSURED (TCP handshakes) in a fresh table, then a new flow is dropped.
    const g = new Harness(
      scenarioWith((s) => {
        s.conntrack.max = 2;
      }),
    );
    for (let k = 0; k < 2; k++) {
      g.send(buildTcp({ src: app, dst: srv, sport: 100 + k, dport: 80, flags: F_SYN }), APP, 0);
      g.send(buildTcp({ src: srv, dst: eip, sport: 80, dport: 100 + k, flags: F_SYN | F_ACK }), POINT_INTERNET, 1);
      g.send(buildTcp({ src: app, dst: srv, sport: 100 + k, dport: 80, flags: F_ACK }), APP, 2);
    }
    const r = g.send(buildUdp({ src: app, dst: srv, sport: 9, dport: 53 }), APP, 3);
    expect(r.reason).toBe(DROP_CT_TABLE_FULL);
    // Expired entries do not count: after the ASSURED ones die, there is room.
    const r2 = g.send(buildUdp({ src: app, dst: srv, sport: 9, dport: 53 }), APP, 432000 * 1000 + 10);
    expect(r2.fate).toBe(FATE_DELIVERED);
  });

  it('nat counters count first packets (connections) and their bytes', () => {
    const h = new Harness(loadOpenScenario());
    const f = buildUdp({ src: app, dst: srv, sport: 7, dport: 53 });
    h.send(f, APP, 0);
    h.send(f, APP, 1);
    const post = readNatCounters(h.shared).filter((c) => c.chain === 'POSTROUTING');
    expect(post.find((c) => c.rule === 0)).toMatchObject({ packets: 1, bytes: f.length });
    const pre = readNatCounters(h.shared).find((c) => c.chain === 'PREROUTING' && c.rule === -1)!;
    expect(pre.packets).toBe(1);
  });
});

describe('dataplane: port allocation', () => {
  it('preserves the port; a clash (same remote endpoint) searches 1024-65535, low ports stay low', () => {
    const s = parseScenario(
      SCEN_DNAT.replace(
        'app:\n    subnet: private\n    privateIp: 10.0.1.10',
        'app:\n    subnet: private\n    privateIp: 10.0.1.10\n  app2:\n    subnet: private\n    privateIp: 10.0.1.11',
      ),
      'x.yaml',
    );
    const h = new Harness(s);
    const app2 = ip('10.0.1.11');
    const p2 = 1 + s.instances.findIndex((i) => i.name === 'app2');
    const pApp = 1 + s.instances.findIndex((i) => i.name === 'app');
    let r = h.send(buildUdp({ src: app, dst: srv, sport: 5000, dport: 53 }), pApp, 0);
    expect(outs(r)).toEqual(['0 udp 203.0.113.10:5000 > 198.51.100.7:53 ttl=63']);
    // Different remote: same port is fine (uniqueness is per 5-tuple).
    r = h.send(buildUdp({ src: app2, dst: srv2, sport: 5000, dport: 53 }), p2, 0);
    expect(outs(r)).toEqual(['0 udp 203.0.113.10:5000 > 198.51.100.8:53 ttl=63']);
    // Same remote endpoint from another host: must move.
    r = h.send(buildUdp({ src: app2, dst: srv, sport: 5000, dport: 53 }), p2, 0);
    const pv = new PacketView();
    parseIpv4(r.outputs[0].frame, 0, r.outputs[0].frame.length, pv);
    expect(pv.sport).not.toBe(5000);
    expect(pv.sport).toBeGreaterThanOrEqual(1024);
    r = h.send(buildUdp({ src: app, dst: srv, sport: 700, dport: 53 }), pApp, 0);
    r = h.send(buildUdp({ src: app2, dst: srv, sport: 700, dport: 53 }), p2, 0);
    parseIpv4(r.outputs[0].frame, 0, r.outputs[0].frame.length, pv);
    expect(pv.sport >= 600 && pv.sport <= 1023 && pv.sport !== 700).toBe(true);
    r = h.send(buildUdp({ src: app, dst: srv, sport: 100, dport: 53 }), pApp, 0);
    r = h.send(buildUdp({ src: app2, dst: srv, sport: 100, dport: 53 }), p2, 0);
    parseIpv4(r.outputs[0].frame, 0, r.outputs[0].frame.length, pv);
    expect(pv.sport >= 1 && pv.sport <= 511 && pv.sport !== 100).toBe(true);
    // Mapping reuse (b): app2:5000 to a third remote reuses its existing mapping when free.
    const firstMoved = h.conntrack().find((e) => e.orig.src === app2 && e.orig.sport === 5000 && e.orig.dst === srv)!
      .reply.dport;
    r = h.send(buildUdp({ src: app2, dst: ip('198.51.100.9'), sport: 5000, dport: 53 }), p2, 1);
    parseIpv4(r.outputs[0].frame, 0, r.outputs[0].frame.length, pv);
    expect([5000, firstMoved]).toContain(pv.sport);
  });

  it('exhaustion of a single --to-ports port → DROP_NAT_CLASH, no entry remains', () => {
    const s = parseScenario(
      SCEN_DNAT.replace(
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE',
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -p udp -j MASQUERADE --to-ports 6000',
      ),
      'x.yaml',
    );
    const h = new Harness(s);
    const pApp = 1 + s.instances.findIndex((i) => i.name === 'app');
    let r = h.send(buildUdp({ src: app, dst: srv, sport: 1, dport: 53 }), pApp, 0);
    expect(outs(r)).toEqual(['0 udp 203.0.113.10:6000 > 198.51.100.7:53 ttl=63']);
    r = h.send(buildUdp({ src: app, dst: srv, sport: 2, dport: 53 }), pApp, 0);
    expect(r.reason).toBe(DROP_NAT_CLASH);
    expect(h.conntrack().length).toBe(1);
  });

  it('with two workers a searched port is owned by the worker (its reply dispatches back)', () => {
    const s = parseScenario(
      SCEN_DNAT.replace(
        'app:\n    subnet: private\n    privateIp: 10.0.1.10',
        'app:\n    subnet: private\n    privateIp: 10.0.1.10\n  app2:\n    subnet: private\n    privateIp: 10.0.1.11',
      ),
      'x.yaml',
    );
    const h = new Harness(s, { workers: 2 });
    const app2 = ip('10.0.1.11');
    const p2 = 1 + s.instances.findIndex((i) => i.name === 'app2');
    const pApp = 1 + s.instances.findIndex((i) => i.name === 'app');
    const pv = new PacketView();
    for (let k = 0; k < 20; k++) {
      const sport = 20000 + k;
      h.send(buildUdp({ src: app, dst: srv, sport, dport: 53 }), pApp, 0);
      const f = buildUdp({ src: app2, dst: srv, sport, dport: 53 });
      const w = h.owner(f, p2);
      expect(w).toBe(sport % 2);
      const r = h.send(f, p2, 0);
      parseIpv4(r.outputs[0].frame, 0, r.outputs[0].frame.length, pv);
      expect(pv.sport).not.toBe(sport);
      expect(pv.sport % 2).toBe(w);
      // The reply to the searched port reaches the same worker and is de-NATed.
      const reply = buildUdp({ src: srv, dst: eip, sport: 53, dport: pv.sport });
      expect(h.owner(reply, POINT_INTERNET)).toBe(w);
      const rr = h.send(reply, POINT_INTERNET, 1);
      expect(outs(rr)[0]).toContain(`10.0.1.11:${sport}`);
    }
  });
});

describe('dataplane: dispatch ownership', () => {
  it('DNAT with a port change: inbound :8080 and the reply from :80 reach the same worker', () => {
    const s = parseScenario(SCEN_DNAT, 'x.yaml');
    const h = new Harness(s, { workers: 2 });
    const pApp = 1 + s.instances.findIndex((i) => i.name === 'app');
    for (let cport = 30000; cport < 30016; cport++) {
      const syn = buildTcp({ src: srv, dst: eip, sport: cport, dport: 8080, flags: F_SYN });
      const w = h.owner(syn, POINT_INTERNET);
      let r = h.send(syn, POINT_INTERNET, 0);
      expect(outs(r)).toEqual([`${pApp} tcp 198.51.100.7:${cport} > 10.0.1.10:80 S ttl=63`]);
      const sa = buildTcp({ src: app, dst: srv, sport: 80, dport: cport, flags: F_SYN | F_ACK });
      expect(h.owner(sa, pApp)).toBe(w);
      r = h.send(sa, pApp, 1);
      expect(outs(r)).toEqual([`0 tcp 203.0.113.10:8080 > 198.51.100.7:${cport} S. ttl=63`]);
      // An ICMP error from the client side about the reply dispatches the same way.
      const err = buildIcmpError({ src: srv, dst: eip, type: 3, code: 1, quoted: r.outputs[0].frame });
      expect(h.owner(err, POINT_INTERNET)).toBe(w);
      r = h.send(err, POINT_INTERNET, 2);
      expect(r.ct).toBe(CT_RELATED);
      expect(outs(r)[0]).toContain(`[tcp 10.0.1.10:80 > 198.51.100.7:${cport}]`);
    }
  });

  it('outbound by source port, replies and ICMP errors by the NAT-side port', () => {
    const s = loadOpenScenario();
    const h = new Harness(s, { workers: 3 });
    for (let p = 1000; p < 1012; p++) {
      const f = buildUdp({ src: app, dst: srv, sport: p, dport: 53 });
      expect(h.owner(f, APP)).toBe(p % 3);
      const out = h.send(f, APP, 0).outputs[0].frame;
      expect(h.owner(buildUdp({ src: srv, dst: eip, sport: 53, dport: p }), POINT_INTERNET)).toBe(p % 3);
      expect(h.owner(buildIcmpError({ src: srv2, dst: eip, type: 3, code: 3, quoted: out }), POINT_INTERNET)).toBe(
        p % 3,
      );
      expect(h.owner(buildIcmpEcho({ src: app, dst: srv, id: p }), APP)).toBe(p % 3);
      expect(h.owner(buildIcmpEcho({ src: srv, dst: eip, id: p, reply: true }), POINT_INTERNET)).toBe(p % 3);
    }
  });
});

describe('dataplane: tables', () => {
  it('prefault commits one word per page of every session table and leaves them empty; the tables work alike', () => {
    const sc = loadOpenScenario();
    const a = createCoreShared(sc, { workers: 2, seed: 3, capacity: 5000, prefault: true });
    const b = createCoreShared(sc, { workers: 2, seed: 3, capacity: 5000 });
    let pages = 0;
    for (const name of ['sessions', 'flow', 'bysrc', 'chain', 'tcpw']) {
      pages += Math.ceil(a.sabs[name].byteLength / 4096);
      expect(new Uint32Array(a.sabs[name]).every((v) => v === 0)).toBe(true);
    }
    expect(prefaultTables(b)).toBe(pages);
    for (const name of Object.keys(a.sabs))
      expect(Buffer.from(a.sabs[name]).equals(Buffer.from(b.sabs[name])), name).toBe(true);
  });

  it('flow table: insert, lookup, delete (backward shift keeps every other key reachable)', () => {
    const shared = createCoreShared(loadOpenScenario(), { workers: 1, seed: 1, capacity: 64 });
    const t = new Tables(shared, 0);
    const keys: number[][] = [];
    for (let i = 0; i < 64; i++) {
      const o = t.rec(i);
      t.ses[o] = 1000 + i;
      t.ses[o + 1] = 7;
      t.ses[o + 2] = i;
      t.ses[o + 3] = 7;
      t.ses[o + 4] = 2000 + i;
      t.ses[o + 5] = i << 16;
      t.ses[o + 6] = 17 | (1 << 18);
      t.insertRef(t.hashTuple(0, 17, 1000 + i, 7, i), i, 0);
      t.insertRef(t.hashTuple(0, 17, 7, 2000 + i, i << 16), i, 1);
      keys.push([i]);
    }
    for (let i = 0; i < 64; i++) {
      expect(t.lookup(0, 17, 1000 + i, 7, i)).toBe(i);
      expect(t.hitKind).toBe(0);
      expect(t.lookup(0, 17, 7, 2000 + i, i << 16)).toBe(i);
      expect(t.hitKind).toBe(1);
    }
    expect(t.lookup(0, 6, 1000, 7, 0)).toBe(-1); // other protocol
    for (let i = 0; i < 64; i += 2) {
      t.removeRef(i, 0);
      t.removeRef(i, 1);
    }
    for (let i = 0; i < 64; i++) {
      expect(t.lookup(0, 17, 1000 + i, 7, i)).toBe(i % 2 ? i : -1);
      expect(t.lookup(0, 17, 7, 2000 + i, i << 16)).toBe(i % 2 ? i : -1);
    }
    expect(t.flow.filter((v) => v !== 0).length).toBe(64);
  });

  it('flow table: probes are bounded by the table size — lookups of absent keys end even in a full table', () => {
    const shared = createCoreShared(loadOpenScenario(), { workers: 1, seed: 1, capacity: 8 });
    const t = new Tables(shared, 0);
    // Beyond its sizing (FLOW_KEYS refs per session) the table fills up completely: every slot is
    // taken, the next insert is an internal error (never a silent refusal), lookups still end.
    for (let i = 0; i < t.nSlots; i++) {
      const o = t.rec(i % 8);
      t.ses[o + 6] = 17 | (1 << 18);
      t.insertRef(t.hashTuple(0, 17, 5000 + i, 7, i), i % 8, 0);
    }
    expect(t.flow.filter((v) => v !== 0).length).toBe(t.nSlots);
    expect(() => t.insertRef(t.hashTuple(0, 17, 1, 2, 3), 0, 0)).toThrow(/no empty slot/);
    expect(t.lookup(0, 17, 1, 2, 3)).toBe(-1);
  });

  it('expiry: a reply at the expiry ms no longer matches (dead iff now >= expiry)', () => {
    const h = new Harness(loadOpenScenario());
    h.send(buildUdp({ src: app, dst: srv, sport: 5353, dport: 53 }), APP, 1000);
    const r = h.send(buildUdp({ src: srv, dst: eip, sport: 53, dport: 5353 }), POINT_INTERNET, 31000);
    expect(r.ct).toBe(CT_NEW);
    expect(outs(r)).toEqual(['1 udp 198.51.100.7:53 > 10.0.0.10:5353 ttl=64']);
  });

  it('memory: bytes per session (session record + flow slots + bysource chain links + TCP window words)', () => {
    const shared = createCoreShared(loadOpenScenario(), { workers: 1, seed: 1 });
    const b = sharedBytesPerSession(shared);
    // 64-byte record (one cache line) + 3 flow slots of 4 bytes at load 0.75 + 2 chain links of 4
    // bytes + 16 TCP window words of 4 bytes (issue 15 K4: tcp_in_window's per-direction state, one
    // cache line).
    expect(b).toBeGreaterThan(128);
    expect(b).toBeLessThan(153);
  });

  it('expiry: the wheel releases dead sessions incrementally (advance), counts stay exact', () => {
    const h = new Harness(loadOpenScenario());
    for (let k = 0; k < 50; k++) h.send(buildUdp({ src: app, dst: srv, sport: 3000 + k, dport: 53 }), APP, k);
    const ctl = new Int32Array(h.shared.sabs.ctl);
    expect(ctl[5]).toBe(50);
    h.dps[0].advance(30024);
    expect(ctl[5]).toBeGreaterThan(0);
    expect(ctl[5]).toBeLessThan(50);
    expect(h.conntrack(30024).length).toBe(25);
    h.dps[0].advance(100000);
    expect(ctl[5]).toBe(0);
    expect(h.conntrack(100000).length).toBe(0);
  });
});

// Keep the import list honest (fixChecksums is used by builders indirectly in other tests).
void fixChecksums;
void REASON_NONE;
void natIp;
void webEip;
void NAT;
void DROP_IGW_NO_PUBLIC_IP;

describe("dataplane: the 'line' layout (key, rewrite and expiry in one 32-byte entry)", () => {
  const tcp = (from: 'app' | 'srv', flags: number, payload?: Uint8Array) =>
    from === 'app'
      ? buildTcp({ src: app, dst: srv, sport: 40000, dport: 443, flags, payload })
      : buildTcp({ src: srv, dst: eip, sport: 443, dport: 40000, flags, payload });
  const entries = (h: Harness) => {
    const t = h.dps[0].tables;
    // The built-in scenario's one NAT instance is slot 0; orig key = the app's tuple, reply key = the server's to the NAT.
    const o = t.findEntry(0, PROTO_TCP, app, srv, ((40000 << 16) | 443) >>> 0);
    const r = t.findEntry(0, PROTO_TCP, srv, natIp, (443 << 16) | 40000);
    expect(o).toBeGreaterThanOrEqual(0);
    expect(r).toBeGreaterThanOrEqual(0);
    return { t, o, r };
  };

  it('an ESTABLISHED session replays from its entries; the fast path refreshes only their expiry, which the dump and the wheel fold in; a FIN takes the session back', () => {
    const h = new Harness(loadOpenScenario(), { layout: 'line' });
    h.send(tcp('app', F_SYN), APP, 0);
    h.send(tcp('srv', F_SYN | F_ACK), POINT_INTERNET, 10);
    h.send(tcp('app', F_ACK), APP, 20);
    const { t, o, r } = entries(h);
    const fl = t.flow;
    // Synced from the record at the end of the slow packet: orig rewrites the source (MASQUERADE
    // + the IGW's EIP), reply the destination (de-NAT to the app).
    expect(fl[o + FE_META] & (FE_FAST | FE_SIDE_DST)).toBe(FE_FAST);
    expect([fl[o + FE_ADDR], fl[o + FE_PORT]]).toEqual([eip, 40000]);
    expect(fl[r + FE_META] & (FE_FAST | FE_SIDE_DST)).toBe(FE_FAST | FE_SIDE_DST);
    expect([fl[r + FE_ADDR], fl[r + FE_PORT]]).toEqual([app, 40000]);
    const rec = t.rec((fl[o] & t.refMask) >>> 2);
    const recExp = t.ses[rec + S_EXPIRY];
    const fast0 = h.fast;
    const at = 600_000; // 10 min later
    // Pure ACKs: a data segment would leave data unacknowledged, whose shorter timeout (window
    // tracking, issue 15 K4) the line layout's entries cannot take: it would go to the slow path.
    let res = h.send(tcp('app', F_ACK), APP, at);
    expect(outs(res)).toEqual(['0 tcp 203.0.113.10:40000 > 198.51.100.7:443 . ttl=63']);
    expect(checksOk(res.outputs[0].frame)).toBe(true);
    res = h.send(tcp('srv', F_ACK), POINT_INTERNET, at + 1);
    expect(outs(res)).toEqual(['3 tcp 198.51.100.7:443 > 10.0.1.10:40000 . ttl=63']);
    expect(checksOk(res.outputs[0].frame)).toBe(true);
    expect(h.fast - fast0).toBe(2);
    // Only the entries' copies moved; the record still holds the slow path's expiry.
    expect(t.ses[rec + S_EXPIRY]).toBe(recExp);
    expect(fl[o + FE_EXPIRY]).toBe(t.ses[rec + S_EXPIRY] + at - 20);
    // Past the record's expiry but not the entries': the dump and the wheel see the later one.
    const later = recExp + 1000;
    h.dps[0].advance(later);
    const ct = h.conntrack(later);
    expect(ct.length).toBe(1);
    expect(ct[0].state).toBe('ESTABLISHED');
    // A FIN goes to the slow path, which takes the session over: its entries lose FE_FAST.
    res = h.send(tcp('app', F_FIN | F_ACK), APP, later + 1);
    expect(res.fate).toBe(FATE_DELIVERED);
    expect(h.conntrack(later + 1)[0].state).toBe('FIN_WAIT');
    const e2 = entries(h);
    expect(e2.t.flow[e2.o + FE_META] & FE_FAST).toBe(0);
    expect(e2.t.flow[e2.r + FE_META] & FE_FAST).toBe(0);
  });

  it('memory per session: the 32-byte entries of two keys at load 0.75, the bysource keys apart', () => {
    const line = sharedBytesPerSession(createCoreShared(loadOpenScenario(), { workers: 1, seed: 1, layout: 'line' }));
    // 64 B record + 2 × 32 B / 0.75 + 4 B / 0.75 bysource slot + 8 B chain links + 64 B of TCP
    // window words (issue 15 K4).
    expect(line).toBeGreaterThan(226);
    expect(line).toBeLessThan(228);
  });
});
