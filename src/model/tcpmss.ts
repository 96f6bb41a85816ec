// The mangle table on the forwarding path (FORWARD, then POSTROUTING before the nat table): rules
// matched per packet (ipt_do_table: ip_packet_match, then the tcp/udp match, which drops a packet
// whose header it cannot read), and the TCPMSS target exactly as net/netfilter/xt_TCPMSS.c
// (tcpmss_mangle_packet + tcpmss_tg4): lower an MSS option above the new value (never raise it),
// or — for a SYN without one and without payload — insert `MSS min(new, 536)` after the 20-byte
// header, with the kernel's incremental checksum steps in its order. Readable, not fast.

import { PROTO_TCP, TCP_MIN_HDR_LEN, UDP_HDR_LEN } from '../packet/constants.ts';
import { csumReplace16, csumReplace32 } from '../packet/checksum.ts';
import { rd16, rd32, wr16 } from '../packet/bytes.ts';
import { parseIpv4, PacketView } from '../packet/parse.ts';
import {
  INSTANCE_MTU,
  TCPMSS_CLAMP_PMTU,
  type MangleChainName,
  type MangleRule,
  type MangleTable,
} from '../spec/scenario.ts';
import { cidrHas, ifaceHas } from './nat.ts';

/** TCPOPT_MSS, TCPOLEN_MSS. */
const TCPOPT_MSS = 2;
const TCPOLEN_MSS = 4;
/** tcpmss_tg4's minlen: sizeof(struct iphdr) + sizeof(struct tcphdr) (options not counted). */
const TCPMSS_MINLEN = 40;
/** RFC 1122's default send MSS, the most TCPMSS inserts for IPv4 (xt_TCPMSS since Linux 3.12). */
const TCPMSS_DEFAULT_IPV4 = 536;
/** The largest TCP header (doff is 4 bits). */
const TCP_MAX_HDR_LEN = 60;

export interface MangleOutcome {
  /** The packet after the chain (a new array when TCPMSS grew it, else the one given). */
  pkt: Uint8Array;
  /** A rule dropped the packet (TCPMSS or the tcp/udp match could not read its header). */
  drop: boolean;
  /** What changed, for the trace ('MSS 1460→1400', 'MSS 536 inserted'), or ''. */
  note: string;
}

/** ip_packet_match + the rule's tcp/udp match; 'drop' = the match's hotdrop. */
function mangleRuleMatch(
  r: MangleRule,
  pkt: Uint8Array,
  pv: PacketView,
  inDev: string,
  outDev: string,
): boolean | 'drop' {
  if (r.src && cidrHas(r.src.cidr, pv.src) === r.src.neg) return false;
  if (r.dst && cidrHas(r.dst.cidr, pv.dst) === r.dst.neg) return false;
  if (r.inIface && ifaceHas(r.inIface.name, inDev) === r.inIface.neg) return false;
  if (r.outIface && ifaceHas(r.outIface.name, outDev) === r.outIface.neg) return false;
  if (r.proto && r.proto.proto !== 0 && (r.proto.proto === pv.proto) === r.proto.neg) return false;
  if (r.l4Match === null) return true;
  // tcp_mt / udp_mt: not on a non-first fragment; a header it cannot read is a hotdrop.
  if (pv.fragOff !== 0) return false;
  const hdr = r.l4Match === 'tcp' ? TCP_MIN_HDR_LEN : UDP_HDR_LEN;
  if (pv.totalLen - pv.ihl < hdr) return 'drop';
  const l4 = pv.ihl;
  const sport = rd16(pkt, l4);
  const dport = rd16(pkt, l4 + 2);
  if (r.sport && (sport >= r.sport.lo && sport <= r.sport.hi) === r.sport.neg) return false;
  if (r.dport && (dport >= r.dport.lo && dport <= r.dport.hi) === r.dport.neg) return false;
  if (r.tcpFlags && ((pkt[l4 + 13] & r.tcpFlags.mask) === r.tcpFlags.cmp) === r.tcpFlags.neg) return false;
  return true;
}

/** optlen(): a zero-length or one-byte option (EOL, NOP) advances by one. */
function optLen(pkt: Uint8Array, at: number): number {
  return pkt[at] <= 1 || pkt[at + 1] === 0 ? 1 : pkt[at + 1];
}

/**
 * tcpmss_mangle_packet + tcpmss_tg4 on an IPv4 TCP packet (IP header at 0, not a fragment).
 * `mss` is the rule's --set-mss or TCPMSS_CLAMP_PMTU (the instance's ENI MTU, both ways, − 40).
 */
export function tcpmssPacket(pkt: Uint8Array, mss: number): MangleOutcome {
  const pv = new PacketView();
  parseIpv4(pkt, 0, pkt.length, pv);
  const tcphoff = pv.ihl;
  const len = pv.totalLen - tcphoff;
  if (len < TCP_MIN_HDR_LEN) return { pkt, drop: true, note: 'TCP header shorter than 20 bytes' };
  const tcpHdrLen = (pkt[tcphoff + 12] >>> 4) * 4;
  if (len < tcpHdrLen || tcpHdrLen < TCP_MIN_HDR_LEN)
    return { pkt, drop: true, note: `TCP data offset ${tcpHdrLen} bytes does not fit the ${len}-byte segment` };
  let newmss = mss === TCPMSS_CLAMP_PMTU ? INSTANCE_MTU - TCPMSS_MINLEN : mss;
  for (let i = TCP_MIN_HDR_LEN; i <= tcpHdrLen - TCPOLEN_MSS; i += optLen(pkt, tcphoff + i)) {
    const o = tcphoff + i;
    if (pkt[o] === TCPOPT_MSS && pkt[o + 1] === TCPOLEN_MSS) {
      const oldmss = rd16(pkt, o + 2);
      if (oldmss <= newmss) return { pkt, drop: false, note: '' }; // never raised
      const out = pkt.slice();
      wr16(out, o + 2, newmss);
      wr16(out, tcphoff + 16, csumReplace16(rd16(out, tcphoff + 16), oldmss, newmss));
      return { pkt: out, drop: false, note: `MSS ${oldmss}→${newmss}` };
    }
  }
  // No MSS option: inserted only into a segment without payload whose header can grow.
  if (len > tcpHdrLen || tcpHdrLen >= TCP_MAX_HDR_LEN) return { pkt, drop: false, note: '' };
  newmss = Math.min(newmss, TCPMSS_DEFAULT_IPV4);
  const out = new Uint8Array(pv.totalLen + TCPOLEN_MSS);
  out.set(pkt.subarray(0, tcphoff + TCP_MIN_HDR_LEN), 0);
  out.set(pkt.subarray(tcphoff + TCP_MIN_HDR_LEN, pv.totalLen), tcphoff + TCP_MIN_HDR_LEN + TCPOLEN_MSS);
  const co = tcphoff + 16;
  // The pseudo-header's TCP length, the option's 32-bit word, the doff/flags word: in this order.
  wr16(out, co, csumReplace16(rd16(out, co), len, len + TCPOLEN_MSS));
  const opt = tcphoff + TCP_MIN_HDR_LEN;
  out[opt] = TCPOPT_MSS;
  out[opt + 1] = TCPOLEN_MSS;
  wr16(out, opt + 2, newmss);
  wr16(out, co, csumReplace32(rd16(out, co), 0, rd32(out, opt)));
  const oldWord = rd16(out, tcphoff + 12);
  out[tcphoff + 12] = (out[tcphoff + 12] + ((TCPOLEN_MSS / 4) << 4)) & 0xff;
  wr16(out, co, csumReplace16(rd16(out, co), oldWord, rd16(out, tcphoff + 12)));
  // tcpmss_tg4: the IP total length and its header checksum.
  const tot = rd16(out, 2);
  wr16(out, 2, tot + TCPOLEN_MSS);
  wr16(out, 10, csumReplace16(rd16(out, 10), tot, tot + TCPOLEN_MSS));
  return { pkt: out, drop: false, note: `MSS ${newmss} inserted` };
}

/**
 * Runs mangle chain `chain` over the packet (ipt_do_table): TCPMSS continues with the next rule,
 * ACCEPT and RETURN end the chain (the policy is ACCEPT).
 */
export function runMangleChain(
  table: MangleTable,
  chain: MangleChainName,
  pkt: Uint8Array,
  inDev: string,
  outDev: string,
): MangleOutcome {
  let cur = pkt;
  const notes: string[] = [];
  for (const r of table.chains[chain]) {
    const pv = new PacketView();
    parseIpv4(cur, 0, cur.length, pv);
    const m = mangleRuleMatch(r, cur, pv, inDev, outDev);
    if (m === 'drop')
      return { pkt: cur, drop: true, note: `${r.l4Match} match cannot read the ${r.l4Match?.toUpperCase()} header` };
    if (!m) continue;
    if (r.target !== 'TCPMSS') break;
    if (pv.proto !== PROTO_TCP) continue; // -p tcp is required: never reached
    const o = tcpmssPacket(cur, r.mss);
    if (o.drop) return o;
    cur = o.pkt;
    if (o.note) notes.push(o.note);
  }
  return { pkt: cur, drop: false, note: notes.join(', ') };
}

/** True when the table has rules in some chain (engines skip the walk otherwise). */
export function mangleHasRules(t: MangleTable | null | undefined): t is MangleTable {
  return !!t && (t.chains.FORWARD.length > 0 || t.chains.POSTROUTING.length > 0);
}
