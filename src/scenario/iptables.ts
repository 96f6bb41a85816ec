// iptables-save parser for the nat table, validating like iptables/iptables-restore does, and
// the canonical iptables-save text natlab keeps (NatRule.text, NatTable.text) — text that
// `iptables-restore` accepts and that parses back to the identical table.
// Cold path.

import {
  NAT_CHAINS,
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  type Cidr,
  type CidrMatch,
  type IfaceMatch,
  type NatChainName,
  type NatRule,
  type NatTable,
  type NatTarget,
  type NatTargetKind,
  type PortMatch,
  type ProtoMatch,
} from '../spec/scenario.ts';
import { formatCidr, formatIpv4 } from '../packet/addr.ts';
import { readCidr, readIpv4 } from './addr-text.ts';
import { ErrorList } from './error-list.ts';

/** Protocol names iptables knows (its built-in table plus /etc/protocols' common entries). */
export const PROTO_NAMES: Readonly<Record<string, number>> = Object.freeze({
  all: 0,
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  dccp: 33,
  gre: 47,
  esp: 50,
  ah: 51,
  sctp: 132,
  udplite: 136,
});
const PROTO_BY_NUMBER = new Map<number, string>(Object.entries(PROTO_NAMES).map(([k, v]) => [v, k]));

export function protoName(p: number): string {
  return PROTO_BY_NUMBER.get(p) ?? String(p);
}

/**
 * Protocols a NAT target may give ports for (libxt_SNAT/DNAT/MASQUERADE accept these; for ICMP
 * the "port" is the echo id). natlab also requires the -p to be un-negated.
 */
export const NAT_PORT_PROTOS: readonly number[] = [6, 17, 33, 132, 1];

/** Linux IFNAMSIZ - 1. */
export const IFNAME_MAX = 15;
/** xt_comment XT_MAX_COMMENT_LEN - 1. */
export const COMMENT_MAX = 255;

/** Splits a line into tokens like iptables-restore: whitespace-separated, "double quotes" with \ escapes. */
export function tokenize(line: string): string[] | string {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i])) i++;
    if (i >= line.length) break;
    let tok = '';
    while (i < line.length && !/\s/.test(line[i])) {
      if (line[i] === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          tok += line[i++];
        }
        if (i >= line.length) return 'unterminated "quoted" string';
        i++;
      } else tok += line[i++];
    }
    out.push(tok);
  }
  return out;
}

/** As iptables' xtables_save_string: bare if only [A-Za-z0-9_-], else "quoted" with \ before " \ '. */
export function quote(s: string): string {
  return /^[A-Za-z0-9_-]+$/.test(s) ? s : `"${s.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

export interface RuleExtras {
  /** `-m comment --comment` text, kept in the canonical rule text. */
  comment: string | null;
}

export function fmtPort(m: PortMatch): string {
  return m.lo === m.hi ? String(m.lo) : `${m.lo}:${m.hi}`;
}
function neg(b: boolean): string {
  return b ? '! ' : '';
}

/** Canonical iptables-save rule line for a rule (option order as iptables-save prints it). */
export function formatNatRule(
  chain: NatChainName,
  r: Omit<NatRule, 'text'>,
  extras: RuleExtras = { comment: null },
): string {
  const p: string[] = [`-A ${chain}`];
  if (r.src) p.push(`${neg(r.src.neg)}-s ${formatCidr(r.src.cidr)}`);
  if (r.dst) p.push(`${neg(r.dst.neg)}-d ${formatCidr(r.dst.cidr)}`);
  if (r.inIface) p.push(`${neg(r.inIface.neg)}-i ${r.inIface.name}`);
  if (r.outIface) p.push(`${neg(r.outIface.neg)}-o ${r.outIface.name}`);
  if (r.proto) p.push(`${neg(r.proto.neg)}-p ${protoName(r.proto.proto)}`);
  if (r.sport || r.dport) {
    p.push(`-m ${protoName(r.proto!.proto)}`);
    if (r.sport) p.push(`${neg(r.sport.neg)}--sport ${fmtPort(r.sport)}`);
    if (r.dport) p.push(`${neg(r.dport.neg)}--dport ${fmtPort(r.dport)}`);
  }
  if (extras.comment !== null) p.push(`-m comment --comment ${quote(extras.comment)}`);
  p.push(formatTarget(r.target));
  return p.join(' ');
}

function fmtRange(t: NatTarget): string {
  let s = '';
  if (t.flags & NF_NAT_RANGE_MAP_IPS)
    s = t.addrLo === t.addrHi ? formatIpv4(t.addrLo) : `${formatIpv4(t.addrLo)}-${formatIpv4(t.addrHi)}`;
  if (t.flags & NF_NAT_RANGE_PROTO_SPECIFIED) s += t.portLo === t.portHi ? `:${t.portLo}` : `:${t.portLo}-${t.portHi}`;
  return s;
}

export function formatTarget(t: NatTarget): string {
  const p = [`-j ${t.kind}`];
  switch (t.kind) {
    case 'MASQUERADE':
      if (t.flags & NF_NAT_RANGE_PROTO_SPECIFIED)
        p.push(`--to-ports ${t.portLo === t.portHi ? t.portLo : `${t.portLo}-${t.portHi}`}`);
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM) p.push('--random');
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) p.push('--random-fully');
      break;
    case 'SNAT':
      p.push(`--to-source ${fmtRange(t)}`);
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM) p.push('--random');
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) p.push('--random-fully');
      if (t.flags & NF_NAT_RANGE_PERSISTENT) p.push('--persistent');
      break;
    case 'DNAT':
      p.push(`--to-destination ${fmtRange(t)}`);
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM) p.push('--random');
      if (t.flags & NF_NAT_RANGE_PERSISTENT) p.push('--persistent');
      break;
    default:
      break;
  }
  return p.join(' ');
}

/** Canonical iptables-save text of a nat table: all four chains declared, counters zeroed. */
export function formatNatTable(chains: Record<NatChainName, NatRule[]>): string {
  const lines = ['*nat'];
  for (const c of NAT_CHAINS) lines.push(`:${c} ACCEPT [0:0]`);
  for (const c of NAT_CHAINS) for (const r of chains[c]) lines.push(r.text);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

function emptyChains(): Record<NatChainName, NatRule[]> {
  return { PREROUTING: [], INPUT: [], OUTPUT: [], POSTROUTING: [] };
}

/** Build a NatTable from rules given as fields (the configure-pat path and generators use it). */
export function buildNatTable(rules: Array<{ chain: NatChainName; rule: Omit<NatRule, 'text'> }>): NatTable {
  const chains = emptyChains();
  for (const { chain, rule } of rules) chains[chain].push({ ...rule, text: formatNatRule(chain, rule) });
  return { chains, text: formatNatTable(chains) };
}

/** The AMI's configure-pat.sh: `-A POSTROUTING -o eth0 -s <VPC CIDR or 0.0.0.0/0> -j MASQUERADE`. */
export function configurePatTable(vpcCidr: Cidr | null): NatTable {
  return buildNatTable([
    {
      chain: 'POSTROUTING',
      rule: {
        src: vpcCidr && vpcCidr.len > 0 ? { cidr: { ...vpcCidr }, neg: false } : null,
        dst: null,
        inIface: null,
        outIface: { name: 'eth0', neg: false },
        proto: null,
        sport: null,
        dport: null,
        target: { kind: 'MASQUERADE', addrLo: 0, addrHi: 0, portLo: 0, portHi: 0, flags: 0 },
      },
    },
  ]);
}

const NEGATABLE = new Set(['-s', '-d', '-i', '-o', '-p', '--sport', '--dport']);
const ALIASES: Record<string, string> = {
  '--source': '-s',
  '--src': '-s',
  '--destination': '-d',
  '--dst': '-d',
  '--in-interface': '-i',
  '--out-interface': '-o',
  '--protocol': '-p',
  '--match': '-m',
  '--jump': '-j',
  '--source-port': '--sport',
  '--destination-port': '--dport',
};
const TARGETS: readonly NatTargetKind[] = ['MASQUERADE', 'SNAT', 'DNAT', 'ACCEPT', 'RETURN'];

export class RuleError extends Error {}

function readPort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535)
    throw new RuleError(`${what}: '${text}' is not a port number 0..65535`);
  return Number(text);
}

export function readPortMatch(text: string, opt: string, isNeg: boolean): PortMatch {
  const colon = text.indexOf(':');
  let lo: number;
  let hi: number;
  if (colon < 0) lo = hi = readPort(text, opt);
  else {
    const a = text.slice(0, colon);
    const b = text.slice(colon + 1);
    lo = a === '' ? 0 : readPort(a, opt);
    hi = b === '' ? 65535 : readPort(b, opt);
    if (b.includes(':')) throw new RuleError(`${opt}: '${text}' is not a port or range a:b`);
  }
  if (lo > hi) throw new RuleError(`${opt}: port range '${text}' has its start above its end`);
  return { lo, hi, neg: isNeg };
}

/** 'p' or 'p-q' (1..65535), as --to-ports and the :ports of --to-source/--to-destination. */
function readNatPorts(text: string, opt: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw new RuleError(`${opt}: '${text}' is not a port or range p-q`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > 65535) throw new RuleError(`${opt}: ports in '${text}' must be 1..65535`);
  if (lo > hi) throw new RuleError(`${opt}: port range '${text}' has its start above its end`);
  return [lo, hi];
}

/** 'a[-b][:p[-q]]' of --to-source / --to-destination. */
function readNatRange(text: string, opt: string, t: NatTarget): void {
  const colon = text.indexOf(':');
  const addrPart = colon < 0 ? text : text.slice(0, colon);
  const dash = addrPart.indexOf('-');
  const loText = dash < 0 ? addrPart : addrPart.slice(0, dash);
  const hiText = dash < 0 ? addrPart : addrPart.slice(dash + 1);
  const lo = readIpv4(loText);
  const hi = readIpv4(hiText);
  if (lo === null) throw new RuleError(`${opt}: '${loText}' is not an IPv4 address (in '${text}')`);
  if (hi === null) throw new RuleError(`${opt}: '${hiText}' is not an IPv4 address (in '${text}')`);
  if (lo > hi) throw new RuleError(`${opt}: address range '${addrPart}' has its start above its end`);
  t.addrLo = lo;
  t.addrHi = hi;
  t.flags |= NF_NAT_RANGE_MAP_IPS;
  if (colon >= 0) {
    const [plo, phi] = readNatPorts(text.slice(colon + 1), opt);
    t.portLo = plo;
    t.portHi = phi;
    t.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
  }
}

export function readIface(text: string, opt: string, isNeg: boolean): IfaceMatch {
  if (text.length === 0 || text.length > IFNAME_MAX)
    throw new RuleError(`${opt}: interface name '${text}' must be 1..${IFNAME_MAX} characters`);
  if (/[\s/:]/.test(text) || text.slice(0, -1).includes('+'))
    throw new RuleError(`${opt}: '${text}' is not a valid interface name ('+' only as the last character)`);
  return { name: text, neg: isNeg };
}

export function readProto(text: string, isNeg: boolean): ProtoMatch {
  const lower = text.toLowerCase();
  if (Object.hasOwn(PROTO_NAMES, lower)) return { proto: PROTO_NAMES[lower], neg: isNeg };
  if (/^\d{1,3}$/.test(text) && Number(text) <= 255) return { proto: Number(text), neg: isNeg };
  throw new RuleError(`-p: unknown protocol '${text}' (tcp, udp, icmp, all, a name from /etc/protocols or 0..255)`);
}

export function readAddrMatch(text: string, opt: string, isNeg: boolean): CidrMatch {
  const c = readCidr(text, true);
  if (typeof c === 'string') throw new RuleError(`${opt}: ${c}`);
  return { cidr: c.cidr, neg: isNeg };
}

/** Parses the tokens after `-A CHAIN`. Throws RuleError naming the token. */
function parseRuleTokens(chain: NatChainName, toks: string[]): NatRule {
  const r: Omit<NatRule, 'text'> = {
    src: null,
    dst: null,
    inIface: null,
    outIface: null,
    proto: null,
    sport: null,
    dport: null,
    target: { kind: 'ACCEPT', addrLo: 0, addrHi: 0, portLo: 0, portHi: 0, flags: 0 },
  };
  let targetSeen = false;
  const matches = new Set<string>();
  let comment: string | null = null;
  const seen = new Set<string>();
  let pendingNeg = false;
  let i = 0;
  const value = (opt: string): string => {
    if (i + 1 >= toks.length) throw new RuleError(`option '${opt}' needs a value`);
    return toks[++i];
  };
  for (; i < toks.length; i++) {
    const raw = toks[i];
    if (raw === '!') {
      if (pendingNeg) throw new RuleError(`'!' given twice`);
      pendingNeg = true;
      continue;
    }
    const opt = ALIASES[raw] ?? raw;
    const isNeg = pendingNeg;
    pendingNeg = false;
    if (isNeg && !NEGATABLE.has(opt)) throw new RuleError(`'!' cannot negate '${raw}'`);
    if (targetSeen && !opt.startsWith('--to') && !opt.startsWith('--random') && opt !== '--persistent')
      throw new RuleError(`'${raw}' after the -j target (matches must come before -j)`);
    const once = (): void => {
      if (seen.has(opt)) throw new RuleError(`multiple '${opt}' options are not allowed`);
      seen.add(opt);
    };
    switch (opt) {
      case '-s':
        once();
        r.src = readAddrMatch(value(raw), raw, isNeg);
        break;
      case '-d':
        once();
        r.dst = readAddrMatch(value(raw), raw, isNeg);
        break;
      case '-i':
        once();
        if (chain === 'POSTROUTING' || chain === 'OUTPUT')
          throw new RuleError(`'-i' cannot be used in ${chain} (no input interface there)`);
        r.inIface = readIface(value(raw), raw, isNeg);
        break;
      case '-o':
        once();
        if (chain === 'PREROUTING' || chain === 'INPUT')
          throw new RuleError(`'-o' cannot be used in ${chain} (no output interface there)`);
        r.outIface = readIface(value(raw), raw, isNeg);
        break;
      case '-p':
        once();
        r.proto = readProto(value(raw), isNeg);
        break;
      case '-m': {
        const m = value(raw); // match names are case-sensitive (iptables: "Couldn't load match `TCP'")
        if (m === 'tcp' || m === 'udp') {
          const p = r.proto;
          if (!p || p.neg || p.proto !== PROTO_NAMES[m]) throw new RuleError(`'-m ${m}' needs '-p ${m}' before it`);
        } else if (m !== 'comment') {
          throw new RuleError(`match '-m ${m}' is not supported (tcp, udp, comment)`);
        }
        if (matches.has(m)) throw new RuleError(`match '-m ${m}' given twice`);
        matches.add(m);
        break;
      }
      case '--comment': {
        once();
        if (!matches.has('comment')) throw new RuleError(`'--comment' needs '-m comment' before it`);
        const c = value(raw);
        if (c.length > COMMENT_MAX) throw new RuleError(`--comment: longer than ${COMMENT_MAX} characters`);
        if (/[\n\r]/.test(c)) throw new RuleError(`--comment: must not contain a newline`);
        comment = c;
        break;
      }
      case '--sport':
      case '--dport': {
        once();
        const p = r.proto;
        if (!p || p.neg || (p.proto !== 6 && p.proto !== 17))
          throw new RuleError(`'${raw}' needs '-p tcp' or '-p udp' before it`);
        const pm = readPortMatch(value(raw), raw, isNeg);
        if (opt === '--sport') r.sport = pm;
        else r.dport = pm;
        break;
      }
      case '-j': {
        once();
        const t = value(raw);
        if (!TARGETS.includes(t as NatTargetKind)) {
          if (t === 'DROP' || t === 'REJECT')
            throw new RuleError(`target '${t}' is not allowed in the nat table (filter in the filter table)`);
          throw new RuleError(
            `target '${t}' is not supported (MASQUERADE, SNAT, DNAT, ACCEPT, RETURN; user-defined chains are not supported)`,
          );
        }
        r.target.kind = t as NatTargetKind;
        targetSeen = true;
        break;
      }
      case '--to-ports':
        once();
        if (!targetSeen || r.target.kind !== 'MASQUERADE') throw new RuleError(`'--to-ports' belongs to -j MASQUERADE`);
        [r.target.portLo, r.target.portHi] = readNatPorts(value(raw), raw);
        r.target.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
        break;
      case '--to-source':
      case '--to-destination': {
        once();
        const kind = opt === '--to-source' ? 'SNAT' : 'DNAT';
        if (!targetSeen || r.target.kind !== kind) throw new RuleError(`'${raw}' belongs to -j ${kind}`);
        readNatRange(value(raw), raw, r.target);
        break;
      }
      case '--random':
        once();
        if (!targetSeen || (r.target.kind !== 'MASQUERADE' && r.target.kind !== 'SNAT' && r.target.kind !== 'DNAT'))
          throw new RuleError(`'--random' belongs to -j MASQUERADE, SNAT or DNAT`);
        r.target.flags |= NF_NAT_RANGE_PROTO_RANDOM;
        break;
      case '--random-fully':
        once();
        if (!targetSeen || (r.target.kind !== 'MASQUERADE' && r.target.kind !== 'SNAT'))
          throw new RuleError(`'--random-fully' belongs to -j MASQUERADE or SNAT`);
        r.target.flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
        break;
      case '--persistent':
        once();
        if (!targetSeen || (r.target.kind !== 'SNAT' && r.target.kind !== 'DNAT'))
          throw new RuleError(`'--persistent' belongs to -j SNAT or DNAT`);
        r.target.flags |= NF_NAT_RANGE_PERSISTENT;
        break;
      default:
        if (raw.startsWith('-')) throw new RuleError(`unknown option '${raw}'`);
        throw new RuleError(`unexpected '${raw}' (not an option)`);
    }
  }
  if (pendingNeg) throw new RuleError(`'!' at the end of the rule negates nothing`);
  if (matches.has('comment') && comment === null) throw new RuleError(`'-m comment' needs '--comment TEXT'`);
  if (!targetSeen) throw new RuleError(`rule has no '-j' target (a rule without a target is not supported)`);
  const t = r.target;
  switch (t.kind) {
    case 'MASQUERADE':
      if (chain !== 'POSTROUTING') throw new RuleError(`-j MASQUERADE is only valid in POSTROUTING, not ${chain}`);
      break;
    case 'SNAT':
      if (chain !== 'POSTROUTING' && chain !== 'INPUT')
        throw new RuleError(`-j SNAT is only valid in POSTROUTING and INPUT, not ${chain}`);
      if (!(t.flags & NF_NAT_RANGE_MAP_IPS)) throw new RuleError(`-j SNAT needs --to-source`);
      break;
    case 'DNAT':
      if (chain !== 'PREROUTING' && chain !== 'OUTPUT')
        throw new RuleError(`-j DNAT is only valid in PREROUTING and OUTPUT, not ${chain}`);
      if (!(t.flags & NF_NAT_RANGE_MAP_IPS)) throw new RuleError(`-j DNAT needs --to-destination`);
      break;
    default:
      break;
  }
  if (t.flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
    const p = r.proto;
    if (!p || p.neg || !NAT_PORT_PROTOS.includes(p.proto))
      throw new RuleError(
        `-j ${t.kind} with ports needs '-p tcp', udp, sctp, dccp or icmp (iptables: "Need TCP, UDP, SCTP or DCCP with port specification")`,
      );
  }
  if (r.proto && r.proto.proto === 0 && r.proto.neg)
    throw new RuleError(`'! -p all' would never match (iptables: "rule would never match protocol")`);
  if (r.proto && r.proto.proto === 0) r.proto = null; // -p all matches everything: iptables-save omits it
  // A non-negated full port range matches every packet of the protocol: iptables-save omits it.
  if (r.sport && !r.sport.neg && r.sport.lo === 0 && r.sport.hi === 65535) r.sport = null;
  if (r.dport && !r.dport.neg && r.dport.lo === 0 && r.dport.hi === 65535) r.dport = null;
  if (r.src && r.src.cidr.len === 0 && !r.src.neg) r.src = null; // 0.0.0.0/0, omitted by iptables-save
  if (r.dst && r.dst.cidr.len === 0 && !r.dst.neg) r.dst = null;
  return { ...r, text: formatNatRule(chain, r, { comment }) };
}

/**
 * Parse iptables-save text holding exactly the nat table. `lineOffset` is added to line numbers
 * in errors (the text's first line is file line lineOffset + 1); `where` names the key the text
 * came from (e.g. `instances.nat.iptables`), '' for a standalone file.
 * Errors are collected into `errors` when given (the caller throws), else thrown here.
 */
export function parseNatTable(text: string, file: string, lineOffset = 0, where = '', errors?: ErrorList): NatTable {
  const el = errors ?? new ErrorList(file);
  const before = el.count;
  const chains = emptyChains();
  let state: 'start' | 'table' | 'done' = 'start';
  const declared = new Set<string>();
  const lines = text.split(/\r?\n/);
  const err = (n: number, msg: string): void => {
    el.add(where ? `${where} line ${n}` : `line ${n}`, msg, lineOffset + n);
  };
  for (let k = 0; k < lines.length; k++) {
    const n = k + 1;
    const line = lines[k].trim();
    if (line === '' || line.startsWith('#')) continue;
    if (state === 'done') {
      if (line.startsWith('*'))
        err(n, `table '${line}': only the nat table is supported here (remove the other tables)`);
      else err(n, `'${line.slice(0, 40)}' after COMMIT`);
      break;
    }
    if (line.startsWith('*')) {
      if (state === 'table') {
        err(n, `'${line}' before COMMIT of *nat`);
        break;
      }
      if (line !== '*nat') {
        err(n, `table '${line}': only the nat table is supported (expected '*nat')`);
        break;
      }
      state = 'table';
      continue;
    }
    if (state === 'start') {
      err(n, `expected '*nat' before '${line.slice(0, 40)}'`);
      break;
    }
    if (line === 'COMMIT') {
      state = 'done';
      continue;
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?$/.exec(line);
      if (!m) {
        err(n, `bad chain line '${line}' (expected ':CHAIN POLICY [packets:bytes]')`);
        continue;
      }
      const [, name, policy] = m;
      if (!(NAT_CHAINS as readonly string[]).includes(name)) {
        err(n, `chain '${name}': user-defined chains are not supported (PREROUTING, INPUT, OUTPUT, POSTROUTING)`);
        continue;
      }
      if (declared.has(name)) err(n, `chain '${name}' declared twice`);
      declared.add(name);
      if (policy !== 'ACCEPT') err(n, `chain ${name} policy '${policy}': the nat table only takes policy ACCEPT`);
      continue;
    }
    let toks = tokenize(line);
    if (typeof toks === 'string') {
      err(n, toks);
      continue;
    }
    if (/^\[\d+:\d+\]$/.test(toks[0])) toks = toks.slice(1); // iptables-save -c counters
    if (toks[0] !== '-A' && toks[0] !== '--append') {
      if (toks[0] === '-I' || toks[0] === '-D' || toks[0] === '-N' || toks[0] === '-P' || toks[0] === '-F')
        err(n, `'${toks[0]}' is an iptables command; iptables-save text only has '-A CHAIN ...' rule lines`);
      else err(n, `unexpected '${toks[0]}' (expected '-A CHAIN ...', ':CHAIN POLICY', COMMIT or a # comment)`);
      continue;
    }
    const chain = toks[1];
    if (chain === undefined) {
      err(n, `'-A' without a chain`);
      continue;
    }
    if (!(NAT_CHAINS as readonly string[]).includes(chain)) {
      err(n, `chain '${chain}' does not exist in the nat table (PREROUTING, INPUT, OUTPUT, POSTROUTING)`);
      continue;
    }
    try {
      chains[chain as NatChainName].push(parseRuleTokens(chain as NatChainName, toks.slice(2)));
    } catch (e) {
      if (e instanceof RuleError) err(n, e.message);
      else throw e;
    }
  }
  if (el.count === before && state !== 'done') {
    const last = lines.length;
    err(last, state === 'start' ? `no '*nat' table in the text` : `missing COMMIT at the end of *nat`);
  }
  if (!errors) el.throwIfAny();
  return { chains, text: formatNatTable(chains) };
}
