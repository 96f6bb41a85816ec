// Engine construction by name, through each engine's public factory only (diff never reaches
// into an engine's internals). Modules are imported lazily so the kernel oracle (and its
// prerequisites) is loaded only when asked for.

import type { Engine, EngineOptions } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';

export type EngineName = 'model' | 'core' | 'kernel';
export const ENGINE_NAMES: readonly EngineName[] = ['model', 'core', 'kernel'];

export interface MakeEngineOptions extends EngineOptions {
  /** Extra factory options passed through (e.g. core `batchSize`, kernel settings). */
  extra?: Record<string, unknown>;
}

type Factory = (scenario: Scenario, opts: Record<string, unknown>) => Engine | Promise<Engine>;

// Public factory locations, tried in order (the first module that exports the factory wins).
const FACTORIES: Record<EngineName, { modules: string[]; fn: string }> = {
  model: { modules: ['../model/engine.ts', '../model/index.ts'], fn: 'createModelEngine' },
  core: { modules: ['../core/engine.ts', '../core/index.ts'], fn: 'createCoreEngine' },
  kernel: { modules: ['../oracle/index.ts', '../oracle/engine.ts', '../oracle/kernel-engine.ts'], fn: 'createKernelEngine' },
};

async function loadFactory(name: EngineName): Promise<Factory> {
  const spec = FACTORIES[name];
  const errors: string[] = [];
  for (const m of spec.modules) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(/* @vite-ignore */ new URL(m, import.meta.url).href)) as Record<string, unknown>;
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      // A missing module is expected (try the next); a module that fails to load is a real error.
      if (/Cannot find module|ERR_MODULE_NOT_FOUND|Failed to load url|does not exist/i.test(msg) && msg.includes(m.split('/').pop()!)) {
        errors.push(`${m}: not found`);
        continue;
      }
      throw e;
    }
    const f = mod[spec.fn];
    if (typeof f === 'function') return f as Factory;
    errors.push(`${m}: no export ${spec.fn}`);
  }
  throw new Error(`engine '${name}' is not available (${errors.join('; ')})`);
}

/** True if the engine's factory can be loaded (it exists in this build). */
export async function engineAvailable(name: EngineName): Promise<boolean> {
  try {
    await loadFactory(name);
    return true;
  } catch {
    return false;
  }
}

export function parseEngineName(s: string): EngineName {
  if ((ENGINE_NAMES as readonly string[]).includes(s)) return s as EngineName;
  throw new Error(`unknown engine '${s}' (expected one of ${ENGINE_NAMES.join(', ')})`);
}

export async function makeEngine(name: EngineName, scenario: Scenario, opts: MakeEngineOptions = {}): Promise<Engine> {
  const factory = await loadFactory(name);
  const o: Record<string, unknown> = { ...(opts.extra ?? {}) };
  if (opts.seed !== undefined) o.seed = opts.seed;
  if (opts.workers !== undefined) o.workers = opts.workers;
  return await factory(scenario, o);
}
