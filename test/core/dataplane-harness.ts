// Test harness for the single-threaded Dataplane (test/core/dataplane*.test.ts): one packet per
// call through a real BatchIO, results decoded into the Engine contract's shape.

import type { Scenario } from '../../src/spec/scenario.ts';
import type { PacketResult } from '../../src/spec/engine.ts';
import { createBatchIO, createCoreShared, type BatchIO, type CoreShared } from '../../src/core/layout.ts';
import { Dataplane } from '../../src/core/dataplane.ts';
import { dumpConntrack } from '../../src/core/ct-dump.ts';
import { dispatchWorker } from '../../src/core/dispatch.ts';

export class Harness {
  readonly shared: CoreShared;
  readonly dps: Dataplane[];
  readonly io: BatchIO;
  readonly idx = new Int32Array(1);
  nowMs = 0;

  constructor(readonly scenario: Scenario, opts: { workers?: number; seed?: number; capacity?: number } = {}) {
    this.shared = createCoreShared(scenario, { workers: opts.workers ?? 1, seed: opts.seed ?? 1, capacity: opts.capacity });
    this.dps = [];
    for (let w = 0; w < this.shared.workers; w++) this.dps.push(new Dataplane(this.shared, w));
    this.io = createBatchIO(1, 70000, this.shared.workers);
  }

  /** The worker the dispatcher picks for this frame. */
  owner(frame: Uint8Array, ingress: number): number {
    return dispatchWorker(this.shared.compiled, this.shared.workers, frame, 0, frame.length, ingress);
  }

  send(frame: Uint8Array, ingress: number, timeMs = this.nowMs, worker?: number): PacketResult {
    this.nowMs = timeMs;
    const io = this.io;
    io.inArena.set(frame, 0);
    io.inOff[0] = 0;
    io.inLen[0] = frame.length;
    io.ingress[0] = ingress;
    io.timeMs[0] = timeMs;
    io.fate[0] = 0xff;
    const w = worker ?? this.owner(frame, ingress);
    this.dps[w].processBatch(io, this.idx, 0, 1);
    const outputs = [];
    for (let k = 0; k < io.outCount[0]; k++) {
      const s = io.outFirst[0] + k;
      outputs.push({ egress: io.outEgress[s], frame: io.outArena.slice(io.outOff[s], io.outOff[s] + io.outLen[s]) });
    }
    return { fate: io.fate[0], reason: io.reason[0], detail: io.detail[0], ct: io.ct[0], outputs };
  }

  conntrack(nowMs = this.nowMs) {
    return dumpConntrack(this.shared, nowMs);
  }

  get fast(): number {
    return this.dps.reduce((a, d) => a + d.fastCount, 0);
  }
}
