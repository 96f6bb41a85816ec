// Two-sided captures of a NAT box played by an engine: each flow's conversation (a TCP
// handshake, data and close; a DNS-like UDP exchange; an ICMP echo) goes through the engine, the
// inside host's frames and what the engine delivers to it become the inside capture, what it sends
// to the internet and the remote's answers (addressed to the engine's own mapping) the outside
// capture — what tcpdump on the box's two interfaces would show. Golden pairs for `natlab verify`
// (tests, corpora/verify/). Cold path.

import type { Engine } from '../../spec/engine.ts';
import { POINT_INTERNET } from '../../spec/scenario.ts';
import { F_ACK, F_FIN, F_PSH, F_SYN, PROTO_ICMP, PROTO_TCP } from '../../packet/constants.ts';
import { buildIcmpEcho, buildTcp, buildUdp } from '../../packet/build.ts';
import { PARSE_OK, PacketView, parseIpv4 } from '../../packet/parse.ts';

export interface PairFlow {
  proto: 'tcp' | 'udp' | 'icmp';
  /** The inside host and its ingress point in the engine's scenario. */
  host: number;
  hostPoint: number;
  /** Source port (TCP/UDP) or echo id. */
  hostPort: number;
  remote: number;
  remotePort: number;
  /** TCP options of the SYN and of the SYN/ACK (e.g. an MSS). */
  synOptions?: Uint8Array;
  synAckOptions?: Uint8Array;
}

export interface PairRecord {
  timeUs: number;
  frame: Uint8Array;
}

export interface Pair {
  inside: PairRecord[];
  outside: PairRecord[];
}

/** One frame of a conversation: who sends it and how it is built from the public mapping. */
interface Step {
  out: boolean;
  build: (pubAddr: number, pubPort: number) => Uint8Array;
}

function steps(f: PairFlow): Step[] {
  const payload = (n: number, seed: number): Uint8Array =>
    Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
  if (f.proto === 'udp') {
    return [
      {
        out: true,
        build: () =>
          buildUdp({ src: f.host, dst: f.remote, sport: f.hostPort, dport: f.remotePort, payload: payload(24, 1) }),
      },
      {
        out: false,
        build: (a, p) => buildUdp({ src: f.remote, dst: a, sport: f.remotePort, dport: p, payload: payload(60, 2) }),
      },
    ];
  }
  if (f.proto === 'icmp') {
    return [
      { out: true, build: () => buildIcmpEcho({ src: f.host, dst: f.remote, id: f.hostPort, seq: 1 }) },
      { out: false, build: (a, p) => buildIcmpEcho({ src: f.remote, dst: a, id: p, seq: 1, reply: true }) },
    ];
  }
  const isn = 1000;
  const irs = 500000;
  const o = (flags: number, seq: number, ack: number, pay?: Uint8Array, options?: Uint8Array): Step => ({
    out: true,
    build: () =>
      buildTcp({
        src: f.host,
        dst: f.remote,
        sport: f.hostPort,
        dport: f.remotePort,
        flags,
        seq,
        ack,
        payload: pay,
        options,
        window: 64240,
      }),
  });
  const i = (flags: number, seq: number, ack: number, pay?: Uint8Array, options?: Uint8Array): Step => ({
    out: false,
    build: (a, p) =>
      buildTcp({
        src: f.remote,
        dst: a,
        sport: f.remotePort,
        dport: p,
        flags,
        seq,
        ack,
        payload: pay,
        options,
        window: 65160,
      }),
  });
  return [
    o(F_SYN, isn, 0, undefined, f.synOptions),
    i(F_SYN | F_ACK, irs, isn + 1, undefined, f.synAckOptions),
    o(F_ACK, isn + 1, irs + 1),
    o(F_PSH | F_ACK, isn + 1, irs + 1, payload(100, 3)),
    i(F_ACK, irs + 1, isn + 101),
    i(F_PSH | F_ACK, irs + 1, isn + 101, payload(200, 4)),
    o(F_ACK, isn + 101, irs + 201),
    o(F_FIN | F_ACK, isn + 101, irs + 201),
    i(F_FIN | F_ACK, irs + 201, isn + 102),
    o(F_ACK, isn + 102, irs + 202),
  ];
}

/**
 * Plays the flows one after the other through `engine` (steps `stepUs` apart, starting at
 * `startUs`); an output is captured `latencyUs` after its input.
 */
export async function generatePair(
  engine: Engine,
  flows: readonly PairFlow[],
  o: { startUs?: number; stepUs?: number; latencyUs?: number } = {},
): Promise<Pair> {
  const pair: Pair = { inside: [], outside: [] };
  let t = o.startUs ?? 1_700_000_000_000_000;
  const step = o.stepUs ?? 10_000;
  const lat = o.latencyUs ?? 50;
  const pv = new PacketView();
  for (const f of flows) {
    // The public mapping the engine made for the flow (learnt from its first outbound output).
    let pubAddr = 0;
    let pubPort = 0;
    for (const s of steps(f)) {
      const frame = s.build(pubAddr, pubPort);
      const [res] = await engine.process([{ timeUs: t, ingress: s.out ? f.hostPoint : POINT_INTERNET, frame }]);
      (s.out ? pair.inside : pair.outside).push({ timeUs: t, frame });
      for (const out of res.outputs) {
        if (s.out && out.egress === POINT_INTERNET) {
          pair.outside.push({ timeUs: t + lat, frame: out.frame });
          if (parseIpv4(out.frame, 0, out.frame.length, pv) === PARSE_OK && pubAddr === 0) {
            pubAddr = pv.src;
            pubPort = pv.proto === PROTO_ICMP ? pv.icmpId : pv.proto === PROTO_TCP || pv.proto === 17 ? pv.sport : 0;
          }
        } else if (!s.out && out.egress === f.hostPoint) pair.inside.push({ timeUs: t + lat, frame: out.frame });
      }
      t += step;
    }
  }
  return pair;
}
