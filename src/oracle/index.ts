// The Linux kernel oracle: the scenario built in network namespaces, packets through real netfilter.
export {
  KernelEngine,
  createKernelEngine,
  kernelEngineDescriptor,
  runKernel,
  KernelUnavailableError,
  KERNEL_NORMALISATION_NOTE,
  kernelOutputNormaliser,
  type KernelEngineOptions,
  type KernelOutputFrame,
  type KernelPacketResult,
  type KernelRun,
  type KernelTimeMode,
  type KernelInjection,
} from './engine.ts';
export { checkKernelPrerequisites, describeMissing, type PrerequisiteReport, type Prerequisite } from './prereq.ts';
export { cleanupLeftovers, listNatlabNetns } from './cleanup.ts';
export { planTopology, type TopologyPlan, type NetnsSpec } from './topology.ts';
export { igwMapOf, igwTranslate, type IgwMap, type IgwResult } from './igw.ts';
export { parseConntrackLine, parseConntrackList, parseIptablesCounters, sortConntrack } from './parse.ts';
export { NETNS_RE, NETNS_PREFIX } from './names.ts';
export { measureKernelSpeed, speedWorkload, type KernelSpeed } from './speed.ts';
export {
  classifyKernelDifference,
  KERNEL_DIFFERENCE_RULES,
  CLASS_KERNEL_LAGGED,
  timeoutToleranceS,
  type DifferenceRule,
  type KernelRunFacts,
} from './differences.ts';
