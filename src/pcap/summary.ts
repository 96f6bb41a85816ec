// What `natlab pcap info` reports about one capture: the file's own description plus natlab's view
// of its packets (parse status, L4 protocol, checksums), gathered in one streaming pass.
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import {
  PARSE_BAD_IP_VERSION,
  PARSE_NOT_IPV4,
  PARSE_OK,
  PARSE_STATUS_NAMES,
  PARSE_TRUNCATED_IP_HEADER,
  PARSE_TRUNCATED_L2,
  PARSE_UNSUPPORTED_LINKTYPE,
  PacketView,
  parseFrame,
} from '../packet/parse.ts';
import { verifyL4Checksum } from '../packet/checksum.ts';
import { openCapture } from './reader.ts';
import type { CaptureInfo, OpenOptions } from './types.ts';

export interface CaptureSummary {
  file: string;
  info: CaptureInfo;
  packets: number;
  bytesCaptured: number;
  bytesOnWire: number;
  /** Records whose captured length is below their original length (snapshot-length cut). */
  truncatedRecords: number;
  first: { sec: number; nsec: number } | null;
  last: { sec: number; nsec: number } | null;
  /** Timestamps that go backwards (record order != time order). */
  outOfOrder: number;
  /** Per PARSE_STATUS_NAMES name, only statuses that occur. */
  parseStatus: Record<string, number>;
  /** Per L4 protocol ('tcp', 'udp', 'icmp', 'ip-proto-N') for packets with a readable IPv4 header. */
  l4: Record<string, number>;
  /** Per EtherType ('arp', 'ipv6', '0x88cc', ...) for packets that are not IPv4. */
  notIpv4: Record<string, number>;
  /** Fully parsed TCP/UDP/ICMP packets (not fragments) whose L4 checksum is wrong. */
  badL4Checksum: number;
  warnings: string[];
}

const PROTO_NAMES: Record<number, string> = {
  [PROTO_ICMP]: 'icmp',
  2: 'igmp',
  4: 'ipip',
  [PROTO_TCP]: 'tcp',
  [PROTO_UDP]: 'udp',
  41: 'ipv6',
  47: 'gre',
  50: 'esp',
  51: 'ah',
  89: 'ospf',
  132: 'sctp',
};
const ETHERTYPE_NAMES: Record<number, string> = {
  0x0806: 'arp',
  0x86dd: 'ipv6',
  0x8035: 'rarp',
  0x88cc: 'lldp',
  0x8847: 'mpls',
  0x8864: 'pppoe',
};

export function protoName(p: number): string {
  return PROTO_NAMES[p] ?? `ip-proto-${p}`;
}

function inc(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** Reads the whole capture once (streaming). Throws InputError for a file it cannot read. */
export async function summarizeCapture(file: string, opts: OpenOptions = {}): Promise<CaptureSummary> {
  const r = await openCapture(file, opts);
  const s: CaptureSummary = {
    file,
    info: r.info,
    packets: 0,
    bytesCaptured: 0,
    bytesOnWire: 0,
    truncatedRecords: 0,
    first: null,
    last: null,
    outOfOrder: 0,
    parseStatus: {},
    l4: {},
    notIpv4: {},
    badL4Checksum: 0,
    warnings: r.warnings,
  };
  const pv = new PacketView();
  const statusCounts = new Array<number>(PARSE_STATUS_NAMES.length + 1).fill(0);
  let prevUs = -Infinity;
  for await (const batch of r.batches(4096)) {
    for (const rec of batch) {
      s.packets++;
      s.bytesCaptured += rec.data.length;
      s.bytesOnWire += rec.origLen;
      if (rec.data.length < rec.origLen) s.truncatedRecords++;
      if (!s.first) s.first = { sec: rec.tsSec, nsec: rec.tsNsec };
      s.last = { sec: rec.tsSec, nsec: rec.tsNsec };
      if (rec.timeUs < prevUs) s.outOfOrder++;
      prevUs = rec.timeUs;
      const st = parseFrame(rec.data, 0, rec.data.length, rec.linkType, pv);
      statusCounts[Math.min(st, PARSE_STATUS_NAMES.length)]++;
      if (st === PARSE_NOT_IPV4) {
        // EtherType values below 0x0600 are 802.3 lengths: an LLC frame (STP, CDP, ...).
        const et = pv.etherType;
        inc(s.notIpv4, et < 0x0600 ? 'llc' : (ETHERTYPE_NAMES[et] ?? `0x${et.toString(16).padStart(4, '0')}`));
      } else if (
        st !== PARSE_TRUNCATED_L2 &&
        st !== PARSE_TRUNCATED_IP_HEADER &&
        st !== PARSE_BAD_IP_VERSION &&
        st !== PARSE_UNSUPPORTED_LINKTYPE
      ) {
        inc(s.l4, protoName(pv.proto));
      }
      if (
        st === PARSE_OK &&
        pv.mf === 0 &&
        (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP || pv.proto === PROTO_ICMP)
      ) {
        if (!verifyL4Checksum(rec.data, pv)) s.badL4Checksum++;
      }
    }
  }
  statusCounts.forEach((n, i) => {
    if (n > 0) s.parseStatus[PARSE_STATUS_NAMES[i] ?? `status-${i}`] = n;
  });
  return s;
}

/** Timestamp as ISO 8601 UTC with the fraction at the given resolution ('us' → 6 digits, else 9). */
export function formatTimestamp(sec: number, nsec: number, res: string): string {
  const d = new Date(sec * 1000);
  const base = Number.isNaN(d.getTime()) ? `${sec}s` : d.toISOString().slice(0, 19);
  const frac = String(nsec).padStart(9, '0');
  return `${base}.${res === 'us' ? frac.slice(0, 6) : frac}Z`;
}
