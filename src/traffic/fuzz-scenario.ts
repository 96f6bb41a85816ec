// Random but valid VPC scenarios for differential fuzzing, within the features every engine
// supports: subnets with route tables, one or two NAT instances with random nat tables
// (MASQUERADE with/without -s, --to-ports ranges including tiny ones, SNAT, DNAT — to inside hosts or
// to the instance's own port 80, as REDIRECT —, RETURN), Elastic
// IPs (SNAT and DNAT to an address range, --persistent), mangle TCPMSS rules (--set-mss / --clamp-mss-to-pmtu), source/dest check on or off, ip_forward off, small nf_conntrack_max (1–6, or 64–1024 for the fuzzer's flow shapes to fill), checksum/loose/be_liberal/ignore_invalid_rst toggles, nf_conntrack_tcp_max_retrans, the NAT instances' ICMP rate-limit sysctls.
// Generated as the scenario *file* object and compiled by the real loader, so every generated
// scenario is one a user could write (and the saved counterexample's scenario.yaml loads back).

import fc from 'fast-check';
import type { Scenario } from '../spec/scenario.ts';
import { compileScenarioObject } from '../scenario/index.ts';
import { type FuzzFilterSpec, addFuzzFilters, describeFuzzFilters, fuzzFilterSpecArb } from './fuzz-filters.ts';
import {
  type FuzzFilterTableSpec,
  describeFilterTable,
  filterTableText,
  fuzzFilterTableArb,
} from './fuzz-filter-table.ts';

export const FUZZ_VPC = '10.0.0.0/16';
export const FUZZ_INTERNET_HOSTS = ['198.51.100.0/24', '192.0.2.0/24'];
/** Internet addresses the traffic generator uses (inside FUZZ_INTERNET_HOSTS). */
export const FUZZ_PEERS = ['198.51.100.7', '198.51.100.8', '192.0.2.1'];
/** The DNAT'ed service port on a NAT instance's address, when a DNAT rule is generated. */
export const FUZZ_DNAT_PORT = 8080;

export interface FuzzRuleSpec {
  kind: 'masq' | 'snat' | 'dnat' | 'return';
  /** -s: 'vpc' | 'private' (10.0.1.0/24) | 'app' (10.0.1.10/32) | 'none' | 'not-public' (! -s 10.0.0.0/24) */
  src: 'vpc' | 'private' | 'app' | 'none' | 'not-public';
  /** -p for the rule (required when ports are given). */
  proto: 'any' | 'tcp' | 'udp';
  /** --to-ports / :ports range or null. */
  ports: [number, number] | null;
  random: boolean;
}

/** A mangle TCPMSS rule (`--tcp-flags SYN,RST SYN`): the chain and --set-mss N or 'clamp' (--clamp-mss-to-pmtu). */
export interface FuzzMssSpec {
  chain: 'FORWARD' | 'POSTROUTING';
  mss: number | 'clamp';
}

export interface FuzzNatSpec {
  rules: FuzzRuleSpec[];
  /** TCPMSS rules in the instance's mangle table (none: no mangle table). */
  mss?: FuzzMssSpec[];
  sourceDestCheck: boolean;
  ipForward: boolean;
  elasticIp: boolean;
  /** The instance's filter table (fuzz-filter-table.ts), only for engines that evaluate it. */
  filter?: FuzzFilterTableSpec | null;
  /** ICMP error rate-limit sysctls (none: Linux's defaults). */
  icmp?: FuzzIcmpSpec;
}

/** net.ipv4.icmp_ratelimit (ms), icmp_ratemask, icmp_msgs_per_sec, icmp_msgs_burst of a NAT instance. */
export interface FuzzIcmpSpec {
  ratelimit: number;
  ratemask: number;
  perSec: number;
  burst: number;
}

export interface FuzzScenarioSpec {
  nats: FuzzNatSpec[];
  /** Second private subnet (10.0.2.0/24) routed through the last NAT instance. */
  secondPrivate: boolean;
  webHasEip: boolean;
  ctMax: number;
  checksum: boolean;
  tcpLoose: boolean;
  /** nf_conntrack_tcp_be_liberal / nf_conntrack_tcp_max_retrans (none: Linux's 0 and 3). */
  tcpBeLiberal?: boolean;
  tcpMaxRetrans?: number;
  /** nf_conntrack_tcp_ignore_invalid_rst (none: Linux's 0). */
  tcpIgnoreInvalidRst?: boolean;
  /** A blackhole route for 192.0.2.0/24 in the private route table. */
  blackhole: boolean;
  /** Short conntrack timeouts (seconds), for engines whose clock runs in real time (the kernel). */
  shortTimeouts?: boolean;
  /** A NAT gateway in the public subnet (model and core only: the kernel engine cannot judge one). */
  natGateway?: FuzzGatewaySpec | null;
  /** Security groups and network ACLs (fuzz-filters.ts), only for engines that implement them. */
  filters?: FuzzFilterSpec | null;
}

export interface FuzzGatewaySpec {
  /** The private route table(s) whose default route goes to the gateway instead of a NAT instance. */
  routes: 'private' | 'private2' | 'both';
  /** Per address (1..3, primary first): has an Elastic IP. */
  eips: boolean[];
  /** Small limits make ErrorPortAllocation reachable. */
  connectionLimit: number;
  /** Seconds; small ones expire within the fuzzer's clock steps. */
  idleTimeout: number;
  portSelection: 'random' | 'preserve';
}

/** The fuzzer's NAT gateway addresses: 10.0.0.50 + k, Elastic IP 203.0.113.50 + k. */
export const FUZZ_GATEWAY_IP_BASE = 50;

const gatewayArb: fc.Arbitrary<FuzzGatewaySpec> = fc.record({
  routes: fc.constantFrom('private' as const, 'private' as const, 'private2' as const, 'both' as const),
  eips: fc.array(
    fc.integer({ min: 0, max: 9 }).map((x) => x !== 0),
    { minLength: 1, maxLength: 3 },
  ),
  connectionLimit: fc.oneof(
    { weight: 2, arbitrary: fc.constant(55000) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) },
  ),
  idleTimeout: fc.oneof(
    { weight: 2, arbitrary: fc.constant(350) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 40 }) },
  ),
  portSelection: fc.constantFrom('random' as const, 'preserve' as const),
});

/** Timeouts for real-time engines: every state expires within a few seconds. */
export const SHORT_TIMEOUTS: Readonly<Record<string, number>> = Object.freeze({
  tcpSynSent: 4,
  tcpSynRecv: 3,
  tcpEstablished: 8,
  tcpFinWait: 4,
  tcpCloseWait: 3,
  tcpLastAck: 3,
  tcpTimeWait: 4,
  tcpClose: 2,
  tcpMaxRetrans: 5,
  tcpUnacknowledged: 5,
  udp: 3,
  udpStream: 6,
  icmp: 3,
  generic: 6,
});

const portRangeArb: fc.Arbitrary<[number, number] | null> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(null) },
  // tiny ranges force port exhaustion (DROP_NAT_CLASH)
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: 1024, max: 1030 })
      .chain((lo) => fc.integer({ min: lo, max: lo + 2 }).map((hi) => [lo, hi] as [number, number])),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 2000, max: 60000 })
      .chain((lo) =>
        fc.integer({ min: lo, max: Math.min(65535, lo + 5000) }).map((hi) => [lo, hi] as [number, number]),
      ),
  },
);

const ruleArb: fc.Arbitrary<FuzzRuleSpec> = fc
  .record({
    kind: fc.oneof(
      { weight: 6, arbitrary: fc.constant('masq' as const) },
      { weight: 2, arbitrary: fc.constant('snat' as const) },
      { weight: 2, arbitrary: fc.constant('dnat' as const) },
      { weight: 1, arbitrary: fc.constant('return' as const) },
    ),
    src: fc.constantFrom(
      'vpc' as const,
      'vpc' as const,
      'private' as const,
      'app' as const,
      'none' as const,
      'not-public' as const,
    ),
    proto: fc.constantFrom('any' as const, 'any' as const, 'tcp' as const, 'udp' as const),
    ports: portRangeArb,
    random: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
  })
  .map((r) => {
    // --to-ports and :ports need -p tcp/udp, as in iptables.
    if (r.ports && r.proto === 'any') return { ...r, proto: 'udp' as const };
    return r;
  });

/**
 * TCPMSS rules derived from the instance's other generated fields (a map: no extra random draws,
 * so every seed's scenarios and commands stay what they were before mangle rules existed).
 */
function mssFor(n: Omit<FuzzNatSpec, 'mss'>): FuzzMssSpec[] {
  let h = n.rules.length * 7 + (n.sourceDestCheck ? 3 : 0) + (n.elasticIp ? 5 : 0);
  for (const r of n.rules)
    h += r.kind.length * 11 + r.src.length * 13 + r.proto.length + (r.ports?.[0] ?? 0) + (r.random ? 17 : 0);
  switch (h % 5) {
    case 1:
      return [{ chain: 'FORWARD', mss: 'clamp' }];
    case 2:
      return [{ chain: 'POSTROUTING', mss: [536, 1400, 1460, 0, 9000][(h % 7) % 5] }];
    case 3:
      return [
        { chain: 'FORWARD', mss: 1460 },
        { chain: 'POSTROUTING', mss: 'clamp' },
      ];
    default:
      return [];
  }
}

const natArb: fc.Arbitrary<FuzzNatSpec> = fc
  .record({
    rules: fc.array(ruleArb, { minLength: 1, maxLength: 3 }),
    sourceDestCheck: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    ipForward: fc.integer({ min: 0, max: 19 }).map((x) => x !== 0),
    elasticIp: fc.integer({ min: 0, max: 19 }).map((x) => x !== 0),
    icmp: fc.oneof(
      { weight: 3, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.record({
          ratelimit: fc.constantFrom(0, 100, 250, 1000, 1000),
          // Linux's default; dest unreachable only; time exceeded only; nothing.
          ratemask: fc.constantFrom(0x1818, 0x1818, 0x8, 0x800, 0),
          perSec: fc.constantFrom(0, 1, 5, 1000, 1000),
          burst: fc.constantFrom(0, 1, 3, 50, 50),
        }),
      },
    ),
  })
  .map((n) => {
    const { icmp, ...rest } = n;
    return { ...rest, mss: mssFor(n), ...(icmp ? { icmp } : {}) };
  });

/** nf_conntrack_max of the fuzzer's scenarios by default (Linux's for a machine with ≥ 4 GiB). */
export const FUZZ_DEFAULT_CT_MAX = 262144;

/**
 * The scenario arbitrary for a campaign. `shortTimeouts`: for engines whose clock runs in real time
 * (the kernel). `defaultCtMax`: every scenario keeps nf_conntrack_max at FUZZ_DEFAULT_CT_MAX — the
 * kernel engine cannot set it per namespace (docs/kernel-differences.md E3), so a smaller table
 * would be a difference by construction; no fuzz run comes near the default. `natGateways`: some
 * scenarios get a NAT gateway (only where every engine can judge one: not the kernel engine).
 * `awsFilters`: one scenario in three gets security groups and network ACLs (every engine
 * implements them). `filterTables`: one scenario in three gets a random filter table on each NAT
 * instance (engines whose EngineDescriptor.fuzzFilterTables says so).
 */
export function fuzzScenarioSpecArbFor(
  o: {
    shortTimeouts?: boolean;
    defaultCtMax?: boolean;
    natGateways?: boolean;
    awsFilters?: boolean;
    filterTables?: boolean;
  } = {},
): fc.Arbitrary<FuzzScenarioSpec> {
  let arb = fuzzScenarioSpecArb;
  // One scenario in three: a random filter table on each NAT instance.
  if (o.filterTables)
    arb = fc
      .tuple(arb, fc.integer({ min: 0, max: 2 }), fuzzFilterTableArb, fuzzFilterTableArb)
      .map(([s, g, t0, t1]) =>
        g === 0 ? { ...s, nats: s.nats.map((n, k) => ({ ...n, filter: k === 0 ? t0 : t1 })) } : s,
      );
  if (o.natGateways)
    arb = fc.tuple(arb, fc.option(gatewayArb, { freq: 3 })).map(([s, g]) => (g ? { ...s, natGateway: g } : s));
  if (o.awsFilters)
    arb = fc
      .tuple(arb, fc.option(fuzzFilterSpecArb, { nil: null, freq: 2 }))
      .map(([s, filters]) => (filters ? { ...s, filters } : s));
  if (!o.shortTimeouts && !o.defaultCtMax) return arb;
  return arb.map((s) => ({
    ...s,
    ...(o.shortTimeouts ? { shortTimeouts: true } : {}),
    ...(o.defaultCtMax ? { ctMax: FUZZ_DEFAULT_CT_MAX } : {}),
  }));
}

export const fuzzScenarioSpecArb: fc.Arbitrary<FuzzScenarioSpec> = fc
  .record({
    nats: fc.array(natArb, { minLength: 1, maxLength: 2 }),
    secondPrivate: fc.boolean(),
    webHasEip: fc.integer({ min: 0, max: 3 }).map((x) => x !== 0),
    ctMax: fc.oneof(
      { weight: 4, arbitrary: fc.constant(FUZZ_DEFAULT_CT_MAX) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }) },
      // Small enough that one shape[] command (clustered keys: one socket, one destination, one
      // source port) fills the table to its maximum and runs on into early drop.
      { weight: 1, arbitrary: fc.integer({ min: 64, max: 1024 }) },
    ),
    checksum: fc.integer({ min: 0, max: 9 }).map((x) => x !== 0),
    tcpLoose: fc.integer({ min: 0, max: 9 }).map((x) => x !== 0),
    tcpBeLiberal: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
    tcpMaxRetrans: fc.oneof(
      { weight: 4, arbitrary: fc.constant(3) },
      { weight: 1, arbitrary: fc.constantFrom(0, 1, 2, 255) },
    ),
    blackhole: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
  })
  // nf_conntrack_tcp_ignore_invalid_rst=1 in the scenarios with the second private subnet (one in
  // two): derived, so no seed's draws changed when it was added (an RST below the expected
  // sequence number is then judged as in window, not INVALID; issue 15 K4).
  .map((s) => (s.secondPrivate ? { ...s, tcpIgnoreInvalidRst: true } : s));

function natIp(k: number): string {
  return `10.0.0.${10 + k}`;
}
function natEip(k: number): string {
  return `203.0.113.${10 + k}`;
}

function ruleText(r: FuzzRuleSpec, k: number): string {
  const src = {
    vpc: '-s 10.0.0.0/16 ',
    private: '-s 10.0.1.0/24 ',
    app: '-s 10.0.1.10/32 ',
    none: '',
    'not-public': '! -s 10.0.0.0/24 ',
  }[r.src];
  const p = r.proto === 'any' ? '' : `-p ${r.proto} `;
  const ports = r.ports ? (r.ports[0] === r.ports[1] ? `${r.ports[0]}` : `${r.ports[0]}-${r.ports[1]}`) : '';
  const rnd = r.random ? ' --random' : '';
  switch (r.kind) {
    case 'masq':
      return `-A POSTROUTING ${src}-o eth0 ${p}-j MASQUERADE${ports ? ` --to-ports ${ports}` : ''}${rnd}`;
    case 'snat': {
      // From the private subnet (with or without !), an address range (find_best_ips_proto's
      // jhash choice, issue 15 K7; --persistent for the negated source); derived from the drawn
      // fields, so no seed's draws changed.
      const to = r.src === 'private' || r.src === 'not-public' ? `${natIp(k)}-${natIp(k + 3)}` : natIp(k);
      const persistent = r.src === 'not-public' ? ' --persistent' : '';
      return `-A POSTROUTING ${src}-o eth0 ${p}-j SNAT --to-source ${to}${ports ? `:${ports}` : ''}${rnd}${persistent}`;
    }
    case 'dnat': {
      const proto = r.proto === 'udp' ? 'udp' : 'tcp';
      // `-s app`: every tcp (udp) packet to the instance's address goes to its own port 80, as a
      // transparent proxy's `-j REDIRECT --to-ports 80` does in PREROUTING — a client reaching two
      // of its ports from one source port meets the nat INPUT null binding's source-port search
      // (nf_nat_edemux.sh's second part). -s is not used by DNAT: its draw picks the variant.
      if (r.src === 'app') return `-A PREROUTING -d ${natIp(k)}/32 -p ${proto} -j DNAT --to-destination ${natIp(k)}:80`;
      // Inbound service: NAT address :8080 → app:80 (tcp and udp variants), or to app and app2 by
      // the client's jhash (the -s draw picks the variant; --persistent too), so no seed's draws
      // changed.
      const to = r.src === 'private' || r.src === 'not-public' ? '10.0.1.10-10.0.1.11' : '10.0.1.10';
      const persistent = r.src === 'not-public' ? ' --persistent' : '';
      return `-A PREROUTING -d ${natIp(k)}/32 -p ${proto} --dport ${FUZZ_DNAT_PORT} -j DNAT --to-destination ${to}:80${persistent}`;
    }
    case 'return':
      return `-A POSTROUTING -d 10.0.0.0/16 -j RETURN`;
  }
}

/** The mangle table text of TCPMSS rules ('' when there are none). */
export function mangleTableText(mss: readonly FuzzMssSpec[] | undefined): string {
  if (!mss || mss.length === 0) return '';
  const lines = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]'];
  lines.push(':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]');
  for (const m of mss) {
    const target = m.mss === 'clamp' ? '--clamp-mss-to-pmtu' : `--set-mss ${m.mss}`;
    lines.push(`-A ${m.chain} -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS ${target}`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export function natTableText(rules: readonly FuzzRuleSpec[], k: number): string {
  const lines = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
  ];
  // PREROUTING rules first (iptables-save groups by chain anyway).
  for (const r of rules) if (r.kind === 'dnat') lines.push(ruleText(r, k));
  for (const r of rules) if (r.kind !== 'dnat') lines.push(ruleText(r, k));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The scenario file object (what scenario.yaml holds) for a spec. */
export function fuzzScenarioObject(spec: FuzzScenarioSpec, name = 'fuzz'): Record<string, unknown> {
  const last = spec.nats.length - 1;
  const privateRoutes: Array<Record<string, string>> = [
    { dest: FUZZ_VPC, target: 'local' },
    { dest: '0.0.0.0/0', target: 'eni:nat0' },
  ];
  if (spec.blackhole) privateRoutes.push({ dest: '192.0.2.0/24', target: 'blackhole' });
  const routeTables: Record<string, unknown> = {
    public: [
      { dest: FUZZ_VPC, target: 'local' },
      { dest: '0.0.0.0/0', target: 'igw' },
    ],
    private: privateRoutes,
  };
  const subnets: Record<string, unknown> = {
    public: { cidr: '10.0.0.0/24', routeTable: 'public' },
    private: { cidr: '10.0.1.0/24', routeTable: 'private' },
  };
  if (spec.secondPrivate) {
    routeTables.private2 = [
      { dest: FUZZ_VPC, target: 'local' },
      { dest: '0.0.0.0/0', target: `eni:nat${last}` },
    ];
    subnets.private2 = { cidr: '10.0.2.0/24', routeTable: 'private2' };
  }
  const g = spec.natGateway;
  if (g) {
    if (g.routes !== 'private2') privateRoutes[1].target = 'nat-gateway:ngw';
    if (g.routes !== 'private' && spec.secondPrivate)
      (routeTables.private2 as Array<Record<string, string>>)[1].target = 'nat-gateway:ngw';
  }
  const instances: Record<string, unknown> = {};
  spec.nats.forEach((n, k) => {
    const o: Record<string, unknown> = {
      subnet: 'public',
      privateIp: natIp(k),
      sourceDestCheck: n.sourceDestCheck,
      sysctls: {
        'net.ipv4.ip_forward': n.ipForward ? 1 : 0,
        'net.ipv4.conf.eth0.send_redirects': 0,
        ...(n.icmp
          ? {
              'net.ipv4.icmp_ratelimit': n.icmp.ratelimit,
              'net.ipv4.icmp_ratemask': n.icmp.ratemask,
              'net.ipv4.icmp_msgs_per_sec': n.icmp.perSec,
              'net.ipv4.icmp_msgs_burst': n.icmp.burst,
            }
          : {}),
      },
      iptables: (n.filter ? filterTableText(n.filter) : '') + mangleTableText(n.mss) + natTableText(n.rules, k),
    };
    if (n.elasticIp) o.elasticIp = natEip(k);
    instances[`nat${k}`] = o;
  });
  instances.web = {
    subnet: 'public',
    privateIp: '10.0.0.20',
    ...(spec.webHasEip ? { elasticIp: '203.0.113.20' } : {}),
  };
  instances.app = { subnet: 'private', privateIp: '10.0.1.10' };
  instances.app2 = { subnet: 'private', privateIp: '10.0.1.11' };
  if (spec.secondPrivate) instances.app3 = { subnet: 'private2', privateIp: '10.0.2.10' };
  const o: Record<string, unknown> = {
    name,
    vpc: { cidr: FUZZ_VPC },
    routeTables,
    subnets,
    instances,
    internet: { hosts: FUZZ_INTERNET_HOSTS },
    conntrack: {
      max: spec.ctMax,
      checksum: spec.checksum,
      tcpLoose: spec.tcpLoose,
      ...(spec.tcpBeLiberal ? { tcpBeLiberal: true } : {}),
      ...(spec.tcpIgnoreInvalidRst ? { tcpIgnoreInvalidRst: true } : {}),
      ...(spec.tcpMaxRetrans !== undefined && spec.tcpMaxRetrans !== 3 ? { tcpMaxRetrans: spec.tcpMaxRetrans } : {}),
      ...(spec.shortTimeouts ? { timeouts: { ...SHORT_TIMEOUTS } } : {}),
    },
  };
  if (g)
    o.natGateways = {
      ngw: {
        subnet: 'public',
        addresses: g.eips.map((e, k) => ({
          privateIp: `10.0.0.${FUZZ_GATEWAY_IP_BASE + k}`,
          ...(e ? { elasticIp: `203.0.113.${FUZZ_GATEWAY_IP_BASE + k}` } : {}),
        })),
        connectionLimit: g.connectionLimit,
        idleTimeout: g.idleTimeout,
        portSelection: g.portSelection,
      },
    };
  if (spec.filters) addFuzzFilters(o, spec.filters);
  return o;
}

export function fuzzScenario(spec: FuzzScenarioSpec, name = 'fuzz'): Scenario {
  return compileScenarioObject(fuzzScenarioObject(spec, name), `<fuzz:${name}>`);
}

/** Arbitrary compiled scenarios (`natlab fuzz` and property tests). */
export const fuzzScenarioArb: fc.Arbitrary<Scenario> = fuzzScenarioSpecArb.map((s) => fuzzScenario(s));

/** One line summary for progress output: "2 NAT (masq --to-ports 1024-1025, dnat), ct max 3". */
export function describeFuzzSpec(spec: FuzzScenarioSpec): string {
  const nats = spec.nats.map((n) => {
    const r = n.rules
      .map((x) => `${x.kind}${x.ports ? ` ${x.ports[0]}-${x.ports[1]}` : ''}${x.random ? ' random' : ''}`)
      .join('+');
    const icmp = n.icmp
      ? ` icmp ${n.icmp.ratelimit}ms/0x${n.icmp.ratemask.toString(16)}/${n.icmp.perSec}ps/${n.icmp.burst}`
      : '';
    return `${r}${n.sourceDestCheck ? ' sdc-on' : ''}${n.ipForward ? '' : ' fwd-off'}${n.elasticIp ? '' : ' no-eip'}${icmp}${n.filter ? ` ${describeFilterTable(n.filter)}` : ''}`;
  });
  const g = spec.natGateway;
  const gw = g
    ? `, NAT gateway (${g.routes}, ${g.eips.length} addresses, limit ${g.connectionLimit}, idle ${g.idleTimeout} s, ${g.portSelection})`
    : '';
  const f = spec.filters ? `, ${describeFuzzFilters(fuzzScenarioObject(spec))}` : '';
  return `${spec.nats.length} NAT [${nats.join('; ')}]${gw}, ct max ${spec.ctMax}${spec.checksum ? '' : ', no-checksum'}${spec.tcpLoose ? '' : ', no-loose'}${spec.tcpBeLiberal ? ', be-liberal' : ''}${spec.tcpIgnoreInvalidRst ? ', ignore-invalid-rst' : ''}${spec.tcpMaxRetrans !== undefined && spec.tcpMaxRetrans !== 3 ? `, max-retrans ${spec.tcpMaxRetrans}` : ''}${f}`;
}
