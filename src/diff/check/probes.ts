// Representative packets for `natlab check`, and the probe instances they start from: a new
// instance in each subnet (what a freshly launched server there would see), built into a copy of
// the scenario so the model itself carries every packet. Cold path.

import { buildIcmpEcho, buildTcp, buildUdp } from '../../packet/build.ts';
import { F_SYN } from '../../packet/constants.ts';
import { cidrContains, cidrLast, formatIpv4, parseIpv4Addr } from '../../packet/addr.ts';
import type { Instance, Scenario } from '../../spec/scenario.ts';
import { defaultSysctls } from '../../scenario/index.ts';

export interface ProbeKind {
  /** `tcp/443`, `udp/53`, `icmp`. */
  label: string;
  proto: 'tcp' | 'udp' | 'icmp';
  port: number;
}

/** Outbound: HTTPS, HTTP, DNS, NTP, ping — what servers behind a NAT need every day. */
export const EGRESS_PROBES: readonly ProbeKind[] = [
  { label: 'tcp/443', proto: 'tcp', port: 443 },
  { label: 'tcp/80', proto: 'tcp', port: 80 },
  { label: 'udp/53', proto: 'udp', port: 53 },
  { label: 'udp/123', proto: 'udp', port: 123 },
  { label: 'icmp', proto: 'icmp', port: 0 },
];

/** Inbound to an Elastic IP: SSH, HTTPS, ping (plus every DNAT rule's port). */
export const INGRESS_PROBES: readonly ProbeKind[] = [
  { label: 'tcp/22', proto: 'tcp', port: 22 },
  { label: 'tcp/443', proto: 'tcp', port: 443 },
  { label: 'icmp', proto: 'icmp', port: 0 },
];

/** First source port of probes (each probe runs in a fresh engine, so they never meet). */
export const PROBE_SPORT = 40000;

export function buildProbe(k: ProbeKind, src: number, dst: number, sport: number): Uint8Array {
  if (k.proto === 'tcp')
    return buildTcp({ src, dst, sport, dport: k.port, flags: F_SYN, seq: 1000, ack: 0, window: 64240 });
  if (k.proto === 'udp') return buildUdp({ src, dst, sport, dport: k.port, payload: new Uint8Array(32) });
  return buildIcmpEcho({ src, dst, id: sport, seq: 1, payload: new Uint8Array(32) });
}

/** Candidate public addresses for synthetic use (documentation ranges first, then shared space). */
const PUBLIC_CANDIDATES: number[] = [
  ...[7, 1, 2, 3, 4, 5, 6, 8, 9].map((k) => parseIpv4Addr('198.51.100.0') + k),
  ...[7, 1, 2, 3, 4, 5, 6, 8, 9].map((k) => parseIpv4Addr('192.0.2.0') + k),
  ...Array.from({ length: 250 }, (_, k) => parseIpv4Addr('203.0.113.0') + 1 + k),
  ...Array.from({ length: 250 }, (_, k) => parseIpv4Addr('100.64.0.0') + 1 + k),
];

function usedPublic(s: Scenario, a: number): boolean {
  return cidrContains(s.vpcCidr, a) || s.instances.some((i) => i.elasticIp === a || i.privateIp === a);
}

/** The internet address probes go to / come from: inside the scenario's first internet host range. */
export function internetPeer(s: Scenario): number {
  for (const h of s.internetHosts) {
    const a = h.len <= 29 ? (h.addr + 7) >>> 0 : h.addr;
    if (!usedPublic(s, a)) return a;
  }
  const c = PUBLIC_CANDIDATES.find((a) => !usedPublic(s, a) && !s.internetHosts.some((h) => cidrContains(h, a)));
  if (c === undefined) throw new Error('no free public address for the internet probe peer');
  return c;
}

/** A public address no instance uses and no internet host covers (a probe's public IP). */
export function freePublicIp(s: Scenario, avoid: number[]): number | null {
  return (
    PUBLIC_CANDIDATES.find(
      (a) => !usedPublic(s, a) && !avoid.includes(a) && !s.internetHosts.some((h) => cidrContains(h, a)),
    ) ?? null
  );
}

/** The first address of subnet `i` no instance uses (not network/+1..+3/broadcast), or null. */
export function freeSubnetIp(s: Scenario, subnet: number): number | null {
  const c = s.subnets[subnet].cidr;
  const last = cidrLast(c);
  for (let a = c.addr + 4; a < last && a < c.addr + 4 + 65536; a++)
    if (!s.instances.some((i) => i.privateIp === a)) return a >>> 0;
  return null;
}

/**
 * A copy of the scenario with a plain probe instance appended in subnet `subnet` (index
 * returned), with public IP `eip` or none. Appending keeps every other instance's point.
 */
export function withProbe(
  s: Scenario,
  subnet: number,
  ip: number,
  eip: number | null,
): { scenario: Scenario; index: number } {
  const copy = structuredClone(s);
  const probe: Instance = {
    name: `probe-${formatIpv4(ip)}`,
    subnet,
    privateIp: ip,
    elasticIp: eip,
    sourceDestCheck: true,
    sysctls: defaultSysctls(),
    nat: null,
  };
  copy.instances.push(probe);
  return { scenario: copy, index: copy.instances.length - 1 };
}
