// npm run mutants: shows the differential fuzzer finds deliberate bugs in the fast core.
//
// For each mutant: copy src/ (and scenarios/) to tmp/mutants/<id>/, apply one text patch to the
// copy of the core (the patch must apply exactly once — a missing target fails loudly, so the
// list stays honest as the core evolves), run the fuzzer with the reference engine against the
// mutated core for a time budget, and check that the shrunk counterexample it saved replays.
// Writes results/mutants.json; exits 1 if any mutant survives, 2 if a patch no longer applies.
//
// usage: npm run mutants -- [--time S] [--seed X] [--only id,id] [--workers N] [--keep]

import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Engine } from '../src/spec/engine.ts';
import type { Scenario } from '../src/spec/scenario.ts';
import { runFuzz, type FuzzEngineSpec, type FuzzReport } from '../src/diff/fuzz/fuzz.ts';
import { makeEngine } from '../src/diff/engines.ts';
import { loadRegression, replayRegression } from '../src/diff/fuzz/regressions.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface Mutant {
  id: string;
  /** What the bug is, as a reviewer would describe it. */
  bug: string;
  file: string;
  find: string;
  replace: string;
  /** Core worker threads for this mutant (dispatch bugs need more than one). */
  workers?: number;
}

export const MUTANTS: Mutant[] = [
  {
    id: 'udp-checksum-not-updated',
    bug: 'skip the UDP checksum update when an address is rewritten (pseudo-header delta not applied)',
    file: 'src/core/dataplane-slow.ts',
    find: 'else if (pv.proto === 17 && pv.l4Len >= 8) applyUdpCsum(b, pv.l4Off + 6, d);',
    replace: 'else if (pv.proto === 17 && pv.l4Len >= 8) void d;',
  },
  {
    // (A FIN in the wrong column would be an equivalent mutant: Linux's FIN rows are the same in
    // both directions.)
    id: 'tcp-ack-wrong-direction',
    bug: 'wrong TCP transition: an ACK is looked up in the other direction\'s row of the state table',
    file: 'src/core/dataplane-slow.ts',
    find: 'const nw = TCP_TABLE[(dir * 6 + cls) * 10 + old];',
    replace: 'const nw = TCP_TABLE[((cls === C_ACK ? 1 - dir : dir) * 6 + cls) * 10 + old];',
  },
  {
    id: 'port-range-off-by-one',
    bug: 'off-by-one in the --to-ports search range (hi + 1 can be chosen)',
    file: 'src/core/dataplane-slow.ts',
    find: '} else { min = plo; size = phi - plo + 1; }\n    } else if (proto === 1) {',
    replace: '} else { min = plo; size = phi - plo + 2; }\n    } else if (proto === 1) {',
  },
  {
    id: 'icmp-inner-not-rewritten',
    bug: 'forget the inner (quoted) rewrite of a RELATED ICMP error coming back from the far side',
    file: 'src/core/dataplane-slow.ts',
    find: '      this.setInnerAddr(0, os, true);\n      this.setInnerPort(0, op >>> 16);\n',
    replace: '',
  },
  {
    id: 'expire-one-second-early',
    bug: 'new conntrack entries expire one second early',
    file: 'src/core/dataplane-slow.ts',
    find: 'this.eExp = this.now + tmo;',
    replace: 'this.eExp = this.now + tmo - 1000;',
  },
  {
    id: 'replies-mis-dispatched',
    bug: 'mis-dispatch replies: inbound packets are handed to the worker after the owner of their port',
    file: 'src/core/dispatch.ts',
    find: '    return portKey(W, dport);\n  }\n  if (proto === 1) return portKey(W, sport); // ICMP query',
    replace: '    return portKey(W, dport + 1);\n  }\n  if (proto === 1) return portKey(W, sport); // ICMP query',
    workers: 2,
  },
  {
    id: 'source-dest-check-ignored',
    bug: 'ignore the ENI source/dest check on packets an instance sends',
    file: 'src/core/dataplane-slow.ts',
    find: 'if (c.instSdc[inst] && pv.src !== c.instPriv[inst]) return this.drop(DROP_SRC_DST_CHECK_SRC);',
    replace: 'if (false && c.instSdc[inst] && pv.src !== c.instPriv[inst]) return this.drop(DROP_SRC_DST_CHECK_SRC);',
  },
  {
    id: 'private-source-leaks',
    bug: 'leak a private source: the IGW forwards an outbound packet from an address without an Elastic IP',
    file: 'src/core/dataplane-slow.ts',
    find: 'if (e < 0) return this.drop(DROP_IGW_NO_PUBLIC_IP);\n          this.igwRewrite(true, pv.src, c.eipAddr[e]);',
    replace: 'if (e < 0) { this.emit(0); return; }\n          this.igwRewrite(true, pv.src, c.eipAddr[e]);',
  },
  {
    id: 'rst-keeps-unreplied-entry',
    bug: 'an RST before any reply does not delete the entry',
    file: 'src/core/dataplane-slow.ts',
    find: 'this.killAfter = true;\n      return 1;',
    replace: 'return 1;',
  },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Copies the tree and applies the patch; throws if the target is not found exactly once. */
export function prepareMutant(m: Mutant, dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  if (existsSync(join(ROOT, 'scenarios'))) cpSync(join(ROOT, 'scenarios'), join(dir, 'scenarios'), { recursive: true });
  const p = join(dir, m.file);
  if (!existsSync(p)) throw new Error(`mutant ${m.id}: ${m.file} does not exist any more`);
  const text = readFileSync(p, 'utf8');
  const n = text.split(m.find).length - 1;
  if (n !== 1) throw new Error(`mutant ${m.id}: patch target ${n === 0 ? 'not found' : `found ${n} times`} in ${m.file}:\n  ${m.find.replace(/\n/g, '\n  ')}`);
  writeFileSync(p, text.replace(m.find, m.replace));
}

type CoreFactory = (s: Scenario, o: Record<string, unknown>) => Engine;

async function coreFrom(dir: string): Promise<CoreFactory> {
  const mod = (await import(pathToFileURL(join(dir, 'src/core/engine.ts')).href)) as { createCoreEngine: CoreFactory };
  return mod.createCoreEngine;
}

interface MutantResult {
  id: string;
  bug: string;
  file: string;
  found: boolean;
  runs: number;
  packets: number;
  seconds: number;
  summary: string | null;
  commands: string[];
  savedTo: string | null;
  replayReproduces: boolean | null;
}

async function main(): Promise<number> {
  const timeS = Number(arg('time') ?? 90);
  const seed = Number(arg('seed') ?? 20261127);
  const only = arg('only')?.split(',');
  const baseWorkers = Number(arg('workers') ?? 1);
  const keep = process.argv.includes('--keep');
  const list = MUTANTS.filter((m) => !only || only.includes(m.id));
  const work = join(ROOT, 'tmp', 'mutants');
  mkdirSync(work, { recursive: true });

  // Every patch must still apply before anything runs.
  for (const m of list) {
    try {
      prepareMutant(m, join(work, m.id));
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      return 2;
    }
  }

  const model: FuzzEngineSpec = { name: 'model', create: (s, sd) => makeEngine('model', s, { seed: sd }) };
  const cleanCore = await coreFrom(ROOT);
  // Baseline: the reference must agree with the unmutated core, or a "found" means nothing.
  process.stdout.write(`baseline: model vs unmutated core, ${Math.min(timeS, 60)} s, seed ${seed}\n`);
  const base = await runFuzz({
    engines: [model, { name: 'core', create: async (s, sd) => cleanCore(s, { seed: sd, workers: 2 }) }],
    seed, timeS: Math.min(timeS, 60), saveDir: join(work, 'baseline-regressions'), shrinkTimeS: 20, maxCommands: 60,
  });
  let reference: FuzzEngineSpec = model;
  let referenceNote = 'model (the core agrees with it at baseline)';
  if (base.failure) {
    reference = { name: 'core-clean', create: async (s, sd) => cleanCore(s, { seed: sd, workers: 1 }) };
    referenceNote = `unmutated core: model and core already disagree at baseline (${base.failure.differences[0]?.message.split('\n')[0] ?? base.failure.error}; saved to ${base.failure.savedTo})`;
  }
  process.stdout.write(`reference: ${referenceNote}\n`);

  const results: MutantResult[] = [];
  for (const m of list) {
    const dir = join(work, m.id);
    const mutantCore = await coreFrom(dir);
    const workers = m.workers ?? baseWorkers;
    const spec: FuzzEngineSpec = { name: 'core-mutant', create: async (s, sd) => mutantCore(s, { seed: sd, workers }) };
    const t0 = Date.now();
    process.stdout.write(`mutant ${m.id}: ${m.bug} ... `);
    const rep: FuzzReport = await runFuzz({ engines: [reference, spec], seed, timeS, saveDir: join(ROOT, 'tmp', 'mutant-regressions', m.id), shrinkTimeS: 20, maxCommands: 120 });
    const f = rep.failure;
    let replayReproduces: boolean | null = null;
    if (f?.savedTo) {
      const reg = loadRegression(f.savedTo);
      const out = await replayRegression(reg, [
        { name: reference.name, engine: await reference.create(reg.scenario, reg.meta.engineSeed) },
        { name: spec.name, engine: await spec.create(reg.scenario, reg.meta.engineSeed) },
      ]);
      replayReproduces = out.differences.length > 0;
    }
    const r: MutantResult = {
      id: m.id, bug: m.bug, file: m.file, found: f !== null, runs: rep.runs, packets: rep.packets,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      summary: f ? (f.differences[0] ? `[${f.differences[0].kind}] ${f.differences[0].message}` : `error: ${f.error}`) : null,
      commands: f?.commands ?? [], savedTo: f?.savedTo ?? null, replayReproduces,
    };
    results.push(r);
    process.stdout.write(r.found ? `FOUND after ${r.runs} run(s), ${r.seconds} s (${r.commands.length} command(s) after shrinking; replay ${replayReproduces ? 'reproduces' : 'DOES NOT reproduce'})\n    ${r.summary?.split('\n')[0].slice(0, 300)}\n` : `survived ${r.runs} runs (${r.packets} packets)\n`);
  }
  const found = results.filter((r) => r.found).length;
  mkdirSync(join(ROOT, 'results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'results', 'mutants.json'),
    JSON.stringify({ date: new Date().toISOString(), seed, timeS, reference: referenceNote, baseline: { runs: base.runs, packets: base.packets, failure: base.failure ? base.failure.differences.map((d) => d.message) : null }, found, total: results.length, mutants: results }, null, 1) + '\n',
  );
  process.stdout.write(`\n${found}/${results.length} mutants found (results/mutants.json)\n`);
  if (!keep) for (const m of list) rmSync(join(work, m.id), { recursive: true, force: true });
  const bad = results.filter((r) => !r.found || r.replayReproduces === false);
  return bad.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(2);
    },
  );
}
