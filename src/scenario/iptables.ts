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
  type NatChainName,
  type NatRule,
  type NatTable,
  type NatTarget,
  type NatTargetKind,
  type PortMatch,
} from '../spec/scenario.ts';
import { formatCidr, formatIpv4 } from '../packet/addr.ts';
import { readIpv4 } from './addr-text.ts';
import { ErrorList } from './error-list.ts';
import { RuleError, type RuleOptionsSpec, parseRuleOptions, protoName, quote, tokenize } from './iptables-rule.ts';

export {
  COMMENT_MAX,
  IFNAME_MAX,
  PROTO_NAMES,
  RuleError,
  protoName,
  quote,
  readAddrMatch,
  readIface,
  readPortMatch,
  readProto,
  tokenize,
} from './iptables-rule.ts';

/**
 * Protocols a NAT target may give ports for (libxt_SNAT/DNAT/MASQUERADE accept these; for ICMP
 * the "port" is the echo id). natlab also requires the -p to be un-negated.
 */
export const NAT_PORT_PROTOS: readonly number[] = [6, 17, 33, 132, 1];

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

const TARGETS: readonly NatTargetKind[] = ['MASQUERADE', 'SNAT', 'DNAT', 'ACCEPT', 'RETURN'];

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

/** The nat table's targets and their options, for the shared option parser. */
function natSpec(chain: NatChainName, t: NatTarget): RuleOptionsSpec {
  const seen = new Set<string>();
  return {
    chain,
    modules: [],
    refuseModule: (m) => `match '-m ${m}' is not supported (tcp, udp, comment)`,
    tcpFlags: false,
    onceByRaw: false,
    checkTarget(name) {
      if (!TARGETS.includes(name as NatTargetKind)) {
        if (name === 'DROP' || name === 'REJECT')
          throw new RuleError(`target '${name}' is not allowed in the nat table (filter in the filter table)`);
        throw new RuleError(
          `target '${name}' is not supported (MASQUERADE, SNAT, DNAT, ACCEPT, RETURN; user-defined chains are not supported)`,
        );
      }
      t.kind = name as NatTargetKind;
    },
    isTargetOption: (opt) => opt.startsWith('--to') || opt.startsWith('--random') || opt === '--persistent',
    targetOption(opt, raw, target, value) {
      const once = (): void => {
        if (seen.has(opt)) throw new RuleError(`multiple '${opt}' options are not allowed`);
        seen.add(opt);
      };
      switch (opt) {
        case '--to-ports':
          once();
          if (target !== 'MASQUERADE') throw new RuleError(`'--to-ports' belongs to -j MASQUERADE`);
          [t.portLo, t.portHi] = readNatPorts(value(), raw);
          t.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
          break;
        case '--to-source':
        case '--to-destination': {
          once();
          const kind = opt === '--to-source' ? 'SNAT' : 'DNAT';
          if (target !== kind) throw new RuleError(`'${raw}' belongs to -j ${kind}`);
          readNatRange(value(), raw, t);
          break;
        }
        case '--random':
          once();
          if (target !== 'MASQUERADE' && target !== 'SNAT' && target !== 'DNAT')
            throw new RuleError(`'--random' belongs to -j MASQUERADE, SNAT or DNAT`);
          t.flags |= NF_NAT_RANGE_PROTO_RANDOM;
          break;
        case '--random-fully':
          once();
          if (target !== 'MASQUERADE' && target !== 'SNAT')
            throw new RuleError(`'--random-fully' belongs to -j MASQUERADE or SNAT`);
          t.flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
          break;
        case '--persistent':
          once();
          if (target !== 'SNAT' && target !== 'DNAT') throw new RuleError(`'--persistent' belongs to -j SNAT or DNAT`);
          t.flags |= NF_NAT_RANGE_PERSISTENT;
          break;
        default:
          throw new RuleError(`unknown option '${raw}'`);
      }
    },
  };
}

/** Parses the tokens after `-A CHAIN`. Throws RuleError naming the token. */
function parseRuleTokens(chain: NatChainName, toks: string[]): NatRule {
  const target: NatTarget = { kind: 'ACCEPT', addrLo: 0, addrHi: 0, portLo: 0, portHi: 0, flags: 0 };
  const o = parseRuleOptions(toks, natSpec(chain, target));
  const r: Omit<NatRule, 'text'> = {
    src: o.src,
    dst: o.dst,
    inIface: o.inIface,
    outIface: o.outIface,
    proto: o.proto,
    sport: o.sport,
    dport: o.dport,
    target,
  };
  const comment = o.comment;
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
  // A non-negated full port range matches every packet of the protocol: iptables-save omits it.
  if (r.sport && !r.sport.neg && r.sport.lo === 0 && r.sport.hi === 65535) r.sport = null;
  if (r.dport && !r.dport.neg && r.dport.lo === 0 && r.dport.hi === 65535) r.dport = null;
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
