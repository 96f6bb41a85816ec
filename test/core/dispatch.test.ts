// The engine adapter's Dispatcher (src/core/dispatch.ts) takes a shortcut for the common packet
// (unfragmented TCP/UDP, 20-byte header, no DNAT rule at its NAT instance); it must name the same
// worker as dispatchWorker for every frame — the dataplane's port search relies on the rule.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { loadScenario } from '../../src/scenario/load.ts';
import { compileScenario } from '../../src/core/compile.ts';
import { Dispatcher, dispatchWorker } from '../../src/core/dispatch.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function check(s: Scenario, seed: number): number {
  const c = compileScenario(s);
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const addrs = [
    ...s.instances.map((i) => i.privateIp >>> 0),
    ...s.instances.flatMap((i) => (i.elasticIp === null ? [] : [i.elasticIp >>> 0])),
    0xc6336407, // 198.51.100.7
    0xc0000201, // 192.0.2.1
  ];
  const buf = new Uint8Array(64 + 8);
  let fast = 0;
  for (let n = 0; n < 20000; n++) {
    const off = 8 * Math.floor(r() * 2);
    buf.fill(0);
    const ihl = r() < 0.9 ? 5 : pick([4, 6]);
    buf[off] = (r() < 0.97 ? 0x40 : 0x60) | ihl;
    const len = pick([20, 23, 24, 28, 40, 48]);
    const tot = r() < 0.95 ? len : pick([20, 23, 60]);
    buf[off + 2] = tot >>> 8;
    buf[off + 3] = tot & 255;
    if (r() < 0.05) buf[off + 6] = pick([0x20, 0x01, 0x00]);
    if (r() < 0.05) buf[off + 7] = 1;
    buf[off + 9] = pick([6, 6, 17, 17, 1, 47]);
    const src = pick(addrs);
    const dst = pick(addrs);
    for (let k = 0; k < 4; k++) {
      buf[off + 12 + k] = (src >>> (24 - 8 * k)) & 255;
      buf[off + 16 + k] = (dst >>> (24 - 8 * k)) & 255;
    }
    for (let k = 20; k < len; k++) buf[off + k] = Math.floor(r() * 256);
    // Ports the scenarios' rules name (8080, 80, 53) now and then.
    if (r() < 0.3) (buf[off + 22] = 0x1f), (buf[off + 23] = 0x90);
    if (r() < 0.2) (buf[off + 20] = 0), (buf[off + 21] = pick([80, 53]));
    const ingress = Math.floor(r() * (s.instances.length + 1));
    for (const W of [2, 3, 4]) {
      const d = new Dispatcher(c, W);
      expect(d.owner(buf, off, len, ingress), `W=${W} frame ${n}`).toBe(dispatchWorker(c, W, buf, off, len, ingress));
    }
    if (buf[off] === 0x45 && (buf[off + 9] === 6 || buf[off + 9] === 17)) fast++;
  }
  return fast;
}

describe('core: Dispatcher = dispatchWorker', () => {
  it('the built-in scenario (no DNAT): random frames, 2-4 workers', () => {
    expect(check(loadOpenScenario(), 1)).toBeGreaterThan(5000);
  });
  it('port forwarding (DNAT rules: those packets take dispatchWorker itself)', () => {
    expect(check(loadScenario(join('scenarios', 'vpc-nat-instance-port-forward.yaml')), 2)).toBeGreaterThan(5000);
  });
});
