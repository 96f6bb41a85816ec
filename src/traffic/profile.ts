// Traffic profiles for the benchmark's mixed workload (docs/benchmarks.md "Mixed traffic"): what
// share of packets opens a new flow, the TCP/UDP/ICMP mix, the packet-size distribution (IPv4
// total length), the number of active flows and how popular each is (uniform, or Zipf as in
// real traffic, where a few flows carry most packets). A profile is plain data: built-in ones
// below, or a YAML/JSON file (`natlab bench --profile FILE`). Cold path.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../spec/errors.ts';

export interface SizeWeight {
  /** IPv4 total length in bytes (an Ethernet frame is 18 bytes more: header + FCS). */
  bytes: number;
  weight: number;
}

export interface TrafficProfile {
  name: string;
  description: string;
  /** Share of packets that open a new flow (0..1): TCP SYN, first UDP datagram, new echo id. */
  newFlowShare: number;
  /** Protocol shares of flows (normalised; zero allowed). */
  mix: { tcp: number; udp: number; icmp: number };
  /** Packet sizes of established-flow packets (IPv4 total length), weighted. */
  sizes: SizeWeight[];
  /** Active (pre-established) flows the established packets are drawn from. */
  flows: number;
  /** Flow popularity: 'uniform', or Zipf with exponent s (rank k drawn with weight 1/k^s). */
  popularity: { kind: 'uniform' } | { kind: 'zipf'; s: number };
}

/** Ethernet frame sizes of the classic simple IMIX (7:4:1), as IPv4 total lengths. */
const IMIX_SIZES: SizeWeight[] = [
  { bytes: 64 - 18, weight: 7 },
  { bytes: 594 - 18, weight: 4 },
  { bytes: 1518 - 18, weight: 1 },
];

export const BUILTIN_PROFILES: readonly TrafficProfile[] = [
  {
    name: 'imix-zipf',
    description:
      'IMIX sizes 64/594/1518-byte frames 7:4:1, 80% TCP / 15% UDP / 5% ICMP flows, 2% new flows, 10k flows with Zipf(1.0) popularity',
    newFlowShare: 0.02,
    mix: { tcp: 0.8, udp: 0.15, icmp: 0.05 },
    sizes: IMIX_SIZES,
    flows: 10_000,
    popularity: { kind: 'zipf', s: 1.0 },
  },
  {
    name: 'small-udp-uniform',
    description:
      '64-byte frames, UDP only, no new flows, 64k flows with uniform popularity (the established-flow workload as a profile)',
    newFlowShare: 0,
    mix: { tcp: 0, udp: 1, icmp: 0 },
    sizes: [{ bytes: 46, weight: 1 }],
    flows: 65_536,
    popularity: { kind: 'uniform' },
  },
  {
    name: 'churn',
    description: 'IMIX sizes, 60% TCP / 40% UDP, 20% new flows (short-lived connections, DNS), 50k flows uniform',
    newFlowShare: 0.2,
    mix: { tcp: 0.6, udp: 0.4, icmp: 0 },
    sizes: IMIX_SIZES,
    flows: 50_000,
    popularity: { kind: 'uniform' },
  },
];

export const DEFAULT_PROFILE = 'imix-zipf';

/** Smallest IPv4 total length per protocol (headers only). */
export const MIN_TCP_LEN = 40;
export const MIN_UDP_LEN = 28;
export const MIN_ICMP_LEN = 28;
export const MAX_PACKET_LEN = 1500;

function fail(file: string, where: string, what: string): never {
  throw new InputError(`${file}: ${where}: ${what}`, file, where);
}

function num(file: string, where: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(file, where, `expected a number, got ${JSON.stringify(v)}`);
  if (v < min || v > max) fail(file, where, `${v} is outside ${min}..${max}`);
  return v;
}

/** Validates a profile object (from a file or code); `file` names the source in errors. */
export function validateProfile(obj: unknown, file: string): TrafficProfile {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(file, 'profile', 'expected a mapping');
  const o = obj as Record<string, unknown>;
  const known = new Set(['name', 'description', 'newFlowShare', 'mix', 'sizes', 'flows', 'popularity']);
  for (const k of Object.keys(o)) if (!known.has(k)) fail(file, k, `unknown field (known: ${[...known].join(', ')})`);
  const name = typeof o.name === 'string' && o.name ? o.name : fail(file, 'name', 'expected a non-empty string');
  const description =
    o.description === undefined
      ? ''
      : typeof o.description === 'string'
        ? o.description
        : fail(file, 'description', 'expected a string');
  const newFlowShare = num(file, 'newFlowShare', o.newFlowShare ?? 0, 0, 1);
  const m = o.mix;
  if (m === null || typeof m !== 'object' || Array.isArray(m)) fail(file, 'mix', 'expected a mapping {tcp, udp, icmp}');
  const mo = m as Record<string, unknown>;
  for (const k of Object.keys(mo))
    if (!['tcp', 'udp', 'icmp'].includes(k)) fail(file, `mix.${k}`, 'unknown protocol (tcp, udp, icmp)');
  const mix = {
    tcp: num(file, 'mix.tcp', mo.tcp ?? 0, 0, 1e9),
    udp: num(file, 'mix.udp', mo.udp ?? 0, 0, 1e9),
    icmp: num(file, 'mix.icmp', mo.icmp ?? 0, 0, 1e9),
  };
  const total = mix.tcp + mix.udp + mix.icmp;
  if (!(total > 0)) fail(file, 'mix', 'the shares sum to 0');
  mix.tcp /= total;
  mix.udp /= total;
  mix.icmp /= total;
  if (!Array.isArray(o.sizes) || o.sizes.length === 0)
    fail(file, 'sizes', 'expected a non-empty list of {bytes, weight}');
  const sizes: SizeWeight[] = o.sizes.map((s: unknown, i: number) => {
    if (typeof s === 'number') return { bytes: num(file, `sizes[${i}]`, s, MIN_UDP_LEN, MAX_PACKET_LEN), weight: 1 };
    if (s === null || typeof s !== 'object') fail(file, `sizes[${i}]`, 'expected {bytes, weight} or a number');
    const so = s as Record<string, unknown>;
    const bytes = num(file, `sizes[${i}].bytes`, so.bytes, MIN_UDP_LEN, MAX_PACKET_LEN);
    if (!Number.isInteger(bytes)) fail(file, `sizes[${i}].bytes`, `${bytes} is not an integer`);
    return { bytes, weight: num(file, `sizes[${i}].weight`, so.weight ?? 1, 0, 1e9) };
  });
  if (!(sizes.reduce((a, s) => a + s.weight, 0) > 0)) fail(file, 'sizes', 'the weights sum to 0');
  const flows = num(file, 'flows', o.flows, 1, 4_000_000);
  if (!Number.isInteger(flows)) fail(file, 'flows', `${flows} is not an integer`);
  let popularity: TrafficProfile['popularity'] = { kind: 'uniform' };
  const p = o.popularity ?? 'uniform';
  if (p === 'uniform') popularity = { kind: 'uniform' };
  else if (p === 'zipf') popularity = { kind: 'zipf', s: 1 };
  else if (p !== null && typeof p === 'object' && !Array.isArray(p) && 'zipf' in p) {
    popularity = { kind: 'zipf', s: num(file, 'popularity.zipf', (p as Record<string, unknown>).zipf, 0.01, 5) };
  } else fail(file, 'popularity', `expected 'uniform', 'zipf' or {zipf: s}, got ${JSON.stringify(p)}`);
  return { name, description, newFlowShare, mix, sizes, flows, popularity };
}

/** A built-in profile by name, or a YAML/JSON profile file. */
export async function loadProfile(nameOrFile: string): Promise<TrafficProfile> {
  const b = BUILTIN_PROFILES.find((p) => p.name === nameOrFile);
  if (b) return structuredClone(b);
  let text: string;
  try {
    text = await readFile(nameOrFile, 'utf8');
  } catch (e) {
    throw new InputError(
      `${nameOrFile}: not a built-in profile (${BUILTIN_PROFILES.map((p) => p.name).join(', ')}) and cannot be read: ${(e as Error).message}`,
      nameOrFile,
    );
  }
  let obj: unknown;
  try {
    obj = parseYaml(text);
  } catch (e) {
    throw new InputError(`${nameOrFile}: not valid YAML/JSON: ${(e as Error).message}`, nameOrFile);
  }
  return validateProfile(obj, nameOrFile);
}

/** One line describing a profile's traffic (for reports). */
export function describeProfile(p: TrafficProfile): string {
  const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;
  const sw = p.sizes.reduce((a, s) => a + s.weight, 0);
  const sizes = p.sizes.map((s) => `${s.bytes} B×${Math.round((s.weight / sw) * 1000) / 10}%`).join(', ');
  const pop = p.popularity.kind === 'zipf' ? `Zipf(s=${p.popularity.s})` : 'uniform';
  return (
    `${p.name}: ${p.flows} active flows (${pop}), flows TCP ${pct(p.mix.tcp)} / UDP ${pct(p.mix.udp)} / ICMP ${pct(p.mix.icmp)}, ` +
    `${pct(p.newFlowShare)} of packets open a new flow, IPv4 sizes ${sizes}`
  );
}
