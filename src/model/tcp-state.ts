// TCP conntrack states and the transition table of the newest nf_conntrack_proto_tcp.c
// (`tcp_conntracks[2][6][10]`, LNS §4), written out exactly. Packet classes follow
// get_conntrack_index(); flag validity follows tcp_valid_flags[].

import { F_ACK, F_CWR, F_ECE, F_FIN, F_PSH, F_RST, F_SYN, F_URG } from '../packet/constants.ts';

import {
  TCP_NONE,
  TCP_SYN_SENT,
  TCP_SYN_RECV,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_CLOSE_WAIT,
  TCP_LAST_ACK,
  TCP_TIME_WAIT,
  TCP_CLOSE,
  TCP_SYN_SENT2,
  TCP_STATE_NAMES,
} from '../spec/tcp-states.ts';

export {
  TCP_NONE,
  TCP_SYN_SENT,
  TCP_SYN_RECV,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_CLOSE_WAIT,
  TCP_LAST_ACK,
  TCP_TIME_WAIT,
  TCP_CLOSE,
  TCP_SYN_SENT2,
  TCP_STATE_NAMES,
};
/** Table sentinels (TCP_CONNTRACK_MAX = invalid, TCP_CONNTRACK_IGNORE). */
export const TCP_IV = 10;
export const TCP_IG = 11;

/** Packet classes (enum tcp_bit_set). */
export const TCP_SYN_SET = 0;
export const TCP_SYNACK_SET = 1;
export const TCP_FIN_SET = 2;
export const TCP_ACK_SET = 3;
export const TCP_RST_SET = 4;
export const TCP_NONE_SET = 5;
export const TCP_CLASS_NAMES: readonly string[] = ['syn', 'synack', 'fin', 'ack', 'rst', 'none'];

/** get_conntrack_index: RST, then SYN(+ACK), then FIN, then ACK. */
export function tcpPacketClass(flags: number): number {
  if (flags & F_RST) return TCP_RST_SET;
  if (flags & F_SYN) return flags & F_ACK ? TCP_SYNACK_SET : TCP_SYN_SET;
  if (flags & F_FIN) return TCP_FIN_SET;
  if (flags & F_ACK) return TCP_ACK_SET;
  return TCP_NONE_SET;
}

const VALID_FLAGS = new Set([
  F_SYN,
  F_SYN | F_URG,
  F_SYN | F_ACK,
  F_RST,
  F_RST | F_ACK,
  F_FIN | F_ACK,
  F_FIN | F_ACK | F_URG,
  F_ACK,
  F_ACK | F_URG,
]);

/** tcp_error's flag check: after masking PSH/ECE/CWR only the combinations above are valid. */
export function tcpFlagsValid(flags: number): boolean {
  return VALID_FLAGS.has(flags & ~(F_PSH | F_ECE | F_CWR) & 0xff);
}

const sSS = TCP_SYN_SENT,
  sSR = TCP_SYN_RECV,
  sES = TCP_ESTABLISHED;
const sFW = TCP_FIN_WAIT,
  sCW = TCP_CLOSE_WAIT,
  sLA = TCP_LAST_ACK,
  sTW = TCP_TIME_WAIT;
const sCL = TCP_CLOSE,
  sS2 = TCP_SYN_SENT2,
  sIV = TCP_IV,
  sIG = TCP_IG;

// [dir][class][state]; columns: sNO sSS sSR sES sFW sCW sLA sTW sCL sS2
const TABLE: readonly (readonly (readonly number[])[])[] = [
  // ORIGINAL
  [
    /* syn    */ [sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2],
    /* synack */ [sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR],
    /* fin    */ [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    /* ack    */ [sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV],
    /* rst    */ [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    /* none   */ [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
  // REPLY
  [
    /* syn    */ [sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2],
    /* synack */ [sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR],
    /* fin    */ [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    /* ack    */ [sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG],
    /* rst    */ [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    /* none   */ [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
];

/** tcp_conntracks[dir][class][state]: a state, TCP_IV or TCP_IG. dir 0 = orig, 1 = reply. */
export function tcpTransition(dir: number, cls: number, state: number): number {
  return TABLE[dir][cls][state];
}
