// Parsers for what the kernel tools print: `conntrack -L` (conntrack-tools default format) and
// `iptables -t nat -L -v -n -x`, into the engine-neutral ConntrackEntry / NatRuleCounter.
import type { ConntrackEntry, CtTuple, NatRuleCounter } from '../spec/engine.ts';

function addr(text: string, line: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) throw new Error(`conntrack: bad address '${text}' in: ${line}`);
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

/**
 * One line of `conntrack -L`, e.g.
 * `udp      17 29 src=10.0.1.10 dst=198.51.100.7 sport=40000 dport=53 [UNREPLIED] src=198.51.100.7
 *  dst=10.0.0.10 sport=53 dport=40000 mark=0 use=1`. Returns null for lines that are not entries
 * (IPv6 entries included: natlab is IPv4 only).
 */
export function parseConntrackLine(line: string, instance: number): ConntrackEntry | null {
  const tok = line.trim().split(/\s+/);
  if (tok.length < 4) return null;
  let i = 0;
  // /proc/net/nf_conntrack style lines start with the l3 protocol.
  if (tok[0] === 'ipv4' || tok[0] === 'ipv6') {
    if (tok[0] === 'ipv6') return null;
    i = 2;
  }
  const proto = Number(tok[i + 1]);
  const timeout = Number(tok[i + 2]);
  if (!Number.isInteger(proto) || !Number.isInteger(timeout)) return null;
  i += 3;
  let state = '';
  if (proto === 6 && i < tok.length && /^[A-Z_0-9]+$/.test(tok[i])) state = tok[i++];
  const tuples: Array<Record<string, string>> = [];
  let seenReply = true;
  let assured = false;
  for (; i < tok.length; i++) {
    const t = tok[i];
    if (t === '[UNREPLIED]') seenReply = false;
    else if (t === '[ASSURED]') assured = true;
    else if (t.startsWith('[')) continue;
    else {
      const eq = t.indexOf('=');
      if (eq < 0) continue;
      const k = t.slice(0, eq);
      const v = t.slice(eq + 1);
      if (k === 'src') tuples.push({});
      const cur = tuples[tuples.length - 1];
      if (cur && tuples.length <= 2 && !(k in cur)) cur[k] = v;
    }
  }
  if (tuples.length < 2) return null;
  const tuple = (t: Record<string, string>): CtTuple => {
    if (!t.src || !t.dst) throw new Error(`conntrack: tuple without src/dst in: ${line}`);
    if (proto === 1) {
      return {
        src: addr(t.src, line),
        dst: addr(t.dst, line),
        sport: Number(t.id ?? 0),
        dport: (Number(t.type ?? 0) << 8) | Number(t.code ?? 0),
      };
    }
    return { src: addr(t.src, line), dst: addr(t.dst, line), sport: Number(t.sport ?? 0), dport: Number(t.dport ?? 0) };
  };
  return { instance, proto, state, timeout, orig: tuple(tuples[0]), reply: tuple(tuples[1]), assured, seenReply };
}

export function parseConntrackList(text: string, instance: number): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('conntrack v')) continue;
    const e = parseConntrackLine(line, instance);
    if (e) out.push(e);
  }
  return out;
}

/** Stable order for comparisons: by protocol, then original tuple. */
export function sortConntrack(list: ConntrackEntry[]): ConntrackEntry[] {
  const key = (e: ConntrackEntry): number[] => [
    e.instance,
    e.proto,
    e.orig.src,
    e.orig.dst,
    e.orig.sport,
    e.orig.dport,
  ];
  return list.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return 0;
  });
}

/**
 * `iptables -t nat -L -v -n -x`: per chain a header `Chain POSTROUTING (policy ACCEPT 3 packets,
 * 180 bytes)`, a column header, then one line per rule starting with its packet and byte counts.
 * The policy is reported as rule -1; rules are numbered from 0 in chain order. `ownChain`: a chain
 * of natlab's own to leave out, with OUTPUT's jumps to it.
 */
export function parseIptablesCounters(text: string, instance: number, ownChain?: string): NatRuleCounter[] {
  const out: NatRuleCounter[] = [];
  let chain = '';
  let rule = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const h = /^Chain (\S+) \((?:policy \S+ (\d+) packets, (\d+) bytes|\d+ references)\)/.exec(line);
    if (h) {
      chain = h[1];
      rule = 0;
      if (h[2] !== undefined) out.push({ instance, chain, rule: -1, packets: Number(h[2]), bytes: Number(h[3]) });
      continue;
    }
    if (ownChain !== undefined && chain === ownChain) continue;
    const r = /^(\d+)\s+(\d+)\s+(\S+)?/.exec(line);
    if (!r || !chain) continue;
    if (ownChain !== undefined && chain === 'OUTPUT' && r[3] === ownChain) continue;
    out.push({ instance, chain, rule: rule++, packets: Number(r[1]), bytes: Number(r[2]) });
  }
  return out;
}

/**
 * `iptables -t filter -L -v -n -x` of a NAT instance with a scenario filter table, as the
 * scenario's rules (FilterRuleCounter; rule -1 = a built-in chain's policy): natlab's own guard
 * (its chain `ownChain` and the jump to it that topology.ts inserts at the top of OUTPUT) is left
 * out, so OUTPUT's rules are numbered as the scenario wrote them.
 */
export function parseFilterCounters(text: string, instance: number, ownChain: string): NatRuleCounter[] {
  return parseIptablesCounters(text, instance, ownChain);
}

/** The agent's `S` reply: summed /proc/net/stat/nf_conntrack columns and the xt_recent lists hit. */
export interface NetnsStats {
  ct: Record<string, number>;
  recent: Set<string>;
  /** /proc/net/snmp: Ip InHdrErrors (TTL expiries when forwarding), Icmp OutRateLimitGlobal / OutRateLimitHost. */
  snmp?: { ttlExpired: number; rlGlobal: number; rlHost: number };
}

export function parseAgentStats(text: string): NetnsStats {
  const ct: Record<string, number> = {};
  const recent = new Set<string>();
  let snmp: NetnsStats['snmp'];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l === '#stat') {
      const head = (lines[i + 1] ?? '').trim().split(/\s+/);
      let j = i + 2;
      for (; j < lines.length && lines[j] && !lines[j].startsWith('#'); j++) {
        const v = lines[j].trim().split(/\s+/);
        head.forEach((name, k) => {
          ct[name] = (ct[name] ?? 0) + (parseInt(v[k] ?? '0', 16) || 0);
        });
      }
      i = j - 1;
    } else if (l === '#snmp') {
      const v = (lines[i + 1] ?? '')
        .trim()
        .split(/\s+/)
        .map((x) => Number(x) || 0);
      snmp = { ttlExpired: v[0] ?? 0, rlGlobal: v[1] ?? 0, rlHost: v[2] ?? 0 };
      i++;
    } else if (l.startsWith('#recent ')) {
      const [, name, n] = l.split(' ');
      if (Number(n) > 0) recent.add(name);
    }
  }
  return snmp ? { ct, recent, snmp } : { ct, recent };
}
