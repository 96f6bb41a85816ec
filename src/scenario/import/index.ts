// Import of real configurations (AWS CLI JSON, Terraform state, the NAT instance's iptables/nft
// and sysctl files) into a scenario. docs/import.md describes the inputs and what is skipped.
export { readImportInputs, type ImportInputs } from './read.ts';
export { buildScenario, formatSkipped, DEFAULT_INTERNET, type BuildOptions, type ImportResult } from './build.ts';
export type { Inventory, Skipped } from './inventory.ts';

import { readImportInputs } from './read.ts';
import { buildScenario, type BuildOptions, type ImportResult } from './build.ts';

/** Reads the inputs and builds the scenario (the whole of `natlab scenario import`). */
export function importScenario(
  paths: string[],
  hostFiles: Array<{ instance: string; path: string }>,
  opts: BuildOptions = {},
): ImportResult {
  const { inv, hosts } = readImportInputs(paths, hostFiles);
  return buildScenario(inv, hosts, opts);
}
