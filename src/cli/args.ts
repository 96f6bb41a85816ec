// Minimal, strict option parser for natlab commands: `--flag`, `--opt value`, `--opt=value`,
// positional arguments. Unknown options are usage errors (exit 2), never silently ignored.

import { excerpt as clip } from '../spec/errors.ts';

export class UsageError extends Error {}

export interface OptSpec {
  /** Option names without dashes; value options take a value, flags do not. */
  flags?: readonly string[];
  values?: readonly string[];
  /** Values that may repeat (collected into arrays). */
  multi?: readonly string[];
}

export interface ParsedArgs {
  flags: Set<string>;
  values: Map<string, string>;
  multi: Map<string, string[]>;
  positional: string[];
}

export function parseArgs(argv: readonly string[], spec: OptSpec): ParsedArgs {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const multi = new Map<string, string[]>();
  const positional: string[] = [];
  const isFlag = new Set(spec.flags ?? []);
  const isValue = new Set(spec.values ?? []);
  const isMulti = new Set(spec.multi ?? []);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (isFlag.has(name)) {
      if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
      if (flags.has(name)) throw new UsageError(`option --${name} given twice`);
      flags.add(name);
    } else if (isValue.has(name) || isMulti.has(name)) {
      let v: string;
      if (eq >= 0) v = a.slice(eq + 1);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
        v = argv[++i];
      }
      if (isMulti.has(name)) {
        const list = multi.get(name) ?? [];
        list.push(v);
        multi.set(name, list);
      } else {
        // A single-value option given twice is ambiguous (which one wins?): say so.
        if (values.has(name))
          throw new UsageError(
            `option --${name} given twice ('${clip(values.get(name)!)}' and '${clip(v)}'); it takes one value`,
          );
        values.set(name, v);
      }
    } else {
      throw new UsageError(`unknown option --${clip(name)}`);
    }
  }
  return { flags, values, multi, positional };
}

export function intOption(
  args: ParsedArgs,
  name: string,
  dflt: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = args.values.get(name);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name}: '${clip(v)}' is not an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}
