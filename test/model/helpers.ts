// Shared helpers for the model tests: vpc-nat-instance-open (the built-in without its NATSG
// security group: the tests send DNS, ping and any port through the NAT), packet builders by
// address text, checksum checks of every output.
import { expect } from 'vitest';
import { loadOpenScenario, parseNatTable } from '../../src/scenario/index.ts';
import { createModelEngine, type ModelEngine, type ModelResult } from '../../src/model/index.ts';
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  parseIpv4Addr,
  PacketView,
  parseIpv4,
  verifyIpv4Header,
  verifyL4Checksum,
  F_SYN,
} from '../../src/packet/index.ts';
import { POINT_INTERNET, instancePoint, type Scenario } from '../../src/spec/scenario.ts';

export const A = parseIpv4Addr;

export function scenario(mutate?: (s: Scenario) => void): Scenario {
  const s = loadOpenScenario();
  mutate?.(s);
  return s;
}

export function idx(s: Scenario, name: string): number {
  const i = s.instances.findIndex((x) => x.name === name);
  if (i < 0) throw new Error(`no instance ${name}`);
  return i;
}

export function point(s: Scenario, name: string): number {
  return name === 'internet' ? POINT_INTERNET : instancePoint(idx(s, name));
}

/** A second private host app2 (10.0.1.11) beside app. */
export function withApp2(s: Scenario): void {
  const app = s.instances[idx(s, 'app')];
  s.instances.push({ ...structuredClone(app), name: 'app2', privateIp: A('10.0.1.11') });
}

/** Replaces the NAT instance's nat table with iptables-save rules (POSTROUTING lines etc.). */
export function natRules(s: Scenario, lines: string[]): void {
  const text = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ...lines,
    'COMMIT',
    '',
  ].join('\n');
  s.instances[idx(s, 'nat')].nat = parseNatTable(text, 'test');
}

export function engine(s: Scenario, seed = 1): ModelEngine {
  return createModelEngine(s, { seed });
}

export function tcp(
  src: string,
  dst: string,
  flags = F_SYN,
  o: { seq?: number; ack?: number; ttl?: number; len?: number } = {},
): Uint8Array {
  const [sa, sp] = src.split(':');
  const [da, dp] = dst.split(':');
  return buildTcp({
    src: A(sa),
    sport: Number(sp),
    dst: A(da),
    dport: Number(dp),
    flags,
    seq: o.seq ?? 1000,
    ack: o.ack ?? 0,
    ttl: o.ttl,
    payload: new Uint8Array(o.len ?? 0),
  });
}

export function udp(
  src: string,
  dst: string,
  o: { ttl?: number; len?: number; noChecksum?: boolean } = {},
): Uint8Array {
  const [sa, sp] = src.split(':');
  const [da, dp] = dst.split(':');
  return buildUdp({
    src: A(sa),
    sport: Number(sp),
    dst: A(da),
    dport: Number(dp),
    ttl: o.ttl,
    payload: new Uint8Array(o.len ?? 4),
    noChecksum: o.noChecksum,
  });
}

export function ping(src: string, dst: string, id: number, reply = false): Uint8Array {
  return buildIcmpEcho({ src: A(src), dst: A(dst), id, seq: 1, reply });
}

export function pv(b: Uint8Array): PacketView {
  const v = new PacketView();
  parseIpv4(b, 0, b.length, v);
  return v;
}

/** Every output frame parses and carries valid IP and L4 checksums. */
export function expectValidOutputs(r: ModelResult): void {
  for (const o of r.outputs) {
    const v = pv(o.frame);
    expect(v.status, 'output parses').toBe(0);
    expect(verifyIpv4Header(o.frame, v), 'IP header checksum').toBe(true);
    expect(verifyL4Checksum(o.frame, v), 'L4 checksum').toBe(true);
  }
}

/** Sends a frame at time `ms` from the named point. */
export function send(e: ModelEngine, s: Scenario, from: string, frame: Uint8Array, ms = 0): ModelResult {
  return e.processOne({ timeUs: ms * 1000, ingress: point(s, from), frame });
}
