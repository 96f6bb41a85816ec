// `natlab trace`: packet specs in tcpdump-like text, the ingress point they start from, the
// natural reply to a delivered query, and a structured trace of each (used by src/cli/cmd-trace.ts
// and the scenario tests).

import {
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  F_URG,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../packet/constants.ts';
import { parseIpv4Addr, formatIpv4 } from '../packet/addr.ts';
import { buildIcmpEcho, buildTcp, buildUdp } from '../packet/build.ts';
import { describePacket } from '../packet/format.ts';
import { PacketView, parseIpv4 } from '../packet/parse.ts';
import { verifyIpv4Header, verifyL4Checksum } from '../packet/checksum.ts';
import { InputError } from '../spec/errors.ts';
import { CT_NAMES, FATE_DELIVERED, reasonName } from '../spec/reasons.ts';
import { POINT_INTERNET, instancePoint, pointName, type Scenario } from '../spec/scenario.ts';
import type { ModelEngine, ModelResult } from './engine.ts';

export interface PacketSpec {
  /** The text it was parsed from. */
  text: string;
  frame: Uint8Array;
  /** Explicit time (`at MS`), or null. */
  atMs: number | null;
}

const FLAG_LETTERS: Record<string, number> = { S: F_SYN, A: F_ACK, '.': F_ACK, F: F_FIN, R: F_RST, P: F_PSH, U: F_URG };

function bad(spec: string, what: string): InputError {
  return new InputError(`packet spec '${spec}': ${what}`, undefined, spec);
}

function addr(spec: string, text: string): number {
  try {
    return parseIpv4Addr(text);
  } catch {
    throw bad(spec, `'${text}' is not an IPv4 address`);
  }
}

function endpoint(spec: string, text: string): { a: number; port: number } {
  const m = /^([0-9.]+):(\d+)$/.exec(text);
  if (!m) throw bad(spec, `'${text}' is not ADDRESS:PORT`);
  const port = Number(m[2]);
  if (port > 65535) throw bad(spec, `port ${port} is outside 0..65535`);
  return { a: addr(spec, m[1]), port };
}

function num(spec: string, key: string, text: string | undefined, max: number): number {
  if (text === undefined || !/^\d+$/.test(text)) throw bad(spec, `'${key}' needs a number`);
  const n = Number(text);
  if (n > max) throw bad(spec, `${key} ${n} is outside 0..${max}`);
  return n;
}

/**
 * Parses `tcp A:P > B:Q FLAGS [seq N] [ack N] [win N] [len N] [ttl N] [at MS]`,
 * `udp A:P > B:Q [len N] [ttl N] [at MS]`, `icmp A > B echo|echo-reply [id N] [seq N] [len N]
 * [ttl N] [at MS]`. TCP flags are letters S A F R P U (or '.' for ACK), e.g. `S`, `SA`, `FA`.
 */
export function parsePacketSpec(text: string): PacketSpec {
  const tok = text
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '');
  const proto = tok[0];
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'icmp')
    throw bad(text, `expected tcp, udp or icmp first, got '${proto ?? ''}'`);
  if (tok[2] !== '>') throw bad(text, "expected 'SRC > DST'");
  const opts = new Map<string, number>();
  let i = 4;
  let flags = -1;
  let icmpType = -1;
  if (proto === 'tcp') {
    const f = tok[4];
    if (f === undefined || !/^[SAFRPU.]+$/.test(f))
      throw bad(text, `expected TCP flags (letters S A F R P U, e.g. S or SA) after the destination, got '${f ?? ''}'`);
    flags = 0;
    for (const ch of f) flags |= FLAG_LETTERS[ch];
    i = 5;
  } else if (proto === 'icmp') {
    const t = tok[4];
    if (t === 'echo') icmpType = ICMP_ECHO;
    else if (t === 'echo-reply') icmpType = ICMP_ECHOREPLY;
    else throw bad(text, `expected 'echo' or 'echo-reply' after the destination, got '${t ?? ''}'`);
    i = 5;
  }
  const allowed =
    proto === 'tcp'
      ? ['seq', 'ack', 'win', 'len', 'ttl', 'at']
      : proto === 'udp'
        ? ['len', 'ttl', 'at']
        : ['id', 'seq', 'len', 'ttl', 'at'];
  for (; i < tok.length; i += 2) {
    const k = tok[i];
    if (!allowed.includes(k)) throw bad(text, `unknown option '${k}' (allowed: ${allowed.join(', ')})`);
    if (opts.has(k)) throw bad(text, `'${k}' given twice`);
    const max =
      (k === 'seq' && proto === 'tcp') || k === 'ack'
        ? 0xffffffff
        : k === 'ttl'
          ? 255
          : k === 'len'
            ? 1400
            : k === 'at'
              ? Number.MAX_SAFE_INTEGER
              : 65535;
    opts.set(k, num(text, k, tok[i + 1], max));
  }
  const payload = new Uint8Array(opts.get('len') ?? 0);
  const ttl = opts.get('ttl') ?? 64;
  const atMs = opts.has('at') ? (opts.get('at') as number) : null;
  let frame: Uint8Array;
  if (proto === 'icmp') {
    frame = buildIcmpEcho({
      src: addr(text, tok[1]),
      dst: addr(text, tok[3]),
      id: opts.get('id') ?? 1,
      seq: opts.get('seq') ?? 1,
      reply: icmpType === ICMP_ECHOREPLY,
      payload,
      ttl,
    });
  } else {
    const s = endpoint(text, tok[1]);
    const d = endpoint(text, tok[3]);
    frame =
      proto === 'tcp'
        ? buildTcp({
            src: s.a,
            dst: d.a,
            sport: s.port,
            dport: d.port,
            flags,
            seq: opts.get('seq') ?? 1000,
            ack: opts.get('ack') ?? 0,
            window: opts.get('win') ?? 64240,
            payload,
            ttl,
          })
        : buildUdp({ src: s.a, dst: d.a, sport: s.port, dport: d.port, payload, ttl });
  }
  return { text, frame, atMs };
}

function cidrHas(c: { addr: number; len: number }, a: number): boolean {
  const m = c.len === 0 ? 0 : (0xffffffff << (32 - c.len)) >>> 0;
  return (a & m) >>> 0 === c.addr;
}

/** Where a packet from `src` enters: the instance owning it, else the internet (outside the VPC). */
export function ingressFor(s: Scenario, src: number): number {
  const i = s.instances.findIndex((x) => x.privateIp === src);
  if (i >= 0) return instancePoint(i);
  if (s.internetHosts.some((c) => cidrHas(c, src)) || !cidrHas(s.vpcCidr, src)) return POINT_INTERNET;
  throw new InputError(
    `source address ${formatIpv4(src)} is inside the VPC ${formatIpv4(s.vpcCidr.addr)}/${s.vpcCidr.len} but no instance has it: cannot tell where the packet enters`,
  );
}

/**
 * The natural reply to a delivered query (TCP SYN → SYN/ACK, UDP → UDP back, ICMP echo → echo
 * reply), as the receiver sends it, or null when the packet is not a query.
 */
export function naturalReply(delivered: Uint8Array): Uint8Array | null {
  const pv = new PacketView();
  parseIpv4(delivered, 0, delivered.length, pv);
  if (pv.status !== 0) return null;
  if (pv.proto === PROTO_TCP && (pv.tcpFlags & (F_SYN | F_ACK | F_RST | F_FIN)) === F_SYN) {
    return buildTcp({
      src: pv.dst,
      dst: pv.src,
      sport: pv.dport,
      dport: pv.sport,
      flags: F_SYN | F_ACK,
      seq: 3000000000,
      ack: (pv.tcpSeq + 1) >>> 0,
      window: 65160,
    });
  }
  if (pv.proto === PROTO_UDP) {
    return buildUdp({
      src: pv.dst,
      dst: pv.src,
      sport: pv.dport,
      dport: pv.sport,
      payload: new Uint8Array(pv.payloadLen),
    });
  }
  if (pv.proto === PROTO_ICMP && pv.icmpType === ICMP_ECHO) {
    return buildIcmpEcho({
      src: pv.dst,
      dst: pv.src,
      id: pv.icmpId,
      seq: pv.icmpSeq,
      reply: true,
      payload: delivered.slice(pv.payloadOff, pv.l3Off + pv.totalLen),
    });
  }
  return null;
}

export interface TraceHop {
  name: string;
  packet: string;
  note: string;
  drop?: string;
  egress?: string;
  checksumsOk: boolean;
  bytes: Uint8Array;
}

export interface TracedPacket {
  spec: string;
  ingress: string;
  timeMs: number;
  hops: TraceHop[];
  fate: 'delivered' | 'dropped';
  reason: string;
  ct: string;
  outputs: { egress: string; packet: string; bytes: Uint8Array }[];
  result: ModelResult;
  reply: TracedPacket | null;
}

function checksumsOk(b: Uint8Array): boolean {
  const pv = new PacketView();
  parseIpv4(b, 0, b.length, pv);
  return pv.status === 0 && verifyIpv4Header(b, pv) && verifyL4Checksum(b, pv);
}

/** Runs one packet through the engine and packages its path; `withReply` traces the reply too. */
export function tracePacket(
  engine: ModelEngine,
  spec: string,
  frame: Uint8Array,
  ingress: number,
  timeMs: number,
  withReply: boolean,
): TracedPacket {
  const s = engine.scenario;
  const r = engine.processOne({ timeUs: timeMs * 1000, ingress, frame });
  const t: TracedPacket = {
    spec,
    ingress: pointName(s, ingress),
    timeMs,
    hops: r.hops.map((h) => ({
      name: h.name,
      packet: describePacket(h.packet),
      note: h.note,
      ...(h.drop !== undefined ? { drop: reasonName(h.drop) } : {}),
      ...(h.egress !== undefined ? { egress: pointName(s, h.egress) } : {}),
      checksumsOk: checksumsOk(h.packet),
      bytes: h.packet,
    })),
    fate: r.fate === FATE_DELIVERED ? 'delivered' : 'dropped',
    reason: reasonName(r.reason),
    ct: CT_NAMES[r.ct],
    outputs: r.outputs.map((o) => ({
      egress: pointName(s, o.egress),
      packet: describePacket(o.frame),
      bytes: o.frame,
    })),
    result: r,
    reply: null,
  };
  if (withReply && r.delivered >= 0) {
    const out = r.outputs[r.delivered];
    const reply = naturalReply(out.frame);
    if (reply) t.reply = tracePacket(engine, describePacket(reply), reply, out.egress, timeMs, false);
  }
  return t;
}
