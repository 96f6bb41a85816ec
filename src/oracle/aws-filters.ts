// Security groups and network ACLs (docs/semantics.md §11) as real netfilter rules for the kernel
// oracle. Pure: returns iptables-restore lines; topology.ts places them, engine.ts loads them.
// docs/kernel-oracle.md ("Security groups and network ACLs") justifies the mapping:
//
//   - A filtered ENI gets a namespace of its own on its link (natlab-<id>-s<i>, between the
//     instance's eth0 and the router's e<i>): a transparent L3 hop (TTL-neutral like the router)
//     whose conntrack table is the ENI's security-group tracking — separate from the instance's
//     own conntrack and from every other ENI's, with the ENI's timeouts as its sysctls. The
//     filter FORWARD chain accepts packets of a tracked flow (an entry confirmed before this
//     packet, either direction), else evaluates the groups' allow rules; untracked flows (both
//     directions open to 0.0.0.0/0) are `CT --notrack` in raw, so they are judged per packet.
//   - Network ACLs are stateless chains in the router namespace's FORWARD, entered where a packet
//     crosses a subnet boundary (numbered order, allow = RETURN, deny and the `*` rule = DROP).
//
// Port and ICMP type matches (xt_tcpudp, xt_icmp) drop a packet whose header they cannot read
// (hotdrop): every rule chain first sends such packets (non-first fragments, TCP shorter than 20
// bytes, UDP/ICMP shorter than 8) to a twin chain holding only the rules that need no header —
// as the contract says: "only rules for all ports (or any ICMP type) match it".
import type { Scenario } from '../spec/scenario.ts';
import {
  ACL_ALLOW,
  FILTER_PROTO_ALL,
  ICMP_ANY,
  SG_ICMP_TIMEOUT,
  SG_OTHER_TIMEOUT,
  SG_TCP_UNREPLIED_TIMEOUT,
  type AclRule,
  type FilterMatch,
  type SgRule,
  type SgTracking,
} from '../spec/aws-filters.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { ip4 } from '../spec/conntrack-format.ts';

/** xt_recent lists (evidence, read and flushed after every packet). */
export const RECENT_SG_DENY = 'nl_sgdeny';
export const RECENT_SG_ALLOWANCE = 'nl_sgallow';
/** A packet the ENI's conntrack called INVALID (judged by the rules alone; E11). */
export const RECENT_SG_INVALID = 'nl_sginv';
export const RECENT_NACL_DENY = 'nl_nacl';

/** Interfaces of an ENI's security-group namespace: towards the instance, towards the router. */
export const SG_INSTANCE_IF = 'ei';
export const SG_ROUTER_IF = 'er';
/** Policy routing tables inside the security-group namespace. */
const SG_TABLE_OUT = 10;
const SG_TABLE_IN = 11;

const DIR_IN = 0;
const DIR_OUT = 1;

/** Reads 4 bytes at the L4 header + off; fails (no hotdrop) when the packet is shorter. */
function l4Readable(off: number): string {
  return `-m u32 ! --u32 "0>>22&0x3C@${off}=0:0xFFFFFFFF"`;
}

/** Header guards at the top of a rule chain: unreadable headers go to the no-header twin. */
function guards(chain: string, twin: string): string[] {
  return [
    `-A ${chain} -f -g ${twin}`,
    `-A ${chain} -p tcp ${l4Readable(16)} -g ${twin}`,
    `-A ${chain} -p udp ${l4Readable(4)} -g ${twin}`,
    `-A ${chain} -p icmp ${l4Readable(4)} -g ${twin}`,
  ];
}

function cidrArg(flag: '-s' | '-d', addr: number, len: number): string {
  return len === 0 ? '' : ` ${flag} ${ip4(addr)}/${len}`;
}

/** Whether the rule reads ports or the ICMP type (needs a readable header). */
function needsHeader(m: FilterMatch): boolean {
  if (m.proto === PROTO_TCP || m.proto === PROTO_UDP) return !(m.portLo === 0 && m.portHi === 65535);
  return m.proto === PROTO_ICMP && m.icmpType !== ICMP_ANY;
}

/** iptables match arguments of a rule's protocol / destination ports / ICMP type and code. */
export function matchArgs(m: FilterMatch): string {
  if (m.proto === FILTER_PROTO_ALL) return '';
  if (m.proto === PROTO_TCP || m.proto === PROTO_UDP) {
    const p = m.proto === PROTO_TCP ? 'tcp' : 'udp';
    if (m.portLo === 0 && m.portHi === 65535) return ` -p ${p}`;
    return ` -p ${p} --dport ${m.portLo === m.portHi ? m.portLo : `${m.portLo}:${m.portHi}`}`;
  }
  if (m.proto === PROTO_ICMP) {
    if (m.icmpType === ICMP_ANY) return ' -p icmp';
    return ` -p icmp --icmp-type ${m.icmpType}${m.icmpCode === ICMP_ANY ? '' : `/${m.icmpCode}`}`;
  }
  return ` -p ${m.proto}`;
}

/** A rule chain and its no-header twin: `lines(withHeader)` gives the rules of each. */
function ruleChain(chain: string, lines: (header: boolean) => string[], tail: string): string[] {
  const twin = `${chain}N`;
  return [
    ...guards(chain, twin),
    ...lines(true).map((l) => `-A ${chain}${l}`),
    `-A ${chain} ${tail}`,
    ...lines(false).map((l) => `-A ${twin}${l}`),
    `-A ${twin} ${tail}`,
  ];
}

// --- network ACLs (router namespace) -------------------------------------------------------------

const NACL_DROP = 'NLNACL';

function aclChain(k: number, dir: number): string {
  return `NA${k}${dir === DIR_IN ? 'I' : 'O'}`;
}

function aclRuleLines(rules: readonly AclRule[], dir: number, header: boolean): string[] {
  const out: string[] = [];
  for (const r of rules) {
    if (!header && needsHeader(r)) continue;
    const remote = cidrArg(dir === DIR_IN ? '-s' : '-d', r.cidr.addr, r.cidr.len);
    out.push(`${remote}${matchArgs(r)} -j ${r.action === ACL_ALLOW ? 'RETURN' : NACL_DROP}`);
  }
  return out;
}

/** The ACL entry chains (declared and filled): what a mid-run change replaces. */
export function aclRuleChains(s: Scenario): { declare: string[]; rules: string[] } {
  const declare: string[] = [];
  const rules: string[] = [];
  (s.networkAcls ?? []).forEach((acl, k) => {
    for (const dir of [DIR_IN, DIR_OUT]) {
      const c = aclChain(k, dir);
      declare.push(`:${c} - [0:0]`, `:${c}N - [0:0]`);
      const list = dir === DIR_IN ? acl.inbound : acl.outbound;
      rules.push(...ruleChain(c, (h) => aclRuleLines(list, dir, h), `-j ${NACL_DROP}`));
    }
  });
  return { declare, rules };
}

/**
 * The router's ACL lines: chain declarations, the entry chains, and the FORWARD dispatch (to be
 * placed after the sink drops and before the destination checks). `ifOf(i)` names instance i's
 * router-side link; `igw` the internet link.
 */
export function routerAclRules(
  s: Scenario,
  ifOf: (i: number) => string,
  igw: string,
): { declare: string[]; chains: string[]; forward: string[] } {
  const acls = s.networkAcls ?? [];
  if (acls.every((a) => a.subnets.length === 0)) return { declare: [], chains: [], forward: [] };
  const aclOf = s.subnets.map(() => -1);
  acls.forEach((a, k) => {
    for (const sn of a.subnets) aclOf[sn] = k;
  });
  const { declare, rules } = aclRuleChains(s);
  declare.push(`:${NACL_DROP} - [0:0]`);
  rules.push(`-A ${NACL_DROP} -m recent --name ${RECENT_NACL_DENY} --set --rsource -j DROP`);
  const forward: string[] = [];
  const insts = s.instances;
  // Leaving a subnet (towards the IGW or an ENI of another subnet), then entering one.
  insts.forEach((a, i) => {
    const k = aclOf[a.subnet];
    if (k < 0) return;
    const outs = [igw, ...insts.flatMap((b, j) => (b.subnet !== a.subnet ? [ifOf(j)] : []))];
    for (const o of outs) forward.push(`-A FORWARD -i ${ifOf(i)} -o ${o} -j ${aclChain(k, DIR_OUT)}`);
  });
  insts.forEach((b, j) => {
    const k = aclOf[b.subnet];
    if (k < 0) return;
    const ins = [igw, ...insts.flatMap((a, i) => (a.subnet !== b.subnet ? [ifOf(i)] : []))];
    for (const n of ins) forward.push(`-A FORWARD -i ${n} -o ${ifOf(j)} -j ${aclChain(k, DIR_IN)}`);
  });
  return { declare, chains: rules, forward };
}

// --- security groups (one namespace per filtered ENI) -------------------------------------------

const SG_CHAIN_OUT = 'SGO';
const SG_CHAIN_IN = 'SGI';
const SG_OK = 'NLSGOK';
const SG_DENY = 'NLSGDENY';
const UNTRACKED_OUT = 'NLUO';
const UNTRACKED_IN = 'NLUI';

/** The ENI's rules of direction `dir`, every group's in order. */
function eniRules(s: Scenario, i: number, dir: number): SgRule[] {
  const sec = s.instances[i].security;
  if (!sec) return [];
  const groups = s.securityGroups ?? [];
  return sec.groups.flatMap((g) => (dir === DIR_IN ? groups[g].inbound : groups[g].outbound));
}

/** Remote-address arguments of a rule: its CIDR, or one per private IP of the referenced group's ENIs. */
function remoteArgs(s: Scenario, r: SgRule, dir: number): string[] {
  const flag = dir === DIR_IN ? '-s' : '-d';
  if (r.cidr) return [cidrArg(flag, r.cidr.addr, r.cidr.len)];
  return s.instances.filter((x) => x.security?.groups.includes(r.group)).map((x) => ` ${flag} ${ip4(x.privateIp)}/32`);
}

function sgRuleLines(s: Scenario, i: number, dir: number, header: boolean): string[] {
  const out: string[] = [];
  for (const r of eniRules(s, i, dir)) {
    if (!header && needsHeader(r)) continue;
    for (const remote of remoteArgs(s, r, dir)) out.push(`${remote}${matchArgs(r)} -j ${SG_OK}`);
  }
  return out;
}

const isOpenToAll = (r: SgRule): boolean => r.cidr !== null && r.cidr.len === 0;

/**
 * AWS's untracked flows (docs/semantics.md §11, model sg.ts `untracked`): a TCP/UDP packet of
 * direction `dir` is not tracked when a 0.0.0.0/0 rule of its direction allows it and the other
 * direction has a 0.0.0.0/0 rule for all ports of its protocol, or when a 0.0.0.0/0 rule of the
 * other direction allows the reversed packet (its source port) and its own direction has that
 * all-ports rule. Lines of the raw chain (after header guards that RETURN).
 */
function untrackedLines(s: Scenario, i: number, dir: number): string[] {
  const out: string[] = [];
  const mine = eniRules(s, i, dir).filter(isOpenToAll);
  const other = eniRules(s, i, 1 - dir).filter(isOpenToAll);
  for (const [proto, name] of [
    [PROTO_TCP, 'tcp'],
    [PROTO_UDP, 'udp'],
  ] as const) {
    const covers = (r: SgRule): boolean => r.proto === FILTER_PROTO_ALL || r.proto === proto;
    const open = (rs: SgRule[]): boolean =>
      rs.some((r) => r.proto === FILTER_PROTO_ALL || (r.proto === proto && r.portLo === 0 && r.portHi === 65535));
    const ports = (r: SgRule, flag: string): string =>
      r.proto === FILTER_PROTO_ALL || (r.portLo === 0 && r.portHi === 65535)
        ? ''
        : ` ${flag} ${r.portLo === r.portHi ? r.portLo : `${r.portLo}:${r.portHi}`}`;
    if (open(other)) for (const r of mine.filter(covers)) out.push(` -p ${name}${ports(r, '--dport')} -j CT --notrack`);
    if (open(mine)) for (const r of other.filter(covers)) out.push(` -p ${name}${ports(r, '--sport')} -j CT --notrack`);
  }
  return out;
}

/** The ENI namespace's rule chains (raw untracked, filter allow rules): what a mid-run change replaces. */
export function sgRuleChains(s: Scenario, i: number): { raw: string[]; filter: string[] } {
  const raw: string[] = [];
  for (const [dir, c] of [
    [DIR_OUT, UNTRACKED_OUT],
    [DIR_IN, UNTRACKED_IN],
  ] as const) {
    raw.push(
      `:${c} - [0:0]`,
      `-A ${c} -f -j RETURN`,
      `-A ${c} -p tcp ${l4Readable(16)} -j RETURN`,
      `-A ${c} -p udp ${l4Readable(4)} -j RETURN`,
      ...untrackedLines(s, i, dir).map((l) => `-A ${c}${l}`),
    );
  }
  const filter: string[] = [];
  for (const [dir, c] of [
    [DIR_OUT, SG_CHAIN_OUT],
    [DIR_IN, SG_CHAIN_IN],
  ] as const) {
    filter.push(`:${c} - [0:0]`, `:${c}N - [0:0]`);
    filter.push(...ruleChain(c, (h) => sgRuleLines(s, i, dir, h), `-j ${SG_DENY}`));
  }
  // Declarations first (iptables-restore wants every chain declared before its rules).
  const decl = (l: string[]): string[] => [
    ...l.filter((x) => x.startsWith(':')),
    ...l.filter((x) => !x.startsWith(':')),
  ];
  return { raw: decl(raw), filter: decl(filter) };
}

/** The whole iptables-restore text of ENI i's security-group namespace. */
export function sgNamespaceRules(s: Scenario, i: number): string {
  const inst = s.instances[i];
  const sec = inst.security;
  if (!sec) throw new Error(`instance ${inst.name} has no security groups`);
  const chains = sgRuleChains(s, i);
  const ip = `${ip4(inst.privateIp)}/32`;
  const recent = (n: string): string => `-m recent --name ${n} --set --rsource`;
  const filter = [
    ':INPUT DROP [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT DROP [0:0]',
    `:${SG_OK} - [0:0]`,
    `:${SG_DENY} - [0:0]`,
    ...chains.filter.filter((l) => l.startsWith(':')),
  ];
  // The ENI's source/dest check comes before its security groups (docs/semantics.md §2, §11).
  if (inst.sourceDestCheck) {
    filter.push(`-A FORWARD -i ${SG_INSTANCE_IF} ! -s ${ip} ${recent('nl_sdsrc')} -j DROP`);
    filter.push(`-A FORWARD -i ${SG_ROUTER_IF} ! -d ${ip} ${recent('nl_sddst')} -j DROP`);
  }
  filter.push(
    `-A FORWARD -m conntrack --ctstate INVALID ${recent(RECENT_SG_INVALID)}`,
    // A tracked flow: an entry that existed before this packet (confirmed), either direction;
    // not RELATED (ICMP errors are judged by the rules: docs/semantics.md §11).
    '-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED --ctstatus CONFIRMED -j ACCEPT',
    `-A FORWARD -i ${SG_INSTANCE_IF} -j ${SG_CHAIN_OUT}`,
    `-A FORWARD -i ${SG_ROUTER_IF} -j ${SG_CHAIN_IN}`,
    '-A FORWARD -j DROP',
    // Allowed by a rule: a packet starting a tracked flow needs room in the ENI's allowance.
    `-A ${SG_OK} -m conntrack --ctstate NEW -m connlimit --connlimit-above ${sec.tracking.allowance} --connlimit-mask 0 ${recent(RECENT_SG_ALLOWANCE)} -j DROP`,
    `-A ${SG_OK} -j ACCEPT`,
    `-A ${SG_DENY} ${recent(RECENT_SG_DENY)} -j DROP`,
    ...chains.filter.filter((l) => !l.startsWith(':')),
  );
  const raw = [
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...chains.raw.filter((l) => l.startsWith(':')),
    `-A PREROUTING -i ${SG_INSTANCE_IF} -j ${UNTRACKED_OUT}`,
    `-A PREROUTING -i ${SG_ROUTER_IF} -j ${UNTRACKED_IN}`,
    ...chains.raw.filter((l) => !l.startsWith(':')),
  ];
  const mangle = [':PREROUTING ACCEPT [0:0]', '-A PREROUTING -j TTL --ttl-inc 1'];
  return table('raw', raw) + table('mangle', mangle) + table('filter', filter);
}

function table(name: string, lines: string[]): string {
  return `*${name}\n${lines.join('\n')}\nCOMMIT\n`;
}

/** iptables-restore --noflush text replacing ENI i's rule chains (declared chains are flushed). */
export function sgUpdateText(s: Scenario, i: number): string {
  const c = sgRuleChains(s, i);
  return table('raw', c.raw) + table('filter', c.filter);
}

/** iptables-restore --noflush text replacing the router's ACL entry chains. */
export function aclUpdateText(s: Scenario): string {
  const c = aclRuleChains(s);
  return c.declare.length ? table('filter', [...c.declare, ...c.rules]) : '';
}

/**
 * Conntrack sysctls of an ENI's namespace: its table is the ENI's security-group tracking, so its
 * timeouts are the ENI's (docs/semantics.md §11; E11/E12 in docs/kernel-differences.md say what
 * Linux's TCP and UDP trackers do differently). Loose pickup and liberal windows: any TCP segment
 * of a flow is part of it, as for AWS; checksums are not the security group's business.
 */
export function sgConntrackSysctls(t: SgTracking): Array<[string, number]> {
  const est = t.tcpEstablished;
  const a: Array<[string, number]> = [
    ['nf_conntrack_tcp_loose', 1],
    ['nf_conntrack_tcp_be_liberal', 1],
    ['nf_conntrack_tcp_ignore_invalid_rst', 1],
    ['nf_conntrack_checksum', 0],
    ['nf_conntrack_acct', 0],
    ['nf_conntrack_tcp_timeout_syn_sent', SG_TCP_UNREPLIED_TIMEOUT],
    ['nf_conntrack_udp_timeout', t.udp],
    ['nf_conntrack_udp_timeout_stream', t.udpStream],
    ['nf_conntrack_icmp_timeout', SG_ICMP_TIMEOUT],
    ['nf_conntrack_generic_timeout', SG_OTHER_TIMEOUT],
  ];
  for (const st of [
    'syn_recv',
    'established',
    'fin_wait',
    'close_wait',
    'last_ack',
    'time_wait',
    'close',
    'max_retrans',
    'unacknowledged',
  ])
    a.push([`nf_conntrack_tcp_timeout_${st}`, est]);
  return a;
}

/** `ip -batch` lines of ENI i's namespace (after its links exist): a transparent L3 hop. */
export function sgNamespaceBatch(
  instIp: string,
  gw: string,
  macs: { instance: string; routerEni: string },
  mtu: number,
): string[] {
  return [
    'link set lo up',
    // Towards the instance it looks like the router's side of the ENI, towards the router like the
    // instance: neither end sees a difference in its Ethernet addresses.
    `link set ${SG_INSTANCE_IF} address ${macs.routerEni} mtu ${mtu} up`,
    `link set ${SG_ROUTER_IF} address ${macs.instance} mtu ${mtu} up`,
    `neigh replace ${instIp} lladdr ${macs.instance} dev ${SG_INSTANCE_IF} nud permanent`,
    `neigh replace ${gw} lladdr ${macs.routerEni} dev ${SG_ROUTER_IF} nud permanent`,
    `route add default via ${gw} dev ${SG_ROUTER_IF} onlink table ${SG_TABLE_OUT}`,
    `route add default via ${instIp} dev ${SG_INSTANCE_IF} onlink table ${SG_TABLE_IN}`,
    `rule add iif ${SG_INSTANCE_IF} table ${SG_TABLE_OUT} pref 100`,
    `rule add iif ${SG_ROUTER_IF} table ${SG_TABLE_IN} pref 101`,
  ];
}
