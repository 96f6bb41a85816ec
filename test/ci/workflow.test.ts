// The CI recipes of docs/ci.md run here: their YAML files are the ones docs/ci.md shows, and the
// steps (the same commands, matrix and CI variables filled in, a short fuzzing budget) run through
// scripts/ci-local.ts in a workspace like a fresh checkout; the JUnit files they write validate
// against the schema, the artifacts the workflow uploads exist, and a counterexample gets its
// annotated captures and HTML report.
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  GITHUB_WORKFLOW,
  GITLAB_CI,
  REPO,
  evalCondition,
  githubSteps,
  gitlabSteps,
  makeWorkspace,
  matchFiles,
  runSteps,
  substitute,
  type StepResult,
} from '../../scripts/ci-local.ts';

const XSD = join(import.meta.dirname, '..', 'helpers', 'junit.xsd');
const HAVE_XMLLINT = spawnSync('xmllint', ['--version']).status === 0;
const IS_ROOT = process.getuid?.() === 0;
const workspaces: string[] = [];
afterAll(() => {
  for (const w of workspaces) rmSync(w, { recursive: true, force: true });
});

function workspace(): string {
  const w = makeWorkspace();
  workspaces.push(w);
  return w;
}

function schemaOk(path: string): string {
  if (!HAVE_XMLLINT) return '';
  const r = spawnSync('xmllint', ['--noout', '--schema', XSD, path], { encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr;
}

function explain(res: StepResult[]): string {
  return res.map((r) => `${r.status} ${r.name}${r.status === 'failed' ? `\n${r.output.slice(-3000)}` : ''}`).join('\n');
}

describe('docs/ci.md', () => {
  const doc = readFileSync(join(REPO, 'docs', 'ci.md'), 'utf8');
  it('shows exactly the workflow files the tests run', () => {
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks).toContain(readFileSync(GITHUB_WORKFLOW, 'utf8'));
    expect(blocks).toContain(readFileSync(GITLAB_CI, 'utf8'));
  });

  it('the workflow shards one campaign over a matrix and publishes JUnit and artifacts', () => {
    const wf = parse(readFileSync(GITHUB_WORKFLOW, 'utf8'));
    expect(wf.jobs.fuzz.strategy.matrix.shard).toEqual([0, 1, 2, 3]);
    const text = JSON.stringify(wf);
    expect(text).toMatch(/--shard \$\{\{ matrix.shard \}\}\/4/);
    expect(text).toMatch(/actions\/upload-artifact/);
    expect(text).toMatch(/--junit/);
    expect(wf.jobs.kernel).toBeDefined();
    const gl = parse(readFileSync(GITLAB_CI, 'utf8'));
    expect(gl.fuzz.parallel).toBe(4);
    expect(gl.fuzz.artifacts.reports.junit).toBe('ci-out/junit/*.xml');
  });
});

describe('ci-local building blocks', () => {
  it('substitutes known expressions and refuses unknown ones', () => {
    expect(
      substitute('a ${{ matrix.shard }}/4 ${{github.run_number}}', { 'matrix.shard': 2, 'github.run_number': 9 }),
    ).toBe('a 2/4 9');
    expect(() => substitute('${{ secrets.X }}', {})).toThrow(/not supported/);
  });
  it('evaluates the conditions the recipes use', () => {
    expect(evalCondition('always()', { failed: true, matrix: {} })).toBe(true);
    expect(evalCondition('success()', { failed: true, matrix: {} })).toBe(false);
    expect(evalCondition('matrix.shard == 0', { failed: false, matrix: { shard: '0' } })).toBe(true);
    expect(evalCondition('matrix.shard == 0', { failed: false, matrix: { shard: 1 } })).toBe(false);
    expect(() => evalCondition("github.ref == 'x'", { failed: false, matrix: {} })).toThrow(/not supported/);
  });
  it('a failing step fails the run and skips success() steps, not always() ones', () => {
    const ws = workspace();
    const res = runSteps(
      [
        { name: 'a', script: 'exit 3', env: {}, condition: 'success()' },
        { name: 'b', script: 'echo b', env: {}, condition: 'success()' },
        { name: 'c', script: 'echo "$X"', env: { X: 'cee' }, condition: 'always()' },
      ],
      { cwd: ws, env: {} },
    );
    expect(res.map((r) => r.status)).toEqual(['failed', 'not run (condition false)', 'ok']);
    expect(res[0].code).toBe(3);
    expect(res[2].output.trim()).toBe('cee');
  });
});

describe('the GitHub Actions fuzz job, run locally', () => {
  it('shard 0: fuzz, corpus, an annotated replay with HTML; JUnit valid, artifacts present', () => {
    const ws = workspace();
    const plan = githubSteps(readFileSync(GITHUB_WORKFLOW, 'utf8'), 'fuzz', { shard: 0 }, 42);
    const res = runSteps(plan.steps, {
      cwd: ws,
      env: plan.env,
      overrides: { FUZZ_SECONDS: '2' },
      matrix: { shard: 0 },
    });
    expect(
      res.filter((r) => r.status === 'failed'),
      explain(res),
    ).toEqual([]);
    expect(res.find((r) => r.name.startsWith('corpus'))!.status).toBe('ok');
    const junit = matchFiles(ws, 'ci-out/junit/*.xml').sort();
    expect(junit).toEqual([
      'ci-out/junit/corpus.xml',
      'ci-out/junit/fuzz-shard-0.xml',
      'ci-out/junit/replay-icmp-unreachable.xml',
    ]);
    for (const f of junit) expect(schemaOk(join(ws, f)), f).toBe('');
    expect(readFileSync(join(ws, 'ci-out/junit/fuzz-shard-0.xml'), 'utf8')).toMatch(
      /<testcase name="seed 42 shard 0\/4"/,
    );
    const cap = join(ws, 'ci-out/captures/icmp-unreachable');
    expect(readdirSync(cap).sort()).toEqual([
      'core.pcapng',
      'input.pcapng',
      'model.pcapng',
      'report.html',
      'report.json',
    ]);
    const upload = res.find((r) => r.name.startsWith('upload'))!;
    expect(upload.notes.join('\n')).toMatch(/artifact natlab-fuzz-shard-0: \d+ files/);
    expect(res.find((r) => r.name === 'publish JUnit')!.notes.join('\n')).toMatch(/fuzz-shard-0\.xml/);
  }, 900_000);

  it('shard 3: a counterexample in the save directory gets annotated captures and an HTML report', () => {
    const ws = workspace();
    // As if this shard had found one: a saved counterexample (a pinned regression) in its save dir.
    const pinned = readdirSync(join(REPO, 'corpora', 'regressions')).find((d) => d.startsWith('pinned-'))!;
    cpSync(join(REPO, 'corpora', 'regressions', pinned), join(ws, 'ci-out', 'counterexamples', pinned), {
      recursive: true,
    });
    const plan = githubSteps(readFileSync(GITHUB_WORKFLOW, 'utf8'), 'fuzz', { shard: 3 }, 42);
    const res = runSteps(plan.steps, {
      cwd: ws,
      env: plan.env,
      overrides: { FUZZ_SECONDS: '2' },
      matrix: { shard: 3 },
    });
    expect(
      res.filter((r) => r.status === 'failed'),
      explain(res),
    ).toEqual([]);
    expect(res.find((r) => r.name.startsWith('corpus'))!.status).toBe('not run (condition false)');
    const ann = join(ws, 'ci-out', 'counterexamples', pinned, 'annotated');
    expect(existsSync(join(ann, 'report.html'))).toBe(true);
    expect(existsSync(join(ann, 'model.pcapng'))).toBe(true);
    expect(existsSync(join(ann, 'input.pcapng'))).toBe(true);
    expect(matchFiles(ws, 'ci-out/junit/*.xml')).toEqual(['ci-out/junit/fuzz-shard-3.xml']);
  }, 900_000);
});

describe('the GitLab fuzz job, run locally', () => {
  it('node 2 of 4 runs shard 1/4 and writes its JUnit report', () => {
    const ws = workspace();
    const plan = gitlabSteps(readFileSync(GITLAB_CI, 'utf8'), 'fuzz', 2, 4, 7);
    const res = runSteps(plan.steps, { cwd: ws, env: plan.env, overrides: { FUZZ_SECONDS: '2' } });
    expect(
      res.filter((r) => r.status === 'failed'),
      explain(res),
    ).toEqual([]);
    const junit = plan.junit.flatMap((p) => matchFiles(ws, p));
    expect(junit).toEqual(['ci-out/junit/fuzz-shard-2.xml']);
    expect(schemaOk(join(ws, junit[0]))).toBe('');
    expect(readFileSync(join(ws, junit[0]), 'utf8')).toMatch(/<testcase name="seed 7 shard 1\/4"/);
    expect(plan.artifacts.flatMap((p) => matchFiles(ws, p)).length).toBeGreaterThan(0);
  }, 900_000);
});

const kernelReady =
  IS_ROOT &&
  spawnSync('bash', ['-c', 'command -v ip && command -v iptables && command -v conntrack'], { stdio: 'ignore' })
    .status === 0;

describe.runIf(kernelReady)('the privileged kernel job, run locally (root)', () => {
  it('kernel check, model vs kernel fuzz (1 run) and the kernel corpus entry; JUnit valid', () => {
    const ws = workspace();
    const plan = githubSteps(readFileSync(GITHUB_WORKFLOW, 'utf8'), 'kernel', {}, 5);
    const res = runSteps(plan.steps, { cwd: ws, env: plan.env, overrides: { KERNEL_FUZZ_RUNS: '1' } });
    expect(
      res.filter((r) => r.status === 'failed'),
      explain(res),
    ).toEqual([]);
    const junit = matchFiles(ws, 'ci-out/junit/*.xml').sort();
    expect(junit).toEqual(['ci-out/junit/corpus-kernel.xml', 'ci-out/junit/fuzz-kernel.xml']);
    for (const f of junit) expect(schemaOk(join(ws, f)), f).toBe('');
  }, 900_000);
});
