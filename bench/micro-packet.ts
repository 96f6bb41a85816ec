// tinybench microbenchmarks for the packet layer: parse and checksum, ns/packet.
// Run: npx tsx bench/micro-packet.ts   (writes results/micro-packet-<stamp>.json)
import { Bench } from 'tinybench';
import { PacketView, parseIpv4, parseFrame } from '../src/packet/parse.ts';
import { buildEthernet, buildTcp, buildUdp } from '../src/packet/build.ts';
import { csumReplace32, csumApplyDelta, csumDelta32, verifyL4Checksum, sum16 } from '../src/packet/checksum.ts';
import { LINKTYPE_ETHERNET, F_ACK } from '../src/packet/constants.ts';
import { writeBenchResult } from './results.ts';

export async function runPacketMicro(opts: { time?: number } = {}): Promise<Bench> {
  const N = 1024;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < N; i++) {
    const ip =
      i & 1
        ? buildUdp({
            src: 0x0a00010a + (i >> 4),
            dst: 0xc6336407,
            sport: 1024 + i,
            dport: 53,
            payload: new Uint8Array(18),
          })
        : buildTcp({
            src: 0x0a00010a + (i >> 4),
            dst: 0xc6336407,
            sport: 1024 + i,
            dport: 443,
            flags: F_ACK,
            payload: new Uint8Array(6),
          });
    frames.push(buildEthernet(ip));
  }
  const pv = new PacketView();
  let sink = 0;
  const bench = new Bench({ time: opts.time ?? 500, warmupTime: 100 });
  bench
    .add('parse Ethernet+IPv4+L4 (64-byte frames) ×1024', () => {
      for (let i = 0; i < N; i++) {
        const f = frames[i];
        sink += parseFrame(f, 0, f.length, LINKTYPE_ETHERNET, pv) + pv.sport;
      }
    })
    .add('parse raw IPv4 ×1024', () => {
      for (let i = 0; i < N; i++) {
        const f = frames[i];
        sink += parseIpv4(f, 14, f.length - 14, pv) + pv.dport;
      }
    })
    .add('verify L4 checksum ×1024', () => {
      for (let i = 0; i < N; i++) {
        const f = frames[i];
        parseFrame(f, 0, f.length, LINKTYPE_ETHERNET, pv);
        sink += verifyL4Checksum(f, pv) ? 1 : 0;
      }
    })
    .add('RFC 1071 sum over 50 bytes ×1024', () => {
      for (let i = 0; i < N; i++) sink += sum16(frames[i], 14, 50);
    })
    .add('RFC 1624 csumReplace32 ×1024', () => {
      for (let i = 0; i < N; i++) sink += csumReplace32(i, 0x0a00010a + i, 0xcb00710a);
    })
    .add('apply precomputed delta ×1024', () => {
      const d = csumDelta32(0x0a00010a, 0xcb00710a);
      for (let i = 0; i < N; i++) sink += csumApplyDelta(i, d);
    });
  await bench.run();
  if (sink === 0.5) console.log(sink);
  return bench;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await runPacketMicro();
  const rows = bench.tasks.map((t) => {
    const r = t.result as unknown as {
      latency?: { p50?: number; min?: number; max?: number };
      throughput?: { p50?: number };
    };
    const p50 = r?.latency?.p50 ?? NaN; // ms per 1024-packet iteration
    return {
      name: t.name,
      nsPerPacketMedian: (p50 * 1e6) / 1024,
      nsPerPacketMin: ((r?.latency?.min ?? NaN) * 1e6) / 1024,
      nsPerPacketMax: ((r?.latency?.max ?? NaN) * 1e6) / 1024,
    };
  });
  console.table(rows);
  const file = await writeBenchResult('micro-packet', { unit: 'ns/packet', rows });
  console.log(`wrote ${file}`);
}
