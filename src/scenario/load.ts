// Scenario files (YAML or JSON) → the validated, compiled Scenario of src/spec/scenario.ts.
// Every problem is reported as an InputError naming the file, the line, the key path inside the
// file (`instances.nat.privateIp`) and what is wrong; several problems are collected per load.
// Cold path. The format is documented in docs/scenarios.md — keep the two in step.

import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { InputError, boundMessage } from '../spec/errors.ts';
import type {
  Cidr,
  ConntrackSettings,
  Instance,
  NatTable,
  Route,
  RouteTable,
  Scenario,
  Subnet,
  Sysctls,
} from '../spec/scenario.ts';
import { DEFAULT_TCP_MAX_RETRANS } from '../spec/scenario.ts';
import { DEFAULT_CONNTRACK_MAX, DEFAULT_TIMEOUTS, type ConntrackTimeouts } from '../spec/timeouts.ts';
import { cidrContains, cidrLast, cidrOverlaps, formatCidr, formatIpv4 } from '../packet/addr.ts';
import { cidrWithin, nonUnicastReason, readCidr, readIpv4 } from './addr-text.ts';
import { ErrorList } from './error-list.ts';
import { configurePatTable, parseNatTable } from './iptables.ts';
import { compileNatGateways } from './nat-gateway.ts';
import { compileAwsFilters } from './security-groups.ts';
import { suggest } from './suggest.ts';

export { suggest };
import { parseMangleTable, takeMangleSection } from './iptables-mangle.ts';
import { parseFilterTable, takeFilterSection } from './iptables-filter.ts';
import { compileTimeline } from './timeline.ts';

export const TOP_KEYS = [
  'name',
  'description',
  'vpc',
  'routeTables',
  'subnets',
  'instances',
  'internet',
  'conntrack',
  'natGateways',
  'securityGroups',
  'networkAcls',
  'timeline',
] as const;
export const VPC_KEYS = ['cidr'] as const;
export const ROUTE_KEYS = ['dest', 'target'] as const;
export const SUBNET_KEYS = ['cidr', 'routeTable'] as const;
export const INSTANCE_KEYS = [
  'description',
  'subnet',
  'privateIp',
  'elasticIp',
  'sourceDestCheck',
  'natInstance',
  'sysctls',
  'iptables',
  'securityGroups',
  'connectionTracking',
] as const;
export const NAT_INSTANCE_KEYS = ['bootScript', 'vpcCidrFromMetadata'] as const;
export const INTERNET_KEYS = ['hosts'] as const;
export const CONNTRACK_KEYS = [
  'max',
  'tcpLoose',
  'checksum',
  'tcpIgnoreInvalidRst',
  'tcpBeLiberal',
  'tcpMaxRetrans',
  'timeouts',
] as const;
export const SYSCTL_IP_FORWARD = 'net.ipv4.ip_forward';
export const SYSCTL_SEND_REDIRECTS_ALL = 'net.ipv4.conf.all.send_redirects';
export const SYSCTL_SEND_REDIRECTS_ETH0 = 'net.ipv4.conf.eth0.send_redirects';
export const SYSCTL_ICMP_RATELIMIT = 'net.ipv4.icmp_ratelimit';
export const SYSCTL_ICMP_RATEMASK = 'net.ipv4.icmp_ratemask';
export const SYSCTL_ICMP_MSGS_PER_SEC = 'net.ipv4.icmp_msgs_per_sec';
export const SYSCTL_ICMP_MSGS_BURST = 'net.ipv4.icmp_msgs_burst';
export const SYSCTL_KEYS = [
  SYSCTL_IP_FORWARD,
  SYSCTL_SEND_REDIRECTS_ALL,
  SYSCTL_SEND_REDIRECTS_ETH0,
  SYSCTL_ICMP_RATELIMIT,
  SYSCTL_ICMP_RATEMASK,
  SYSCTL_ICMP_MSGS_PER_SEC,
  SYSCTL_ICMP_MSGS_BURST,
] as const;
/** The ICMP rate-limit sysctls' ranges: ms (an int of jiffies in Linux) and plain ints. */
export const ICMP_RATELIMIT_MAX_MS = 2147483;
export const ICMP_RATEMASK_MAX = 0x7fffffff;
export const ICMP_MSGS_MAX = 0x7fffffff;
export const BOOT_SCRIPTS = ['configure-pat'] as const;

/** Names of subnets, route tables and instances. */
export const NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
/** VPC prefix bounds. AWS allows /16../28; natlab allows larger VPCs (capture replay needs them). */
export const VPC_LEN_MIN = 1;
export const VPC_LEN_MAX = 28;
/** AWS subnets are at most /28. */
export const SUBNET_LEN_MAX = 28;
export const CONNTRACK_MAX_MIN = 1;
export const CONNTRACK_MAX_MAX = 1 << 26;
/** Timeouts in seconds: Linux stores them in jiffies in an int (INT_MAX / HZ=1000). */
export const TIMEOUT_MIN = 1;
export const TIMEOUT_MAX = 2147483;

/** Non-unicast blocks no host, route destination excepted, may use. */
const NON_UNICAST: Cidr[] = [
  { addr: 0x00000000, len: 8 },
  { addr: 0x7f000000, len: 8 },
  { addr: 0xe0000000, len: 3 },
];

/** Plain-instance sysctl defaults (Linux): no forwarding, redirects on. */
export function defaultSysctls(): Sysctls {
  return { ipForward: false, sendRedirectsAll: true, sendRedirectsEth0: true, ...defaultIcmpSysctls() };
}

/** Linux's ICMP rate-limit defaults (icmp_sk_init, sysctl_net_ipv4.c; what 6.18 shows in a new namespace). */
export function defaultIcmpSysctls(): Pick<
  Sysctls,
  'icmpRatelimit' | 'icmpRatemask' | 'icmpMsgsPerSec' | 'icmpMsgsBurst'
> {
  return { icmpRatelimit: 1000, icmpRatemask: 0x1818, icmpMsgsPerSec: 1000, icmpMsgsBurst: 50 };
}

export function defaultConntrack(): ConntrackSettings {
  return { max: DEFAULT_CONNTRACK_MAX, timeouts: { ...DEFAULT_TIMEOUTS }, tcpLoose: true, checksum: true };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string '${v}'`;
  return `${typeof v} ${String(v)}`;
}

function joinPath(path: Array<string | number>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

/** Validation context: error list plus line lookup in the parsed YAML document. */
export class Ctx {
  constructor(
    readonly el: ErrorList,
    readonly doc: Document | null,
    readonly lc: LineCounter | null,
    /** File lines of internet.hosts[i] when a big host list was read line by line (extractHostList). */
    readonly hostLines: readonly number[] | null = null,
  ) {}

  node(path: Array<string | number>): YamlNode | null {
    if (!this.doc) return null;
    try {
      const n = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
      return (n as YamlNode | undefined) ?? null;
    } catch {
      return null;
    }
  }

  line(path: Array<string | number>): number {
    if (
      this.hostLines &&
      path.length === 3 &&
      path[0] === 'internet' &&
      path[1] === 'hosts' &&
      typeof path[2] === 'number'
    )
      return this.hostLines[path[2]] ?? 0;
    for (let p = path; ; p = p.slice(0, -1)) {
      const n = this.node(p);
      if (n?.range && this.lc) return this.lc.linePos(n.range[0]).line;
      if (p.length === 0) return 0;
    }
  }

  /** Line of a mapping key (for unknown-key errors). */
  keyLine(path: Array<string | number>, key: string): number {
    const n = this.node(path);
    if (n && isMap(n) && this.lc) {
      for (const pair of n.items) {
        const k = pair.key as YamlNode | null;
        if (k && isScalar(k) && String(k.value) === key && k.range) return this.lc.linePos(k.range[0]).line;
      }
    }
    return this.line(path);
  }

  err(path: Array<string | number>, msg: string): void {
    this.el.add(joinPath(path), msg, this.line(path));
  }

  keys(path: Array<string | number>, v: Obj, allowed: readonly string[]): void {
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) {
        this.el.add(
          joinPath([...path, k]),
          `unknown key '${k}'${suggest(k, allowed)}; allowed: ${allowed.join(', ')}`,
          this.keyLine(path, k),
        );
      }
    }
  }

  obj(path: Array<string | number>, v: unknown, required: boolean): Obj | null {
    if (v === undefined) {
      if (required) this.err(path, 'missing (required)');
      return null;
    }
    if (!isObj(v)) {
      this.err(path, `expected a mapping, got ${typeName(v)}`);
      return null;
    }
    return v;
  }

  str(path: Array<string | number>, v: unknown, required: boolean): string | null {
    if (v === undefined || (v === null && !required)) {
      if (required) this.err(path, 'missing (required)');
      return null;
    }
    if (typeof v !== 'string') {
      this.err(path, `expected a string, got ${typeName(v)}`);
      return null;
    }
    return v;
  }

  bool(path: Array<string | number>, v: unknown, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (v === true || v === 1) return true;
    if (v === false || v === 0) return false;
    this.err(path, `expected true or false (or 1/0), got ${typeName(v)}`);
    return dflt;
  }

  int(path: Array<string | number>, v: unknown, dflt: number, min: number, max: number): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.err(path, `expected an integer, got ${typeName(v)}`);
      return dflt;
    }
    if (v < min || v > max) {
      this.err(path, `${v} is out of range ${min}..${max}`);
      return dflt;
    }
    return v;
  }

  name(path: Array<string | number>, n: string, what: string): void {
    if (!NAME_RE.test(n))
      this.err(
        path,
        `${what} name '${n}' must start with a letter and contain only letters, digits, '_', '.', '-' (at most 63)`,
      );
  }

  addr(path: Array<string | number>, v: unknown, required: boolean): number | null {
    const s = this.str(path, v, required);
    if (s === null) return null;
    const a = readIpv4(s.trim());
    if (a === null) {
      this.err(path, `'${s}' is not an IPv4 address (dotted quad expected)`);
      return null;
    }
    const why = nonUnicastReason(a);
    if (why) {
      this.err(path, `${s} ${why}; a host needs a unicast address`);
      return null;
    }
    return a;
  }

  /** A CIDR; a bare address is /32 when allowBare. Host bits must be zero. */
  cidr(path: Array<string | number>, v: unknown, required: boolean, allowBare = false): Cidr | null {
    const s = this.str(path, v, required);
    if (s === null) return null;
    const c = readCidr(s.trim());
    if (typeof c === 'string') {
      this.err(path, c);
      return null;
    }
    if (c.bare && !allowBare) {
      this.err(path, `'${s}' has no prefix length (write ${s}/32 or the network, e.g. ${s}/24)`);
      return null;
    }
    if (c.written !== c.cidr.addr) {
      this.err(path, `${s} has host bits set (the network is ${formatCidr(c.cidr)})`);
      return null;
    }
    return c.cidr;
  }
}

function parseYamlDocument(text: string, file: string): { doc: Document; lc: LineCounter; data: unknown } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const el = new ErrorList(file);
    for (const e of doc.errors)
      el.add('', `${kindOf(file)} syntax: ${e.message.split('\n')[0]}`, e.linePos ? e.linePos[0].line : 0);
    el.throwIfAny();
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new InputError(`${file}: ${boundMessage((e as Error).message)}`, file, '');
  }
  return { doc, lc, data };
}

function kindOf(file: string): string {
  return extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML';
}

/** Read and compile a scenario file (.yaml/.yml/.json; JSON is parsed as the YAML subset it is). */
export function loadScenario(path: string): Scenario {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      `${path}: cannot read scenario file (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : (code ?? (e as Error).message)})`,
      path,
      '',
    );
  }
  const notText = notTextReason(bytes);
  if (notText) throw new InputError(`${path}: ${notText}`, path, '');
  return parseScenario(bytes.toString('utf8'), path);
}

/** Capture file magics (pcap µs/ns either byte order, pcapng): a capture given as a scenario. */
const CAPTURE_MAGICS = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a];

/** Why `bytes` cannot be a YAML/JSON scenario (a capture, binary data), or null. */
export function notTextReason(bytes: Uint8Array): string | null {
  if (bytes.length >= 4) {
    const magic = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
    if (CAPTURE_MAGICS.includes(magic))
      return 'is a capture (pcap/pcapng), not a scenario file (YAML or JSON); captures go to --in';
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) return `is not a text file (a NUL byte at offset ${nul}); a scenario file is YAML or JSON`;
  return null;
}

/** Compile scenario text; `file` names it in errors and becomes Scenario.source. */
export function parseScenario(text: string, file: string): Scenario {
  if (extname(file).toLowerCase() === '.json') {
    try {
      JSON.parse(text);
    } catch (e) {
      throw new InputError(`${file}: JSON syntax: ${boundMessage((e as Error).message)}`, file, '');
    }
  }
  // A huge internet.hosts block list is read line by line, not through the YAML document (whose
  // nodes cost ~1 KB per host): loading memory stays proportional to the file.
  const big = extname(file).toLowerCase() === '.json' ? null : extractHostList(text);
  const { doc, lc, data } = parseYamlDocument(big ? big.text : text, file);
  if (
    big &&
    isObj(data) &&
    isObj(data.internet) &&
    Array.isArray(data.internet.hosts) &&
    data.internet.hosts.length === 0
  )
    data.internet.hosts = big.hosts;
  const ctx = new Ctx(new ErrorList(file), doc, lc, big ? big.lines : null);
  const s = compile(ctx, data, file);
  ctx.el.throwIfAny();
  return s!;
}

/** Host lists at least this long are read line by line and kept as ranges. */
export const BIG_HOST_LIST = 10_000;

export interface ExtractedHosts {
  /** The text with the list replaced by `hosts: []` and blank lines (line numbers unchanged). */
  text: string;
  hosts: string[];
  /** 1-based file line of each host. */
  lines: number[];
}

/**
 * The `internet: hosts:` block list of plain addresses/CIDRs (`- 198.51.100.7`), cut out of the
 * text when it has at least BIG_HOST_LIST entries; null otherwise (the YAML path reads it).
 */
export function extractHostList(text: string): ExtractedHosts | null {
  if (text.length < BIG_HOST_LIST * 8) return null;
  const lines = text.split('\n');
  const top = lines.findIndex((l) => /^internet:\s*(#.*)?\r?$/.test(l));
  if (top < 0) return null;
  let j = top + 1;
  while (j < lines.length && /^\s*(#.*)?\r?$/.test(lines[j])) j++;
  const head = /^(\s+)hosts:\s*(#.*)?\r?$/.exec(lines[j] ?? '');
  if (!head) return null;
  const indent = head[1].length;
  const hosts: string[] = [];
  const at: number[] = [];
  const item = /^(\s*)-[ \t]+([0-9][0-9./]*)[ \t]*(#.*)?\r?$/;
  for (let k = j + 1; k < lines.length; k++) {
    const l = lines[k];
    if (/^\s*(#.*)?\r?$/.test(l)) continue;
    const m = item.exec(l);
    if (!m || m[1].length < indent) break;
    hosts.push(m[2]);
    at.push(k);
  }
  if (hosts.length < BIG_HOST_LIST) return null;
  lines[j] = `${head[1]}hosts: []`;
  for (const k of at) lines[k] = '';
  return { text: lines.join('\n'), hosts, lines: at.map((k) => k + 1) };
}

/**
 * CIDRs as packed numbers in address order: addr * 64 + len (exact in a double: 2^38), sorted
 * numerically (no comparator, no per-host objects), for lists of millions of hosts.
 */
function sortedCidrKeys(list: readonly Cidr[]): Float64Array {
  const keys = new Float64Array(list.length);
  for (let k = 0; k < list.length; k++) keys[k] = (list[k].addr >>> 0) * 64 + list[k].len;
  return keys.sort();
}

const keyAddr = (key: number): number => Math.floor(key / 64);
const keyLast = (key: number): number => Math.floor(key / 64) + 2 ** (32 - (key % 64)) - 1;

/** Whether any two CIDRs of `list` share an address. */
export function hostsOverlap(list: readonly Cidr[]): boolean {
  return sortedKeysOverlap(sortedCidrKeys(list));
}

function sortedKeysOverlap(keys: Float64Array): boolean {
  let coverLast = -1;
  for (let k = 0; k < keys.length; k++) {
    if (keyAddr(keys[k]) <= coverLast) return true;
    coverLast = Math.max(coverLast, keyLast(keys[k]));
  }
  return false;
}

/** The fewest CIDRs covering exactly the addresses of `list` (sorted by address). */
export function coalesceCidrs(list: readonly Cidr[]): Cidr[] {
  return coalesceSortedKeys(sortedCidrKeys(list));
}

function coalesceSortedKeys(keys: Float64Array): Cidr[] {
  // Merged intervals [start, end], in place in two typed arrays.
  const starts = new Float64Array(keys.length);
  const ends = new Float64Array(keys.length);
  let n = 0;
  for (let k = 0; k < keys.length; k++) {
    const s = keyAddr(keys[k]);
    const e = keyLast(keys[k]);
    if (n > 0 && s <= ends[n - 1] + 1) ends[n - 1] = Math.max(ends[n - 1], e);
    else {
      starts[n] = s;
      ends[n] = e;
      n++;
    }
  }
  const out: Cidr[] = [];
  for (let m = 0; m < n; m++) {
    const s0 = starts[m];
    const e = ends[m];
    // Largest aligned block starting at s that stays within e, repeatedly (≤ 32 per step).
    for (let s = s0; s <= e; ) {
      let len = 32;
      while (len > 0) {
        const size = 2 ** (32 - (len - 1));
        if (s % size !== 0 || s + size - 1 > e) break;
        len--;
      }
      out.push({ addr: s >>> 0, len });
      s += 2 ** (32 - len);
    }
  }
  return out;
}

/** Compile an already-parsed object (JSON.parse / YAML.parse result) in the file format. */
export function compileScenarioObject(data: unknown, file: string): Scenario {
  const ctx = new Ctx(new ErrorList(file), null, null);
  const s = compile(ctx, data, file);
  ctx.el.throwIfAny();
  return s!;
}

function iptablesLineOffset(ctx: Ctx, path: Array<string | number>): number {
  const n = ctx.node(path);
  if (!n || !isScalar(n) || !n.range || !ctx.lc) return 0;
  const line = ctx.lc.linePos(n.range[0]).line;
  return n.type === 'BLOCK_LITERAL' || n.type === 'BLOCK_FOLDED' ? line : line - 1;
}

function compile(ctx: Ctx, data: unknown, file: string): Scenario | null {
  if (data === null || data === undefined) {
    ctx.err([], 'the file is empty (expected a scenario mapping with vpc, subnets, instances, ...)');
    return null;
  }
  const top = ctx.obj([], data, true);
  if (!top) return null;
  ctx.keys([], top, TOP_KEYS);

  const name = ctx.str(['name'], top.name, false) ?? basename(file, extname(file));
  if (name.trim() === '') ctx.err(['name'], 'must not be empty');
  ctx.str(['description'], top.description, false);

  // VPC
  let vpcCidr: Cidr = { addr: 0, len: 0 };
  let vpcOk = false;
  const vpc = ctx.obj(['vpc'], top.vpc, true);
  if (vpc) {
    ctx.keys(['vpc'], vpc, VPC_KEYS);
    const c = ctx.cidr(['vpc', 'cidr'], vpc.cidr, true);
    if (c) {
      if (c.len < VPC_LEN_MIN || c.len > VPC_LEN_MAX)
        ctx.err(['vpc', 'cidr'], `prefix /${c.len} is outside /${VPC_LEN_MIN}../${VPC_LEN_MAX} (AWS allows /16../28)`);
      else {
        vpcCidr = c;
        vpcOk = true;
      }
    }
  }

  // Route table names first (subnets refer to them), routes after instances (eni: targets).
  const rtRaw = ctx.obj(['routeTables'], top.routeTables, true) ?? {};
  const rtNames = Object.keys(rtRaw);
  rtNames.forEach((n) => ctx.name(['routeTables', n], n, 'route table'));

  // Subnets
  const subnets: Subnet[] = [];
  const snRaw = ctx.obj(['subnets'], top.subnets, true) ?? {};
  if (Object.keys(snRaw).length === 0 && top.subnets !== undefined)
    ctx.err(['subnets'], 'at least one subnet is needed');
  for (const [sn, sv] of Object.entries(snRaw)) {
    const p = ['subnets', sn];
    ctx.name(p, sn, 'subnet');
    const o = ctx.obj(p, sv, true);
    if (!o) continue;
    ctx.keys(p, o, SUBNET_KEYS);
    const cidr = ctx.cidr([...p, 'cidr'], o.cidr, true);
    const rt = ctx.str([...p, 'routeTable'], o.routeTable, true);
    let rtIndex = -1;
    if (rt !== null) {
      rtIndex = rtNames.indexOf(rt);
      if (rtIndex < 0)
        ctx.err(
          [...p, 'routeTable'],
          `route table '${rt}' does not exist${suggest(rt, rtNames)}; defined: ${rtNames.join(', ') || 'none'}`,
        );
    }
    if (!cidr) continue;
    let ok = true;
    if (vpcOk && !cidrWithin(cidr, vpcCidr)) {
      ctx.err([...p, 'cidr'], `${formatCidr(cidr)} is outside the VPC CIDR ${formatCidr(vpcCidr)}`);
      ok = false;
    }
    if (cidr.len > SUBNET_LEN_MAX) {
      ctx.err(
        [...p, 'cidr'],
        `/${cidr.len} is smaller than AWS allows (/${SUBNET_LEN_MAX} at most: 5 addresses of every subnet are reserved)`,
      );
      ok = false;
    }
    for (const other of subnets) {
      if (cidrOverlaps(other.cidr, cidr)) {
        ctx.err([...p, 'cidr'], `${formatCidr(cidr)} overlaps subnet ${other.name} (${formatCidr(other.cidr)})`);
        ok = false;
      }
    }
    if (ok) subnets.push({ name: sn, cidr, routeTable: rtIndex });
  }
  const snNames = subnets.map((x) => x.name);
  const allSnNames = Object.keys(snRaw);

  // Internet hosts (needed to check Elastic IPs)
  const internetHosts: Cidr[] = [];
  const hostIndex: number[] = []; // file index of each accepted host
  const inet = ctx.obj(['internet'], top.internet, false);
  if (inet) {
    ctx.keys(['internet'], inet, INTERNET_KEYS);
    const hosts = inet.hosts;
    if (hosts !== undefined && !Array.isArray(hosts))
      ctx.err(['internet', 'hosts'], `expected a list of addresses or CIDRs, got ${typeName(hosts)}`);
    else if (Array.isArray(hosts)) {
      hosts.forEach((h, i) => {
        const p = ['internet', 'hosts', i];
        const c = ctx.cidr(p, h, true, true);
        if (!c) return;
        if (vpcOk && cidrOverlaps(c, vpcCidr))
          return ctx.err(
            p,
            `${formatCidr(c)} overlaps the VPC CIDR ${formatCidr(vpcCidr)}; internet hosts live outside the VPC`,
          );
        for (const bad of NON_UNICAST)
          if (cidrOverlaps(c, bad))
            return ctx.err(p, `${formatCidr(c)} overlaps ${formatCidr(bad)}, which holds no unicast hosts`);
        internetHosts.push(c);
        hostIndex.push(i);
      });
      // Overlaps among hosts: sweep in address order (captures list thousands of /32s). A numeric
      // sort of packed keys finds whether there is any (a million hosts in well under a second);
      // only then the index sort below names each overlapping pair.
      // One sort serves the overlap check and, when nothing overlaps, the coalescing below.
      const keys = sortedCidrKeys(internetHosts);
      const order = !sortedKeysOverlap(keys)
        ? []
        : internetHosts
            .map((_, k) => k)
            .sort(
              (a, b) => internetHosts[a].addr - internetHosts[b].addr || internetHosts[a].len - internetHosts[b].len,
            );
      const bad = new Set<number>();
      let cover = -1;
      for (const k of order) {
        const c = internetHosts[k];
        if (cover >= 0 && c.addr <= cidrLast(internetHosts[cover])) {
          const [first, second] = hostIndex[cover] < hostIndex[k] ? [cover, k] : [k, cover];
          ctx.err(
            ['internet', 'hosts', hostIndex[second]],
            `${formatCidr(internetHosts[second])} overlaps internet.hosts[${hostIndex[first]}] (${formatCidr(internetHosts[first])})`,
          );
          bad.add(second);
          if (second === cover) cover = k;
        } else if (cover < 0 || cidrLast(c) > cidrLast(internetHosts[cover])) cover = k;
      }
      if (bad.size) {
        const keep = internetHosts.filter((_, k) => !bad.has(k));
        internetHosts.length = 0;
        internetHosts.push(...keep);
      }
      // A big list (a capture's or a log's hosts, one per line) is kept as ranges: the fewest
      // CIDRs covering exactly the same addresses.
      if (internetHosts.length >= BIG_HOST_LIST) {
        const ranges = bad.size ? coalesceCidrs(internetHosts) : coalesceSortedKeys(keys);
        internetHosts.length = 0;
        for (const c of ranges) internetHosts.push(c);
      }
    }
  }

  // Instances
  const instances: Instance[] = [];
  const instRaw = ctx.obj(['instances'], top.instances, false) ?? {};
  const instNames = Object.keys(instRaw);
  const natPending: Array<{ inst: Instance; path: Array<string | number>; o: Obj }> = [];
  const byPrivateIp = new Map<number, string>();
  for (const [iname, iv] of Object.entries(instRaw)) {
    const p = ['instances', iname];
    ctx.name(p, iname, 'instance');
    const o = ctx.obj(p, iv, true);
    if (!o) {
      instances.push(placeholderInstance(iname));
      continue;
    }
    ctx.keys(p, o, INSTANCE_KEYS);
    ctx.str([...p, 'description'], o.description, false);
    const inst = placeholderInstance(iname);
    instances.push(inst);
    const sn = ctx.str([...p, 'subnet'], o.subnet, true);
    let subnet: Subnet | null = null;
    if (sn !== null) {
      const idx = snNames.indexOf(sn);
      if (idx >= 0) {
        inst.subnet = idx;
        subnet = subnets[idx];
      } else if (!allSnNames.includes(sn))
        ctx.err(
          [...p, 'subnet'],
          `subnet '${sn}' does not exist${suggest(sn, allSnNames)}; defined: ${allSnNames.join(', ') || 'none'}`,
        );
    }
    const ip = ctx.addr([...p, 'privateIp'], o.privateIp, true);
    if (ip !== null) {
      inst.privateIp = ip;
      if (subnet) {
        const c = subnet.cidr;
        const off = ip - c.addr;
        if (!cidrContains(c, ip))
          ctx.err([...p, 'privateIp'], `${formatIpv4(ip)} is outside subnet ${subnet.name} (${formatCidr(c)})`);
        else if (off === 0)
          ctx.err(
            [...p, 'privateIp'],
            `${formatIpv4(ip)} is the network address of subnet ${subnet.name} (${formatCidr(c)})`,
          );
        else if (ip === cidrLast(c))
          ctx.err(
            [...p, 'privateIp'],
            `${formatIpv4(ip)} is the broadcast address of subnet ${subnet.name} (${formatCidr(c)}), reserved by AWS`,
          );
        else if (off <= 3)
          ctx.err(
            [...p, 'privateIp'],
            `${formatIpv4(ip)} is reserved by AWS in subnet ${subnet.name} (${formatCidr(c)}: +1 VPC router, +2 DNS, +3 future use)`,
          );
      }
      const dup = byPrivateIp.get(ip);
      if (dup !== undefined)
        ctx.err([...p, 'privateIp'], `${formatIpv4(ip)} is already the private IP of instance ${dup}`);
      else byPrivateIp.set(ip, iname);
    }
    if (o.elasticIp !== undefined && o.elasticIp !== null) {
      const eip = ctx.addr([...p, 'elasticIp'], o.elasticIp, true);
      if (eip !== null) {
        const dup = instances.findIndex((x) => x !== inst && x.elasticIp === eip);
        const hostIdx = internetHosts.findIndex((h) => cidrContains(h, eip));
        const hostAt = hostIdx >= 0 ? hostIndex[hostIdx] : -1;
        if (vpcOk && cidrContains(vpcCidr, eip))
          ctx.err(
            [...p, 'elasticIp'],
            `${formatIpv4(eip)} is inside the VPC CIDR ${formatCidr(vpcCidr)}; an Elastic IP is a public address outside it`,
          );
        else if (dup >= 0)
          ctx.err(
            [...p, 'elasticIp'],
            `${formatIpv4(eip)} is already the Elastic IP of instance ${instances[dup].name}`,
          );
        else if (hostIdx >= 0)
          ctx.err(
            [...p, 'elasticIp'],
            `${formatIpv4(eip)} is inside internet.hosts[${hostAt}] (${formatCidr(internetHosts[hostIdx])}); the IGW could not tell them apart`,
          );
        else inst.elasticIp = eip;
      }
    }
    inst.sourceDestCheck = ctx.bool([...p, 'sourceDestCheck'], o.sourceDestCheck, true);
    natPending.push({ inst, path: p, o });
  }

  // Instance sysctls and nat tables (need the VPC CIDR for configure-pat).
  for (const { inst, path: p, o } of natPending) {
    let natInst: Obj | null = null;
    if (o.natInstance !== undefined) {
      natInst = ctx.obj([...p, 'natInstance'], o.natInstance, true);
      if (natInst) {
        ctx.keys([...p, 'natInstance'], natInst, NAT_INSTANCE_KEYS);
        const bs = ctx.str([...p, 'natInstance', 'bootScript'], natInst.bootScript, true);
        if (bs !== null && !(BOOT_SCRIPTS as readonly string[]).includes(bs))
          ctx.err(
            [...p, 'natInstance', 'bootScript'],
            `unknown boot script '${bs}' (known: ${BOOT_SCRIPTS.join(', ')})`,
          );
        const fromMeta = ctx.bool([...p, 'natInstance', 'vpcCidrFromMetadata'], natInst.vpcCidrFromMetadata, true);
        // configure-pat.sh: sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.eth0.send_redirects=0
        inst.sysctls.ipForward = true;
        inst.sysctls.sendRedirectsEth0 = false;
        inst.nat = configurePatTable(fromMeta && vpcOk ? vpcCidr : null);
        if (o.iptables !== undefined)
          ctx.err(
            [...p, 'iptables'],
            `give either natInstance (the boot script writes the rules) or iptables, not both`,
          );
      }
    }
    if (o.sysctls !== undefined) {
      const sy = ctx.obj([...p, 'sysctls'], o.sysctls, true);
      if (sy) {
        ctx.keys([...p, 'sysctls'], sy, SYSCTL_KEYS);
        inst.sysctls.ipForward = ctx.bool(
          [...p, 'sysctls', SYSCTL_IP_FORWARD],
          sy[SYSCTL_IP_FORWARD],
          inst.sysctls.ipForward,
        );
        inst.sysctls.sendRedirectsAll = ctx.bool(
          [...p, 'sysctls', SYSCTL_SEND_REDIRECTS_ALL],
          sy[SYSCTL_SEND_REDIRECTS_ALL],
          inst.sysctls.sendRedirectsAll,
        );
        inst.sysctls.sendRedirectsEth0 = ctx.bool(
          [...p, 'sysctls', SYSCTL_SEND_REDIRECTS_ETH0],
          sy[SYSCTL_SEND_REDIRECTS_ETH0],
          inst.sysctls.sendRedirectsEth0,
        );
        const int = (key: string, dflt: number, max: number): number =>
          ctx.int([...p, 'sysctls', key], sy[key], dflt, 0, max);
        inst.sysctls.icmpRatelimit = int(SYSCTL_ICMP_RATELIMIT, inst.sysctls.icmpRatelimit, ICMP_RATELIMIT_MAX_MS);
        inst.sysctls.icmpRatemask = int(SYSCTL_ICMP_RATEMASK, inst.sysctls.icmpRatemask, ICMP_RATEMASK_MAX);
        inst.sysctls.icmpMsgsPerSec = int(SYSCTL_ICMP_MSGS_PER_SEC, inst.sysctls.icmpMsgsPerSec, ICMP_MSGS_MAX);
        inst.sysctls.icmpMsgsBurst = int(SYSCTL_ICMP_MSGS_BURST, inst.sysctls.icmpMsgsBurst, ICMP_MSGS_MAX);
      }
    }
    if (o.iptables !== undefined && !natInst) {
      const text = ctx.str([...p, 'iptables'], o.iptables, true);
      if (text !== null) {
        const before = ctx.el.count;
        const offset = iptablesLineOffset(ctx, [...p, 'iptables']);
        const where = joinPath([...p, 'iptables']);
        // The *filter and *mangle sections are parsed on their own; the rest is the nat table.
        const f = takeFilterSection(text);
        const m = takeMangleSection(f.rest);
        const t = parseNatTable(m.rest, ctx.el.file, offset, where, ctx.el);
        const mangle = m.mangle === null ? null : parseMangleTable(m.mangle, ctx.el.file, offset, where, ctx.el);
        const filter = f.filter === null ? null : parseFilterTable(f.filter, ctx.el.file, offset, where, ctx.el);
        if (ctx.el.count === before) {
          inst.nat = t;
          if (mangle) inst.mangle = mangle;
          if (filter) inst.filter = filter;
        }
      }
    }
  }

  // NAT gateways (after instances: their addresses must not collide; before routes: nat-gateway:NAME).
  const natGateways = compileNatGateways(ctx, top.natGateways, {
    vpcCidr: vpcOk ? vpcCidr : null,
    subnets,
    allSubnetNames: allSnNames,
    instances,
    internetHosts,
    hostIndex,
  });
  const gwNames = natGateways.map((g) => g.name);

  // Routes
  const routeTables: RouteTable[] = [];
  for (const rtName of rtNames) {
    const p = ['routeTables', rtName];
    const rv = rtRaw[rtName];
    const routes: Route[] = [];
    routeTables.push({ name: rtName, routes });
    if (rv !== null && !Array.isArray(rv)) {
      ctx.err(
        p,
        `expected a list of routes ({ dest: CIDR, target: local|igw|blackhole|eni:INSTANCE|nat-gateway:NAME }), got ${typeName(rv)}`,
      );
      continue;
    }
    for (const [i, r] of (rv ?? []).entries()) {
      const rp = [...p, i];
      const o = ctx.obj(rp, r, true);
      if (!o) continue;
      ctx.keys(rp, o, ROUTE_KEYS);
      const dest = ctx.cidr([...rp, 'dest'], o.dest, true);
      const target = ctx.str([...rp, 'target'], o.target, true);
      if (!dest || target === null) continue;
      const route = readTarget(ctx, [...rp, 'target'], target, instNames, gwNames);
      if (!route) continue;
      const prev = routes.findIndex((x) => x.dest.addr === dest.addr && x.dest.len === dest.len);
      if (prev >= 0) {
        ctx.err([...rp, 'dest'], `duplicate destination ${formatCidr(dest)} (also routeTables.${rtName}[${prev}])`);
        continue;
      }
      const isVpc = vpcOk && dest.addr === vpcCidr.addr && dest.len === vpcCidr.len;
      if (isVpc && route.target !== 'local') {
        ctx.err(
          [...rp, 'target'],
          `the VPC CIDR ${formatCidr(vpcCidr)} always routes to local (AWS does not allow replacing the local route)`,
        );
        continue;
      }
      if (!isVpc && route.target === 'local') {
        ctx.err(
          [...rp, 'target'],
          `target local is only valid for the VPC CIDR ${vpcOk ? formatCidr(vpcCidr) : ''}`.trimEnd(),
        );
        continue;
      }
      routes.push({ dest, target: route.target, instance: route.instance });
    }
    if (vpcOk && !routes.some((x) => x.target === 'local'))
      routes.unshift({ dest: { ...vpcCidr }, target: 'local', instance: -1 });
  }

  // Conntrack
  const conntrack = defaultConntrack();
  const ct = ctx.obj(['conntrack'], top.conntrack, false);
  if (ct) {
    ctx.keys(['conntrack'], ct, CONNTRACK_KEYS);
    conntrack.max = ctx.int(['conntrack', 'max'], ct.max, conntrack.max, CONNTRACK_MAX_MIN, CONNTRACK_MAX_MAX);
    conntrack.tcpLoose = ctx.bool(['conntrack', 'tcpLoose'], ct.tcpLoose, true);
    conntrack.checksum = ctx.bool(['conntrack', 'checksum'], ct.checksum, true);
    if (ct.tcpIgnoreInvalidRst !== undefined)
      conntrack.tcpIgnoreInvalidRst = ctx.bool(['conntrack', 'tcpIgnoreInvalidRst'], ct.tcpIgnoreInvalidRst, false);
    if (ct.tcpBeLiberal !== undefined)
      conntrack.tcpBeLiberal = ctx.bool(['conntrack', 'tcpBeLiberal'], ct.tcpBeLiberal, false);
    if (ct.tcpMaxRetrans !== undefined)
      // proc_dou8vec_minmax: a u8
      conntrack.tcpMaxRetrans = ctx.int(
        ['conntrack', 'tcpMaxRetrans'],
        ct.tcpMaxRetrans,
        DEFAULT_TCP_MAX_RETRANS,
        0,
        255,
      );
    const to = ctx.obj(['conntrack', 'timeouts'], ct.timeouts, false);
    if (to) {
      const keys = Object.keys(DEFAULT_TIMEOUTS) as Array<keyof ConntrackTimeouts>;
      ctx.keys(['conntrack', 'timeouts'], to, keys);
      for (const k of keys)
        conntrack.timeouts[k] = ctx.int(
          ['conntrack', 'timeouts', k],
          to[k],
          DEFAULT_TIMEOUTS[k],
          TIMEOUT_MIN,
          TIMEOUT_MAX,
        );
    }
  }

  const s: Scenario = { name, source: file, vpcCidr, subnets, routeTables, instances, internetHosts, conntrack };
  if (natGateways.length > 0) s.natGateways = natGateways;
  Object.assign(s, compileAwsFilters(ctx, top, instRaw, instances, subnets));
  if (ctx.el.count === 0) {
    const timeline = compileTimeline(ctx, top, s, instRaw, subnets, {
      subContext: () => new Ctx(new ErrorList(''), null, null),
      readTarget,
    });
    if (timeline && timeline.length > 0) s.timeline = timeline;
  }
  return s;
}

function placeholderInstance(name: string): Instance {
  return {
    name,
    subnet: -1,
    privateIp: 0,
    elasticIp: null,
    sourceDestCheck: true,
    sysctls: defaultSysctls(),
    nat: null,
  };
}

export function readTarget(
  ctx: Ctx,
  path: Array<string | number>,
  t: string,
  instNames: string[],
  gwNames: string[],
): { target: Route['target']; instance: number } | null {
  const s = t.trim();
  if (s === 'local' || s === 'igw' || s === 'blackhole') return { target: s, instance: -1 };
  if (s.startsWith('eni:')) {
    const n = s.slice(4);
    const idx = instNames.indexOf(n);
    if (idx < 0) {
      ctx.err(
        path,
        `'${s}': instance '${n}' does not exist${suggest(n, instNames)}; defined: ${instNames.join(', ') || 'none'}`,
      );
      return null;
    }
    return { target: 'eni', instance: idx };
  }
  if (s.startsWith('nat-gateway:')) {
    const n = s.slice('nat-gateway:'.length);
    const idx = gwNames.indexOf(n);
    if (idx < 0) {
      ctx.err(
        path,
        `'${s}': NAT gateway '${n}' does not exist${suggest(n, gwNames)}; defined: ${gwNames.join(', ') || 'none'}`,
      );
      return null;
    }
    return { target: 'nat-gateway', instance: idx };
  }
  ctx.err(path, `unknown route target '${s}' (local, igw, blackhole, eni:INSTANCE or nat-gateway:NAME)`);
  return null;
}

export type { NatTable };
