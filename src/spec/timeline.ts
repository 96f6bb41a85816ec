// Scenario timelines (docs/scenarios.md "Timeline", docs/semantics.md §14): changes to the VPC at
// capture times — an instance stopped or started, a route's target replaced (alterNAT's Lambda,
// nat_monitor.sh), an ENI or an Elastic IP moved to another instance (fck-nat's HA), security-group
// rules or ACL entries replaced. The loader (src/scenario/timeline.ts) validates the events; this
// file holds their resolved form and the one pure step every engine applies: the scenario as it is
// after an event (`scenarioAfter`) and the instances whose conntrack the event empties.

import type { Scenario, TimelineAction, TimelineEvent } from './scenario.ts';

export type { TimelineAction, TimelineEvent };

/** The event's time on the capture clock (µs), given the first packet's time. */
export function eventTimeUs(e: TimelineEvent, firstPacketUs: number): number {
  return e.absolute ? e.at : firstPacketUs + Math.round(e.at * 1e6);
}

/** Whether instance i is stopped in scenario s (a timeline's stopInstance). */
export function isStopped(s: Scenario, i: number): boolean {
  return s.instances[i]?.stopped === true;
}

/**
 * Instances whose conntrack (and NAT port bindings) the action empties: a stopped instance loses
 * its memory; an ENI moved to another instance meets that instance's empty table.
 */
export function flushedBy(a: TimelineAction): number[] {
  if (a.kind === 'stopInstance') return [a.instance];
  if (a.kind === 'moveEni') return [a.from];
  return [];
}

/**
 * The scenario after `a` (a new object; `s` is not changed). Stopped instances carry
 * `stopped: true`; routes keep their targets (a route to a stopped instance's ENI is a blackhole
 * while it is stopped: engines check isStopped). moveEni: the slot of `from` (its ENI: address,
 * Elastic IP, the routes to it) stays and runs on `to`, whose configuration equals `from`'s
 * (the loader checks it); it is running again.
 */
export function scenarioAfter(s: Scenario, a: TimelineAction): Scenario {
  const instances = s.instances.map((i) => ({ ...i }));
  const next: Scenario = { ...s, instances };
  switch (a.kind) {
    case 'stopInstance':
      instances[a.instance].stopped = true;
      break;
    case 'startInstance':
      delete instances[a.instance].stopped;
      break;
    case 'moveEni':
      delete instances[a.from].stopped;
      break;
    case 'moveElasticIp':
      instances[a.to].elasticIp = instances[a.from].elasticIp;
      instances[a.from].elasticIp = null;
      break;
    case 'replaceRoute':
      next.routeTables = s.routeTables.map((t, k) =>
        k !== a.routeTable
          ? t
          : {
              ...t,
              routes: t.routes.map((r, j) =>
                j === a.route ? { dest: { ...r.dest }, target: a.target, instance: a.targetIndex } : r,
              ),
            },
      );
      break;
    case 'setFilterRules':
      if (a.securityGroups.length > 0 || s.securityGroups) next.securityGroups = a.securityGroups;
      if (a.networkAcls.length > 0 || s.networkAcls) next.networkAcls = a.networkAcls;
      break;
  }
  return next;
}
