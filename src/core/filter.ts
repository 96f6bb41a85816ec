// The NAT instances' filter tables in the slow path (docs/semantics.md §13, docs/core.md "Filter
// table"): every instance's built-in and user chains compiled once into typed arrays
// (compileFilter; filter tables never change mid-run, so each worker holds its own copy), walked as
// ipt_do_table walks them (net/ipv4/netfilter/ip_tables.c) — rules in order, a matching rule's
// counter counts (packets, bytes = IP total length), ACCEPT/DROP/REJECT end the walk, LOG counts
// and goes on, -j CHAIN pushes a return point on a fixed stack (FILTER_MAX_DEPTH, as the model's
// bound), RETURN or a user chain's end pops it, a built-in chain's end is its policy. A
// tcp/udp/icmp/multiport match that cannot read its header drops the packet (hotdrop). The state
// match sees the packet's conntrack classification (xt_conntrack.c). Twin of src/model/filter.ts.
//
// No allocation per packet; the walk is bounded by FILTER_MAX_STEPS (the model's bound: the parser
// refuses jump loops, but a chain graph may still be wide). Counters: per worker, Float64 (packets,
// bytes) per rule and per chain policy in `filtc` (layout.ts), summed by readFilterCounters. A
// walk that reads only what is fixed for an established session direction is replayed by the fast
// path (its counted cells recorded with the composed path: FILTER_FAST_CELLS, FF_WORDS).

import type { FilterRuleCounter } from '../spec/engine.ts';
import {
  CTSTATE_ESTABLISHED,
  CTSTATE_INVALID,
  CTSTATE_NEW,
  CTSTATE_RELATED,
  FILTER_CHAINS,
  ICMP_TYPE_ANY,
  type IfaceMatch,
  type Scenario,
} from '../spec/scenario.ts';
import { CT_ESTABLISHED, CT_NEW, CT_RELATED } from '../spec/reasons.ts';
import { rd16 } from '../packet/bytes.ts';
import { F_ACK, F_FIN, F_RST, F_SYN } from '../packet/constants.ts';
import { rejectCode } from '../scenario/iptables-filter.ts';
import type { SlowState } from './slow-state.ts';
import {
  MODE_NEG,
  MODE_NONE,
  MODE_POS,
  type RuleColumns,
  RC_FLAGS,
  compileRuleColumns,
  matchRuleColumnsBeforeFlags,
  ruleColumns,
  ruleFlagsMatch,
} from './rule-columns.ts';

/** The built-in chains' hooks (index into FILTER_CHAINS). */
export const HOOK_INPUT = 0;
export const HOOK_FORWARD = 1;
export const HOOK_OUTPUT = 2;
const HOOKS = 3;

/** Verdicts of FilterTable.run (the model's FILTER_*). */
export const FV_ACCEPT = 0;
export const FV_DROP = 1;
export const FV_REJECT = 2;
export const FV_HOTDROP = 3;

/** Rule targets. */
const T_ACCEPT = 0;
const T_DROP = 1;
const T_REJECT = 2;
const T_LOG = 3;
const T_RETURN = 4;
const T_JUMP = 5;

const MP_SPORTS = 0;
const MP_DPORTS = 1;
const MP_PORTS = 2;

const ICMP_HDR = 8;
const PORTS_LEN = 4;

/** The most chains a walk may enter (the model's MAX_DEPTH): deeper, the packet is dropped. */
export const FILTER_MAX_DEPTH = 64;
/** The walk's step bound (the model's): beyond it, the packet is dropped. */
export const FILTER_MAX_STEPS = 1_000_000;

/**
 * Counter cells a composed path may replay per session direction (a walk that counted more keeps
 * its session on the slow path), and words per session direction in the `filtfast` region
 * (layout.ts): [0 = no record, else 1 + the number of cells], the cells.
 */
export const FILTER_FAST_CELLS = 3;
export const FF_WORDS = 4;

/**
 * The TCP flags every packet the fast path takes has alike — FIN, SYN, RST clear, ACK set
 * (Dataplane.fastPath's flags test: ACK or ACK+URG, PSH/ECE/CWR free); URG, PSH, ECE and CWR vary
 * per packet. A walk whose --tcp-flags tests read only these is the same for all of them.
 */
export const FAST_FIXED_FLAGS = F_FIN | F_SYN | F_RST | F_ACK;
export const FAST_FIXED_VALUE = F_ACK;

/** REJECT --reject-with tcp-reset (rejectCode's -1). */
export const REJECT_TCP_RESET = -1;

/**
 * Compiled filter tables. Chains are numbered over all instances; rules are flat, chain ch's are
 * [chainStart[ch], chainEnd[ch]). Counter k < nRules is rule k's; nRules + ch is chain ch's policy.
 */
export interface CompiledFilter extends RuleColumns {
  nRules: number;
  nChains: number;
  /** Per NAT slot: 1 when its instance has a filter table (an empty one counts its policies). */
  slotOn: Uint8Array;
  /** Per NAT slot and hook (slot * 3 + hook): the built-in chain's number (-1: no table). */
  builtin: Int32Array;
  chainStart: Int32Array;
  chainEnd: Int32Array;
  /** Per chain: 1 when its policy is DROP (built-in chains only). */
  policyDrop: Uint8Array;
  /** Per chain: its instance and name (readFilterCounters). */
  chainInst: Int32Array;
  chainName: string[];
  /** Per rule: bit h set when its -i/-o fit hook h's devices (INPUT in eth0; FORWARD in/out eth0; OUTPUT out eth0). */
  ifOk: Uint8Array;
  icmpMode: Uint8Array;
  icmpType: Uint8Array;
  icmpCodeLo: Uint8Array;
  icmpCodeHi: Uint8Array;
  mpMode: Uint8Array;
  mpDir: Uint8Array;
  /** Multiport ranges of rule k: mpLo/mpHi[mpStart[k] .. mpStart[k + 1]). */
  mpStart: Int32Array;
  mpLo: Uint16Array;
  mpHi: Uint16Array;
  ctMode: Uint8Array;
  ctStates: Uint8Array;
  target: Uint8Array;
  /** JUMP: the chain's number. */
  jump: Int32Array;
  /** REJECT: the ICMP destination-unreachable code, or REJECT_TCP_RESET. */
  reject: Int8Array;
}

/** The model's ifaceHit: `eth0`, a `+` prefix, `!`; dev '' = no device at that hook. */
function ifHit(m: IfaceMatch | null, dev: string): boolean {
  if (!m) return true;
  const n = m.name;
  const hit = n.endsWith('+') ? dev.startsWith(n.slice(0, -1)) : n === dev;
  return hit !== m.neg;
}

/** The devices the model gives each hook: [in, out]. */
const HOOK_DEVS: ReadonlyArray<[string, string]> = [
  ['eth0', ''],
  ['eth0', 'eth0'],
  ['', 'eth0'],
];

const TARGETS: Record<string, number> = {
  ACCEPT: T_ACCEPT,
  DROP: T_DROP,
  REJECT: T_REJECT,
  LOG: T_LOG,
  RETURN: T_RETURN,
  JUMP: T_JUMP,
};

/** The filter tables of the NAT instances `natInst` (slot order). Cold path. */
export function compileFilter(s: Scenario, natInst: readonly number[]): CompiledFilter {
  const slots = natInst.length;
  const slotOn = new Uint8Array(Math.max(1, slots));
  const builtin = new Int32Array(Math.max(1, slots) * HOOKS).fill(-1);
  const chainStart: number[] = [];
  const chainEnd: number[] = [];
  const policyDrop: number[] = [];
  const chainInst: number[] = [];
  const chainName: string[] = [];
  const rules: Array<{
    r: NonNullable<Scenario['instances'][number]['filter']>['chains'][string][number];
    inst: number;
  }> = [];
  const jumpName: string[] = [];
  natInst.forEach((i, slot) => {
    const t = s.instances[i].filter;
    if (!t) return;
    // Every table is walked, an empty one too (every policy ACCEPT, no rule): Linux counts each
    // packet in the policy of the chain it meets (a model-vs-kernel campaign found the empty
    // table's INPUT policy counting there and not here).
    slotOn[slot] = 1;
    const first = chainStart.length;
    const ids = new Map<string, number>();
    for (const name of Object.keys(t.chains)) ids.set(name, first + ids.size);
    for (const [name, list] of Object.entries(t.chains)) {
      chainStart.push(rules.length);
      for (const r of list) {
        rules.push({ r, inst: i });
        jumpName.push(r.target === 'JUMP' ? r.chain : '');
      }
      chainEnd.push(rules.length);
      const h = FILTER_CHAINS.indexOf(name as (typeof FILTER_CHAINS)[number]);
      policyDrop.push(h >= 0 && t.policy[FILTER_CHAINS[h]] === 'DROP' ? 1 : 0);
      chainInst.push(i);
      chainName.push(name);
    }
    for (let h = 0; h < HOOKS; h++) builtin[slot * HOOKS + h] = ids.get(FILTER_CHAINS[h]) ?? -1;
    // Jump targets of this instance's rules.
    for (let k = chainStart[first]; k < rules.length; k++) {
      if (jumpName[k] === '') continue;
      const to = ids.get(jumpName[k]);
      if (to === undefined) throw new Error(`compileFilter: ${s.instances[i].name}: no chain ${jumpName[k]}`);
      jumpName[k] = String(to);
    }
  });
  const R = rules.length;
  const mpLo: number[] = [];
  const mpHi: number[] = [];
  const f: CompiledFilter = {
    ...ruleColumns(R),
    nRules: R,
    nChains: chainStart.length,
    slotOn,
    builtin,
    chainStart: Int32Array.from(chainStart),
    chainEnd: Int32Array.from(chainEnd),
    policyDrop: Uint8Array.from(policyDrop),
    chainInst: Int32Array.from(chainInst),
    chainName,
    ifOk: new Uint8Array(R),
    icmpMode: new Uint8Array(R),
    icmpType: new Uint8Array(R),
    icmpCodeLo: new Uint8Array(R),
    icmpCodeHi: new Uint8Array(R),
    mpMode: new Uint8Array(R),
    mpDir: new Uint8Array(R),
    mpStart: new Int32Array(R + 1),
    mpLo: new Uint16Array(0),
    mpHi: new Uint16Array(0),
    ctMode: new Uint8Array(R),
    ctStates: new Uint8Array(R),
    target: new Uint8Array(R),
    jump: new Int32Array(R).fill(-1),
    reject: new Int8Array(R),
  };
  rules.forEach(({ r }, k) => {
    let ok = 0;
    for (let h = 0; h < HOOKS; h++) {
      const [din, dout] = HOOK_DEVS[h];
      if (ifHit(r.inIface, din) && ifHit(r.outIface, dout)) ok |= 1 << h;
    }
    f.ifOk[k] = ok;
    compileRuleColumns(f, k, r);
    if (r.proto) {
      f.protoMode[k] = r.proto.neg ? MODE_NEG : MODE_POS;
      f.proto[k] = r.proto.proto;
    }
    if (r.icmp) {
      f.icmpMode[k] = r.icmp.neg ? MODE_NEG : MODE_POS;
      f.icmpType[k] = r.icmp.type === ICMP_TYPE_ANY ? ICMP_TYPE_ANY : r.icmp.type;
      f.icmpCodeLo[k] = r.icmp.codeLo;
      f.icmpCodeHi[k] = r.icmp.codeHi;
    }
    f.mpStart[k] = mpLo.length;
    if (r.multiport) {
      f.mpMode[k] = r.multiport.neg ? MODE_NEG : MODE_POS;
      f.mpDir[k] = r.multiport.dir === 'sports' ? MP_SPORTS : r.multiport.dir === 'dports' ? MP_DPORTS : MP_PORTS;
      for (let j = 0; j < r.multiport.lo.length; j++) {
        mpLo.push(r.multiport.lo[j]);
        mpHi.push(r.multiport.hi[j]);
      }
    }
    if (r.ctstate) {
      f.ctMode[k] = r.ctstate.neg ? MODE_NEG : MODE_POS;
      f.ctStates[k] = r.ctstate.states;
    }
    f.target[k] = TARGETS[r.target];
    if (r.target === 'JUMP') f.jump[k] = Number(jumpName[k]);
    if (r.target === 'REJECT') f.reject[k] = rejectCode(r.rejectWith);
  });
  f.mpStart[R] = mpLo.length;
  f.mpLo = Uint16Array.from(mpLo);
  f.mpHi = Uint16Array.from(mpHi);
  return f;
}

/** True when some NAT instance has a non-empty filter table. */
export function filterAny(f: CompiledFilter): boolean {
  for (let k = 0; k < f.slotOn.length; k++) if (f.slotOn[k] !== 0) return true;
  return false;
}

/** Counter cells (packets, bytes) of a compiled filter: every rule and every chain's policy. */
export function filterCounterCount(f: CompiledFilter): number {
  return f.nRules + f.nChains;
}

/** The CTSTATE_* bit of a conntrack classification (the model's ctstateBit). */
export function ctstateOf(ctCls: number): number {
  if (ctCls === CT_NEW) return CTSTATE_NEW;
  if (ctCls === CT_ESTABLISHED) return CTSTATE_ESTABLISHED;
  if (ctCls === CT_RELATED) return CTSTATE_RELATED;
  return CTSTATE_INVALID;
}

/** One worker's filter walker over the frame being walked (SlowState). */
export class FilterTable {
  /** REJECT: the code of the deciding rule (REJECT_TCP_RESET for a reset). */
  rejectWith = 0;
  /**
   * What the last run counted (its first FILTER_FAST_CELLS cells, and how many), and the TCP flag
   * bits its --tcp-flags tests read (the OR of their masks): replayable() says whether the walk is
   * the same for every fast-path packet of the session direction (hop-walk.ts recordPath,
   * Dataplane.recordFast).
   */
  readonly cells = new Int32Array(FILTER_FAST_CELLS);
  nCells = 0;
  flagsRead = 0;
  private readonly stackCh = new Int32Array(FILTER_MAX_DEPTH);
  private readonly stackK = new Int32Array(FILTER_MAX_DEPTH);
  private readonly base: number;

  constructor(
    readonly f: CompiledFilter,
    private readonly st: SlowState,
    private readonly counters: Float64Array,
    worker: number,
  ) {
    this.base = worker * filterCounterCount(f) * 2;
  }

  /**
   * The last run, an ESTABLISHED packet's accepted walk, is the walk of every fast-path packet of
   * its session direction, so a composed path may replay its counters (hop-walk.ts filterHook):
   * it counted at most FILTER_FAST_CELLS cells, and its --tcp-flags tests (if any) read only the
   * flags every fast-path packet has alike (FAST_FIXED_FLAGS) and found them as a fast-path
   * packet has them. Every other test the walk can make reads what is fixed for an established,
   * unfragmented, option-free TCP/UDP session direction: addresses and ports (the tuple at the
   * hook), protocol, the hook's devices, the conntrack state (ESTABLISHED), header lengths.
   */
  replayable(): boolean {
    if (this.nCells > FILTER_FAST_CELLS) return false;
    const fl = this.flagsRead;
    if (fl === 0) return true;
    if ((fl & ~FAST_FIXED_FLAGS) !== 0) return false;
    const st = this.st;
    return (st.buf[st.fo + st.pv.ihl + 13] & FAST_FIXED_FLAGS) === FAST_FIXED_VALUE;
  }

  /** True when NAT slot `slot` has a filter table (the walk skips the hooks otherwise). */
  has(slot: number): boolean {
    return this.f.slotOn[slot] !== 0;
  }

  private count(cell: number, bytes: number): void {
    const o = this.base + cell * 2;
    this.counters[o]++;
    this.counters[o + 1] += bytes;
    if (this.nCells < FILTER_FAST_CELLS) this.cells[this.nCells] = cell;
    this.nCells++;
  }

  /** Built-in chain `hook` of NAT slot `slot` on the current frame, conntrack state bit `ctstate`: FV_*. */
  run(slot: number, hook: number, ctstate: number): number {
    const f = this.f;
    const start = f.builtin[slot * HOOKS + hook];
    this.nCells = 0;
    this.flagsRead = 0;
    if (start < 0) return FV_ACCEPT;
    const bytes = this.st.pv.totalLen;
    const policyCell = f.nRules + start;
    let ch = start;
    let k = f.chainStart[ch];
    let end = f.chainEnd[ch];
    let depth = 0;
    for (let steps = 0; steps < FILTER_MAX_STEPS; steps++) {
      if (k < end) {
        const m = this.match(k, hook, ctstate);
        if (m < 0) return FV_HOTDROP;
        if (m === 0) {
          k++;
          continue;
        }
        this.count(k, bytes);
        const t = f.target[k];
        if (t === T_ACCEPT) return FV_ACCEPT;
        if (t === T_DROP) return FV_DROP;
        if (t === T_REJECT) {
          this.rejectWith = f.reject[k];
          return FV_REJECT;
        }
        if (t === T_LOG) {
          k++;
          continue;
        }
        if (t !== T_RETURN) {
          // T_JUMP
          if (depth >= FILTER_MAX_DEPTH) return FV_DROP;
          this.stackCh[depth] = ch;
          this.stackK[depth] = k + 1;
          depth++;
          ch = f.jump[k];
          k = f.chainStart[ch];
          end = f.chainEnd[ch];
          continue;
        }
      }
      // RETURN, or the end of a chain: back to the caller; in a built-in chain, its policy (the
      // underflow rule).
      if (depth === 0) {
        this.count(policyCell, bytes);
        return f.policyDrop[start] !== 0 ? FV_DROP : FV_ACCEPT;
      }
      depth--;
      ch = this.stackCh[depth];
      k = this.stackK[depth];
      end = f.chainEnd[ch];
    }
    return FV_DROP;
  }

  /** 1 match, 0 no match, -1 hotdrop (the model's filterRuleMatches). */
  private match(k: number, hook: number, ctstate: number): number {
    const f = this.f;
    const pv = this.st.pv;
    if (((f.ifOk[k] >>> hook) & 1) === 0) return 0;
    const b = this.st.buf;
    const l4Len = pv.totalLen - pv.ihl;
    const o = this.st.fo + pv.ihl;
    const ip = matchRuleColumnsBeforeFlags(f, k, pv, b, this.st.fo);
    if (ip === RC_FLAGS) {
      // Some flags vary per packet of an established session (replayable).
      this.flagsRead |= f.flMask[k];
      if (!ruleFlagsMatch(f, k, b, o)) return 0;
    } else if (ip !== 1) return ip;
    let mode: number;
    mode = f.icmpMode[k];
    if (mode !== MODE_NONE) {
      if (pv.fragOff !== 0) return 0;
      if (l4Len < ICMP_HDR) return -1;
      const type = f.icmpType[k];
      const hit =
        type === ICMP_TYPE_ANY || (b[o] === type && b[o + 1] >= f.icmpCodeLo[k] && b[o + 1] <= f.icmpCodeHi[k]);
      if (hit !== (mode === MODE_POS)) return 0;
    }
    mode = f.mpMode[k];
    if (mode !== MODE_NONE) {
      if (pv.fragOff !== 0) return 0;
      if (l4Len < PORTS_LEN) return -1;
      const sp = rd16(b, o);
      const dp = rd16(b, o + 2);
      const dir = f.mpDir[k];
      let hit = false;
      for (let j = f.mpStart[k], e = f.mpStart[k + 1]; j < e && !hit; j++) {
        const s = dir !== MP_DPORTS && sp >= f.mpLo[j] && sp <= f.mpHi[j];
        const d = dir !== MP_SPORTS && dp >= f.mpLo[j] && dp <= f.mpHi[j];
        hit = s || d;
      }
      if (hit !== (mode === MODE_POS)) return 0;
    }
    mode = f.ctMode[k];
    if (mode !== MODE_NONE && ((f.ctStates[k] & ctstate) !== 0) !== (mode === MODE_POS)) return 0;
    return 1;
  }
}

/** The filter counters of every NAT instance with a filter table, summed over workers (rule -1: policy). */
export function readFilterCounters(f: CompiledFilter, counters: Float64Array, workers: number): FilterRuleCounter[] {
  const n = filterCounterCount(f);
  const sum = (cell: number, w0: number): number => {
    let v = 0;
    for (let w = 0; w < workers; w++) v += counters[(w * n + cell) * 2 + w0];
    return v;
  };
  const out: FilterRuleCounter[] = [];
  for (let ch = 0; ch < f.nChains; ch++) {
    for (let k = f.chainStart[ch]; k < f.chainEnd[ch]; k++)
      out.push({
        instance: f.chainInst[ch],
        chain: f.chainName[ch],
        rule: k - f.chainStart[ch],
        packets: sum(k, 0),
        bytes: sum(k, 1),
      });
    const p = f.nRules + ch;
    out.push({ instance: f.chainInst[ch], chain: f.chainName[ch], rule: -1, packets: sum(p, 0), bytes: sum(p, 1) });
  }
  return out;
}
