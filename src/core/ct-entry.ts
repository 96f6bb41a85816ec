// Conntrack entry helpers shared by the tracker parts of the slow path: tuple inversion
// (nf_ct_invert_tuple with the ICMP type map of nf_conntrack_proto_icmp.c), the timer refresh
// (__nf_ct_refresh_acct: the wheel re-files the entry), IPS_ASSURED (leaves the early-drop list),
// and loading a stored entry into the scratch copy.

import { M_ASSURED, M_NALIST, S_CREATED, S_EXPIRY, S_META } from './layout.ts';
import type { Tables } from './tables.ts';
import type { SlowState } from './slow-state.ts';
import {
  ICMP_ADDRESS,
  ICMP_ADDRESSREPLY,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../packet/constants.ts';

/** ICMP query type inversion (invmap of nf_conntrack_proto_icmp.c); -1: not invertible. */
export function icmpInvert(t: number): number {
  switch (t) {
    case ICMP_ECHO:
      return ICMP_ECHOREPLY;
    case ICMP_ECHOREPLY:
      return ICMP_ECHO;
    case ICMP_TIMESTAMP:
      return ICMP_TIMESTAMPREPLY;
    case ICMP_TIMESTAMPREPLY:
      return ICMP_TIMESTAMP;
    case ICMP_INFO_REQUEST:
      return ICMP_INFO_REPLY;
    case ICMP_INFO_REPLY:
      return ICMP_INFO_REQUEST;
    case ICMP_ADDRESS:
      return ICMP_ADDRESSREPLY;
    case ICMP_ADDRESSREPLY:
      return ICMP_ADDRESS;
    default:
      return -1;
  }
}

/** ICMP types that may create an entry (icmp_new: the requests). */
export function isIcmpNewType(t: number): boolean {
  return t === ICMP_ECHO || t === ICMP_TIMESTAMP || t === ICMP_INFO_REQUEST || t === ICMP_ADDRESS;
}

/** The ports word of the inverted tuple (nf_ct_invert_tuple): TCP/UDP swap, ICMP type inverted. */
export function invertPorts(proto: number, ports: number): number {
  if (proto === PROTO_TCP || proto === PROTO_UDP) return ((ports << 16) | (ports >>> 16)) >>> 0;
  if (proto === PROTO_ICMP) {
    const t = icmpInvert((ports >>> 8) & 0xff);
    return ((ports & 0xffff00ff) | (Math.max(t, 0) << 8)) >>> 0;
  }
  return 0;
}

/** Sets the entry's expiry (__nf_ct_refresh_acct): stored and re-filed in the timer wheel. */
export function ctRefresh(t: Tables, local: number, exp: number): void {
  t.ses[t.rec(local) + S_EXPIRY] = exp;
  t.wheelRefile(local, exp);
}

/** set_bit(IPS_ASSURED_BIT): the entry leaves the early-drop (non-ASSURED) list. */
export function ctSetAssured(t: Tables, local: number): void {
  const o = t.rec(local);
  let meta = t.ses[o + S_META];
  if (meta & M_NALIST) {
    t.naUnlink(local);
    meta = t.ses[o + S_META];
  }
  t.touchMeta(o, (meta | M_ASSURED) >>> 0);
}

/** Copies a stored entry into the scratch entry of `st`. */
export function ctLoad(t: Tables, st: SlowState, local: number): void {
  const o = t.rec(local);
  const s = t.ses;
  st.eOs = s[o];
  st.eOd = s[o + 1];
  st.eOp = s[o + 2];
  st.eRs = s[o + 3];
  st.eRd = s[o + 4];
  st.eRp = s[o + 5];
  st.eMeta = s[o + S_META];
  st.eExp = s[o + S_EXPIRY];
  st.eCreated = s[o + S_CREATED];
}
