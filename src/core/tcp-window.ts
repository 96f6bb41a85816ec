// TCP window tracking on the `tcpw` words of a session (layout.ts W_*): tcp_in_window() of the
// newest nf_conntrack_proto_tcp.c with tcp_options, tcp_sack, tcp_init_sender and be_liberal, the
// retransmission counting, and the timeout choice of nf_conntrack_tcp_packet (max_retrans,
// unacknowledged data, zero window). Twin of src/model/tcp-window.ts (docs/semantics.md §4).
// Used by the slow path's tracker (tcp-tracker.ts), by the creation of an entry (conntrack.ts)
// and, through tcpFastWindow, by the established fast path (dataplane.ts): no allocation.

import { F_ACK, F_FIN, F_RST, F_SYN } from '../packet/constants.ts';
import {
  LW_RETRANS_SHIFT,
  TCPW_WORDS,
  TCP_ESTABLISHED,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  W_END,
  W_FLAGS,
  W_LAST,
  W_LAST_ACK,
  W_LAST_SEQ,
  W_MAXACK,
  W_MAXEND,
  W_MAXWIN,
  WF_BE_LIBERAL,
  WF_DATA_UNACK,
  WF_MAXACK_SET,
  WF_SACK_PERM,
  WF_SCALE_MASK,
  WF_WINDOW_SCALE,
} from './layout.ts';
import { type CompiledScenario, TO_CLOSE, TO_ESTABLISHED, TO_RETRANS, TO_UNACK } from './compile.ts';

/** tcp_in_window outcomes. */
export const WIN_ACCEPT = 0; // in window: recorded
export const WIN_LIBERAL = 1; // a check failed but be_liberal accepts it: nothing recorded
export const WIN_IGNORE = 2; // accepted, state and timer unchanged
export const WIN_INVALID = 3;

/** get_conntrack_index's ACK and RST classes (tcp-tracker.ts C_ACK / C_RST). */
const CLS_ACK = 3;
const CLS_RST = 4;
/** MAXACKWINCONST: the lower bound of a valid ACK is td_end − max(this, the sender's td_maxwin). */
const MAXACKWINCONST = 66000;
const MAX_WSCALE = 14;

function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/**
 * tcp_options: the flags word (W_FLAGS) after a SYN's options. With any options present the
 * scale and every flag but BE_LIBERAL are reset first, then SACK_PERM and WINDOW_SCALE are read.
 */
export function optionsWord(old: number, buf: Uint8Array, l4: number, doff: number): number {
  let length = doff - 20;
  if (length <= 0) return old;
  let f = old & WF_BE_LIBERAL;
  let p = l4 + 20;
  while (length > 0) {
    // Every round consumes at least one byte of the ≤ 40 option bytes.
    const opcode = buf[p++];
    if (opcode === 0) break; // EOL
    if (opcode === 1) {
      length--; // NOP
      continue;
    }
    if (length < 2) break;
    const opsize = buf[p++];
    if (opsize < 2 || opsize > length) break;
    if (opcode === 4 && opsize === 2) f |= WF_SACK_PERM;
    else if (opcode === 3 && opsize === 3) {
      const sc = Math.min(buf[p], MAX_WSCALE);
      f = (f & ~WF_SCALE_MASK) | sc | WF_WINDOW_SCALE;
    }
    p += opsize - 2;
    length -= opsize;
  }
  return f >>> 0;
}

/** tcp_sack: the highest right edge of the first SACK option's blocks (if after `ack`). */
function tcpSack(buf: Uint8Array, l4: number, doff: number, ack: number): number {
  let length = doff - 20;
  if (length <= 0) return ack;
  let p = l4 + 20;
  if (length === 12 && buf[p] === 1 && buf[p + 1] === 1 && buf[p + 2] === 8 && buf[p + 3] === 10) return ack;
  let sack = ack;
  while (length > 0) {
    const opcode = buf[p++];
    if (opcode === 0) return sack;
    if (opcode === 1) {
      length--;
      continue;
    }
    if (length < 2) return sack;
    const opsize = buf[p++];
    if (opsize < 2 || opsize > length) return sack;
    if (opcode === 5 && opsize >= 10 && ((opsize - 2) & 7) === 0) {
      for (let i = 0; i < opsize - 2; i += 8) {
        const q = p + i + 4;
        const right = ((buf[q] << 24) | (buf[q + 1] << 16) | (buf[q + 2] << 8) | buf[q + 3]) >>> 0;
        if (after(right, sack)) sack = right;
      }
      return sack;
    }
    p += opsize - 2;
    length -= opsize;
  }
  return sack;
}

/** tcp_init_sender: a SYN/ACK answering a SYN, or a SYN from the reply side. */
function initSender(
  tw: Uint32Array,
  w: number,
  dir: number,
  buf: Uint8Array,
  l4: number,
  doff: number,
  end: number,
  win: number,
): void {
  tw[w + W_END + dir] = end;
  tw[w + W_MAXEND + dir] = end;
  tw[w + W_MAXWIN + dir] = win === 0 ? 1 : win;
  const sf = optionsWord(tw[w + W_FLAGS + dir], buf, l4, doff);
  tw[w + W_FLAGS + dir] = sf;
  // RFC 1323: both sides must send Window Scale to enable scaling in either direction.
  const rf = tw[w + W_FLAGS + 1 - dir];
  if (dir === 1 && !((sf & WF_WINDOW_SCALE) !== 0 && (rf & WF_WINDOW_SCALE) !== 0)) {
    tw[w + W_FLAGS + dir] = (sf & ~WF_SCALE_MASK) >>> 0;
    tw[w + W_FLAGS + 1 - dir] = (rf & ~WF_SCALE_MASK) >>> 0;
  }
}

/**
 * tcp_in_window on session words tw[w ..]. `state` is the entry's stored state, `lastDir` /
 * `lastEnd` its last_dir / last_end (the retransmission check; on WIN_ACCEPT of an ACK-class
 * segment the caller stores last_end = the segment's end). Returns WIN_*.
 */
export function tcpInWindow(
  tw: Uint32Array,
  w: number,
  dir: number,
  cls: number,
  state: number,
  buf: Uint8Array,
  l4: number,
  doff: number,
  payloadLen: number,
  fl: number,
  seqIn: number,
  ackIn: number,
  winRaw: number,
  lastDir: number,
  lastEnd: number,
  beLiberal: number,
): number {
  const o = 1 - dir;
  let seq = seqIn;
  let ack = ackIn;
  let sack = ackIn;
  let win = winRaw;
  let end = (seqIn + payloadLen + (fl & F_SYN ? 1 : 0) + (fl & F_FIN ? 1 : 0)) >>> 0;
  if ((tw[w + W_FLAGS + o] & WF_SACK_PERM) !== 0) sack = tcpSack(buf, l4, doff, ack);

  if (tw[w + W_MAXWIN + dir] === 0) {
    if (fl & F_SYN) {
      initSender(tw, w, dir, buf, l4, doff, end, win);
      if (!(fl & F_ACK)) return WIN_ACCEPT; // simultaneous open
    } else {
      // Mid-connection: the history is lost, use the packet's data.
      tw[w + W_END + dir] = end;
      let swin = (win << (tw[w + W_FLAGS + dir] & WF_SCALE_MASK)) >>> 0;
      if (swin === 0) swin = 1;
      tw[w + W_MAXWIN + dir] = swin;
      tw[w + W_MAXEND + dir] = (end + swin) >>> 0;
      if (tw[w + W_MAXWIN + o] === 0) {
        tw[w + W_END + o] = sack;
        tw[w + W_MAXEND + o] = sack;
      } else if (sack === (tw[w + W_END + o] + 1) >>> 0) {
        tw[w + W_END + o] = sack; // likely a reply to a keepalive
      }
    }
  } else if (
    (fl & F_SYN) !== 0 &&
    after(end, tw[w + W_END + dir]) &&
    (state === TCP_SYN_SENT || state === TCP_SYN_RECV)
  ) {
    // RFC 793: a reinitialised TCP uses higher sequence numbers; re-init this direction.
    initSender(tw, w, dir, buf, l4, doff, end, win);
    if (dir === 1 && !(fl & F_ACK)) return WIN_ACCEPT;
  }

  const rEnd = tw[w + W_END + o];
  if (!(fl & F_ACK) || ((fl & F_RST) !== 0 && ack === 0)) {
    // No ACK: pretend it was set and fine (also an RST with ACK set and ack 0, broken stacks).
    ack = rEnd;
    sack = rEnd;
  }
  if ((fl & F_RST) !== 0 && seq === 0 && state === TCP_SYN_SENT) {
    seq = tw[w + W_END + dir]; // an RST answering a SYN
    end = seq;
  }
  const liberal = beLiberal !== 0 || (tw[w + W_FLAGS + dir] & WF_BE_LIBERAL) !== 0;
  const sEnd = tw[w + W_END + dir];
  const sMaxend = tw[w + W_MAXEND + dir];
  const sMaxwin = tw[w + W_MAXWIN + dir];
  const rMaxwin = tw[w + W_MAXWIN + o];
  const maxAckWindow = Math.max(sMaxwin, MAXACKWINCONST);
  if (!before(seq, (sMaxend + 1) >>> 0)) {
    const overshot = (end - sMaxend + 1) >>> 0;
    if (
      rMaxwin !== 0 &&
      after(end, (sEnd - rMaxwin - 1) >>> 0) &&
      after(sack, (rEnd - maxAckWindow - 1) >>> 0) &&
      overshot <= rMaxwin &&
      before(sack, (rEnd + 1) >>> 0)
    ) {
      // A TCP sending more than the window allows: ignored, but its end is recorded.
      tw[w + W_END + dir] = end;
      tw[w + W_FLAGS + dir] = (tw[w + W_FLAGS + dir] | WF_DATA_UNACK) >>> 0;
      return liberal ? WIN_LIBERAL : WIN_IGNORE;
    }
    return liberal ? WIN_LIBERAL : WIN_INVALID; // SEQ over the upper bound
  }
  if (!before(sack, (rEnd + 1) >>> 0)) return liberal ? WIN_LIBERAL : WIN_INVALID; // ACKs unseen data
  if (rMaxwin !== 0 && !after(end, (sEnd - rMaxwin - 1) >>> 0)) return liberal ? WIN_LIBERAL : WIN_IGNORE; // old data
  if (!after(sack, (rEnd - maxAckWindow - 1) >>> 0)) return liberal ? WIN_LIBERAL : WIN_IGNORE; // old ACK

  // In window: RFC 1323 scaling (not on SYNs), then update the sender and the receiver.
  if (!(fl & F_SYN)) win = (win << (tw[w + W_FLAGS + dir] & WF_SCALE_MASK)) >>> 0;
  const swin = (win + sack - ack) >>> 0;
  if (sMaxwin < swin) tw[w + W_MAXWIN + dir] = swin;
  let sf = tw[w + W_FLAGS + dir];
  if (after(end, sEnd)) {
    tw[w + W_END + dir] = end;
    sf |= WF_DATA_UNACK;
  }
  if (fl & F_ACK) {
    if ((sf & WF_MAXACK_SET) === 0) {
      tw[w + W_MAXACK + dir] = ack;
      sf |= WF_MAXACK_SET;
    } else if (after(ack, tw[w + W_MAXACK + dir])) tw[w + W_MAXACK + dir] = ack;
  }
  tw[w + W_FLAGS + dir] = sf >>> 0;
  if (rMaxwin !== 0 && after(end, sMaxend)) tw[w + W_MAXWIN + o] = (rMaxwin + end - sMaxend) >>> 0;
  if (after((sack + win) >>> 0, (tw[w + W_MAXEND + o] - 1) >>> 0)) {
    tw[w + W_MAXEND + o] = (sack + win + (win === 0 ? 1 : 0)) >>> 0;
  }
  if (ack === rEnd) tw[w + W_FLAGS + o] = (tw[w + W_FLAGS + o] & ~WF_DATA_UNACK) >>> 0;

  // Retransmissions: an ACK-class segment identical to the last one in this direction.
  if (cls === CLS_ACK) {
    const lw = tw[w + W_LAST];
    if (
      lastDir === dir &&
      tw[w + W_LAST_SEQ] === seq &&
      tw[w + W_LAST_ACK] === ack &&
      lastEnd === end &&
      (lw & 0xffff) === winRaw
    ) {
      const r = (((lw >>> LW_RETRANS_SHIFT) + 1) & 0xff) << LW_RETRANS_SHIFT;
      tw[w + W_LAST] = ((lw & ~(0xff << LW_RETRANS_SHIFT)) | r) >>> 0;
    } else {
      tw[w + W_LAST_SEQ] = seq;
      tw[w + W_LAST_ACK] = ack;
      tw[w + W_LAST] = ((lw & ~0xffffff) | winRaw) >>> 0; // last_win, retrans 0
    }
  }
  return WIN_ACCEPT;
}

/**
 * nf_conntrack_tcp_packet's timeout (ms) for an accepted packet of class `cls` entering a state
 * whose timeout is `stateTo`: max_retrans reached, RST, unacknowledged data, zero window, state.
 */
export function tcpTimeout(tw: Uint32Array, w: number, cls: number, stateTo: number, c: CompiledScenario): number {
  const lw = tw[w + W_LAST];
  const retransTo = c.tmo[TO_RETRANS];
  if (((lw >>> LW_RETRANS_SHIFT) & 0xff) >= c.tcpMaxRetrans && stateTo > retransTo) return retransTo;
  if (cls === CLS_RST) return c.tmo[TO_CLOSE];
  if (((tw[w + W_FLAGS] | tw[w + W_FLAGS + 1]) & WF_DATA_UNACK) !== 0 && stateTo > c.tmo[TO_UNACK])
    return c.tmo[TO_UNACK];
  if ((lw & 0xffff) === 0 && stateTo > retransTo) return retransTo;
  return stateTo;
}

/**
 * The fast path's window step for an ACK-class segment on an ESTABLISHED, ASSURED entry: the full
 * tcp_in_window; if the segment is in window and its timeout (ms) is at least `minTimeout`, that
 * timeout; otherwise -1 with the words restored from `snap` (the slow path then handles the
 * segment from scratch).
 */
export function tcpFastWindow(
  tw: Uint32Array,
  w: number,
  kind: number,
  buf: Uint8Array,
  l4: number,
  doff: number,
  payloadLen: number,
  fl: number,
  lastDir: number,
  lastEnd: number,
  c: CompiledScenario,
  snap: Uint32Array,
  minTimeout: number,
): number {
  for (let k = 0; k < TCPW_WORDS; k++) snap[k] = tw[w + k];
  const seq = ((buf[l4 + 4] << 24) | (buf[l4 + 5] << 16) | (buf[l4 + 6] << 8) | buf[l4 + 7]) >>> 0;
  const ack = ((buf[l4 + 8] << 24) | (buf[l4 + 9] << 16) | (buf[l4 + 10] << 8) | buf[l4 + 11]) >>> 0;
  const win = (buf[l4 + 14] << 8) | buf[l4 + 15];
  const r = tcpInWindow(
    tw,
    w,
    kind,
    CLS_ACK,
    TCP_ESTABLISHED,
    buf,
    l4,
    doff,
    payloadLen,
    fl,
    seq,
    ack,
    win,
    lastDir,
    lastEnd,
    c.tcpBeLiberal,
  );
  const to = r === WIN_ACCEPT ? tcpTimeout(tw, w, CLS_ACK, c.tmo[TO_ESTABLISHED], c) : -1;
  if (to < minTimeout) {
    for (let k = 0; k < TCPW_WORDS; k++) tw[w + k] = snap[k];
    return -1;
  }
  return to;
}
