// Issue 15 K2: the ICMP error rate limits of an instance (docs/semantics.md §6 "Rate limits") in
// the model and the core: bursts of TTL-1 packets through the NAT instance go through both
// engines, which must agree exactly, and the counts of errors sent are Linux's (icmp_ratelimit
// per destination with a burst of 6, icmp_ratemask, icmp_msgs_per_sec / icmp_msgs_burst).

import { describe, expect, it } from 'vitest';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { buildUdp, describePacket, parseIpv4Addr as ip } from '../../src/packet/index.ts';
import { DROP_TTL_EXCEEDED } from '../../src/spec/reasons.ts';
import { instancePoint, type Scenario, type Sysctls } from '../../src/spec/scenario.ts';
import { Harness } from './dataplane-harness.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { APP, app } from '../helpers/builtin.ts';

const srv = ip('198.51.100.7');

/**
 * TTL-1 UDP packets at the given ms, packet k from host `hosts[k]` (0: app, j > 0: the j-th extra
 * host beside app, 10.0.1.(19 + j)); which of them got their time exceeded back.
 */
function burst(times: number[], sysctls: Partial<Sysctls> = {}, hosts?: number[]): boolean[] {
  const s: Scenario = loadOpenScenario();
  const nat = s.instances.find((i) => i.name === 'nat');
  const appInst = s.instances.find((i) => i.name === 'app');
  if (!nat || !appInst) throw new Error('no nat/app');
  Object.assign(nat.sysctls, sysctls);
  const first = s.instances.length;
  const nExtra = Math.max(0, ...(hosts ?? [0]));
  for (let j = 1; j <= nExtra; j++)
    s.instances.push({ ...structuredClone(appInst), name: `h${j}`, privateIp: ip(`10.0.1.${19 + j}`) });
  const point = (h: number): number => (h === 0 ? APP : instancePoint(first + h - 1));
  const addr = (h: number): number => (h === 0 ? app : ip(`10.0.1.${19 + h}`));
  const h = new Harness(s);
  const m = createModelEngine(s, { seed: 1 });
  return times.map((t, k) => {
    const host = hosts ? hosts[k] : 0;
    const frame = buildUdp({
      src: addr(host),
      dst: srv,
      sport: 40000 + k,
      dport: 53,
      ttl: 1,
      payload: new Uint8Array(4),
    });
    const a = h.send(frame, point(host), t);
    const b = m.processOne({ timeUs: t * 1000, ingress: point(host), frame });
    const outs = (r: typeof a) => r.outputs.map((o) => `${o.egress} ${describePacket(o.frame, 0, o.frame.length)}`);
    expect([a.fate, a.reason, outs(a)], `packet ${k} at ${t} ms`).toEqual([b.fate, b.reason, outs(b)]);
    expect(a.reason).toBe(DROP_TTL_EXCEEDED);
    expect(a.outputs.every((o) => o.egress === point(host))).toBe(true);
    return a.outputs.length === 1;
  });
}

const count = (x: boolean[]): number => x.filter(Boolean).length;

describe('ICMP error rate limits (model and core agree)', () => {
  it('a burst to one destination: 6 errors (XRLIM_BURST_FACTOR), then one per icmp_ratelimit', () => {
    const r = burst([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(r).toEqual([true, true, true, true, true, true, false, false, false, false]);
    // 1 s later one token is back, 2 s later two.
    const s = burst([0, 1, 2, 3, 4, 5, 6, 1006, 1007, 3006, 3007, 3008]);
    expect(s).toEqual([true, true, true, true, true, true, false, true, false, true, true, false]);
  });

  it('icmp_ratelimit=0 sends every error; a ratemask without time exceeded too', () => {
    expect(
      count(
        burst(
          Array.from({ length: 20 }, (_, k) => k),
          { icmpRatelimit: 0 },
        ),
      ),
    ).toBe(20);
    expect(
      count(
        burst(
          Array.from({ length: 20 }, (_, k) => k),
          { icmpRatemask: 0x0008 },
        ),
      ),
    ).toBe(20);
  });

  it('icmp_ratelimit=100: six at once, then one per 100 ms', () => {
    const r = burst([0, 0, 0, 0, 0, 0, 0, 99, 100, 150, 200], { icmpRatelimit: 100 });
    expect(r).toEqual([true, true, true, true, true, true, false, false, true, false, true]);
  });

  it('the per-destination bucket is per source of the offending packet', () => {
    const hosts = [0, 1, 2].flatMap((h) => Array.from({ length: 7 }, () => h));
    const r = burst(
      hosts.map((_, k) => k),
      {},
      hosts,
    );
    expect(count(r)).toBe(18);
  });

  it('the instance-wide credit: icmp_msgs_burst 3 and 1 message per second for many destinations', () => {
    const hosts = Array.from({ length: 10 }, (_, k) => k);
    // credit 0 → refill by min(delta, 1 s) → min(0 + 1, 3) = 1; each sent error consumes 1.
    const r = burst(
      hosts.map((_, k) => k * 10),
      { icmpMsgsPerSec: 1, icmpMsgsBurst: 3 },
      hosts,
    );
    expect(r).toEqual([true, false, false, false, false, false, false, false, false, false]);
    const t = burst([0, 500, 1000, 1999, 2000], { icmpMsgsPerSec: 1, icmpMsgsBurst: 3 }, hosts.slice(0, 5));
    expect(t).toEqual([true, false, true, false, true]);
    // 1000 per second, burst 50: 50 errors to 50 destinations at once, then 20 ms later 20 more.
    const many = Array.from({ length: 80 }, (_, k) => k);
    const u = burst(
      many.map((_, k) => (k < 60 ? 0 : 20)),
      {},
      many,
    );
    expect(count(u.slice(0, 60))).toBe(50);
    expect(count(u.slice(60))).toBe(20);
  });
});
