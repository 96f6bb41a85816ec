// The replay loop's view of a scenario timeline: its events as ReplayEvents (the loop's mid-stream
// event hook, ReplayOptions.events: everything before an event's time handed over to the engine,
// then the event applied), their capture times (fixed by the capture's first record: `at:` counts
// from it), and the failover report's collector.

import { InputError } from '../../spec/errors.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { eventTimeUs } from '../../spec/timeline.ts';
import { FailoverCollector } from './failover.ts';
import type { Engine } from '../../spec/engine.ts';

/** ReplayOptions.events' element (replay.ts ReplayEvent), structurally. */
export interface TimelineReplayEvent {
  timeUs: number;
  apply(engine: Engine, name: string): Promise<void>;
}

export class ReplayTimeline {
  /** Whether the scenario has a timeline at all. */
  readonly active: boolean;
  /** The failover report's collector (null without a timeline). */
  readonly collector: FailoverCollector | null;
  private times: number[] | null = null;

  constructor(
    private readonly scenario: Scenario,
    engines: readonly string[],
  ) {
    const events = scenario.timeline ?? [];
    this.active = events.length > 0;
    this.collector = this.active ? new FailoverCollector(events, engines) : null;
  }

  /**
   * The events as the loop's ReplayEvents, their times fixed from the capture's first record
   * (call once, when it is known); none without a timeline.
   */
  begin(firstRecordUs: number): TimelineReplayEvent[] {
    if (!this.active || this.times !== null) return [];
    const events = this.scenario.timeline ?? [];
    const times = events.map((e) => eventTimeUs(e, firstRecordUs));
    this.times = times;
    this.collector?.start(firstRecordUs, times);
    return events.map((e, k) => ({
      timeUs: times[k],
      apply: async (engine, name) => {
        if (!engine.applyTimelineEvent)
          throw new InputError(`engine ${name} cannot apply scenario timeline events (${e.text})`);
        await engine.applyTimelineEvent(e, times[k]);
      },
    }));
  }

  /** Whether an event lies in (fromUs, toUs]: a public mapping learned before it may have changed. */
  crossesEvent(fromUs: number, toUs: number): boolean {
    return this.times?.some((t) => t > fromUs && t <= toUs) ?? false;
  }
}
