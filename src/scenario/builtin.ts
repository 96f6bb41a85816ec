// The built-in scenario (scenarios/vpc-nat-instance.yaml: the NAT instance with AWS's recommended
// NATSG security group), its unfiltered twin (scenarios/vpc-nat-instance-open.yaml: the same VPC
// with no security group, for traffic that means "the NAT box alone": DNS, ping, ICMP errors, the
// benchmarks' workloads) and the path resolution every command uses for its --scenario option.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Scenario } from '../spec/scenario.ts';
import { loadScenario } from './load.ts';

/** The project's scenarios/ directory. */
export const SCENARIOS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scenarios');
export const BUILTIN_SCENARIO_NAME = 'vpc-nat-instance';
export const BUILTIN_SCENARIO_PATH = join(SCENARIOS_DIR, `${BUILTIN_SCENARIO_NAME}.yaml`);
/** The built-in without any filtering (no security groups, default network ACLs). */
export const OPEN_SCENARIO_NAME = 'vpc-nat-instance-open';
export const OPEN_SCENARIO_PATH = join(SCENARIOS_DIR, `${OPEN_SCENARIO_NAME}.yaml`);

/**
 * The scenario file a command should load: the argument when given (a path, or the bare name of
 * a file in scenarios/, e.g. `vpc-nat-instance`), else the built-in scenario.
 */
export function resolveScenarioPath(arg?: string | null): string {
  if (arg === undefined || arg === null || arg === '') return BUILTIN_SCENARIO_PATH;
  if (!existsSync(arg) && /^[A-Za-z0-9_.-]+$/.test(arg) && !/\.(ya?ml|json)$/i.test(arg)) {
    for (const ext of ['.yaml', '.yml', '.json']) {
      const p = join(SCENARIOS_DIR, arg + ext);
      if (existsSync(p)) return p;
    }
  }
  return arg;
}

let cached: Scenario | null = null;
let cachedOpen: Scenario | null = null;

/** Loads (once) and returns a fresh deep copy of the built-in scenario, so callers may mutate it. */
export function loadBuiltinScenario(): Scenario {
  if (!cached) cached = loadScenario(BUILTIN_SCENARIO_PATH);
  return structuredClone(cached);
}

/** The same for scenarios/vpc-nat-instance-open.yaml (the built-in without security groups). */
export function loadOpenScenario(): Scenario {
  if (!cachedOpen) cachedOpen = loadScenario(OPEN_SCENARIO_PATH);
  return structuredClone(cachedOpen);
}
