// Random filter tables (`*filter`) for the NAT instances of the differential fuzzer's scenarios
// (docs/fuzzing.md, docs/semantics.md §13): policies, FORWARD/INPUT/OUTPUT rules and a user
// chain, with the matches the shared rule parser reads (-s/-d/-i/-o/-p with `!`, tcp/udp ports and
// flags, icmp types, multiport, conntrack/state, comment) on the addresses and ports the traffic
// generator uses, and every target (ACCEPT, DROP, REJECT with each --reject-with, LOG, RETURN, a
// jump). Emitted as iptables-save text in front of the instance's other tables, so a saved
// counterexample's scenario.yaml shows the table as a user writes it.

import fc from 'fast-check';

export type FuzzFilterChain = 'INPUT' | 'FORWARD' | 'OUTPUT' | 'CHK';

export interface FuzzFilterRule {
  chain: FuzzFilterChain;
  /** Match options (already iptables text, e.g. `-s 10.0.1.0/24 -p tcp -m tcp --dport 80`). */
  match: string;
  /** Target text, e.g. `ACCEPT`, `REJECT --reject-with tcp-reset`, `CHK`. */
  target: string;
}

export interface FuzzFilterTableSpec {
  input: 'ACCEPT' | 'DROP';
  forward: 'ACCEPT' | 'DROP';
  output: 'ACCEPT' | 'DROP';
  rules: FuzzFilterRule[];
}

const ADDRS = [
  '10.0.0.0/16',
  '10.0.1.0/24',
  '10.0.1.10/32',
  '10.0.0.0/24',
  '198.51.100.0/24',
  '192.0.2.1/32',
  '0.0.0.0/0',
];
const PORTS = ['53', '80', '443', '8080', '1024:65535', '0:1023', '22'];
const STATES = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'RELATED,ESTABLISHED', 'NEW,ESTABLISHED', 'INVALID,NEW'];
const ICMP_TYPES = ['echo-request', 'echo-reply', '3', '3/1', '11', 'any', 'destination-unreachable'];
const REJECTS = [
  'icmp-port-unreachable',
  'icmp-net-unreachable',
  'icmp-host-unreachable',
  'icmp-proto-unreachable',
  'icmp-net-prohibited',
  'icmp-host-prohibited',
  'icmp-admin-prohibited',
];

const not = (b: boolean): string => (b ? '! ' : '');

/** `arb` with weight `some`, null with weight `none`. */
function sometimes<T>(arb: fc.Arbitrary<T>, some: number, none: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: none, arbitrary: fc.constant(null) }, { weight: some, arbitrary: arb });
}

const ruleArb: fc.Arbitrary<FuzzFilterRule> = fc
  .record({
    chain: fc.constantFrom(
      'FORWARD' as const,
      'FORWARD' as const,
      'FORWARD' as const,
      'INPUT' as const,
      'OUTPUT' as const,
      'CHK' as const,
    ),
    // Few matches per rule, so that the generated traffic meets most rules.
    src: sometimes(fc.tuple(fc.constantFrom(...ADDRS), fc.integer({ min: 0, max: 4 })), 1, 2),
    dst: sometimes(fc.tuple(fc.constantFrom(...ADDRS), fc.integer({ min: 0, max: 4 })), 1, 3),
    iface: fc.constantFrom('', '', '', '-i eth0', '-o eth0', '! -o eth0', '-i eth+', '! -i lo'),
    proto: fc.constantFrom('', '', '', 'tcp', 'tcp', 'udp', 'udp', 'icmp', '! tcp'),
    l4: fc.integer({ min: 0, max: 7 }),
    port: fc.constantFrom(...PORTS),
    port2: fc.constantFrom(...PORTS),
    neg: fc.integer({ min: 0, max: 3 }).map((x) => x === 0),
    state: sometimes(fc.tuple(fc.constantFrom(...STATES), fc.integer({ min: 0, max: 2 }), fc.boolean()), 2, 3),
    icmpType: fc.constantFrom(...ICMP_TYPES),
    comment: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    target: fc.constantFrom('ACCEPT', 'ACCEPT', 'DROP', 'DROP', 'REJECT', 'REJECT', 'LOG', 'RETURN', 'CHK'),
    reject: fc.constantFrom(...REJECTS, 'tcp-reset', 'tcp-reset'),
  })
  .map((r): FuzzFilterRule => {
    const m: string[] = [];
    if (r.src) m.push(`${not(r.src[1] === 0)}-s ${r.src[0]}`);
    if (r.dst) m.push(`${not(r.dst[1] === 0)}-d ${r.dst[0]}`);
    // -i/-o only where iptables takes them for every hook the rule can be reached from.
    if (r.chain === 'FORWARD' && r.iface) m.push(r.iface);
    if (r.proto) m.push(r.proto.startsWith('!') ? `! -p ${r.proto.slice(2)}` : `-p ${r.proto}`);
    const ported = r.proto === 'tcp' || r.proto === 'udp';
    if (ported) {
      // 0: none; 1: --dport; 2: --sport; 3: both; 4: multiport --dports; 5: multiport --ports; 6: tcp flags; 7: none
      const p = (x: string) => `${not(r.neg)}--dport ${x}`;
      if (r.l4 === 1) m.push(`-m ${r.proto} ${p(r.port)}`);
      else if (r.l4 === 2) m.push(`-m ${r.proto} ${not(r.neg)}--sport ${r.port}`);
      else if (r.l4 === 3) m.push(`-m ${r.proto} --sport ${r.port2} --dport ${r.port}`);
      else if (r.l4 === 4) m.push(`-m multiport ${not(r.neg)}--dports ${r.port},${r.port2}`);
      else if (r.l4 === 5) m.push(`-m multiport --ports ${r.port},${r.port2}`);
      else if (r.l4 === 6 && r.proto === 'tcp')
        m.push(r.neg ? '-m tcp ! --syn' : `-m tcp --tcp-flags SYN,ACK,RST ${r.port === '53' ? 'SYN,ACK' : 'SYN'}`);
    } else if (r.proto === 'icmp' && r.l4 % 2 === 1) {
      m.push(`-m icmp ${not(r.neg && r.icmpType !== 'any')}--icmp-type ${r.icmpType}`);
    }
    if (r.state) {
      // -m state takes no `!` here (docs/semantics.md §13: not modelled).
      if (r.state[2]) m.push(`-m state --state ${r.state[0]}`);
      else m.push(`-m conntrack ${not(r.state[1] === 0)}--ctstate ${r.state[0]}`);
    }
    if (r.comment) m.push('-m comment --comment "fuzz rule"');
    let target: string = r.target;
    if (target === 'REJECT') {
      const w = r.reject === 'tcp-reset' && r.proto !== 'tcp' ? 'icmp-port-unreachable' : r.reject;
      target = `REJECT --reject-with ${w}`;
    }
    if (target === 'LOG') target = 'LOG --log-prefix "fuzz: "';
    // The user chain jumps to nothing (no loops); RETURN and jumps elsewhere.
    if (r.chain === 'CHK' && target === 'CHK') target = 'RETURN';
    return { chain: r.chain, match: m.join(' '), target };
  });

export const fuzzFilterTableArb: fc.Arbitrary<FuzzFilterTableSpec> = fc.record({
  input: fc.constantFrom('ACCEPT' as const, 'ACCEPT' as const, 'DROP' as const),
  forward: fc.constantFrom('ACCEPT' as const, 'ACCEPT' as const, 'DROP' as const),
  output: fc.constantFrom('ACCEPT' as const, 'ACCEPT' as const, 'ACCEPT' as const, 'DROP' as const),
  rules: fc.array(ruleArb, { minLength: 0, maxLength: 6 }),
});

/** The table as iptables-save text (`*filter` ... `COMMIT`). */
export function filterTableText(t: FuzzFilterTableSpec): string {
  const lines = ['*filter', `:INPUT ${t.input} [0:0]`, `:FORWARD ${t.forward} [0:0]`, `:OUTPUT ${t.output} [0:0]`];
  lines.push(':CHK - [0:0]');
  for (const r of t.rules) lines.push(`-A ${r.chain} ${r.match ? `${r.match} ` : ''}-j ${r.target}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** "filter F:DROP 4 rules" for progress lines. */
export function describeFilterTable(t: FuzzFilterTableSpec): string {
  const pol = [`I:${t.input}`, `F:${t.forward}`, `O:${t.output}`].filter((p) => !p.endsWith('ACCEPT'));
  return `filter${pol.length ? ` ${pol.join(' ')}` : ''} ${t.rules.length} rules`;
}
