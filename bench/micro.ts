// Microbenchmarks (tinybench), in one thread: the packet layer (parse, checksums: runPacketMicro of
// bench/micro-packet.ts) and the core's internals — flow-table lookup and insert/delete, session
// creation with port preservation and with port search (allocation), and the established fast
// path (lookup + composed rewrite + output copy). Every task handles 1024 packets or keys per
// iteration; figures are ns per packet/key (median, min, max of tinybench's samples).
// Run alone: npx tsx bench/micro.ts   (prints the table; `natlab bench` includes it)
import { Bench } from 'tinybench';
import { loadOpenScenario } from '../src/scenario/index.ts';
import type { Scenario } from '../src/spec/scenario.ts';
import { FATE_DELIVERED } from '../src/spec/reasons.ts';
import { resultFate, resultReason } from '../src/spec/frame-batch.ts';
import {
  type CoreBatch,
  createCoreBatch,
  createCoreShared,
  KIND_ORIG,
  SESSION_WORDS,
  S_META,
  S_OSRC,
  M_SLOT_SHIFT,
  M_SLOT_MASK,
  M_PROTO_MASK,
  Dataplane,
} from '../src/core/bench-api.ts';
import {
  EstablishedWorkload,
  FlowSpace,
  FRAME64_IP_LEN,
  SETUP_DONE_MS,
  nextFrameOffset,
  benchScenario,
  withExtraHosts,
  writeUdp,
  type PacketSource,
} from '../src/traffic/workload.ts';
import { instancePoint } from '../src/spec/scenario.ts';
import { runPacketMicro } from './micro-packet.ts';

export interface MicroRow {
  group: 'packet' | 'core';
  name: string;
  /** ns per packet (or key) over tinybench samples. */
  nsMedian: number;
  nsMin: number;
  nsMax: number;
  samples: number;
}

const N = 1024;
const T0 = 1000;

function rows(bench: Bench, group: MicroRow['group'], perIteration: number): MicroRow[] {
  return bench.tasks.map((t) => {
    const r = t.result as unknown as
      | { latency?: { p50?: number; min?: number; max?: number; samplesCount?: number; samples?: number[] } }
      | undefined;
    const k = 1e6 / perIteration; // ms per iteration → ns per op
    return {
      group,
      name: t.name,
      nsMedian: (r?.latency?.p50 ?? NaN) * k,
      nsMin: (r?.latency?.min ?? NaN) * k,
      nsMax: (r?.latency?.max ?? NaN) * k,
      samples: r?.latency?.samplesCount ?? r?.latency?.samples?.length ?? 0,
    };
  });
}

function load(io: CoreBatch, src: PacketSource, count: number, nowMs: number): number {
  let off = 0;
  let n = 0;
  while (n < count && src.remaining > 0) off = nextFrameOffset(off, src.next(io.batch, n++, off, nowMs));
  io.batch.count = n;
  return n;
}

/** Processes the first `n` packets of io (idx: the identity). */
function run(dp: Dataplane, io: CoreBatch, n: number): void {
  dp.processBatch(io.batch, io.out, io.idx, 0, n);
}

/** A Dataplane (1 worker) with `sessions` established UDP sessions of the benchmark's flow space. */
function establishedPlane(scenario: Scenario, sessions: number): { dp: Dataplane; wl: EstablishedWorkload } {
  const sc = benchScenario(scenario, sessions);
  const shared = createCoreShared(sc, { workers: 1, seed: 1, capacity: Math.max(sessions, 1024) });
  const dp = new Dataplane(shared, 0);
  const wl = new EstablishedWorkload(new FlowSpace(sc), sessions, 7);
  const io = createCoreBatch(8192, 8192 * 64);
  const setup = wl.setup();
  while (setup.remaining > 0) run(dp, io, load(io, setup, 8192, T0));
  return { dp, wl };
}

export async function runCoreMicro(opts: { time?: number; scenario?: Scenario } = {}): Promise<Bench> {
  const base = opts.scenario ?? loadOpenScenario();
  const time = opts.time ?? 500;
  const bench = new Bench({ time, warmupTime: Math.min(100, time / 2) });
  let sink = 0;

  // Flow table: 64k established sessions; 1024 random orig-tuple keys.
  const { dp, wl } = establishedPlane(base, 65536);
  const keys = new Uint32Array(N * 5);
  const locals = new Int32Array(N);
  const ses = dp.tables.ses;
  for (let k = 0; k < N; k++) {
    const local = wl.order[k] % 65536;
    locals[k] = local;
    const o = dp.tables.rec(local);
    const meta = ses[o + S_META];
    keys[k * 5] = (meta >>> M_SLOT_SHIFT) & M_SLOT_MASK;
    keys[k * 5 + 1] = meta & M_PROTO_MASK;
    keys[k * 5 + 2] = ses[o + S_OSRC];
    keys[k * 5 + 3] = ses[o + S_OSRC + 1];
    keys[k * 5 + 4] = ses[o + S_OSRC + 2];
  }
  void SESSION_WORDS;
  bench.add('flow-table lookup, 64k sessions, random keys ×1024', () => {
    for (let k = 0; k < N; k++) {
      const b = k * 5;
      sink += dp.tables.lookup(keys[b], keys[b + 1], keys[b + 2], keys[b + 3], keys[b + 4]);
    }
  });
  bench.add('flow-table delete + insert of a key, 64k sessions ×1024', () => {
    for (let k = 0; k < N; k++) {
      const l = locals[k];
      dp.tables.removeRef(l, KIND_ORIG);
      dp.tables.insertRef(dp.tables.keyHash(l, KIND_ORIG), l, KIND_ORIG);
      sink += l;
    }
  });

  // Established fast path: 1k sessions, pre-loaded 64-byte frames.
  const small = establishedPlane(base, 1024);
  const ioE = createCoreBatch(N, N * 64);
  load(ioE, small.wl.stream(0), N, T0 + SETUP_DONE_MS);
  run(small.dp, ioE, N);
  if (resultFate(ioE.out.result[0]) !== FATE_DELIVERED) throw new Error('micro: established packet not delivered');
  bench.add('established fast path (checks, lookup, rewrite, copy), 1k sessions ×1024', () => {
    run(small.dp, ioE, N);
  });

  // Session creation with port preservation: 1024 new flows into fresh tables each iteration.
  const scN = benchScenario(base, 4096);
  const fsN = new FlowSpace(scN);
  const ioN = createCoreBatch(N, N * 64);
  {
    let off = 0;
    for (let i = 0; i < N; i++) {
      const at = off;
      off = nextFrameOffset(
        off,
        writeUdp(ioN.batch.arena, off, fsN.insideAddr, fsN.remote(i), fsN.sport(i), fsN.dport(i), FRAME64_IP_LEN),
      );
      ioN.batch.off[i] = at;
      ioN.batch.len[i] = FRAME64_IP_LEN;
      ioN.batch.ingress[i] = fsN.insidePoint;
      ioN.batch.timeUs[i] = T0 * 1000;
    }
  }
  let fresh: Dataplane = new Dataplane(createCoreShared(scN, { workers: 1, seed: 1, capacity: 4096 }), 0);
  bench.add(
    'session creation, source port preserved ×1024',
    () => {
      run(fresh, ioN, N);
    },
    {
      beforeEach: () => {
        fresh = new Dataplane(createCoreShared(scN, { workers: 1, seed: 1, capacity: 4096 }), 0);
      },
    },
  );

  // Port allocation with search: 64 inside hosts all use the same 16 source ports to one server, so
  // for each port one flow keeps it and 63 search (Linux's get_unique_tuple).
  const scP = benchScenario(withExtraHosts(base, 'app', 63), 4096);
  const hosts = scP.instances.map((x, i) => ({ x, i })).filter(({ x }) => x.name === 'app' || /^app\d+$/.test(x.name));
  const fsP = new FlowSpace(scP);
  const ioP = createCoreBatch(N, N * 64);
  {
    let off = 0;
    for (let i = 0; i < N; i++) {
      const h = hosts[i % hosts.length];
      const sport = 40000 + Math.floor(i / hosts.length);
      const at = off;
      off = nextFrameOffset(
        off,
        writeUdp(ioP.batch.arena, off, h.x.privateIp, fsP.remotes[0], sport, 53, FRAME64_IP_LEN),
      );
      ioP.batch.off[i] = at;
      ioP.batch.len[i] = FRAME64_IP_LEN;
      ioP.batch.ingress[i] = instancePoint(h.i);
      ioP.batch.timeUs[i] = T0 * 1000;
    }
  }
  let freshP: Dataplane = new Dataplane(createCoreShared(scP, { workers: 1, seed: 1, capacity: 4096 }), 0);
  bench.add(
    'port allocation: 64 hosts share each source port (63 of 64 search) ×1024',
    () => {
      run(freshP, ioP, N);
    },
    {
      beforeEach: () => {
        freshP = new Dataplane(createCoreShared(scP, { workers: 1, seed: 1, capacity: 4096 }), 0);
      },
    },
  );
  // Check once that the flows were really created (a dropped flow would measure the drop path).
  const probe = new Dataplane(createCoreShared(scP, { workers: 1, seed: 1, capacity: 4096 }), 0);
  run(probe, ioP, N);
  for (let i = 0; i < N; i++)
    if (resultFate(ioP.out.result[i]) !== FATE_DELIVERED)
      throw new Error(`micro: port-search flow ${i} dropped (reason ${resultReason(ioP.out.result[i])})`);

  await bench.run();
  if (sink === 0.5) console.log(sink);
  return bench;
}

/** Packet-layer and core microbenchmarks; `time` ms per task. */
export async function runMicro(opts: { time?: number } = {}): Promise<MicroRow[]> {
  const packet = await runPacketMicro({ time: opts.time });
  const core = await runCoreMicro({ time: opts.time });
  return [...rows(packet, 'packet', 1024), ...rows(core, 'core', N)];
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  const r = await runMicro();
  console.table(
    r.map((x) => ({
      group: x.group,
      name: x.name,
      'ns median': x.nsMedian.toFixed(1),
      'ns min': x.nsMin.toFixed(1),
      'ns max': x.nsMax.toFixed(1),
    })),
  );
}
