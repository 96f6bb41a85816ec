// Scenario timelines in the runners (replay, fuzz, the model-vs-kernel cases): the input is split
// at event times — the packets before an event are handed to the engine, then the event is applied
// (Engine.applyTimelineEvent), then the rest. An event at time T comes before every packet stamped
// T or later. One cursor per engine run; the runners' loops ask it where to cut.

import { InputError } from '../spec/errors.ts';
import type { Engine, InputPacket, PacketResult } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import { type TimelineEvent, eventTimeUs } from '../spec/timeline.ts';

/** Where one engine run stands in a scenario's timeline. */
export class TimelineCursor {
  private readonly events: readonly TimelineEvent[];
  /** Capture time (µs) of each event; resolved at the first packet (relative `at:`). */
  private times: number[] | null = null;
  /** Index of the next event to apply. */
  next = 0;

  constructor(scenario: Scenario) {
    this.events = scenario.timeline ?? [];
  }

  get length(): number {
    return this.events.length;
  }

  /** The events' capture times, once the first packet's time is known (null before). */
  get eventTimes(): readonly number[] | null {
    return this.times;
  }

  get all(): readonly TimelineEvent[] {
    return this.events;
  }

  /** Fixes the event times from the first packet's time (call once, with the run's first packet). */
  start(firstPacketUs: number): void {
    if (this.times !== null) return;
    this.times = this.events.map((e) => eventTimeUs(e, firstPacketUs));
  }

  /** Whether an event is due before a packet stamped timeUs (start() must have been called). */
  due(timeUs: number): boolean {
    return this.times !== null && this.next < this.events.length && this.times[this.next] <= timeUs;
  }

  /**
   * Applies every event due before a packet stamped timeUs (Infinity: all that are left) to the
   * engine, each at its own time; `onEvent` hears each one applied.
   */
  async applyDue(
    engine: Engine,
    engineName: string,
    timeUs: number,
    onEvent?: (e: TimelineEvent, atUs: number, index: number) => void,
  ): Promise<void> {
    if (this.times === null) return;
    while (this.next < this.events.length && this.times[this.next] <= timeUs) {
      const e = this.events[this.next];
      const at = this.times[this.next];
      if (!engine.applyTimelineEvent)
        throw new InputError(`engine ${engineName} cannot apply scenario timeline events (${e.text})`);
      await engine.applyTimelineEvent(e, at);
      onEvent?.(e, at, this.next);
      this.next++;
    }
  }
}

/**
 * process() with a scenario's timeline: `inputs` handed over in runs split at the event times
 * (events after the last input are not applied — call cursor.applyDue(engine, name, Infinity)).
 */
export async function processWithTimeline(
  engine: Engine,
  engineName: string,
  inputs: readonly InputPacket[],
  cursor: TimelineCursor,
): Promise<PacketResult[]> {
  if (cursor.length === 0 || inputs.length === 0) return engine.process(inputs);
  cursor.start(inputs[0].timeUs);
  const out: PacketResult[] = [];
  let from = 0;
  for (let k = 0; k <= inputs.length; k++) {
    if (k < inputs.length && !cursor.due(inputs[k].timeUs)) continue;
    if (k > from) out.push(...(await engine.process(inputs.slice(from, k))));
    from = k;
    if (k < inputs.length) await cursor.applyDue(engine, engineName, inputs[k].timeUs);
  }
  return out;
}
