// Streaming with bounded memory: a capture of 1 M packets (97 MB) replayed with
// outputs written, RSS sampled after every chunk. The engine here is a minimal stand-in (static
// masquerade of app to the NAT instance's Elastic IP) so the test measures the replay machinery
// — reader, preparation, re-addressing, result accounting, writers — not an engine's speed; the
// reference model runs a smaller capture through the same path. A manual multi-million run with
// the real engines is in docs/replay.md.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReplay, type EngineFactory } from '../../src/diff/replay/replay.ts';
import { engineAvailable } from '../../src/diff/engines.ts';
import { writeBulkCapture } from '../../src/traffic/scripted-bulk.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { csumReplace32, udpCsumReplace32 } from '../../src/packet/checksum.ts';
import { PROTO_TCP, PROTO_UDP } from '../../src/packet/constants.ts';
import { parseIpv4Addr } from '../../src/packet/addr.ts';
import { CT_ESTABLISHED, FATE_DELIVERED } from '../../src/spec/reasons.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';
import type { Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';

const PACKETS = 1_000_000;
// A full garbage collection on demand (the test measures what the run holds, not V8's timing).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const HAVE_MODEL = await engineAvailable('model');
const APP = parseIpv4Addr('10.0.1.10');
const EIP = parseIpv4Addr('203.0.113.10');

/** Rewrites the source (srcSide) or destination address, checksums updated incrementally. */
function rewrite(f: Uint8Array, off: number, to: number): Uint8Array {
  const o = new Uint8Array(f);
  const old = ((o[off] << 24) | (o[off + 1] << 16) | (o[off + 2] << 8) | o[off + 3]) >>> 0;
  o[off] = to >>> 24;
  o[off + 1] = (to >>> 16) & 255;
  o[off + 2] = (to >>> 8) & 255;
  o[off + 3] = to & 255;
  const w = (at: number, v: number) => ((o[at] = v >>> 8), (o[at + 1] = v & 255));
  w(10, csumReplace32((o[10] << 8) | o[11], old, to));
  const ihl = (o[0] & 15) << 2;
  if (o[9] === PROTO_TCP) w(ihl + 16, csumReplace32((o[ihl + 16] << 8) | o[ihl + 17], old, to));
  if (o[9] === PROTO_UDP) w(ihl + 6, udpCsumReplace32((o[ihl + 6] << 8) | o[ihl + 7], old, to));
  return o;
}

/** Static masquerade app <-> the Elastic IP, ports kept: enough NAT for the replay machinery. */
const staticNat: EngineFactory = async (name, s) => {
  const app = instancePoint(s.instances.findIndex((i) => i.name === 'app'));
  const e: Engine = {
    name,
    async process(batch: readonly InputPacket[]): Promise<PacketResult[]> {
      return batch.map((p) => {
        const out =
          p.ingress === POINT_INTERNET
            ? { egress: app, frame: rewrite(p.frame, 16, APP) }
            : { egress: POINT_INTERNET, frame: rewrite(p.frame, 12, EIP) };
        return { fate: FATE_DELIVERED, reason: 0, detail: 0, ct: CT_ESTABLISHED, outputs: [out] };
      });
    },
    advance: async () => undefined,
    conntrack: async () => [],
    natCounters: async () => [],
    close: async () => undefined,
  };
  return e;
};

let dir: string;
let big: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natlab-stream-'));
  big = join(dir, 'big.pcap');
  expect(await writeBulkCapture(big, { packets: PACKETS, flows: 8192 })).toBe(PACKETS);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('replay streams in bounded memory', () => {
  it(`${PACKETS.toLocaleString('en-US')} packets: memory does not grow with the capture`, async () => {
    const samples: Array<[number, number]> = [];
    // Live memory after a full GC, every 16th chunk: what the run holds, not when V8 got round to
    // collecting (RSS alone grew 80-85 MB between the quarters at load 30 and ~10 MB alone).
    const live: number[] = [];
    let chunks = 0;
    const base = process.memoryUsage().rss;
    const { report } = await runReplay({
      input: big,
      outDir: join(dir, 'out'),
      scenario: loadOpenScenario(),
      scenarioHow: 'test',
      engines: ['static'],
      engineFactory: staticNat,
      onProgress: (records) => {
        samples.push([records, process.memoryUsage().rss]);
        if (chunks++ % 16 === 0) {
          gc();
          const m = process.memoryUsage();
          live.push(m.heapUsed + m.external);
        }
      },
    });
    expect(report.input.records).toBe(PACKETS);
    const m = report.engines[0];
    expect(m.delivered).toBe(PACKETS);
    expect(m.readdressed.flow).toBe(PACKETS / 2); // every reply found its flow's mapping
    expect(m.outputs.internet.frames).toBe(PACKETS / 2);
    expect((await stat(join(dir, 'out', 'static', 'internet.pcap'))).size).toBeGreaterThan(40e6);
    // Memory: after a full GC the last quarter of the run holds no more than the first quarter plus
    // slack (a leak per packet or per flow grows it with the capture), and the whole run stays far
    // below the size of the capture it streamed.
    expect(live.length).toBeGreaterThanOrEqual(8);
    const q = Math.floor(live.length / 4);
    const early = Math.max(...live.slice(0, q));
    const late = Math.max(...live.slice(3 * q));
    const mb = (x: number) => x / (1 << 20);
    expect(mb(late - early), `live early ${mb(early).toFixed(0)} MB, late ${mb(late).toFixed(0)} MB`).toBeLessThan(32);
    // Peak over the RSS before the run. What the loop itself holds (replay.ts) is ~16 MiB: two input
    // chunks (4 MiB arena + columns each), the stand-in engine's results for two chunks (~2 MiB),
    // the writers' 256 KiB staging buffers and the reader's read buffers (~4 MiB), the learned
    // mappings of 8,192 flows (<1 MiB). The rest is V8's heap growth under this engine's garbage
    // (it returns objects and copies per packet), which varies with load: measured 74 MB alone and
    // 102 MB in the full suite at load 29 (the per-object loop before: 94 MB alone, 129 MB once).
    // 5 Dec 2026: the same code as 4 Dec measured 114-126 MB alone on this machine, today's 120-145
    // alone and 130-140 in full runs (a bisect over the session's commits was inside that noise), while
    // the late-minus-early growth above fell from ~50 to ~10 MB: memory does not scale with the
    // capture (that is the check above); this bound catches a gross regression, with room for V8.
    expect(mb(Math.max(...samples.map((s) => s[1])) - base)).toBeLessThan(160);
    expect(report.peakRssMb).toBeGreaterThan(0);
  }, 180_000);

  it.runIf(HAVE_MODEL)(
    'the reference model on 60,000 packets of the same traffic',
    async () => {
      const small = join(dir, 'small.pcap');
      await writeBulkCapture(small, { packets: 60_000, flows: 2048 });
      const { report } = await runReplay({
        input: small,
        outDir: null,
        scenario: loadOpenScenario(),
        scenarioHow: 'test',
        engines: ['model'],
      });
      const m = report.engines[0];
      expect(m.delivered).toBe(60_000);
      expect(m.readdressed.flow).toBe(30_000);
      expect(m.translated).toBe(60_000);
      expect(m.sessionsCreated).toBe(2048);
    },
    120_000,
  );
});
