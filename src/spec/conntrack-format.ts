// Formatting of engine-neutral conntrack entries exactly as conntrack-tools prints them
// (libnetfilter_conntrack __snprintf_conntrack_default). Shared so every engine's table reads
// the same; comparisons are done on the structured entries, never on these strings.

import type { ConntrackEntry, CtTuple } from './engine.ts';

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

export function ip4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function tupleText(proto: number, t: CtTuple): string {
  const a = `src=${ip4(t.src)} dst=${ip4(t.dst)}`;
  if (proto === 1) return `${a} type=${t.dport >>> 8} code=${t.dport & 255} id=${t.sport}`;
  if (proto === 6 || proto === 17) return `${a} sport=${t.sport} dport=${t.dport}`;
  return a;
}

export function formatConntrackLine(e: ConntrackEntry): string {
  const name = (PROTO_NAMES[e.proto] ?? 'unknown').padEnd(8, ' ');
  const parts = [`${name} ${e.proto} ${e.timeout}`];
  if (e.proto === 6) parts.push(e.state);
  parts.push(tupleText(e.proto, e.orig));
  if (!e.seenReply) parts.push('[UNREPLIED]');
  parts.push(tupleText(e.proto, e.reply));
  if (e.assured) parts.push('[ASSURED]');
  parts.push('mark=0 use=1');
  return parts.join(' ');
}
