// Public API of the conformance check (`natlab conformance`).
export {
  runConformance,
  engineMaker,
  type ConformanceReport,
  type ConformanceOptions,
  type Classification,
  type Row,
  type ShadowRow,
} from './run.ts';
export { formatConformanceText, conformanceJson } from './format.ts';
export { REQUIREMENTS, type Requirement, type Level } from './requirements.ts';
export { PROBES, type Verdict, type Judgement, type Probe } from './probes.ts';
export { findTopology, ProbeContext, type Topology, type EngineMaker } from './kit.ts';
export { shadowTargets, probeShadow, type ShadowResult, type ShadowTarget } from './shadow.ts';
