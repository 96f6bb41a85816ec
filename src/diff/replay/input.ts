// Replay input: turns capture records into the frames the engines are fed, deciding per record
// what is fed and what is counted before the engines (and why):
//
//   parse status of the link + IPv4 header        fed?  result recorded for every engine
//   unsupported link type, truncated link header  no    dropped: malformed (status)
//   not IPv4 (ARP, IPv6, ...)                     no    dropped: not-ipv4 (detail = EtherType)
//   truncated IPv4 header, bad IP version         no    dropped: malformed (status) — no source
//                                                       address to decide the ingress from
//   any other status (bad IHL, bad total length,  yes   the engines decide (malformed, fragment,
//   truncated packet, bad IP checksum, fragment,        INVALID, ...), at the source's ingress
//   L4 problems) and OK
//   source belongs nowhere (ingress.ts)           no    dropped: no-ingress (detail = why)
//
// Link headers are stripped; the IPv4 packet is cut at its total length (Ethernet padding and FCS
// are not part of it). Timestamps drive the clock; a timestamp earlier than the previous one is
// clamped to it and counted.
import { ETHERTYPE_IPV4, linkTypeName } from '../../packet/constants.ts';
import { describePacket } from '../../packet/format.ts';
import {
  PacketView,
  PARSE_BAD_IP_VERSION,
  PARSE_NOT_IPV4,
  PARSE_OK,
  PARSE_STATUS_NAMES,
  PARSE_TRUNCATED_IP_HEADER,
  PARSE_TRUNCATED_L2,
  PARSE_UNSUPPORTED_LINKTYPE,
  parseFrame,
} from '../../packet/parse.ts';
import type { CaptureRecord } from '../../pcap/types.ts';
import { DROP_MALFORMED, DROP_NO_INGRESS, DROP_NOT_IPV4 } from '../../spec/reasons.ts';
import { POINT_INTERNET } from '../../spec/scenario.ts';
import { INGRESS_NOWHERE, type IngressMap, NOWHERE_WHY } from './ingress.ts';
import { inboundKey, inboundKeyRaw, outboundKey } from './remap.ts';

export interface PreparedFrame {
  /** 1-based packet number in the input capture (Wireshark's frame.number). */
  n: number;
  /** Clock for the engines, microseconds (clamped to be non-decreasing). */
  timeUs: number;
  /** Ingress point, or INGRESS_NOWHERE when the frame is not fed (see reason). */
  ingress: number;
  /** The IPv4 packet fed to the engines (a copy), or null when not fed. */
  frame: Uint8Array | null;
  /** Parse status of the frame (link + IPv4 + L4). */
  status: number;
  /** Not fed: the DROP_* reason recorded for every engine, and its detail. */
  reason: number;
  detail: number;
  /** Fed at an instance: the flow key its outbound mapping is learned under. */
  outKey: string | null;
  /** Fed from the internet to an instance's private address: the instance index, else -1. */
  remapInstance: number;
  /** ... and the flow key its mapping is looked up under (null: no flow, e.g. malformed). */
  inKey: string | null;
}

export interface InputCounters {
  /** Records read from the capture. */
  records: number;
  /** Records fed to the engines. */
  fed: number;
  /** Records counted before the engines, by cause ('not-ipv4 (ethertype 0x86dd)', ...). */
  notFed: Record<string, number>;
  /** Records by parse status name (every record). */
  byStatus: Record<string, number>;
  /** Fed records whose source is an instance / the internet. */
  fromInstances: number;
  fromInternet: number;
  /** Fed from the internet addressed to an instance's private address (one-sided capture). */
  toPrivate: number;
  /** Timestamps earlier than their predecessor, clamped. */
  clampedTimestamps: number;
  /** Largest backward step seen, microseconds. */
  maxBackstepUs: number;
  firstTimeUs: number;
  lastTimeUs: number;
  /** The first frames counted before the engines: packet number, what it is, why. */
  notFedExamples: Array<{ input: number; frame: string; why: string }>;
}

/** Examples of not-fed frames kept for the report. */
export const MAX_NOT_FED_EXAMPLES = 10;

export function newInputCounters(): InputCounters {
  return {
    records: 0,
    fed: 0,
    notFed: {},
    byStatus: {},
    fromInstances: 0,
    fromInternet: 0,
    toPrivate: 0,
    clampedTimestamps: 0,
    maxBackstepUs: 0,
    firstTimeUs: -1,
    lastTimeUs: -1,
    notFedExamples: [],
  };
}

function bump(o: Record<string, number>, k: string): void {
  o[k] = (o[k] ?? 0) + 1;
}

export function etherTypeText(t: number): string {
  return `0x${t.toString(16).padStart(4, '0')}`;
}

/** Turns records into prepared frames, keeping the counters. Not reentrant (one PacketView). */
export class FramePreparer {
  readonly counters = newInputCounters();
  private readonly pv = new PacketView();
  private lastUs = -1;

  constructor(readonly ingress: IngressMap) {}

  private notFed(p: PreparedFrame, why: string, frame: string): void {
    const c = this.counters;
    bump(c.notFed, why);
    if (c.notFedExamples.length < MAX_NOT_FED_EXAMPLES) c.notFedExamples.push({ input: p.n, frame, why });
  }

  prepare(rec: CaptureRecord): PreparedFrame {
    const c = this.counters;
    c.records++;
    let t = rec.timeUs;
    if (this.lastUs >= 0 && t < this.lastUs) {
      c.clampedTimestamps++;
      c.maxBackstepUs = Math.max(c.maxBackstepUs, this.lastUs - t);
      t = this.lastUs;
    }
    this.lastUs = t;
    if (c.firstTimeUs < 0) c.firstTimeUs = t;
    c.lastTimeUs = t;
    const pv = this.pv;
    const st = parseFrame(rec.data, 0, rec.data.length, rec.linkType, pv);
    bump(c.byStatus, PARSE_STATUS_NAMES[st] ?? `status-${st}`);
    const p: PreparedFrame = {
      n: rec.index + 1,
      timeUs: t,
      ingress: INGRESS_NOWHERE,
      frame: null,
      status: st,
      reason: 0,
      detail: 0,
      outKey: null,
      remapInstance: -1,
      inKey: null,
    };
    if (
      st === PARSE_UNSUPPORTED_LINKTYPE ||
      st === PARSE_TRUNCATED_L2 ||
      st === PARSE_TRUNCATED_IP_HEADER ||
      st === PARSE_BAD_IP_VERSION
    ) {
      p.reason = DROP_MALFORMED;
      p.detail = st;
      this.notFed(
        p,
        `malformed: ${PARSE_STATUS_NAMES[st]}`,
        `${rec.data.length} bytes (${linkTypeName(rec.linkType)})`,
      );
      return p;
    }
    if (st === PARSE_NOT_IPV4 || pv.etherType !== ETHERTYPE_IPV4) {
      p.reason = DROP_NOT_IPV4;
      p.detail = pv.etherType;
      this.notFed(
        p,
        `not-ipv4 (ethertype ${etherTypeText(pv.etherType)})`,
        `${rec.data.length} bytes (${linkTypeName(rec.linkType)})`,
      );
      return p;
    }
    const ingress = this.ingress.classify(pv.src);
    if (ingress === INGRESS_NOWHERE) {
      p.reason = DROP_NO_INGRESS;
      p.detail = this.ingress.lastWhy;
      const c2 = this.counters;
      this.notFed(
        p,
        `no-ingress: ${NOWHERE_WHY[this.ingress.lastWhy]}`,
        c2.notFedExamples.length < MAX_NOT_FED_EXAMPLES ? describePacket(rec.data, pv.l3Off, pv.capLen) : '',
      );
      return p;
    }
    p.ingress = ingress;
    // A copy (never Buffer#slice: that is a view into the reader's chunk).
    p.frame = new Uint8Array(rec.data.subarray(pv.l3Off, pv.l3Off + pv.capLen));
    c.fed++;
    if (ingress === POINT_INTERNET) {
      c.fromInternet++;
      const owner = this.ingress.privateOwner(pv.dst);
      if (owner >= 0) {
        c.toPrivate++;
        p.remapInstance = owner;
        p.inKey = st === PARSE_OK ? inboundKey(pv) : inboundKeyRaw(p.frame);
      }
    } else {
      c.fromInstances++;
      p.outKey = outboundKey(pv);
    }
    return p;
  }
}
