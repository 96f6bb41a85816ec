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
import { fmtPort } from './iptables.ts';
import {
  PROTO_NAMES,
  RuleError,
  TCP_FLAG_SYN,
  formatTcpFlags,
  parseRuleOptions,
  protoName,
  quote,
  tableLines,
} from './iptables-rule.ts';

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

const TARGETS: readonly MangleTargetKind[] = ['TCPMSS', 'ACCEPT', 'RETURN'];

function parseMangleRuleTokens(chain: MangleChainName, toks: string[]): MangleRule {
  let mssSeen = false;
  let mss = 0;
  const o = parseRuleOptions(toks, {
    chain,
    modules: [],
    refuseModule: (m) => `match '-m ${m}' is not supported in the mangle table (tcp, udp, comment)`,
    tcpFlags: true,
    onceByRaw: true,
    checkTarget(name) {
      if (!TARGETS.includes(name as MangleTargetKind))
        throw new RuleError(
          `target '${name}' is not supported in the mangle table (TCPMSS, ACCEPT, RETURN; natlab models MSS clamping only)`,
        );
    },
    isTargetOption: (opt) => opt === '--set-mss' || opt === '--clamp-mss-to-pmtu',
    targetOption(opt, raw, target, value) {
      if (target !== 'TCPMSS') throw new RuleError(`'${raw}' belongs to -j TCPMSS`);
      if (mssSeen) throw new RuleError(`TCPMSS takes one of --set-mss and --clamp-mss-to-pmtu`);
      mssSeen = true;
      if (opt === '--clamp-mss-to-pmtu') {
        mss = TCPMSS_CLAMP_PMTU;
        return;
      }
      const v = value();
      if (!/^\d{1,5}$/.test(v) || Number(v) >= TCPMSS_CLAMP_PMTU)
        throw new RuleError(`--set-mss: '${v}' is not an MSS 0..65534 (65535 is the kernel's clamp-to-PMTU marker)`);
      mss = Number(v);
    },
  });
  const r: Omit<MangleRule, 'text'> = {
    src: o.src,
    dst: o.dst,
    inIface: o.inIface,
    outIface: o.outIface,
    proto: o.proto,
    l4Match: o.l4Match,
    sport: o.sport,
    dport: o.dport,
    tcpFlags: o.tcpFlags,
    target: o.target as MangleTargetKind,
    mss,
  };
  const comment = o.comment;
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
  const declared = new Set<string>();
  const lines = text.split(/\r?\n/);
  const err = (n: number, msg: string): void => {
    el.add(where ? `${where} line ${n}` : `line ${n}`, msg, lineOffset + n);
  };
  const section = tableLines(lines, 'mangle', err);
  for (const tl of section.lines) {
    const n = tl.n;
    if (tl.kind === 'chain') {
      const { name, policy } = tl;
      if (!(MANGLE_ALL_CHAINS as readonly string[]).includes(name)) {
        err(n, `chain '${name}': user-defined chains are not supported (${MANGLE_ALL_CHAINS.join(', ')})`);
        continue;
      }
      if (declared.has(name)) err(n, `chain '${name}' declared twice`);
      declared.add(name);
      if (policy !== 'ACCEPT') err(n, `mangle chain ${name} policy '${policy}': natlab models policy ACCEPT only`);
      continue;
    }
    const toks = tl.toks;
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
  if (el.count === before && !section.committed) err(lines.length, `missing COMMIT at the end of *mangle`);
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
