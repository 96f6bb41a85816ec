// The engines natlab can compare, in one static table of their public descriptors (each engine
// module exports its own: factory and traits). This table is the only place in diff/ and cli/
// that names every engine; everything else asks a descriptor or an Engine what it needs.

import { coreEngineDescriptor } from '../core/engine.ts';
import { modelEngineDescriptor } from '../model/index.ts';
import { kernelEngineDescriptor } from '../oracle/index.ts';
import type { Engine, EngineAvailability, EngineDescriptor, EngineOptions } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';

export type EngineName = 'model' | 'core' | 'kernel';

const ENGINES: Readonly<Record<EngineName, EngineDescriptor>> = {
  model: modelEngineDescriptor,
  core: coreEngineDescriptor,
  kernel: kernelEngineDescriptor,
};

export const ENGINE_NAMES: readonly EngineName[] = Object.keys(ENGINES) as EngineName[];

/** The engines a comparison uses when none are named: those that need nothing of the machine. */
export const DEFAULT_ENGINES: readonly EngineName[] = ['model', 'core'];

export interface MakeEngineOptions extends EngineOptions {
  /** Engine-specific factory options (e.g. core `batchSize`, kernel `timeMode`). */
  extra?: Record<string, unknown>;
}

export function engineDescriptor(name: EngineName): EngineDescriptor {
  return ENGINES[name];
}

/** The descriptor of an engine named `name`, or undefined (engines built by tests have none). */
export function findEngine(name: string): EngineDescriptor | undefined {
  return Object.hasOwn(ENGINES, name) ? ENGINES[name as EngineName] : undefined;
}

export function parseEngineName(s: string): EngineName {
  if (Object.hasOwn(ENGINES, s)) return s as EngineName;
  throw new Error(`unknown engine '${s}' (expected one of ${ENGINE_NAMES.join(', ')})`);
}

/** Whether the engine can run on this machine; `missing` says what is not there. */
export async function engineAvailability(name: EngineName): Promise<EngineAvailability> {
  const d = ENGINES[name];
  return d.available ? await d.available() : { ok: true, missing: '' };
}

/** Why engine `name` cannot judge `scenario` (one line), or null. */
export function engineUnsupported(name: EngineName, scenario: Scenario): string | null {
  return ENGINES[name].unsupported?.(scenario) ?? null;
}

/** True if the engine can run here. */
export async function engineAvailable(name: EngineName): Promise<boolean> {
  return (await engineAvailability(name)).ok;
}

export async function makeEngine(name: EngineName, scenario: Scenario, opts: MakeEngineOptions = {}): Promise<Engine> {
  const o: EngineOptions & Record<string, unknown> = { ...(opts.extra ?? {}) };
  if (opts.seed !== undefined) o.seed = opts.seed;
  if (opts.workers !== undefined) o.workers = opts.workers;
  if (opts.layout !== undefined) o.layout = opts.layout;
  return await ENGINES[name].create(scenario, o);
}
