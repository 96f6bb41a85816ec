// Timeline events on the engines (Engine.applyTimelineEvent, docs/semantics.md §14): a route swap
// to the standby NAT instance, stop/start (conntrack lost, routes to the ENI blackholed), an ENI
// moved to the standby (empty conntrack, same address), an Elastic IP moved. The model and the core
// (inline and on worker threads) must say the same for every packet.
import { afterEach, describe, expect, it } from 'vitest';
import { makeEngine, type EngineName } from '../../src/diff/engines.ts';
import { parseObject } from '../scenario/helpers.ts';
import { haObject } from './helpers.ts';
import { buildTcp, parseIpv4Addr as ip, F_ACK, F_SYN } from '../../src/packet/index.ts';
import { FATE_DELIVERED, reasonName } from '../../src/spec/reasons.ts';
import type { Engine, PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET, type Scenario } from '../../src/spec/scenario.ts';
import { formatIpv4 } from '../../src/packet/addr.ts';
import { parseIpv4, PacketView } from '../../src/packet/parse.ts';

const APP = 2; // instances nat, app, natb, spare → point of app
const out = (flags: number, seq: number) =>
  buildTcp({ src: ip('10.0.1.10'), sport: 40000, dst: ip('198.51.100.7'), dport: 443, flags, seq, ack: 0 });
const back = (eip: string, flags: number) =>
  buildTcp({ src: ip('198.51.100.7'), sport: 443, dst: ip(eip), dport: 40000, flags, seq: 500, ack: 2 });

function outcome(r: PacketResult): string {
  if (r.fate !== FATE_DELIVERED) return reasonName(r.reason);
  const pv = new PacketView();
  const o = r.outputs[r.outputs.length - 1];
  parseIpv4(o.frame, 0, o.frame.length, pv);
  return `${o.egress === POINT_INTERNET ? 'internet' : `point ${o.egress}`} ${formatIpv4(pv.src)}:${pv.sport}`;
}

const engines: Array<[string, EngineName, Record<string, unknown>]> = [
  ['model', 'model', {}],
  ['core inline', 'core', { inline: true }],
  ['core on a worker thread', 'core', {}],
];

/** Runs: SYN out, SYN-ACK back, then each event followed by [outbound ACK, inbound ACK to eip]. */
async function run(e: Engine, s: Scenario, eips: string[]): Promise<string[]> {
  const seen: string[] = [];
  let t = 1_000_000;
  const one = async (frame: Uint8Array, ingress: number): Promise<void> => {
    const [r] = await e.process([{ timeUs: t, ingress, frame }]);
    seen.push(outcome(r));
    t += 1000;
  };
  await one(out(F_SYN, 1), APP);
  await one(back('203.0.113.10', F_SYN | F_ACK), POINT_INTERNET);
  for (const [k, ev] of (s.timeline ?? []).entries()) {
    t += 1_000_000;
    await e.applyTimelineEvent!(ev, t);
    await one(out(F_ACK, 2), APP);
    await one(back(eips[k], F_ACK), POINT_INTERNET);
  }
  return seen;
}

describe('timeline events on the engines', () => {
  let open: Engine | null = null;
  afterEach(async () => {
    await open?.close();
    open = null;
  });

  const cases: Array<[string, unknown[], string[], string[]]> = [
    [
      'route swap: the flow leaves by the standby with its address; replies to the old address still pass the old instance',
      [
        { at: 1, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:natb' } },
        { at: 2, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:nat' } },
      ],
      ['203.0.113.10', '203.0.113.11'],
      [
        'internet 203.0.113.10:40000',
        'point 2 198.51.100.7:443',
        'internet 203.0.113.11:40000',
        'point 2 198.51.100.7:443',
        'internet 203.0.113.10:40000',
        'point 2 198.51.100.7:443',
      ],
    ],
    [
      'stop: blackhole and a stopped ENI; start: the conntrack is empty (the reply meets the instance itself)',
      [
        { at: 1, stopInstance: 'nat' },
        { at: 2, startInstance: 'nat' },
      ],
      ['203.0.113.10', '203.0.113.10'],
      [
        'internet 203.0.113.10:40000',
        'point 2 198.51.100.7:443',
        'blackhole',
        'instance-stopped',
        'internet 203.0.113.10:40000',
        'point 2 198.51.100.7:443',
      ],
    ],
    [
      'ENI moved to the standby: same address, empty conntrack; Elastic IP moved: no public address left',
      [
        { at: 1, moveEni: { from: 'nat', to: 'natb' } },
        { at: 2, moveElasticIp: { from: 'nat', to: 'spare' } },
      ],
      ['203.0.113.10', '203.0.113.10'],
      [
        'internet 203.0.113.10:40000',
        'point 2 198.51.100.7:443',
        'internet 203.0.113.10:40000',
        'point 2 198.51.100.7:443',
        'igw-no-public-ip',
        'point 4 198.51.100.7:443',
      ],
    ],
  ];

  for (const [label, name, extra] of engines)
    for (const [what, timeline, eips, want] of cases)
      it(`${label}: ${what}`, async () => {
        const s = parseObject(haObject(timeline));
        open = await makeEngine(name, s, { seed: 7, ...extra });
        expect(await run(open, s, eips)).toEqual(want);
      });

  it('stop empties the conntrack: an inbound reply after start meets the instance itself, which tracks it as its own (model and core agree)', async () => {
    const s = parseObject(
      haObject([
        { at: 1, stopInstance: 'nat' },
        { at: 2, startInstance: 'nat' },
      ]),
    );
    const seen: string[][] = [];
    for (const [, name, extra] of engines) {
      const e = await makeEngine(name, s, { seed: 7, ...extra });
      try {
        let t = 1_000_000;
        const r: string[] = [];
        for (const [f, ing] of [
          [out(F_SYN, 1), APP],
          [back('203.0.113.10', F_SYN | F_ACK), POINT_INTERNET],
        ] as const) {
          r.push(outcome((await e.process([{ timeUs: (t += 1000), ingress: ing, frame: f }]))[0]));
        }
        for (const ev of s.timeline!) await e.applyTimelineEvent!(ev, (t += 1_000_000));
        r.push(
          outcome(
            (
              await e.process([{ timeUs: (t += 1000), ingress: POINT_INTERNET, frame: back('203.0.113.10', F_ACK) }])
            )[0],
          ),
        );
        r.push(String((await e.conntrack()).length));
        seen.push(r);
      } finally {
        await e.close();
      }
    }
    expect(seen[0]).toEqual([
      'internet 203.0.113.10:40000',
      'point 2 198.51.100.7:443',
      'point 1 198.51.100.7:443',
      '1',
    ]);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[2]).toEqual(seen[0]);
  });
});
