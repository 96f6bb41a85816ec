// Issue 15 K4: TCP window tracking (tcp_in_window, docs/semantics.md §4) in the model and the core:
// every packet of each sequence goes through both engines, which must agree exactly (fate, reason,
// ct class, output frames, the table with its timeouts), and the outcomes are the kernel's.

import { beforeEach, describe, expect, it } from 'vitest';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { buildTcp, describePacket, parseIpv4Addr as ip, F_ACK, F_FIN, F_SYN } from '../../src/packet/index.ts';
import { CT_ESTABLISHED, CT_INVALID, DROP_IGW_NO_PUBLIC_IP } from '../../src/spec/reasons.ts';
import { POINT_INTERNET, type Scenario } from '../../src/spec/scenario.ts';
import { Harness } from './dataplane-harness.ts';
import type { CoreLayout } from '../../src/core/layout.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { APP, app, eip } from '../helpers/builtin.ts';

const srv = ip('198.51.100.7');

function outs(r: { outputs: { egress: number; frame: Uint8Array }[] }): string[] {
  return r.outputs.map((o) => `${o.egress} ${describePacket(o.frame, 0, o.frame.length)}`);
}

interface Seg {
  from: 'app' | 'srv';
  flags: number;
  seq: number;
  ack?: number;
  win?: number;
  len?: number;
  options?: number[];
}

/** The core's table layout under test (both run every case). */
let layout: CoreLayout = 'record';

/** Sends `segs` (1 ms apart) through core and model; returns per-packet results and both tables. */
function run(segs: Seg[], edit?: (s: Scenario) => void) {
  const s = loadOpenScenario();
  edit?.(s);
  const h = new Harness(s, { layout });
  const m = createModelEngine(s, { seed: 1 });
  const res: { ct: number; reason: number; outs: string[] }[] = [];
  segs.forEach((g, k) => {
    const frame = buildTcp({
      src: g.from === 'app' ? app : srv,
      dst: g.from === 'app' ? srv : eip,
      sport: g.from === 'app' ? 4100 : 443,
      dport: g.from === 'app' ? 443 : 4100,
      flags: g.flags,
      seq: g.seq,
      ack: g.ack ?? 0,
      window: g.win ?? 65535,
      options: g.options ? new Uint8Array(g.options) : undefined,
      payload: new Uint8Array(g.len ?? 0),
    });
    const at = g.from === 'app' ? APP : POINT_INTERNET;
    const a = h.send(frame, at, k);
    const b = m.processOne({ timeUs: k * 1000, ingress: at, frame });
    expect([a.fate, a.reason, a.ct, outs(a)], `packet ${k}`).toEqual([b.fate, b.reason, b.ct, outs(b)]);
    res.push({ ct: a.ct, reason: a.reason, outs: outs(a) });
  });
  const now = segs.length - 1;
  const core = h.conntrack(now).map((e) => [e.state, e.timeout]);
  const model = m.conntrackSync().map((e) => [e.state, e.timeout]);
  expect(core).toEqual(model);
  return { res, table: core };
}

const HANDSHAKE: Seg[] = [
  { from: 'app', flags: F_SYN, seq: 1000 },
  { from: 'srv', flags: F_SYN | F_ACK, seq: 5000, ack: 1001 },
  { from: 'app', flags: F_ACK, seq: 1001, ack: 5001 },
];

describe.each(['record', 'line'] as const)('TCP window tracking (issue 15 K4), model and core (%s layout)', (l) => {
  beforeEach(() => {
    layout = l;
  });
  it('data far beyond the receiver window is INVALID: not NATed; the state stays', () => {
    const { res, table } = run([...HANDSHAKE, { from: 'srv', flags: F_ACK, seq: 5001 + 200000, ack: 1001, len: 10 }]);
    expect(res[3].ct).toBe(CT_INVALID);
    expect(res[3].outs.join()).not.toContain(':4100 >'); // not translated back to the app
    expect(table[0][0]).toBe('ESTABLISHED');
  });

  it('an ACK of data never sent is INVALID: it leaves with its private source and dies at the IGW', () => {
    const { res } = run([...HANDSHAKE, { from: 'app', flags: F_ACK, seq: 1001, ack: 5001 + 1000 }]);
    expect(res[3].ct).toBe(CT_INVALID);
    expect(res[3].reason).toBe(DROP_IGW_NO_PUBLIC_IP);
  });

  it('nf_conntrack_tcp_be_liberal=1 accepts (and NATs) both', () => {
    const liberal = (s: Scenario) => {
      s.conntrack.tcpBeLiberal = true;
    };
    const a = run([...HANDSHAKE, { from: 'app', flags: F_ACK, seq: 1001, ack: 5001 + 1000 }], liberal);
    expect(a.res[3].ct).toBe(CT_ESTABLISHED);
    expect(a.res[3].outs).toHaveLength(1);
    const b = run([...HANDSHAKE, { from: 'srv', flags: F_ACK, seq: 5001 + 200000, ack: 1001, len: 10 }], liberal);
    expect(b.res[3].ct).toBe(CT_ESTABLISHED);
  });

  it('already-acknowledged data retransmitted is ignored: NATed, timer unchanged', () => {
    const small: Seg[] = [
      { from: 'app', flags: F_SYN, seq: 1000 },
      { from: 'srv', flags: F_SYN | F_ACK, seq: 5000, ack: 1001, win: 1000 },
      { from: 'app', flags: F_ACK, seq: 1001, ack: 5001 },
      { from: 'app', flags: F_ACK, seq: 1001, ack: 5001, len: 1000 },
      { from: 'srv', flags: F_ACK, seq: 5001, ack: 2001, win: 1000 },
      { from: 'app', flags: F_ACK, seq: 2001, ack: 5001, len: 1000 },
      { from: 'srv', flags: F_ACK, seq: 5001, ack: 3001, win: 1000 },
      { from: 'app', flags: F_ACK, seq: 3001, ack: 5001, len: 1000 },
      { from: 'srv', flags: F_ACK, seq: 5001, ack: 4001, win: 1000 },
    ];
    const { res, table } = run([...small, { from: 'app', flags: F_ACK, seq: 1001, ack: 5001, len: 1000 }]);
    expect(res[9].ct).toBe(CT_ESTABLISHED);
    expect(res[9].outs).toHaveLength(1);
    // Not refreshed by the ignored copy: the last in-window packet's timeout, 1 ms older.
    expect(table[0]).toEqual(['ESTABLISHED', 431999]);
  });

  it('unacknowledged data caps the timeout; the fourth identical retransmission caps it at max_retrans', () => {
    const edit = (s: Scenario) => {
      s.conntrack.timeouts.tcpUnacknowledged = 250;
      s.conntrack.timeouts.tcpMaxRetrans = 200;
    };
    const data: Seg = { from: 'app', flags: F_ACK, seq: 1001, ack: 5001, len: 100 };
    expect(run([...HANDSHAKE, data], edit).table[0]).toEqual(['ESTABLISHED', 250]);
    expect(run([...HANDSHAKE, data, data, data], edit).table[0]).toEqual(['ESTABLISHED', 250]);
    expect(run([...HANDSHAKE, data, data, data, data], edit).table[0]).toEqual(['ESTABLISHED', 200]);
    expect(
      run([...HANDSHAKE, data, data, data, data], (s) => {
        edit(s);
        s.conntrack.tcpMaxRetrans = 5;
      }).table[0],
    ).toEqual(['ESTABLISHED', 250]);
    // Acknowledged: back to the state's timeout.
    const acked = run([...HANDSHAKE, data, { from: 'srv', flags: F_ACK, seq: 5001, ack: 1101 }], edit);
    expect(acked.table[0]).toEqual(['ESTABLISHED', 432000]);
  });

  it('window scaling counts only when both SYNs carry it', () => {
    const ws = [1, 3, 3, 7]; // NOP, window scale 7
    const scaled = (synAckOpts: number[] | undefined): Seg[] => [
      { from: 'app', flags: F_SYN, seq: 1000, win: 512, options: ws },
      { from: 'srv', flags: F_SYN | F_ACK, seq: 5000, ack: 1001, win: 512, options: synAckOpts },
      { from: 'app', flags: F_ACK, seq: 1001, ack: 5001, win: 512 },
      { from: 'srv', flags: F_ACK, seq: 5001 + 60000, ack: 1001, win: 512, len: 100 },
    ];
    expect(run(scaled(ws)).res[3].ct).toBe(CT_ESTABLISHED); // 512 << 7 = 65536 bytes of window
    expect(run(scaled(undefined)).res[3].ct).toBe(CT_INVALID); // unscaled: 512 bytes
  });

  it('an out-of-window FIN answering the other side’s FIN lowers an ASSURED entry’s timeout', () => {
    const segs: Seg[] = [
      ...HANDSHAKE,
      { from: 'app', flags: F_FIN | F_ACK, seq: 1001, ack: 5001 },
      { from: 'srv', flags: F_FIN | F_ACK, seq: 5001 + 200000, ack: 1002 },
    ];
    const { res, table } = run(segs, (s) => {
      s.conntrack.timeouts.tcpFinWait = 600;
    });
    expect(res[4].ct).toBe(CT_INVALID);
    expect(table[0]).toEqual(['FIN_WAIT', 299]); // nf_tcp_handle_invalid: lowered to tcpUnacknowledged (1 ms ago)
    // Less than 120 s left (the default FIN_WAIT timeout): unchanged.
    expect(run(segs).table[0]).toEqual(['FIN_WAIT', 119]);
  });
});
