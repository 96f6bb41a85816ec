// The `natGateways:` section of a scenario file → NatGateway[] (src/spec/scenario.ts), and the
// checks that tie NAT gateway addresses to the rest of the VPC (subnets, instances, Elastic IPs,
// internet hosts). Cold path; called by load.ts between instances and routes (routes may name
// `nat-gateway:NAME`). Format: docs/scenarios.md "NAT gateways".

import type { Cidr, Instance, NatGateway, NatGatewayPortSelection, Subnet } from '../spec/scenario.ts';
import {
  NATGW_DEFAULT_CONNECTION_LIMIT,
  NATGW_DEFAULT_IDLE_TIMEOUT_S,
  NATGW_MAX_ADDRESSES,
  NATGW_PORT_COUNT,
} from '../spec/nat-gateway.ts';
import { cidrContains, cidrLast, formatCidr, formatIpv4 } from '../packet/addr.ts';

export const NAT_GATEWAY_KEYS = [
  'description',
  'subnet',
  'addresses',
  'connectionLimit',
  'idleTimeout',
  'portSelection',
] as const;
export const NAT_GATEWAY_ADDRESS_KEYS = ['privateIp', 'elasticIp'] as const;
export const NATGW_PORT_SELECTIONS: readonly NatGatewayPortSelection[] = ['random', 'preserve'];
/** Idle timeout bounds, seconds (the conntrack timeouts' range). */
const IDLE_MIN = 1;
const IDLE_MAX = 2147483;

type Path = Array<string | number>;
/** What this file needs of load.ts's validation context (its Ctx: errors with file lines). */
export interface Ctx {
  obj(path: Path, v: unknown, required: boolean): Record<string, unknown> | null;
  keys(path: Path, v: Record<string, unknown>, allowed: readonly string[]): void;
  str(path: Path, v: unknown, required: boolean): string | null;
  int(path: Path, v: unknown, dflt: number, min: number, max: number): number;
  name(path: Path, n: string, what: string): void;
  addr(path: Path, v: unknown, required: boolean): number | null;
  err(path: Path, msg: string): void;
}

export interface NatGatewayContext {
  vpcCidr: Cidr | null;
  subnets: readonly Subnet[];
  /** Every subnet name in the file (also the ones that failed their own checks). */
  allSubnetNames: readonly string[];
  instances: readonly Instance[];
  internetHosts: readonly Cidr[];
  /** File index of each internet host (for messages). */
  hostIndex: readonly number[];
}

/** Compiles `natGateways` (a mapping NAME → gateway); problems go to ctx. */
export function compileNatGateways(ctx: Ctx, raw: unknown, x: NatGatewayContext): NatGateway[] {
  const out: NatGateway[] = [];
  const top = ctx.obj(['natGateways'], raw, false);
  if (!top) return out;
  const privTaken = new Map<number, string>();
  for (const i of x.instances) if (i.privateIp) privTaken.set(i.privateIp, `the private IP of instance ${i.name}`);
  const eipTaken = new Map<number, string>();
  for (const i of x.instances)
    if (i.elasticIp !== null) eipTaken.set(i.elasticIp, `the Elastic IP of instance ${i.name}`);
  for (const [name, v] of Object.entries(top)) {
    const p = ['natGateways', name];
    ctx.name(p, name, 'NAT gateway');
    const o = ctx.obj(p, v, true);
    const g: NatGateway = {
      name,
      subnet: -1,
      addresses: [],
      connectionLimit: NATGW_DEFAULT_CONNECTION_LIMIT,
      idleTimeout: NATGW_DEFAULT_IDLE_TIMEOUT_S,
      portSelection: 'random',
    };
    out.push(g);
    if (!o) continue;
    ctx.keys(p, o, NAT_GATEWAY_KEYS);
    ctx.str([...p, 'description'], o.description, false);
    const sn = ctx.str([...p, 'subnet'], o.subnet, true);
    let subnet: Subnet | null = null;
    if (sn !== null) {
      const idx = x.subnets.findIndex((s) => s.name === sn);
      if (idx >= 0) {
        g.subnet = idx;
        subnet = x.subnets[idx];
      } else if (!x.allSubnetNames.includes(sn))
        ctx.err([...p, 'subnet'], `subnet '${sn}' does not exist; defined: ${x.allSubnetNames.join(', ') || 'none'}`);
    }
    g.connectionLimit = ctx.int(
      [...p, 'connectionLimit'],
      o.connectionLimit,
      NATGW_DEFAULT_CONNECTION_LIMIT,
      1,
      NATGW_PORT_COUNT,
    );
    g.idleTimeout = ctx.int([...p, 'idleTimeout'], o.idleTimeout, NATGW_DEFAULT_IDLE_TIMEOUT_S, IDLE_MIN, IDLE_MAX);
    const ps = ctx.str([...p, 'portSelection'], o.portSelection, false);
    if (ps !== null) {
      if ((NATGW_PORT_SELECTIONS as readonly string[]).includes(ps)) g.portSelection = ps as NatGatewayPortSelection;
      else ctx.err([...p, 'portSelection'], `'${ps}' is not one of ${NATGW_PORT_SELECTIONS.join(', ')}`);
    }
    const list = o.addresses;
    if (list === undefined) {
      ctx.err(
        [...p, 'addresses'],
        'missing (required): the primary { privateIp, elasticIp } and up to 7 secondary ones',
      );
      continue;
    }
    if (!Array.isArray(list) || list.length === 0) {
      ctx.err([...p, 'addresses'], 'expected a non-empty list of { privateIp, elasticIp }');
      continue;
    }
    if (list.length > NATGW_MAX_ADDRESSES) {
      ctx.err(
        [...p, 'addresses'],
        `${list.length} addresses: a NAT gateway has one primary and at most ${NATGW_MAX_ADDRESSES - 1} secondary IPv4 addresses`,
      );
      continue;
    }
    list.forEach((a, k) => {
      const ap = [...p, 'addresses', k];
      const ao = ctx.obj(ap, a, true);
      if (!ao) return;
      ctx.keys(ap, ao, NAT_GATEWAY_ADDRESS_KEYS);
      const ip = ctx.addr([...ap, 'privateIp'], ao.privateIp, true);
      if (ip === null) return;
      if (subnet && !privateIpProblem(ctx, [...ap, 'privateIp'], ip, subnet)) {
        const dup = privTaken.get(ip);
        if (dup !== undefined) ctx.err([...ap, 'privateIp'], `${formatIpv4(ip)} is already ${dup}`);
        else privTaken.set(ip, `a private IP of NAT gateway ${name}`);
      }
      let eip: number | null = null;
      if (ao.elasticIp !== undefined && ao.elasticIp !== null) {
        eip = ctx.addr([...ap, 'elasticIp'], ao.elasticIp, true);
        if (eip !== null) {
          const hostIdx = x.internetHosts.findIndex((h) => cidrContains(h, eip as number));
          const dup = eipTaken.get(eip);
          if (x.vpcCidr && cidrContains(x.vpcCidr, eip)) {
            ctx.err([...ap, 'elasticIp'], `${formatIpv4(eip)} is inside the VPC CIDR ${formatCidr(x.vpcCidr)}`);
            eip = null;
          } else if (dup !== undefined) {
            ctx.err([...ap, 'elasticIp'], `${formatIpv4(eip)} is already ${dup}`);
            eip = null;
          } else if (hostIdx >= 0) {
            ctx.err(
              [...ap, 'elasticIp'],
              `${formatIpv4(eip)} is inside internet.hosts[${x.hostIndex[hostIdx]}] (${formatCidr(x.internetHosts[hostIdx])}); the IGW could not tell them apart`,
            );
            eip = null;
          } else eipTaken.set(eip, `an Elastic IP of NAT gateway ${name}`);
        }
      }
      g.addresses.push({ privateIp: ip, elasticIp: eip });
    });
  }
  return out;
}

/** True (and an error) when `ip` cannot be an ENI address in `subnet`. */
function privateIpProblem(ctx: Ctx, path: Array<string | number>, ip: number, subnet: Subnet): boolean {
  const c = subnet.cidr;
  const off = ip - c.addr;
  const where = `subnet ${subnet.name} (${formatCidr(c)})`;
  if (!cidrContains(c, ip)) ctx.err(path, `${formatIpv4(ip)} is outside ${where}`);
  else if (off === 0) ctx.err(path, `${formatIpv4(ip)} is the network address of ${where}`);
  else if (ip === cidrLast(c)) ctx.err(path, `${formatIpv4(ip)} is the broadcast address of ${where}, reserved by AWS`);
  else if (off <= 3)
    ctx.err(path, `${formatIpv4(ip)} is reserved by AWS in ${where}: +1 VPC router, +2 DNS, +3 future use`);
  else return false;
  return true;
}

/** The scenario file form of the gateways (scenarioToObject). */
export function natGatewaysToObject(gws: readonly NatGateway[], subnets: readonly Subnet[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const g of gws) {
    o[g.name] = {
      subnet: subnets[g.subnet].name,
      addresses: g.addresses.map((a) =>
        a.elasticIp === null
          ? { privateIp: formatIpv4(a.privateIp) }
          : { privateIp: formatIpv4(a.privateIp), elasticIp: formatIpv4(a.elasticIp) },
      ),
      connectionLimit: g.connectionLimit,
      idleTimeout: g.idleTimeout,
      portSelection: g.portSelection,
    };
  }
  return o;
}
