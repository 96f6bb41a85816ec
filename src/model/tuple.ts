// Conntrack tuples (LNS §1): (src, dst, sport, dport) plus the protocol, in the engine-neutral
// form of src/spec/engine.ts — ICMP queries carry the id in `sport` and (type << 8) | code in
// `dport`. Mirrors nf_ct_get_tuple / nf_ct_invert_tuple (nf_conntrack_core.c) and
// nf_conntrack_invert_icmp_tuple (nf_conntrack_proto_icmp.c).

import {
  ICMP_ADDRESS,
  ICMP_ADDRESSREPLY,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  PROTO_ICMP,
} from '../packet/constants.ts';
import { formatIpv4 } from '../packet/addr.ts';
import type { CtTuple } from '../spec/engine.ts';

export type Tuple = CtTuple;

/** ICMP type inversion map (`invmap` in nf_conntrack_proto_icmp.c); undefined = not invertible. */
const ICMP_INVERSE: ReadonlyMap<number, number> = new Map([
  [ICMP_ECHO, ICMP_ECHOREPLY],
  [ICMP_ECHOREPLY, ICMP_ECHO],
  [ICMP_TIMESTAMP, ICMP_TIMESTAMPREPLY],
  [ICMP_TIMESTAMPREPLY, ICMP_TIMESTAMP],
  [ICMP_INFO_REQUEST, ICMP_INFO_REPLY],
  [ICMP_INFO_REPLY, ICMP_INFO_REQUEST],
  [ICMP_ADDRESS, ICMP_ADDRESSREPLY],
  [ICMP_ADDRESSREPLY, ICMP_ADDRESS],
]);

/** nf_ct_invert_tuple: swap addresses and ports; ICMP keeps the id and inverts the type. */
export function invertTuple(proto: number, t: Tuple): Tuple | null {
  if (proto === PROTO_ICMP) {
    const type = t.dport >>> 8;
    const inv = ICMP_INVERSE.get(type);
    if (inv === undefined) return null;
    return { src: t.dst, dst: t.src, sport: t.sport, dport: (inv << 8) | (t.dport & 0xff) };
  }
  return { src: t.dst, dst: t.src, sport: t.dport, dport: t.sport };
}

export function tupleEqual(a: Tuple, b: Tuple): boolean {
  return a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport;
}

export function tupleKey(proto: number, t: Tuple): string {
  return `${proto}|${t.src}|${t.dst}|${t.sport}|${t.dport}`;
}

export function copyTuple(t: Tuple): Tuple {
  return { src: t.src, dst: t.dst, sport: t.sport, dport: t.dport };
}

/** `10.0.1.10:40000>198.51.100.7:443` (ICMP: `10.0.1.10>198.51.100.7 id=7 type=8`). */
export function tupleText(proto: number, t: Tuple): string {
  if (proto === PROTO_ICMP) return `${formatIpv4(t.src)}>${formatIpv4(t.dst)} id=${t.sport} type=${t.dport >>> 8}`;
  if (proto === 6 || proto === 17) return `${formatIpv4(t.src)}:${t.sport}>${formatIpv4(t.dst)}:${t.dport}`;
  return `${formatIpv4(t.src)}>${formatIpv4(t.dst)}`;
}
