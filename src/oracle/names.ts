// Names of everything the kernel oracle creates. Every network namespace of a run is
// `natlab-<run id>-<role>`; the run id is the process id in base 36 plus random characters, so
// parallel runs never collide and `natlab kernel --cleanup` can recognise natlab's leftovers (and
// only those). Interfaces live only inside these namespaces, so their names need no prefix.
import { randomBytes } from 'node:crypto';

export const NETNS_PREFIX = 'natlab-';
/** Matches every namespace natlab creates, and nothing else. */
export const NETNS_RE = /^natlab-[0-9a-z]{3,20}-(?:rt|net|[is][0-9]{1,4})$/;

export function newRunId(): string {
  const r = randomBytes(4).readUInt32BE(0).toString(36).padStart(RUN_RAND_LEN, '0').slice(-RUN_RAND_LEN);
  return `${process.pid.toString(36)}${r}`;
}

/** RUN_RAND_LEN random characters end every run id. */
export const RUN_RAND_LEN = 4;

/** The process id that created a natlab namespace (from its run id), or -1. */
export function netnsOwnerPid(name: string): number {
  if (!NETNS_RE.test(name)) return -1;
  const runId = name.slice(NETNS_PREFIX.length, name.lastIndexOf('-'));
  const pid = parseInt(runId.slice(0, -RUN_RAND_LEN), 36);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : -1;
}

export function routerNetns(runId: string): string {
  return `${NETNS_PREFIX}${runId}-rt`;
}
export function internetNetns(runId: string): string {
  return `${NETNS_PREFIX}${runId}-net`;
}
export function instanceNetns(runId: string, i: number): string {
  return `${NETNS_PREFIX}${runId}-i${i}`;
}
/** The security-group namespace on instance i's ENI link (only for an ENI with security groups). */
export function sgNetns(runId: string, i: number): string {
  return `${NETNS_PREFIX}${runId}-s${i}`;
}

/** Router-side veth of instance i (inside the router namespace). */
export function routerIfname(i: number): string {
  return `e${i}`;
}
/** The instance side is always eth0, as on the EC2 instance. */
export const INSTANCE_IF = 'eth0';
/** Both ends of the router <-> internet link are called igw. */
export const IGW_IF = 'igw';

/** Link addresses of the router <-> internet link (link-local, never in a scenario). */
export const LINK_ROUTER_ADDR = '169.254.77.1';
export const LINK_INTERNET_ADDR = '169.254.77.2';

/** Deterministic locally administered MACs: 02:6e:6c:<side>:<hi>:<lo>. */
export const SIDE_ROUTER = 1;
export const SIDE_INSTANCE = 2;
export const SIDE_INTERNET = 3;
export const IGW_INDEX = 0xffff;
export function macBytes(side: number, index: number): number[] {
  return [0x02, 0x6e, 0x6c, side, (index >>> 8) & 255, index & 255];
}
export function macText(side: number, index: number): string {
  return macBytes(side, index)
    .map((b) => b.toString(16).padStart(2, '0'))
    .join(':');
}
