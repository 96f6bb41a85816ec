// Child process for the close() test (test/core/engine.test.ts): creates a 2-worker core engine,
// processes two packets, closes it and returns from the module. If close() left a thread or a
// handle behind, this process would never exit and the parent's timeout would kill it.
import { buildUdp } from '../../src/packet/build.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { createCoreEngine } from '../../src/core/engine.ts';
import { APP_IP, HOST, NAT_EIP, point } from './engine-traffic.ts';

const s = loadOpenScenario();
const engine = createCoreEngine(s, { workers: 2 });
const res = await engine.process([
  { timeUs: 1000, ingress: point(s, 'app'), frame: buildUdp({ src: APP_IP, dst: HOST, sport: 5000, dport: 53 }) },
  { timeUs: 2000, ingress: POINT_INTERNET, frame: buildUdp({ src: HOST, dst: NAT_EIP, sport: 53, dport: 5000 }) },
]);
await engine.close();
process.stdout.write(`processed ${res.length} packets with ${engine.workers} workers; closed\n`);
