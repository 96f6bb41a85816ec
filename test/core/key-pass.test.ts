// The fast path's key pass (Dataplane.processBatch with more live sessions than fit the cache,
// docs/core.md "the packet path"): each 16-packet group's ingress decisions, hashes and probe
// starts are made before any of its packets runs, and the fast path starts from them. Exact only if
// nothing an earlier packet of the group does can make them wrong — so: the model and the inline
// core must agree on every packet with a table well above that size, in both layouts, across the
// timeline events that rebuild the ingress decisions (route swap, ENI move, Elastic IP move), with
// new flows whose first two packets sit side by side in one group (the second must find the
// session the first created, never take the key pass's "new" for granted), TCP ACKs of
// established connections (the fast path's window step) and packets no NAT slot is reached for.
import { afterEach, describe, expect, it } from 'vitest';
import { makeEngine } from '../../src/diff/engines.ts';
import { parseObject } from '../scenario/helpers.ts';
import { haObject } from '../timeline/helpers.ts';
import { buildTcp, buildUdp, parseIpv4Addr as ip, F_ACK, F_SYN } from '../../src/packet/index.ts';
import type { ConntrackEntry, Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import type { Dataplane } from '../../src/core/dataplane.ts';

const APP = 2; // instances nat, app, natb, spare → point of app
const APP_IP = ip('10.0.1.10');
/** Established UDP streams: above the 4096 live sessions from which the key pass runs. */
const FLOWS = 5000;
const TCP_FLOWS = 40;
const HOT = 600;
const payload = new Uint8Array(18);
const remote = (f: number): number => (ip('198.51.100.1') + (f % 250)) >>> 0;
const sportOf = (f: number): number => 1024 + f;

/** mulberry32 */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const out = (f: number): Uint8Array => buildUdp({ src: APP_IP, dst: remote(f), sport: sportOf(f), dport: 53, payload });
const back = (f: number, eip: number): Uint8Array =>
  buildUdp({ src: remote(f), dst: eip, sport: 53, dport: sportOf(f), payload });

/** Streams set up (orig, reply, orig after 2.5 s: ASSURED), and TCP connections handshaken. */
function setup(t0: number, eip: number): InputPacket[] {
  const p: InputPacket[] = [];
  for (const [phase, dt] of [
    [0, 0],
    [1, 1000],
    [0, 2_500_000],
  ] as const)
    for (let f = 0; f < FLOWS; f++)
      p.push({
        timeUs: t0 + dt,
        ingress: phase === 0 ? APP : POINT_INTERNET,
        frame: phase === 0 ? out(f) : back(f, eip),
      });
  const t = t0 + 2_600_000;
  for (let c = 0; c < TCP_FLOWS; c++) {
    const sport = 30000 + c;
    const dst = remote(c);
    p.push({
      timeUs: t,
      ingress: APP,
      frame: buildTcp({ src: APP_IP, dst, sport, dport: 443, flags: F_SYN, seq: 1000, ack: 0 }),
    });
    p.push({
      timeUs: t,
      ingress: POINT_INTERNET,
      frame: buildTcp({ src: dst, dst: eip, sport: 443, dport: sport, flags: F_SYN | F_ACK, seq: 5000, ack: 1001 }),
    });
    p.push({
      timeUs: t,
      ingress: APP,
      frame: buildTcp({ src: APP_IP, dst, sport, dport: 443, flags: F_ACK, seq: 1001, ack: 5001 }),
    });
  }
  return p;
}

/**
 * A mixed round: random established streams in both directions (replies to `eip`), TCP ACKs
 * carrying data, a new flow every ~11 packets sent twice in a row, and packets for an address no
 * NAT slot is reached for (an unknown public address).
 */
function round(t: number, eip: number, seed: number, newBase: number, tcpSeq: number[]): InputPacket[] {
  const r = rng(seed);
  const p: InputPacket[] = [];
  let fresh = newBase;
  for (let k = 0; k < 3000; k++) {
    const x = r();
    if (x < 0.09) {
      const frame = out(FLOWS + fresh++);
      p.push({ timeUs: t, ingress: APP, frame }, { timeUs: t, ingress: APP, frame });
    } else if (x < 0.14) {
      const c = Math.floor(r() * TCP_FLOWS);
      const len = 10;
      p.push({
        timeUs: t,
        ingress: APP,
        frame: buildTcp({
          src: APP_IP,
          dst: remote(c),
          sport: 30000 + c,
          dport: 443,
          flags: F_ACK,
          seq: tcpSeq[c],
          ack: 5001,
          payload: new Uint8Array(len),
        }),
      });
      tcpSeq[c] += len;
    } else if (x < 0.15) {
      p.push({ timeUs: t, ingress: POINT_INTERNET, frame: back(Math.floor(r() * FLOWS), ip('203.0.113.99')) });
    } else {
      // Mostly a hot set (several packets per flow and round), now and then any stream.
      const f = Math.floor(r() * (r() < 0.8 ? HOT : FLOWS));
      p.push(
        r() < 0.5
          ? { timeUs: t, ingress: APP, frame: out(f) }
          : { timeUs: t, ingress: POINT_INTERNET, frame: back(f, eip) },
      );
    }
    t += 50;
  }
  return p;
}

function view(rs: PacketResult[]): string[] {
  return rs.map(
    (r) =>
      `${r.fate}/${r.reason}/${r.ct} ${r.outputs.map((o) => `${o.egress}:${Buffer.from(o.frame).toString('hex')}`).join(' ')}`,
  );
}

describe('the fast path key pass (tables above the cache) against the model', () => {
  let open: Engine[] = [];
  afterEach(async () => {
    for (const e of open) await e.close();
    open = [];
  });

  // [what, timeline, the replies' public address per round, the rounds the fast path must carry]
  // (after a route swap the flows meet an instance without their sessions; after the swap back
  // their composed paths are recorded again by their first packets, then forwarded fast)
  const cases: Array<[string, unknown[], number[], number[]]> = [
    [
      'route swap to the standby and back',
      [
        { at: 10, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:natb' } },
        { at: 20, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:nat' } },
      ],
      [ip('203.0.113.10'), ip('203.0.113.11'), ip('203.0.113.10')],
      [0, 2],
    ],
    [
      'ENI moved to the standby, then its Elastic IP moved away',
      [
        { at: 10, moveEni: { from: 'nat', to: 'natb' } },
        { at: 20, moveElasticIp: { from: 'nat', to: 'spare' } },
      ],
      [ip('203.0.113.10'), ip('203.0.113.10'), ip('203.0.113.10')],
      [0],
    ],
  ];

  for (const layout of ['record', 'line'] as const)
    for (const [what, timeline, eips, fastRounds] of cases)
      it(`${layout} layout: ${what}`, async () => {
        const o = haObject(timeline);
        o.conntrack = { max: 4 * FLOWS };
        const s = parseObject(o);
        const model = await makeEngine('model', s, { seed: 7 });
        const core = await makeEngine('core', s, { seed: 7, layout, extra: { inline: true } });
        open = [model, core];
        const tcpSeq = new Array(TCP_FLOWS).fill(1001);
        const tcpSeqModel = [...tcpSeq];
        const t0 = 1_000_000;
        const input = setup(t0, eips[0]);
        expect(view(await core.process(input))).toEqual(view(await model.process(input)));
        expect((await core.conntrack()).length).toBeGreaterThan(4096);
        let fast0 = (core as unknown as { run: { dp: Dataplane } }).run.dp.fastCount;
        let t = t0 + 3_000_000;
        for (let k = 0; k < eips.length; k++) {
          if (k > 0) {
            const ev = s.timeline![k - 1];
            t += 1_000_000;
            await model.applyTimelineEvent!(ev, t);
            await core.applyTimelineEvent!(ev, t);
            t += 1000;
          }
          const a = round(t, eips[k], 11 + k, k * 1000, tcpSeq);
          round(t, eips[k], 11 + k, k * 1000, tcpSeqModel);
          const want = view(await model.process(a));
          const got = view(await core.process(a));
          expect(got.length).toBe(want.length);
          for (let i = 0; i < want.length; i++)
            if (got[i] !== want[i]) expect(`packet ${i}: ${got[i]}`).toBe(`packet ${i}: ${want[i]}`);
          // The round really went through the fast path (most of its packets are established ones).
          const dp = (core as unknown as { run: { dp: Dataplane } }).run.dp;
          if (fastRounds.includes(k)) expect(dp.fastCount - fast0).toBeGreaterThan(500);
          fast0 = dp.fastCount;
          t += 3000 * 50 + 1000;
        }
        const key = (e: ConntrackEntry): string => JSON.stringify(e);
        const sorted = (es: ConntrackEntry[]): string[] => es.map(key).sort();
        expect(sorted(await core.conntrack())).toEqual(sorted(await model.conntrack()));
      }, 120_000);
});
