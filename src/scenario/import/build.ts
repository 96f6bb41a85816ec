// Inventory (cloud side) + host configurations (the NAT instances' own files) → a scenario file.
// The result is compiled by the normal loader (so it is exactly as valid as a hand-written file)
// and written in the compiled form `natlab scenario show` prints, with a header of comments: the
// AWS ids behind each name, the notes, and every skipped item with its reason. Cold path.

import { InputError } from '../../spec/errors.ts';
import type { Cidr, Scenario } from '../../spec/scenario.ts';
import { cidrContains, cidrMask, cidrOverlaps, formatCidr } from '../../packet/addr.ts';
import { cidrWithin, readCidr, readIpv4 } from '../addr-text.ts';
import {
  NAME_RE,
  SYSCTL_IP_FORWARD,
  SYSCTL_SEND_REDIRECTS_ALL,
  SYSCTL_SEND_REDIRECTS_ETH0,
  compileScenarioObject,
} from '../load.ts';
import { scenarioToYaml } from '../to-yaml.ts';
import type { InvAclRule, InvFilterRule, InvInstance, InvRoute, Inventory, Skipped } from './inventory.ts';
import { mergeHostConfig, primaryIface, resolveHost, type HostConfig } from './host.ts';

export interface BuildOptions {
  /** Scenario name (default: the VPC's Name tag, else its id). */
  name?: string;
  /** Which VPC, when the input holds several. */
  vpcId?: string;
  /** Internet hosts (CIDRs); default: the documentation ranges 198.51.100.0/24 and 192.0.2.0/24. */
  internet?: string[];
  /** Instances (id or Name) that run the NAT AMI's configure-pat.sh (no host files needed). */
  natAmi?: string[];
  /** The hosts' name for their primary interface (default: detected; it becomes eth0). */
  iface?: string;
  /** The name the output will have (errors from the compile name it). */
  outName?: string;
}

export interface ImportResult {
  scenario: Scenario;
  /** The scenario file text (YAML with the header comments). */
  yaml: string;
  skipped: Skipped[];
  notes: string[];
}

export const DEFAULT_INTERNET = ['198.51.100.0/24', '192.0.2.0/24'];
/** A VPC whose CIDR associations are spread wider than this is not widened into one CIDR. */
const WIDEN_MIN_LEN = 8;

function cidrOf(text: string, what: string, source: string): Cidr {
  const c = readCidr(text);
  if (typeof c === 'string' || c.bare)
    throw new InputError(`${source}: ${what}: '${text}' is not an IPv4 CIDR`, source, what);
  return c.cidr;
}

function ipOf(text: string, what: string, source: string): number {
  const a = readIpv4(text);
  if (a === null) throw new InputError(`${source}: ${what}: '${text}' is not an IPv4 address`, source, what);
  return a;
}

/** The smallest CIDR covering all of `cs`. */
function covering(cs: Cidr[]): Cidr {
  let len = Math.min(...cs.map((c) => c.len));
  for (; len > 0; len--) {
    const base = (cs[0].addr & cidrMask(len)) >>> 0;
    if (cs.every((c) => (c.addr & cidrMask(len)) >>> 0 === base)) return { addr: base, len };
  }
  return { addr: 0, len: 0 };
}

class Names {
  private used = new Set<string>();
  /** The Name tag when it is a valid, unused scenario name; else the AWS id. */
  pick(tag: string | null, id: string): string {
    const n =
      tag && NAME_RE.test(tag) && !this.used.has(tag)
        ? tag
        : NAME_RE.test(id) && !this.used.has(id)
          ? id
          : `x-${this.used.size}`;
    this.used.add(n);
    return n;
  }
}

export function buildScenario(inv: Inventory, hosts: Map<string, HostConfig>, opts: BuildOptions = {}): ImportResult {
  const skipped: Skipped[] = [...inv.skipped];
  const notes: string[] = [];
  const skip = (what: string, reason: string, source: string): void => {
    skipped.push({ what, reason, source });
  };

  // --- the VPC
  if (inv.vpcs.length === 0)
    throw new InputError(
      `no VPC in the input: give the output of aws ec2 describe-vpcs (or a Terraform state with aws_vpc)`,
      inv.inputs[0] ?? '',
      '',
    );
  let vpc = inv.vpcs[0];
  if (opts.vpcId) {
    const v = inv.vpcs.find((x) => x.id === opts.vpcId || x.name === opts.vpcId);
    if (!v)
      throw new InputError(
        `--vpc ${opts.vpcId}: no such VPC in the input (have: ${inv.vpcs.map((x) => x.id + (x.name ? ` (${x.name})` : '')).join(', ')})`,
        '',
        'vpc',
      );
    vpc = v;
  } else if (inv.vpcs.length > 1) {
    throw new InputError(
      `the input holds ${inv.vpcs.length} VPCs (${inv.vpcs.map((x) => x.id + (x.name ? ` (${x.name})` : '')).join(', ')}): choose one with --vpc ID`,
      '',
      'vpc',
    );
  }
  for (const v of inv.vpcs)
    if (v !== vpc)
      skip(
        `VPC ${v.id}${v.name ? ` (${v.name})` : ''} and everything in it`,
        `the scenario is one VPC (${vpc.id}); import it separately with --vpc ${v.id}`,
        v.source,
      );
  if (vpc.cidrs.length === 0)
    throw new InputError(`${vpc.source}: VPC ${vpc.id} has no IPv4 CIDR block`, vpc.source, 'CidrBlock');
  const vpcCidrs = vpc.cidrs.map((c) => cidrOf(c, 'CidrBlock', vpc.source));
  let vpcCidr = vpcCidrs[0];

  const subnetsIn = inv.subnets.filter((s) => s.vpcId === vpc.id);
  for (const s of inv.subnets)
    if (s.vpcId !== vpc.id && inv.vpcs.some((v) => v.id === s.vpcId && v !== vpc))
      continue; // reported with its VPC
    else if (s.vpcId !== vpc.id) skip(`subnet ${s.id}`, `it is in VPC ${s.vpcId}, not ${vpc.id}`, s.source);
  const usedSecondary = vpcCidrs
    .slice(1)
    .filter((c) => subnetsIn.some((s) => cidrWithin(cidrOf(s.cidr, 'CidrBlock', s.source), c)));
  if (vpcCidrs.length > 1) {
    const all = [vpcCidrs[0], ...usedSecondary];
    const cover = covering(all);
    if (usedSecondary.length === 0) {
      for (const c of vpcCidrs.slice(1))
        skip(`VPC CIDR ${formatCidr(c)} (secondary)`, 'no subnet uses it; the scenario has one VPC CIDR', vpc.source);
    } else if (cover.len >= WIDEN_MIN_LEN) {
      vpcCidr = cover;
      notes.push(
        `VPC ${vpc.id} has ${vpcCidrs.length} IPv4 CIDR blocks (${vpcCidrs.map(formatCidr).join(', ')}); the scenario has one VPC CIDR, so it uses ${formatCidr(cover)}, ` +
          `which covers the blocks its subnets use (addresses between them count as the VPC's)`,
      );
      for (const c of vpcCidrs.slice(1))
        if (!usedSecondary.includes(c)) skip(`VPC CIDR ${formatCidr(c)} (secondary)`, 'no subnet uses it', vpc.source);
    } else {
      for (const c of vpcCidrs.slice(1))
        skip(
          `VPC CIDR ${formatCidr(c)} (secondary) and its subnets`,
          `no single CIDR of /${WIDEN_MIN_LEN} or longer covers it and ${formatCidr(vpcCidrs[0])}; the scenario has one VPC CIDR`,
          vpc.source,
        );
    }
  }

  // --- subnets and route tables
  const snNames = new Names();
  const rtNames = new Names();
  const instNames = new Names();
  const ids: string[] = [`VPC ${vpc.id}${vpc.name ? ` (${vpc.name})` : ''}: ${vpc.cidrs.join(', ')}`];
  const tables = inv.routeTables.filter((t) => t.vpcId === vpc.id);
  for (const t of inv.routeTables)
    if (t.vpcId !== vpc.id && !inv.vpcs.some((v) => v.id === t.vpcId && v !== vpc))
      skip(`route table ${t.id}`, `it is in VPC ${t.vpcId}, not ${vpc.id}`, t.source);
  const mainTable = tables.find((t) => t.main) ?? null;
  const rtName = new Map<string, string>();
  for (const t of tables) {
    rtName.set(t.id, rtNames.pick(t.name, t.id));
    ids.push(`route table ${rtName.get(t.id)} = ${t.id}${t.main ? ' (main)' : ''}`);
  }
  const subnets: Record<string, unknown> = {};
  const snName = new Map<string, string>();
  let needMain = false;
  for (const s of subnetsIn) {
    const c = cidrOf(s.cidr, 'CidrBlock', s.source);
    if (!cidrWithin(c, vpcCidr)) {
      skip(`subnet ${s.id} (${s.cidr})`, `outside the scenario's VPC CIDR ${formatCidr(vpcCidr)}`, s.source);
      continue;
    }
    const name = snNames.pick(s.name, s.id);
    snName.set(s.id, name);
    const explicit = tables.find((t) => t.subnetIds.includes(s.id));
    let table: string;
    if (explicit) table = rtName.get(explicit.id)!;
    else if (mainTable) {
      table = rtName.get(mainTable.id)!;
      notes.push(
        `subnet ${name}: no explicit route table association, so it uses the main route table ${table} (${mainTable.id})`,
      );
    } else {
      table = 'main';
      needMain = true;
    }
    subnets[name] = { cidr: s.cidr, routeTable: table };
    ids.push(`subnet ${name} = ${s.id} (${s.cidr})`);
  }
  if (Object.keys(subnets).length === 0)
    throw new InputError(
      `VPC ${vpc.id} has no IPv4 subnet in the input: give the output of aws ec2 describe-subnets (or aws_subnet resources)`,
      vpc.source,
      'subnets',
    );
  if (needMain)
    notes.push(
      `no route table in the input is the VPC's main one: subnets without an explicit association use a route table 'main' with only the local route (give describe-route-tables output)`,
    );

  // --- instances (their primary ENI) and public addresses
  const enisById = new Map(inv.enis.map((e) => [e.id, e]));
  const instances: Record<string, Record<string, unknown>> = {};
  const instName = new Map<string, string>();
  const instById = new Map<string, InvInstance>();
  const usedPublic = new Set<string>();
  const instGroupIds = new Map<string, { ids: string[]; source: string }>();
  for (const i of inv.instances) {
    const eni = i.primaryEniId
      ? enisById.get(i.primaryEniId)
      : inv.enis.find((e) => e.instanceId === i.id && e.deviceIndex === 0);
    const subnetId = i.subnetId ?? eni?.subnetId ?? null;
    if (i.state === 'terminated' || i.state === 'shutting-down') {
      skip(`instance ${i.id}${i.name ? ` (${i.name})` : ''}`, `it is ${i.state}`, i.source);
      continue;
    }
    if (!subnetId || !snName.has(subnetId)) {
      if (subnetId && !inv.subnets.some((s) => s.id === subnetId && s.vpcId !== vpc.id))
        skip(`instance ${i.id}`, `its subnet ${subnetId} is not in the scenario`, i.source);
      else if (!subnetId) skip(`instance ${i.id}`, 'no subnet (EC2-Classic or no network interface)', i.source);
      continue;
    }
    const ip = i.privateIp ?? eni?.privateIp;
    if (!ip) {
      skip(`instance ${i.id}`, 'no private IPv4 address', i.source);
      continue;
    }
    const name = instNames.pick(i.name, i.id);
    instName.set(i.id, name);
    instById.set(i.id, i);
    const o: Record<string, unknown> = { subnet: snName.get(subnetId), privateIp: ip };
    const pub = eni?.publicIp ?? i.publicIp;
    if (pub) {
      o.elasticIp = pub;
      usedPublic.add(pub);
    }
    const sdc = eni?.sourceDestCheck ?? i.sourceDestCheck;
    o.sourceDestCheck = sdc ?? true;
    if (sdc === null) notes.push(`instance ${name}: SourceDestCheck not in the input; AWS's default (on) assumed`);
    if (i.state && i.state !== 'running')
      notes.push(`instance ${name} (${i.id}) is ${i.state}: imported as if running`);
    instances[name] = o;
    const gids = eni?.groupIds.length ? eni.groupIds : i.groupIds;
    if (gids.length) instGroupIds.set(name, { ids: gids, source: eni?.groupIds.length ? eni.source : i.source });
    ids.push(`instance ${name} = ${i.id}${eni ? ` (ENI ${eni.id})` : ''}`);
    for (const e of inv.enis.filter((x) => x.instanceId === i.id && x.deviceIndex > 0))
      skip(
        `ENI ${e.id} of instance ${name} (device ${e.deviceIndex}${e.privateIp ? `, ${e.privateIp}` : ''})`,
        'the scenario gives each instance one ENI (its primary)',
        e.source,
      );
    if (eni?.secondaryPrivateIps.length)
      skip(
        `secondary private IPs of ${name}: ${eni.secondaryPrivateIps.join(', ')}`,
        'the scenario gives each ENI one private IP',
        eni.source,
      );
  }
  const natGwPublic = new Set(inv.natGateways.map((n) => n.publicIp).filter((x): x is string => !!x));
  for (const e of inv.eips) {
    const viaEni = e.eniId ? enisById.get(e.eniId) : undefined;
    const instId = e.instanceId ?? viaEni?.instanceId ?? null;
    if (natGwPublic.has(e.publicIp) || viaEni?.interfaceType === 'nat_gateway') continue; // reported with the NAT gateway
    if (!instId && !e.eniId) {
      skip(
        `Elastic IP ${e.publicIp}${e.allocationId ? ` (${e.allocationId})` : ''}`,
        'not associated with anything',
        e.source,
      );
      continue;
    }
    const name = instId ? instName.get(instId) : undefined;
    if (!name) {
      skip(
        `Elastic IP ${e.publicIp}`,
        `associated with ${instId ?? e.eniId}, which is not an instance in the scenario`,
        e.source,
      );
      continue;
    }
    if (viaEni && viaEni.deviceIndex > 0) {
      skip(
        `Elastic IP ${e.publicIp}`,
        `on secondary ENI ${viaEni.id} of ${name} (the scenario has one ENI per instance)`,
        e.source,
      );
      continue;
    }
    const o = instances[name];
    if (e.privateIp && e.privateIp !== o.privateIp) {
      skip(`Elastic IP ${e.publicIp}`, `on secondary private IP ${e.privateIp} of ${name}`, e.source);
      continue;
    }
    if (o.elasticIp && o.elasticIp !== e.publicIp)
      skip(
        `Elastic IP ${e.publicIp}`,
        `${name} already has public IP ${String(o.elasticIp)} in the instance description`,
        e.source,
      );
    else {
      o.elasticIp = e.publicIp;
      usedPublic.add(e.publicIp);
    }
  }
  for (const [id, name] of instName) {
    const o = instances[name];
    const i = instById.get(id)!;
    if (o.elasticIp && !inv.eips.some((e) => e.publicIp === o.elasticIp) && inv.eips.length > 0)
      notes.push(
        `instance ${name}: public IP ${String(o.elasticIp)} is not an Elastic IP (auto-assigned: it changes when the instance stops)`,
      );
    void i;
  }

  // --- routes
  const routeTables: Record<string, unknown[]> = {};
  const routeNotes: string[] = [];
  const eniTargetOf = (r: InvRoute): string | null => {
    const t = r.target;
    if (t.kind !== 'eni') return null;
    const e = t.eniId ? enisById.get(t.eniId) : undefined;
    const instId = t.instanceId ?? e?.instanceId ?? null;
    const name = instId ? instName.get(instId) : undefined;
    if (name && e && e.deviceIndex > 0)
      routeNotes.push(
        `route ${r.destText} → ${e.id}: secondary ENI (device ${e.deviceIndex}) of ${name}; the scenario routes it to ${name}'s one ENI`,
      );
    return name ?? null;
  };
  for (const t of tables) {
    const name = rtName.get(t.id)!;
    const routes: unknown[] = [];
    for (const r of t.routes) {
      const what = `route ${r.destText} → ${targetText(r)} (route table ${name})`;
      if (r.dest === null) {
        skip(
          what,
          r.destText.includes(':') ? 'IPv6 is not modelled' : 'prefix-list destinations are not modelled',
          r.source,
        );
        continue;
      }
      const dest = cidrOf(r.dest, 'DestinationCidrBlock', r.source);
      if (r.target.kind === 'local') {
        if (dest.addr === vpcCidr.addr && dest.len === vpcCidr.len) routes.push({ dest: r.dest, target: 'local' });
        else if (!vpcCidrs.some((c) => c.addr === dest.addr && c.len === dest.len) || !cidrWithin(dest, vpcCidr))
          skip(what, `a local route for a CIDR the scenario does not hold`, r.source);
        // else: a block inside the widened VPC CIDR: its local route is the VPC CIDR's
        continue;
      }
      if (cidrWithin(dest, vpcCidr) && dest.len === vpcCidr.len) {
        skip(what, `the scenario's VPC CIDR ${formatCidr(vpcCidr)} always routes locally`, r.source);
        continue;
      }
      if (r.blackhole) {
        routes.push({ dest: r.dest, target: 'blackhole' });
        routeNotes.push(
          `route table ${name}: ${r.dest} → ${targetText(r)} is a blackhole (State blackhole: its target is gone, e.g. a terminated instance)`,
        );
        continue;
      }
      switch (r.target.kind) {
        case 'igw':
          routes.push({ dest: r.dest, target: 'igw' });
          if (
            inv.igws.length &&
            !inv.igws.some((g) => g.id === (r.target as { id: string }).id && g.vpcIds.includes(vpc.id))
          )
            routeNotes.push(`route table ${name}: ${r.target.id} is not attached to ${vpc.id} in the input`);
          break;
        case 'eni': {
          const inst = eniTargetOf(r);
          if (inst) routes.push({ dest: r.dest, target: `eni:${inst}` });
          else
            skip(
              what,
              `the target ${r.target.eniId ?? r.target.instanceId} is not an instance in the scenario (add its describe-instances / describe-network-interfaces output)`,
              r.source,
            );
          break;
        }
        case 'nat-gateway':
          skip(
            what,
            'the scenario has no NAT gateway element yet (issue #17); the subnet has no route there',
            r.source,
          );
          break;
        case 'unsupported':
          skip(what, `${r.target.what}s are not modelled`, r.source);
          break;
      }
    }
    routeTables[name] = routes;
  }
  if (needMain) routeTables.main = [];
  notes.push(...routeNotes);
  for (const n of inv.natGateways) {
    if (n.subnetId && !snName.has(n.subnetId)) continue;
    skip(
      `NAT gateway ${n.id} in ${n.subnetId ? snName.get(n.subnetId) : '?'} (${n.privateIp ?? '?'} ↔ ${n.publicIp ?? '?'}, ${n.state || 'state unknown'})`,
      'the scenario has no NAT gateway element yet (issue #17)',
      n.source,
    );
  }
  const filters = importFilters(inv, vpc.id, snName, instGroupIds, instances, ids, notes, skip);

  // --- the instances' own configuration
  const conntrack: Record<string, unknown> = {};
  const timeouts: Record<string, number> = {};
  const natAmi = new Set(opts.natAmi ?? []);
  const routedTo = new Set<string>();
  for (const rs of Object.values(routeTables))
    for (const r of rs as Array<{ target: string }>) if (r.target.startsWith('eni:')) routedTo.add(r.target.slice(4));
  // Host files filed under an instance's Name and under its id describe the same instance.
  for (const [id, name] of instName) {
    if (id !== name && hosts.has(id) && hosts.has(name)) {
      mergeHostConfig(hosts.get(id)!, hosts.get(name)!);
      hosts.delete(name);
    }
  }
  const usedHosts = new Set<string>();
  // Host files whose key (directory or file name) names no instance: when exactly one instance
  // looks like a NAT instance (routed to, or source/dest check off) and has no files, they are its.
  const known = new Set([...instName.keys(), ...instName.values()]);
  const unmatched = [...hosts.keys()].filter((k) => !known.has(k));
  if (unmatched.length > 0) {
    const natLike = [...instName.entries()].filter(
      ([id, n]) => (routedTo.has(n) || instances[n].sourceDestCheck === false) && !hosts.has(id) && !hosts.has(n),
    );
    if (unmatched.length === 1 && natLike.length === 1) {
      const h = hosts.get(unmatched[0])!;
      hosts.delete(unmatched[0]);
      hosts.set(natLike[0][0], h);
      notes.push(
        `host files ${h.files.join(', ')} are taken as instance ${natLike[0][1]}'s (the only instance routed to or with source/dest check off); name them after the instance to be explicit`,
      );
    }
  }
  for (const [id, name] of instName) {
    const o = instances[name];
    const key = hosts.has(id) ? id : hosts.has(name) ? name : null;
    const isAmi = natAmi.has(id) || natAmi.has(name);
    if (isAmi) {
      natAmi.delete(id);
      natAmi.delete(name);
      if (key)
        throw new InputError(
          `instance ${name}: --nat-ami and host files (${hosts.get(key)!.files.join(', ')}) given: use one`,
          '',
          name,
        );
      o.natInstance = { bootScript: 'configure-pat' };
      continue;
    }
    if (!key) {
      if (routedTo.has(name) || o.sourceDestCheck === false)
        notes.push(
          `instance ${name}: route tables send traffic to it${o.sourceDestCheck === false ? ' (source/dest check off)' : ''} but no host configuration was given, so it is a plain host (ip_forward 0, no nat table); give its iptables-save/nft and sysctl files, or --nat-ami ${name}`,
        );
      continue;
    }
    usedHosts.add(key);
    const h = hosts.get(key)!;
    const hr = resolveHost(h, primaryIface(h, opts.iface ?? null), name);
    skipped.push(...h.skipped);
    notes.push(...h.notes);
    const sys: Record<string, number> = {};
    if (hr.sysctls.ipForward !== undefined) sys[SYSCTL_IP_FORWARD] = hr.sysctls.ipForward ? 1 : 0;
    if (hr.sysctls.sendRedirectsAll !== undefined) sys[SYSCTL_SEND_REDIRECTS_ALL] = hr.sysctls.sendRedirectsAll ? 1 : 0;
    if (hr.sysctls.sendRedirectsEth0 !== undefined)
      sys[SYSCTL_SEND_REDIRECTS_ETH0] = hr.sysctls.sendRedirectsEth0 ? 1 : 0;
    Object.assign(sys, hr.sysctls.icmp ?? {});
    if (Object.keys(sys).length) o.sysctls = sys;
    if (hr.natText !== null || hr.tablesText !== '') o.iptables = hr.tablesText + (hr.natText ?? '*nat\nCOMMIT\n');
    if (h.sysctlLines.length === 0)
      notes.push(`instance ${name}: no sysctl file given: Linux defaults (ip_forward 0, send_redirects 1)`);
    const ct = hr.conntrack;
    for (const [k, v] of [
      ['max', ct.max],
      ['tcpLoose', ct.tcpLoose],
      ['checksum', ct.checksum],
      ['tcpIgnoreInvalidRst', ct.tcpIgnoreInvalidRst],
      ['tcpBeLiberal', ct.tcpBeLiberal],
      ['tcpMaxRetrans', ct.tcpMaxRetrans],
    ] as const) {
      if (v === undefined) continue;
      if (conntrack[k] !== undefined && conntrack[k] !== v)
        notes.push(
          `instance ${name}: conntrack ${k} ${String(v)} differs from another instance's ${String(conntrack[k])}; the scenario has one conntrack setting, the first is kept`,
        );
      else conntrack[k] = v;
    }
    for (const [k, v] of Object.entries(ct.timeouts)) if (timeouts[k] === undefined) timeouts[k] = v as number;
  }
  for (const n of natAmi)
    throw new InputError(
      `--nat-ami ${n}: no instance with that id or Name in the scenario (have: ${[...instName.values()].join(', ')})`,
      '',
      n,
    );
  for (const k of hosts.keys())
    if (!usedHosts.has(k))
      throw new InputError(
        `host files for '${k}' (${hosts.get(k)!.files.join(', ')}): no instance with that id or Name in the scenario (have: ${[...instName.entries()].map(([i, n]) => (i === n ? n : `${n} (${i})`)).join(', ')})`,
        hosts.get(k)!.files[0] ?? '',
        k,
      );
  if (Object.keys(timeouts).length) conntrack.timeouts = timeouts;

  // --- internet hosts
  let internet = opts.internet ?? DEFAULT_INTERNET;
  if (!opts.internet) {
    internet = internet.filter((h) => {
      const c = cidrOf(h, 'internet', 'default');
      return !cidrOverlaps(c, vpcCidr) && ![...usedPublic].some((p) => cidrContains(c, ipOf(p, 'public IP', 'input')));
    });
    notes.push(
      `internet hosts: ${internet.join(', ') || 'none'} (documentation ranges; choose your own with --internet CIDR)`,
    );
  }

  // --- compile
  const vpcName = opts.name ?? (vpc.name && /\S/.test(vpc.name) ? vpc.name : vpc.id);
  const obj: Record<string, unknown> = {
    name: vpcName,
    vpc: { cidr: formatCidr(vpcCidr) },
    routeTables,
    subnets,
    instances,
    internet: { hosts: internet },
    ...filters,
    ...(Object.keys(conntrack).length ? { conntrack } : {}),
  };
  const out = opts.outName ?? 'imported.yaml';
  let scenario: Scenario;
  try {
    scenario = compileScenarioObject(obj, out);
  } catch (e) {
    if (e instanceof InputError)
      throw new InputError(`the imported configuration is not a valid scenario: ${e.message}`, e.file, e.where);
    throw e;
  }
  scenario.source = out;
  return { scenario, yaml: importYaml(scenario, ids, notes, skipped, inv.inputs, hosts), skipped, notes };
}

type Rule = Record<string, unknown>;

/** An imported rule in the scenario's form (group ids → group names); null when its group is not in the scenario. */
function ruleObject(r: InvFilterRule, groupName: ReadonlyMap<string, string>): Rule | null {
  const o: Rule = { protocol: r.protocol };
  if (r.ports !== undefined) o.ports = r.ports;
  if (r.icmpType !== undefined) o.icmpType = r.icmpType;
  if (r.icmpCode !== undefined) o.icmpCode = r.icmpCode;
  if (r.cidr !== undefined) o.cidr = r.cidr;
  if (r.groupId !== undefined) {
    const g = groupName.get(r.groupId);
    if (g === undefined) return null;
    o.group = g;
  }
  if (r.description !== undefined) o.description = r.description;
  return o;
}

/**
 * Security groups (those of the VPC), the instances' groups (their primary ENI's) and network ACLs
 * (those associated with a subnet of the scenario) in the scenario's keys.
 */
function importFilters(
  inv: Inventory,
  vpcId: string,
  snName: ReadonlyMap<string, string>,
  instGroupIds: ReadonlyMap<string, { ids: string[]; source: string }>,
  instances: Record<string, Record<string, unknown>>,
  ids: string[],
  notes: string[],
  skip: (what: string, reason: string, source: string) => void,
): { securityGroups?: Record<string, unknown>; networkAcls?: Record<string, unknown> } {
  const out: { securityGroups?: Record<string, unknown>; networkAcls?: Record<string, unknown> } = {};
  const sgNames = new Names();
  const groupName = new Map<string, string>();
  const groups = inv.securityGroups.filter((g) => !g.vpcId || g.vpcId === vpcId);
  for (const g of inv.securityGroups)
    if (g.vpcId && g.vpcId !== vpcId)
      skip(`security group ${g.id}${g.name ? ` (${g.name})` : ''}`, `it is in VPC ${g.vpcId}`, g.source);
  for (const g of groups) groupName.set(g.id, sgNames.pick(g.name, g.id));
  if (groups.length) {
    const sgs: Record<string, unknown> = {};
    for (const g of groups) {
      const name = groupName.get(g.id)!;
      ids.push(`security group ${name} = ${g.id}`);
      const rules = (rs: InvFilterRule[], dir: string): Rule[] =>
        rs.flatMap((r) => {
          const o = ruleObject(r, groupName);
          if (o === null)
            skip(
              `security group ${name} ${dir} rule ${r.protocol}${r.ports ? ` ${r.ports}` : ''} naming group ${r.groupId}`,
              `group ${r.groupId} is not in the input (give its describe-security-groups output); the rule is left out, so what it allows is denied`,
              r.source,
            );
          return o === null ? [] : [o];
        });
      sgs[name] = {
        ...(g.description ? { description: g.description } : {}),
        inbound: rules(g.inbound, 'inbound'),
        outbound: rules(g.outbound, 'outbound'),
      };
    }
    out.securityGroups = sgs;
  }
  for (const [name, { ids: gids, source }] of instGroupIds) {
    const missing = gids.filter((id) => !groupName.has(id));
    if (missing.length) {
      skip(
        `security groups of instance ${name}: ${gids.join(', ')}`,
        `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in the input (give describe-security-groups output): the instance is imported unfiltered`,
        source,
      );
      continue;
    }
    instances[name].securityGroups = gids.map((id) => groupName.get(id)!);
  }
  const aclNames = new Names();
  const acls: Record<string, unknown> = {};
  for (const a of inv.networkAcls) {
    if (a.vpcId && a.vpcId !== vpcId) continue;
    const subnets = a.subnetIds.filter((id) => snName.has(id)).map((id) => snName.get(id)!);
    if (subnets.length === 0) {
      notes.push(
        `network ACL ${a.id}${a.name ? ` (${a.name})` : ''} is associated with no subnet of the scenario: not imported`,
      );
      continue;
    }
    const name = aclNames.pick(a.name, a.id);
    ids.push(`network ACL ${name} = ${a.id}${a.isDefault ? " (the VPC's default)" : ''}`);
    const rules = (rs: InvAclRule[]): Rule[] =>
      rs.map((r) => ({ rule: r.rule, action: r.action, ...ruleObject(r, new Map()) }));
    acls[name] = { subnets, inbound: rules(a.inbound), outbound: rules(a.outbound) };
  }
  if (Object.keys(acls).length) out.networkAcls = acls;
  return out;
}

function targetText(r: InvRoute): string {
  const t = r.target;
  switch (t.kind) {
    case 'local':
      return 'local';
    case 'igw':
      return t.id;
    case 'eni':
      return t.eniId ?? t.instanceId ?? '?';
    case 'nat-gateway':
      return t.id;
    case 'unsupported':
      return `${t.id} (${t.what})`;
  }
}

/** `what — reason [source]` lines, grouped so the list reads as a checklist. */
export function formatSkipped(skipped: Skipped[]): string[] {
  return skipped.map((s) => `${s.what} — ${s.reason} [${s.source}]`);
}

function importYaml(
  s: Scenario,
  ids: string[],
  notes: string[],
  skipped: Skipped[],
  inputs: string[],
  hosts: Map<string, HostConfig>,
): string {
  const hostFiles = [...hosts.entries()].map(([k, h]) => `${k}: ${h.files.join(', ')}`);
  const lines = [
    `imported by \`natlab scenario import\` from: ${inputs.join(', ') || '(no cloud files)'}`,
    ...(hostFiles.length ? [`host files: ${hostFiles.join('; ')}`] : []),
    '',
    'names → AWS ids:',
    ...ids.map((l) => `  ${l}`),
    ...(notes.length ? ['', 'notes:', ...notes.map((l) => `  - ${l}`)] : []),
    '',
    skipped.length
      ? `skipped (${skipped.length}; the scenario cannot express these — check they do not change the answer):`
      : 'skipped: nothing',
    ...formatSkipped(skipped).map((l) => `  - ${l}`),
  ];
  return scenarioToYaml(s, lines.map((l) => l.replace(/[\r\n]+/g, ' ')).join('\n'));
}
