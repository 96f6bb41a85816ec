// Runs the CI recipes of docs/ci.md (docs/ci/github-actions.yml, docs/ci/gitlab-ci.yml) on this
// machine: the same `run:` / `script:` commands, in a throwaway workspace that mirrors a checkout
// (symlinks to the repository's files), with the matrix and CI variables filled in. Steps that
// set up a machine (`npm ci`, `apt-get`) are not re-run here (said so); `uses:` steps are not
// run either, but an artifact upload's paths and a JUnit publisher's glob must match files.
//
//   npx tsx scripts/ci-local.ts github fuzz --matrix shard=0 --env FUZZ_SECONDS=5
//   npx tsx scripts/ci-local.ts gitlab fuzz --node 1/4 --env FUZZ_SECONDS=5
//
// test/ci/workflow.test.ts drives it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

export const REPO = resolve(import.meta.dirname, '..');
export const GITHUB_WORKFLOW = join(REPO, 'docs', 'ci', 'github-actions.yml');
export const GITLAB_CI = join(REPO, 'docs', 'ci', 'gitlab-ci.yml');

export interface LocalStep {
  name: string;
  /** The shell script to run ('' for a `uses:` step). */
  script: string;
  env: Record<string, string>;
  /** GitHub `if:` (evaluated when the step's turn comes); GitLab after_script: 'always()'. */
  condition: string;
  uses?: string;
  with?: Record<string, string>;
}

export interface StepResult {
  name: string;
  /** 'ok' | 'failed' | 'not run (condition false)' | 'checked' (uses: step) */
  status: string;
  code: number | null;
  output: string;
  notes: string[];
}

type Ctx = Record<string, string | number>;

/** Replaces ${{ expr }} with values from ctx (matrix.x, github.run_number, ...); unknown: error. */
export function substitute(text: string, ctx: Ctx): string {
  return text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
    if (!(expr in ctx))
      throw new Error(`ci-local: expression '${expr}' is not supported here (known: ${Object.keys(ctx).join(', ')})`);
    return String(ctx[expr]);
  });
}

function strEnv(o: unknown, ctx: Ctx): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((o ?? {}) as Record<string, unknown>)) out[k] = substitute(String(v), ctx);
  return out;
}

/** The steps of a GitHub Actions job for one matrix combination. */
export function githubSteps(
  yamlText: string,
  job: string,
  matrix: Ctx,
  runNumber = 1,
): { env: Record<string, string>; steps: LocalStep[]; matrixValues: Record<string, unknown[]> } {
  const wf = parse(yamlText) as {
    env?: object;
    jobs: Record<
      string,
      { env?: object; steps: Array<Record<string, unknown>>; strategy?: { matrix?: Record<string, unknown[]> } }
    >;
  };
  const j = wf.jobs[job];
  if (!j) throw new Error(`ci-local: no job '${job}' (jobs: ${Object.keys(wf.jobs).join(', ')})`);
  const matrixValues = j.strategy?.matrix ?? {};
  const ctx: Ctx = { 'github.run_number': runNumber };
  for (const [k, v] of Object.entries(matrix)) {
    if (!(k in matrixValues)) throw new Error(`ci-local: job '${job}' has no matrix key '${k}'`);
    ctx[`matrix.${k}`] = v;
  }
  const env = { ...strEnv(wf.env, ctx), ...strEnv(j.env, ctx) };
  const steps = j.steps.map(
    (s, k): LocalStep => ({
      name: String(s.name ?? s.uses ?? `step ${k + 1}`),
      script: s.run ? substitute(String(s.run), ctx) : '',
      env: strEnv(s.env, ctx),
      condition: s.if === undefined ? 'success()' : String(s.if),
      uses: s.uses ? String(s.uses) : undefined,
      with: s.with ? strEnv(s.with, ctx) : undefined,
    }),
  );
  return { env, steps, matrixValues };
}

/** The script and after_script of a GitLab job as steps, for node `index` (1-based) of `total`. */
export function gitlabSteps(
  yamlText: string,
  job: string,
  index = 1,
  total = 1,
  pipelineIid = 1,
): { env: Record<string, string>; steps: LocalStep[]; artifacts: string[]; junit: string[] } {
  const ci = parse(yamlText) as Record<
    string,
    {
      script?: string[];
      after_script?: string[];
      variables?: object;
      artifacts?: { paths?: string[]; reports?: { junit?: string | string[] } };
    } & object
  >;
  const j = ci[job];
  if (!j?.script) throw new Error(`ci-local: no job '${job}' with a script`);
  const env = {
    ...strEnv(ci.variables, {}),
    ...strEnv(j.variables, {}),
    CI_NODE_INDEX: String(index),
    CI_NODE_TOTAL: String(total),
    CI_PIPELINE_IID: String(pipelineIid),
  };
  const steps: LocalStep[] = [{ name: 'script', script: j.script.join('\n'), env: {}, condition: 'success()' }];
  if (j.after_script)
    steps.push({ name: 'after_script', script: j.after_script.join('\n'), env: {}, condition: 'always()' });
  const junit = j.artifacts?.reports?.junit;
  return {
    env,
    steps,
    artifacts: j.artifacts?.paths ?? [],
    junit: junit === undefined ? [] : Array.isArray(junit) ? junit : [junit],
  };
}

/** GitHub `if:` expressions the recipes use: always(), success(), failure(), matrix.k == v. */
export function evalCondition(cond: string, ctx: { failed: boolean; matrix: Ctx }): boolean {
  const c = cond.replace(/^\$\{\{\s*|\s*\}\}$/g, '').trim();
  if (c === 'always()') return true;
  if (c === 'success()') return !ctx.failed;
  if (c === 'failure()') return ctx.failed;
  const m = /^matrix\.([\w-]+)\s*==\s*'?([\w.-]+)'?$/.exec(c);
  if (m) return !ctx.failed && String(ctx.matrix[m[1]]) === m[2];
  throw new Error(`ci-local: condition '${cond}' is not supported here`);
}

/** Machine set-up lines not re-run locally (this machine is already set up; .ci/run installs). */
const SETUP_LINE = /^\s*(sudo\s+)?(npm ci|apt-get\s)/;

/** A workspace like a fresh checkout: a temporary directory of symlinks to the repository's files. */
export function makeWorkspace(repo = REPO): string {
  const ws = mkdtempSync(join(tmpdir(), 'natlab-ci-local-'));
  for (const name of readdirSync(repo)) {
    if (name === '.git' || name === 'ci-out') continue;
    symlinkSync(join(repo, name), join(ws, name));
  }
  return ws;
}

/** Files under a path or matching a simple glob (dir/*.ext), relative to cwd. */
export function matchFiles(cwd: string, pattern: string): string[] {
  const star = pattern.lastIndexOf('*');
  if (star < 0) {
    const p = join(cwd, pattern);
    if (!existsSync(p)) return [];
    if (!statSync(p).isDirectory()) return [pattern];
    return readdirSync(p, { recursive: true })
      .map(String)
      .filter((f) => statSync(join(p, f)).isFile())
      .map((f) => join(pattern, f));
  }
  const dir = pattern.slice(0, pattern.lastIndexOf('/', star) + 1);
  const re = new RegExp(
    `^${pattern
      .slice(dir.length)
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')}$`,
  );
  const d = join(cwd, dir);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((f) => re.test(f))
    .map((f) => join(dir, f));
}

// Root runs `sudo` commands directly where sudo itself is not installed.
const SUDO_SHIM =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'if ! command -v sudo >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then sudo() { while [ "${1#-}" != "$1" ]; do shift; done; "$@"; }; fi\n';

export interface RunOptions {
  cwd: string;
  /** Environment the CI would give (workflow/job variables), then overrides (e.g. a short FUZZ_SECONDS). */
  env: Record<string, string>;
  overrides?: Record<string, string>;
  matrix?: Ctx;
  /** Per step, ms (default 20 minutes). */
  timeoutMs?: number;
}

export function runSteps(steps: LocalStep[], o: RunOptions): StepResult[] {
  const results: StepResult[] = [];
  let failed = false;
  for (const s of steps) {
    if (!evalCondition(s.condition, { failed, matrix: o.matrix ?? {} })) {
      results.push({ name: s.name, status: 'not run (condition false)', code: null, output: '', notes: [] });
      continue;
    }
    if (s.uses) {
      results.push(checkUses(s, o.cwd));
      if (results[results.length - 1].status === 'failed') failed = true;
      continue;
    }
    const notes: string[] = [];
    const lines = s.script.split('\n').map((l) => {
      if (!SETUP_LINE.test(l)) return l;
      notes.push(`not re-run here (machine set-up): ${l.trim()}`);
      return ':';
    });
    const env = { ...process.env, ...o.env, ...s.env, ...(o.overrides ?? {}), CI: 'true' };
    const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', SUDO_SHIM + lines.join('\n')], {
      cwd: o.cwd,
      env,
      encoding: 'utf8',
      timeout: o.timeoutMs ?? 20 * 60_000,
      maxBuffer: 256 << 20,
    });
    const ok = r.status === 0;
    if (!ok) failed = true;
    results.push({
      name: s.name,
      status: ok ? 'ok' : 'failed',
      code: r.status,
      output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`,
      notes,
    });
  }
  return results;
}

/** `uses:` steps: an upload's paths and a JUnit publisher's glob must match files. */
function checkUses(s: LocalStep, cwd: string): StepResult {
  const w = s.with ?? {};
  const notes = [`not run here: ${s.uses}`];
  let status = 'checked';
  if (s.uses!.startsWith('actions/upload-artifact')) {
    const paths = (w.path ?? '')
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean);
    const files = paths.flatMap((p) => matchFiles(cwd, p));
    notes.push(`artifact ${w.name}: ${files.length} files from ${paths.join(', ')}`);
    if (files.length === 0 && w['if-no-files-found'] === 'error') status = 'failed';
  } else if (/junit/i.test(s.uses!)) {
    const files = (w.report_paths ?? '')
      .split(/[\n,]/)
      .map((x) => x.trim())
      .filter(Boolean)
      .flatMap((p) => matchFiles(cwd, p));
    notes.push(`JUnit files: ${files.join(', ') || 'none'}`);
    if (files.length === 0) status = 'failed';
  }
  return { name: s.name, status, code: null, output: '', notes };
}

function main(argv: string[]): number {
  const [provider, job, ...rest] = argv;
  if ((provider !== 'github' && provider !== 'gitlab') || !job) {
    process.stderr.write(
      'usage: tsx scripts/ci-local.ts github|gitlab JOB [--matrix k=v]... [--node i/n] [--env K=V]...\n',
    );
    return 2;
  }
  const matrix: Ctx = {};
  const overrides: Record<string, string> = {};
  let node = [1, 1];
  for (let k = 0; k < rest.length; k += 2) {
    const [kk, v] = [rest[k], rest[k + 1] ?? ''];
    const eq = v.indexOf('=');
    if (kk === '--matrix') matrix[v.slice(0, eq)] = v.slice(eq + 1);
    else if (kk === '--env') overrides[v.slice(0, eq)] = v.slice(eq + 1);
    else if (kk === '--node') node = v.split('/').map(Number);
    else {
      process.stderr.write(`ci-local: unknown option ${kk}\n`);
      return 2;
    }
  }
  const cwd = makeWorkspace();
  const plan =
    provider === 'github'
      ? githubSteps(readFileSync(GITHUB_WORKFLOW, 'utf8'), job, matrix)
      : gitlabSteps(readFileSync(GITLAB_CI, 'utf8'), job, node[0], node[1]);
  process.stdout.write(`workspace: ${cwd}\n`);
  const res = runSteps(plan.steps, { cwd, env: plan.env, overrides, matrix });
  for (const r of res) {
    process.stdout.write(`${r.status.padEnd(26)} ${r.name}\n${r.notes.map((n) => `    ${n}\n`).join('')}`);
    if (r.status === 'failed')
      process.stdout.write(
        `${r.output
          .split('\n')
          .slice(-20)
          .map((l) => `    | ${l}`)
          .join('\n')}\n`,
      );
  }
  return res.some((r) => r.status === 'failed') ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2));
