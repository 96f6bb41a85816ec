// `natlab replay --inside CIDR[,CIDR]` without --scenario: a scenario built around the capture's
// own addresses. A first pass reads the WHOLE capture (streaming: only headers are parsed, memory
// is bounded by the host caps below) and collects unicast IPv4 source and destination addresses:
// those inside an --inside CIDR become hosts in a private subnet behind a configure-pat NAT
// instance, the others internet hosts (buildCaptureScenario, docs/scenarios.md).
import {
  PacketView,
  PARSE_BAD_IP_VERSION,
  PARSE_NOT_IPV4,
  PARSE_TRUNCATED_IP_HEADER,
  PARSE_TRUNCATED_L2,
  PARSE_UNSUPPORTED_LINKTYPE,
  parseFrame,
} from '../../packet/parse.ts';
import { formatIpv4, parseCidr, cidrContains, formatCidr } from '../../packet/addr.ts';
import { openCapture } from '../../pcap/reader.ts';
import { buildCaptureScenario } from '../../scenario/capture.ts';
import { InputError } from '../../spec/errors.ts';
import type { Cidr, Scenario } from '../../spec/scenario.ts';
import { isNonUnicastSource } from './ingress.ts';

/** RFC 1918: the default --inside. */
export const DEFAULT_INSIDE = '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16';
/** At most this many inside hosts (each becomes an instance). */
export const MAX_INSIDE_HOSTS = 1024;
/** Outside hosts beyond this are still internet hosts (ingress is by address), just not listed. */
export const MAX_OUTSIDE_HOSTS = 4096;

export function parseInsideList(text: string, what = '--inside'): Cidr[] {
  const out: Cidr[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    try {
      out.push(parseCidr(part.includes('/') ? part : `${part}/32`));
    } catch (e) {
      throw new InputError(`${what}: '${part}' is not an IPv4 CIDR (${(e as Error).message})`);
    }
  }
  if (out.length === 0) throw new InputError(`${what}: no CIDR given`);
  return out;
}

export interface CaptureHosts {
  inside: number[];
  outside: number[];
  /** Outside hosts seen beyond MAX_OUTSIDE_HOSTS (not listed in the scenario). */
  outsideUnlisted: number;
  records: number;
}

/** First pass: the capture's unicast IPv4 hosts, split by the inside CIDRs. */
export async function collectCaptureHosts(
  path: string,
  inside: readonly Cidr[],
  limit = Infinity,
): Promise<CaptureHosts> {
  const r = await openCapture(path);
  const ins = new Set<number>();
  const outs = new Set<number>();
  let unlisted = 0;
  let records = 0;
  const pv = new PacketView();
  const add = (a: number) => {
    if (isNonUnicastSource(a) || a >>> 0 === 0xffffffff) return;
    if (inside.some((c) => cidrContains(c, a))) {
      if (!ins.has(a) && ins.size >= MAX_INSIDE_HOSTS) {
        throw new InputError(
          `${path}: more than ${MAX_INSIDE_HOSTS} hosts inside ${inside.map(formatCidr).join(',')}: narrow --inside or write a scenario (--scenario)`,
          path,
        );
      }
      ins.add(a);
    } else if (!outs.has(a)) {
      if (outs.size < MAX_OUTSIDE_HOSTS) outs.add(a);
      else unlisted++;
    }
  };
  try {
    for (;;) {
      let rec;
      try {
        rec = await r.next();
      } catch (e) {
        if (e instanceof InputError) break; // the replay pass reports it, after the good records
        throw e;
      }
      if (!rec || records >= limit) break;
      records++;
      const st = parseFrame(rec.data, 0, rec.data.length, rec.linkType, pv);
      if (
        st === PARSE_UNSUPPORTED_LINKTYPE ||
        st === PARSE_TRUNCATED_L2 ||
        st === PARSE_NOT_IPV4 ||
        st === PARSE_TRUNCATED_IP_HEADER ||
        st === PARSE_BAD_IP_VERSION
      )
        continue;
      add(pv.src >>> 0);
      add(pv.dst >>> 0);
    }
  } finally {
    await r.close();
  }
  return {
    inside: [...ins].sort((a, b) => a - b),
    outside: [...outs].sort((a, b) => a - b),
    outsideUnlisted: unlisted,
    records,
  };
}

export interface CaptureScenarioChoice {
  scenario: Scenario;
  how: string;
  hosts: CaptureHosts;
}

/** The scenario `--inside` builds for a capture, and one line saying how. */
export async function scenarioForCapture(
  path: string,
  insideText: string,
  limit = Infinity,
  name = 'capture',
  build: { subnetLenMin?: number } = {},
): Promise<CaptureScenarioChoice> {
  const inside = parseInsideList(insideText);
  const hosts = await collectCaptureHosts(path, inside, limit);
  // No inside host in the capture (all traffic is between outside hosts, or nothing is IPv4):
  // a small VPC in the first inside CIDR still gives the capture a NAT instance to pass by.
  const insideUsed = hosts.inside.length > 0 ? inside : [{ addr: inside[0].addr, len: Math.max(inside[0].len, 24) }];
  const scenario = buildCaptureScenario({
    inside: insideUsed,
    insideHosts: hosts.inside,
    outsideHosts: hosts.outside,
    name,
    subnetLenMin: build.subnetLenMin,
  });
  const nat = scenario.instances.find((i) => i.nat !== null);
  const how =
    `built around the capture: --inside ${inside.map(formatCidr).join(',')}: ${hosts.inside.length} inside host(s) ` +
    `in VPC ${formatCidr(scenario.vpcCidr)} behind NAT instance ${nat ? `${formatIpv4(nat.privateIp)}${nat.elasticIp !== null ? ` (EIP ${formatIpv4(nat.elasticIp)})` : ''}` : '(none)'}, ` +
    `${hosts.outside.length + hosts.outsideUnlisted} internet host(s); first pass over all ${hosts.records} records`;
  return { scenario, how, hosts };
}
