// NAT gateway vocabulary shared by the loader and every engine: AWS's documented numbers, the
// defaults natlab chooses where AWS documents nothing, and the counters (named like the NAT
// gateway's CloudWatch metrics, docs/semantics.md "NAT gateway").

/** AWS: one primary and up to 7 secondary private IPv4 addresses (each may have an Elastic IP). */
export const NATGW_MAX_ADDRESSES = 8;
/** AWS: up to 55,000 simultaneous connections to each unique destination per IPv4 address. */
export const NATGW_DEFAULT_CONNECTION_LIMIT = 55_000;
/** AWS: a connection idle for 350 seconds or more times out. */
export const NATGW_DEFAULT_IDLE_TIMEOUT_S = 350;
/** AWS: the NAT gateway's source ports (and so the ports NACLs must open) are 1024-65535. */
export const NATGW_PORT_MIN = 1024;
export const NATGW_PORT_MAX = 65535;
export const NATGW_PORT_COUNT = NATGW_PORT_MAX - NATGW_PORT_MIN + 1;
/** Seed mixed into the engines' seed for the NAT gateway's port choice (its own generator). */
export const NATGW_PRNG_SALT = 0x4e475731;

/** Counter indexes (NatGatewayCounters.values), CloudWatch metric names in NATGW_COUNTER_NAMES. */
export const NGC_ACTIVE_CONNECTION_COUNT = 0;
export const NGC_CONNECTION_ATTEMPT_COUNT = 1;
export const NGC_CONNECTION_ESTABLISHED_COUNT = 2;
export const NGC_ERROR_PORT_ALLOCATION = 3;
export const NGC_IDLE_TIMEOUT_COUNT = 4;
export const NGC_PACKETS_DROP_COUNT = 5;
export const NGC_BYTES_IN_FROM_SOURCE = 6;
export const NGC_PACKETS_IN_FROM_SOURCE = 7;
export const NGC_BYTES_OUT_TO_DESTINATION = 8;
export const NGC_PACKETS_OUT_TO_DESTINATION = 9;
export const NGC_BYTES_IN_FROM_DESTINATION = 10;
export const NGC_PACKETS_IN_FROM_DESTINATION = 11;
export const NGC_BYTES_OUT_TO_SOURCE = 12;
export const NGC_PACKETS_OUT_TO_SOURCE = 13;
export const NGC_COUNT = 14;

export const NATGW_COUNTER_NAMES: readonly string[] = [
  'ActiveConnectionCount',
  'ConnectionAttemptCount',
  'ConnectionEstablishedCount',
  'ErrorPortAllocation',
  'IdleTimeoutCount',
  'PacketsDropCount',
  'BytesInFromSource',
  'PacketsInFromSource',
  'BytesOutToDestination',
  'PacketsOutToDestination',
  'BytesInFromDestination',
  'PacketsInFromDestination',
  'BytesOutToSource',
  'PacketsOutToSource',
];

/** One NAT gateway's counters (ActiveConnectionCount is the current value, the others are totals). */
export interface NatGatewayCounters {
  /** Index into Scenario.natGateways. */
  natGateway: number;
  name: string;
  /** By CloudWatch metric name. */
  metrics: Record<string, number>;
}

export function natGatewayCounters(index: number, name: string, values: ArrayLike<number>): NatGatewayCounters {
  const metrics: Record<string, number> = {};
  for (let k = 0; k < NGC_COUNT; k++) metrics[NATGW_COUNTER_NAMES[k]] = values[k];
  return { natGateway: index, name, metrics };
}

/**
 * natlab's limit: connections one NAT gateway holds at once (AWS documents no total, only the
 * per-destination limit). Both engines refuse a new connection beyond it like a port-allocation
 * failure (ErrorPortAllocation).
 */
export const NATGW_TABLE_CAPACITY = 262_144;

/**
 * One connection in a NAT gateway's table, as `Engine.natGatewayConnections()` lists it (for
 * conformance timers and end-of-run comparisons). ICMP echo: the id in `sport`/`natPort`, `dport` 0.
 */
export interface NatGatewayConnection {
  /** Index into Scenario.natGateways. */
  natGateway: number;
  proto: number;
  src: number;
  sport: number;
  dst: number;
  dport: number;
  /** The NAT address's private IP and the chosen port. */
  natIp: number;
  natPort: number;
  /** Whole seconds until the idle timeout removes it (floored, like `conntrack -L`). */
  timeout: number;
  /** A packet came back from the destination. */
  replied: boolean;
  /** TCP: ended by an RST or a FIN each way (kept until idle, no longer active). */
  closed: boolean;
}

/** Seconds left of a connection last active at `lastMs`, at `nowMs` (floored; 0 = expires now). */
export function natGatewaySecondsLeft(lastMs: number, idleTimeoutS: number, nowMs: number): number {
  return Math.max(0, Math.floor((lastMs + idleTimeoutS * 1000 - nowMs) / 1000));
}

/** Stable order for listings and comparisons: gateway, proto, inside tuple. */
export function compareNatGatewayConnections(a: NatGatewayConnection, b: NatGatewayConnection): number {
  return (
    a.natGateway - b.natGateway ||
    a.proto - b.proto ||
    a.src - b.src ||
    a.sport - b.sport ||
    a.dst - b.dst ||
    a.dport - b.dport
  );
}
