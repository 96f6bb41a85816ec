// The one parser of an iptables-save rule's options (`-A CHAIN` already taken off): the generic IP
// matches (-s -d -i -o -p with `!`), the match modules (-m tcp/udp with --sport --dport
// --tcp-flags --syn, -m comment) and the placement rules every table shares (options once, matches
// before -j, `!` only where iptables takes it). Each table (nat, mangle) gives what it allows — its
// match modules, its targets and their options — in a RuleOptionsSpec; the table's own checks
// (a target's needs, a chain's restrictions) stay with the table. Cold path.

import {
  CTSTATE_NAMES,
  type CidrMatch,
  type CtStateMatch,
  ICMP_TYPE_ANY,
  type IcmpTypeMatch,
  type IfaceMatch,
  type MultiportMatch,
  type PortMatch,
  type ProtoMatch,
  type RuleMatches,
} from '../spec/scenario.ts';
import { readCidr } from './addr-text.ts';

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
/** One line of an iptables-save table section: a chain declaration or a command line, tokenized. */
export type TableLine =
  | { kind: 'chain'; n: number; name: string; policy: string }
  | { kind: 'command'; n: number; toks: string[] };

/**
 * The lines of one `*table` ... `COMMIT` section of iptables-save text, for the filter and mangle
 * parsers: blank lines and comments skipped, the header and COMMIT checked, `:CHAIN POLICY
 * [p:b]` lines parsed, other lines tokenized with iptables-save -c counters dropped. Shape errors go
 * to `err(line, message)` (a missing or out-of-place header ends the walk); `committed()` says
 * whether COMMIT was seen. Bounded by the number of lines.
 */
export function tableLines(
  lines: readonly string[],
  table: string,
  err: (n: number, msg: string) => void,
): { lines: TableLine[]; committed: boolean } {
  const out: TableLine[] = [];
  let state: 'start' | 'table' | 'done' = 'start';
  for (let k = 0; k < lines.length; k++) {
    const n = k + 1;
    const line = lines[k].trim();
    if (line === '' || line.startsWith('#')) continue;
    if (state === 'done') {
      err(n, `'${line.slice(0, 40)}' after COMMIT of *${table}`);
      break;
    }
    if (state === 'start') {
      if (line !== `*${table}`) {
        err(n, `expected '*${table}' before '${line.slice(0, 40)}'`);
        break;
      }
      state = 'table';
      continue;
    }
    if (line === 'COMMIT') {
      state = 'done';
      continue;
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?$/.exec(line);
      if (!m) err(n, `bad chain line '${line}' (expected ':CHAIN POLICY [packets:bytes]')`);
      else out.push({ kind: 'chain', n, name: m[1], policy: m[2] });
      continue;
    }
    const toks = tokenize(line);
    if (typeof toks === 'string') {
      err(n, toks);
      continue;
    }
    out.push({ kind: 'command', n, toks: /^\[\d+:\d+\]$/.test(toks[0]) ? toks.slice(1) : toks });
  }
  return { lines: out, committed: state === 'done' };
}

export function quote(s: string): string {
  return /^[A-Za-z0-9_-]+$/.test(s) ? s : `"${s.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

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

/** libxt_tcp's flag names, in the order iptables-save prints them. */
export const TCP_FLAG_NAMES: ReadonlyArray<[string, number]> = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
];
export const TCP_FLAGS_ALL = 0x3f;
export const TCP_FLAG_SYN = 0x02;
/** `--syn` = `--tcp-flags FIN,SYN,RST,ACK SYN`. */
export const SYN_MASK = 0x17;

/** print_tcpf: names in bit order, NONE for 0. */
export function formatTcpFlags(f: number): string {
  const names = TCP_FLAG_NAMES.filter(([, b]) => f & b).map(([n]) => n);
  return names.length ? names.join(',') : 'NONE';
}

function readTcpFlags(text: string, opt: string): number {
  let f = 0;
  for (const name of text.split(',')) {
    const u = name.toUpperCase();
    if (u === 'ALL') f |= TCP_FLAGS_ALL;
    else if (u === 'NONE') continue;
    else {
      const e = TCP_FLAG_NAMES.find(([n]) => n === u);
      if (!e) throw new RuleError(`${opt}: unknown TCP flag '${name}' (FIN, SYN, RST, PSH, ACK, URG, ALL, NONE)`);
      f |= e[1];
    }
  }
  return f;
}

/** What a rule's options say, before the table's own checks and canonical form. */
export interface ParsedRuleOptions extends RuleMatches {
  /** `-m comment --comment` text. */
  comment: string | null;
  /** The -j target's name ('' when the rule has none: an error after parsing). */
  target: string;
}

/** What one table allows; the parser handles everything else the same for every table. */
export interface RuleOptionsSpec {
  /** The chain the rule is in: -i is refused where there is no input device, -o where no output. */
  chain: string;
  /** Match modules `-m NAME` the table takes besides tcp/udp/comment (icmp, multiport, conntrack, state). */
  modules: readonly string[];
  /** The message for a refused `-m NAME`. */
  refuseModule(name: string): string;
  /** --tcp-flags / --syn are options here (mangle: yes; nat: unknown options). */
  tcpFlags: boolean;
  /** Throws RuleError for a target the table does not take. */
  checkTarget(name: string): void;
  /** Options that belong to targets (allowed after -j; anywhere else they are the target's to refuse). */
  isTargetOption(opt: string): boolean;
  /** Handles target option `opt` of target `target` ('' if no -j yet); `value()` takes its value. */
  targetOption(opt: string, raw: string, target: string, value: () => string): void;
  /** Duplicate option message names the option as normalised (nat) or as written (mangle). */
  onceByRaw: boolean;
}

const NEGATABLE = new Set(['-s', '-d', '-i', '-o', '-p', '--sport', '--dport']);
const NEGATABLE_TCP = new Set(['--tcp-flags', '--syn']);
/** Module options and the module they belong to (an option of a module the table does not take is unknown). */
const MODULE_OF: Record<string, string> = {
  '--icmp-type': 'icmp',
  '--dports': 'multiport',
  '--sports': 'multiport',
  '--ports': 'multiport',
  '--destination-ports': 'multiport',
  '--source-ports': 'multiport',
  '--ctstate': 'conntrack',
  '--state': 'state',
};
/** xt_multiport XT_MULTI_PORTS: 15 port slots, a range taking two. */
export const MULTIPORT_MAX = 15;
/** Protocols xt_multiport's checkentry takes (un-negated -p). */
const MULTIPORT_PROTOS = [6, 17, 33, 132, 136];

/** libxt_icmp's names: [name, type, codeLo, codeHi]. */
export const ICMP_TYPE_NAMES: ReadonlyArray<[string, number, number, number]> = [
  ['any', ICMP_TYPE_ANY, 0, 255],
  ['echo-reply', 0, 0, 255],
  ['destination-unreachable', 3, 0, 255],
  ['network-unreachable', 3, 0, 0],
  ['host-unreachable', 3, 1, 1],
  ['protocol-unreachable', 3, 2, 2],
  ['port-unreachable', 3, 3, 3],
  ['fragmentation-needed', 3, 4, 4],
  ['source-route-failed', 3, 5, 5],
  ['network-unknown', 3, 6, 6],
  ['host-unknown', 3, 7, 7],
  ['network-prohibited', 3, 9, 9],
  ['host-prohibited', 3, 10, 10],
  ['TOS-network-unreachable', 3, 11, 11],
  ['TOS-host-unreachable', 3, 12, 12],
  ['communication-prohibited', 3, 13, 13],
  ['host-precedence-violation', 3, 14, 14],
  ['precedence-cutoff', 3, 15, 15],
  ['source-quench', 4, 0, 255],
  ['redirect', 5, 0, 255],
  ['network-redirect', 5, 0, 0],
  ['host-redirect', 5, 1, 1],
  ['TOS-network-redirect', 5, 2, 2],
  ['TOS-host-redirect', 5, 3, 3],
  ['echo-request', 8, 0, 255],
  ['router-advertisement', 9, 0, 255],
  ['router-solicitation', 10, 0, 255],
  ['time-exceeded', 11, 0, 255],
  ['ttl-zero-during-transit', 11, 0, 0],
  ['ttl-zero-during-reassembly', 11, 1, 1],
  ['parameter-problem', 12, 0, 255],
  ['ip-header-bad', 12, 0, 0],
  ['required-option-missing', 12, 1, 1],
  ['timestamp-request', 13, 0, 255],
  ['timestamp-reply', 14, 0, 255],
  ['address-mask-request', 17, 0, 255],
  ['address-mask-reply', 18, 0, 255],
];

/** libxt_icmp parse_icmp: a name, `type` or `type/code`. */
function readIcmpType(text: string, isNeg: boolean): IcmpTypeMatch {
  const named = ICMP_TYPE_NAMES.find(([n]) => n === text);
  if (named) return { type: named[1], codeLo: named[2], codeHi: named[3], neg: isNeg };
  const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(text);
  if (!m || Number(m[1]) > 255 || (m[2] !== undefined && Number(m[2]) > 255))
    throw new RuleError(
      `--icmp-type: '${text}' is not an ICMP type (a name such as echo-request, or type[/code] 0..255)`,
    );
  if (m[2] === undefined) return { type: Number(m[1]), codeLo: 0, codeHi: 255, neg: isNeg };
  return { type: Number(m[1]), codeLo: Number(m[2]), codeHi: Number(m[2]), neg: isNeg };
}

/** libxt_multiport: `p[:q],...`, at most 15 slots (a range takes two). */
function readMultiport(text: string, opt: string, dir: MultiportMatch['dir'], isNeg: boolean): MultiportMatch {
  const lo: number[] = [];
  const hi: number[] = [];
  let slots = 0;
  for (const part of text.split(',')) {
    if (part === '') throw new RuleError(`${opt}: empty port in '${text}'`);
    const pm = readPortMatch(part, opt, false);
    slots += pm.lo === pm.hi ? 1 : 2;
    lo.push(pm.lo);
    hi.push(pm.hi);
  }
  if (slots > MULTIPORT_MAX)
    throw new RuleError(`${opt}: too many ports in '${text}' (at most ${MULTIPORT_MAX}, a range counting 2)`);
  return { dir, lo, hi, neg: isNeg };
}

/** libxt_conntrack / libxt_state state list. */
function readCtStates(text: string, opt: string, module: CtStateMatch['module'], isNeg: boolean): CtStateMatch {
  if (module === 'state' && isNeg)
    throw new RuleError(`'! --state': use '-m conntrack ! --ctstate' (libxt_state stores the inverted mask)`);
  let states = 0;
  for (const name of text.split(',')) {
    const e = CTSTATE_NAMES.find(([n]) => n === name.toUpperCase());
    if (!e) {
      if (/^[SD]NAT$/i.test(name))
        throw new RuleError(`${opt}: state '${name}' is not modelled (INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED)`);
      throw new RuleError(`${opt}: unknown state '${name}' (INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED)`);
    }
    states |= e[1];
  }
  return { states, neg: isNeg, module };
}
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
/** Chains without an input device (-i refused) and without an output device (-o refused). */
const NO_IN = new Set(['POSTROUTING', 'OUTPUT']);
const NO_OUT = new Set(['PREROUTING', 'INPUT']);

/** Parses the tokens after `-A CHAIN` as `spec` allows. Throws RuleError naming the token. */
export function parseRuleOptions(toks: readonly string[], spec: RuleOptionsSpec): ParsedRuleOptions {
  const r: ParsedRuleOptions = {
    src: null,
    dst: null,
    inIface: null,
    outIface: null,
    proto: null,
    l4Match: null,
    sport: null,
    dport: null,
    tcpFlags: null,
    icmp: null,
    multiport: null,
    ctstate: null,
    comment: null,
    target: '',
  };
  const matches = new Set<string>();
  const seen = new Set<string>();
  let pendingNeg = false;
  let i = 0;
  const value = (opt: string): string => {
    if (i + 1 >= toks.length) throw new RuleError(`option '${opt}' needs a value`);
    return toks[++i];
  };
  /** --sport/--dport/--tcp-flags load the protocol's match implicitly, as iptables does for -p tcp/udp. */
  const l4 = (raw: string, tcpOnly: boolean): 'tcp' | 'udp' => {
    const p = r.proto;
    const ok = p && !p.neg && (p.proto === PROTO_NAMES.tcp || (!tcpOnly && p.proto === PROTO_NAMES.udp));
    if (!ok) throw new RuleError(`'${raw}' needs '-p tcp'${tcpOnly ? '' : " or '-p udp'"} before it`);
    return p.proto === PROTO_NAMES.tcp ? 'tcp' : 'udp';
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
    const module = MODULE_OF[opt];
    if (module !== undefined && !spec.modules.includes(module)) throw new RuleError(`unknown option '${raw}'`);
    if (isNeg && !NEGATABLE.has(opt) && !(spec.tcpFlags && NEGATABLE_TCP.has(opt)) && module === undefined)
      throw new RuleError(`'!' cannot negate '${raw}'`);
    if (r.target !== '' && !spec.isTargetOption(opt))
      throw new RuleError(`'${raw}' after the -j target (matches must come before -j)`);
    const once = (key = opt): void => {
      if (seen.has(key)) throw new RuleError(`multiple '${spec.onceByRaw ? raw : opt}' options are not allowed`);
      seen.add(key);
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
        if (NO_IN.has(spec.chain))
          throw new RuleError(`'-i' cannot be used in ${spec.chain} (no input interface there)`);
        r.inIface = readIface(value(raw), raw, isNeg);
        break;
      case '-o':
        once();
        if (NO_OUT.has(spec.chain))
          throw new RuleError(`'-o' cannot be used in ${spec.chain} (no output interface there)`);
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
          r.l4Match = m;
        } else if (m === 'icmp' && spec.modules.includes(m)) {
          const p = r.proto;
          if (!p || p.neg || p.proto !== PROTO_NAMES.icmp) throw new RuleError(`'-m icmp' needs '-p icmp' before it`);
          r.icmp ??= { type: ICMP_TYPE_ANY, codeLo: 0, codeHi: 255, neg: false };
        } else if (m === 'multiport' && spec.modules.includes(m)) {
          const p = r.proto;
          if (!p || p.neg || !MULTIPORT_PROTOS.includes(p.proto))
            throw new RuleError(
              `'-m multiport' needs '-p tcp', udp, sctp, dccp or udplite before it (xt_multiport: "multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP")`,
            );
        } else if (m !== 'comment' && !spec.modules.includes(m)) {
          throw new RuleError(spec.refuseModule(m));
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
        r.comment = c;
        break;
      }
      case '--sport':
      case '--dport': {
        once();
        r.l4Match = l4(raw, false);
        const pm = readPortMatch(value(raw), raw, isNeg);
        if (opt === '--sport') r.sport = pm;
        else r.dport = pm;
        break;
      }
      case '--tcp-flags':
        if (!spec.tcpFlags) throw new RuleError(`unknown option '${raw}'`);
        once('--tcp-flags');
        r.l4Match = l4(raw, true);
        r.tcpFlags = { mask: readTcpFlags(value(raw), raw), cmp: readTcpFlags(value(raw), raw), neg: isNeg };
        break;
      case '--syn':
        if (!spec.tcpFlags) throw new RuleError(`unknown option '${raw}'`);
        once('--tcp-flags');
        r.l4Match = l4(raw, true);
        r.tcpFlags = { mask: SYN_MASK, cmp: TCP_FLAG_SYN, neg: isNeg };
        break;
      case '--icmp-type': {
        once();
        const p = r.proto;
        if (!p || p.neg || p.proto !== PROTO_NAMES.icmp) throw new RuleError(`'${raw}' needs '-p icmp' before it`);
        matches.add('icmp');
        r.icmp = readIcmpType(value(raw), isNeg);
        break;
      }
      case '--dports':
      case '--sports':
      case '--ports':
      case '--destination-ports':
      case '--source-ports': {
        if (!matches.has('multiport')) throw new RuleError(`'${raw}' needs '-m multiport' before it`);
        once('multiport');
        const dir = opt === '--ports' ? 'ports' : opt === '--sports' || opt === '--source-ports' ? 'sports' : 'dports';
        r.multiport = readMultiport(value(raw), raw, dir, isNeg);
        break;
      }
      case '--ctstate':
      case '--state': {
        const mod = opt === '--ctstate' ? 'conntrack' : 'state';
        if (!matches.has(mod)) throw new RuleError(`'${raw}' needs '-m ${mod}' before it`);
        once();
        r.ctstate = readCtStates(value(raw), raw, mod, isNeg);
        break;
      }
      case '-j': {
        once();
        const t = value(raw);
        spec.checkTarget(t);
        r.target = t;
        break;
      }
      default:
        if (spec.isTargetOption(opt)) {
          spec.targetOption(opt, raw, r.target, () => value(raw));
          break;
        }
        if (raw.startsWith('-')) throw new RuleError(`unknown option '${raw}'`);
        throw new RuleError(`unexpected '${raw}' (not an option)`);
    }
  }
  if (pendingNeg) throw new RuleError(`'!' at the end of the rule negates nothing`);
  if (matches.has('comment') && r.comment === null) throw new RuleError(`'-m comment' needs '--comment TEXT'`);
  if (matches.has('multiport') && r.multiport === null)
    throw new RuleError(`'-m multiport' needs --dports, --sports or --ports`);
  if (matches.has('conntrack') && r.ctstate === null)
    throw new RuleError(`'-m conntrack' needs '--ctstate STATES' (natlab models the state match only)`);
  if (matches.has('state') && r.ctstate === null) throw new RuleError(`'-m state' needs '--state STATES'`);
  if (matches.has('conntrack') && matches.has('state'))
    throw new RuleError(`'-m conntrack --ctstate' and '-m state --state' in one rule: give one`);
  if (r.target === '') throw new RuleError(`rule has no '-j' target (a rule without a target is not supported)`);
  if (r.proto && r.proto.proto === 0 && r.proto.neg)
    throw new RuleError(`'! -p all' would never match (iptables: "rule would never match protocol")`);
  if (r.proto && r.proto.proto === 0) r.proto = null; // -p all matches everything: iptables-save omits it
  if (r.src && r.src.cidr.len === 0 && !r.src.neg) r.src = null; // 0.0.0.0/0, omitted by iptables-save
  if (r.dst && r.dst.cidr.len === 0 && !r.dst.neg) r.dst = null;
  return r;
}
