// Flow shapes at scale: many flows that share most of their key — the shapes real NAT users run
// (a DNS resolver, NTP or QUIC client talking to many peers from one socket; many connections
// from a client to one server; many hosts that happen to use the same source port) and the ones
// that cluster a hash table keyed on the shared part. Used by the core's regression tests, the
// fuzzer's scale commands and the adversarial benchmark workload.
//
//   fan-out       one socket (addr:sport) → peer:dport for `count` destination ports
//   fan-in        `count` source ports of one host → one peer:dport
//   shared-sport  `count` source addresses, all with the same source port → one peer:dport
//
// One packet per flow (UDP: a datagram; TCP: a SYN), `gapUs` apart. Deterministic.

import { buildTcp, buildUdp } from '../packet/build.ts';
import { F_SYN } from '../packet/constants.ts';
import type { InputPacket } from '../spec/engine.ts';

export const FLOW_SHAPES = ['fan-out', 'fan-in', 'shared-sport'] as const;
export type FlowShape = (typeof FLOW_SHAPES)[number];

export interface FlowShapeOptions {
  shape: FlowShape;
  /** Flows (one packet each). fan-out / fan-in: at most 65535; shared-sport: at most hostCount. */
  count: number;
  proto: 'udp' | 'tcp';
  /** Ingress point of the initiators. */
  point: number;
  /** Initiator address (shared-sport: the first of `count` consecutive addresses). */
  src: number;
  /** Shared source port (fan-out, shared-sport) or first source port (fan-in). */
  sport: number;
  peer: number;
  /** Shared destination port (fan-in, shared-sport) or first destination port (fan-out). */
  dport: number;
  startUs: number;
  gapUs: number;
}

/** The 5-tuple of flow k of a shape. */
export function shapeFlow(o: FlowShapeOptions, k: number): { src: number; sport: number; dst: number; dport: number } {
  switch (o.shape) {
    case 'fan-out':
      return { src: o.src, sport: o.sport, dst: o.peer, dport: 1 + ((o.dport - 1 + k) % 65535) };
    case 'fan-in':
      return { src: o.src, sport: 1 + ((o.sport - 1 + k) % 65535), dst: o.peer, dport: o.dport };
    case 'shared-sport':
      return { src: (o.src + k) >>> 0, sport: o.sport, dst: o.peer, dport: o.dport };
  }
}

/** The shape's packets, in order. */
export function flowShapePackets(o: FlowShapeOptions): InputPacket[] {
  if (!Number.isInteger(o.count) || o.count < 0 || o.count > 65535)
    throw new Error(`flow shape ${o.shape}: count must be 0..65535, got ${o.count}`);
  const out: InputPacket[] = [];
  for (let k = 0; k < o.count; k++) {
    const f = shapeFlow(o, k);
    const frame =
      o.proto === 'udp'
        ? buildUdp({ src: f.src, dst: f.dst, sport: f.sport, dport: f.dport, payload: new Uint8Array(4) })
        : buildTcp({ src: f.src, dst: f.dst, sport: f.sport, dport: f.dport, flags: F_SYN, seq: 1000 + k });
    out.push({ timeUs: o.startUs + k * o.gapUs, ingress: o.point, frame });
  }
  return out;
}
