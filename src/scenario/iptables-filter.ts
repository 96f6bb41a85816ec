// The filter table of an instance's iptables-save text (`*filter` ... `COMMIT`): INPUT, FORWARD and
// OUTPUT with their policies, user chains (`:NAME - [0:0]` or `-N NAME`, `-j NAME`, RETURN), the
// shared matches (iptables-rule.ts) plus -m conntrack/state/multiport/icmp, and the targets ACCEPT,
// DROP, REJECT (--reject-with), LOG (counted, the packet goes on) — validated as iptables-restore and
// the kernel's checkentry functions do (ipt_REJECT reject_tg_check, xt_multiport, the chain-loop
// check of translate_table), kept as canonical iptables-save text the kernel engine restores. Cold path.

import {
  CTSTATE_NAMES,
  FILTER_CHAINS,
  type FilterChainName,
  type FilterRule,
  type FilterTable,
  type FilterTargetKind,
  ICMP_TYPE_ANY,
  type RejectWith,
} from '../spec/scenario.ts';
import { formatCidr } from '../packet/addr.ts';
import { ErrorList } from './error-list.ts';
import { fmtPort } from './iptables.ts';
import {
  PROTO_NAMES,
  RuleError,
  formatTcpFlags,
  parseRuleOptions,
  protoName,
  quote,
  tableLines,
} from './iptables-rule.ts';

/** ipt_REJECT's --reject-with names (libipt_REJECT reject_table), with their short aliases and ICMP codes. */
export const REJECT_WITH: ReadonlyArray<{ name: RejectWith; alias: string; code: number }> = [
  { name: 'icmp-net-unreachable', alias: 'net-unreach', code: 0 },
  { name: 'icmp-host-unreachable', alias: 'host-unreach', code: 1 },
  { name: 'icmp-proto-unreachable', alias: 'proto-unreach', code: 2 },
  { name: 'icmp-port-unreachable', alias: 'port-unreach', code: 3 },
  { name: 'icmp-net-prohibited', alias: 'net-prohib', code: 9 },
  { name: 'icmp-host-prohibited', alias: 'host-prohib', code: 10 },
  { name: 'icmp-admin-prohibited', alias: 'admin-prohib', code: 13 },
  { name: 'tcp-reset', alias: 'tcp-rst', code: -1 },
];

/** The ICMP destination-unreachable code a REJECT sends (-1: tcp-reset). */
export function rejectCode(w: RejectWith): number {
  return REJECT_WITH.find((e) => e.name === w)?.code ?? 3;
}

/** libipt_LOG: prefix at most 29 characters; syslog levels. */
const LOG_PREFIX_MAX = 29;
const LOG_LEVELS = ['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'];
const LOG_LEVEL_DEFAULT = 4;
/** XT_EXTENSION_MAXNAMELEN - 1: the longest chain name iptables takes. */
const CHAIN_NAME_MAX = 28;
const BUILTIN_TARGETS = ['ACCEPT', 'DROP', 'REJECT', 'LOG', 'RETURN'];

function neg(b: boolean): string {
  return b ? '! ' : '';
}

function stateText(states: number): string {
  return CTSTATE_NAMES.filter(([, b]) => states & b)
    .map(([n]) => n)
    .join(',');
}

/** Canonical iptables-save line of a filter rule (matches in a fixed order iptables-restore takes). */
export function formatFilterRule(chain: string, r: Omit<FilterRule, 'text'>, comment: string | null = null): string {
  const p: string[] = [`-A ${chain}`];
  if (r.src) p.push(`${neg(r.src.neg)}-s ${formatCidr(r.src.cidr)}`);
  if (r.dst) p.push(`${neg(r.dst.neg)}-d ${formatCidr(r.dst.cidr)}`);
  if (r.inIface) p.push(`${neg(r.inIface.neg)}-i ${r.inIface.name}`);
  if (r.outIface) p.push(`${neg(r.outIface.neg)}-o ${r.outIface.name}`);
  if (r.proto) p.push(`${neg(r.proto.neg)}-p ${protoName(r.proto.proto)}`);
  if (r.l4Match) {
    p.push(`-m ${r.l4Match}`);
    if (r.sport) p.push(`${neg(r.sport.neg)}--sport ${fmtPort(r.sport)}`);
    if (r.dport) p.push(`${neg(r.dport.neg)}--dport ${fmtPort(r.dport)}`);
    if (r.tcpFlags)
      p.push(`${neg(r.tcpFlags.neg)}--tcp-flags ${formatTcpFlags(r.tcpFlags.mask)} ${formatTcpFlags(r.tcpFlags.cmp)}`);
  }
  if (r.icmp) {
    const t = r.icmp;
    const type =
      t.type === ICMP_TYPE_ANY ? 'any' : t.codeLo === 0 && t.codeHi === 255 ? String(t.type) : `${t.type}/${t.codeLo}`;
    p.push(`-m icmp ${neg(t.neg)}--icmp-type ${type}`);
  }
  if (r.multiport) {
    const m = r.multiport;
    const list = m.lo.map((lo, k) => (lo === m.hi[k] ? String(lo) : `${lo}:${m.hi[k]}`)).join(',');
    p.push(`-m multiport ${neg(m.neg)}--${m.dir} ${list}`);
  }
  if (r.ctstate) {
    const c = r.ctstate;
    p.push(`-m ${c.module} ${neg(c.neg)}--${c.module === 'conntrack' ? 'ctstate' : 'state'} ${stateText(c.states)}`);
  }
  if (comment !== null) p.push(`-m comment --comment ${quote(comment)}`);
  p.push(`-j ${r.target === 'JUMP' ? r.chain : r.target}`);
  if (r.target === 'REJECT') p.push(`--reject-with ${r.rejectWith}`);
  if (r.target === 'LOG') {
    if (r.logPrefix !== null) p.push(`--log-prefix ${quote(r.logPrefix)}`);
    if (r.logLevel !== LOG_LEVEL_DEFAULT) p.push(`--log-level ${r.logLevel}`);
  }
  return p.join(' ');
}

/** Canonical iptables-save text of a filter table: built-in chains with policies, user chains, rules. */
export function formatFilterTable(t: Omit<FilterTable, 'text'>): string {
  const lines = ['*filter'];
  for (const c of FILTER_CHAINS) lines.push(`:${c} ${t.policy[c]} [0:0]`);
  for (const c of t.userChains) lines.push(`:${c} - [0:0]`);
  for (const c of [...FILTER_CHAINS, ...t.userChains]) for (const r of t.chains[c]) lines.push(r.text);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** A filter rule from fields, defaults for everything not given (generators and tests). */
export function filterRule(chain: string, fields: Partial<Omit<FilterRule, 'text'>>): FilterRule {
  const r: Omit<FilterRule, 'text'> = {
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
    target: 'ACCEPT',
    chain: '',
    rejectWith: 'icmp-port-unreachable',
    logPrefix: null,
    logLevel: LOG_LEVEL_DEFAULT,
    ...fields,
  };
  return { ...r, text: formatFilterRule(chain, r) };
}

/** A FilterTable from policies, user chains and rules given as fields. */
export function buildFilterTable(
  policy: Partial<Record<FilterChainName, 'ACCEPT' | 'DROP'>>,
  userChains: string[],
  rules: Array<{ chain: string; rule: Partial<Omit<FilterRule, 'text'>> }>,
): FilterTable {
  const chains: Record<string, FilterRule[]> = {};
  for (const c of [...FILTER_CHAINS, ...userChains]) chains[c] = [];
  for (const { chain, rule } of rules) chains[chain].push(filterRule(chain, rule));
  const t = {
    policy: { INPUT: 'ACCEPT', FORWARD: 'ACCEPT', OUTPUT: 'ACCEPT', ...policy } as FilterTable['policy'],
    chains,
    userChains: [...userChains],
  };
  return { ...t, text: formatFilterTable(t) };
}

function parseFilterRuleTokens(chain: string, toks: string[], isChain: (name: string) => boolean): FilterRule {
  let rejectWith: RejectWith = 'icmp-port-unreachable';
  let logPrefix: string | null = null;
  let logLevel = LOG_LEVEL_DEFAULT;
  const seenOpt = new Set<string>();
  const o = parseRuleOptions(toks, {
    chain,
    modules: ['icmp', 'multiport', 'conntrack', 'state'],
    refuseModule: (m) =>
      `match '-m ${m}' is not supported in the filter table (tcp, udp, icmp, multiport, conntrack, state, comment)`,
    tcpFlags: true,
    onceByRaw: true,
    checkTarget(name) {
      if (BUILTIN_TARGETS.includes(name) || isChain(name)) return;
      if (FILTER_CHAINS.includes(name as FilterChainName))
        throw new RuleError(`'-j ${name}': a built-in chain cannot be jumped to`);
      throw new RuleError(
        `target '${name}' is not supported in the filter table (ACCEPT, DROP, REJECT, LOG, RETURN or a user chain declared with ':${name} - [0:0]')`,
      );
    },
    isTargetOption: (opt) => opt === '--reject-with' || opt.startsWith('--log-'),
    targetOption(opt, raw, target, value) {
      if (seenOpt.has(opt)) throw new RuleError(`multiple '${raw}' options are not allowed`);
      seenOpt.add(opt);
      if (opt === '--reject-with') {
        if (target !== 'REJECT') throw new RuleError(`'--reject-with' belongs to -j REJECT`);
        const v = value();
        const e = REJECT_WITH.find((x) => x.name === v || x.alias === v);
        if (!e)
          throw new RuleError(
            `--reject-with: '${v}' is not a reject type (${REJECT_WITH.map((x) => x.name).join(', ')})`,
          );
        rejectWith = e.name;
        return;
      }
      if (target !== 'LOG') throw new RuleError(`'${raw}' belongs to -j LOG`);
      if (opt === '--log-prefix') {
        const v = value();
        if (v.length > LOG_PREFIX_MAX) throw new RuleError(`--log-prefix: longer than ${LOG_PREFIX_MAX} characters`);
        if (/[\n\r]/.test(v)) throw new RuleError(`--log-prefix: must not contain a newline`);
        logPrefix = v;
      } else if (opt === '--log-level') {
        const v = value();
        const k = /^[0-7]$/.test(v) ? Number(v) : LOG_LEVELS.indexOf(v.toLowerCase());
        if (k < 0) throw new RuleError(`--log-level: '${v}' is not a syslog level (0..7 or ${LOG_LEVELS.join(', ')})`);
        logLevel = k;
      } else throw new RuleError(`unknown option '${raw}' (LOG takes --log-prefix and --log-level)`);
    },
  });
  const builtin = BUILTIN_TARGETS.includes(o.target);
  const r: Omit<FilterRule, 'text'> = {
    src: o.src,
    dst: o.dst,
    inIface: o.inIface,
    outIface: o.outIface,
    proto: o.proto,
    l4Match: o.l4Match,
    sport: o.sport,
    dport: o.dport,
    tcpFlags: o.tcpFlags,
    icmp: o.icmp,
    multiport: o.multiport,
    ctstate: o.ctstate,
    target: builtin ? (o.target as FilterTargetKind) : 'JUMP',
    chain: builtin ? '' : o.target,
    rejectWith,
    logPrefix,
    logLevel,
  };
  if (
    r.target === 'REJECT' &&
    r.rejectWith === 'tcp-reset' &&
    (!r.proto || r.proto.neg || r.proto.proto !== PROTO_NAMES.tcp)
  )
    throw new RuleError(`--reject-with tcp-reset needs '-p tcp' (ipt_REJECT: "TCP_RESET invalid for non-tcp")`);
  return { ...r, text: formatFilterRule(chain, r, o.comment) };
}

/** The chain names a rule jumps to, for the loop check. */
function jumpsOf(rules: readonly FilterRule[]): string[] {
  return rules.filter((r) => r.target === 'JUMP').map((r) => r.chain);
}

/**
 * Parse iptables-save text holding exactly the filter table (`*filter` ... `COMMIT`).
 * `lineOffset`, `where` and `errors` as parseNatTable.
 */
export function parseFilterTable(
  text: string,
  file: string,
  lineOffset = 0,
  where = '',
  errors?: ErrorList,
): FilterTable {
  const el = errors ?? new ErrorList(file);
  const before = el.count;
  const policy: FilterTable['policy'] = { INPUT: 'ACCEPT', FORWARD: 'ACCEPT', OUTPUT: 'ACCEPT' };
  const chains: Record<string, FilterRule[]> = { INPUT: [], FORWARD: [], OUTPUT: [] };
  const userChains: string[] = [];
  const lines = text.split(/\r?\n/);
  const err = (n: number, msg: string): void => {
    el.add(where ? `${where} line ${n}` : `line ${n}`, msg, lineOffset + n);
  };
  // User chains may be declared anywhere in the table (iptables-restore creates them first).
  const isUser = (name: string): boolean => userChains.includes(name);
  const declare = (n: number, name: string): void => {
    if (FILTER_CHAINS.includes(name as FilterChainName) || isUser(name)) {
      err(n, `chain '${name}' declared twice`);
      return;
    }
    if (name.length > CHAIN_NAME_MAX || !/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('-'))
      return err(n, `chain name '${name}' must be 1..${CHAIN_NAME_MAX} of A-Z a-z 0-9 _ . - (not starting with -)`);
    if (name.startsWith('NATLAB_'))
      return err(n, `chain name '${name}': names starting NATLAB_ are natlab's own (kernel engine)`);
    if (BUILTIN_TARGETS.includes(name) || name === 'JUMP') return err(n, `chain name '${name}' is a target's name`);
    userChains.push(name);
    chains[name] = [];
  };
  const ruleLines: Array<{ n: number; toks: string[] }> = [];
  const declaredBuiltin = new Set<string>();
  const section = tableLines(lines, 'filter', err);
  for (const tl of section.lines) {
    const n = tl.n;
    if (tl.kind === 'chain') {
      const { name, policy: pol } = tl;
      if (FILTER_CHAINS.includes(name as FilterChainName)) {
        if (declaredBuiltin.has(name)) err(n, `chain '${name}' declared twice`);
        declaredBuiltin.add(name);
        if (pol !== 'ACCEPT' && pol !== 'DROP')
          err(n, `chain ${name} policy '${pol}': a built-in chain's policy is ACCEPT or DROP`);
        else policy[name as FilterChainName] = pol;
        continue;
      }
      if (pol !== '-') {
        err(n, `chain '${name}' policy '${pol}': a user chain has no policy ('-'); built-in: INPUT, FORWARD, OUTPUT`);
        continue;
      }
      declare(n, name);
      continue;
    }
    const toks = tl.toks;
    if (toks[0] === '-N' || toks[0] === '--new-chain') {
      if (toks.length !== 2) err(n, `'-N' takes one chain name`);
      else declare(n, toks[1]);
      continue;
    }
    if (toks[0] !== '-A' && toks[0] !== '--append') {
      err(n, `unexpected '${toks[0]}' (expected '-A CHAIN ...', ':CHAIN POLICY', '-N CHAIN', COMMIT or a # comment)`);
      continue;
    }
    if (toks[1] === undefined) {
      err(n, `'-A' without a chain`);
      continue;
    }
    ruleLines.push({ n, toks });
  }
  if (el.count === before && !section.committed) err(lines.length, `missing COMMIT at the end of *filter`);
  for (const { n, toks } of ruleLines) {
    const chain = toks[1];
    if (!(chain in chains)) {
      err(n, `chain '${chain}' does not exist in the filter table (INPUT, FORWARD, OUTPUT or a declared user chain)`);
      continue;
    }
    try {
      const r = parseFilterRuleTokens(chain, toks.slice(2), isUser);
      if (r.target === 'JUMP' && r.chain === chain)
        throw new RuleError(`'-j ${chain}' jumps to its own chain (a loop)`);
      chains[chain].push(r);
    } catch (e) {
      if (e instanceof RuleError) err(n, e.message);
      else throw e;
    }
  }
  // translate_table's mark_source_chains: a chain reachable from itself is a loop (ELOOP).
  for (const start of userChains) {
    const seen = new Set<string>();
    const stack = jumpsOf(chains[start]);
    let bound = userChains.length * userChains.length + 1;
    while (stack.length > 0 && bound-- > 0) {
      const c = stack.pop() as string;
      if (c === start) {
        err(
          lines.length,
          `user chain '${start}' reaches itself through -j (iptables-restore: "Too many levels of symbolic links")`,
        );
        break;
      }
      if (seen.has(c)) continue;
      seen.add(c);
      stack.push(...jumpsOf(chains[c] ?? []));
    }
  }
  if (!errors) el.throwIfAny();
  const t = { policy, chains, userChains };
  return { ...t, text: formatFilterTable(t) };
}

/** The filter table has no rule and every policy ACCEPT: it drops nothing (its policies still count). */
export function filterIsEmpty(t: FilterTable | null | undefined): boolean {
  if (!t) return true;
  return FILTER_CHAINS.every((c) => t.policy[c] === 'ACCEPT' && t.chains[c].length === 0);
}

/**
 * Splits an instance's iptables-save text into its `*filter` ... `COMMIT` section and the rest,
 * keeping every line's number (as takeMangleSection).
 */
export function takeFilterSection(text: string): { rest: string; filter: string | null } {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => l.trim() === '*filter');
  if (start < 0) return { rest: text, filter: null };
  let end = start + 1;
  while (end < lines.length && lines[end].trim() !== 'COMMIT' && !lines[end].trim().startsWith('*')) end++;
  const last = end < lines.length && lines[end].trim() === 'COMMIT' ? end : end - 1;
  const inside = (k: number): boolean => k >= start && k <= last;
  return {
    rest: lines.map((l, k) => (inside(k) ? '' : l)).join('\n'),
    filter: lines.map((l, k) => (inside(k) ? l : '')).join('\n'),
  };
}
