// The scenario file's `timeline:` key (docs/scenarios.md "Timeline") → spec/timeline.ts events.
// Events are checked in order against the VPC as the earlier events left it (a stopped instance
// cannot be stopped again, an Elastic IP moves only from an instance that has one, ...). Errors
// name the event's index and field. Cold path.

import { formatCidr } from '../packet/addr.ts';
import type { Instance, Route, Scenario, Subnet } from '../spec/scenario.ts';
import { type TimelineAction, type TimelineEvent, scenarioAfter } from '../spec/timeline.ts';
import { type Ctx as FilterCtx, compileAwsFilters } from './security-groups.ts';
import { suggest } from './suggest.ts';

type Obj = Record<string, unknown>;
type Path = Array<string | number>;

/** The loader's validation context (load.ts Ctx): what this file uses of it. */
export interface Ctx extends FilterCtx {
  /** Errors collected so far. */
  readonly el: { readonly count: number };
}

/** What the loader lends this file (load.ts; passed in, so the two files do not import each other). */
export interface TimelineLoaderParts {
  /** A fresh context with its own error list (no file lines): the patched filters compile in it. */
  subContext(): Ctx & {
    readonly el: { readonly count: number; readonly items: ReadonlyArray<{ where: string; msg: string }> };
  };
  /** A route target (`eni:NAME`, `igw`, ...) as load.ts reads it. */
  readTarget(
    ctx: Ctx,
    path: Path,
    t: string,
    instNames: string[],
    gwNames: string[],
  ): { target: Route['target']; instance: number } | null;
}

export const TIMELINE_ACTIONS = [
  'stopInstance',
  'startInstance',
  'replaceRoute',
  'moveEni',
  'moveElasticIp',
  'setSecurityGroupRules',
  'setNetworkAclEntries',
] as const;
export const TIMELINE_EVENT_KEYS = ['at', 'description', ...TIMELINE_ACTIONS] as const;
export const REPLACE_ROUTE_KEYS = ['routeTable', 'destination', 'target'] as const;
export const MOVE_KEYS = ['from', 'to'] as const;
export const SET_SG_KEYS = ['group', 'inbound', 'outbound'] as const;
export const SET_ACL_KEYS = ['acl', 'inbound', 'outbound'] as const;

/** Latest `at` in seconds after the first packet (a year: anything later is a typo). */
export const TIMELINE_AT_MAX = 366 * 86400;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads `timeline:` of `top` (the raw file object) for the compiled scenario `s`; errors into ctx. */
export function compileTimeline(
  ctx: Ctx,
  top: Obj,
  s: Scenario,
  instRaw: Obj,
  subnets: readonly Subnet[],
  parts: TimelineLoaderParts,
): TimelineEvent[] | undefined {
  const { readTarget } = parts;
  if (top.timeline === undefined || top.timeline === null) return undefined;
  if (!Array.isArray(top.timeline)) {
    ctx.err(['timeline'], 'expected a list of events ({ at: SECONDS, stopInstance: NAME }, ...)');
    return undefined;
  }
  const events: TimelineEvent[] = [];
  let state: Scenario = s;
  /** Raw securityGroups/networkAcls as the events so far left them (setSecurityGroupRules patches them). */
  let filtersRaw: Obj = {
    securityGroups: structuredClone(top.securityGroups),
    networkAcls: structuredClone(top.networkAcls),
  };
  let lastAt: { v: number; absolute: boolean } | null = null;
  const names = s.instances.map((i) => i.name);
  for (const [k, ev] of (top.timeline as unknown[]).entries()) {
    const p = ['timeline', k];
    const o = ctx.obj(p, ev, true);
    if (!o) continue;
    ctx.keys(p, o, TIMELINE_EVENT_KEYS);
    ctx.str([...p, 'description'], o.description, false);
    const at = readAt(ctx, [...p, 'at'], o.at);
    const acts = TIMELINE_ACTIONS.filter((a) => o[a] !== undefined);
    if (acts.length !== 1) {
      ctx.err(
        p,
        acts.length === 0
          ? `no action: give one of ${TIMELINE_ACTIONS.join(', ')}`
          : `one action per event, got ${acts.join(' and ')}`,
      );
      continue;
    }
    if (at === null) continue;
    if (lastAt !== null && lastAt.absolute !== at.absolute) {
      ctx.err([...p, 'at'], 'mixes absolute (ISO) and relative (seconds) times: use one kind in a timeline');
      continue;
    }
    if (lastAt !== null && at.v < lastAt.v) {
      ctx.err([...p, 'at'], `events must be in time order (this one is before timeline[${k - 1}])`);
      continue;
    }
    lastAt = at;
    const kind = acts[0];
    const ap = [...p, kind];
    const v = o[kind];
    const inst = (path: Array<string | number>, x: unknown): number => {
      const n = ctx.str(path, x, true);
      if (n === null) return -1;
      const i = names.indexOf(n);
      if (i < 0) ctx.err(path, `instance '${n}' does not exist${suggest(n, names)}; defined: ${names.join(', ')}`);
      return i;
    };
    let action: TimelineAction | null = null;
    let text = '';
    switch (kind) {
      case 'stopInstance':
      case 'startInstance': {
        const i = inst(ap, v);
        if (i < 0) break;
        const stopped = state.instances[i].stopped === true;
        if (kind === 'stopInstance' && stopped) ctx.err(ap, `instance '${names[i]}' is already stopped at this time`);
        else if (kind === 'startInstance' && !stopped)
          ctx.err(ap, `instance '${names[i]}' is running at this time (startInstance needs a stopInstance before it)`);
        else {
          action = { kind, instance: i };
          text = `${kind} ${names[i]}`;
        }
        break;
      }
      case 'replaceRoute': {
        const r = ctx.obj(ap, v, true);
        if (!r) break;
        ctx.keys(ap, r, REPLACE_ROUTE_KEYS);
        const rtName = ctx.str([...ap, 'routeTable'], r.routeTable, true);
        const dest = ctx.cidr([...ap, 'destination'], r.destination, true);
        const target = ctx.str([...ap, 'target'], r.target, true);
        if (rtName === null || dest === null || target === null) break;
        const rtNames = state.routeTables.map((t) => t.name);
        const t = rtNames.indexOf(rtName);
        if (t < 0) {
          ctx.err(
            [...ap, 'routeTable'],
            `route table '${rtName}' does not exist${suggest(rtName, rtNames)}; defined: ${rtNames.join(', ')}`,
          );
          break;
        }
        const ri = state.routeTables[t].routes.findIndex((x) => x.dest.addr === dest.addr && x.dest.len === dest.len);
        if (ri < 0) {
          ctx.err(
            [...ap, 'destination'],
            `route table '${rtName}' has no route to ${formatCidr(dest)} (ReplaceRoute replaces an existing route)`,
          );
          break;
        }
        const gwNames = (s.natGateways ?? []).map((g) => g.name);
        const tg = readTarget(ctx, [...ap, 'target'], target, names, gwNames);
        if (!tg) break;
        if (tg.target === 'local' || state.routeTables[t].routes[ri].target === 'local') {
          ctx.err([...ap, 'target'], 'the local route cannot be replaced (AWS does not allow it)');
          break;
        }
        action = { kind, routeTable: t, route: ri, target: tg.target, targetIndex: tg.instance };
        text = `replaceRoute ${rtName} ${formatCidr(dest)} → ${target.trim()}`;
        break;
      }
      case 'moveEni':
      case 'moveElasticIp': {
        const m = ctx.obj(ap, v, true);
        if (!m) break;
        ctx.keys(ap, m, MOVE_KEYS);
        const from = inst([...ap, 'from'], m.from);
        const to = inst([...ap, 'to'], m.to);
        if (from < 0 || to < 0) break;
        if (from === to) {
          ctx.err([...ap, 'to'], 'is the same instance as from');
          break;
        }
        const A = state.instances[from];
        const B = state.instances[to];
        if (B.stopped) {
          ctx.err([...ap, 'to'], `instance '${B.name}' is stopped at this time (start it first)`);
          break;
        }
        if (kind === 'moveElasticIp') {
          if (A.elasticIp === null) {
            ctx.err([...ap, 'from'], `instance '${A.name}' has no Elastic IP at this time`);
            break;
          }
          if (B.elasticIp !== null) {
            ctx.err([...ap, 'to'], `instance '${B.name}' already has an Elastic IP (disassociate it first)`);
            break;
          }
        } else {
          const why = sameConfiguration(A, B);
          if (why) {
            ctx.err(
              [...ap, 'to'],
              `instance '${B.name}' ${why} than '${A.name}': natlab moves an ENI only between instances of one configuration (an HA pair)`,
            );
            break;
          }
        }
        action = { kind, from, to };
        text = `${kind} ${A.name} → ${B.name}`;
        break;
      }
      case 'setSecurityGroupRules':
      case 'setNetworkAclEntries': {
        const isSg = kind === 'setSecurityGroupRules';
        const m = ctx.obj(ap, v, true);
        if (!m) break;
        ctx.keys(ap, m, isSg ? SET_SG_KEYS : SET_ACL_KEYS);
        const nameKey = isSg ? 'group' : 'acl';
        const n = ctx.str([...ap, nameKey], m[nameKey], true);
        if (n === null) break;
        const topKey = isSg ? 'securityGroups' : 'networkAcls';
        const raw = isObj(filtersRaw[topKey]) ? (filtersRaw[topKey] as Obj) : {};
        const defined = Object.keys(raw);
        if (!defined.includes(n)) {
          ctx.err(
            [...ap, nameKey],
            `${isSg ? 'security group' : 'network ACL'} '${n}' does not exist${suggest(n, defined)}; defined: ${defined.join(', ') || 'none'}`,
          );
          break;
        }
        const patched = structuredClone(filtersRaw);
        const entry = { ...((isObj(raw[n]) ? raw[n] : {}) as Obj) };
        if (m.inbound !== undefined) entry.inbound = m.inbound;
        if (m.outbound !== undefined) entry.outbound = m.outbound;
        (patched[topKey] as Obj)[n] = entry;
        // Compile the patched groups/ACLs on their own; their errors are reported at this event.
        const sub = parts.subContext();
        const fresh = compileAwsFilters(sub, patched, instRaw, s.instances.map(copyInstance), subnets);
        if (sub.el.count > 0) {
          for (const e of sub.el.items) ctx.err(ap, `${e.where}: ${e.msg}`);
          break;
        }
        filtersRaw = patched;
        action = {
          kind: 'setFilterRules',
          securityGroups: fresh.securityGroups ?? [],
          networkAcls: fresh.networkAcls ?? [],
          changed: { what: isSg ? 'group' : 'acl', name: n },
        };
        text = `${kind} ${n}`;
        break;
      }
    }
    if (!action) continue;
    state = scenarioAfter(state, action);
    events.push({ at: at.v, absolute: at.absolute, action, text });
  }
  return events;
}

function copyInstance(i: Instance): Instance {
  const c = { ...i };
  delete c.security;
  return c;
}

/** Why B's configuration (nat/mangle tables, sysctls, source/dest check) differs from A's, or null. */
function sameConfiguration(A: Instance, B: Instance): string | null {
  if ((A.nat?.text ?? null) !== (B.nat?.text ?? null)) return 'has another nat table';
  if ((A.mangle?.text ?? null) !== (B.mangle?.text ?? null)) return 'has another mangle table';
  if (JSON.stringify(A.sysctls) !== JSON.stringify(B.sysctls)) return 'has other sysctls';
  if (A.sourceDestCheck !== B.sourceDestCheck) return 'has another source/dest check setting';
  return null;
}

/** `at:` seconds (≥ 0) after the first packet, or an ISO 8601 date-time (absolute capture time). */
function readAt(ctx: Ctx, path: Array<string | number>, v: unknown): { v: number; absolute: boolean } | null {
  if (v === undefined) {
    ctx.err(path, 'missing (required): seconds after the first packet, or an ISO time (2026-12-04T21:00:00Z)');
    return null;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0 || v > TIMELINE_AT_MAX) {
      ctx.err(path, `${v} is out of range 0..${TIMELINE_AT_MAX} seconds`);
      return null;
    }
    return { v, absolute: false };
  }
  if (typeof v === 'string') {
    const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(v.trim())
      ? Date.parse(v)
      : Number.NaN;
    if (Number.isNaN(ms)) {
      ctx.err(path, `'${v}' is not an ISO 8601 time with a zone (e.g. 2026-12-04T21:00:00Z) nor a number of seconds`);
      return null;
    }
    const frac = /\.(\d+)/.exec(v);
    const us = Math.floor(ms / 1000) * 1e6 + (frac ? Math.round(Number(`0.${frac[1]}`) * 1e6) : 0);
    return { v: us, absolute: true };
  }
  ctx.err(path, `expected seconds or an ISO time, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  return null;
}

/** The timeline in the file format (scenarioToYaml): what compileTimeline reads back to the same events. */
export function timelineToObject(s: Scenario, filtersToObject: (s: Scenario) => Record<string, unknown>): unknown[] {
  const name = (i: number): string => s.instances[i].name;
  return (s.timeline ?? []).map((e) => {
    const o: Record<string, unknown> = { at: e.absolute ? isoOfUs(e.at) : e.at };
    const a = e.action;
    switch (a.kind) {
      case 'stopInstance':
      case 'startInstance':
        o[a.kind] = name(a.instance);
        break;
      case 'moveEni':
      case 'moveElasticIp':
        o[a.kind] = { from: name(a.from), to: name(a.to) };
        break;
      case 'replaceRoute': {
        const rt = s.routeTables[a.routeTable];
        const target =
          a.target === 'eni'
            ? `eni:${name(a.targetIndex)}`
            : a.target === 'nat-gateway'
              ? `nat-gateway:${(s.natGateways ?? [])[a.targetIndex].name}`
              : a.target;
        o.replaceRoute = { routeTable: rt.name, destination: formatCidr(rt.routes[a.route].dest), target };
        break;
      }
      case 'setFilterRules': {
        const f = filtersToObject({ ...s, securityGroups: a.securityGroups, networkAcls: a.networkAcls });
        const isSg = a.changed.what === 'group';
        const all = (isSg ? f.securityGroups : f.networkAcls) as Record<string, Record<string, unknown>>;
        const x = all[a.changed.name];
        o[isSg ? 'setSecurityGroupRules' : 'setNetworkAclEntries'] = {
          [isSg ? 'group' : 'acl']: a.changed.name,
          inbound: x.inbound,
          outbound: x.outbound,
        };
        break;
      }
    }
    return o;
  });
}

/** µs since the epoch as an ISO 8601 UTC time with microseconds (readAt reads it back exactly). */
function isoOfUs(us: number): string {
  const sec = Math.floor(us / 1e6);
  const frac = us - sec * 1e6;
  const base = new Date(sec * 1000).toISOString().slice(0, 19);
  return frac === 0 ? `${base}Z` : `${base}.${String(frac).padStart(6, '0')}Z`;
}
