// Public API of src/scenario/: load and validate scenario files, the built-in scenario, the
// iptables-save nat table parser, serialisation back to YAML, capture-replay scenarios.
export { loadScenario, parseScenario, compileScenarioObject, defaultSysctls, defaultConntrack } from './load.ts';
export {
  BUILTIN_SCENARIO_PATH,
  BUILTIN_SCENARIO_NAME,
  OPEN_SCENARIO_PATH,
  OPEN_SCENARIO_NAME,
  SCENARIOS_DIR,
  loadBuiltinScenario,
  loadOpenScenario,
  resolveScenarioPath,
} from './builtin.ts';
export {
  parseNatTable,
  formatNatRule,
  formatNatTable,
  formatTarget,
  buildNatTable,
  configurePatTable,
  protoName,
} from './iptables.ts';
export { ScenarioError, type ErrorItem } from './error-list.ts';
export { scenarioToYaml, scenarioToObject } from './to-yaml.ts';
export { buildCaptureScenario, type CaptureScenarioOptions } from './capture.ts';
export { describeScenario, formatRoute, scenarioWarnings } from './describe.ts';
