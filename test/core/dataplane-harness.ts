// Test harness for the single-threaded Dataplane (test/core/dataplane*.test.ts): one packet per
// call through a real BatchIO, results decoded into the Engine contract's shape.

import type { Scenario } from '../../src/spec/scenario.ts';
import type { PacketResult } from '../../src/spec/engine.ts';
import {
  createCoreBatch,
  createCoreShared,
  type CoreBatch,
  type CoreLayout,
  type CoreShared,
} from '../../src/core/layout.ts';
import {
  OUT_SLOTS,
  resultCt,
  resultDetail,
  resultFate,
  resultOutCount,
  resultReason,
} from '../../src/spec/frame-batch.ts';
import { Dataplane } from '../../src/core/dataplane.ts';
import { dumpConntrack } from '../../src/core/ct-dump.ts';
import { dispatchWorker } from '../../src/core/dispatch.ts';

export class Harness {
  readonly shared: CoreShared;
  readonly dps: Dataplane[];
  readonly io: CoreBatch;
  nowMs = 0;

  constructor(
    readonly scenario: Scenario,
    opts: { workers?: number; seed?: number; capacity?: number; layout?: CoreLayout } = {},
  ) {
    this.shared = createCoreShared(scenario, {
      workers: opts.workers ?? 1,
      seed: opts.seed ?? 1,
      capacity: opts.capacity,
      layout: opts.layout,
    });
    this.dps = [];
    for (let w = 0; w < this.shared.workers; w++) this.dps.push(new Dataplane(this.shared, w));
    this.io = createCoreBatch(1, 70000);
  }

  /** The worker the dispatcher picks for this frame. */
  owner(frame: Uint8Array, ingress: number): number {
    return dispatchWorker(this.shared.compiled, this.shared.workers, frame, 0, frame.length, ingress);
  }

  send(frame: Uint8Array, ingress: number, timeMs = this.nowMs, worker?: number): PacketResult {
    this.nowMs = timeMs;
    const { batch, out, idx } = this.io;
    batch.arena.set(frame, 0);
    batch.off[0] = 0;
    batch.len[0] = frame.length;
    batch.ingress[0] = ingress;
    batch.timeUs[0] = timeMs * 1000;
    batch.count = 1;
    out.result[0] = 0xffffffff;
    const w = worker ?? this.owner(frame, ingress);
    this.dps[w].processBatch(batch, out, idx, 0, 1);
    const word = out.result[0];
    const outputs = [];
    for (let k = 0; k < resultOutCount(word); k++) {
      const s = k + 0 * OUT_SLOTS;
      outputs.push({
        egress: out.outEgress[s],
        frame: out.outArena.slice(out.outOff[s], out.outOff[s] + out.outLen[s]),
      });
    }
    return {
      fate: resultFate(word),
      reason: resultReason(word),
      detail: resultDetail(word),
      ct: resultCt(word),
      outputs,
    };
  }

  conntrack(nowMs = this.nowMs) {
    return dumpConntrack(this.shared, nowMs);
  }

  get fast(): number {
    return this.dps.reduce((a, d) => a + d.fastCount, 0);
  }
}
