// The mangle table of an instance's iptables-save text: TCP MSS clamping as real NAT boxes add it
// (`-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`, or
// `--set-mss N`, in FORWARD or POSTROUTING), validated as iptables/xt_TCPMSS's checkentry does,
// kept as canonical iptables-save text the kernel engine restores. The `*mangle` section is taken
// out of the instance's text here; the rest goes to the nat parser (iptables.ts). Cold path.

import {
  MANGLE_ALL_CHAINS,
  MANGLE_CHAINS,
  TCPMSS_CLAMP_PMTU,
  type MangleChainName,
  type MangleRule,
  type MangleTable,
  type MangleTargetKind,
} from '../spec/scenario.ts';
import { formatCidr } from '../packet/addr.ts';
import { ErrorList } from './error-list.ts';
import {
  COMMENT_MAX,
  PROTO_NAMES,
  RuleError,
  fmtPort,
  protoName,
  quote,
  readAddrMatch,
  readIface,
  readPortMatch,
  readProto,
  tokenize,
} from './iptables.ts';

/** libxt_tcp's flag names, in the order iptables-save prints them. */
const TCP_FLAG_NAMES: ReadonlyArray<[string, number]> = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
];
const TCP_FLAGS_ALL = 0x3f;
const TCP_FLAG_SYN = 0x02;
/** `--syn` = `--tcp-flags FIN,SYN,RST,ACK SYN`. */
const SYN_MASK = 0x17;

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

function neg(b: boolean): string {
  return b ? '! ' : '';
}

/** Canonical iptables-save line of a mangle rule (option order as iptables-save prints it). */
export function formatMangleRule(
  chain: MangleChainName,
  r: Omit<MangleRule, 'text'>,
  comment: string | null = null,
): string {
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
  if (comment !== null) p.push(`-m comment --comment ${quote(comment)}`);
  p.push(`-j ${r.target}`);
  if (r.target === 'TCPMSS') p.push(r.mss === TCPMSS_CLAMP_PMTU ? '--clamp-mss-to-pmtu' : `--set-mss ${r.mss}`);
  return p.join(' ');
}

/** Canonical iptables-save text of a mangle table: all five chains declared, counters zeroed. */
export function formatMangleTable(chains: Record<MangleChainName, MangleRule[]>): string {
  const lines = ['*mangle'];
  for (const c of MANGLE_ALL_CHAINS) lines.push(`:${c} ACCEPT [0:0]`);
  for (const c of MANGLE_CHAINS) for (const r of chains[c]) lines.push(r.text);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** A MangleTable from rules given as fields (generators and tests). */
export function buildMangleTable(
  rules: Array<{ chain: MangleChainName; rule: Omit<MangleRule, 'text'> }>,
): MangleTable {
  const chains: Record<MangleChainName, MangleRule[]> = { FORWARD: [], POSTROUTING: [] };
  for (const { chain, rule } of rules) chains[chain].push({ ...rule, text: formatMangleRule(chain, rule) });
  return { chains, text: formatMangleTable(chains) };
}

/** The usual clamping rule: `-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS` with `mss` (or TCPMSS_CLAMP_PMTU). */
export function tcpmssRule(mss: number): Omit<MangleRule, 'text'> {
  return {
    src: null,
    dst: null,
    inIface: null,
    outIface: null,
    proto: { proto: PROTO_NAMES.tcp, neg: false },
    l4Match: 'tcp',
    sport: null,
    dport: null,
    tcpFlags: { mask: TCP_FLAG_SYN | 0x04, cmp: TCP_FLAG_SYN, neg: false },
    target: 'TCPMSS',
    mss,
  };
}

const NEGATABLE = new Set(['-s', '-d', '-i', '-o', '-p', '--sport', '--dport', '--tcp-flags', '--syn']);
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
const TARGETS: readonly MangleTargetKind[] = ['TCPMSS', 'ACCEPT', 'RETURN'];

function parseMangleRuleTokens(chain: MangleChainName, toks: string[]): MangleRule {
  const r: Omit<MangleRule, 'text'> = {
    src: null,
    dst: null,
    inIface: null,
    outIface: null,
    proto: null,
    l4Match: null,
    sport: null,
    dport: null,
    tcpFlags: null,
    target: 'ACCEPT',
    mss: 0,
  };
  let targetSeen = false;
  let mssSeen = false;
  const matches = new Set<string>();
  let comment: string | null = null;
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
    if (isNeg && !NEGATABLE.has(opt)) throw new RuleError(`'!' cannot negate '${raw}'`);
    if (targetSeen && opt !== '--set-mss' && opt !== '--clamp-mss-to-pmtu')
      throw new RuleError(`'${raw}' after the -j target (matches must come before -j)`);
    const once = (key = opt): void => {
      if (seen.has(key)) throw new RuleError(`multiple '${raw}' options are not allowed`);
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
        if (chain === 'POSTROUTING')
          throw new RuleError(`'-i' cannot be used in POSTROUTING (no input interface there)`);
        r.inIface = readIface(value(raw), raw, isNeg);
        break;
      case '-o':
        once();
        r.outIface = readIface(value(raw), raw, isNeg);
        break;
      case '-p':
        once();
        r.proto = readProto(value(raw), isNeg);
        break;
      case '-m': {
        const m = value(raw);
        if (m === 'tcp' || m === 'udp') {
          const p = r.proto;
          if (!p || p.neg || p.proto !== PROTO_NAMES[m]) throw new RuleError(`'-m ${m}' needs '-p ${m}' before it`);
          r.l4Match = m;
        } else if (m !== 'comment') {
          throw new RuleError(`match '-m ${m}' is not supported in the mangle table (tcp, udp, comment)`);
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
        r.l4Match = l4(raw, false);
        const pm = readPortMatch(value(raw), raw, isNeg);
        if (opt === '--sport') r.sport = pm;
        else r.dport = pm;
        break;
      }
      case '--tcp-flags': {
        once('--tcp-flags');
        r.l4Match = l4(raw, true);
        const mask = readTcpFlags(value(raw), raw);
        const cmp = readTcpFlags(value(raw), raw);
        r.tcpFlags = { mask, cmp, neg: isNeg };
        break;
      }
      case '--syn':
        once('--tcp-flags');
        r.l4Match = l4(raw, true);
        r.tcpFlags = { mask: SYN_MASK, cmp: TCP_FLAG_SYN, neg: isNeg };
        break;
      case '-j': {
        once();
        const t = value(raw);
        if (!TARGETS.includes(t as MangleTargetKind)) {
          throw new RuleError(
            `target '${t}' is not supported in the mangle table (TCPMSS, ACCEPT, RETURN; natlab models MSS clamping only)`,
          );
        }
        r.target = t as MangleTargetKind;
        targetSeen = true;
        break;
      }
      case '--set-mss': {
        if (!targetSeen || r.target !== 'TCPMSS') throw new RuleError(`'--set-mss' belongs to -j TCPMSS`);
        if (mssSeen) throw new RuleError(`TCPMSS takes one of --set-mss and --clamp-mss-to-pmtu`);
        mssSeen = true;
        const v = value(raw);
        if (!/^\d{1,5}$/.test(v) || Number(v) >= TCPMSS_CLAMP_PMTU)
          throw new RuleError(`--set-mss: '${v}' is not an MSS 0..65534 (65535 is the kernel's clamp-to-PMTU marker)`);
        r.mss = Number(v);
        break;
      }
      case '--clamp-mss-to-pmtu':
        if (!targetSeen || r.target !== 'TCPMSS') throw new RuleError(`'--clamp-mss-to-pmtu' belongs to -j TCPMSS`);
        if (mssSeen) throw new RuleError(`TCPMSS takes one of --set-mss and --clamp-mss-to-pmtu`);
        mssSeen = true;
        r.mss = TCPMSS_CLAMP_PMTU;
        break;
      default:
        if (raw.startsWith('-')) throw new RuleError(`unknown option '${raw}'`);
        throw new RuleError(`unexpected '${raw}' (not an option)`);
    }
  }
  if (pendingNeg) throw new RuleError(`'!' at the end of the rule negates nothing`);
  if (matches.has('comment') && comment === null) throw new RuleError(`'-m comment' needs '--comment TEXT'`);
  if (!targetSeen) throw new RuleError(`rule has no '-j' target (a rule without a target is not supported)`);
  if (r.target === 'TCPMSS') {
    if (!mssSeen) throw new RuleError(`-j TCPMSS needs --set-mss N or --clamp-mss-to-pmtu`);
    if (!r.proto || r.proto.neg || r.proto.proto !== PROTO_NAMES.tcp)
      throw new RuleError(`-j TCPMSS needs '-p tcp' (iptables: "TCPMSS target: only valid for protocol 6")`);
    const f = r.tcpFlags;
    if (!f || f.neg || !(f.cmp & TCP_FLAG_SYN))
      throw new RuleError(
        `-j TCPMSS needs a SYN match such as '--tcp-flags SYN,RST SYN' (kernel: "Only works on TCP SYN packets")`,
      );
  }
  if (r.proto && r.proto.proto === 0 && r.proto.neg)
    throw new RuleError(`'! -p all' would never match (iptables: "rule would never match protocol")`);
  if (r.proto && r.proto.proto === 0) r.proto = null;
  if (r.src && r.src.cidr.len === 0 && !r.src.neg) r.src = null;
  if (r.dst && r.dst.cidr.len === 0 && !r.dst.neg) r.dst = null;
  return { ...r, text: formatMangleRule(chain, r, comment) };
}

/**
 * Parse iptables-save text holding exactly the mangle table (`*mangle` ... `COMMIT`). Rules may be
 * in FORWARD and POSTROUTING (the forwarding path natlab models); the other chains must be empty.
 * `lineOffset`, `where` and `errors` as parseNatTable.
 */
export function parseMangleTable(
  text: string,
  file: string,
  lineOffset = 0,
  where = '',
  errors?: ErrorList,
): MangleTable {
  const el = errors ?? new ErrorList(file);
  const before = el.count;
  const chains: Record<MangleChainName, MangleRule[]> = { FORWARD: [], POSTROUTING: [] };
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
      err(n, `'${line.slice(0, 40)}' after COMMIT of *mangle`);
      break;
    }
    if (state === 'start') {
      if (line !== '*mangle') {
        err(n, `expected '*mangle' before '${line.slice(0, 40)}'`);
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
      if (!m) {
        err(n, `bad chain line '${line}' (expected ':CHAIN POLICY [packets:bytes]')`);
        continue;
      }
      const [, name, policy] = m;
      if (!(MANGLE_ALL_CHAINS as readonly string[]).includes(name)) {
        err(n, `chain '${name}': user-defined chains are not supported (${MANGLE_ALL_CHAINS.join(', ')})`);
        continue;
      }
      if (declared.has(name)) err(n, `chain '${name}' declared twice`);
      declared.add(name);
      if (policy !== 'ACCEPT') err(n, `mangle chain ${name} policy '${policy}': natlab models policy ACCEPT only`);
      continue;
    }
    let toks = tokenize(line);
    if (typeof toks === 'string') {
      err(n, toks);
      continue;
    }
    if (/^\[\d+:\d+\]$/.test(toks[0])) toks = toks.slice(1);
    if (toks[0] !== '-A' && toks[0] !== '--append') {
      err(n, `unexpected '${toks[0]}' (expected '-A CHAIN ...', ':CHAIN POLICY', COMMIT or a # comment)`);
      continue;
    }
    const chain = toks[1];
    if (chain === undefined) {
      err(n, `'-A' without a chain`);
      continue;
    }
    if (!(MANGLE_CHAINS as readonly string[]).includes(chain)) {
      if ((MANGLE_ALL_CHAINS as readonly string[]).includes(chain))
        err(n, `mangle rules in ${chain} are not modelled (natlab models the forwarding path: FORWARD, POSTROUTING)`);
      else err(n, `chain '${chain}' does not exist in the mangle table (${MANGLE_ALL_CHAINS.join(', ')})`);
      continue;
    }
    try {
      chains[chain as MangleChainName].push(parseMangleRuleTokens(chain as MangleChainName, toks.slice(2)));
    } catch (e) {
      if (e instanceof RuleError) err(n, e.message);
      else throw e;
    }
  }
  if (el.count === before && state !== 'done') err(lines.length, `missing COMMIT at the end of *mangle`);
  if (!errors) el.throwIfAny();
  return { chains, text: formatMangleTable(chains) };
}

/**
 * Splits an instance's iptables-save text into its `*mangle` ... `COMMIT` section and the rest.
 * Both keep every line's number (the other part's lines blanked), so errors name the line of the
 * instance's text; `mangle` is null when there is no such section.
 */
export function takeMangleSection(text: string): { rest: string; mangle: string | null } {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => l.trim() === '*mangle');
  if (start < 0) return { rest: text, mangle: null };
  let end = start + 1;
  while (end < lines.length && lines[end].trim() !== 'COMMIT' && !lines[end].trim().startsWith('*')) end++;
  const last = end < lines.length && lines[end].trim() === 'COMMIT' ? end : end - 1;
  const inside = (k: number): boolean => k >= start && k <= last;
  return {
    rest: lines.map((l, k) => (inside(k) ? '' : l)).join('\n'),
    mangle: lines.map((l, k) => (inside(k) ? l : '')).join('\n'),
  };
}
