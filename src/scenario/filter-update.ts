// Mid-run changes of security-group rules and network-ACL entries (docs/semantics.md §11
// "Changing rules mid-run"): what may change (the rules and entries) and what may not (the
// groups, their ENIs, tracking settings, the ACLs and their subnets). Engines call
// filterUpdateProblem before applying a change (Engine.setFilterRules). Cold path.

import type { Scenario } from '../spec/scenario.ts';

/** Why `next` cannot replace `prev`'s security-group rules and ACL entries mid-run, or null. */
export function filterUpdateProblem(prev: Scenario, next: Scenario): string | null {
  const pg = prev.securityGroups ?? [];
  const ng = next.securityGroups ?? [];
  if (pg.length !== ng.length || pg.some((g, k) => g.name !== ng[k].name))
    return `the security groups themselves (${pg.map((g) => g.name).join(', ') || 'none'}) cannot change mid-run, only their rules`;
  if (
    prev.instances.length !== next.instances.length ||
    prev.instances.some(
      (i, k) =>
        i.name !== next.instances[k].name ||
        JSON.stringify(i.security ?? null) !== JSON.stringify(next.instances[k].security ?? null),
    )
  )
    return "the instances, their ENIs' security groups and tracking settings cannot change mid-run";
  const pa = prev.networkAcls ?? [];
  const na = next.networkAcls ?? [];
  if (
    pa.length !== na.length ||
    pa.some((a, k) => a.name !== na[k].name || a.subnets.join(',') !== na[k].subnets.join(','))
  )
    return 'the network ACLs and their subnets cannot change mid-run, only their entries';
  return null;
}
