// Golden two-sided captures for verify tests: a box (a scenario played by an engine) and its
// frames written as inside/outside captures, plus perturbations of the outside capture.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCaptureScenario } from '../../src/scenario/index.ts';
import { parseMangleTable } from '../../src/scenario/iptables-mangle.ts';
import { generatePair, type Pair, type PairFlow, type PairRecord } from '../../src/diff/verify/pairs.ts';
import { encodePcap, encodePcapng } from '../../src/pcap/index.ts';
import { LINKTYPE_RAW, fixChecksums, parseIpv4Addr as ip } from '../../src/packet/index.ts';
import { instancePoint, type Scenario } from '../../src/spec/scenario.ts';
import type { Engine } from '../../src/spec/engine.ts';
import { scenarioToYaml } from '../../src/scenario/index.ts';

export const INSIDE_NET = '192.168.0.0/16';
export const HOST1 = ip('192.168.1.10');
export const HOST2 = ip('192.168.1.11');
export const PUBLIC = ip('203.0.113.5');
export const SERVER = ip('198.51.100.7');
export const DNS = ip('192.0.2.53');
export const MSS_1460 = Uint8Array.of(2, 4, 0x05, 0xb4, 1, 3, 3, 7);

/** The box as natlab verify would build it around these captures (+ an optional mangle table). */
export function boxScenario(mangleRules: string[] = []): Scenario {
  const s = buildCaptureScenario({
    name: 'box',
    inside: [{ addr: ip('192.168.0.0'), len: 16 }],
    insideHosts: [HOST1, HOST2],
    outsideHosts: [SERVER, DNS],
    elasticIp: PUBLIC,
  });
  if (mangleRules.length) {
    const nat = s.instances.find((i) => i.name === 'nat')!;
    nat.mangle = parseMangleTable(['*mangle', ...mangleRules, 'COMMIT', ''].join('\n'), '<box>');
  }
  return s;
}

export function flows(s: Scenario): PairFlow[] {
  const point = (a: number): number => instancePoint(s.instances.findIndex((i) => i.privateIp === a));
  return [
    {
      proto: 'tcp',
      host: HOST1,
      hostPoint: point(HOST1),
      hostPort: 40000,
      remote: SERVER,
      remotePort: 443,
      synOptions: MSS_1460,
      synAckOptions: MSS_1460,
    },
    { proto: 'udp', host: HOST2, hostPoint: point(HOST2), hostPort: 53000, remote: DNS, remotePort: 53 },
    { proto: 'icmp', host: HOST1, hostPoint: point(HOST1), hostPort: 77, remote: SERVER, remotePort: 0 },
    { proto: 'tcp', host: HOST2, hostPoint: point(HOST2), hostPort: 40001, remote: SERVER, remotePort: 80 },
  ];
}

export async function makePair(engine: Engine, s: Scenario): Promise<Pair> {
  try {
    return await generatePair(engine, flows(s));
  } finally {
    await engine.close();
  }
}

const rec = (r: PairRecord) => ({ tsSec: Math.floor(r.timeUs / 1e6), tsNsec: (r.timeUs % 1e6) * 1000, data: r.frame });

/** Writes the pair as inside.pcap / outside.pcap, both.pcap (merged) and both.pcapng (two named interfaces). */
export function writePair(p: Pair, dir = mkdtempSync(join(tmpdir(), 'natlab-verify-'))): string {
  writeFileSync(join(dir, 'inside.pcap'), encodePcap(p.inside.map(rec), { linkType: LINKTYPE_RAW }));
  writeFileSync(join(dir, 'outside.pcap'), encodePcap(p.outside.map(rec), { linkType: LINKTYPE_RAW }));
  const all = [
    ...p.inside.map((r) => ({ ...rec(r), interfaceId: 0, t: r.timeUs })),
    ...p.outside.map((r) => ({ ...rec(r), interfaceId: 1, t: r.timeUs })),
  ].sort((a, b) => a.t - b.t);
  writeFileSync(join(dir, 'both.pcap'), encodePcap(all, { linkType: LINKTYPE_RAW }));
  writeFileSync(
    join(dir, 'both.pcapng'),
    encodePcapng(all, {
      interfaces: [
        { linkType: LINKTYPE_RAW, name: 'inside' },
        { linkType: LINKTYPE_RAW, name: 'outside' },
      ],
    }),
  );
  return dir;
}

export function writeScenario(s: Scenario, dir: string, name = 'scenario.yaml'): string {
  const f = join(dir, name);
  writeFileSync(f, scenarioToYaml(s));
  return f;
}

/** A copy of the pair whose outside frames are changed by `f` (return null to drop a frame). */
export function perturbOutside(p: Pair, f: (frame: Uint8Array, k: number) => Uint8Array | null): Pair {
  const outside: PairRecord[] = [];
  p.outside.forEach((r, k) => {
    const x = f(r.frame.slice(), k);
    if (x) outside.push({ timeUs: r.timeUs, frame: x });
  });
  return { inside: p.inside, outside };
}

export const src = (f: Uint8Array): number => ((f[12] << 24) | (f[13] << 16) | (f[14] << 8) | f[15]) >>> 0;
export const dst = (f: Uint8Array): number => ((f[16] << 24) | (f[17] << 16) | (f[18] << 8) | f[19]) >>> 0;
export { fixChecksums };
