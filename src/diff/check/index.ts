// `natlab check`: reachability computed by the model on representative packets, and lint
// warnings (docs/import.md).
export {
  computeReachability,
  type Reachability,
  type SubnetReach,
  type EipReach,
  type InstanceReach,
  type ProbeResult,
} from './reachability.ts';
export { lintScenario, type Lint } from './lint.ts';
export { formatCheckReport, type CheckReport } from './report.ts';
export { EGRESS_PROBES, INGRESS_PROBES } from './probes.ts';

import type { Scenario } from '../../spec/scenario.ts';
import { computeReachability } from './reachability.ts';
import { lintScenario } from './lint.ts';
import type { CheckReport } from './report.ts';

export function checkScenario(s: Scenario): CheckReport {
  const reach = computeReachability(s);
  const lints = lintScenario(s);
  for (const e of reach.elasticIps)
    for (const r of e.results)
      if (r.asymmetric)
        lints.push({ kind: 'asymmetric', message: `${e.elasticIp} (${e.instance}) ${r.probe}: ${r.asymmetric}` });
  return { reach, lints, failing: reach.subnets.filter((x) => x.failing).map((x) => x.subnet) };
}
