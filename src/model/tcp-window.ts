// TCP window tracking: tcp_in_window() of the newest nf_conntrack_proto_tcp.c with its helpers
// (tcp_options, tcp_sack, tcp_init_sender, nf_tcp_log_invalid's be_liberal), written from the
// kernel's rules (LNS §4 "Window tracking"; docs/semantics.md §4). Per direction the tracker keeps
// td_end (highest seq + len sent), td_maxend (highest ack + window the peer allowed), td_maxwin
// (largest window seen), td_maxack (highest ACK sent) and td_scale (window scale, both SYNs).

import { F_ACK, F_FIN, F_RST, F_SYN } from '../packet/constants.ts';
import type { PacketView } from '../packet/parse.ts';
import { TCP_ACK_SET, TCP_SYN_RECV, TCP_SYN_SENT } from './tcp-state.ts';

/** ip_ct_tcp_state.flags bits (include/uapi/linux/netfilter/nf_conntrack_tcp.h). */
export const TF_WINDOW_SCALE = 0x01;
export const TF_SACK_PERM = 0x02;
export const TF_CLOSE_INIT = 0x04;
export const TF_BE_LIBERAL = 0x08;
export const TF_DATA_UNACKNOWLEDGED = 0x10;
export const TF_MAXACK_SET = 0x20;

/** TCP_MAX_WSCALE (RFC 7323). */
const MAX_WSCALE = 14;
/** MAXACKWINCONST: the lower bound of a valid ACK is td_end − max(this, the sender's td_maxwin). */
const MAXACKWINCONST = 66000;

const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_WINDOW = 3;
const TCPOPT_SACK_PERM = 4;
const TCPOPT_SACK = 5;
const TCPOPT_TIMESTAMP = 8;

/** struct ip_ct_tcp_state: one direction's window data. */
export interface TcpDirState {
  end: number;
  maxend: number;
  maxwin: number;
  maxack: number;
  scale: number;
  flags: number;
}

export function newDirState(): TcpDirState {
  return { end: 0, maxend: 0, maxwin: 0, maxack: 0, scale: 0, flags: 0 };
}

/** nf_ct_tcp_state_reset: everything but BE_LIBERAL cleared. */
export function resetDirState(s: TcpDirState): void {
  s.end = 0;
  s.maxend = 0;
  s.maxwin = 0;
  s.maxack = 0;
  s.scale = 0;
  s.flags &= TF_BE_LIBERAL;
}

/** Window memory shared by both directions (the last_* fields of struct ip_ct_tcp). */
export interface TcpWindowShared {
  seen: [TcpDirState, TcpDirState];
  state: number;
  lastDir: number;
  lastSeq: number;
  lastAck: number;
  lastEnd: number;
  lastWin: number;
  retrans: number;
}

/** after(a, b) on 32-bit sequence numbers. */
export function seqAfter(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** before(a, b) on 32-bit sequence numbers. */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** segment_seq_plus_len: seq + payload + SYN + FIN (mod 2^32). */
export function segmentEnd(pv: PacketView): number {
  const len = pv.l4Len - pv.tcpDataOff;
  return (pv.tcpSeq + len + (pv.tcpFlags & F_SYN ? 1 : 0) + (pv.tcpFlags & F_FIN ? 1 : 0)) >>> 0;
}

/**
 * tcp_options: with any options present, the direction's td_scale and flags (but BE_LIBERAL) are
 * reset, then SACK_PERM and WINDOW_SCALE (scale capped at 14) are taken from the options.
 */
export function tcpOptions(pkt: Uint8Array, pv: PacketView, s: TcpDirState): void {
  let length = pv.tcpDataOff - 20;
  if (length <= 0) return;
  s.scale = 0;
  s.flags &= TF_BE_LIBERAL;
  let p = pv.l4Off + 20;
  while (length > 0) {
    const opcode = pkt[p++];
    if (opcode === TCPOPT_EOL) return;
    if (opcode === TCPOPT_NOP) {
      length--;
      continue;
    }
    if (length < 2) return;
    const opsize = pkt[p++];
    if (opsize < 2 || opsize > length) return;
    if (opcode === TCPOPT_SACK_PERM && opsize === 2) s.flags |= TF_SACK_PERM;
    else if (opcode === TCPOPT_WINDOW && opsize === 3) {
      s.scale = Math.min(pkt[p], MAX_WSCALE);
      s.flags |= TF_WINDOW_SCALE;
    }
    p += opsize - 2;
    length -= opsize;
  }
}

/** tcp_sack: the highest right edge of the first SACK option's blocks, if after `ack`. */
function tcpSack(pkt: Uint8Array, pv: PacketView, ack: number): number {
  let length = pv.tcpDataOff - 20;
  if (length <= 0) return ack;
  let p = pv.l4Off + 20;
  // Fast path for a timestamp-only option block (NOP NOP TS 10).
  if (
    length === 12 &&
    pkt[p] === TCPOPT_NOP &&
    pkt[p + 1] === TCPOPT_NOP &&
    pkt[p + 2] === TCPOPT_TIMESTAMP &&
    pkt[p + 3] === 10
  )
    return ack;
  let sack = ack;
  while (length > 0) {
    const opcode = pkt[p++];
    if (opcode === TCPOPT_EOL) return sack;
    if (opcode === TCPOPT_NOP) {
      length--;
      continue;
    }
    if (length < 2) return sack;
    const opsize = pkt[p++];
    if (opsize < 2 || opsize > length) return sack;
    if (opcode === TCPOPT_SACK && opsize >= 10 && (opsize - 2) % 8 === 0) {
      for (let i = 0; i < opsize - 2; i += 8) {
        const q = p + i + 4;
        const right = ((pkt[q] << 24) | (pkt[q + 1] << 16) | (pkt[q + 2] << 8) | pkt[q + 3]) >>> 0;
        if (seqAfter(right, sack)) sack = right;
      }
      return sack;
    }
    p += opsize - 2;
    length -= opsize;
  }
  return sack;
}

/** tcp_init_sender: a SYN/ACK answering a SYN, or a SYN from the reply side (simultaneous open). */
function initSender(
  pkt: Uint8Array,
  pv: PacketView,
  sender: TcpDirState,
  receiver: TcpDirState,
  end: number,
  win: number,
  dir: number,
): void {
  sender.end = end;
  sender.maxend = end;
  sender.maxwin = win === 0 ? 1 : win;
  tcpOptions(pkt, pv, sender);
  // RFC 1323: both sides must send Window Scale to enable scaling in either direction.
  if (dir === 1 && !(sender.flags & TF_WINDOW_SCALE && receiver.flags & TF_WINDOW_SCALE)) {
    sender.scale = 0;
    receiver.scale = 0;
  }
}

export type WindowVerdict = 'accept' | 'ignore' | 'invalid';

export interface WindowResult {
  verdict: WindowVerdict;
  /** Why a segment failed (the kernel's log text), '' when it passed. */
  why: string;
}

const ACCEPT: WindowResult = { verdict: 'accept', why: '' };

/**
 * tcp_in_window. `beLiberal` is nf_conntrack_tcp_be_liberal; the per-direction BE_LIBERAL flag
 * (loose pickup) has the same effect for its sender: a failed check then accepts the segment
 * without recording anything from it.
 */
export function tcpInWindow(
  w: TcpWindowShared,
  dir: number,
  index: number,
  pkt: Uint8Array,
  pv: PacketView,
  beLiberal: boolean,
): WindowResult {
  const sender = w.seen[dir];
  const receiver = w.seen[1 - dir];
  const fl = pv.tcpFlags;
  let seq = pv.tcpSeq;
  let ack = pv.tcpAck;
  let sack = ack;
  const winRaw = pv.tcpWindow;
  let win = winRaw;
  let end = segmentEnd(pv);
  const fail = (verdict: WindowVerdict, why: string): WindowResult =>
    sender.flags & TF_BE_LIBERAL || beLiberal ? ACCEPT : { verdict, why };

  if (receiver.flags & TF_SACK_PERM) sack = tcpSack(pkt, pv, ack);

  if (sender.maxwin === 0) {
    if (fl & F_SYN) {
      initSender(pkt, pv, sender, receiver, end, win, dir);
      if (!(fl & F_ACK)) return ACCEPT; // simultaneous open
    } else {
      // Mid-connection: the history is lost, use the packet's data.
      sender.end = end;
      const swin = (win << sender.scale) >>> 0;
      sender.maxwin = swin === 0 ? 1 : swin;
      sender.maxend = (end + sender.maxwin) >>> 0;
      if (receiver.maxwin === 0) {
        receiver.end = sack;
        receiver.maxend = sack;
      } else if (sack === (receiver.end + 1) >>> 0) {
        receiver.end = (receiver.end + 1) >>> 0; // likely a reply to a keepalive
      }
    }
  } else if (fl & F_SYN && seqAfter(end, sender.end) && (w.state === TCP_SYN_SENT || w.state === TCP_SYN_RECV)) {
    // RFC 793: a reinitialised TCP uses higher sequence numbers; re-init this direction.
    initSender(pkt, pv, sender, receiver, end, win, dir);
    if (dir === 1 && !(fl & F_ACK)) return ACCEPT;
  }

  if (!(fl & F_ACK)) {
    ack = receiver.end;
    sack = receiver.end;
  } else if (fl & F_RST && ack === 0) {
    // Broken stacks set ACK in an RST with ack 0.
    ack = receiver.end;
    sack = receiver.end;
  }
  if (fl & F_RST && seq === 0 && w.state === TCP_SYN_SENT) {
    // An RST answering a SYN.
    seq = sender.end;
    end = sender.end;
  }

  const maxAckWindow = Math.max(sender.maxwin, MAXACKWINCONST);
  if (!seqBefore(seq, (sender.maxend + 1) >>> 0)) {
    const overshot = (end - sender.maxend + 1) >>> 0;
    const ackOk = seqAfter(sack, (receiver.end - maxAckWindow - 1) >>> 0);
    const inRecvWin = receiver.maxwin !== 0 && seqAfter(end, (sender.end - receiver.maxwin - 1) >>> 0);
    if (inRecvWin && ackOk && overshot <= receiver.maxwin && seqBefore(sack, (receiver.end + 1) >>> 0)) {
      // A TCP that sends more than the window allows: ignored, but its end is recorded.
      sender.end = end;
      sender.flags |= TF_DATA_UNACKNOWLEDGED;
      return fail('ignore', `${overshot} bytes more than expected`);
    }
    return fail('invalid', `SEQ is over upper bound ${(sender.maxend + 1) >>> 0} (over the window of the receiver)`);
  }
  if (!seqBefore(sack, (receiver.end + 1) >>> 0))
    return fail('invalid', `ACK is over upper bound ${(receiver.end + 1) >>> 0} (ACKed data not seen yet)`);
  if (receiver.maxwin !== 0 && !seqAfter(end, (sender.end - receiver.maxwin - 1) >>> 0))
    return fail(
      'ignore',
      `SEQ is under lower bound ${(sender.end - receiver.maxwin - 1) >>> 0} (already ACKed data retransmitted)`,
    );
  if (!seqAfter(sack, (receiver.end - maxAckWindow - 1) >>> 0))
    return fail(
      'ignore',
      `ignored ACK under lower bound ${(receiver.end - maxAckWindow - 1) >>> 0} (possible overly delayed)`,
    );

  // In window: RFC 1323 scaling (not on SYNs), then update the sender and the receiver.
  if (!(fl & F_SYN)) win = (win << sender.scale) >>> 0;
  const swin = (win + (sack - ack)) >>> 0;
  if (sender.maxwin < swin) sender.maxwin = swin;
  if (seqAfter(end, sender.end)) {
    sender.end = end;
    sender.flags |= TF_DATA_UNACKNOWLEDGED;
  }
  if (fl & F_ACK) {
    if (!(sender.flags & TF_MAXACK_SET)) {
      sender.maxack = ack;
      sender.flags |= TF_MAXACK_SET;
    } else if (seqAfter(ack, sender.maxack)) sender.maxack = ack;
  }
  if (receiver.maxwin !== 0 && seqAfter(end, sender.maxend))
    receiver.maxwin = (receiver.maxwin + end - sender.maxend) >>> 0;
  if (seqAfter((sack + win) >>> 0, (receiver.maxend - 1) >>> 0)) {
    receiver.maxend = (sack + win) >>> 0;
    if (win === 0) receiver.maxend = (receiver.maxend + 1) >>> 0;
  }
  if (ack === receiver.end) receiver.flags &= ~TF_DATA_UNACKNOWLEDGED;

  // Retransmissions: an ACK-class segment identical to the last one in this direction.
  if (index === TCP_ACK_SET) {
    if (w.lastDir === dir && w.lastSeq === seq && w.lastAck === ack && w.lastEnd === end && w.lastWin === winRaw) {
      w.retrans = (w.retrans + 1) & 0xff;
    } else {
      w.lastDir = dir;
      w.lastSeq = seq;
      w.lastAck = ack;
      w.lastEnd = end;
      w.lastWin = winRaw;
      w.retrans = 0;
    }
  }
  return ACCEPT;
}

/** tcp_new's window part for a first SYN (seen[ORIG] from it) or a picked-up segment. */
export function tcpWindowNew(w: TcpWindowShared, pkt: Uint8Array, pv: PacketView, syn: boolean): void {
  w.seen = [newDirState(), newDirState()];
  const s = w.seen[0];
  s.end = segmentEnd(pv);
  s.maxwin = pv.tcpWindow === 0 ? 1 : pv.tcpWindow;
  if (syn) {
    s.maxend = s.end;
    tcpOptions(pkt, pv, s);
  } else {
    s.maxend = (s.end + s.maxwin) >>> 0;
    // SACK and liberal window checking assumed for a picked-up connection (window scaling unknown).
    s.flags = TF_SACK_PERM | TF_BE_LIBERAL;
    w.seen[1].flags = TF_SACK_PERM | TF_BE_LIBERAL;
  }
}
