// Word offsets and bits of a session's line in the shared `tcpw` region (layout.ts; TCP window
// tracking, tcp-window.ts). Its own file so that the slow path's scratch state can size its copy
// without importing the layout (and, through it, the compiler).

/**
 * TCP window words per session (the `tcpw` region, parallel to the records; tcp-window.ts):
 * struct ip_ct_tcp's per-direction window data (W_* + direction) and the retransmission memory.
 * 16 words = 64 bytes, one cache line per session.
 */
export const TCPW_WORDS = 16;
/** seen[dir].td_maxack: the highest ACK the direction has sent. */
export const W_MAXACK = 0;
/** seen[dir].td_end: the highest seq + len the direction has sent. */
export const W_END = 2;
/** seen[dir].td_maxend: the highest ack + window the peer allowed it. */
export const W_MAXEND = 4;
/** seen[dir].td_maxwin: the largest window it advertised (scaled, + SACK extent). */
export const W_MAXWIN = 6;
/** seen[dir].td_scale (WF_SCALE_MASK) | seen[dir].flags (WF_* bits). */
export const W_FLAGS = 8;
/** last_seq, last_ack of the last ACK-class segment (or ignored packet). */
export const W_LAST_SEQ = 10;
export const W_LAST_ACK = 11;
/** last_win (bits 0..15) | retrans (16..23) | last_wscale (24..27) | last_flags WINDOW_SCALE / SACK_PERM (LW_*). */
export const W_LAST = 12;
export const WF_SCALE_MASK = 0xf;
export const WF_WINDOW_SCALE = 1 << 4;
export const WF_SACK_PERM = 1 << 5;
export const WF_BE_LIBERAL = 1 << 6;
export const WF_DATA_UNACK = 1 << 7;
export const WF_MAXACK_SET = 1 << 8;
export const LW_RETRANS_SHIFT = 16;
export const LW_WSCALE_SHIFT = 24;
export const LW_WINDOW_SCALE = 1 << 28;
export const LW_SACK_PERM = 1 << 29;
