// Scripted captures for the corpus: small, readable conversations on the built-in scenario
// (scenarios/vpc-nat-instance.yaml), each as a *one-sided* capture the way tcpdump on the private
// host would show it — the far side's frames are addressed to the host's private address, and
// ICMP errors quote the host's packet with its private address — plus frames already addressed to
// a public address (an internet host talking to web's Elastic IP), which replay as they are.
// Deterministic (no randomness): the same bytes on every run. Cold path.
import { parseIpv4Addr } from '../packet/addr.ts';
import {
  buildEthernet,
  buildIcmpEcho,
  buildIcmpError,
  buildIpv4,
  buildTcp,
  buildUdp,
  fixChecksums,
} from '../packet/build.ts';
import {
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  ICMP_DEST_UNREACH,
  ICMP_FRAG_NEEDED,
  ICMP_HOST_UNREACH,
  ICMP_PORT_UNREACH,
  ICMP_TIME_EXCEEDED,
  ICMP_EXC_TTL,
} from '../packet/constants.ts';

/** One frame of a scripted capture: an IPv4 packet and when it was seen. */
export interface ScriptedFrame {
  timeUs: number;
  ip: Uint8Array;
  /** A whole Ethernet frame to write instead of wrapping `ip` (non-IPv4 and link-level cases). */
  eth?: Uint8Array;
}

export interface ScriptedCapture {
  /** Corpus entry name (directory name). */
  name: string;
  description: string;
  /** Extra instances added to the built-in scenario (private subnet hosts), if any. */
  extraHosts: Array<{ name: string; privateIp: string }>;
  frames: ScriptedFrame[];
}

/** 2023-11-14T22:13:20Z: a fixed start so the files are byte-identical on every run. */
export const SCRIPT_EPOCH_US = 1_700_000_000_000_000;

const ip = parseIpv4Addr;
export const APP = ip('10.0.1.10');
export const APP2 = ip('10.0.1.11');
export const WEB = ip('10.0.0.20');
export const WEB_EIP = ip('203.0.113.20');
export const SERVER = ip('198.51.100.7');
export const SERVER2 = ip('198.51.100.8');
export const RESOLVER = ip('198.51.100.53');
export const TRACE_TARGET = ip('198.51.100.99');
export const ROUTER = ip('192.0.2.1');
export const CLIENT = ip('192.0.2.50');

const enc = new TextEncoder();
const MSS_1460 = Uint8Array.of(2, 4, 0x05, 0xb4);

/** A timeline: frames appended with increasing timestamps. */
class Script {
  readonly frames: ScriptedFrame[] = [];
  private t = SCRIPT_EPOCH_US;
  private ipId = 0x1000;

  /** Advances the clock by `ms` milliseconds (may be fractional). */
  wait(ms: number): this {
    this.t += Math.round(ms * 1000);
    return this;
  }
  push(ipPkt: Uint8Array, afterMs = 1): Uint8Array {
    this.wait(afterMs);
    this.frames.push({ timeUs: this.t, ip: ipPkt });
    return ipPkt;
  }
  pushEth(eth: Uint8Array, afterMs = 1): void {
    this.wait(afterMs);
    this.frames.push({ timeUs: this.t, ip: new Uint8Array(0), eth });
  }
  /** A frame whose timestamp is `backMs` before the previous one (a capture merged out of order). */
  pushBackwards(ipPkt: Uint8Array, backMs: number): void {
    this.frames.push({ timeUs: this.t - Math.round(backMs * 1000), ip: ipPkt });
  }
  nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }
}

/**
 * A TCP conversation with coherent sequence numbers (conntrack's window tracking accepts it).
 * `a` is the side that opens the connection.
 */
class Tcp {
  private seqA: number;
  private seqB: number;
  constructor(
    private readonly sc: Script,
    readonly a: number,
    readonly aPort: number,
    readonly b: number,
    readonly bPort: number,
    isnA: number,
    isnB: number,
    private readonly ttlA = 64,
    private readonly ttlB = 52,
  ) {
    this.seqA = isnA >>> 0;
    this.seqB = isnB >>> 0;
  }
  private send(fromA: boolean, flags: number, payload?: Uint8Array, opts?: Uint8Array, afterMs = 1): Uint8Array {
    const len = payload?.length ?? 0;
    const seq = fromA ? this.seqA : this.seqB;
    const ack = flags & F_ACK ? (fromA ? this.seqB : this.seqA) : 0;
    const pkt = buildTcp({
      src: fromA ? this.a : this.b,
      dst: fromA ? this.b : this.a,
      sport: fromA ? this.aPort : this.bPort,
      dport: fromA ? this.bPort : this.aPort,
      seq,
      ack,
      flags,
      window: fromA ? 64240 : 65160,
      options: opts,
      payload,
      ttl: fromA ? this.ttlA : this.ttlB,
      ipId: this.sc.nextId(),
    });
    const consumed = len + (flags & F_SYN ? 1 : 0) + (flags & F_FIN ? 1 : 0);
    if (fromA) this.seqA = (this.seqA + consumed) >>> 0;
    else this.seqB = (this.seqB + consumed) >>> 0;
    return this.sc.push(pkt, afterMs);
  }
  handshake(rttMs = 20): this {
    this.send(true, F_SYN, undefined, MSS_1460);
    this.send(false, F_SYN | F_ACK, undefined, MSS_1460, rttMs);
    this.send(true, F_ACK, undefined, undefined, 0.1);
    return this;
  }
  dataA(text: string, afterMs = 1): Uint8Array {
    return this.send(true, F_PSH | F_ACK, enc.encode(text), undefined, afterMs);
  }
  dataB(text: string, afterMs = 20): Uint8Array {
    return this.send(false, F_PSH | F_ACK, enc.encode(text), undefined, afterMs);
  }
  ackA(afterMs = 0.2): Uint8Array {
    return this.send(true, F_ACK, undefined, undefined, afterMs);
  }
  ackB(afterMs = 20): Uint8Array {
    return this.send(false, F_ACK, undefined, undefined, afterMs);
  }
  /** A closes first: FIN, FIN/ACK, ACK (both sides' FINs). */
  closeFromA(rttMs = 20): this {
    this.send(true, F_FIN | F_ACK, undefined, undefined, 1);
    this.send(false, F_FIN | F_ACK, undefined, undefined, rttMs);
    this.send(true, F_ACK, undefined, undefined, 0.1);
    return this;
  }
  closeFromB(rttMs = 20): this {
    this.send(false, F_FIN | F_ACK, undefined, undefined, rttMs);
    this.send(true, F_ACK, undefined, undefined, 0.2);
    this.send(true, F_FIN | F_ACK, undefined, undefined, 0.1);
    this.send(false, F_ACK, undefined, undefined, rttMs);
    return this;
  }
  resetFromA(): Uint8Array {
    return this.send(true, F_RST | F_ACK, undefined, undefined, 1);
  }
  synOnlyFromA(): Uint8Array {
    return this.send(true, F_SYN, undefined, MSS_1460);
  }
}

function dnsQuery(id: number, name: string): Uint8Array {
  const labels = name.split('.').flatMap((l) => [l.length, ...enc.encode(l)]);
  return Uint8Array.from([id >>> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

function dnsAnswer(query: Uint8Array, addr: number): Uint8Array {
  const a = Uint8Array.from([
    ...query,
    0xc0,
    0x0c,
    0,
    1,
    0,
    1,
    0,
    0,
    0x0e,
    0x10,
    0,
    4,
    addr >>> 24,
    (addr >>> 16) & 255,
    (addr >>> 8) & 255,
    addr & 255,
  ]);
  a[2] = 0x81;
  a[3] = 0x80;
  a[7] = 1; // ANCOUNT
  return a;
}

/** TCP sessions with handshake, data both ways and teardown (both closing orders, and a reset). */
function tcpSessions(): ScriptedCapture {
  const sc = new Script();
  const https = new Tcp(sc, APP, 40000, SERVER, 443, 0x1000_0000, 0x7000_0000).handshake();
  https.dataA('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n');
  https.dataB('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
  https.ackA();
  https.closeFromA();
  const http = new Tcp(sc, APP, 40001, SERVER2, 80, 0x2000_0000, 0x8000_0000).handshake();
  http.dataA('GET /big HTTP/1.1\r\n\r\n');
  http.dataB('HTTP/1.1 200 OK\r\n\r\npart-1 ');
  http.dataB('part-2', 1);
  http.ackA();
  http.closeFromB();
  const aborted = new Tcp(sc, APP, 40002, SERVER, 8443, 0x3000_0000, 0x9000_0000).handshake();
  aborted.dataA('hello?');
  aborted.resetFromA();
  // An internet client talks to web's Elastic IP: frames already addressed to a public address.
  const inbound = new Tcp(sc, CLIENT, 51000, WEB_EIP, 80, 0x4000_0000, 0xa000_0000, 50, 64);
  inbound.handshake();
  inbound.dataA('GET /index.html HTTP/1.1\r\n\r\n');
  inbound.dataB('HTTP/1.1 404 Not Found\r\n\r\n');
  inbound.closeFromA();
  // web answers from its private address (what a capture on web shows).
  return {
    name: 'tcp-sessions',
    description:
      'app 10.0.1.10 opens three TCP connections through the NAT instance (HTTPS closed by app, HTTP closed by the server, one reset after data); ' +
      'an internet client connects to web on its Elastic IP. One-sided: server replies are addressed to 10.0.1.10.',
    extraHosts: [],
    frames: fixWebSide(sc.frames),
  };
}

/** A capture on web shows its replies from its private address; the client's frames go to the EIP. */
function fixWebSide(frames: ScriptedFrame[]): ScriptedFrame[] {
  // Frames built by the inbound Tcp use WEB_EIP for web's side in both directions; web's own
  // frames leave from its private address (the IGW maps it): rewrite their source.
  return frames.map((f) => {
    const src = ((f.ip[12] << 24) | (f.ip[13] << 16) | (f.ip[14] << 8) | f.ip[15]) >>> 0;
    if (src !== WEB_EIP) return f;
    const b = f.ip.slice();
    b[12] = WEB >>> 24;
    b[13] = (WEB >>> 16) & 255;
    b[14] = (WEB >>> 8) & 255;
    b[15] = WEB & 255;
    return { timeUs: f.timeUs, ip: fixChecksums(b) };
  });
}

/** DNS over UDP: queries from several source ports, one without a UDP checksum, answers. */
function dnsUdp(): ScriptedCapture {
  const sc = new Script();
  const names = ['example.test', 'www.example.test', 'mail.example.test'];
  names.forEach((n, i) => {
    const q = dnsQuery(0x1000 + i, n);
    sc.push(buildUdp({ src: APP, dst: RESOLVER, sport: 53000 + i, dport: 53, payload: q, ipId: sc.nextId() }), 5);
    sc.push(
      buildUdp({
        src: RESOLVER,
        dst: APP,
        sport: 53,
        dport: 53000 + i,
        payload: dnsAnswer(q, SERVER),
        ttl: 55,
        ipId: sc.nextId(),
      }),
      15,
    );
  });
  const q = dnsQuery(0x2000, 'nochecksum.test');
  sc.push(
    buildUdp({ src: APP, dst: RESOLVER, sport: 53100, dport: 53, payload: q, noChecksum: true, ipId: sc.nextId() }),
    5,
  );
  sc.push(
    buildUdp({
      src: RESOLVER,
      dst: APP,
      sport: 53,
      dport: 53100,
      payload: dnsAnswer(q, SERVER2),
      noChecksum: true,
      ttl: 55,
      ipId: sc.nextId(),
    }),
    15,
  );
  // Same socket again 3 s later: the entry is still alive (30 s UDP timeout) and becomes a stream.
  const q2 = dnsQuery(0x1003, 'example.test');
  sc.push(buildUdp({ src: APP, dst: RESOLVER, sport: 53000, dport: 53, payload: q2, ipId: sc.nextId() }), 3000);
  sc.push(
    buildUdp({
      src: RESOLVER,
      dst: APP,
      sport: 53,
      dport: 53000,
      payload: dnsAnswer(q2, SERVER),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    15,
  );
  return {
    name: 'dns-udp',
    description:
      'app resolves names over UDP from several source ports (one query without UDP checksum); a query on a reused socket 3 s later. One-sided.',
    extraHosts: [],
    frames: sc.frames,
  };
}

/** Ping: echo request/reply from app (through the NAT) and from web (through the IGW only). */
function ping(): ScriptedCapture {
  const sc = new Script();
  const payload = enc.encode('natlab-ping-0123456789abcdef0123456789abcdef');
  for (let seq = 1; seq <= 4; seq++) {
    sc.push(
      buildIcmpEcho({ src: APP, dst: SERVER, id: 0x4e4c, seq, payload, ipId: sc.nextId() }),
      seq === 1 ? 1 : 1000,
    );
    sc.push(
      buildIcmpEcho({ src: SERVER, dst: APP, id: 0x4e4c, seq, payload, reply: true, ttl: 57, ipId: sc.nextId() }),
      12,
    );
  }
  for (let seq = 1; seq <= 2; seq++) {
    sc.push(buildIcmpEcho({ src: WEB, dst: SERVER2, id: 0x0777, seq, payload, ipId: sc.nextId() }), 500);
    sc.push(
      buildIcmpEcho({ src: SERVER2, dst: WEB, id: 0x0777, seq, payload, reply: true, ttl: 57, ipId: sc.nextId() }),
      12,
    );
  }
  // An internet host pings web's Elastic IP and gets the reply.
  sc.push(buildIcmpEcho({ src: CLIENT, dst: WEB_EIP, id: 0x0100, seq: 1, payload, ttl: 50, ipId: sc.nextId() }), 200);
  sc.push(buildIcmpEcho({ src: WEB, dst: CLIENT, id: 0x0100, seq: 1, payload, reply: true, ipId: sc.nextId() }), 1);
  return {
    name: 'ping',
    description:
      'app pings a server through the NAT instance (4 echo/reply pairs), web pings through the IGW, an internet host pings web. One-sided.',
    extraHosts: [],
    frames: sc.frames,
  };
}

/**
 * Traceroute from app: UDP probes with TTL 1, 2, 3. TTL 1 expires at the NAT instance (the engine
 * generates the time exceeded); TTL 2 leaves with TTL 1 and a router on the internet answers
 * time exceeded; TTL 3 reaches the target, which answers port unreachable.
 */
function traceroute(): ScriptedCapture {
  const sc = new Script();
  for (let ttl = 1; ttl <= 3; ttl++) {
    for (let k = 0; k < 2; k++) {
      const dport = 33434 + (ttl - 1) * 2 + k;
      const probe = sc.push(
        buildUdp({
          src: APP,
          dst: TRACE_TARGET,
          sport: 44000,
          dport,
          payload: new Uint8Array(32).fill(0x40 + k),
          ttl,
          ipId: sc.nextId(),
        }),
        5,
      );
      if (ttl === 1) continue; // the NAT instance's own time exceeded is the engine's output
      // The quoted probe as the replier saw it (TTL already decremented by the NAT instance), with
      // the private source a capture on app shows after the NAT instance de-translated it.
      const seen = probe.slice();
      seen[8] = 1;
      const quoted = fixChecksums(seen);
      if (ttl === 2)
        sc.push(
          buildIcmpError({
            src: ROUTER,
            dst: APP,
            type: ICMP_TIME_EXCEEDED,
            code: ICMP_EXC_TTL,
            quoted,
            ttl: 254,
            ipId: sc.nextId(),
          }),
          8,
        );
      else
        sc.push(
          buildIcmpError({
            src: TRACE_TARGET,
            dst: APP,
            type: ICMP_DEST_UNREACH,
            code: ICMP_PORT_UNREACH,
            quoted,
            ttl: 60,
            ipId: sc.nextId(),
          }),
          12,
        );
    }
  }
  return {
    name: 'traceroute',
    description:
      'traceroute-style UDP probes from app with TTL 1..3: TTL 1 expires at the NAT instance, TTL 2 at an internet router (time exceeded), TTL 3 reaches the target (port unreachable). One-sided.',
    extraHosts: [],
    frames: sc.frames,
  };
}

/** ICMP unreachables for UDP and TCP flows, and a fragmentation-needed with its MTU. */
function icmpUnreachable(): ScriptedCapture {
  const sc = new Script();
  const udp = sc.push(
    buildUdp({
      src: APP,
      dst: SERVER,
      sport: 45000,
      dport: 9999,
      payload: enc.encode('anyone there?'),
      ipId: sc.nextId(),
    }),
    1,
  );
  sc.push(
    buildIcmpError({
      src: SERVER,
      dst: APP,
      type: ICMP_DEST_UNREACH,
      code: ICMP_PORT_UNREACH,
      quoted: udp,
      quoteLen: udp.length,
      ttl: 58,
      ipId: sc.nextId(),
    }),
    10,
  );
  const syn = new Tcp(sc, APP, 45001, SERVER2, 81, 0x5000_0000, 0).synOnlyFromA();
  sc.push(
    buildIcmpError({
      src: ROUTER,
      dst: APP,
      type: ICMP_DEST_UNREACH,
      code: ICMP_HOST_UNREACH,
      quoted: syn,
      ttl: 250,
      ipId: sc.nextId(),
    }),
    10,
  );
  const t = new Tcp(sc, APP, 45002, SERVER, 443, 0x6000_0000, 0x6100_0000).handshake();
  const big = t.dataA('x'.repeat(1200));
  // A router with a 1000-byte MTU asks for smaller packets, quoting 28 bytes of TCP (RFC 1812 style).
  sc.push(
    buildIcmpError({
      src: ROUTER,
      dst: APP,
      type: ICMP_DEST_UNREACH,
      code: ICMP_FRAG_NEEDED,
      quoted: big,
      quoteLen: 48,
      rest: 1000,
      ttl: 250,
      ipId: sc.nextId(),
    }),
    8,
  );
  t.dataA('y'.repeat(900), 2);
  t.ackB();
  t.closeFromA();
  return {
    name: 'icmp-unreachable',
    description:
      'port unreachable for a UDP datagram (full quote), host unreachable for a TCP SYN (8-byte quote), fragmentation needed (MTU 1000) for a TCP segment mid-connection. One-sided.',
    extraHosts: [],
    frames: sc.frames,
  };
}

/**
 * Port collisions: app and app2 (a second private host) use the same source port towards the same
 * server; MASQUERADE must give the second a different port, and replies must reach each host.
 */
function portCollision(): ScriptedCapture {
  const sc = new Script();
  const a = new Tcp(sc, APP, 40000, SERVER, 443, 0x1111_0000, 0x7777_0000).handshake();
  const b = new Tcp(sc, APP2, 40000, SERVER, 443, 0x2222_0000, 0x8888_0000).handshake();
  a.dataA('from app');
  b.dataA('from app2');
  a.dataB('to app');
  b.dataB('to app2');
  a.closeFromA();
  b.closeFromA();
  const q = dnsQuery(0x3000, 'collide.test');
  sc.push(buildUdp({ src: APP, dst: RESOLVER, sport: 5353, dport: 53, payload: q, ipId: sc.nextId() }), 2);
  sc.push(buildUdp({ src: APP2, dst: RESOLVER, sport: 5353, dport: 53, payload: q, ipId: sc.nextId() }), 1);
  sc.push(
    buildUdp({
      src: RESOLVER,
      dst: APP,
      sport: 53,
      dport: 5353,
      payload: dnsAnswer(q, SERVER),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    10,
  );
  sc.push(
    buildUdp({
      src: RESOLVER,
      dst: APP2,
      sport: 53,
      dport: 5353,
      payload: dnsAnswer(q, SERVER2),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    1,
  );
  sc.push(buildIcmpEcho({ src: APP, dst: SERVER, id: 7, seq: 1, ipId: sc.nextId() }), 2);
  sc.push(buildIcmpEcho({ src: APP2, dst: SERVER, id: 7, seq: 1, ipId: sc.nextId() }), 1);
  sc.push(buildIcmpEcho({ src: SERVER, dst: APP, id: 7, seq: 1, reply: true, ttl: 57, ipId: sc.nextId() }), 10);
  sc.push(buildIcmpEcho({ src: SERVER, dst: APP2, id: 7, seq: 1, reply: true, ttl: 57, ipId: sc.nextId() }), 1);
  return {
    name: 'port-collision',
    description:
      'two private hosts (app 10.0.1.10, app2 10.0.1.11) use the same TCP source port, UDP source port and ICMP echo id towards the same server: the NAT instance must keep the two apart. Captured on both hosts, merged (one-sided).',
    extraHosts: [{ name: 'app2', privateIp: '10.0.1.11' }],
    frames: sc.frames,
  };
}

/**
 * Bad input among good: frames natlab counts before the engines (ARP, IPv6, a cut link header, a
 * cut IPv4 header, sources that belong nowhere) and frames the engines drop (bad IP checksum, bad
 * total length, bad IHL, a fragment, a truncated TCP header), with a ping and a DNS exchange
 * before and after that must come through untouched, and one timestamp that goes backwards.
 */
function malformedMix(): ScriptedCapture {
  const sc = new Script();
  const echo = (seq: number) => {
    sc.push(buildIcmpEcho({ src: APP, dst: SERVER, id: 0x0bad, seq, ipId: sc.nextId() }), 5);
    sc.push(buildIcmpEcho({ src: SERVER, dst: APP, id: 0x0bad, seq, reply: true, ttl: 57, ipId: sc.nextId() }), 10);
  };
  echo(1);
  // ARP who-has 10.0.1.1 from app.
  const arp = Uint8Array.from([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 1,
    10, 0, 1, 10, 0, 0, 0, 0, 0, 0, 10, 0, 1, 1,
  ]);
  sc.pushEth(arp);
  // An IPv6 frame (just the fixed header of a hop-by-hop-less packet with no payload).
  const v6 = new Uint8Array(14 + 40);
  v6.set([0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd, 0x60], 0);
  v6[14 + 6] = 59; // next header: none
  v6[14 + 7] = 255;
  sc.pushEth(v6);
  // A frame cut inside the Ethernet header, and one cut inside the IPv4 header.
  sc.pushEth(Uint8Array.from([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0]));
  const udp = buildUdp({
    src: APP,
    dst: RESOLVER,
    sport: 53999,
    dport: 53,
    payload: dnsQuery(0x4242, 'cut.test'),
    ipId: sc.nextId(),
  });
  sc.pushEth(buildEthernet(udp.subarray(0, 12), { src: HOST_MAC, dst: GATEWAY_MAC }));
  // Fed to the engines, which drop them: bad IP checksum, total length beyond the data, bad IHL.
  const badSum = udp.slice();
  badSum[10] ^= 0x55;
  sc.push(badSum);
  const badLen = udp.slice();
  badLen[3] += 40;
  sc.push(fixIpChecksum(badLen));
  const badIhl = udp.slice();
  badIhl[0] = 0x44;
  sc.push(badIhl);
  // A non-first fragment and a truncated TCP header (conntrack: INVALID).
  const frag = buildUdp({
    src: APP,
    dst: RESOLVER,
    sport: 53998,
    dport: 53,
    payload: new Uint8Array(16),
    ipId: sc.nextId(),
  });
  frag[6] = 0x00;
  frag[7] = 0x03; // offset 24 bytes
  sc.push(fixIpChecksum(frag));
  const syn = buildTcp({ src: APP, dst: SERVER, sport: 46000, dport: 443, flags: F_SYN, seq: 1, ipId: sc.nextId() });
  const cutTcp = syn.slice(0, 30);
  cutTcp[2] = 0;
  cutTcp[3] = 30;
  sc.push(fixIpChecksum(cutTcp));
  // Sources that belong nowhere: a VPC address no instance has, the NAT's Elastic IP, 0.0.0.0.
  sc.push(buildUdp({ src: ip('10.0.5.5'), dst: SERVER, sport: 1000, dport: 53, ipId: sc.nextId() }));
  sc.push(buildUdp({ src: ip('203.0.113.10'), dst: SERVER, sport: 1000, dport: 53, ipId: sc.nextId() }));
  sc.push(buildUdp({ src: 0, dst: 0xffffffff, sport: 68, dport: 67, ipId: sc.nextId() }));
  // A DNS exchange, its answer stamped 2 ms before the query (clamped), then more pings.
  const q = dnsQuery(0x5151, 'after.test');
  sc.push(buildUdp({ src: APP, dst: RESOLVER, sport: 53500, dport: 53, payload: q, ipId: sc.nextId() }), 5);
  sc.pushBackwards(
    buildUdp({
      src: RESOLVER,
      dst: APP,
      sport: 53,
      dport: 53500,
      payload: dnsAnswer(q, SERVER),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    2,
  );
  echo(2);
  echo(3);
  return {
    name: 'malformed-mix',
    description:
      'bad input among good: ARP, IPv6, a cut Ethernet header and a cut IPv4 header (counted, not fed); bad IP checksum, bad total length, bad IHL, a fragment, a truncated TCP header (fed; the engines drop or mark them); ' +
      'sources that belong nowhere; a timestamp that goes backwards; pings and DNS before and after must come through.',
    extraHosts: [],
    frames: sc.frames,
  };
}

function fixIpChecksum(p: Uint8Array): Uint8Array {
  const ihl = (p[0] & 15) << 2;
  p[10] = 0;
  p[11] = 0;
  let s = 0;
  for (let i = 0; i < ihl && i + 1 < p.length; i += 2) s += (p[i] << 8) | p[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  p[10] = c >>> 8;
  p[11] = c & 0xff;
  return p;
}

/**
 * The traffic `natlab compare` runs when no capture is given: what separates NAT designs (a NAT
 * instance, fck-nat, alterNAT, a NAT gateway), from `host` (a private host) — a short TCP session;
 * a TCP connection idle 400 s (past a NAT gateway's 350 s idle timeout) that then sends again; DNS
 * over UDP; a UDP exchange whose reply comes 60 s later (past Linux's 30 s UDP timeout); ping; a
 * GRE packet (not TCP/UDP/ICMP); a fragmented UDP datagram and a fragmented ping; a
 * traceroute-style TTL-1 probe; a port unreachable back for a UDP probe; an unsolicited SYN from
 * the internet. Captured on the host (one-sided: replies are addressed to its private address).
 */
export function natDesignsCapture(host = APP): ScriptedCapture {
  const sc = new Script();
  // 1. A short HTTPS-like session.
  const a = new Tcp(sc, host, 41000, SERVER, 443, 0x11110000, 0x22220000);
  a.handshake();
  a.dataA('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n');
  a.dataB('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
  a.closeFromA();
  // 2. A database connection that stays idle 400 s, then the client sends a query.
  const b = new Tcp(sc, host, 41001, SERVER2, 5432, 0x33330000, 0x44440000);
  b.handshake();
  b.dataA('SELECT 1;');
  b.dataB('1');
  b.dataA('SELECT 2; -- after 400 s idle', 400_000);
  b.dataB('2');
  // 3. DNS.
  const q = dnsQuery(0x3000, 'example.test');
  sc.push(buildUdp({ src: host, dst: RESOLVER, sport: 53300, dport: 53, payload: q, ipId: sc.nextId() }), 5);
  sc.push(
    buildUdp({
      src: RESOLVER,
      dst: host,
      sport: 53,
      dport: 53300,
      payload: dnsAnswer(q, SERVER),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    15,
  );
  // 4. A UDP request whose answer takes 60 s.
  const req = enc.encode('job?');
  sc.push(buildUdp({ src: host, dst: SERVER, sport: 47000, dport: 7000, payload: req, ipId: sc.nextId() }), 5);
  sc.push(
    buildUdp({
      src: SERVER,
      dst: host,
      sport: 7000,
      dport: 47000,
      payload: enc.encode('done'),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    60_000,
  );
  // 5. Ping.
  sc.push(
    buildIcmpEcho({ src: host, dst: SERVER, id: 0x4242, seq: 1, payload: enc.encode('natlab'), ipId: sc.nextId() }),
    5,
  );
  sc.push(
    buildIcmpEcho({
      src: SERVER,
      dst: host,
      id: 0x4242,
      seq: 1,
      reply: true,
      payload: enc.encode('natlab'),
      ttl: 55,
      ipId: sc.nextId(),
    }),
    20,
  );
  // 6. GRE (protocol 47) to a tunnel endpoint.
  sc.push(
    buildIpv4({
      src: host,
      dst: SERVER2,
      proto: 47,
      payload: Uint8Array.of(0, 0, 0x08, 0, 0x45, 0, 0, 20),
      ipId: sc.nextId(),
    }),
    5,
  );
  // 7. A UDP datagram in two fragments, and a ping in two fragments.
  const big = buildUdp({
    src: host,
    dst: SERVER,
    sport: 47001,
    dport: 7001,
    payload: new Uint8Array(1500 - 28 + 200).fill(0x61),
    ipId: sc.nextId(),
  });
  for (const f of fragmentIpv4(big, 1480)) sc.push(f, 1);
  const bigPing = buildIcmpEcho({
    src: host,
    dst: SERVER,
    id: 0x4243,
    seq: 1,
    payload: new Uint8Array(1600).fill(0x62),
    ipId: sc.nextId(),
  });
  for (const f of fragmentIpv4(bigPing, 1480)) sc.push(f, 1);
  // 8. A traceroute probe with TTL 1 (the NAT's first hop answers it, or not).
  sc.push(
    buildUdp({
      src: host,
      dst: TRACE_TARGET,
      sport: 47002,
      dport: 33434,
      payload: new Uint8Array(12),
      ttl: 1,
      ipId: sc.nextId(),
    }),
    5,
  );
  // 9. A UDP probe to a closed port, answered with port unreachable.
  const probe = buildUdp({
    src: host,
    dst: SERVER2,
    sport: 47003,
    dport: 9,
    payload: enc.encode('x'),
    ipId: sc.nextId(),
  });
  sc.push(probe, 5);
  sc.push(
    buildIcmpError({
      src: SERVER2,
      dst: host,
      type: ICMP_DEST_UNREACH,
      code: ICMP_PORT_UNREACH,
      quoted: probe,
      ttl: 55,
      ipId: sc.nextId(),
    }),
    20,
  );
  // 10. An unsolicited SYN from the internet to the host.
  sc.push(buildTcp({ src: CLIENT, dst: host, sport: 50000, dport: 22, flags: F_SYN, ttl: 50, ipId: sc.nextId() }), 5);
  return {
    name: 'nat-designs',
    description:
      'traffic that separates NAT designs (natlab compare): idle TCP, slow UDP reply, GRE, fragments, TTL 1, ICMP error, unsolicited SYN',
    extraHosts: [],
    frames: sc.frames,
  };
}

/** Splits an IPv4 packet (no options) into fragments of at most `mtu` bytes (8-byte aligned payloads). */
function fragmentIpv4(pkt: Uint8Array, mtu: number): Uint8Array[] {
  const hl = (pkt[0] & 15) << 2;
  const payload = pkt.subarray(hl);
  const step = (mtu - hl) & ~7;
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += step) {
    const part = payload.subarray(off, Math.min(payload.length, off + step));
    const f = new Uint8Array(hl + part.length);
    f.set(pkt.subarray(0, hl));
    f.set(part, hl);
    f[2] = f.length >>> 8;
    f[3] = f.length & 0xff;
    const more = off + step < payload.length ? 0x2000 : 0;
    const fo = more | (off >>> 3);
    f[6] = fo >>> 8;
    f[7] = fo & 0xff;
    out.push(fixIpChecksum(f));
  }
  return out;
}

/** Every scripted corpus capture, in corpus order. */
export function scriptedCaptures(): ScriptedCapture[] {
  return [tcpSessions(), dnsUdp(), ping(), traceroute(), icmpUnreachable(), portCollision(), malformedMix()];
}

const HOST_MAC = '02:00:00:00:00:01';
const GATEWAY_MAC = '02:00:00:00:00:02';

/** Ethernet framing for a capture "on the host": the host's MAC and its gateway's, by direction. */
export function scriptedEthernet(f: ScriptedFrame): Uint8Array {
  if (f.eth) return f.eth;
  const fromVpc = f.ip[12] === 10; // the built-in VPC is 10.0.0.0/16
  return buildEthernet(f.ip, fromVpc ? { src: HOST_MAC, dst: GATEWAY_MAC } : { src: GATEWAY_MAC, dst: HOST_MAC });
}
