// From a Scenario to the exact namespaces, links, routes, sysctls and netfilter rules of the kernel
// oracle. Pure: `planTopology` returns data (command lines, restore texts), `buildTopology` runs
// them. Layout (docs/kernel-oracle.md has the picture):
//
//   instance netns (one per instance): eth0 = private IP/subnet prefix, default via subnet .1
//   router netns (the VPC router): e<i> per ENI, `ip rule iif e<i> table <subnet's table>`,
//       one kernel table per scenario route table, source/dest check as FORWARD rules,
//       blackhole / no-route routes into a sink link whose FORWARD rule drops (and records) them,
//       mangle `TTL --ttl-inc 1` so that the hop is TTL-neutral like the AWS VPC router
//   internet netns: igw link to the router; holds the internet hosts' addresses
//   IGW: stateless 1:1 EIP mapping applied in user space at the internet edge (igw.ts)
import type { Scenario, Instance, Route } from '../spec/scenario.ts';
import { DEFAULT_TCP_MAX_RETRANS, INSTANCE_MTU } from '../spec/scenario.ts';
import { TIMEOUT_SYSCTLS } from '../spec/timeouts.ts';
import type { ConntrackTimeouts } from '../spec/timeouts.ts';
import { ip4 } from '../spec/conntrack-format.ts';
import {
  routerNetns,
  internetNetns,
  instanceNetns,
  routerIfname,
  INSTANCE_IF,
  IGW_IF,
  LINK_ROUTER_ADDR,
  LINK_INTERNET_ADDR,
  macText,
  SIDE_ROUTER,
  SIDE_INSTANCE,
  SIDE_INTERNET,
  IGW_INDEX,
  sgNetns,
} from './names.ts';
import {
  SG_INSTANCE_IF,
  SG_ROUTER_IF,
  routerAclRules,
  sgConntrackSysctls,
  sgNamespaceBatch,
  sgNamespaceRules,
} from './aws-filters.ts';

export const ROLE_ROUTER = 'router';
export const ROLE_INTERNET = 'internet';
export const ROLE_INSTANCE = 'instance';
export const ROLE_SG = 'sg';
export type NetnsRole = 'router' | 'internet' | 'instance' | 'sg';

/** MTU of every link (AWS ENIs inside a VPC use jumbo frames). */
export const LINK_MTU = INSTANCE_MTU;
/** Kernel table for traffic arriving from the internet (the VPC's local routes). */
export const TABLE_IGW_INGRESS = 99;
export const TABLE_BASE = 100;
/** Sink link inside the router: blackhole routes and unroutable packets are forwarded into it and dropped. */
export const SINK_BLACKHOLE_IF = 'nlbh';
export const SINK_NOROUTE_IF = 'nlnr';
/** Addresses of a `local` range that no ENI holds go to this sink (a veth pair of its own). */
export const SINK_NOHOST_IF = 'nlnh';
const SINK_NOHOST_PEER_IF = 'nlnhp';
/** The fast path's fence link inside the router (no addresses, no routes: see hub-script.ts). */
export const FENCE_TX_IF = 'nlfa';
export const FENCE_RX_IF = 'nlfb';
const FENCE_INDEX_TX = 0xfffa;
const FENCE_INDEX_RX = 0xfff9;
const SINK_NOHOST_HOP = '169.254.78.4';
const SINK_INDEX_NH = 0xfffc;
const SINK_INDEX_NHP = 0xfffb;
const SINK_BLACKHOLE_HOP = '169.254.78.2';
const SINK_NOROUTE_HOP = '169.254.78.3';
const SINK_INDEX_BH = 0xfffe;
const SINK_INDEX_NR = 0xfffd;

/** xt_recent lists the engine reads (and flushes) after every packet to say why and how. */
export const RECENT_SDCHECK_SRC = 'nl_sdsrc';
export const RECENT_SDCHECK_DST = 'nl_sddst';
export const RECENT_BLACKHOLE = 'nl_blackhole';
export const RECENT_NOROUTE = 'nl_noroute';
export const RECENT_NOHOST = 'nl_nohost';
export const RECENT_CT_NEW = 'nl_ct_new';
export const RECENT_CT_ESTABLISHED = 'nl_ct_est';
export const RECENT_CT_RELATED = 'nl_ct_rel';
export const RECENT_CT_INVALID = 'nl_ct_inv';
export const RECENT_LOCAL_IN = 'nl_local';
export const RECENT_LOCAL_OUT_DROPPED = 'nl_localout';
/** A packet routed to a stopped instance (timeline stopInstance). */
export const RECENT_STOPPED = 'nl_stopped';
/** A TCP reset the instance sent from another address than its own: a filter REJECT --reject-with tcp-reset. */
export const RECENT_FILTER_RST = 'nl_filter_rst';
/** A destination unreachable the instance sent (a filter REJECT; time exceeded has its own type). */
export const RECENT_FILTER_UNREACH = 'nl_filter_unr';
/** The packet mark (one bit) natlab sets on what passed a filtered instance's filter INPUT (security table). */
const DELIVERED_MARK = '0x40000000';
/** Evidence (not xt_recent): the instance's ICMP rate limits refused an error (Icmp OutRateLimitGlobal / OutRateLimitHost grew). */
export const EVIDENCE_ICMP_RL_GLOBAL = 'icmp_ratelimit_global';
export const EVIDENCE_ICMP_RL_HOST = 'icmp_ratelimit_host';

export interface NetnsSpec {
  name: string;
  role: NetnsRole;
  /** Instance index, or -1. */
  instance: number;
  /** Instance whose kernel forwards (NAT instance or ip_forward=1): part of the engine. */
  forwarder: boolean;
  /** Arguments of the agent's `setup` mode (sysctls, RX checksum offload off). */
  setup: string[];
  /** Lines for `ip -n <name> -batch -`. */
  ipBatch: string[];
  /** The scenario's own iptables-save text (restored with flush), or null. */
  iptablesScenario: string | null;
  /** natlab's rules, restored with --noflush after the scenario's. */
  iptablesOwn: string;
  /** Interface the agent binds ('-' = stats only). */
  agentIf: string;
  /** Whether the agent reports the frames it sees (else send-only). */
  capture: boolean;
}

export interface TopologyPlan {
  runId: string;
  router: string;
  internet: string;
  instances: string[];
  /** In creation order: router first (the links are created from it). */
  netns: NetnsSpec[];
  /** Lines for `ip -n <router> -batch -` creating every veth pair (peers straight into their netns). */
  linkBatch: string[];
  /**
   * Then, per security-group namespace, the lines for `ip -n <it> -batch -` creating its link to
   * the instance (the router's e<i> already reaches it).
   */
  sgLinkBatches: Array<{ netns: string; lines: string[] }>;
  /** Per instance: its security-group namespace, or null (an ENI without security groups). */
  sg: (string | null)[];
  /** MACs the engine writes into injected Ethernet headers. */
  macs: { instance: string[]; routerEni: string[]; internet: string; routerIgw: string };
  /** Things this kernel cannot reproduce exactly, said up front. */
  warnings: string[];
}

export function isForwarder(inst: Instance): boolean {
  return inst.nat !== null || inst.sysctls.ipForward;
}

function cidrText(addr: number, len: number): string {
  return `${ip4(addr)}/${len}`;
}

/** The VPC router's address in a subnet: the network address + 1 (AWS reserves it for the router). */
export function subnetGateway(s: Scenario, inst: Instance): number {
  return (s.subnets[inst.subnet].cidr.addr + 1) >>> 0;
}

function sysctl(path: string, v: number | boolean, optional = false): string {
  return `${optional ? '?' : ''}sysctl:${path}=${typeof v === 'boolean' ? (v ? 1 : 0) : v}`;
}

function baseSysctls(ifaces: string[]): string[] {
  const a = [
    sysctl('net/ipv6/conf/all/disable_ipv6', 1),
    sysctl('net/ipv6/conf/default/disable_ipv6', 1),
    sysctl('net/ipv4/conf/all/rp_filter', 0),
    sysctl('net/ipv4/conf/default/rp_filter', 0),
    sysctl('net/ipv4/conf/all/log_martians', 0),
  ];
  for (const i of ifaces) {
    a.push(sysctl(`net/ipv6/conf/${i}/disable_ipv6`, 1), sysctl(`net/ipv4/conf/${i}/rp_filter`, 0), `rxoff:${i}`);
  }
  return a;
}

function conntrackSysctls(s: Scenario): string[] {
  const c = s.conntrack;
  const a = [
    sysctl('net/netfilter/nf_conntrack_tcp_loose', c.tcpLoose),
    sysctl('net/netfilter/nf_conntrack_checksum', c.checksum),
    sysctl('net/netfilter/nf_conntrack_tcp_be_liberal', c.tcpBeLiberal === true),
    sysctl('net/netfilter/nf_conntrack_tcp_max_retrans', c.tcpMaxRetrans ?? DEFAULT_TCP_MAX_RETRANS),
    sysctl('net/netfilter/nf_conntrack_tcp_ignore_invalid_rst', c.tcpIgnoreInvalidRst === true),
    sysctl('net/netfilter/nf_conntrack_acct', 0),
  ];
  for (const k of Object.keys(TIMEOUT_SYSCTLS) as Array<keyof ConntrackTimeouts>) {
    a.push(sysctl(`net/netfilter/${TIMEOUT_SYSCTLS[k]}`, c.timeouts[k]));
  }
  // Read-only outside the initial namespace on most kernels: tried, and reported if refused.
  a.push(sysctl('net/netfilter/nf_conntrack_max', c.max, true));
  return a;
}

function restore(tables: Record<string, string[]>): string {
  let t = '';
  for (const [name, lines] of Object.entries(tables)) {
    if (lines.length === 0) continue;
    t += `*${name}\n${lines.join('\n')}\nCOMMIT\n`;
  }
  return t;
}

function recent(name: string): string {
  return `-m recent --name ${name} --set --rsource`;
}

/**
 * The router's `ip route replace` line of a non-local route in kernel table `table` (null: local or
 * a NAT gateway, which the kernel engine does not run). A route to a stopped instance's ENI is a
 * blackhole while it is stopped (AWS Route.State; spec/timeline.ts).
 */
export function routeLine(s: Scenario, r: Route, table: number): string | null {
  const dest = cidrText(r.dest.addr, r.dest.len);
  if (r.target === 'igw') return `route replace ${dest} via ${LINK_INTERNET_ADDR} dev ${IGW_IF} onlink table ${table}`;
  if (r.target === 'eni' && !s.instances[r.instance].stopped) {
    const target = s.instances[r.instance];
    return `route replace ${dest} via ${ip4(target.privateIp)} dev ${routerIfname(r.instance)} onlink table ${table}`;
  }
  if (r.target === 'eni' || r.target === 'blackhole')
    return `route replace ${dest} via ${SINK_BLACKHOLE_HOP} dev ${SINK_BLACKHOLE_IF} onlink table ${table}`;
  return null;
}

/** Every non-local route line of the router (routeLine), per scenario route table. */
export function routeLines(s: Scenario): string[] {
  const out: string[] = [];
  s.routeTables.forEach((rt, t) => {
    for (const r of rt.routes) {
      const l = routeLine(s, r, TABLE_BASE + t);
      if (l) out.push(l);
    }
  });
  return out;
}

/** The router's chain FORWARD jumps to for stopped instances (one rule per stopped instance). */
export const STOPPED_CHAIN = 'NL_STOPPED';
/** The chain that drops and records (RECENT_STOPPED) what reaches a stopped instance. */
export const STOPPED_DROP_CHAIN = 'NL_STOPPED_DROP';

/** The STOPPED_CHAIN rule of stopped instance i (for `iptables -A` / `-D` in the router). */
export function stoppedRule(i: number): string[] {
  return [STOPPED_CHAIN, '-o', routerIfname(i), '-j', STOPPED_DROP_CHAIN];
}

export function planTopology(s: Scenario, runId: string): TopologyPlan {
  const router = routerNetns(runId);
  const internet = internetNetns(runId);
  const instances = s.instances.map((_, i) => instanceNetns(runId, i));
  const sg = s.instances.map((inst, i) => (inst.security ? sgNetns(runId, i) : null));
  const warnings: string[] = [];
  const macs = {
    instance: s.instances.map((_, i) => macText(SIDE_INSTANCE, i)),
    routerEni: s.instances.map((_, i) => macText(SIDE_ROUTER, i)),
    internet: macText(SIDE_INTERNET, IGW_INDEX),
    routerIgw: macText(SIDE_ROUTER, IGW_INDEX),
  };

  // ---- links (created from the router namespace; nothing ever exists in the host's) ----
  const linkBatch: string[] = [];
  const sgLinkBatches: Array<{ netns: string; lines: string[] }> = [];
  s.instances.forEach((_, i) => {
    const g = sg[i];
    if (g === null) {
      linkBatch.push(`link add ${routerIfname(i)} type veth peer name ${INSTANCE_IF} netns ${instances[i]}`);
      return;
    }
    // A filtered ENI: instance eth0 <-> ei [security-group namespace] er <-> e<i> router.
    linkBatch.push(`link add ${routerIfname(i)} type veth peer name ${SG_ROUTER_IF} netns ${g}`);
    sgLinkBatches.push({
      netns: g,
      lines: [`link add ${SG_INSTANCE_IF} type veth peer name ${INSTANCE_IF} netns ${instances[i]}`],
    });
  });
  linkBatch.push(`link add ${IGW_IF} type veth peer name ${IGW_IF} netns ${internet}`);
  linkBatch.push(`link add ${SINK_BLACKHOLE_IF} type veth peer name ${SINK_NOROUTE_IF}`);
  linkBatch.push(`link add ${SINK_NOHOST_IF} type veth peer name ${SINK_NOHOST_PEER_IF}`);
  linkBatch.push(`link add ${FENCE_TX_IF} type veth peer name ${FENCE_RX_IF}`);

  // ---- router ----
  const rIfs = [
    ...s.instances.map((_, i) => routerIfname(i)),
    IGW_IF,
    SINK_BLACKHOLE_IF,
    SINK_NOROUTE_IF,
    SINK_NOHOST_IF,
    SINK_NOHOST_PEER_IF,
    FENCE_TX_IF,
    FENCE_RX_IF,
  ];
  const rSetup = [
    ...baseSysctls(rIfs),
    sysctl('net/ipv4/ip_forward', 1),
    sysctl('net/ipv4/conf/all/send_redirects', 0),
    sysctl('net/ipv4/conf/default/send_redirects', 0),
    sysctl('net/ipv4/conf/all/accept_redirects', 0),
  ];
  for (const i of rIfs) rSetup.push(sysctl(`net/ipv4/conf/${i}/send_redirects`, 0));
  s.instances.forEach((_, i) => {
    rSetup.push(
      sysctl(`net/ipv4/conf/${routerIfname(i)}/proxy_arp`, 1),
      sysctl(`net/ipv4/neigh/${routerIfname(i)}/proxy_delay`, 0),
    );
  });
  const rb: string[] = ['link set lo up'];
  const gwAdded = new Set<string>();
  s.instances.forEach((inst, i) => {
    const e = routerIfname(i);
    rb.push(`link set ${e} address ${macs.routerEni[i]} mtu ${LINK_MTU} up`);
    const gw = ip4(subnetGateway(s, inst));
    rb.push(`addr add ${gw}/32 dev ${e}`);
    gwAdded.add(gw);
    rb.push(`neigh replace ${ip4(inst.privateIp)} lladdr ${macs.instance[i]} dev ${e} nud permanent`);
  });
  rb.push(`link set ${IGW_IF} address ${macs.routerIgw} mtu ${LINK_MTU} up`);
  rb.push(`addr add ${LINK_ROUTER_ADDR}/30 dev ${IGW_IF}`);
  rb.push(`neigh replace ${LINK_INTERNET_ADDR} lladdr ${macs.internet} dev ${IGW_IF} nud permanent`);
  rb.push(`link set ${SINK_BLACKHOLE_IF} address ${macText(SIDE_ROUTER, SINK_INDEX_BH)} mtu ${LINK_MTU} up`);
  rb.push(`link set ${SINK_NOROUTE_IF} address ${macText(SIDE_ROUTER, SINK_INDEX_NR)} mtu ${LINK_MTU} up`);
  rb.push(
    `neigh replace ${SINK_BLACKHOLE_HOP} lladdr ${macText(SIDE_ROUTER, SINK_INDEX_NR)} dev ${SINK_BLACKHOLE_IF} nud permanent`,
  );
  rb.push(
    `neigh replace ${SINK_NOROUTE_HOP} lladdr ${macText(SIDE_ROUTER, SINK_INDEX_BH)} dev ${SINK_NOROUTE_IF} nud permanent`,
  );
  rb.push(`link set ${SINK_NOHOST_IF} address ${macText(SIDE_ROUTER, SINK_INDEX_NH)} mtu ${LINK_MTU} up`);
  rb.push(`link set ${SINK_NOHOST_PEER_IF} address ${macText(SIDE_ROUTER, SINK_INDEX_NHP)} mtu ${LINK_MTU} up`);
  rb.push(
    `neigh replace ${SINK_NOHOST_HOP} lladdr ${macText(SIDE_ROUTER, SINK_INDEX_NHP)} dev ${SINK_NOHOST_IF} nud permanent`,
  );
  rb.push(`link set ${FENCE_TX_IF} address ${macText(SIDE_ROUTER, FENCE_INDEX_TX)} up`);
  rb.push(`link set ${FENCE_RX_IF} address ${macText(SIDE_ROUTER, FENCE_INDEX_RX)} up`);

  const noRoute = (table: number): string =>
    `route add default via ${SINK_NOROUTE_HOP} dev ${SINK_NOROUTE_IF} onlink metric 4294967295 table ${table}`;
  const hostRoutes = (table: number, dest: { addr: number; len: number } | null): string[] => {
    const out: string[] = [];
    s.instances.forEach((inst, i) => {
      if (dest) {
        const mask = dest.len === 0 ? 0 : (0xffffffff << (32 - dest.len)) >>> 0;
        if ((inst.privateIp & mask) >>> 0 !== dest.addr >>> 0) return;
      }
      out.push(`route replace ${ip4(inst.privateIp)}/32 dev ${routerIfname(i)} scope link table ${table}`);
    });
    return out;
  };
  s.routeTables.forEach((rt, t) => {
    const table = TABLE_BASE + t;
    rb.push(noRoute(table));
    for (const r of rt.routes) {
      const dest = cidrText(r.dest.addr, r.dest.len);
      switch (r.target) {
        case 'local':
          // Addresses of the local range that no ENI holds go nowhere (AWS drops them).
          rb.push(`route replace ${dest} via ${SINK_NOHOST_HOP} dev ${SINK_NOHOST_IF} onlink table ${table}`);
          rb.push(...hostRoutes(table, r.dest));
          break;
        default: {
          const line = routeLine(s, r, table);
          if (line) rb.push(line);
        }
      }
    }
  });
  // From the internet: only the VPC's local routes (no edge association in scenarios).
  rb.push(noRoute(TABLE_IGW_INGRESS));
  rb.push(...hostRoutes(TABLE_IGW_INGRESS, s.vpcCidr));
  s.instances.forEach((inst, i) => {
    rb.push(`rule add iif ${routerIfname(i)} table ${TABLE_BASE + s.subnets[inst.subnet].routeTable} pref ${1000 + i}`);
  });
  rb.push(`rule add iif ${IGW_IF} table ${TABLE_IGW_INGRESS} pref 999`);

  // FORWARD in the contract's order (docs/semantics.md §2, §11): every sender's source/dest check,
  // the route's drops, the network ACLs where the packet crosses a subnet boundary, then every
  // receiver's destination check — a packet its sender's ENI refuses never reaches the next ENI,
  // so no receiver listed earlier may claim the drop (campaign seed 880002 run 7). A filtered
  // ENI's checks are in its own namespace (its security groups come after them there).
  const acl = routerAclRules(s, routerIfname, IGW_IF);
  // Stopped instances (scenario timelines): FORWARD jumps to STOPPED_CHAIN after the ACLs and before
  // the receivers' destination checks (the model's order: arrival at a stopped instance, then its
  // ENI's checks); timeline events add and remove its per-instance rules (stoppedRule). The
  // recording chain exists from the start: its xt_recent list must exist when the evidence
  // readers open the lists.
  const rFilter = [
    ...acl.declare,
    `:${STOPPED_CHAIN} - [0:0]`,
    `:${STOPPED_DROP_CHAIN} - [0:0]`,
    '-A INPUT -j DROP',
    '-A OUTPUT -j DROP',
    `-A ${STOPPED_DROP_CHAIN} ${recent(RECENT_STOPPED)} -j DROP`,
  ];
  const sdDst: string[] = [];
  s.instances.forEach((inst, i) => {
    if (!inst.sourceDestCheck || sg[i] !== null) return;
    const e = routerIfname(i);
    const a = `${ip4(inst.privateIp)}/32`;
    rFilter.push(`-A FORWARD -i ${e} ! -s ${a} ${recent(RECENT_SDCHECK_SRC)} -j DROP`);
    sdDst.push(`-A FORWARD -o ${e} ! -d ${a} ${recent(RECENT_SDCHECK_DST)} -j DROP`);
  });
  rFilter.push(`-A FORWARD -o ${SINK_BLACKHOLE_IF} ${recent(RECENT_BLACKHOLE)} -j DROP`);
  rFilter.push(`-A FORWARD -o ${SINK_NOROUTE_IF} ${recent(RECENT_NOROUTE)} -j DROP`);
  rFilter.push(`-A FORWARD -o ${SINK_NOHOST_IF} ${recent(RECENT_NOHOST)} -j DROP`);
  rFilter.push(...acl.forward, `-A FORWARD -j ${STOPPED_CHAIN}`, ...sdDst, ...acl.chains);
  const routerSpec: NetnsSpec = {
    name: router,
    role: ROLE_ROUTER,
    instance: -1,
    forwarder: false,
    setup: rSetup,
    ipBatch: rb,
    iptablesScenario: null,
    iptablesOwn: restore({ mangle: ['-A PREROUTING -j TTL --ttl-inc 1'], filter: rFilter }),
    agentIf: '-',
    capture: false,
  };

  // ---- internet ----
  const nb = [
    'link set lo up',
    `link set ${IGW_IF} address ${macs.internet} mtu ${LINK_MTU} up`,
    `addr add ${LINK_INTERNET_ADDR}/30 dev ${IGW_IF}`,
    `route add default via ${LINK_ROUTER_ADDR} dev ${IGW_IF} onlink`,
    `neigh replace ${LINK_ROUTER_ADDR} lladdr ${macs.routerIgw} dev ${IGW_IF} nud permanent`,
  ];
  for (const h of s.internetHosts) nb.push(`route add local ${cidrText(h.addr, h.len)} dev lo table local`);
  const internetSpec: NetnsSpec = {
    name: internet,
    role: ROLE_INTERNET,
    instance: -1,
    forwarder: false,
    setup: baseSysctls([IGW_IF]),
    ipBatch: nb,
    iptablesScenario: null,
    // The internet's hosts never answer: what arrives is captured, nothing is sent by the stack.
    iptablesOwn: restore({ raw: ['-A PREROUTING -j DROP', '-A OUTPUT -j DROP'] }),
    agentIf: IGW_IF,
    capture: true,
  };

  // ---- instances ----
  const instSpecs: NetnsSpec[] = s.instances.map((inst, i) => {
    const fwd = isForwarder(inst);
    const sub = s.subnets[inst.subnet];
    const gw = ip4(subnetGateway(s, inst));
    const setup = [
      ...baseSysctls([INSTANCE_IF]),
      sysctl('net/ipv4/ip_default_ttl', 64),
      sysctl('net/ipv4/ip_forward', inst.sysctls.ipForward),
      sysctl('net/ipv4/conf/all/send_redirects', inst.sysctls.sendRedirectsAll),
      sysctl(`net/ipv4/conf/${INSTANCE_IF}/send_redirects`, inst.sysctls.sendRedirectsEth0),
      // ICMP error rate limits (docs/semantics.md §6): per namespace since 6.12.
      sysctl('net/ipv4/icmp_ratelimit', inst.sysctls.icmpRatelimit),
      sysctl('net/ipv4/icmp_ratemask', inst.sysctls.icmpRatemask),
      sysctl('net/ipv4/icmp_msgs_per_sec', inst.sysctls.icmpMsgsPerSec),
      sysctl('net/ipv4/icmp_msgs_burst', inst.sysctls.icmpMsgsBurst),
    ];
    // With a filter table, the stack's own answers carry the mark of the packet they answer
    // (DELIVERED_MARK once it passed filter INPUT), a REJECT's answer in INPUT does not: natlab's
    // OUTPUT guard tells them apart by it (below). The contract has no marks, so nothing else sees it.
    if (inst.filter) setup.push(sysctl('net/ipv4/fwmark_reflect', 1));
    if (inst.nat) setup.push(...conntrackSysctls(s));
    const b = [
      'link set lo up',
      `link set ${INSTANCE_IF} address ${macs.instance[i]} mtu ${LINK_MTU}`,
      `addr add ${ip4(inst.privateIp)}/${sub.cidr.len} dev ${INSTANCE_IF}`,
      `link set ${INSTANCE_IF} up`,
      `route add default via ${gw} dev ${INSTANCE_IF} onlink`,
      `neigh replace ${gw} lladdr ${macs.routerEni[i]} dev ${INSTANCE_IF} nud permanent`,
    ];
    // Same-subnet neighbours answer through the VPC router (as in a VPC, where the router
    // answers ARP for the whole subnet); no ARP round trips to time.
    s.instances.forEach((o, j) => {
      if (j !== i && o.subnet === inst.subnet) {
        b.push(`neigh replace ${ip4(o.privateIp)} lladdr ${macs.routerEni[i]} dev ${INSTANCE_IF} nud permanent`);
      }
    });
    // Every instance is a real Linux host: what reaches its stack is recorded (mangle INPUT), its
    // conntrack classification too when it has a nat table.
    const mangle: string[] = [];
    if (inst.nat) {
      mangle.push(
        `-A PREROUTING -m conntrack --ctstate NEW ${recent(RECENT_CT_NEW)}`,
        `-A PREROUTING -m conntrack --ctstate ESTABLISHED ${recent(RECENT_CT_ESTABLISHED)}`,
        `-A PREROUTING -m conntrack --ctstate RELATED ${recent(RECENT_CT_RELATED)}`,
        `-A PREROUTING -m conntrack --ctstate INVALID ${recent(RECENT_CT_INVALID)}`,
      );
    }
    // What reaches the stack: recorded in mangle INPUT — or, when the scenario has a filter table
    // (whose INPUT rules may still drop it), in the security table's INPUT, after filter INPUT.
    const security: string[] = [];
    // A REJECT's tcp-reset leaves the stack with its TCP checksum to be completed by the NIC
    // (CHECKSUM_PARTIAL), which a veth never does: xt_CHECKSUM completes it, as the ENI would.
    if (inst.filter)
      mangle.push(
        '-A POSTROUTING -p tcp -j CHECKSUM --checksum-fill',
        `-A OUTPUT -p tcp --tcp-flags RST RST ! -s ${ip4(inst.privateIp)} ${recent(RECENT_FILTER_RST)}`,
        `-A OUTPUT -p tcp --tcp-flags RST RST -m conntrack --ctstate RELATED ${recent(RECENT_FILTER_RST)}`,
        `-A OUTPUT -p icmp --icmp-type destination-unreachable ${recent(RECENT_FILTER_UNREACH)}`,
      );
    (inst.filter ? security : mangle).push(`-A INPUT ${recent(RECENT_LOCAL_IN)}`);
    if (inst.filter) security.push(`-A INPUT -j MARK --set-xmark ${DELIVERED_MARK}/${DELIVERED_MARK}`);
    // The host's own stack answering what was delivered to it (RST, echo reply, port unreachable)
    // is not a result of the VPC path: it is stopped here (after conntrack saw it, so the table
    // is what a real instance would show). ICMP errors generated while forwarding (or refusing to
    // forward) are results and leave.
    const filter = [
      '-A OUTPUT -p icmp --icmp-type time-exceeded -j ACCEPT',
      '-A OUTPUT -p icmp --icmp-type fragmentation-needed -j ACCEPT',
      '-A OUTPUT -p icmp --icmp-type network-unreachable -j ACCEPT',
      '-A OUTPUT -p icmp --icmp-type host-unreachable -j ACCEPT',
      '-A OUTPUT -p icmp --icmp-type redirect -j ACCEPT',
      '-A OUTPUT -p icmp --icmp-type parameter-problem -j ACCEPT',
      `-A OUTPUT ${recent(RECENT_LOCAL_OUT_DROPPED)} -j DROP`,
    ];
    // With a scenario filter table, natlab's guard runs first in a chain of its own (jumped to
    // from the top of OUTPUT; what it does not drop RETURNs to the scenario's OUTPUT rules), and
    // lets through what the scenario's REJECT rules send: a tcp-reset from a forwarded packet
    // has its destination as source (never the instance's own stack), and every REJECT reset is
    // RELATED (nf_ct_attach; the stack's own reset is ESTABLISHED), the ICMP codes REJECT adds
    // (net/host/admin prohibited), and a REJECT's port/protocol unreachable: of a forwarded packet
    // (it quotes another destination), or of a packet to the instance that filter INPUT refused —
    // the stack's own unreachable answers a packet that passed filter INPUT and got DELIVERED_MARK
    // in the security table, which fwmark_reflect copies to the answer.
    const own = inst.filter
      ? restore({
          mangle,
          security,
          filter: [
            `:${OWN_OUTPUT_CHAIN} - [0:0]`,
            `-I OUTPUT 1 -j ${OWN_OUTPUT_CHAIN}`,
            ...filter
              .slice(0, -1)
              .map((l) => l.replace(/^-A OUTPUT (.*) -j ACCEPT$/, `-A ${OWN_OUTPUT_CHAIN} $1 -j RETURN`)),
            `-A ${OWN_OUTPUT_CHAIN} -p tcp ! -s ${ip4(inst.privateIp)} -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p tcp -m conntrack --ctstate RELATED -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type network-prohibited -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type host-prohibited -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type communication-prohibited -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type port-unreachable -m u32 ! --u32 ${quotedDst(inst.privateIp)} -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type protocol-unreachable -m u32 ! --u32 ${quotedDst(inst.privateIp)} -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type port-unreachable -m mark ! --mark ${DELIVERED_MARK}/${DELIVERED_MARK} -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} -p icmp --icmp-type protocol-unreachable -m mark ! --mark ${DELIVERED_MARK}/${DELIVERED_MARK} -j RETURN`,
            `-A ${OWN_OUTPUT_CHAIN} ${recent(RECENT_LOCAL_OUT_DROPPED)} -j DROP`,
          ],
        })
      : restore({ mangle, filter });
    return {
      name: instances[i],
      role: ROLE_INSTANCE,
      instance: i,
      forwarder: fwd,
      setup,
      ipBatch: b,
      iptablesScenario: inst.nat
        ? nftRestorable(
            ensureTrailingNewline(inst.nat.text) +
              (inst.mangle ? ensureTrailingNewline(inst.mangle.text) : '') +
              (inst.filter ? ensureTrailingNewline(inst.filter.text) : ''),
          )
        : null,
      iptablesOwn: own,
      agentIf: INSTANCE_IF,
      capture: true,
    };
  });

  for (const inst of s.instances) {
    if (inst.nat && !/^\*nat\b/m.test(inst.nat.text)) {
      warnings.push(
        `instance ${inst.name}: its nat table text has no '*nat' section; iptables-restore will load it as given`,
      );
    }
  }
  // ---- security-group namespaces (one per filtered ENI, on its link) ----
  const sgSpecs: NetnsSpec[] = [];
  s.instances.forEach((inst, i) => {
    const g = sg[i];
    if (g === null || !inst.security) return;
    const setup = [
      ...baseSysctls([SG_INSTANCE_IF, SG_ROUTER_IF]),
      sysctl('net/ipv4/ip_forward', 1),
      sysctl('net/ipv4/conf/all/send_redirects', 0),
      sysctl('net/ipv4/conf/default/send_redirects', 0),
      sysctl('net/ipv4/conf/all/accept_redirects', 0),
      sysctl(`net/ipv4/conf/${SG_INSTANCE_IF}/send_redirects`, 0),
      sysctl(`net/ipv4/conf/${SG_ROUTER_IF}/send_redirects`, 0),
      // ARP from the instance for addresses of its subnet that no neighbour entry covers: answered
      // here, as the router's side of the ENI answers them without this namespace.
      sysctl(`net/ipv4/conf/${SG_INSTANCE_IF}/proxy_arp`, 1),
      sysctl(`net/ipv4/neigh/${SG_INSTANCE_IF}/proxy_delay`, 0),
      ...sgConntrackSysctls(inst.security.tracking).map(([k, v]) => sysctl(`net/netfilter/${k}`, v)),
    ];
    sgSpecs.push({
      name: g,
      role: ROLE_SG,
      instance: i,
      forwarder: false,
      setup,
      ipBatch: sgNamespaceBatch(
        ip4(inst.privateIp),
        ip4(subnetGateway(s, inst)),
        { instance: macs.instance[i], routerEni: macs.routerEni[i] },
        LINK_MTU,
      ),
      iptablesScenario: null,
      iptablesOwn: sgNamespaceRules(s, i),
      agentIf: '-',
      capture: false,
    });
  });

  return {
    runId,
    router,
    internet,
    instances,
    // Security-group namespaces before the instances: the links to the instances are theirs.
    netns: [routerSpec, internetSpec, ...sgSpecs, ...instSpecs],
    linkBatch,
    sgLinkBatches,
    sg,
    macs,
    warnings,
  };
}

/**
 * xt_u32 test "the ICMP error quotes a packet addressed to `addr`": outer header 20 bytes (icmp_send
 * writes no options), ICMP header 8, the quoted destination at 16 — the stack's own answers to
 * what was delivered to it quote its own address; a REJECT of a forwarded packet does not.
 */
function quotedDst(addr: number): string {
  return `0x2c=0x${(addr >>> 0).toString(16)}`;
}

/** natlab's guard chain in an instance's filter table when the scenario brings its own filter rules. */
export const OWN_OUTPUT_CHAIN = 'NATLAB_OWN_OUT';

/**
 * The scenario's tables' text as iptables-nft restores it. iptables v1.8.9 (nf_tables) refuses a
 * negated zero-length prefix, `! -s 0.0.0.0/0` / `! -d 0.0.0.0/0` ("RULE_APPEND failed (Invalid
 * argument)"; iptables-legacy takes it): a match that never matches (ip_packet_match: the
 * address under mask 0 is always 0.0.0.0). It is restored as the iprange match of the whole
 * address space, negated — the same never-matching test, a rule in the same place with its own
 * counters (docs/semantics.md §13, "The kernel engine restores the table").
 */
export function nftRestorable(text: string): string {
  return text
    .replace(/(^| )! -s 0\.0\.0\.0\/0(?= )/gm, '$1-m iprange ! --src-range 0.0.0.0-255.255.255.255')
    .replace(/(^| )! -d 0\.0\.0\.0\/0(?= )/gm, '$1-m iprange ! --dst-range 0.0.0.0-255.255.255.255');
}

function ensureTrailingNewline(t: string): string {
  return t.endsWith('\n') ? t : `${t}\n`;
}
