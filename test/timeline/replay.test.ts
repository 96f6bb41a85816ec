// Replay across a scenario timeline (docs/replay.md "Failover report", docs/failover.md): the
// bundled HA scenarios on the docs' capture, model and core on worker threads; the failover report
// says which flows broke and how, and docs/failover.md shows exactly what the code prints.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runReplay } from '../../src/diff/replay/replay.ts';
import { formatFailoverReport } from '../../src/diff/replay/failover.ts';
import { loadScenario } from '../../src/scenario/load.ts';
import { encodePcap } from '../../src/pcap/writer.ts';
import { failoverCaptureRecords } from '../../src/traffic/failover-capture.ts';
import { LINKTYPE_ETHERNET } from '../../src/packet/constants.ts';

const CAPTURE = 'docs/failover/app-75s.pcap';
const dir = mkdtempSync(join(tmpdir(), 'natlab-failover-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The summary indents the failover report by two spaces. */
const indented = (t: string): string =>
  t
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

async function replay(scenario: string) {
  const { report } = await runReplay({
    input: CAPTURE,
    outDir: null,
    scenario: loadScenario(`scenarios/${scenario}.yaml`),
    scenarioHow: 'test',
    engines: ['model', 'core'],
  });
  return report;
}

describe('replay across a scenario timeline', () => {
  it('the docs capture is the generator output, byte for byte', () => {
    expect(Buffer.from(encodePcap(failoverCaptureRecords(), { linkType: LINKTYPE_ETHERNET }))).toEqual(
      readFileSync(CAPTURE),
    );
  });

  it('HA pair with a route swap: blackholed at the stop, new public address after the swap, nothing at the start', async () => {
    const r = await replay('nat-instance-ha-route-swap');
    expect(r.agree).toBe(true);
    const ev = r.failover!.events;
    expect(ev.map((e) => e.event)).toEqual([
      'stopInstance nat-a',
      'replaceRoute private 0.0.0.0/0 → eni:nat-b',
      'startInstance nat-a',
    ]);
    for (const e of ev) expect(e.engines[1]).toEqual({ ...e.engines[0], engine: 'core' });
    const [stop, swap, start] = ev.map((e) => e.engines[0]);
    expect([stop.flows, stop.survived, stop.broken]).toEqual([4, 0, { 'drop: blackhole': 4 }]);
    expect([swap.flows, swap.broken]).toEqual([4, { 'mapping changed': 4 }]);
    expect([start.flows, start.survived]).toEqual([4, 4]);
    const https = stop.examples.find((f) => f.flow.startsWith('tcp 10.0.1.10:40001'))!;
    expect(https).toMatchObject({ mappingBefore: '203.0.113.10:40001', mappingAfter: '203.0.113.11:40001' });
    // Last good before 20 s: the ACK at 18.0302 s and the response at 18.03 s; first good after: 24 s / 24.03 s.
    expect(https.outboundGapS).toBeCloseTo(5.9698, 6);
    expect(https.inboundGapS).toBeCloseTo(6, 6);
    expect(stop.maxOutboundGapS).toBeCloseTo(9.9698, 6); // the SSH session: 15.5 s → 25.5 s
    // docs/failover.md shows what the code prints.
    expect(readFileSync('docs/failover.md', 'utf8')).toContain(indented(formatFailoverReport(r.failover!)));
  });

  it('fck-nat ENI move: blackholed until the move, then the same address picks every flow up again', async () => {
    const r = await replay('fck-nat-ha-eni-move');
    expect(r.agree).toBe(true);
    const [stop, move] = r.failover!.events.map((e) => e.engines[0]);
    expect(stop.broken).toEqual({ 'drop: blackhole': 4 });
    expect(stop.examples.every((f) => f.mappingBefore === undefined)).toBe(true);
    expect([move.flows, move.survived]).toEqual([4, 4]);
    expect(readFileSync('docs/failover.md', 'utf8')).toContain(indented(formatFailoverReport(r.failover!)));
  });
});
