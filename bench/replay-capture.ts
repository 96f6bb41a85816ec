// The replay workload's generated captures: the mixed profile as seen at the VPC's edges (the
// inside hosts' packets, and the internet's replies addressed to the NAT's Elastic IP), raw IPv4,
// written as they are generated (a capture of millions of records never sits in memory), and the
// same capture as taken on the inside host (one-sided) beside it.
import { LINKTYPE_RAW, PROTO_ICMP } from '../src/packet/constants.ts';
import { fixChecksums } from '../src/packet/build.ts';
import { wr32 } from '../src/packet/bytes.ts';
import { PacketView, PARSE_OK, parseIpv4 } from '../src/packet/parse.ts';
import { PcapWriter } from '../src/pcap/writer.ts';
import type { Scenario } from '../src/spec/scenario.ts';
import type { TrafficProfile } from '../src/traffic/profile.ts';
import { FlowSpace, MixedWorkload, type FrameColumns, type PacketSource } from '../src/traffic/workload.ts';

export interface MixedCapture {
  /** Records in each file. */
  records: number;
  /** Flows the capture uses (set-up flows + new flows): the conntrack entries it makes. */
  flows: number;
  /** Bytes of the two-sided file. */
  bytes: number;
}

/**
 * Writes the profile's active flows' set-up (3 packets each, at `setupMs`) then `streamPackets`
 * packets of its stream (at `streamMs`), 1 µs apart within a phase, to `path`; and to `onePath`
 * the same records as captured on the inside host (oneSided below). Deterministic in `seed`: a
 * longer capture of the same seed starts with the shorter one's records.
 */
export async function writeMixedCapture(
  sc: Scenario,
  profile: TrafficProfile,
  seed: number,
  streamPackets: number,
  times: { setupMs: number; streamMs: number },
  path: string,
  onePath: string,
): Promise<MixedCapture> {
  const wl = new MixedWorkload(new FlowSpace(sc), profile, seed);
  const two = await PcapWriter.open(path, { linkType: LINKTYPE_RAW });
  const one = await PcapWriter.open(onePath, { linkType: LINKTYPE_RAW });
  const side = new OneSided(sc);
  const c: FrameColumns = {
    arena: new Uint8Array(2048),
    off: new Int32Array(1),
    len: new Int32Array(1),
    ingress: new Int32Array(1),
    timeUs: new Float64Array(1),
  };
  let records = 0;
  const push = async (src: PacketSource, count: number, nowMs: number): Promise<void> => {
    for (let k = 0; k < count && src.remaining > 0; k++) {
      const n = src.next(c, 0, 0, nowMs);
      const us = c.timeUs[0] + records; // 1 µs apart within a phase
      const data = c.arena.subarray(0, n);
      const rec = { tsSec: Math.floor(us / 1e6), tsNsec: (us % 1e6) * 1000, data };
      two.writeSync(rec);
      one.writeSync({ ...rec, data: side.frame(data) });
      records++;
      if ((records & 4095) === 0) await Promise.all([two.drained(), one.drained()]);
    }
  };
  try {
    await push(wl.setup(), Infinity, times.setupMs);
    await push(wl.stream(), streamPackets, times.streamMs);
  } finally {
    await Promise.all([two.close(), one.close()]);
  }
  return { records, flows: wl.flowsUsed, bytes: two.bytes };
}

/**
 * The generated capture as taken on the inside host (one-sided): each reply from the internet to
 * an Elastic IP is addressed to the private address of the inside host whose packet it answers
 * (same remote, same ports: the generator's flows keep their ports through the NAT), checksums
 * recomputed. Records and sizes are those of the two-sided capture. Memory: one entry per flow.
 */
class OneSided {
  private readonly priv: Set<number>;
  private readonly eips: Set<number>;
  private readonly pv = new PacketView();
  private readonly inside = new Map<string, number>();

  constructor(sc: Scenario) {
    this.priv = new Set(sc.instances.map((i) => i.privateIp >>> 0));
    this.eips = new Set(sc.instances.flatMap((i) => (i.elasticIp === null ? [] : [i.elasticIp >>> 0])));
  }

  /** The frame as the inside host saw it (`data` itself when unchanged, else a fixed copy). */
  frame(data: Uint8Array): Uint8Array {
    const pv = this.pv;
    if (parseIpv4(data, 0, data.length, pv) !== PARSE_OK) return data;
    const icmp = pv.proto === PROTO_ICMP;
    const sport = icmp ? 0 : pv.sport;
    const dport = icmp ? pv.icmpId : pv.dport;
    if (this.priv.has(pv.src >>> 0)) {
      // key: proto, remote address, remote port, the inside host's port (ICMP: 0 and the query id)
      this.inside.set(`${pv.proto}/${pv.dst >>> 0}/${icmp ? 0 : dport}/${icmp ? dport : sport}`, pv.src);
      return data;
    }
    if (!this.eips.has(pv.dst >>> 0)) return data;
    const to = this.inside.get(`${pv.proto}/${pv.src >>> 0}/${sport}/${dport}`);
    if (to === undefined) return data;
    const copy = data.slice();
    wr32(copy, 16, to);
    return fixChecksums(copy);
  }
}
