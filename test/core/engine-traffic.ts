// Mixed traffic on the built-in scenario for the core engine tests: UDP, TCP and ICMP echo flows
// from the app server (behind the NAT instance) and the web server (IGW only) to internet hosts,
// with their replies, interleaved, plus a few packets the path drops. Deterministic per seed.
import { buildIcmpEcho, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { parseIpv4Addr } from '../../src/packet/addr.ts';
import { F_ACK, F_FIN, F_PSH, F_SYN } from '../../src/packet/constants.ts';
import type { InputPacket } from '../../src/spec/engine.ts';
import { POINT_INTERNET, instancePoint, type Scenario } from '../../src/spec/scenario.ts';

export const APP_IP = parseIpv4Addr('10.0.1.10');
export const WEB_IP = parseIpv4Addr('10.0.0.20');
export const NAT_IP = parseIpv4Addr('10.0.0.10');
export const NAT_EIP = parseIpv4Addr('203.0.113.10');
export const WEB_EIP = parseIpv4Addr('203.0.113.20');
export const HOST = parseIpv4Addr('198.51.100.7');

export function point(s: Scenario, name: string): number {
  const i = s.instances.findIndex((x) => x.name === name);
  if (i < 0) throw new Error(`built-in scenario has no instance ${name}`);
  return instancePoint(i);
}

/** mulberry32 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * About `flows` flows (each 2–8 packets), interleaved, 1 ms apart on average. App flows use unique
 * source ports, so Linux port preservation keeps them (replies are addressed to the NAT's EIP with
 * the same port); web flows cross the IGW only.
 */
export function mixedTraffic(s: Scenario, flows: number, seed = 7): InputPacket[] {
  const r = rng(seed);
  const app = point(s, 'app');
  const web = point(s, 'web');
  const usedPorts = new Set<number>();
  const streams: { frame: Uint8Array; ingress: number }[][] = [];
  for (let f = 0; f < flows; f++) {
    let sport: number;
    do sport = 1024 + Math.floor(r() * 64000);
    while (usedPorts.has(sport));
    usedPorts.add(sport);
    const host = (0xc6336400 | (1 + Math.floor(r() * 250))) >>> 0; // 198.51.100.1..250
    const fromWeb = r() < 0.15;
    const src = fromWeb ? WEB_IP : APP_IP;
    const ing = fromWeb ? web : app;
    const pub = fromWeb ? WEB_EIP : NAT_EIP;
    const kind = r();
    const st: { frame: Uint8Array; ingress: number }[] = [];
    if (kind < 0.45) {
      const dport = r() < 0.5 ? 53 : 123;
      const n = 1 + Math.floor(r() * 4);
      for (let k = 0; k < n; k++) {
        st.push({ frame: buildUdp({ src, dst: host, sport, dport, payload: new Uint8Array(8 + k) }), ingress: ing });
        if (r() < 0.8)
          st.push({
            frame: buildUdp({ src: host, dst: pub, sport: dport, dport: sport, payload: new Uint8Array(20) }),
            ingress: POINT_INTERNET,
          });
      }
    } else if (kind < 0.85) {
      const dport = r() < 0.5 ? 443 : 80;
      const isn = Math.floor(r() * 0xffffffff) >>> 0;
      const risn = Math.floor(r() * 0xffffffff) >>> 0;
      const out = (flags: number, seq: number, ack: number, len = 0) =>
        st.push({
          frame: buildTcp({
            src,
            dst: host,
            sport,
            dport,
            flags,
            seq: seq >>> 0,
            ack: ack >>> 0,
            payload: new Uint8Array(len),
          }),
          ingress: ing,
        });
      const back = (flags: number, seq: number, ack: number, len = 0) =>
        st.push({
          frame: buildTcp({
            src: host,
            dst: pub,
            sport: dport,
            dport: sport,
            flags,
            seq: seq >>> 0,
            ack: ack >>> 0,
            payload: new Uint8Array(len),
          }),
          ingress: POINT_INTERNET,
        });
      out(F_SYN, isn, 0);
      back(F_SYN | F_ACK, risn, isn + 1);
      out(F_ACK, isn + 1, risn + 1);
      out(F_ACK | F_PSH, isn + 1, risn + 1, 10);
      back(F_ACK, risn + 1, isn + 11);
      if (r() < 0.6) {
        out(F_FIN | F_ACK, isn + 11, risn + 1);
        back(F_FIN | F_ACK, risn + 1, isn + 12);
        out(F_ACK, isn + 12, risn + 2);
      }
    } else {
      const id = sport;
      const n = 1 + Math.floor(r() * 3);
      for (let k = 0; k < n; k++) {
        st.push({ frame: buildIcmpEcho({ src, dst: host, id, seq: k }), ingress: ing });
        st.push({ frame: buildIcmpEcho({ src: host, dst: pub, id, seq: k, reply: true }), ingress: POINT_INTERNET });
      }
    }
    streams.push(st);
  }
  // A few packets the path drops or treats specially: TTL 1 (time exceeded), unknown EIP.
  streams.push([{ frame: buildUdp({ src: APP_IP, dst: HOST, sport: 999, dport: 53, ttl: 1 }), ingress: app }]);
  streams.push([
    {
      frame: buildUdp({ src: HOST, dst: parseIpv4Addr('203.0.113.99'), sport: 53, dport: 5353 }),
      ingress: POINT_INTERNET,
    },
  ]);
  // Interleave: repeatedly take the next packet of a random live stream.
  const out: InputPacket[] = [];
  const pos = new Array(streams.length).fill(0);
  const live = streams.map((_, i) => i);
  let t = 1_000_000;
  while (live.length > 0) {
    const j = Math.floor(r() * live.length);
    const si = live[j];
    const p = streams[si][pos[si]++];
    t += Math.floor(r() * 2000);
    out.push({ timeUs: t, ingress: p.ingress, frame: p.frame });
    if (pos[si] === streams[si].length) live.splice(j, 1);
  }
  return out;
}

/** Deep copies of the input frames, to check that engines never modify them. */
export function snapshot(inputs: readonly InputPacket[]): Uint8Array[] {
  return inputs.map((p) => p.frame.slice());
}
