// `natlab conformance` as a command: usage errors exit 2 with a reason, a scenario without a NAT
// instance to probe is bad input (exit 2, one line), the JSON form parses and agrees (exit 0).
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { BUILTIN_SCENARIO_PATH } from '../../src/scenario/index.ts';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    return { code: await main(['conformance', ...args]), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('natlab conformance', () => {
  it('rejects bad usage with exit 2 and a reason', async () => {
    expect(await run('--engines', 'model,quantum')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/unknown engine 'quantum'/),
    });
    expect(await run('--engines', 'model,model')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/'model' given twice/),
    });
    expect(await run('--seed', '-1')).toMatchObject({ code: 2, err: expect.stringMatching(/--seed/) });
    expect(await run('--settle-ms', '0')).toMatchObject({ code: 2, err: expect.stringMatching(/--settle-ms/) });
    expect(await run('extra')).toMatchObject({ code: 2, err: expect.stringMatching(/unexpected argument 'extra'/) });
  });

  it('a scenario with neither a NAT instance nor a NAT gateway to probe: exit 2, one line naming why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-conf-'));
    const f = join(dir, 'plain.yaml');
    const text = readFileSync(BUILTIN_SCENARIO_PATH, 'utf8').replace(
      /\n {4}natInstance:\n {6}bootScript: configure-pat\n {6}vpcCidrFromMetadata: true\n/,
      '\n',
    );
    expect(text).not.toContain('bootScript');
    writeFileSync(f, text);
    const r = await run('--scenario', f, '--engines', 'model');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^natlab conformance: .*plain\.yaml: nothing to probe: conformance needs a NAT instance .* or a public NAT gateway/,
    );
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('--json: the report as JSON, engines agree, exit 0', async () => {
    const r = await run('--json', '--engines', 'model,core');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    // The default is the built-in VPC without its NATSG group: the probes must reach the NAT.
    expect(j.scenario).toBe('vpc-nat-instance-open');
    expect(j.engines).toEqual(['model', 'core']);
    expect(j.differences).toEqual([]);
    expect(j.requirements.find((x: { id: string }) => x.id === '4787-REQ-9').verdict).toBe('fail');
    expect(j.shadowing[0].results.core.status).toBe('exposed');
  });

  it('--scenario vpc-nat-instance: the built-in NATSG group drops the UDP probes at the NAT ENI (sg-deny)', async () => {
    const r = await run('--json', '--engines', 'model', '--scenario', 'vpc-nat-instance');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.scenario).toBe('vpc-nat-instance');
    const req1 = j.requirements.find((x: { id: string }) => x.id === '4787-REQ-1');
    expect(req1.verdict).toBe('fail');
    expect(JSON.stringify(req1)).toMatch(/sg-deny/);
  });
});
