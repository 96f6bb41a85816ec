// `natlab corpus verify`: replays every corpus entry through every available engine; fails on any
// difference between engines or any change from the saved expected outputs.
import { EXIT_DIFF, EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError, intOption, parseArgs } from './args.ts';
import { checkOutputFile } from './output-location.ts';
import { engineAvailability, parseEngineName, type EngineName } from '../diff/engines.ts';
import { availableEngines, CORPORA_DIR, loadManifest, verifyCorpus, type EntryOutcome } from '../diff/replay/corpus.ts';
import { corpusSuite } from '../diff/sinks/junit-cases.ts';
import { writeJUnit } from '../diff/sinks/junit.ts';

const USAGE = `usage: natlab corpus verify [--engines model,core,kernel] [--update] [--only NAME,...] [--json]
                            [--one-at-a-time] [--parallel N]
       natlab corpus list [--json]

verify  replays every entry of corpora/manifest.yaml (generated captures of the built-in
        scenario and real captures from ../shared/corpora) through the engines and fails (exit 1)
        on any difference between engines, any change from the saved expected outputs
        (corpora/<kind>/<name>/expected/<engine>/: one pcap per egress point and results.json),
        or a generated input that no longer matches its generator (src/traffic/scripted.ts).
list    the entries, their inputs and scenario choices.

options:
  --engines LIST   engines to run (default: every available one; kernel only when its
                   prerequisites are met: root, ip, iptables, conntrack)
  --update         rewrite the expected outputs (and generated inputs) from this run, for
                   deliberate changes; differences between engines still fail
  --only NAMES     only these entries (comma-separated)
  --require-shared fail, instead of skipping, the real-capture entries when the shared corpora
                   (../shared/corpora beside the clone, or $NATLAB_SHARED_CORPORA) are absent
  --junit FILE     write JUnit XML: one test case per entry (failures list the problems)
  --json           machine-readable outcome on stdout
  --one-at-a-time  kernel engine: the original one-packet-per-round-trip injection instead of
                   the fast path (docs/kernel-oracle.md), to compare the two
  --parallel N     verify N entries at a time (default 1), each with its own engines (the kernel
                   engine its own namespace set): their namespace set-up and real-time waits
                   overlap; results are still printed in manifest order

exit: 0 all entries verified, 1 a difference or change, 2 usage or unreadable corpus.
`;

function line(o: EntryOutcome): string {
  if (o.skipped) return `skip ${o.name.padEnd(28)} ${o.skipped}`;
  const head = `${o.ok ? 'ok  ' : 'FAIL'} ${o.name.padEnd(28)} ${String(o.packets).padStart(5)} packets  [${o.engines.join(', ')}]`;
  const rest = [
    ...o.problems.map((p) => `       - ${p}`),
    ...o.known.map((k) => `       known difference (${o.knownCount ?? 0} packet/state differences tolerated): ${k}`),
    ...o.updated.map((u) => `       updated ${u}`),
  ];
  return [head, ...rest].join('\n');
}

export const command: Command = {
  name: 'corpus',
  summary: 'verify the replay corpus on every available engine (corpus verify / list)',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'verify' && sub !== 'list')
      throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'verify or list?');
    const a = parseArgs(rest, {
      flags: ['update', 'json', 'require-shared', 'one-at-a-time'],
      values: ['engines', 'only', 'junit', 'parallel'],
    });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    if (a.values.has('junit')) checkOutputFile(a.values.get('junit')!, '--junit');
    const json = a.flags.has('json');
    if (sub === 'list') {
      const entries = await loadManifest();
      if (json) process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
      else
        for (const e of entries)
          process.stdout.write(
            `${e.name.padEnd(28)} ${e.kind.padEnd(9)} ${e.input}  [${e.scenario ? `scenario ${e.scenario}` : `--inside ${e.inside}`}]\n    ${e.description}\n`,
          );
      return EXIT_OK;
    }
    let engines: EngineName[];
    let skipped: string[] = [];
    const list = a.values.get('engines');
    if (list) {
      engines = [];
      for (const x of list
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        let e: EngineName;
        try {
          e = parseEngineName(x);
        } catch (err) {
          throw new UsageError(`--engines: ${(err as Error).message}`);
        }
        const av = await engineAvailability(e);
        if (!av.ok) throw new UsageError(`--engines: the ${e} engine cannot run here: ${av.missing}`);
        if (!engines.includes(e)) engines.push(e);
      }
    } else ({ engines, skipped } = await availableEngines());
    if (engines.length === 0) {
      process.stderr.write('natlab corpus verify: no engine available\n');
      return EXIT_USAGE;
    }
    const only = a.values
      .get('only')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (!json) {
      process.stdout.write(
        `natlab corpus verify: ${CORPORA_DIR} on ${engines.join(', ')}${a.flags.has('update') ? ' (--update: rewriting expected outputs)' : ''}\n`,
      );
      for (const s of skipped) process.stdout.write(`  skipped engine ${s}\n`);
    }
    const parallel = intOption(a, 'parallel', 1, 1, 16);
    const t0 = performance.now();
    const times = new Map<string, number>();
    const res = await verifyCorpus({
      parallel,
      engines,
      update: a.flags.has('update'),
      only,
      requireShared: a.flags.has('require-shared'),
      kernelInjection: a.flags.has('one-at-a-time') ? 'single' : 'batch',
      onEntry: (o) => {
        times.set(o.name, o.seconds);
        if (!json) process.stdout.write(`${line(o)}\n`);
      },
    });
    const junit = a.values.get('junit');
    if (junit)
      await writeJUnit(junit, [
        { ...corpusSuite(res.entries, engines, times), timeS: (performance.now() - t0) / 1000 },
      ]);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (json)
      process.stdout.write(`${JSON.stringify({ ok: res.ok, engines, skipped, entries: res.entries }, null, 2)}\n`);
    else {
      const bad = res.entries.filter((e) => !e.ok).length;
      const skippedEntries = res.entries.filter((e) => e.skipped).length;
      process.stdout.write(
        `${res.entries.length} entries, ${bad} failed${skippedEntries ? `, ${skippedEntries} skipped (real captures not available here; --require-shared makes that a failure)` : ''}, in ${secs} s\n`,
      );
    }
    return res.ok ? EXIT_OK : EXIT_DIFF;
  },
};
