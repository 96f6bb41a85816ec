// The TCP connection tracker on an existing entry: nf_conntrack_proto_tcp.c's tcp_conntracks
// state table and nf_conntrack_tcp_packet, with the tracker details the kernel keeps per entry —
// last_dir / last_index / last_end / last_flags and CLOSE_INIT — for the re-open / ignore /
// re-sync rules and the RFC 5961 challenge ACK, the RST sequence checks, and window tracking
// (tcp_in_window on the session's tcpw words: tcp-window.ts). Twin of src/model/conntrack.ts's
// tcpPacket (docs/semantics.md §4).

import {
  M_ASSURED,
  M_SEEN_REPLY,
  M_STATE_MASK,
  M_STATE_SHIFT,
  S_EXPIRY,
  S_META,
  S_TCP_END,
  S_TCP_FLAGS,
  T_CHALLENGE_ACK,
  T_CLOSE_INIT,
  T_LAST_DIR,
  T_LAST_IDX_MASK,
  T_LAST_IDX_SHIFT,
  T_SIMULTANEOUS_OPEN,
  TCP_CLOSE,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_LAST_ACK,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_SYN_SENT2,
  TCP_TIME_WAIT,
  W_END,
  W_FLAGS,
  W_LAST,
  W_LAST_ACK,
  W_LAST_SEQ,
  W_MAXACK,
  W_MAXEND,
  W_MAXWIN,
  WF_BE_LIBERAL,
  WF_MAXACK_SET,
  WF_SACK_PERM,
  WF_WINDOW_SCALE,
  LW_SACK_PERM,
  LW_WINDOW_SCALE,
  LW_WSCALE_SHIFT,
  WF_SCALE_MASK,
} from './layout.ts';
import { WIN_ACCEPT, WIN_IGNORE, WIN_INVALID, optionsWord, tcpInWindow, tcpTimeout } from './tcp-window.ts';
import { type CompiledScenario, TO_UNACK } from './compile.ts';
import { ctRefresh, ctSetAssured } from './ct-entry.ts';
import type { Tables } from './tables.ts';
import type { SlowState } from './slow-state.ts';
import { CT_ESTABLISHED, CT_INVALID, CT_NEW } from '../spec/reasons.ts';
import { F_ACK, F_FIN, F_RST, F_SYN } from '../packet/constants.ts';

/** tcp_conntracks' pseudo-states: invalid, ignore. */
const IV = 10;
const IG = 11;
// tcp_conntracks (newest): [dir][class][state]; classes syn, synack, fin, ack, rst, none;
// states NO SS SR ES FW CW LA TW CL S2.
const sSS = 1,
  sSR = 2,
  sES = 3,
  sFW = 4,
  sCW = 5,
  sLA = 6,
  sTW = 7,
  sCL = 8,
  sS2 = 9;
// biome-ignore format: the kernel's tcp_conntracks table, one row per packet class
export const TCP_TABLE = new Uint8Array([
  // ORIG
  sSS, sSS, IG, IG, IG, IG, IG, sSS, sSS, sS2, // syn
  IV, IV, sSR, IV, IV, IV, IV, IV, IV, sSR, // synack
  IV, IV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, IV, // fin
  sES, IV, sES, sES, sCW, sCW, sTW, sTW, sCL, IV, // ack
  IV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, // rst
  IV, IV, IV, IV, IV, IV, IV, IV, IV, IV, // none
  // REPLY
  IV, sS2, IV, IV, IV, IV, IV, sSS, IV, sS2, // syn
  IV, sSR, IG, IG, IG, IG, IG, IG, IG, sSR, // synack
  IV, IV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, IV, // fin
  IV, IG, sSR, sES, sCW, sCW, sTW, sTW, sCL, IG, // ack
  IV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, // rst
  IV, IV, IV, IV, IV, IV, IV, IV, IV, IV, // none
]);

/** The tracker's packet classes (get_conntrack_index: TCP_SYN_SET ... TCP_NONE_SET). */
export const C_SYN = 0,
  C_SYNACK = 1,
  C_FIN = 2,
  C_ACK = 3,
  C_RST = 4,
  C_NONE = 5;

/** Valid TCP flag combinations after masking PSH/ECE/CWR (tcp_valid_flags; index = flags & 0x37). */
export const TCP_VALID = new Uint8Array(64);
for (const f of [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30]) TCP_VALID[f] = 1;

/** get_conntrack_index: the class of a segment's flags. */
export function tcpClass(flags: number): number {
  if (flags & F_RST) return C_RST;
  if (flags & F_SYN) return flags & F_ACK ? C_SYNACK : C_SYN;
  if (flags & F_FIN) return C_FIN;
  if (flags & F_ACK) return C_ACK;
  return C_NONE;
}

/** rstCheck outcomes: go on to the goto-in_window tests, or straight to tcp_in_window (CLOSE). */
const RST_FALLTHROUGH = 0;
const RST_CLOSE = 1;

/** Results of TcpTracker.packet. */
export const TCP_INVALID = 0;
export const TCP_ACCEPT = 1;
export const TCP_REOPEN = 2;

export class TcpTracker {
  constructor(
    private readonly c: CompiledScenario,
    private readonly t: Tables,
    private readonly st: SlowState,
  ) {}

  /**
   * nf_conntrack_tcp_packet on an existing entry (window tracking not modelled). Returns
   * TCP_INVALID, TCP_ACCEPT (incl. ignored) or TCP_REOPEN (the caller kills the entry and starts anew).
   */
  packet(local: number, dir: number, cls: number): number {
    const c = this.c;
    const t = this.t;
    const st = this.st;
    const o = t.rec(local);
    const ses = t.ses;
    let meta = ses[o + S_META];
    let old = (meta >>> M_STATE_SHIFT) & M_STATE_MASK;
    let nw = TCP_TABLE[(dir * 6 + cls) * 10 + old];
    let tf = ses[o + S_TCP_FLAGS];
    const lastDir = tf & T_LAST_DIR;
    const lastIdx = (tf >>> T_LAST_IDX_SHIFT) & T_LAST_IDX_MASK;
    const seenBefore = (meta & M_SEEN_REPLY) !== 0;
    let ignore = nw === IG;
    if (nw === TCP_SYN_SENT && (old === TCP_TIME_WAIT || old === TCP_CLOSE)) {
      // Re-open a closed/aborted connection if either side sent a FIN, or the last packet in this
      // direction was an RST; otherwise the SYN is ignored.
      if ((tf & T_CLOSE_INIT) !== 0 || (lastDir === dir && lastIdx === C_RST)) return TCP_REOPEN;
      ignore = true;
    }
    if (nw === IV) return TCP_INVALID;
    st.ctCls = dir === 1 || seenBefore ? CT_ESTABLISHED : CT_NEW;
    if (ignore) {
      const pv = st.pv;
      const w = t.tw(local);
      const tw = t.tcpw;
      if (cls === C_SYNACK && lastIdx === C_SYN && lastDir !== dir && pv.tcpAck === ses[o + S_TCP_END]) {
        // This SYN/ACK answers a SYN we ignored: client and server are in sync, re-sync the entry
        // from the ignored SYN's annotations (processed as SYN_SENT -> SYN_RECV; seen[dir] is
        // reset but for BE_LIBERAL, seen[last_dir].flags become the SYN's options: no CLOSE_INIT left).
        old = TCP_SYN_SENT;
        nw = TCP_SYN_RECV;
        const lw = tw[w + W_LAST];
        const lastEnd = ses[o + S_TCP_END];
        tw[w + W_END + lastDir] = lastEnd;
        tw[w + W_MAXEND + lastDir] = lastEnd;
        tw[w + W_MAXWIN + lastDir] = (lw & 0xffff) === 0 ? 1 : lw & 0xffff;
        tw[w + W_FLAGS + lastDir] =
          ((lw >>> LW_WSCALE_SHIFT) & WF_SCALE_MASK) |
          (lw & LW_WINDOW_SCALE ? WF_WINDOW_SCALE : 0) |
          (lw & LW_SACK_PERM ? WF_SACK_PERM : 0);
        tw[w + W_END + dir] = 0;
        tw[w + W_MAXEND + dir] = 0;
        tw[w + W_MAXWIN + dir] = 0;
        tw[w + W_MAXACK + dir] = 0;
        tw[w + W_FLAGS + dir] = tw[w + W_FLAGS + dir] & WF_BE_LIBERAL;
        tf = (tf & ~(T_CLOSE_INIT | T_CHALLENGE_ACK)) >>> 0;
      } else {
        let f = (tf & ~(T_LAST_DIR | (T_LAST_IDX_MASK << T_LAST_IDX_SHIFT))) | dir | (cls << T_LAST_IDX_SHIFT);
        let lw = ((tw[w + W_LAST] & ~0xffff) | pv.tcpWindow) >>> 0;
        if (cls === C_SYN && dir === 0) {
          // last_flags are reset by an ignored ORIG SYN (its options annotated); in LAST_ACK it
          // arms the RFC 5961 guard.
          f &= ~(T_CHALLENGE_ACK | T_SIMULTANEOUS_OPEN);
          if (old === TCP_LAST_ACK) f |= T_CHALLENGE_ACK;
          const ow = optionsWord(0, st.buf, pv.l4Off, pv.tcpDataOff);
          lw = (lw & ~(LW_WINDOW_SCALE | LW_SACK_PERM | (WF_SCALE_MASK << LW_WSCALE_SHIFT))) >>> 0;
          if (ow & WF_WINDOW_SCALE) lw |= LW_WINDOW_SCALE | ((ow & WF_SCALE_MASK) << LW_WSCALE_SHIFT);
          if (ow & WF_SACK_PERM) lw |= LW_SACK_PERM;
        }
        tw[w + W_LAST] = lw >>> 0;
        tw[w + W_LAST_SEQ] = pv.tcpSeq;
        if (old === TCP_SYN_SENT && cls === C_ACK && dir === 1) tw[w + W_LAST_ACK] = pv.tcpAck; // a possible challenge ACK
        const fl = pv.tcpFlags;
        ses[o + S_TCP_END] = (pv.tcpSeq + pv.payloadLen + (fl & F_SYN ? 1 : 0) + (fl & F_FIN ? 1 : 0)) >>> 0;
        ses[o + S_TCP_FLAGS] = f >>> 0;
        if (dir === 1 && !seenBefore) t.touchMeta(o, (meta | M_SEEN_REPLY) >>> 0);
        st.eMeta = ses[o + S_META];
        return TCP_ACCEPT;
      }
    } else if (nw === TCP_TIME_WAIT) {
      if (
        old === TCP_LAST_ACK &&
        cls === C_ACK &&
        lastDir !== dir &&
        lastIdx === C_SYN &&
        (tf & T_CHALLENGE_ACK) !== 0
      ) {
        // An RFC 5961 challenge ACK, not the ACK of the last FIN: accepted, state unchanged.
        ses[o + S_TCP_FLAGS] = (tf & ~T_CHALLENGE_ACK) >>> 0;
        if (dir === 1 && !seenBefore) t.touchMeta(o, (meta | M_SEEN_REPLY) >>> 0);
        st.eMeta = ses[o + S_META];
        return TCP_ACCEPT;
      }
    } else if (nw === TCP_SYN_SENT2) {
      tf |= T_SIMULTANEOUS_OPEN;
    } else if (nw === TCP_SYN_RECV) {
      if (dir === 1 && cls === C_ACK && (tf & T_SIMULTANEOUS_OPEN) !== 0) nw = TCP_ESTABLISHED;
    }
    const pv = st.pv;
    const w = t.tw(local);
    // case TCP_CONNTRACK_CLOSE: an RST's sequence checks (skipWindow = the kernel's goto in_window).
    let skipWindow = false;
    if (nw === TCP_CLOSE && cls === C_RST) {
      if (old >= TCP_FIN_WAIT && old <= TCP_CLOSE) {
        skipWindow = true; // tcp_can_early_drop: a closing entry's fields may be stale
      } else {
        let r = RST_FALLTHROUGH;
        const seq = pv.tcpSeq;
        if ((t.tcpw[w + W_FLAGS + 1 - dir] & WF_MAXACK_SET) !== 0 && lastIdx !== C_SYN) {
          const established = old === TCP_ESTABLISHED && (meta & M_ASSURED) !== 0;
          const expected = t.tcpw[w + W_MAXACK + 1 - dir];
          if (seq === 0 && !established) r = RST_CLOSE;
          else if (((seq - expected) | 0) < 0 && c.tcpIgnoreInvalidRst === 0) {
            st.ctCls = CT_INVALID; // "invalid rst": no conntrack for this packet, state unchanged
            return TCP_INVALID;
          } else if (!established || seq === expected) r = RST_CLOSE;
          else if (lastIdx === C_ACK && lastDir === dir && seq === ses[o + S_TCP_END]) r = RST_CLOSE;
          else nw = old; // in window but not exact: keep the state for the challenge ACK (RFC 5961)
        }
        if (r === RST_FALLTHROUGH) {
          const seen = (meta & M_SEEN_REPLY) !== 0;
          const endW = ses[o + S_TCP_END];
          // An RST answering the SYN (from the other side) or ACK we let through last; then one
          // answering a challenge ACK in SYN_SENT (model: conntrack.ts rstCheck).
          if (
            ((seen && lastIdx === C_SYN && lastDir !== dir) || ((meta & M_ASSURED) === 0 && lastIdx === C_ACK)) &&
            pv.tcpAck === endW
          )
            skipWindow = true;
          else if (old === TCP_SYN_SENT && lastIdx === C_ACK && lastDir === 1 && seq === t.tcpw[w + W_LAST_ACK])
            skipWindow = true;
        }
      }
    }
    if (!skipWindow) {
      const r = tcpInWindow(
        t.tcpw,
        w,
        dir,
        cls,
        (meta >>> M_STATE_SHIFT) & M_STATE_MASK,
        st.buf,
        pv.l4Off,
        pv.tcpDataOff,
        pv.payloadLen,
        pv.tcpFlags,
        pv.tcpSeq,
        pv.tcpAck,
        pv.tcpWindow,
        lastDir,
        ses[o + S_TCP_END],
        c.tcpBeLiberal,
      );
      if (r === WIN_IGNORE) {
        // Out of window but harmless (old data, an old ACK, a small overshoot): accepted (NATed),
        // state and timer unchanged.
        ses[o + S_TCP_FLAGS] = tf >>> 0;
        if (dir === 1 && !seenBefore) t.touchMeta(o, (meta | M_SEEN_REPLY) >>> 0);
        st.eMeta = ses[o + S_META];
        return TCP_ACCEPT;
      }
      if (r === WIN_INVALID) {
        this.invalidSlow(local, dir, cls, tf);
        st.ctCls = CT_INVALID;
        return TCP_INVALID;
      }
      if (r === WIN_ACCEPT && cls === C_ACK) ses[o + S_TCP_END] = (pv.tcpSeq + pv.payloadLen) >>> 0;
    }
    // In-window from here on.
    tf = (tf & ~(T_LAST_DIR | (T_LAST_IDX_MASK << T_LAST_IDX_SHIFT))) | dir | (cls << T_LAST_IDX_SHIFT);
    if (old !== nw && nw === TCP_FIN_WAIT) tf |= T_CLOSE_INIT;
    ses[o + S_TCP_FLAGS] = tf >>> 0;
    const rst = cls === C_RST;
    if (rst && !seenBefore) {
      // RST before any reply: the entry is deleted at once (after this packet is NATed).
      st.killAfter = true;
      return TCP_ACCEPT;
    }
    if (
      seenBefore &&
      (meta & M_ASSURED) === 0 &&
      (old === TCP_SYN_RECV || old === TCP_ESTABLISHED) &&
      nw === TCP_ESTABLISHED
    ) {
      ctSetAssured(t, local);
      meta = ses[o + S_META];
    }
    meta = ((meta & ~(M_STATE_MASK << M_STATE_SHIFT)) | (nw << M_STATE_SHIFT)) >>> 0;
    if (dir === 1) meta = (meta | M_SEEN_REPLY) >>> 0;
    t.touchMeta(o, meta);
    // Kernel (nf_conntrack_tcp_packet): without a reply seen, a SYN in SYN_SENT (a retransmit, or
    // the peer's simultaneous-open SYN) does not renew the timer; ESTABLISHED is capped (loose pickup).
    const synInSS = cls === C_SYN && old === TCP_SYN_SENT && !seenBefore;
    if (!synInSS) {
      let to = tcpTimeout(t.tcpw, w, cls, c.tmo[nw], c);
      if (!seenBefore && nw === TCP_ESTABLISHED && to > c.tmo[TO_UNACK]) to = c.tmo[TO_UNACK];
      ctRefresh(t, local, st.now + to);
    }
    st.eMeta = ses[o + S_META];
    return TCP_ACCEPT;
  }

  /**
   * nf_tcp_handle_invalid: an out-of-window FIN or RST on an ASSURED entry answering the other
   * side's FIN/RST lowers a remaining timeout of at least 120 s to the unacknowledged timeout; any
   * other such FIN/RST becomes the last packet (last_dir / last_index).
   */
  private invalidSlow(local: number, dir: number, cls: number, tf: number): void {
    const t = this.t;
    const o = t.rec(local);
    const ses = t.ses;
    if ((ses[o + S_META] & M_ASSURED) === 0 || (cls !== C_RST && cls !== C_FIN)) return;
    const lastDir = tf & T_LAST_DIR;
    const lastIdx = (tf >>> T_LAST_IDX_SHIFT) & T_LAST_IDX_MASK;
    if (lastDir !== dir && (lastIdx === C_FIN || lastIdx === C_RST)) {
      const remaining = ses[o + S_EXPIRY] - this.st.now;
      const unack = this.c.tmo[TO_UNACK];
      if (remaining < 120_000 || remaining <= unack) return;
      ctRefresh(t, local, this.st.now + unack);
      return;
    }
    ses[o + S_TCP_FLAGS] =
      ((tf & ~(T_LAST_DIR | (T_LAST_IDX_MASK << T_LAST_IDX_SHIFT))) | dir | (cls << T_LAST_IDX_SHIFT)) >>> 0;
  }
}
