// A large one-sided capture for streaming/memory tests and manual runs: DNS-like UDP
// request/response pairs and ICMP echoes from the built-in scenario's app host (10.0.1.10) to a
// rotating set of internet servers, written straight to a pcap with PcapWriter (never held in
// memory). Flows are reused round-robin, so the live state stays bounded by `flows` while the
// capture grows without bound. Deterministic for given options.
import { buildEthernet, buildIcmpEcho, buildUdp } from '../packet/build.ts';
import { LINKTYPE_ETHERNET } from '../packet/constants.ts';
import { PcapWriter } from '../pcap/writer.ts';
import { APP, SCRIPT_EPOCH_US } from './scripted.ts';

export interface BulkOptions {
  /** Packets to write (rounded up to an even number: requests and replies). */
  packets: number;
  /** Concurrent flows reused round-robin (default 4096). */
  flows?: number;
  /** Microseconds between packets (default 100: 10 kpps of capture time). */
  gapUs?: number;
}

const SERVERS_BASE = 0xc6336400; // 198.51.100.0/24

/** Writes the capture; resolves with the number of packets written. */
export async function writeBulkCapture(path: string, o: BulkOptions): Promise<number> {
  const flows = Math.max(1, o.flows ?? 4096);
  const gap = o.gapUs ?? 100;
  const w = await PcapWriter.open(path, { linkType: LINKTYPE_ETHERNET });
  const payload = new Uint8Array(32).fill(0x61);
  const answer = new Uint8Array(48).fill(0x62);
  let t = SCRIPT_EPOCH_US;
  let n = 0;
  // One request/reply template pair per flow, built once (the bytes repeat per round).
  const templates: Array<[Uint8Array, Uint8Array]> = [];
  for (let f = 0; f < flows; f++) {
    const server = (SERVERS_BASE + 1 + (f % 250)) >>> 0;
    const sport = 10000 + Math.floor(f / 250);
    if (f % 16 === 15) {
      templates.push([
        buildEthernet(buildIcmpEcho({ src: APP, dst: server, id: sport, seq: 1, payload })),
        buildEthernet(buildIcmpEcho({ src: server, dst: APP, id: sport, seq: 1, payload, reply: true, ttl: 57 })),
      ]);
    } else {
      templates.push([
        buildEthernet(buildUdp({ src: APP, dst: server, sport, dport: 53, payload })),
        buildEthernet(buildUdp({ src: server, dst: APP, sport: 53, dport: sport, payload: answer, ttl: 57 })),
      ]);
    }
  }
  try {
    for (let i = 0; n < o.packets; i++) {
      for (const data of templates[i % flows]) {
        t += gap;
        const tsSec = Math.floor(t / 1e6);
        await w.write({ tsSec, tsNsec: (t - tsSec * 1e6) * 1000, data });
        n++;
      }
    }
  } finally {
    await w.close();
  }
  return n;
}
