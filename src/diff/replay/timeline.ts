// The replay loop's view of a scenario timeline: one TimelineCursor per engine (src/diff/timeline.ts)
// and the failover report's collector. `handOver` is the one call the loop makes per hand-over: the
// range [from, end) of an engine's batch is handed over in pieces cut at the event times, each
// event applied to that engine in between (the batch before an event is through the engine before
// the event, the rest after it).

import type { Engine } from '../../spec/engine.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { TimelineCursor } from '../timeline.ts';
import { FailoverCollector } from './failover.ts';

export class ReplayTimeline {
  /** Whether the scenario has a timeline at all (else the loop hands over as before). */
  readonly active: boolean;
  /** The failover report's collector (null without a timeline). */
  readonly collector: FailoverCollector | null;
  private readonly cursors = new Map<string, TimelineCursor>();
  private started = false;

  constructor(scenario: Scenario, engines: readonly string[]) {
    const events = scenario.timeline ?? [];
    this.active = events.length > 0;
    this.collector = this.active ? new FailoverCollector(events, engines) : null;
    for (const e of engines) this.cursors.set(e, new TimelineCursor(scenario));
  }

  /** The capture's first record time fixes the event times (relative `at:`); later calls do nothing. */
  begin(firstRecordUs: number): void {
    if (!this.active || this.started) return;
    this.started = true;
    let times: readonly number[] = [];
    for (const c of this.cursors.values()) {
      c.start(firstRecordUs);
      times = c.eventTimes ?? [];
    }
    this.collector?.start(firstRecordUs, times);
  }

  /** Hands [from, end) of an engine's batch over through `run`, applying due events between pieces. */
  async handOver(
    name: string,
    engine: Engine,
    timeUs: ArrayLike<number>,
    from: number,
    end: number,
    run: (a: number, b: number) => Promise<void>,
  ): Promise<void> {
    const cur = this.cursors.get(name)!;
    let a = from;
    for (let j = from; j < end; j++) {
      if (!cur.due(timeUs[j])) continue;
      if (j > a) await run(a, j);
      a = j;
      await cur.applyDue(engine, name, timeUs[j]);
    }
    if (end > a) await run(a, end);
  }

  /** Whether an event lies in (fromUs, toUs]: a public mapping learned before it may have changed. */
  crossesEvent(fromUs: number, toUs: number): boolean {
    if (!this.active || !this.started) return false;
    for (const c of this.cursors.values()) return (c.eventTimes ?? []).some((t) => t > fromUs && t <= toUs);
    return false;
  }

  /** A note for events after the last packet (not applied: nothing met them), or null. */
  notApplied(): string | null {
    if (!this.active) return null;
    let left = 0;
    for (const c of this.cursors.values()) left = Math.max(left, c.length - c.next);
    return left > 0 ? `timeline: ${left} event(s) after the last packet not applied (no packet met them)` : null;
  }
}
