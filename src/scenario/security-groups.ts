// Scenario keys of the AWS filtering layers (docs/scenarios.md "Security groups and network
// ACLs"): top-level `securityGroups` and `networkAcls`, per-instance `securityGroups` and
// `connectionTracking`. Compiles them into spec/aws-filters.ts; every problem names its key path.
// Cold path; called by load.ts once subnets and instances are known.

import { suggest } from './suggest.ts';
import {
  ACL_ALLOW,
  ACL_DENY,
  FILTER_PROTO_ALL,
  ICMP_ANY,
  SG_TCP_ESTABLISHED_RANGE,
  SG_UDP_RANGE,
  SG_UDP_STREAM_RANGE,
  defaultSgTracking,
  type AclRule,
  type FilterMatch,
  type NetworkAcl,
  type SecurityGroup,
  type SgRule,
  type SgTracking,
} from '../spec/aws-filters.ts';
import type { Cidr, Instance, Subnet } from '../spec/scenario.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';

export const SG_KEYS = ['description', 'inbound', 'outbound'] as const;
export const SG_RULE_KEYS = ['description', 'protocol', 'ports', 'icmpType', 'icmpCode', 'cidr', 'group'] as const;
export const ACL_KEYS = ['description', 'subnets', 'inbound', 'outbound'] as const;
export const ACL_RULE_KEYS = [
  'description',
  'rule',
  'action',
  'protocol',
  'ports',
  'icmpType',
  'icmpCode',
  'cidr',
] as const;
export const TRACKING_KEYS = ['tcpEstablished', 'udp', 'udpStream', 'allowance'] as const;
/** AWS: rule numbers 1..32766 (32767 is the implicit `*`). */
export const ACL_RULE_MAX = 32766;
/** Groups one ENI may have (AWS's default quota is 5; natlab allows up to 16). */
export const SG_PER_ENI_MAX = 16;
export const ALLOWANCE_MAX = 1 << 26;

type Obj = Record<string, unknown>;
type Path = Array<string | number>;

/** The loader's validation context (load.ts Ctx): what this file uses of it. */
export interface Ctx {
  err(path: Path, msg: string): void;
  keys(path: Path, v: Obj, allowed: readonly string[]): void;
  obj(path: Path, v: unknown, required: boolean): Obj | null;
  str(path: Path, v: unknown, required: boolean): string | null;
  int(path: Path, v: unknown, dflt: number, min: number, max: number): number;
  name(path: Path, n: string, what: string): void;
  cidr(path: Path, v: unknown, required: boolean, allowBare?: boolean): Cidr | null;
}

const PROTO_WORDS: Readonly<Record<string, number>> = {
  all: FILTER_PROTO_ALL,
  tcp: PROTO_TCP,
  udp: PROTO_UDP,
  icmp: PROTO_ICMP,
};

/** `tcp`, `udp`, `icmp`, `all`, `-1` or 0..255. */
function readProto(ctx: Ctx, path: Path, v: unknown): number | null {
  if (v === undefined) {
    ctx.err(path, 'missing (required): tcp, udp, icmp, all or a protocol number 0..255');
    return null;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= -1 && v <= 255) return v === -1 ? FILTER_PROTO_ALL : v;
  if (typeof v === 'string') {
    const w = v.trim().toLowerCase();
    if (Object.hasOwn(PROTO_WORDS, w)) return PROTO_WORDS[w];
    if (/^(-1|[0-9]{1,3})$/.test(w) && Number(w) <= 255) return Number(w) === -1 ? FILTER_PROTO_ALL : Number(w);
  }
  ctx.err(path, `unknown protocol ${JSON.stringify(v)} (tcp, udp, icmp, all, -1 or 0..255)`);
  return null;
}

/** `443`, `1024-65535` (a string or a number). */
function readPorts(ctx: Ctx, path: Path, v: unknown): [number, number] | null {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : null;
  const m = s === null ? null : /^([0-9]{1,5})(?:\s*-\s*([0-9]{1,5}))?$/.exec(s);
  if (!m) {
    ctx.err(path, `expected a port or a range like 1024-65535, got ${JSON.stringify(v)}`);
    return null;
  }
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535 || lo > hi) {
    ctx.err(path, `port range ${s} is not within 0..65535 low to high`);
    return null;
  }
  return [lo, hi];
}

/** protocol / ports / icmpType / icmpCode of one rule. */
function readMatch(ctx: Ctx, p: Path, o: Obj): FilterMatch | null {
  const proto = readProto(ctx, [...p, 'protocol'], o.protocol);
  if (proto === null) return null;
  const m: FilterMatch = { proto, portLo: 0, portHi: 65535, icmpType: ICMP_ANY, icmpCode: ICMP_ANY };
  if (o.ports !== undefined) {
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) {
      ctx.err([...p, 'ports'], 'ports only apply to protocol tcp or udp (other protocols match every port)');
      return null;
    }
    const r = readPorts(ctx, [...p, 'ports'], o.ports);
    if (!r) return null;
    [m.portLo, m.portHi] = r;
  }
  for (const k of ['icmpType', 'icmpCode'] as const) {
    if (o[k] === undefined) continue;
    if (proto !== PROTO_ICMP) {
      ctx.err([...p, k], `${k} only applies to protocol icmp`);
      return null;
    }
    const n = ctx.int([...p, k], o[k], ICMP_ANY, -1, 255);
    if (k === 'icmpType') m.icmpType = n;
    else m.icmpCode = n;
  }
  if (m.icmpCode !== ICMP_ANY && m.icmpType === ICMP_ANY) {
    ctx.err([...p, 'icmpCode'], 'icmpCode needs an icmpType');
    return null;
  }
  return m;
}

function list(ctx: Ctx, path: Path, v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    ctx.err(path, `expected a list of ${what}`);
    return [];
  }
  return v;
}

function readSgRules(ctx: Ctx, p: Path, v: unknown, groupNames: readonly string[], dir: string): SgRule[] {
  const out: SgRule[] = [];
  list(ctx, p, v, `${dir} rules ({ protocol, ports, cidr | group })`).forEach((r, i) => {
    const rp = [...p, i];
    const o = ctx.obj(rp, r, true);
    if (!o) return;
    ctx.keys(rp, o, SG_RULE_KEYS);
    ctx.str([...rp, 'description'], o.description, false);
    const m = readMatch(ctx, rp, o);
    if (!m) return;
    if ((o.cidr === undefined) === (o.group === undefined)) {
      ctx.err(
        rp,
        `give exactly one of cidr (${dir === 'inbound' ? 'source' : 'destination'} CIDR) or group (a security group's name)`,
      );
      return;
    }
    let cidr = null;
    let group = -1;
    if (o.cidr !== undefined) {
      cidr = ctx.cidr([...rp, 'cidr'], o.cidr, true, true);
      if (!cidr) return;
    } else {
      const g = ctx.str([...rp, 'group'], o.group, true);
      if (g === null) return;
      group = groupNames.indexOf(g);
      if (group < 0) {
        ctx.err(
          [...rp, 'group'],
          `security group '${g}' does not exist${suggest(g, groupNames)}; defined: ${groupNames.join(', ') || 'none'}`,
        );
        return;
      }
    }
    out.push({ ...m, cidr, group });
  });
  return out;
}

function readAclRules(ctx: Ctx, p: Path, v: unknown): AclRule[] {
  const out: AclRule[] = [];
  list(ctx, p, v, 'rules ({ rule, action, protocol, ports, cidr })').forEach((r, i) => {
    const rp = [...p, i];
    const o = ctx.obj(rp, r, true);
    if (!o) return;
    ctx.keys(rp, o, ACL_RULE_KEYS);
    ctx.str([...rp, 'description'], o.description, false);
    if (o.rule === undefined) return ctx.err([...rp, 'rule'], `missing (required): the rule number 1..${ACL_RULE_MAX}`);
    const num = ctx.int([...rp, 'rule'], o.rule, -1, 1, ACL_RULE_MAX);
    const action = ctx.str([...rp, 'action'], o.action, true);
    if (action !== null && action !== ACL_ALLOW && action !== ACL_DENY)
      return ctx.err([...rp, 'action'], `expected allow or deny, got '${action}'`);
    const m = readMatch(ctx, rp, o);
    const cidr = ctx.cidr([...rp, 'cidr'], o.cidr, true, true);
    if (num < 0 || action === null || !m || !cidr) return;
    const dup = out.find((x) => x.num === num);
    if (dup) return ctx.err([...rp, 'rule'], `rule number ${num} is used twice in this direction`);
    out.push({ ...m, num, action, cidr });
  });
  return out.sort((a, b) => a.num - b.num);
}

function readTracking(ctx: Ctx, p: Path, v: unknown): SgTracking {
  const t = defaultSgTracking();
  const o = ctx.obj(p, v, false);
  if (!o) return t;
  ctx.keys(p, o, TRACKING_KEYS);
  t.tcpEstablished = ctx.int([...p, 'tcpEstablished'], o.tcpEstablished, t.tcpEstablished, ...SG_TCP_ESTABLISHED_RANGE);
  t.udp = ctx.int([...p, 'udp'], o.udp, t.udp, ...SG_UDP_RANGE);
  t.udpStream = ctx.int([...p, 'udpStream'], o.udpStream, t.udpStream, ...SG_UDP_STREAM_RANGE);
  t.allowance = ctx.int([...p, 'allowance'], o.allowance, t.allowance, 1, ALLOWANCE_MAX);
  return t;
}

/**
 * Compiles the filtering keys onto `instances` (Instance.security) and returns the scenario's
 * securityGroups / networkAcls (undefined when the file has no such key).
 */
export function compileAwsFilters(
  ctx: Ctx,
  top: Obj,
  instRaw: Obj,
  instances: Instance[],
  subnets: readonly Subnet[],
): { securityGroups?: SecurityGroup[]; networkAcls?: NetworkAcl[] } {
  const out: { securityGroups?: SecurityGroup[]; networkAcls?: NetworkAcl[] } = {};
  let groupNames: string[] = [];
  if (top.securityGroups !== undefined) {
    const raw = ctx.obj(['securityGroups'], top.securityGroups, true) ?? {};
    groupNames = Object.keys(raw);
    const groups: SecurityGroup[] = [];
    for (const [name, gv] of Object.entries(raw)) {
      const p = ['securityGroups', name];
      ctx.name(p, name, 'security group');
      const o = gv === null ? {} : ctx.obj(p, gv, true);
      const g: SecurityGroup = { name, inbound: [], outbound: [] };
      groups.push(g);
      if (!o) continue;
      ctx.keys(p, o, SG_KEYS);
      ctx.str([...p, 'description'], o.description, false);
      g.inbound = readSgRules(ctx, [...p, 'inbound'], o.inbound, groupNames, 'inbound');
      // AWS: a new security group has one outbound rule allowing all traffic to 0.0.0.0/0.
      g.outbound =
        o.outbound === undefined
          ? [
              {
                proto: FILTER_PROTO_ALL,
                portLo: 0,
                portHi: 65535,
                icmpType: ICMP_ANY,
                icmpCode: ICMP_ANY,
                cidr: { addr: 0, len: 0 },
                group: -1,
              },
            ]
          : readSgRules(ctx, [...p, 'outbound'], o.outbound, groupNames, 'outbound');
    }
    out.securityGroups = groups;
  }
  instances.forEach((inst, i) => {
    const o = instRaw[inst.name];
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return;
    const io = o as Obj;
    const p = ['instances', inst.name];
    if (io.securityGroups === undefined) {
      if (io.connectionTracking !== undefined)
        ctx.err([...p, 'connectionTracking'], 'needs securityGroups (connection tracking belongs to security groups)');
      return;
    }
    const names = list(ctx, [...p, 'securityGroups'], io.securityGroups, 'security group names');
    if (names.length === 0 || names.length > SG_PER_ENI_MAX) {
      ctx.err([...p, 'securityGroups'], `an ENI has 1..${SG_PER_ENI_MAX} security groups, got ${names.length}`);
      return;
    }
    const groups: number[] = [];
    names.forEach((n, k) => {
      const np = [...p, 'securityGroups', k];
      const s = ctx.str(np, n, true);
      if (s === null) return;
      const g = groupNames.indexOf(s);
      if (g < 0)
        return ctx.err(
          np,
          `security group '${s}' does not exist${suggest(s, groupNames)}; defined: ${groupNames.join(', ') || 'none'}`,
        );
      if (groups.includes(g)) return ctx.err(np, `security group '${s}' is listed twice`);
      groups.push(g);
    });
    instances[i].security = {
      groups,
      tracking: readTracking(ctx, [...p, 'connectionTracking'], io.connectionTracking),
    };
  });
  if (top.networkAcls !== undefined) {
    const raw = ctx.obj(['networkAcls'], top.networkAcls, true) ?? {};
    const acls: NetworkAcl[] = [];
    const owner = new Map<number, string>();
    const snNames = subnets.map((s) => s.name);
    for (const [name, av] of Object.entries(raw)) {
      const p = ['networkAcls', name];
      ctx.name(p, name, 'network ACL');
      const o = ctx.obj(p, av, true);
      if (!o) continue;
      ctx.keys(p, o, ACL_KEYS);
      ctx.str([...p, 'description'], o.description, false);
      const acl: NetworkAcl = { name, subnets: [], inbound: [], outbound: [] };
      acls.push(acl);
      list(ctx, [...p, 'subnets'], o.subnets, 'subnet names').forEach((n, k) => {
        const sp = [...p, 'subnets', k];
        const s = ctx.str(sp, n, true);
        if (s === null) return;
        const idx = snNames.indexOf(s);
        if (idx < 0)
          return ctx.err(
            sp,
            `subnet '${s}' does not exist${suggest(s, snNames)}; defined: ${snNames.join(', ') || 'none'}`,
          );
        const prev = owner.get(idx);
        if (prev !== undefined)
          return ctx.err(sp, `subnet '${s}' is already associated with network ACL ${prev} (a subnet has one ACL)`);
        owner.set(idx, name);
        acl.subnets.push(idx);
      });
      acl.inbound = readAclRules(ctx, [...p, 'inbound'], o.inbound);
      acl.outbound = readAclRules(ctx, [...p, 'outbound'], o.outbound);
    }
    out.networkAcls = acls;
  }
  return out;
}

/** `tcp 443 10.0.1.0/24`, `all 0.0.0.0/0`, `icmp type 3 code 4 group app` — one rule in one line (trace, docs). */
export function filterMatchText(m: FilterMatch): string {
  const p =
    m.proto === FILTER_PROTO_ALL
      ? 'all'
      : m.proto === PROTO_TCP
        ? 'tcp'
        : m.proto === PROTO_UDP
          ? 'udp'
          : m.proto === PROTO_ICMP
            ? 'icmp'
            : `proto ${m.proto}`;
  if (m.proto === PROTO_TCP || m.proto === PROTO_UDP)
    return m.portLo === 0 && m.portHi === 65535
      ? `${p} all ports`
      : m.portLo === m.portHi
        ? `${p} ${m.portLo}`
        : `${p} ${m.portLo}-${m.portHi}`;
  if (m.proto === PROTO_ICMP && m.icmpType !== ICMP_ANY)
    return m.icmpCode !== ICMP_ANY ? `${p} type ${m.icmpType} code ${m.icmpCode}` : `${p} type ${m.icmpType}`;
  return p;
}
