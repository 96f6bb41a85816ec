// The core engine's zero-copy hand-over (docs/frame-batch.md): processFrames over the caller's
// FrameBatch gives what process() gives, never writes the input, and refuses bad batches before
// running any of it; and any 64-bit capture time works (issue 20: the core refused a capture whose
// clock jumps more than 2^31 ms): model and core agree across jumps of more than 25 days.
import { afterAll, describe, expect, it } from 'vitest';
import { buildTcp, buildUdp } from '../../src/packet/build.ts';
import { F_ACK, F_SYN } from '../../src/packet/constants.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import type { Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { InputError } from '../../src/spec/errors.ts';
import { FATE_DELIVERED } from '../../src/spec/reasons.ts';
import {
  type BatchOutput,
  type FrameBatch,
  FRAME_ALIGN,
  OUT_SLOTS,
  createBatchOutput,
  createFrameBatch,
  resultCt,
  resultDetail,
  resultFate,
  resultOutCount,
  resultReason,
} from '../../src/spec/frame-batch.ts';
import { compareRuns } from '../../src/diff/compare/compare.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { type CoreEngine, createCoreEngine } from '../../src/core/engine.ts';
import { APP_IP, HOST, NAT_EIP, mixedTraffic, point, snapshot } from './engine-traffic.ts';

const S = loadOpenScenario();
const APP = point(S, 'app');
const engines: CoreEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close();
});

/** Writes inputs [from, to) into `b` (aligned offsets). */
function load(b: FrameBatch, inputs: readonly InputPacket[], from: number, to: number): void {
  let off = 0;
  for (let i = from; i < to; i++) {
    const p = inputs[i];
    b.arena.set(p.frame, off);
    b.off[i - from] = off;
    b.len[i - from] = p.frame.length;
    b.ingress[i - from] = p.ingress;
    b.timeUs[i - from] = p.timeUs;
    off = (off + p.frame.length + FRAME_ALIGN - 1) & ~(FRAME_ALIGN - 1);
  }
  b.count = to - from;
}

function decode(out: BatchOutput, n: number): PacketResult[] {
  const r: PacketResult[] = [];
  for (let i = 0; i < n; i++) {
    const w = out.result[i];
    const outputs = [];
    for (let k = 0; k < resultOutCount(w); k++) {
      const s = i * OUT_SLOTS + k;
      outputs.push({
        egress: out.outEgress[s],
        frame: out.outArena.slice(out.outOff[s], out.outOff[s] + out.outLen[s]),
      });
    }
    r.push({ fate: resultFate(w), reason: resultReason(w), detail: resultDetail(w), ct: resultCt(w), outputs });
  }
  return r;
}

/** All inputs through processFrames, two batches alternating (both in flight at once). */
async function viaFrames(e: Engine, inputs: readonly InputPacket[], per: number): Promise<PacketResult[]> {
  const pairs = [0, 1].map(() => ({ b: createFrameBatch(per, per * 128), o: createBatchOutput(per, per * 128) }));
  const results: PacketResult[] = [];
  const inflight: { p: Promise<void>; k: number; n: number; arena: Uint8Array }[] = [];
  let k = 0;
  for (let at = 0; at < inputs.length || inflight.length > 0; ) {
    if (at < inputs.length && inflight.length < 2) {
      const { b, o } = pairs[k];
      const n = Math.min(per, inputs.length - at);
      load(b, inputs, at, at + n);
      inflight.push({ p: e.processFrames!(b, o), k, n, arena: b.arena.slice() });
      at += n;
      k ^= 1;
      continue;
    }
    const f = inflight.shift()!;
    await f.p;
    expect(pairs[f.k].b.arena).toEqual(f.arena); // engines never write the input
    results.push(...decode(pairs[f.k].o, f.n));
  }
  return results;
}

describe('core engine: processFrames (zero-copy frame batches)', () => {
  it('gives what process() gives, inline and with 2 workers, two batches in flight', async () => {
    const inputs = mixedTraffic(S, 300, 5);
    const frames = snapshot(inputs);
    const ref = createCoreEngine(S, { inline: true, seed: 2 });
    engines.push(ref);
    const want = await ref.process(inputs);
    for (const opts of [{ inline: true }, { workers: 2 }]) {
      const e = createCoreEngine(S, { ...opts, seed: 2 });
      engines.push(e);
      const got = await viaFrames(e, inputs, 97);
      const cmp = compareRuns(
        inputs,
        { engine: 'process', results: want },
        { engine: 'frames', results: got },
        { scenario: S },
      );
      expect(cmp.differences.slice(0, 3)).toEqual([]);
      if (opts.inline) expect(got).toEqual(want); // same partition, same seed: byte-identical
    }
    expect(inputs.map((p) => p.frame)).toEqual(frames);
  });

  it('refuses a bad batch with InputError before running any of it', async () => {
    const e = createCoreEngine(S, { inline: true });
    engines.push(e);
    const b = createFrameBatch(4, 4096);
    const o = createBatchOutput(4, 4096);
    const f = buildUdp({ src: APP_IP, dst: HOST, sport: 42000, dport: 53 });
    load(
      b,
      [
        { timeUs: 5, ingress: APP, frame: f },
        { timeUs: 6, ingress: APP, frame: f },
      ],
      0,
      2,
    );
    b.off[1] = 4; // not aligned
    await expect(e.processFrames(b, o)).rejects.toThrow(/aligned/);
    load(
      b,
      [
        { timeUs: 5, ingress: APP, frame: f },
        { timeUs: 4, ingress: APP, frame: f },
      ],
      0,
      2,
    );
    await expect(e.processFrames(b, o)).rejects.toThrow(/time went backwards/);
    load(b, [{ timeUs: 5, ingress: 42, frame: f }], 0, 1);
    await expect(e.processFrames(b, o)).rejects.toThrow(InputError);
    await expect(e.processFrames(b, createBatchOutput(0, 16))).rejects.toThrow(/output too small/);
    expect(await e.conntrack()).toEqual([]);
  });
});

describe('core engine: any 64-bit capture time (issue 20)', () => {
  it('agrees with the model across clock jumps of more than 25 days, with a connection alive across them', async () => {
    const DAY_US = 86_400_000_000;
    const t0 = 1_733_300_000_000_000; // December 2024 in µs since the epoch (> 2^50)
    const inputs: InputPacket[] = [];
    let t = t0;
    const tcp = (flags: number, seq: number, ack: number, from: 'app' | 'net'): InputPacket =>
      from === 'app'
        ? {
            timeUs: t,
            ingress: APP,
            frame: buildTcp({ src: APP_IP, dst: HOST, sport: 43000, dport: 443, flags, seq, ack }),
          }
        : {
            timeUs: t,
            ingress: POINT_INTERNET,
            frame: buildTcp({ src: HOST, dst: NAT_EIP, sport: 443, dport: 43000, flags, seq, ack }),
          };
    const udp = (sport: number, back: boolean): InputPacket =>
      back
        ? { timeUs: t, ingress: POINT_INTERNET, frame: buildUdp({ src: HOST, dst: NAT_EIP, sport: 53, dport: sport }) }
        : { timeUs: t, ingress: APP, frame: buildUdp({ src: APP_IP, dst: HOST, sport, dport: 53 }) };
    // A TCP connection, established and kept alive every 4 days (ESTABLISHED: 5 days) for 60 days.
    inputs.push(tcp(F_SYN, 100, 0, 'app'));
    t += 1000;
    inputs.push(tcp(F_SYN | F_ACK, 900, 101, 'net'));
    t += 1000;
    inputs.push(tcp(F_ACK, 101, 901, 'app'));
    for (let d = 0; d < 15; d++) {
      t += 4 * DAY_US;
      inputs.push(tcp(F_ACK, 101, 901, d & 1 ? 'net' : 'app'));
      inputs.push(udp(50000 + d, false));
      t += 500_000;
      inputs.push(udp(50000 + d, true));
    }
    // Then a jump of 30 days: everything expired; the TCP ACK is picked up loosely again.
    t += 30 * DAY_US;
    inputs.push(tcp(F_ACK, 101, 901, 'app'));
    inputs.push(udp(50000, true)); // its entry is long gone: not translated
    inputs.push(udp(50000, false));
    // And one of 400 days, then traffic 1 ms apart.
    t += 400 * DAY_US;
    for (let k = 0; k < 20; k++) {
      t += 1000;
      inputs.push(udp(51000 + (k % 5), (k & 1) === 1));
    }
    const model = createModelEngine(S, { seed: 1 });
    const runs = [];
    try {
      runs.push({ engine: 'model', results: await model.process(inputs), conntrack: await model.conntrack() });
    } finally {
      await model.close();
    }
    // Both table layouts: the 'line' layout's entries carry expiry copies the rebases shift too.
    for (const opts of [
      { inline: true },
      { workers: 2 },
      { inline: true, layout: 'line' },
      { workers: 2, layout: 'line' },
    ]) {
      const e = createCoreEngine(S, { ...opts, seed: 1 });
      engines.push(e);
      const results = await e.process(inputs);
      runs.push({ engine: `core ${JSON.stringify(opts)}`, results, conntrack: await e.conntrack() });
    }
    for (const r of runs.slice(1)) {
      const cmp = compareRuns(inputs, runs[0], r, { scenario: S });
      expect(cmp.differences.slice(0, 3)).toEqual([]);
    }
    // The keep-alives crossed the rebases on the fast path and stayed delivered.
    expect(runs[1].results.slice(0, 3 + 45).every((r) => r.fate === FATE_DELIVERED)).toBe(true);
    expect(runs[1].conntrack!.length).toBeGreaterThan(0);
  });
});
