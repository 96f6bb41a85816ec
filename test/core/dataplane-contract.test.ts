// Regression tests for differences the model-vs-core fuzzer found after the contract
// (docs/semantics.md) was updated: fragments, the IGW's ICMP error patching and hairpin, the
// redirect drop, TCP re-open/ignore/re-sync/challenge-ACK/simultaneous open, table-full order and
// classification, self-inverse tuples, inner fragments. Each test names the fuzz seed that found it
// where there is one (`natlab fuzz --engines model,core --seed S --run R`).

import { describe, expect, it } from 'vitest';
import { loadOpenScenario, parseScenario } from '../../src/scenario/index.ts';
import {
  buildIcmpError,
  buildIpv4,
  buildTcp,
  buildUdp,
  describePacket,
  parseIpv4Addr as ip,
  F_ACK,
  F_FIN,
  F_RST,
  F_SYN,
  PacketView,
  parseIpv4,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NONE,
  CT_RELATED,
  DROP_CT_TABLE_FULL,
  DROP_FRAGMENT,
  DROP_ICMP_REDIRECT_NAT,
  DROP_IGW_UNKNOWN_DST,
  DROP_NAT_CLASH,
  DROP_MARTIAN_SOURCE,
  DROP_MULTICAST,
  FATE_DELIVERED,
} from '../../src/spec/reasons.ts';
import { NF_NAT_RANGE_PROTO_SPECIFIED, POINT_INTERNET, type Scenario } from '../../src/spec/scenario.ts';
import { igwMapOf, igwTranslate } from '../../src/oracle/igw.ts';
import { Harness } from './dataplane-harness.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { NAT, WEB, APP, app, natIp, web, eip, webEip } from '../helpers/builtin.ts';

const srv = ip('198.51.100.7');
const router = ip('198.51.100.254');

function outs(r: { outputs: { egress: number; frame: Uint8Array }[] }): string[] {
  return r.outputs.map((o) => `${o.egress} ${describePacket(o.frame, 0, o.frame.length)}`);
}
function hex(f: Uint8Array): string {
  return Buffer.from(f).toString('hex');
}
function builtin(edit?: (s: Scenario) => void): Scenario {
  const s = loadOpenScenario();
  edit?.(s);
  return s;
}

describe('dataplane: contract regressions (model vs core fuzz)', () => {
  it('fragments travel the VPC: IGW unknown dst, delivered to a plain host, dropped only by a NAT instance', () => {
    const h = new Harness(builtin());
    const frag = (dst: number, fragOff: number, mf: boolean) =>
      buildIpv4({ src: srv, dst, proto: 17, payload: new Uint8Array(24), mf, fragOff });
    // From the internet to a non-EIP: the IGW drops it (not "fragment").
    let r = h.send(frag(ip('203.0.113.99'), 8, false), POINT_INTERNET, 0);
    expect(r.reason).toBe(DROP_IGW_UNKNOWN_DST);
    // To the plain host's EIP: addresses rewritten, L4 of a non-first fragment untouched.
    const f = frag(webEip, 8, false);
    r = h.send(f, POINT_INTERNET, 0);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.outputs[0].egress).toBe(WEB);
    expect(hex(r.outputs[0].frame)).toBe(hex(igwTranslate(igwMapOf(h.scenario), f, false).frame));
    // A first fragment (MF) to the NAT instance: nf_defrag holds it, no conntrack (ct NONE).
    r = h.send(frag(eip, 0, true), POINT_INTERNET, 0);
    expect(r.reason).toBe(DROP_FRAGMENT);
    expect(r.ct).toBe(CT_NONE);
    expect(h.conntrack()).toHaveLength(0);
  });

  it('IGW inbound ICMP error quoting a whole TCP header: inner TCP checksum and ICMP checksum patched like the oracle (seed 587329888 run 3)', () => {
    const h = new Harness(builtin());
    const quoted = buildTcp({ src: webEip, dst: srv, sport: 32768, dport: 53, flags: F_ACK, seq: 5, ack: 9 });
    for (const corrupt of [false, true]) {
      const err = buildIcmpError({ src: router, dst: webEip, type: 3, code: 3, quoted, quoteLen: quoted.length });
      if (corrupt) err[22] ^= 0x11; // a wrong ICMP checksum stays wrong by the same amount
      const r = h.send(err, POINT_INTERNET, 0);
      expect(r.outputs[0].egress).toBe(WEB);
      expect(hex(r.outputs[0].frame)).toBe(hex(igwTranslate(igwMapOf(h.scenario), err, false).frame));
    }
  });

  it('IGW outbound ICMP error quoting a whole TCP header: the same patching on the way out', () => {
    const h = new Harness(builtin());
    const quoted = buildTcp({ src: srv, dst: web, sport: 443, dport: 40000, flags: F_ACK, seq: 5, ack: 9 });
    const err = buildIcmpError({ src: web, dst: srv, type: 3, code: 3, quoted, quoteLen: quoted.length });
    const r = h.send(err, WEB, 0);
    expect(r.outputs[0].egress).toBe(POINT_INTERNET);
    expect(hex(r.outputs[0].frame)).toBe(hex(igwTranslate(igwMapOf(h.scenario), err, true).frame));
    const pv = new PacketView();
    parseIpv4(r.outputs[0].frame, 0, r.outputs[0].frame.length, pv);
    expect(verifyL4Checksum(r.outputs[0].frame, pv)).toBe(true);
  });

  it("IGW hairpin: a packet to one of the VPC's own EIPs comes straight back in", () => {
    const h = new Harness(builtin());
    const r = h.send(buildUdp({ src: web, dst: webEip, sport: 1000, dport: 2000 }), WEB, 0);
    expect(outs(r)).toEqual(['2 udp 203.0.113.20:1000 > 10.0.0.20:2000 ttl=64']);
    const pv = new PacketView();
    const f = r.outputs[0].frame;
    parseIpv4(f, 0, f.length, pv);
    expect(verifyIpv4Header(f, pv) && verifyL4Checksum(f, pv)).toBe(true);
  });

  it('a RELATED redirect about a NATed entry is dropped DROP_ICMP_REDIRECT_NAT', () => {
    const h = new Harness(builtin());
    const out = h.send(buildUdp({ src: app, dst: srv, sport: 4000, dport: 53 }), APP, 0).outputs[0].frame;
    const r = h.send(
      buildIcmpError({ src: router, dst: eip, type: 5, code: 1, quoted: out, rest: 0x01020304 }),
      POINT_INTERNET,
      1,
    );
    expect(r.ct).toBe(CT_RELATED);
    expect(r.reason).toBe(DROP_ICMP_REDIRECT_NAT);
  });

  it('an ICMP error quoting a non-first fragment is INVALID', () => {
    const h = new Harness(builtin());
    const out = h.send(buildUdp({ src: app, dst: srv, sport: 4000, dport: 53 }), APP, 0).outputs[0].frame;
    const q = out.slice();
    q[6] = 0;
    q[7] = 1; // fragment offset 8
    const r = h.send(buildIcmpError({ src: router, dst: eip, type: 3, code: 3, quoted: q }), POINT_INTERNET, 1);
    expect(r.ct).toBe(CT_INVALID);
  });

  describe('TCP re-open, ignore, re-sync (nf_conntrack_tcp_packet)', () => {
    const mk = () => {
      const h = new Harness(builtin());
      const c = (flags: number, t: number, seq = 0, ack = 0) =>
        h.send(buildTcp({ src: app, dst: srv, sport: 4000, dport: 80, flags, seq, ack }), APP, t);
      const s = (flags: number, t: number, seq = 0, ack = 0) =>
        h.send(buildTcp({ src: srv, dst: eip, sport: 80, dport: 4000, flags, seq, ack }), POINT_INTERNET, t);
      const st = () => h.conntrack().find((x) => x.orig.sport === 4000)?.state;
      c(F_SYN, 10, 100);
      s(F_SYN | F_ACK, 11, 500, 101);
      c(F_ACK, 12, 101, 501);
      return { h, c, s, st };
    };

    it("a SYN in CLOSE after the peer's RST is ignored; after our own RST it re-opens", () => {
      const { c, s, st } = mk();
      s(F_RST | F_ACK, 20, 501); // exactly the client's ACK: an RST that closes
      expect(st()).toBe('CLOSE');
      let r = c(F_SYN, 21, 1000);
      expect(r.ct).toBe(CT_ESTABLISHED); // ignored: accepted and NATed, state unchanged
      expect(r.fate).toBe(FATE_DELIVERED);
      expect(st()).toBe('CLOSE');
      c(F_RST, 22);
      r = c(F_SYN, 23, 2000);
      expect(st()).toBe('SYN_SENT'); // re-opened: a new entry
      expect(r.fate).toBe(FATE_DELIVERED);
    });

    it('a SYN/ACK answering an ignored SYN re-syncs the entry to SYN_RECV', () => {
      const { c, s, st } = mk();
      expect(st()).toBe('ESTABLISHED');
      c(F_SYN, 20, 7000); // ignored in ESTABLISHED
      s(F_SYN | F_ACK, 21, 9000, 6000); // wrong ack: ignored too
      expect(st()).toBe('ESTABLISHED');
      c(F_SYN, 22, 7000);
      s(F_SYN | F_ACK, 23, 9000, 7001);
      expect(st()).toBe('SYN_RECV');
    });

    it('RFC 5961: the REPLY ACK after a SYN ignored in LAST_ACK does not close', () => {
      const { c, s, st } = mk();
      c(F_FIN | F_ACK, 20);
      s(F_FIN | F_ACK, 21);
      expect(st()).toBe('LAST_ACK');
      c(F_SYN, 22, 5000);
      s(F_ACK, 23);
      expect(st()).toBe('LAST_ACK');
      s(F_ACK, 24);
      expect(st()).toBe('TIME_WAIT');
    });

    it('simultaneous open: a REPLY ACK in SYN_RECV goes to ESTABLISHED', () => {
      const h = new Harness(builtin());
      const c = (flags: number, t: number) =>
        h.send(buildTcp({ src: app, dst: srv, sport: 4001, dport: 80, flags }), APP, t);
      const s = (flags: number, t: number) =>
        h.send(buildTcp({ src: srv, dst: eip, sport: 80, dport: 4001, flags }), POINT_INTERNET, t);
      const st = () => h.conntrack().find((x) => x.orig.sport === 4001)?.state;
      c(F_SYN, 1);
      s(F_SYN, 2);
      expect(st()).toBe('SYN_SENT2');
      c(F_SYN | F_ACK, 3);
      expect(st()).toBe('SYN_RECV');
      s(F_ACK, 4);
      expect(st()).toBe('ESTABLISHED');
    });

    it('the fast path keeps last_dir/last_index: an ESTABLISHED ACK after an ignored SYN prevents the re-sync', () => {
      const { h, c, s, st } = mk();
      c(F_ACK, 13, 101, 501);
      s(F_ACK, 14, 501, 101);
      c(F_ACK, 15, 101, 501); // ASSURED, fast path
      c(F_SYN, 20, 7000); // ignored
      const fast = h.fast;
      s(F_ACK, 21, 501, 101); // fast path: last = REPLY ACK
      expect(h.fast).toBe(fast + 1);
      s(F_SYN | F_ACK, 22, 9000, 7001);
      expect(st()).toBe('ESTABLISHED');
    });
  });

  it('table full: the drop is ct INVALID; a truncated TCP header still allocates (early drop) (seed 587329888 run 27)', () => {
    const h = new Harness(
      builtin((s) => {
        s.conntrack.max = 1;
      }),
    );
    h.send(buildUdp({ src: app, dst: srv, sport: 5000, dport: 53 }), APP, 0);
    expect(h.conntrack()).toHaveLength(1);
    const t = buildTcp({ src: app, dst: srv, sport: 40000, dport: 80, flags: F_SYN }).slice(0, 30);
    t[2] = 0;
    t[3] = 30;
    t[10] = 0;
    t[11] = 0;
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (t[i] << 8) | t[i + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    t[10] = (~s >>> 8) & 0xff;
    t[11] = ~s & 0xff;
    let r = h.send(t, APP, 1);
    expect(r.ct).toBe(CT_INVALID);
    expect(h.conntrack()).toHaveLength(0); // the unreplied UDP entry was early-dropped
    // An ASSURED entry cannot be evicted: the table-full drop has no conntrack: INVALID.
    h.send(buildTcp({ src: app, dst: srv, sport: 1, dport: 80, flags: F_SYN }), APP, 2);
    h.send(buildTcp({ src: srv, dst: eip, sport: 80, dport: 1, flags: F_SYN | F_ACK }), POINT_INTERNET, 3);
    h.send(buildTcp({ src: app, dst: srv, sport: 1, dport: 80, flags: F_ACK }), APP, 4);
    r = h.send(buildTcp({ src: srv, dst: eip, sport: 53, dport: 600, flags: F_SYN | F_ACK }), POINT_INTERNET, 5);
    expect(r.reason).toBe(DROP_CT_TABLE_FULL);
    expect(r.ct).toBe(CT_INVALID);
  });

  it('a self-inverse tuple (same address and port both ends) clashes at confirm (seed 587329888 run 82)', () => {
    const h = new Harness(builtin());
    // To the NAT instance itself from its own address: since issue 15 (D2) a martian source,
    // dropped by routing before the INPUT confirm would see the clash; no entry either way.
    const r = h.send(buildTcp({ src: natIp, dst: natIp, sport: 80, dport: 80, flags: F_ACK }), NAT, 0);
    expect(r.reason).toBe(DROP_MARTIAN_SOURCE);
    expect(h.conntrack()).toHaveLength(0);
    // Forwarded (null binding: no POSTROUTING rule), the self-inverse tuple still clashes at confirm.
    const f = new Harness(
      builtin((x) => {
        x.instances[APP - 1].sourceDestCheck = false;
        x.instances[NAT - 1].nat!.chains.POSTROUTING = [];
      }),
    );
    const g = f.send(buildTcp({ src: srv, dst: srv, sport: 80, dport: 80, flags: F_ACK }), APP, 0);
    expect(g.reason).toBe(DROP_NAT_CLASH);
    expect(f.conntrack()).toHaveLength(0);
  });

  it('issue 15 D1: the RST sequence check, with and without nf_conntrack_tcp_ignore_invalid_rst, as the model', () => {
    for (const ignore of [false, true]) {
      for (const rstSeq of [4000, 5001, 6000]) {
        const s = builtin((x) => {
          x.conntrack.tcpIgnoreInvalidRst = ignore;
        });
        const h = new Harness(s);
        const m = createModelEngine(s, { seed: 1 });
        const pkts: [Uint8Array, number][] = [
          [buildTcp({ src: app, dst: srv, sport: 4100, dport: 443, flags: F_SYN, seq: 1000 }), APP],
          [
            buildTcp({ src: srv, dst: eip, sport: 443, dport: 4100, flags: F_SYN | F_ACK, seq: 5000, ack: 1001 }),
            POINT_INTERNET,
          ],
          [buildTcp({ src: app, dst: srv, sport: 4100, dport: 443, flags: F_ACK, seq: 1001, ack: 5001 }), APP],
          [buildTcp({ src: app, dst: srv, sport: 4100, dport: 443, flags: F_ACK, seq: 1001, ack: 5001 }), APP],
          [buildTcp({ src: srv, dst: eip, sport: 443, dport: 4100, flags: F_RST, seq: rstSeq }), POINT_INTERNET],
        ];
        pkts.forEach(([f, at], k) => {
          const a = h.send(f, at, k);
          const b = m.processOne({ timeUs: k * 1000, ingress: at, frame: f });
          expect([a.fate, a.reason, a.ct, outs(a)], `ignore=${ignore} seq=${rstSeq} packet ${k}`).toEqual([
            b.fate,
            b.reason,
            b.ct,
            outs(b),
          ]);
        });
        const state = h.conntrack()[0].state;
        expect(state).toBe(m.conntrackSync()[0].state);
        expect(state).toBe(rstSeq === 5001 ? 'CLOSE' : 'ESTABLISHED');
      }
    }
  });

  it('issue 15 D2/D3: a masqueraded packet routed back to the NAT is a martian source (one entry); multicast is not routed', () => {
    const h = new Harness(
      builtin((x) => {
        const pub = x.routeTables[x.subnets[x.instances[NAT - 1].subnet].routeTable];
        pub.routes.push({ dest: { addr: ip('198.51.100.0'), len: 24 }, target: 'eni', instance: NAT - 1 });
      }),
    );
    const r = h.send(buildUdp({ src: app, dst: srv, sport: 4000, dport: 53 }), APP, 0);
    expect(r.reason).toBe(DROP_MARTIAN_SOURCE);
    expect(h.conntrack()).toHaveLength(1);
    const m = h.send(buildUdp({ src: app, dst: ip('224.0.0.251'), sport: 5353, dport: 5353 }), APP, 1);
    expect(m).toMatchObject({ reason: DROP_MULTICAST, ct: CT_NONE, outputs: [] });
    const b = h.send(buildUdp({ src: app, dst: ip('255.255.255.255'), sport: 68, dport: 67 }), APP, 2);
    expect(b.reason).toBe(DROP_MULTICAST);
    expect(h.conntrack()).toHaveLength(1);
  });

  it("2 workers, DNAT + MASQUERADE of the same flow: the target's reply and its ICMP error reach the session's worker (seed 1353222949 run 27, --workers 2)", () => {
    const s = parseScenario(
      `
name: dnat-masq
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
      -A POSTROUTING -o eth0 -j MASQUERADE
      COMMIT
  app:
    subnet: private
    privateIp: 10.0.1.10
internet: { hosts: [ 198.51.100.0/24 ] }
`,
      'x.yaml',
    );
    const h = new Harness(s, { workers: 2 });
    const pApp = 1 + s.instances.findIndex((i) => i.name === 'app');
    for (let cport = 32768; cport < 32776; cport++) {
      const syn = buildTcp({ src: srv, dst: eip, sport: cport, dport: 8080, flags: F_SYN });
      const w = h.owner(syn, POINT_INTERNET);
      let r = h.send(syn, POINT_INTERNET, 0);
      expect(outs(r)).toEqual([`${pApp} tcp 10.0.0.10:${cport} > 10.0.1.10:80 S ttl=63`]);
      const err = buildIcmpError({ src: app, dst: natIp, type: 3, code: 3, quoted: r.outputs[0].frame });
      expect(h.owner(err, pApp)).toBe(w);
      r = h.send(err, pApp, 1);
      expect(r.ct).toBe(CT_RELATED);
      expect(outs(r)).toEqual([
        `0 icmp 203.0.113.10 > 198.51.100.7 unreachable port [tcp 198.51.100.7:${cport} > 203.0.113.10:8080] ttl=63`,
      ]);
      const sa = buildTcp({ src: app, dst: natIp, sport: 80, dport: cport, flags: F_SYN | F_ACK });
      expect(h.owner(sa, pApp)).toBe(w);
      r = h.send(sa, pApp, 2);
      expect(outs(r)).toEqual([`0 tcp 203.0.113.10:8080 > 198.51.100.7:${cport} S. ttl=63`]);
    }
  });

  it("2 workers: a port search that ends on another worker's port is a NAT clash (no half-owned session) (seed 975155669 run 8, --workers 2)", () => {
    const s = builtin((x) => {
      const t = x.instances[0].nat!.chains.POSTROUTING[0].target;
      t.portLo = 1026;
      t.portHi = 1027;
      t.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
    });
    const h = new Harness(s, { workers: 2 });
    const res = [];
    for (let sport = 40000; sport < 40004; sport++) {
      const f = buildUdp({ src: app, dst: srv, sport, dport: 53 });
      const w = h.owner(f, APP);
      const r = h.send(f, APP, 0);
      if (r.fate === FATE_DELIVERED) {
        const out = r.outputs[0].frame;
        const port = (out[20] << 8) | out[21];
        // The reply to the chosen port dispatches back to the session's worker.
        expect(h.owner(buildUdp({ src: srv, dst: eip, sport: 53, dport: port }), POINT_INTERNET)).toBe(w);
        res.push(port);
      } else {
        expect(r.reason).toBe(DROP_NAT_CLASH);
        res.push(0);
      }
    }
    // Each worker owns one of the two ports: exactly two flows get one, two clash.
    expect(res.filter((p) => p !== 0).sort()).toEqual([1026, 1027]);
    expect(h.conntrack()).toHaveLength(2);
  });

  it('get_unique_tuple (b): the newest same-source mapping *in range* is reused, skipping newer ones out of range', () => {
    const s = parseScenario(
      `
name: bysource
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
      -A POSTROUTING -d 198.51.100.2/31 -p udp -j MASQUERADE --to-ports 2000-2003
      -A POSTROUTING -d 198.51.100.4 -p udp -j MASQUERADE --to-ports 3000-3003
      COMMIT
  app:
    subnet: private
    privateIp: 10.0.1.10
internet: { hosts: [ 198.51.100.0/24 ] }
`,
      'x.yaml',
    );
    for (let seed = 1; seed <= 8; seed++) {
      const h = new Harness(s, { seed });
      const port = (dst: string, t: number) => {
        const r = h.send(
          buildUdp({ src: app, dst: ip(dst), sport: 5000, dport: 53 }),
          1 + s.instances.findIndex((i) => i.name === 'app'),
          t,
        );
        expect(r.reason, dst).toBe(0);
        const f = r.outputs[0].frame;
        return (f[20] << 8) | f[21];
      };
      const p1 = port('198.51.100.2', 0);
      expect(p1).toBeGreaterThanOrEqual(2000);
      expect(p1).toBeLessThanOrEqual(2003);
      const p2 = port('198.51.100.4', 1); // newest mapping, out of the next flow's range
      expect(p2).toBeGreaterThanOrEqual(3000);
      expect(port('198.51.100.3', 2)).toBe(p1); // the older, in-range mapping is reused
    }
  });
});
