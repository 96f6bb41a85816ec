// How many packets per second this machine's kernel engine sustains (`natlab kernel --check`):
// vpc-nat-instance-open (or any scenario with an instance behind an unfiltered NAT instance), established UDP flows,
// request and reply alternating, back to back ('compress': no waiting for timestamps).
import type { InputPacket } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../spec/scenario.ts';
import { buildUdp } from '../packet/index.ts';
import { FATE_DELIVERED } from '../spec/reasons.ts';
import { createKernelEngine, type KernelInjection } from './engine.ts';

export interface KernelSpeed {
  injection: KernelInjection;
  packets: number;
  delivered: number;
  seconds: number;
  packetsPerSecond: number;
}

/** Flows from the first instance that is not a NAT instance, through the first NAT instance. */
export function speedWorkload(s: Scenario, packets: number, flows = 64): InputPacket[] {
  const hostIdx = s.instances.findIndex((i) => i.nat === null);
  const natIdx = s.instances.findIndex((i) => i.nat !== null && i.elasticIp !== null);
  if (hostIdx < 0 || natIdx < 0)
    throw new Error('speed workload: the scenario needs a plain host and a NAT instance with an Elastic IP');
  const host = s.instances[hostIdx].privateIp;
  const eip = s.instances[natIdx].elasticIp!;
  const server = s.internetHosts.length ? s.internetHosts[0].addr : 0xc6336407;
  const out: InputPacket[] = [];
  const payload = new Uint8Array(22);
  for (let k = 0; k < packets; k++) {
    const f = k % flows;
    const t = k;
    if (k < flows || k % 2 === 0)
      out.push({
        timeUs: t,
        ingress: instancePoint(hostIdx),
        frame: buildUdp({ src: host, dst: server, sport: 20000 + f, dport: 53, payload }),
      });
    else
      out.push({
        timeUs: t,
        ingress: POINT_INTERNET,
        frame: buildUdp({ src: server, dst: eip, sport: 53, dport: 20000 + f, payload }),
      });
  }
  return out;
}

export async function measureKernelSpeed(
  s: Scenario,
  packets: number,
  injection: KernelInjection,
): Promise<KernelSpeed> {
  const inputs = speedWorkload(s, packets);
  const e = await createKernelEngine(s, { timeMode: 'compress', injection });
  try {
    const t0 = performance.now();
    const r = await e.process(inputs);
    const sec = (performance.now() - t0) / 1000;
    return {
      injection: e.injection,
      packets,
      delivered: r.filter((x) => x.fate === FATE_DELIVERED).length,
      seconds: sec,
      packetsPerSecond: Math.round(packets / sec),
    };
  } finally {
    await e.close();
  }
}
