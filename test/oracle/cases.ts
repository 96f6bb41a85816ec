// The scenarios of issue 8's model-vs-kernel list, as data: a scenario variant of the built-in
// one, the input packets, and an optional final advance. cases.test.ts runs them through the
// kernel and asserts what Linux does; the differential suite can run the same cases through the
// model and compare (ignore `check`, which is kernel-specific).
import {
  compileScenarioObject,
  loadOpenScenario,
  loadScenario,
  parseNatTable,
  scenarioToObject,
} from '../../src/scenario/index.ts';
import { parseFilterTable } from '../../src/scenario/iptables-filter.ts';
import { parseMangleTable } from '../../src/scenario/iptables-mangle.ts';
import {
  buildIcmpEcho,
  buildIcmpError,
  buildIcmpQuery,
  ICMP_TIMESTAMP,
  buildTcp,
  buildUdp,
  fixChecksums,
  parseIpv4Addr as A,
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  ICMP_DEST_UNREACH,
  ICMP_HOST_UNREACH,
  ICMP_PORT_UNREACH,
} from '../../src/packet/index.ts';
import type { InputPacket } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import type { TimelineAction } from '../../src/spec/timeline.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';

export interface CaseRun {
  results: Array<{ fate: number; reason: number; ct: number; outputs: Array<{ egress: number; frame: Uint8Array }> }>;
  conntrack: Array<{
    instance: number;
    proto: number;
    state: string;
    orig: { src: number; dst: number; sport: number; dport: number };
    reply: { src: number; dst: number; sport: number; dport: number };
    assured: boolean;
    seenReply: boolean;
  }>;
  counters: Array<{ instance: number; chain: string; rule: number; packets: number; bytes: number }>;
}

export interface NatCase {
  name: string;
  scenario: Scenario;
  inputs: InputPacket[];
  /** Virtual time to advance to after the inputs (conntrack expiry cases). */
  advanceToUs?: number;
  /** Inputs processed after the advance. */
  after?: InputPacket[];
  /** Why the outcome depends on the real time between packets (the fast-path comparison skips it). */
  realTime?: string;
  /** Mid-run rule changes (Engine.setFilterRules): `scenario`'s rules apply from input `at` on. */
  filters?: Array<{ at: number; scenario: Scenario }>;
}

export const BASE = loadOpenScenario();
export const idx = (s: Scenario, n: string): number => s.instances.findIndex((i) => i.name === n);
export const NAT = idx(BASE, 'nat');
export const APP = instancePoint(idx(BASE, 'app'));
export const WEB = instancePoint(idx(BASE, 'web'));
export const NET = POINT_INTERNET;
export const APP_IP = A('10.0.1.10');
export const APP2_IP = A('10.0.1.11');
export const NAT_IP = A('10.0.0.10');
export const NAT_EIP = A('203.0.113.10');
export const WEB_IP = A('10.0.0.20');
export const WEB_EIP = A('203.0.113.20');
export const SRV = A('198.51.100.7');
export const ROUTER_FAR = A('192.0.2.254');

export const NATB_IP = A('10.0.0.11');
export const NATB_EIP = A('203.0.113.11');

/**
 * The built-in with a standby NAT instance natb (nat's twin) and a timeline; an instance index of
 * -1 in an event means natb.
 */
function haVariant(events: Array<{ at: number; action: TimelineAction }>): Scenario {
  const s = variant();
  const nat = s.instances[idx(s, 'nat')];
  s.instances.push({ ...structuredClone(nat), name: 'natb', privateIp: NATB_IP, elasticIp: NATB_EIP });
  const b = s.instances.length - 1;
  const fix = (i: number): number => (i < 0 ? b : i);
  s.timeline = events.map(({ at, action }) => {
    const a = structuredClone(action);
    if (a.kind === 'replaceRoute') a.targetIndex = fix(a.targetIndex);
    if (a.kind === 'moveEni' || a.kind === 'moveElasticIp') a.to = fix(a.to);
    return { at, absolute: false, action: a, text: a.kind };
  });
  return s;
}

function variant(f?: (s: Scenario) => void): Scenario {
  const s = structuredClone(BASE);
  f?.(s);
  return s;
}

/** Adds app2 (10.0.1.11) beside app in the private subnet; its point is instancePoint(3). */
function withApp2(s: Scenario): number {
  const app = s.instances[idx(s, 'app')];
  s.instances.push({ ...structuredClone(app), name: 'app2', privateIp: APP2_IP });
  return instancePoint(s.instances.length - 1);
}

function natRules(s: Scenario, ...rules: string[]): void {
  const text = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ...rules,
    'COMMIT',
    '',
  ].join('\n');
  s.instances[idx(s, 'nat')].nat = parseNatTable(text, '<case>');
}

/** Gives the NAT instance a mangle table with these rules (FORWARD / POSTROUTING lines). */
function mangleRules(s: Scenario, ...rules: string[]): void {
  const chains = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].map((c) => `:${c} ACCEPT [0:0]`);
  const text = ['*mangle', ...chains, ...rules, 'COMMIT', ''].join('\n');
  s.instances[idx(s, 'nat')].mangle = parseMangleTable(text, '<case>');
}

/** Gives the NAT instance a filter table: FORWARD's policy and these rules (user chains declared in `user`). */
function filterRules(s: Scenario, forwardPolicy: 'ACCEPT' | 'DROP', rules: string[], user: string[] = []): void {
  const text = [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    `:FORWARD ${forwardPolicy} [0:0]`,
    ':OUTPUT ACCEPT [0:0]',
    ...user.map((u) => `:${u} - [0:0]`),
    ...rules,
    'COMMIT',
    '',
  ].join('\n');
  s.instances[idx(s, 'nat')].filter = parseFilterTable(text, '<case>');
}

/** A SYN from app whose TCP data offset says 60 bytes in a 20-byte header (checksum fixed). */
function badDoffSyn(): Uint8Array {
  const f = buildTcp({ src: APP_IP, dst: SRV, sport: 41001, dport: 443, seq: 7, flags: F_SYN, window: 64240 });
  f[32] = 0xf0;
  return fixChecksums(f);
}

/** TCP option bytes: MSS n. */
export const mssOpt = (n: number): Uint8Array => Uint8Array.of(2, 4, n >>> 8, n & 0xff);

const p = (timeUs: number, ingress: number, frame: Uint8Array): InputPacket => ({ timeUs, ingress, frame });
const udpOut = (sport = 40000, o: { ttl?: number; src?: number } = {}): Uint8Array =>
  buildUdp({ src: o.src ?? APP_IP, dst: SRV, sport, dport: 53, payload: new Uint8Array([1, 2, 3, 4]), ttl: o.ttl });
const udpIn = (dport = 40000): Uint8Array =>
  buildUdp({ src: SRV, dst: NAT_EIP, sport: 53, dport, payload: new Uint8Array([5, 6]) });
const tcpOut = (flags: number, seq: number, ack = 0, payload?: Uint8Array, sport = 41000): Uint8Array =>
  buildTcp({ src: APP_IP, dst: SRV, sport, dport: 443, seq, ack, flags, payload, window: 64240 });
const tcpIn = (flags: number, seq: number, ack = 0, dport = 41000): Uint8Array =>
  buildTcp({ src: SRV, dst: NAT_EIP, sport: 443, dport, seq, ack, flags, window: 65160 });

export function natCases(): NatCase[] {
  const cases: NatCase[] = [];
  const add = (c: NatCase): void => void cases.push(c);

  add({ name: 'udp request/response', scenario: variant(), inputs: [p(0, APP, udpOut()), p(1000, NET, udpIn())] });
  add({
    name: 'udp unreplied burst',
    scenario: variant(),
    inputs: [p(0, APP, udpOut()), p(100, APP, udpOut()), p(200, APP, udpOut())],
  });
  add({
    name: 'tcp handshake, data, FIN close',
    scenario: variant(),
    inputs: [
      p(0, APP, tcpOut(F_SYN, 1000)),
      p(1000, NET, tcpIn(F_SYN | F_ACK, 5000, 1001)),
      p(2000, APP, tcpOut(F_ACK, 1001, 5001)),
      p(3000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(10))),
      p(4000, NET, tcpIn(F_ACK, 5001, 1011)),
      p(5000, APP, tcpOut(F_FIN | F_ACK, 1011, 5001)),
      p(6000, NET, tcpIn(F_FIN | F_ACK, 5001, 1012)),
      p(7000, APP, tcpOut(F_ACK, 1012, 5002)),
    ],
  });
  add({
    name: 'tcp RST from the server',
    scenario: variant(),
    inputs: [
      p(0, APP, tcpOut(F_SYN, 1000)),
      p(1000, NET, tcpIn(F_SYN | F_ACK, 5000, 1001)),
      p(2000, APP, tcpOut(F_ACK, 1001, 5001)),
      p(3000, NET, tcpIn(F_RST, 5001)),
    ],
  });
  add({
    name: 'icmp echo',
    scenario: variant(),
    inputs: [
      p(0, APP, buildIcmpEcho({ src: APP_IP, dst: SRV, id: 77, seq: 1 })),
      p(1000, NET, buildIcmpEcho({ src: SRV, dst: NAT_EIP, id: 77, seq: 1, reply: true })),
    ],
  });
  add({
    name: 'icmp port unreachable for a udp flow from the far side',
    scenario: variant(),
    inputs: [
      p(0, APP, udpOut()),
      p(
        1000,
        NET,
        buildIcmpError({
          src: ROUTER_FAR,
          dst: NAT_EIP,
          type: ICMP_DEST_UNREACH,
          code: ICMP_PORT_UNREACH,
          quoted: buildUdp({
            src: NAT_EIP,
            dst: SRV,
            sport: 40000,
            dport: 53,
            payload: new Uint8Array([1, 2, 3, 4]),
            ttl: 60,
          }),
        }),
      ),
    ],
  });
  add({
    name: 'icmp host unreachable for a tcp flow from the far side',
    scenario: variant(),
    inputs: [
      p(0, APP, tcpOut(F_SYN, 1000)),
      p(
        1000,
        NET,
        buildIcmpError({
          src: ROUTER_FAR,
          dst: NAT_EIP,
          type: ICMP_DEST_UNREACH,
          code: ICMP_HOST_UNREACH,
          quoted: buildTcp({
            src: NAT_EIP,
            dst: SRV,
            sport: 41000,
            dport: 443,
            seq: 1000,
            flags: F_SYN,
            window: 64240,
            ttl: 60,
          }),
        }),
      ),
    ],
  });
  {
    const s = variant();
    const app2 = withApp2(s);
    add({
      name: 'two private hosts, same source port, same destination',
      scenario: s,
      inputs: [p(0, APP, udpOut(5000)), p(1000, app2, udpOut(5000, { src: APP2_IP }))],
    });
  }
  add({
    name: "unsolicited inbound to the NAT instance's Elastic IP",
    scenario: variant(),
    inputs: [p(0, NET, buildUdp({ src: SRV, dst: NAT_EIP, sport: 53, dport: 9999 }))],
  });
  add({
    name: "inbound to the web server's Elastic IP and its reply",
    scenario: variant(),
    inputs: [
      p(0, NET, buildTcp({ src: SRV, dst: WEB_EIP, sport: 6000, dport: 80, seq: 1, flags: F_SYN })),
      p(1000, WEB, buildTcp({ src: WEB_IP, dst: SRV, sport: 80, dport: 6000, seq: 9, ack: 2, flags: F_SYN | F_ACK })),
    ],
  });
  {
    const bad = udpOut(40100);
    bad[27] ^= 0x5a;
    add({
      name: 'bad UDP checksum from inside (INVALID, forwarded un-NATed)',
      scenario: variant(),
      inputs: [p(0, APP, bad)],
    });
  }
  add({
    // corpora/regressions/20261204-fate-76c829c8: what reaches a plain host's ENI is its output,
    // even with its own address as source (its stack's martian drop is not a path outcome).
    name: 'a plain host sending to its own address (delivered to its ENI)',
    scenario: variant(),
    inputs: [p(0, WEB, buildUdp({ src: WEB_IP, dst: WEB_IP, sport: 5353, dport: 53, payload: new Uint8Array([1]) }))],
  });
  {
    // Fuzz counterexample corpora/regressions/20261204-reason-55b65979: ip_rcv() drops an IPv4
    // frame whose version nibble is 6 as a header error — malformed (bad-ip-version), not "not IPv4".
    const v6 = udpOut(40101);
    v6[0] = 0x60 | (v6[0] & 15);
    add({ name: 'IPv4 frame with version 6 from inside (malformed)', scenario: variant(), inputs: [p(0, APP, v6)] });
  }
  add({
    name: 'non-SYN first TCP packet (loose pickup)',
    scenario: variant(),
    inputs: [p(0, APP, tcpOut(F_ACK, 1001, 5001))],
  });
  add({
    name: 'non-SYN first TCP packet with tcp_loose=0',
    scenario: variant((s) => (s.conntrack.tcpLoose = false)),
    inputs: [p(0, APP, tcpOut(F_ACK, 1001, 5001))],
  });
  add({
    name: 'source/dest check left enabled on the NAT instance',
    scenario: variant((s) => (s.instances[idx(s, 'nat')].sourceDestCheck = true)),
    inputs: [p(0, APP, udpOut())],
  });
  add({
    name: 'ip_forward=0 on the NAT instance',
    scenario: variant((s) => (s.instances[idx(s, 'nat')].sysctls.ipForward = false)),
    inputs: [p(0, APP, udpOut())],
  });
  add({
    name: 'MASQUERADE restricted by -s that does not match',
    scenario: variant((s) => natRules(s, '-A POSTROUTING -s 10.9.0.0/16 -o eth0 -j MASQUERADE')),
    inputs: [p(0, APP, udpOut())],
  });
  add({
    name: 'SNAT --to-source',
    scenario: variant((s) => natRules(s, '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j SNAT --to-source 10.0.0.10')),
    inputs: [p(0, APP, udpOut()), p(1000, NET, udpIn())],
  });
  // Address ranges (issue 15 K7): find_best_ips_proto picks by jhash2 of the source, initval
  // the destination (0 with --persistent). DNAT to four inside hosts, 12 clients; SNAT to eight
  // addresses (only 10.0.0.10 is the instance's: the others die at the IGW, the conntrack table
  // shows the choice), 8 destinations, with and without --persistent.
  add({
    name: 'DNAT --to-destination range: the address is jhash2 of the client (12 clients, 4 hosts)',
    scenario: variant((s) => {
      const app = s.instances[idx(s, 'app')];
      for (let k = 1; k <= 3; k++)
        s.instances.push({ ...structuredClone(app), name: `app${k + 1}`, privateIp: A(`10.0.1.${10 + k}`) });
      natRules(s, '-A PREROUTING -i eth0 -p udp --dport 8080 -j DNAT --to-destination 10.0.1.10-10.0.1.13:53');
    }),
    inputs: Array.from({ length: 12 }, (_, k) =>
      p(
        k * 1000,
        NET,
        buildUdp({
          src: A(`198.51.100.${k + 1}`),
          dst: NAT_EIP,
          sport: 5000 + k,
          dport: 8080,
          payload: new Uint8Array(4),
        }),
      ),
    ),
  });
  add({
    name: 'SNAT --to-source range: the address is jhash2 of the source with the destination, or not with --persistent',
    scenario: variant((s) => {
      withApp2(s);
      natRules(
        s,
        '-A POSTROUTING -s 10.0.1.10/32 -o eth0 -j SNAT --to-source 10.0.0.10-10.0.0.17',
        '-A POSTROUTING -s 10.0.1.11/32 -o eth0 -j SNAT --to-source 10.0.0.10-10.0.0.17 --persistent',
      );
    }),
    inputs: [0, 1].flatMap((h) =>
      Array.from({ length: 8 }, (_, k) =>
        p(
          (h * 8 + k) * 1000,
          h === 0 ? APP : instancePoint(3),
          buildUdp({
            src: h === 0 ? APP_IP : APP2_IP,
            dst: A(`198.51.100.${20 + k}`),
            sport: 41000 + k,
            dport: 53,
            payload: new Uint8Array(4),
          }),
        ),
      ),
    ),
  });
  // The kernel selftest nf_nat_edemux.sh (tools/testing/selftests/net/netfilter/), as a NAT
  // instance meets it: a client reaches a server directly from source port 10000, then from the
  // same port reaches a virtual IP that DNAT maps to the same server:port. After DNAT and
  // MASQUERADE the second connection's reply tuple would be the first's, so MASQUERADE must choose
  // another port and both connections are established (ports compared up to renaming). The
  // selftest's second part is the next case.
  add({
    name: 'nf_nat_edemux: a DNAT virtual IP to a server the client already reaches from the same port',
    scenario: variant((s) =>
      natRules(
        s,
        '-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 198.51.100.7:5201',
        '-A POSTROUTING -o eth0 -j MASQUERADE',
      ),
    ),
    inputs: [
      p(0, APP, buildTcp({ src: APP_IP, dst: SRV, sport: 10000, dport: 5201, seq: 100, flags: F_SYN, window: 64240 })),
      p(
        1000,
        NET,
        buildTcp({
          src: SRV,
          dst: NAT_EIP,
          sport: 5201,
          dport: 10000,
          seq: 900,
          ack: 101,
          flags: F_SYN | F_ACK,
          window: 65160,
        }),
      ),
      p(
        2000,
        APP,
        buildTcp({ src: APP_IP, dst: SRV, sport: 10000, dport: 5201, seq: 101, ack: 901, flags: F_ACK, window: 64240 }),
      ),
      p(
        3000,
        APP,
        buildTcp({
          src: APP_IP,
          dst: A('10.96.0.1'),
          sport: 10000,
          dport: 443,
          seq: 5000,
          flags: F_SYN,
          window: 64240,
        }),
      ),
    ],
  });
  // nf_nat_edemux.sh's second part: a client already talks to a service on the NAT instance from
  // port 10000, then reaches two more ports that the instance redirects (DNAT to its own address,
  // as `REDIRECT --to-ports` does in PREROUTING) to that service, from the same port. Each new
  // connection's reply tuple would be the first's; the nat INPUT hook's null binding
  // (nf_nat_alloc_null_binding, a SRC manip of the packet's own address with no port range) moves
  // its source port, so all three are delivered and tracked (ports compared up to renaming). UDP,
  // not the selftest's TCP: the kernel engine's instances run no service, and their stack's RST to
  // a SYN would end the entry (K3); a port unreachable does not.
  add({
    name: 'nf_nat_edemux: two ports redirected to one local service from one client port (nat INPUT null binding)',
    scenario: variant((s) => {
      natRules(
        s,
        '-A PREROUTING -d 10.0.0.10/32 -p udp -m udp --dport 5202 -j DNAT --to-destination 10.0.0.10:5201',
        '-A PREROUTING -d 10.0.0.10/32 -p udp -m udp --dport 5203 -j DNAT --to-destination 10.0.0.10:5201',
        '-A POSTROUTING -o eth0 -j MASQUERADE',
      );
      delete s.instances[idx(s, 'nat')].security;
    }),
    inputs: [5201, 5202, 5203, 5203].map((dport, k) =>
      p(
        k * 1000,
        APP,
        buildUdp({ src: APP_IP, dst: NAT_IP, sport: 10000, dport, payload: new Uint8Array([0x74, 0x65, 0x73, k]) }),
      ),
    ),
  });
  add({
    name: 'DNAT port forwarding (with MASQUERADE so the reply returns through the NAT)',
    scenario: variant((s) =>
      natRules(
        s,
        '-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.20:80',
        '-A POSTROUTING -d 10.0.0.20/32 -p tcp --dport 80 -j MASQUERADE',
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE',
      ),
    ),
    inputs: [
      p(0, NET, buildTcp({ src: SRV, dst: NAT_EIP, sport: 6000, dport: 8080, seq: 1, flags: F_SYN, window: 65535 })),
      p(
        1000,
        WEB,
        buildTcp({
          src: WEB_IP,
          dst: NAT_IP,
          sport: 80,
          dport: 6000,
          seq: 9,
          ack: 2,
          flags: F_SYN | F_ACK,
          window: 65535,
        }),
      ),
    ],
  });
  add({
    name: 'port exhaustion: SNAT to a single port',
    scenario: variant((s) =>
      natRules(s, '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -p udp -j SNAT --to-source 10.0.0.10:2000'),
    ),
    inputs: [p(0, APP, udpOut(5000)), p(1000, APP, udpOut(5001))],
  });
  add({ name: 'TTL 1 through the NAT instance', scenario: variant(), inputs: [p(0, APP, udpOut(40000, { ttl: 1 }))] });
  // A first packet with TTL 1 to a forwarded port (e.g. a TCP traceroute to the Elastic IP): the
  // time exceeded carries the packet's still unconfirmed entry (icmp_glue_bits → nf_ct_attach), so
  // the DNAT is undone in the quote — campaign seed 990032 run 64 quoted the post-DNAT header.
  add({
    name: 'DNAT: the time exceeded for a first TTL-1 packet quotes it as sent (the DNAT undone)',
    scenario: variant((s) =>
      natRules(
        s,
        '-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.20:80',
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE',
      ),
    ),
    inputs: [
      p(0, NET, buildTcp({ src: SRV, dst: NAT_EIP, sport: 6001, dport: 8080, seq: 1, flags: F_SYN, ttl: 1 })),
      p(
        1000,
        APP,
        buildTcp({ src: A('10.0.1.10'), dst: NAT_IP, sport: 6002, dport: 8080, seq: 1, flags: F_SYN, ttl: 1 }),
      ),
    ],
  });
  // ICMP error rate limits (issue 15 K2, docs/semantics.md §6): icmp_ratelimit per destination
  // (a new peer's bucket holds 6 errors, then one per second), icmp_ratemask, icmp_msgs_per_sec.
  // Gaps are ≥ 500 ms away from every threshold: the kernel sees them in real time (E8).
  const ttl1Burst = (n: number, from = 0): InputPacket[] =>
    Array.from({ length: n }, (_, k) => p(from + k * 1000, APP, udpOut(40100 + from / 1000 + k, { ttl: 1 })));
  const natSysctls = (y: Partial<Scenario['instances'][number]['sysctls']>) =>
    variant((s) => Object.assign(s.instances[idx(s, 'nat')].sysctls, y));
  add({
    name: 'ICMP rate limit: a burst of TTL-1 packets gets 6 time exceeded, then one per second',
    realTime: 'ICMP rate limits (per-destination refill)',
    scenario: variant(),
    inputs: [...ttl1Burst(9), ...ttl1Burst(2, 1_500_000)],
  });
  add({
    name: 'ICMP rate limit: icmp_ratelimit=0 answers every TTL-1 packet',
    scenario: natSysctls({ icmpRatelimit: 0 }),
    inputs: ttl1Burst(9),
  });
  add({
    name: 'ICMP rate limit: icmp_ratemask without time exceeded (0x8) answers every TTL-1 packet',
    scenario: natSysctls({ icmpRatemask: 0x8 }),
    inputs: ttl1Burst(9),
  });
  add({
    name: 'ICMP rate limit: icmp_ratelimit=200 refills one error per 200 ms',
    realTime: 'ICMP rate limits (per-destination refill)',
    scenario: natSysctls({ icmpRatelimit: 200 }),
    // 6 at once, then after 700 ms 3 of 4 (3.5 tokens), after 1.5 s more the bucket is full again.
    inputs: [...ttl1Burst(7), ...ttl1Burst(4, 700_000), ...ttl1Burst(7, 2_200_000)],
  });
  add({
    name: 'ICMP rate limit: icmp_msgs_per_sec=0 leaves no credit (no time exceeded at all)',
    scenario: natSysctls({ icmpMsgsPerSec: 0 }),
    inputs: ttl1Burst(3),
  });
  add({
    name: 'hairpin through the IGW to the web server',
    scenario: variant(),
    inputs: [p(0, APP, buildUdp({ src: APP_IP, dst: WEB_EIP, sport: 40000, dport: 80 }))],
  });
  add({
    name: 'UDP timeout (udp=1 s): the reply after expiry is not translated',
    scenario: variant((s) => (s.conntrack.timeouts.udp = 1)),
    inputs: [p(0, APP, udpOut())],
    advanceToUs: 1_500_000,
    after: [p(1_500_001, NET, udpIn())],
  });
  add({
    name: 'ICMP timeout (icmp=1 s): the echo reply after expiry is unsolicited',
    scenario: variant((s) => (s.conntrack.timeouts.icmp = 1)),
    inputs: [p(0, APP, buildIcmpEcho({ src: APP_IP, dst: SRV, id: 78, seq: 1 }))],
    advanceToUs: 1_500_000,
    after: [p(1_500_001, NET, buildIcmpEcho({ src: SRV, dst: NAT_EIP, id: 78, seq: 1, reply: true }))],
  });
  add({
    name: 'udp stream: a reply, then a packet more than 2 s after the first, makes it ASSURED',
    scenario: variant(),
    inputs: [p(0, APP, udpOut()), p(1000, NET, udpIn())],
    advanceToUs: 2_300_000,
    after: [p(2_300_001, APP, udpOut())],
  });
  add({
    name: 'tcp SYN retransmitted',
    scenario: variant(),
    inputs: [p(0, APP, tcpOut(F_SYN, 1000)), p(1000, APP, tcpOut(F_SYN, 1000))],
  });
  add({
    name: 'same host and port to two destinations keeps its port',
    scenario: variant(),
    inputs: [
      p(0, APP, udpOut(40000)),
      p(1000, APP, buildUdp({ src: APP_IP, dst: A('192.0.2.9'), sport: 40000, dport: 53 })),
    ],
  });
  add({
    name: 'icmp host unreachable for an echo from the far side',
    scenario: variant(),
    inputs: [
      p(0, APP, buildIcmpEcho({ src: APP_IP, dst: SRV, id: 90, seq: 1 })),
      p(
        1000,
        NET,
        buildIcmpError({
          src: ROUTER_FAR,
          dst: NAT_EIP,
          type: ICMP_DEST_UNREACH,
          code: ICMP_HOST_UNREACH,
          quoted: buildIcmpEcho({ src: NAT_EIP, dst: SRV, id: 90, seq: 1, ttl: 60 }),
        }),
      ),
    ],
  });
  add({
    name: 'blackhole route',
    scenario: variant((s) =>
      s.routeTables[s.subnets[s.instances[idx(s, 'app')].subnet].routeTable].routes.push({
        dest: { addr: A('192.0.2.99'), len: 32 },
        target: 'blackhole',
        instance: -1,
      }),
    ),
    inputs: [p(0, APP, buildUdp({ src: APP_IP, dst: A('192.0.2.99'), sport: 1, dport: 2 }))],
  });
  add({
    name: 'VPC address no instance holds',
    scenario: variant(),
    inputs: [p(0, APP, buildUdp({ src: APP_IP, dst: A('10.0.5.5'), sport: 1, dport: 2 }))],
  });
  add({
    name: 'source/dest check on the web server: spoofed source',
    scenario: variant(),
    inputs: [p(0, WEB, buildUdp({ src: A('10.0.0.99'), dst: SRV, sport: 1, dport: 2 }))],
  });
  add({
    name: 'MASQUERADE --to-ports',
    scenario: variant((s) =>
      natRules(s, '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -p udp -j MASQUERADE --to-ports 5000-5001'),
    ),
    inputs: [p(0, APP, udpOut(40000)), p(1000, APP, udpOut(40001)), p(2000, APP, udpOut(40002))],
  });
  // Port choice modes (issue 15): --random and --random-fully skip the original tuple, the
  // bysource reuse and port preservation (get_unique_tuple: NF_NAT_RANGE_PROTO_RANDOM_ALL) and
  // search from a random offset in the source port's class (1-511 / 600-1023 / 1024-65535).
  add({
    name: 'MASQUERADE --random and SNAT --random-fully: no port preservation, a random port in its class',
    scenario: variant((s) => {
      withApp2(s);
      natRules(
        s,
        '-A POSTROUTING -s 10.0.1.10/32 -o eth0 -j MASQUERADE --random',
        '-A POSTROUTING -s 10.0.1.11/32 -o eth0 -j SNAT --to-source 10.0.0.10 --random-fully',
      );
    }),
    inputs: [0, 1].flatMap((h) =>
      [40000, 41000, 53, 700].map((sport, k) =>
        p((h * 4 + k) * 1000, h === 0 ? APP : instancePoint(3), udpOut(sport, { src: h === 0 ? APP_IP : APP2_IP })),
      ),
    ),
  });
  add({
    name: 'DNAT without MASQUERADE: the reply leaves by the IGW from the web server',
    scenario: variant((s) =>
      natRules(
        s,
        '-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.20:80',
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE',
      ),
    ),
    inputs: [
      p(0, NET, buildTcp({ src: SRV, dst: NAT_EIP, sport: 6000, dport: 8080, seq: 1, flags: F_SYN, window: 65535 })),
      p(
        1000,
        WEB,
        buildTcp({
          src: WEB_IP,
          dst: SRV,
          sport: 80,
          dport: 6000,
          seq: 9,
          ack: 2,
          flags: F_SYN | F_ACK,
          window: 65535,
        }),
      ),
    ],
  });
  add({
    name: 'TTL 255 out through the NAT instance',
    scenario: variant(),
    inputs: [p(0, APP, udpOut(40000, { ttl: 255 }))],
  });
  add({
    name: "echo request to the web server's Elastic IP",
    scenario: variant(),
    inputs: [p(0, NET, buildIcmpEcho({ src: SRV, dst: WEB_EIP, id: 5, seq: 1 }))],
  });
  add({
    name: 'UDP without checksum through the NAT instance',
    scenario: variant(),
    inputs: [
      p(
        0,
        APP,
        buildUdp({ src: APP_IP, dst: SRV, sport: 40000, dport: 53, noChecksum: true, payload: new Uint8Array([7]) }),
      ),
    ],
  });
  {
    const bad = buildTcp({ src: SRV, dst: NAT_EIP, sport: 443, dport: 41000, seq: 1, flags: F_SYN });
    bad[37] ^= 0x33;
    add({ name: 'bad TCP checksum from outside to the NAT instance', scenario: variant(), inputs: [p(0, NET, bad)] });
  }
  add({
    name: 'unsolicited TCP SYN to the NAT instance (its stack answers RST)',
    scenario: variant(),
    inputs: [p(0, NET, buildTcp({ src: SRV, dst: NAT_EIP, sport: 5555, dport: 22, seq: 1, flags: F_SYN }))],
  });
  add({
    // D2: the public route table sends an internet prefix to the NAT instance's own ENI, so the
    // masqueraded packet comes back to it with its own address as source: a martian source
    // (__fib_validate_source, accept_local=0), dropped once; one entry remains, not eight.
    name: 'masqueraded packet routed back to the NAT instance (martian source)',
    scenario: variant((s) =>
      s.routeTables[s.subnets[s.instances[NAT].subnet].routeTable].routes.push({
        dest: { addr: A('198.51.100.0'), len: 24 },
        target: 'eni',
        instance: NAT,
      }),
    ),
    inputs: [p(0, APP, udpOut()), p(1000, APP, udpOut(40001))],
  });
  add({
    // Campaign seed 995012 run 71: the public route table sends an internet prefix to the NAT
    // instance, whose filter FORWARD policy drops web's SYN+RST (INVALID, not NATed); on the way it
    // redirects web (K5: same link, send_redirects on). The redirect reaching web's stack is not
    // where the packet went: the kernel engine called it local-delivery until its verdict set such
    // errors' sinks aside. (A NEW datagram, NATed, gets no redirect from this kernel.)
    name: 'a redirect to the sender of a packet the filter drops: the packet is not delivered anywhere',
    scenario: variant((s) => {
      s.routeTables[s.subnets[s.instances[NAT].subnet].routeTable].routes.push({
        dest: { addr: A('198.51.100.0'), len: 24 },
        target: 'eni',
        instance: NAT,
      });
      filterRules(s, 'DROP', []);
    }),
    inputs: [p(0, WEB, buildTcp({ src: WEB_IP, dst: SRV, sport: 123, dport: 443, seq: 1, flags: F_SYN | F_RST }))],
  });
  add({
    // D3: multicast (mDNS) and limited broadcast from an inside host are not forwarded.
    name: 'multicast and limited broadcast from an inside host',
    scenario: variant(),
    inputs: [
      p(0, APP, buildUdp({ src: APP_IP, dst: A('224.0.0.251'), sport: 5353, dport: 5353, payload: new Uint8Array(4) })),
      p(
        1000,
        APP,
        buildUdp({ src: APP_IP, dst: A('239.1.2.3'), sport: 4000, dport: 4000, payload: new Uint8Array(4) }),
      ),
      p(
        2000,
        APP,
        buildUdp({ src: APP_IP, dst: A('255.255.255.255'), sport: 68, dport: 67, payload: new Uint8Array(4) }),
      ),
    ],
  });
  {
    // D1: an in-window RST whose seq is not exactly the one the client ACKed (5001) keeps the
    // entry ESTABLISHED (challenge ACK, RFC 5961); then the client's ACK and the server's data.
    const handshake = [
      p(0, APP, tcpOut(F_SYN, 1000)),
      p(1000, NET, tcpIn(F_SYN | F_ACK, 5000, 1001)),
      p(2000, APP, tcpOut(F_ACK, 1001, 5001)),
    ];
    add({
      name: 'in-window RST with an inexact sequence number (state kept for a challenge ACK)',
      scenario: variant(),
      inputs: [
        ...handshake,
        p(3000, NET, tcpIn(F_RST, 6000)),
        p(4000, APP, tcpOut(F_ACK, 1001, 5001)),
        p(
          5000,
          NET,
          buildTcp({
            src: SRV,
            dst: NAT_EIP,
            sport: 443,
            dport: 41000,
            seq: 5001,
            ack: 1001,
            flags: F_PSH | F_ACK,
            window: 65160,
            payload: new Uint8Array(20),
          }),
        ),
      ],
    });
    add({
      name: 'RST below the expected sequence number (invalid rst, not NATed)',
      scenario: variant(),
      inputs: [...handshake, p(3000, NET, tcpIn(F_RST, 4000)), p(4000, APP, tcpOut(F_ACK, 1001, 5001))],
    });
    add({
      name: 'RST below the expected sequence number with nf_conntrack_tcp_ignore_invalid_rst=1',
      scenario: variant((s) => {
        s.conntrack.tcpIgnoreInvalidRst = true;
      }),
      inputs: [...handshake, p(3000, NET, tcpIn(F_RST, 4000)), p(4000, APP, tcpOut(F_ACK, 1001, 5001))],
    });
  }
  {
    // The RST checks that skip the window step in SYN_SENT ("goto in_window"), after the server's
    // data segment was ignored (an ACK in SYN_SENT: last_end 5000045, last_ack 1001) — fuzz seed
    // 992001 run 47 (corpora/regressions/20261205-fate-7c838e49) and the experiments around it.
    const ignoredData = (): InputPacket[] => [
      p(0, APP, tcpOut(F_SYN, 1000)),
      p(
        1000,
        NET,
        buildTcp({
          src: SRV,
          dst: NAT_EIP,
          sport: 443,
          dport: 41000,
          seq: 5000000,
          ack: 1001,
          flags: F_PSH | F_ACK,
          window: 65160,
          payload: new Uint8Array(45),
        }),
      ),
    ];
    add({
      name: "RST answering a challenge ACK in SYN_SENT (seq = the ignored ACK's ack: no window check)",
      scenario: variant(),
      inputs: [...ignoredData(), p(2000, APP, tcpOut(F_RST | F_ACK, 1001, 1001)), p(3000, APP, tcpOut(F_SYN, 1000))],
    });
    add({
      name: 'RST acking the ignored data after a SYN retransmission from the same side (INVALID)',
      scenario: variant(),
      inputs: [...ignoredData(), p(2000, APP, tcpOut(F_SYN, 1000)), p(3000, APP, tcpOut(F_RST | F_ACK, 1001, 5000045))],
    });
    add({
      name: 'server RST acking the ignored data after a SYN retransmission (answers the SYN: no window check)',
      scenario: variant(),
      inputs: [
        ...ignoredData(),
        p(2000, APP, tcpOut(F_SYN, 1000)),
        p(3000, NET, tcpIn(F_RST | F_ACK, 5000045, 5000045)),
      ],
    });
    add({
      name: "server RST with seq = the ignored data's end and another ack after a SYN retransmission (INVALID)",
      scenario: variant(),
      inputs: [...ignoredData(), p(2000, APP, tcpOut(F_SYN, 1000)), p(3000, NET, tcpIn(F_RST | F_ACK, 5000045, 7777))],
    });
  }
  {
    // K4: window tracking (tcp_in_window), nf_conntrack_tcp_be_liberal 0 as on a NAT instance.
    const handshake = (sport = 41000, synAckWin?: number): InputPacket[] => [
      p(0, APP, tcpOut(F_SYN, 1000, 0, undefined, sport)),
      p(
        1000,
        NET,
        buildTcp({
          src: SRV,
          dst: NAT_EIP,
          sport: 443,
          dport: sport,
          seq: 5000,
          ack: 1001,
          flags: F_SYN | F_ACK,
          window: synAckWin ?? 65160,
        }),
      ),
      p(2000, APP, tcpOut(F_ACK, 1001, 5001, undefined, sport)),
    ];
    const dataIn = (seq: number, ack: number, len: number, sport = 41000): Uint8Array =>
      buildTcp({
        src: SRV,
        dst: NAT_EIP,
        sport: 443,
        dport: sport,
        seq,
        ack,
        flags: F_PSH | F_ACK,
        window: 65160,
        payload: new Uint8Array(len),
      });
    const outOfWindow = [
      // Server data 300000 bytes beyond what the client's window allows: SEQ over the upper bound.
      p(3000, NET, dataIn(5001 + 300000, 1001, 20)),
      // The client ACKs data the server never sent: ACK over the upper bound.
      p(4000, APP, tcpOut(F_ACK, 1001, 5001 + 100000)),
      // In window again: the connection goes on.
      p(5000, NET, dataIn(5001, 1001, 20)),
    ];
    add({
      name: 'out-of-window data and ACK are INVALID (not NATed)',
      scenario: variant(),
      inputs: [...handshake(), ...outOfWindow],
    });
    add({
      name: 'out-of-window data and ACK with nf_conntrack_tcp_be_liberal=1 (accepted)',
      scenario: variant((s) => {
        s.conntrack.tcpBeLiberal = true;
      }),
      inputs: [...handshake(), ...outOfWindow],
    });
    const seg = (k: number): InputPacket =>
      p(3000 + k * 1000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(100)));
    add({
      name: 'retransmissions beyond nf_conntrack_tcp_max_retrans (timeout capped)',
      scenario: variant((s) => {
        s.conntrack.timeouts.tcpMaxRetrans = 100;
        s.conntrack.timeouts.tcpUnacknowledged = 200;
        s.conntrack.tcpMaxRetrans = 2;
      }),
      inputs: [...handshake(), seg(0), seg(1), seg(2), seg(3)],
    });
    add({
      name: 'already-acknowledged data retransmitted is ignored (NATed)',
      scenario: variant(),
      inputs: [
        ...handshake(41000, 1000),
        p(3000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(1000))),
        p(4000, NET, tcpIn(F_ACK, 5001, 2001)),
        p(5000, APP, tcpOut(F_PSH | F_ACK, 2001, 5001, new Uint8Array(1000))),
        p(6000, NET, tcpIn(F_ACK, 5001, 3001)),
        p(7000, APP, tcpOut(F_PSH | F_ACK, 3001, 5001, new Uint8Array(1000))),
        p(8000, NET, tcpIn(F_ACK, 5001, 4001)),
        // The first segment again: below td_end − the receiver's window.
        p(9000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(1000))),
      ],
    });
    // Window scaling: both SYNs carry wscale 7 (flow 41001), or only the client's (41002); the
    // server's data 60000 bytes ahead is inside 512 << 7 but outside 512.
    const wsOpt = Uint8Array.of(1, 3, 3, 7);
    const scaled = (sport: number, synAckOpt: Uint8Array | undefined, t0: number): InputPacket[] => [
      p(
        t0,
        APP,
        buildTcp({ src: APP_IP, dst: SRV, sport, dport: 443, seq: 1000, flags: F_SYN, window: 512, options: wsOpt }),
      ),
      p(
        t0 + 1000,
        NET,
        buildTcp({
          src: SRV,
          dst: NAT_EIP,
          sport: 443,
          dport: sport,
          seq: 5000,
          ack: 1001,
          flags: F_SYN | F_ACK,
          window: 512,
          options: synAckOpt,
        }),
      ),
      p(
        t0 + 2000,
        APP,
        buildTcp({ src: APP_IP, dst: SRV, sport, dport: 443, seq: 1001, ack: 5001, flags: F_ACK, window: 512 }),
      ),
      p(t0 + 3000, NET, dataIn(5001 + 60000, 1001, 20, sport)),
    ];
    add({
      name: 'window scaling: in window only when both SYNs carry the option',
      scenario: variant(),
      inputs: [...scaled(41001, wsOpt, 0), ...scaled(41002, undefined, 10000)],
    });
  }
  // TCPMSS (issue 13): the clamping rule real NAT boxes carry, in both mangle chains.
  const clampSyn = (o: { sport: number; options?: Uint8Array; payload?: Uint8Array }): Uint8Array =>
    buildTcp({ src: APP_IP, dst: SRV, dport: 443, seq: 1000, flags: F_SYN, window: 64240, ...o });
  add({
    name: 'TCPMSS --clamp-mss-to-pmtu in FORWARD: MSS lowered, MSS inserted, SYN with data untouched',
    scenario: variant((s) =>
      mangleRules(s, '-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu'),
    ),
    inputs: [
      p(0, APP, clampSyn({ sport: 42001, options: mssOpt(9000) })),
      p(1000, APP, clampSyn({ sport: 42002 })),
      p(2000, APP, clampSyn({ sport: 42003, options: Uint8Array.of(1, 1, 1, 1, 2, 4, 0x23, 0x28, 4, 2, 1, 1) })),
      p(3000, APP, clampSyn({ sport: 42004, payload: new Uint8Array(8) })),
      p(4000, APP, clampSyn({ sport: 42005, options: mssOpt(1460) })),
    ],
  });
  add({
    name: 'TCPMSS --set-mss 1400 in POSTROUTING: both SYN and SYN/ACK, ACK untouched',
    scenario: variant((s) =>
      mangleRules(s, '-A POSTROUTING -o eth0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400'),
    ),
    inputs: [
      p(0, APP, clampSyn({ sport: 41000, options: mssOpt(1460) })),
      p(
        1000,
        NET,
        buildTcp({
          src: SRV,
          dst: NAT_EIP,
          sport: 443,
          dport: 41000,
          seq: 5000,
          ack: 1001,
          flags: F_SYN | F_ACK,
          window: 65160,
          options: mssOpt(1460),
        }),
      ),
      p(2000, APP, tcpOut(F_ACK, 1001, 5001)),
      // A SYN whose data offset (60 bytes) runs past the segment: TCPMSS drops it (conntrack
      // already called it INVALID; it is forwarded un-NATed until the mangle table).
      p(3000, APP, badDoffSyn()),
    ],
  });
  // The NAT instance's own filter table (issue 16).
  add({
    name: 'filter: DROP by port, other traffic passes and is NATed',
    scenario: variant((s) => filterRules(s, 'ACCEPT', ['-A FORWARD -p udp -m udp --dport 53 -j DROP'])),
    inputs: [
      p(0, APP, udpOut(40000)),
      p(1000, APP, buildUdp({ src: APP_IP, dst: SRV, sport: 40001, dport: 123, payload: new Uint8Array(4) })),
    ],
  });
  add({
    name: 'filter: REJECT variants send port unreachable, host prohibited, admin prohibited',
    scenario: variant((s) =>
      filterRules(s, 'ACCEPT', [
        '-A FORWARD -p udp -m udp --dport 53 -j REJECT',
        '-A FORWARD -p udp -m udp --dport 54 -j REJECT --reject-with icmp-host-prohibited',
        '-A FORWARD -p udp -m udp --dport 55 -j REJECT --reject-with icmp-admin-prohibited',
        '-A FORWARD -p udp -m udp --dport 56 -j REJECT --reject-with icmp-net-unreachable',
      ]),
    ),
    // icmp_ratelimit (1 s per destination, docs/kernel-differences.md K2): one error per 1.1 s.
    inputs: [53, 54, 55, 56].map((d, k) =>
      p(
        k * 1_100_000,
        APP,
        buildUdp({ src: APP_IP, dst: SRV, sport: 40000 + k, dport: d, payload: new Uint8Array(4) }),
      ),
    ),
  });
  add({
    name: 'filter: REJECT answers share the ICMP rate limit (6, then none within the second)',
    realTime: 'ICMP rate limits (per-destination refill)',
    scenario: variant((s) => filterRules(s, 'ACCEPT', ['-A FORWARD -p udp -m udp --dport 53 -j REJECT'])),
    inputs: Array.from({ length: 8 }, (_, k) => p(k * 1000, APP, udpOut(40200 + k))),
  });
  add({
    name: 'filter: REJECT --reject-with tcp-reset answers a SYN with RST+ACK and an ACK with RST',
    scenario: variant((s) =>
      filterRules(s, 'ACCEPT', ['-A FORWARD -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset']),
    ),
    inputs: [
      p(0, APP, buildTcp({ src: APP_IP, dst: SRV, sport: 41000, dport: 25, seq: 1000, flags: F_SYN, window: 64240 })),
      p(
        1000,
        APP,
        buildTcp({ src: APP_IP, dst: SRV, sport: 41001, dport: 25, seq: 7, ack: 99, flags: F_ACK, window: 64240 }),
      ),
    ],
  });
  add({
    // Campaign seed 993008 run 11: the kernel engine dropped a REJECT's answer in INPUT as the
    // stack's own port unreachable (both quote a packet to the instance) until the guard told them
    // apart by the mark the security table sets on what passed filter INPUT (fwmark_reflect).
    name: "filter: INPUT REJECT answers a datagram to the Elastic IP; the stack's own port unreachable stays inside",
    scenario: variant((s) =>
      filterRules(s, 'ACCEPT', ['-A INPUT -p udp -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable']),
    ),
    inputs: [
      p(0, NET, buildUdp({ src: SRV, dst: NAT_EIP, sport: 32768, dport: 53, payload: new Uint8Array(4) })),
      p(1000, NET, buildUdp({ src: SRV, dst: NAT_EIP, sport: 32769, dport: 54, payload: new Uint8Array(4) })),
    ],
  });
  add({
    name: 'filter: --ctstate INVALID -j DROP stops the packet that would leave un-NATed',
    scenario: variant((s) => filterRules(s, 'ACCEPT', ['-A FORWARD -m conntrack --ctstate INVALID -j DROP'])),
    inputs: [...[0, 1000, 2000].map((t, k) => p(t, APP, tcpOut([F_SYN, F_ACK, F_SYN | F_ACK][k], 1000 + k)))],
  });
  add({
    name: 'filter: multiport --dports accepts listed ports, the policy DROP the rest',
    scenario: variant((s) =>
      filterRules(s, 'DROP', [
        '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A FORWARD -s 10.0.0.0/16 -p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT',
      ]),
    ),
    inputs: [
      p(0, APP, tcpOut(F_SYN, 1000, 0, undefined, 41000)),
      p(1000, NET, tcpIn(F_SYN | F_ACK, 5000, 1001, 41000)),
      p(2000, APP, buildTcp({ src: APP_IP, dst: SRV, sport: 41001, dport: 8080, seq: 1, flags: F_SYN, window: 64240 })),
      p(3000, APP, buildTcp({ src: APP_IP, dst: SRV, sport: 41002, dport: 22, seq: 1, flags: F_SYN, window: 64240 })),
    ],
  });
  add({
    name: 'filter: user chain with LOG and RETURN, policy DROP with ESTABLISHED,RELATED accept',
    scenario: variant((s) =>
      filterRules(
        s,
        'DROP',
        [
          '-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT',
          '-A FORWARD -j EGRESS',
          '-A EGRESS -j LOG --log-prefix "egress: "',
          '-A EGRESS -p udp -m udp --dport 53 -j ACCEPT',
          '-A EGRESS -p icmp -m icmp --icmp-type 8 -j RETURN',
          '-A EGRESS -j DROP',
        ],
        ['EGRESS'],
      ),
    ),
    inputs: [
      p(0, APP, udpOut(40000)),
      p(1000, NET, udpIn(40000)),
      p(2000, APP, buildIcmpEcho({ src: APP_IP, dst: SRV, id: 9, seq: 1 })),
      p(3000, APP, buildUdp({ src: APP_IP, dst: SRV, sport: 40002, dport: 123, payload: new Uint8Array(4) })),
    ],
  });
  // The OUTPUT chain's counters: what the instance itself sends (a time exceeded, a REJECT's
  // unreachable) meets the scenario's OUTPUT rules; the kernel engine's own OUTPUT guard (a jump
  // at the top of OUTPUT) is not one of them (oracle/parse.ts parseFilterCounters).
  add({
    name: 'filter: OUTPUT rules count the time exceeded and the unreachable the instance sends',
    scenario: variant((s) => {
      const text = [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A FORWARD -p udp -m udp --dport 54 -j REJECT --reject-with icmp-host-prohibited',
        '-A OUTPUT -p icmp -m icmp --icmp-type 11 -j LOG',
        '-A OUTPUT -p icmp -m icmp --icmp-type 3/10 -j ACCEPT',
        '-A OUTPUT -p tcp -j DROP',
        'COMMIT',
        '',
      ].join('\n');
      s.instances[idx(s, 'nat')].filter = parseFilterTable(text, '<case>');
    }),
    inputs: [
      p(0, APP, udpOut(40000, { ttl: 1 })),
      p(1_100_000, APP, buildUdp({ src: APP_IP, dst: SRV, sport: 40001, dport: 54, payload: new Uint8Array(4) })),
      p(2_200_000, APP, udpOut(40002)),
    ],
  });
  add({
    name: 'filter: INPUT policy DROP: ssh dropped, telnet answered with a reset',
    scenario: variant((s) => {
      const text = [
        '*filter',
        ':INPUT DROP [0:0]',
        '-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset',
        'COMMIT',
        '',
      ].join('\n');
      s.instances[idx(s, 'nat')].filter = parseFilterTable(text, '<case>');
    }),
    inputs: [
      p(
        1000,
        APP,
        buildTcp({ src: APP_IP, dst: NAT_IP, sport: 41000, dport: 22, seq: 1, flags: F_SYN, window: 64240 }),
      ),
      p(
        2000,
        APP,
        buildTcp({ src: APP_IP, dst: NAT_IP, sport: 41001, dport: 23, seq: 1, flags: F_SYN, window: 64240 }),
      ),
    ],
  });

  // Scenario timelines (docs/semantics.md §14): a standby NAT instance natb (10.0.0.11, EIP
  // 203.0.113.11) beside nat; events 3 ms into a TCP flow. The kernel does them for real (routes
  // replaced in the router namespace, a recording drop for a stopped instance, conntrack -F).
  const handshake = [
    p(0, APP, tcpOut(F_SYN, 1000)),
    p(1000, NET, tcpIn(F_SYN | F_ACK, 5000, 1001)),
    p(2000, APP, tcpOut(F_ACK, 1001, 5001)),
  ];
  const tcpInTo = (eip: number, flags: number, seq: number, ack: number): Uint8Array =>
    buildTcp({ src: SRV, dst: eip, sport: 443, dport: 41000, seq, ack, flags, window: 65160 });
  add({
    name: 'timeline: route swap to the standby NAT instance mid-flow (it picks the flow up with its own address)',
    scenario: haVariant([
      { at: 0.003, action: { kind: 'replaceRoute', routeTable: 1, route: 1, target: 'eni', targetIndex: -1 } },
    ]),
    // No payload after the swap: an ACK of data the old instance never saw is INVALID there (Linux's
    // window tracking; the model does not track windows, docs/kernel-differences.md K4).
    inputs: [
      ...handshake,
      p(4000, APP, tcpOut(F_ACK, 1001, 5001)),
      p(5000, NET, tcpInTo(NAT_EIP, F_PSH | F_ACK, 5001, 1001)),
      p(6000, NET, tcpInTo(NATB_EIP, F_PSH | F_ACK, 5001, 1001)),
    ],
  });
  add({
    name: 'timeline: NAT instance stopped (blackhole, stopped ENI) and started (empty conntrack)',
    scenario: haVariant([
      { at: 0.003, action: { kind: 'stopInstance', instance: 0 } },
      { at: 0.006, action: { kind: 'startInstance', instance: 0 } },
    ]),
    inputs: [
      ...handshake,
      p(4000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(10))),
      p(5000, NET, tcpInTo(NAT_EIP, F_ACK, 5001, 1011)),
      p(7000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(10))),
      p(8000, NET, tcpInTo(NAT_EIP, F_ACK, 5001, 1011)),
    ],
  });
  add({
    name: 'timeline: ENI moved to the standby (same address, empty conntrack), then the Elastic IP moved',
    scenario: haVariant([
      { at: 0.003, action: { kind: 'moveEni', from: 0, to: -1 } },
      { at: 0.006, action: { kind: 'moveElasticIp', from: 0, to: 2 } }, // to app
    ]),
    inputs: [
      ...handshake,
      p(4000, APP, tcpOut(F_PSH | F_ACK, 1001, 5001, new Uint8Array(10))),
      p(5000, NET, tcpInTo(NAT_EIP, F_ACK, 5001, 1011)),
      p(7000, APP, tcpOut(F_PSH | F_ACK, 1011, 5001, new Uint8Array(10))),
    ],
  });
  return cases;
}

// --- security groups and network ACLs (docs/semantics.md §11; the kernel builds them as
// docs/kernel-oracle.md "Security groups and network ACLs" says) ------------------------------------

type Obj = Record<string, any>;

/** The built-in scenario in file form, changed by `f`, compiled. */
export function filtered(f: (o: Obj) => void): Scenario {
  const o = scenarioToObject(BASE) as Obj;
  f(o);
  return compileScenarioObject(o, '<filter case>');
}

const ALL_OUT = [{ protocol: 'all', cidr: '0.0.0.0/0' }];
const webIn = (sport: number, dport: number, flags = F_SYN, seq = 1, ack = 0, src = SRV): Uint8Array =>
  buildTcp({ src, dst: WEB_EIP, sport, dport, seq, ack, flags, window: 65160 });
const webOut = (sport: number, dport: number, flags = F_SYN | F_ACK, seq = 900, ack = 2): Uint8Array =>
  buildTcp({ src: WEB_IP, dst: SRV, sport, dport, seq, ack, flags, window: 65160 });

export function filterCases(): FilterCase[] {
  const webSg =
    (inbound: Obj[], outbound: Obj[] = ALL_OUT, tracking?: Obj) =>
    (o: Obj) => {
      o.securityGroups = { ...(o.securityGroups ?? {}), websg: { inbound, outbound } };
      o.instances.web.securityGroups = ['websg'];
      if (tracking) o.instances.web.connectionTracking = tracking;
    };
  const pubAcl = (inbound: Obj[], outbound: Obj[]) => (o: Obj) => {
    o.networkAcls = { ...(o.networkAcls ?? {}), pub: { subnets: ['public'], inbound, outbound } };
  };
  const privAcl = (inbound: Obj[], outbound: Obj[]) => (o: Obj) => {
    o.networkAcls = { ...(o.networkAcls ?? {}), priv: { subnets: ['private'], inbound, outbound } };
  };
  const both =
    (...fs: Array<(o: Obj) => void>) =>
    (o: Obj) => {
      for (const f of fs) f(o);
    };
  const allowAll = [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }];
  const ephemeral = { rule: 200, action: 'allow', protocol: 'tcp', ports: '1024-65535', cidr: '0.0.0.0/0' };
  const tracked443 = webSg([{ protocol: 'tcp', ports: 443, cidr: '198.51.100.0/24' }]);
  const untracked80 = webSg([{ protocol: 'tcp', ports: 80, cidr: '0.0.0.0/0' }]);
  const natsg = loadScenario('scenarios/vpc-nat-instance-sg.yaml');
  const natsgApp = instancePoint(idx(natsg, 'app'));
  const app2 = (o: Obj) => {
    o.instances.app2 = { ...o.instances.app, privateIp: '10.0.1.11' };
  };
  const cases: FilterCase[] = [
    {
      name: 'SG inbound: only HTTPS from the far network passes',
      scenario: filtered(tracked443),
      inputs: [p(0, NET, webIn(5000, 22)), p(1000, NET, webIn(5001, 443)), p(2000, NET, webIn(5002, 80))],
    },
    {
      name: 'SG outbound deny: only tcp 443 out, DNS from app dropped at its ENI',
      scenario: filtered((o) => {
        o.securityGroups = { appsg: { inbound: [], outbound: [{ protocol: 'tcp', ports: 443, cidr: '0.0.0.0/0' }] } };
        o.instances.app.securityGroups = ['appsg'];
      }),
      inputs: [p(0, APP, udpOut()), p(1000, APP, tcpOut(F_SYN, 1)), p(2000, NET, tcpIn(F_SYN | F_ACK, 500, 2))],
    },
    {
      name: 'SG tracked flow survives the removal of its rule (responses and further packets)',
      scenario: filtered(tracked443),
      inputs: [
        p(0, NET, webIn(5001, 443)),
        p(1000, WEB, webOut(443, 5001)),
        p(2000, NET, webIn(5001, 443, F_ACK, 2, 901)),
        p(3000, NET, webIn(5009, 443)),
      ],
      filters: [{ at: 1, scenario: filtered(webSg([])) }],
    },
    {
      name: 'SG untracked flow (0.0.0.0/0 both ways) breaks when its rule is removed',
      scenario: filtered(untracked80),
      inputs: [
        p(0, NET, webIn(6000, 80)),
        p(1000, WEB, webOut(80, 6000)),
        p(2000, NET, webIn(6000, 80, F_ACK, 2, 901)),
        p(3000, WEB, webOut(80, 6000, F_ACK, 901, 2)),
      ],
      filters: [{ at: 2, scenario: filtered(webSg([])) }],
    },
    {
      name: 'SG untracked flow breaks when the outbound rule is removed (the reply is judged again)',
      scenario: filtered(untracked80),
      inputs: [p(0, NET, webIn(6001, 80)), p(1000, WEB, webOut(80, 6001)), p(2000, NET, webIn(6002, 80))],
      filters: [{ at: 1, scenario: filtered(webSg([{ protocol: 'tcp', ports: 80, cidr: '0.0.0.0/0' }], [])) }],
    },
    {
      name: 'SG rule referencing a security group: members pass, others do not',
      scenario: filtered((o) => {
        app2(o);
        o.securityGroups = { appsg: { inbound: [{ protocol: 'all', group: 'appsg' }] }, websg: {} };
        o.instances.app.securityGroups = ['appsg'];
        o.instances.app2.securityGroups = ['appsg'];
        o.instances.web.securityGroups = ['websg'];
      }),
      inputs: [
        p(
          0,
          instancePoint(3),
          buildUdp({ src: APP2_IP, dst: APP_IP, sport: 7000, dport: 7001, payload: new Uint8Array(3) }),
        ),
        p(1000, WEB, buildUdp({ src: WEB_IP, dst: APP_IP, sport: 7000, dport: 7001, payload: new Uint8Array(3) })),
        p(2000, APP, buildUdp({ src: APP_IP, dst: WEB_IP, sport: 7001, dport: 7000, payload: new Uint8Array(3) })),
      ],
    },
    {
      name: 'SG ICMP is always tracked: echo passes after its rule is removed, a new id does not',
      scenario: filtered(webSg([{ protocol: 'icmp', cidr: '0.0.0.0/0' }])),
      inputs: [
        p(0, NET, buildIcmpEcho({ src: SRV, dst: WEB_EIP, id: 77, seq: 1 })),
        p(1000, WEB, buildIcmpEcho({ src: WEB_IP, dst: SRV, id: 77, seq: 1, reply: true })),
        p(2000, NET, buildIcmpEcho({ src: SRV, dst: WEB_EIP, id: 77, seq: 2 })),
        p(3000, NET, buildIcmpEcho({ src: SRV, dst: WEB_EIP, id: 78, seq: 1 })),
      ],
      filters: [{ at: 1, scenario: filtered(webSg([])) }],
    },
    {
      name: 'SG with no outbound rules: replies of tracked flows leave, nothing else does',
      scenario: filtered(webSg([{ protocol: 'udp', ports: '5000-5010', cidr: '198.51.100.0/24' }], [])),
      inputs: [
        p(0, NET, buildUdp({ src: SRV, dst: WEB_EIP, sport: 53, dport: 5005, payload: new Uint8Array(2) })),
        p(1000, WEB, buildUdp({ src: WEB_IP, dst: SRV, sport: 5005, dport: 53, payload: new Uint8Array(2) })),
        p(2000, NET, buildUdp({ src: SRV, dst: WEB_EIP, sport: 53, dport: 5011, payload: new Uint8Array(2) })),
        p(3000, WEB, buildUdp({ src: WEB_IP, dst: SRV, sport: 5006, dport: 53, payload: new Uint8Array(2) })),
      ],
    },
    {
      name: 'SG tracked-connection allowance: the third flow is dropped, tracked flows still pass',
      scenario: filtered(webSg([{ protocol: 'tcp', ports: 443, cidr: '0.0.0.0/0' }], [], { allowance: 2 })),
      inputs: [
        p(0, NET, webIn(5101, 443)),
        p(1000, NET, webIn(5102, 443)),
        p(2000, NET, webIn(5103, 443)),
        p(3000, WEB, webOut(443, 5101)),
      ],
    },
    {
      name: 'SG: a TCP header too short for port rules meets only the all-ports rules',
      scenario: filtered(
        webSg([
          { protocol: 'tcp', ports: 443, cidr: '0.0.0.0/0' },
          { protocol: 'all', cidr: '192.0.2.0/24' },
        ]),
      ),
      inputs: [p(0, NET, shortTcp(SRV)), p(1000, NET, shortTcp(A('192.0.2.5'))), p(2000, NET, webIn(5200, 443))],
    },
    {
      name: 'SG on the NAT instance: the recommended NATSG passes HTTPS, drops DNS and ping',
      scenario: natsg,
      inputs: [
        p(0, natsgApp, tcpOut(F_SYN, 1)),
        p(1000, NET, tcpIn(F_SYN | F_ACK, 500, 2)),
        p(2000, natsgApp, udpOut()),
        p(3000, natsgApp, buildIcmpEcho({ src: APP_IP, dst: SRV, id: 9, seq: 1 })),
      ],
    },
    {
      name: 'NACL inbound deny: rule 100 denies ssh, rule 200 allows the rest',
      scenario: filtered(
        pubAcl(
          [
            { rule: 100, action: 'deny', protocol: 'tcp', ports: 22, cidr: '0.0.0.0/0' },
            { rule: 200, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' },
          ],
          allowAll,
        ),
      ),
      inputs: [p(0, NET, webIn(5300, 22)), p(1000, NET, webIn(5301, 80)), p(2000, WEB, webOut(80, 5301))],
    },
    {
      name: 'NACL rule order: the lowest number wins',
      scenario: filtered(
        pubAcl(
          [
            { rule: 90, action: 'deny', protocol: 'tcp', ports: 80, cidr: '198.51.100.0/24' },
            { rule: 100, action: 'allow', protocol: 'tcp', ports: 80, cidr: '0.0.0.0/0' },
          ],
          allowAll,
        ),
      ),
      inputs: [p(0, NET, webIn(5400, 80)), p(1000, NET, webIn(5401, 80, F_SYN, 1, 0, A('192.0.2.9')))],
    },
    {
      name: 'NACL without the ephemeral range: replies to the private subnet are dropped',
      scenario: filtered(privAcl([{ rule: 100, action: 'allow', protocol: 'all', cidr: '10.0.0.0/16' }], allowAll)),
      inputs: [p(0, APP, tcpOut(F_SYN, 1)), p(1000, NET, tcpIn(F_SYN | F_ACK, 500, 2))],
    },
    {
      name: 'NACL with the ephemeral range: replies to the private subnet pass',
      scenario: filtered(
        privAcl([{ rule: 100, action: 'allow', protocol: 'all', cidr: '10.0.0.0/16' }, ephemeral], allowAll),
      ),
      inputs: [p(0, APP, tcpOut(F_SYN, 1)), p(1000, NET, tcpIn(F_SYN | F_ACK, 500, 2))],
    },
    {
      name: 'NACL outbound deny at the IGW: DNS through the NAT instance leaves no packet',
      scenario: filtered(
        pubAcl(allowAll, [
          { rule: 100, action: 'deny', protocol: 'udp', ports: 53, cidr: '0.0.0.0/0' },
          { rule: 200, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' },
        ]),
      ),
      inputs: [p(0, APP, udpOut()), p(1000, APP, tcpOut(F_SYN, 1))],
    },
    {
      // Campaign seed 995002 run 36: the kernel engine called a REJECT whose answer the ACL denied
      // nacl-deny (no output left to show the REJECT) until the REJECT's mark at OUTPUT decided.
      name: "NACL outbound deny on the NAT instance's subnet: a filter REJECT's answers die at the ACL, the packets are still rejected",
      scenario: filtered(
        both(pubAcl(allowAll, []), (o: Obj) => {
          o.instances.nat.iptables += [
            '*filter',
            ':INPUT ACCEPT [0:0]',
            ':FORWARD ACCEPT [0:0]',
            ':OUTPUT ACCEPT [0:0]',
            '-A FORWARD -p udp -m udp --dport 53 -j REJECT --reject-with icmp-net-unreachable',
            '-A FORWARD -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset',
            'COMMIT',
            '',
          ].join('\n');
        }),
      ),
      inputs: [
        p(0, APP, udpOut()),
        p(1000, APP, buildTcp({ src: APP_IP, dst: SRV, sport: 41000, dport: 25, seq: 1, flags: F_SYN, window: 64240 })),
      ],
    },
    {
      name: 'NACL between subnets, none inside a subnet',
      scenario: filtered(
        both(
          app2,
          privAcl(allowAll, [
            { rule: 100, action: 'deny', protocol: 'all', cidr: '10.0.0.0/24' },
            ...allowAll.map((r) => ({ ...r, rule: 200 })),
          ]),
        ),
      ),
      inputs: [
        p(0, APP, buildUdp({ src: APP_IP, dst: WEB_IP, sport: 7100, dport: 7101, payload: new Uint8Array(2) })),
        p(1000, APP, buildUdp({ src: APP_IP, dst: APP2_IP, sport: 7100, dport: 7101, payload: new Uint8Array(2) })),
      ],
    },
    {
      name: 'NACL ICMP type rule: echo requests pass, timestamp requests do not',
      scenario: filtered(
        pubAcl([{ rule: 100, action: 'allow', protocol: 'icmp', icmpType: 8, cidr: '0.0.0.0/0' }], allowAll),
      ),
      inputs: [p(0, NET, buildIcmpEcho({ src: SRV, dst: WEB_EIP, id: 5, seq: 1 })), p(1000, NET, timestampRequest())],
    },
    {
      name: 'NACL entry changed mid-run: a flow allowed before is denied from the next packet',
      scenario: filtered(pubAcl(allowAll, allowAll)),
      inputs: [
        p(0, NET, webIn(5500, 80)),
        p(1000, WEB, webOut(80, 5500)),
        p(2000, NET, webIn(5500, 80, F_ACK, 2, 901)),
      ],
      filters: [
        {
          at: 2,
          scenario: filtered(
            pubAcl(
              [{ rule: 50, action: 'deny', protocol: 'tcp', ports: 80, cidr: '0.0.0.0/0' }, ...allowAll],
              allowAll,
            ),
          ),
        },
      ],
    },
    {
      name: 'SG and NACL together: the ACL is checked before the ENI',
      scenario: filtered(
        both(
          tracked443,
          pubAcl(
            [
              { rule: 100, action: 'deny', protocol: 'tcp', ports: 443, cidr: '192.0.2.0/24' },
              ...allowAll.map((r) => ({ ...r, rule: 200 })),
            ],
            allowAll,
          ),
        ),
      ),
      inputs: [
        p(0, NET, webIn(5600, 443, F_SYN, 1, 0, A('192.0.2.9'))),
        p(1000, NET, webIn(5601, 443)),
        p(2000, NET, webIn(5602, 22)),
      ],
    },
  ];
  return cases;
}

export type FilterCase = NatCase;

/** A TCP segment to the web server's Elastic IP whose header is cut to 12 bytes (no readable ports for the filters). */
function shortTcp(src: number): Uint8Array {
  const f = buildTcp({ src, dst: WEB_EIP, sport: 5700, dport: 443, seq: 1, flags: F_SYN, window: 65160 });
  const cut = f.slice(0, 20 + 12);
  cut[2] = 0;
  cut[3] = cut.length;
  return fixChecksums(cut);
}

/** An ICMP timestamp request (type 13) from the far host to the web server's Elastic IP. */
function timestampRequest(): Uint8Array {
  return buildIcmpQuery({ src: SRV, dst: WEB_EIP, id: 6, seq: 1, type: ICMP_TIMESTAMP, payload: new Uint8Array(12) });
}
