import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { command } from '../../src/cli/cmd-scenario.ts';
import { UsageError } from '../../src/cli/args.ts';
import { InputError } from '../../src/spec/errors.ts';
import { parseScenario, compileScenarioObject } from '../../src/scenario/load.ts';
import { loadBuiltinScenario } from '../../src/scenario/builtin.ts';
import { baseObject } from './helpers.ts';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    // As src/cli/main.ts dispatches (tested here without loading every other command module).
    const [name, ...rest] = argv;
    expect(name).toBe('scenario');
    if (rest.includes('--help')) {
      out += command.usage;
      return { code: 0, out, err };
    }
    try {
      return { code: await command.run(rest), out, err };
    } catch (x) {
      if (x instanceof UsageError || x instanceof InputError) return { code: 2, out, err: err + x.message };
      throw x;
    }
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('natlab scenario', () => {
  const dir = mkdtempSync(join(tmpdir(), 'natlab-cli-scn-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, stringify(baseObject()));
  const badObj = baseObject();
  badObj.instances.app.privateIp = '10.0.1.1';
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, stringify(badObj));

  it('check: prints a summary with subnets, route tables, instances and nat rules', async () => {
    const r = await run('scenario', 'check', good);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${good}: ok`);
    expect(r.out).toMatch(/public\s+10\.0\.0\.0\/24\s+route table public/);
    expect(r.out).toContain('private: 10.0.0.0/16 -> local, 0.0.0.0/0 -> eni:nat');
    expect(r.out).toContain('nat: -A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE');
  });

  it('check: exit 2 with the precise error, still checking the other files', async () => {
    const r = await run('scenario', 'check', bad, good);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      new RegExp(`${bad.replace(/[.]/g, '\\.')}:\\d+: instances\\.app\\.privateIp: 10\\.0\\.1\\.1 is reserved by AWS`),
    );
    expect(r.out).toContain(`${good}: ok`);
  });

  it('check --json lists results and errors', async () => {
    const r = await run('scenario', 'check', '--json', good, bad);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.out);
    expect(j[0]).toMatchObject({ file: good, ok: true });
    expect(compileScenarioObject(j[0].scenario, 'j')).toEqual({ ...parseScenario(stringify(baseObject()), 'j') });
    expect(j[1].ok).toBe(false);
    expect(j[1].errors[0]).toMatchObject({ where: 'instances.app.privateIp' });
    expect(j[1].errors[0].line).toBeGreaterThan(0);
  });

  it('show: the built-in by default, as YAML that loads back to the same scenario', async () => {
    const r = await run('scenario', 'show');
    expect(r.code).toBe(0);
    const s = loadBuiltinScenario();
    expect({ ...parseScenario(r.out, 'x.yaml'), source: s.source }).toEqual(s);
    const j = await run('scenario', 'show', '--json', 'vpc-nat-instance');
    expect({ ...compileScenarioObject(JSON.parse(j.out), 'x.json'), source: s.source }).toEqual(s);
  });

  it('usage errors exit 2, --help exits 0', async () => {
    expect((await run('scenario')).code).toBe(2);
    expect((await run('scenario', 'frobnicate')).code).toBe(2);
    expect((await run('scenario', 'show', good, bad)).code).toBe(2);
    expect((await run('scenario', 'show', join(dir, 'missing.yaml'))).err).toContain('no such file');
    const h = await run('scenario', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toContain('natlab scenario check');
  });
});

describe('scenario warnings', () => {
  it('none for the built-in; the classic NAT-instance mistakes for a broken copy', async () => {
    const { scenarioWarnings } = await import('../../src/scenario/describe.ts');
    expect(scenarioWarnings(loadBuiltinScenario())).toEqual([]);
    const o = baseObject();
    o.instances.nat.sourceDestCheck = true;
    o.instances.nat.sysctls = { 'net.ipv4.ip_forward': 0 };
    delete o.instances.nat.elasticIp;
    o.instances.app.elasticIp = '203.0.113.99';
    const w = scenarioWarnings(parseScenario(stringify(o), 'w.yaml'));
    expect(w).toHaveLength(4);
    expect(w[0]).toMatch(/^instance nat: .*source\/dest check is on/);
    expect(w[1]).toMatch(/^instance nat: .*ip_forward is 0/);
    expect(w[2]).toMatch(/^instance nat: translates traffic .* no Elastic IP/);
    expect(w[3]).toMatch(/^instance app: has Elastic IP 203\.0\.113\.99 .* no route to the igw/);
  });
});
