// The mangle table of the forwarding path in the slow path: FORWARD then POSTROUTING rules of each
// NAT instance, compiled to typed arrays (compileMangle), matched per packet as ipt_do_table does
// (the tcp/udp match drops a packet whose header it cannot read), and the TCPMSS target of
// net/netfilter/xt_TCPMSS.c on the frame being walked: lower an MSS option above the new value, or
// insert `MSS min(new, 536)` into a SYN without one and without payload — the frame then grows by
// 4 bytes and moves to the end of the packet's ICMP-error region of the output arena (docs/frame-batch.md).
// Only SYN-bearing segments are ever rewritten (xt_TCPMSS's checkentry demands a SYN match), and
// those never take the fast path.

import type { MangleRule, Scenario } from '../spec/scenario.ts';
import { INSTANCE_MTU, MANGLE_CHAINS, TCPMSS_CLAMP_PMTU } from '../spec/scenario.ts';
import { ICMP_ERROR_MAX_LEN } from '../spec/timeouts.ts';
import { parseIpv4 } from '../packet/parse.ts';
import { rd16, wr16 } from '../packet/bytes.ts';
import { csumApplyDelta, csumDelta16, csumDelta32 } from '../packet/checksum.ts';
import { PROTO_TCP } from '../packet/constants.ts';
import type { SlowState } from './slow-state.ts';
import {
  MODE_NEG,
  MODE_POS,
  type RuleColumns,
  compileRuleColumns,
  matchRuleColumns,
  ruleColumns,
} from './rule-columns.ts';

/** Compiled mangle rules: slot k's chain c (0 FORWARD, 1 POSTROUTING) is [start[2k+c], start[2k+c+1]). */
export interface CompiledMangle extends RuleColumns {
  start: Int32Array;
  /** The rule's -i/-o fit chain c's devices (FORWARD: in eth0, out eth0; POSTROUTING: out eth0). */
  ifOk: Uint8Array;
  /** 1 TCPMSS (continue), 0 ACCEPT/RETURN (end of chain). */
  isMss: Uint8Array;
  /** The MSS a TCPMSS rule sets (--clamp-mss-to-pmtu resolved: INSTANCE_MTU − 40). */
  mss: Uint16Array;
}

const TCPOLEN_MSS = 4;
const MSS_MINLEN = 40;
const MSS_DEFAULT_IPV4 = 536;
const TCP_HDR = 20;

function ifHit(m: { name: string; neg: boolean } | null, dev: string): number {
  if (!m) return 1;
  const n = m.name;
  const hit = n.endsWith('+') ? dev.startsWith(n.slice(0, -1)) : n === dev;
  return hit !== m.neg ? 1 : 0;
}

/** The mangle rules of the NAT instances `natInst` (slot order). */
export function compileMangle(s: Scenario, natInst: readonly number[]): CompiledMangle {
  const start: number[] = [];
  const rules: Array<{ r: MangleRule; c: number }> = [];
  for (const i of natInst) {
    const t = s.instances[i].mangle;
    MANGLE_CHAINS.forEach((ch, c) => {
      start.push(rules.length);
      if (t) for (const r of t.chains[ch]) rules.push({ r, c });
    });
  }
  start.push(rules.length);
  const R = rules.length;
  const m: CompiledMangle = {
    ...ruleColumns(R),
    start: Int32Array.from(start),
    ifOk: new Uint8Array(R),
    isMss: new Uint8Array(R),
    mss: new Uint16Array(R),
  };
  rules.forEach(({ r, c }, k) => {
    compileRuleColumns(m, k, r);
    m.ifOk[k] = ifHit(r.inIface, c === 0 ? 'eth0' : '') & ifHit(r.outIface, 'eth0');
    if (r.proto && r.proto.proto !== 0) {
      m.proto[k] = r.proto.proto;
      m.protoMode[k] = r.proto.neg ? MODE_NEG : MODE_POS;
    }
    m.isMss[k] = r.target === 'TCPMSS' ? 1 : 0;
    m.mss[k] = r.mss === TCPMSS_CLAMP_PMTU ? INSTANCE_MTU - MSS_MINLEN : r.mss;
  });
  return m;
}

/** Result of Tcpmss.run: the frame goes on, or a rule dropped it. */
export const MANGLE_PASS = 0;
export const MANGLE_DROP = 1;
/** The mangle chains the walk runs (filter FORWARD sits between them). */
export const MANGLE_FORWARD = 0;
export const MANGLE_POSTROUTING = 1;

export class Tcpmss {
  constructor(
    private readonly m: CompiledMangle,
    private readonly st: SlowState,
  ) {}

  /** True when NAT slot `slot` has mangle rules (the walk skips the table otherwise). */
  has(slot: number): boolean {
    return this.m.start[2 * slot] !== this.m.start[2 * slot + 2];
  }

  /** Mangle chain `c` (MANGLE_FORWARD or MANGLE_POSTROUTING) of NAT slot `slot` on the frame being walked. */
  run(slot: number, c: number): number {
    const ci = 2 * slot + c;
    for (let k = this.m.start[ci], e = this.m.start[ci + 1]; k < e; k++) {
      const v = this.match(k);
      if (v < 0) return MANGLE_DROP;
      if (v === 0) continue;
      if (this.m.isMss[k] === 0) break;
      if (this.st.pv.proto !== PROTO_TCP) continue;
      if (!this.mangle(this.m.mss[k])) return MANGLE_DROP;
    }
    return MANGLE_PASS;
  }

  /** 1 match, 0 no match, -1 the tcp/udp match's hotdrop. */
  private match(k: number): number {
    if (this.m.ifOk[k] === 0) return 0;
    return matchRuleColumns(this.m, k, this.st.pv, this.st.buf, this.st.fo);
  }

  /** tcpmss_mangle_packet + tcpmss_tg4; false = NF_DROP. */
  private mangle(want: number): boolean {
    const st = this.st;
    const pv = st.pv;
    const b = st.buf;
    const ip = st.fo;
    const th = ip + pv.ihl;
    const len = pv.totalLen - pv.ihl;
    if (len < TCP_HDR) return false;
    const hl = (b[th + 12] >>> 4) << 2;
    if (len < hl || hl < TCP_HDR) return false;
    let newmss = want;
    const co = th + 16;
    for (let i = TCP_HDR; i <= hl - TCPOLEN_MSS; ) {
      const kind = b[th + i];
      const ol = b[th + i + 1];
      if (kind === 2 && ol === TCPOLEN_MSS) {
        const old = rd16(b, th + i + 2);
        if (old <= newmss) return true;
        wr16(b, th + i + 2, newmss);
        wr16(b, co, csumApplyDelta(rd16(b, co), csumDelta16(old, newmss)));
        return true;
      }
      i += kind <= 1 || ol === 0 ? 1 : ol;
    }
    if (len > hl || hl >= 60) return true;
    if (newmss > MSS_DEFAULT_IPV4) newmss = MSS_DEFAULT_IPV4;
    // Grow by 4: the frame moves to the end of this packet's ICMP-error region (see the header).
    const tot = pv.totalLen;
    const nlen = tot + TCPOLEN_MSS;
    const no = (st.errOff + ICMP_ERROR_MAX_LEN - nlen) & ~7;
    const optAt = pv.ihl + TCP_HDR;
    // Copy backwards is not needed: the regions never overlap (the error region is separate).
    for (let k = 0; k < optAt; k++) b[no + k] = b[ip + k];
    for (let k = optAt; k < tot; k++) b[no + k + TCPOLEN_MSS] = b[ip + k];
    const nth = no + pv.ihl;
    const nco = nth + 16;
    wr16(b, nco, csumApplyDelta(rd16(b, nco), csumDelta16(len, len + TCPOLEN_MSS)));
    const opt = nth + TCP_HDR;
    b[opt] = 2;
    b[opt + 1] = TCPOLEN_MSS;
    wr16(b, opt + 2, newmss);
    wr16(b, nco, csumApplyDelta(rd16(b, nco), csumDelta32(0, ((0x0204 << 16) | newmss) >>> 0)));
    const oldWord = rd16(b, nth + 12);
    b[nth + 12] = (b[nth + 12] + 0x10) & 0xff;
    wr16(b, nco, csumApplyDelta(rd16(b, nco), csumDelta16(oldWord, rd16(b, nth + 12))));
    wr16(b, no + 2, nlen);
    wr16(b, no + 10, csumApplyDelta(rd16(b, no + 10), csumDelta16(tot, nlen)));
    st.fo = no;
    parseIpv4(b, no, nlen, pv);
    return true;
  }
}
