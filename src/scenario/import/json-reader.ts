// Typed reading of imported JSON (AWS CLI output, Terraform state, nft -j) with the JSON path of
// every value, so bad input is one clear line naming the file and where in it:
// `vpc/route-tables.json: $.RouteTables[0].Routes[2].DestinationCidrBlock: expected a string, got number 5`.
// Cold path.

import { InputError } from '../../spec/errors.ts';

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** A JSON value with its file and path (`$.Vpcs[0].CidrBlock`). */
export class J {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly value: unknown,
  ) {}

  /** Parses JSON text; a syntax error names the file and the line. */
  static parse(text: string, file: string): J {
    try {
      return new J(file, '$', JSON.parse(text));
    } catch (e) {
      const msg = (e as Error).message;
      const m = /position (\d+)/.exec(msg);
      const line = m ? text.slice(0, Number(m[1])).split('\n').length : 0;
      throw new InputError(`${file}${line ? `:${line}` : ''}: JSON syntax: ${msg}`, file, '');
    }
  }

  fail(msg: string): never {
    throw new InputError(`${this.file}: ${this.path}: ${msg}`, this.file, this.path);
  }

  get isObject(): boolean {
    return typeof this.value === 'object' && this.value !== null && !Array.isArray(this.value);
  }

  keys(): string[] {
    return this.isObject ? Object.keys(this.value as object) : [];
  }

  /** The member `key` (undefined value when absent). Requires this to be an object. */
  at(key: string): J {
    if (!this.isObject) this.fail(`expected an object, got ${typeName(this.value)}`);
    return new J(this.file, `${this.path}.${key}`, (this.value as Record<string, unknown>)[key]);
  }

  has(key: string): boolean {
    return (
      this.isObject &&
      (this.value as Record<string, unknown>)[key] !== undefined &&
      (this.value as Record<string, unknown>)[key] !== null
    );
  }

  get absent(): boolean {
    return this.value === undefined || this.value === null;
  }

  /** The elements of a list; absent/null → [] unless required. */
  list(required = false): J[] {
    if (this.absent) {
      if (required) this.fail('missing (a list is required)');
      return [];
    }
    if (!Array.isArray(this.value)) this.fail(`expected a list, got ${typeName(this.value)}`);
    return (this.value as unknown[]).map((v, i) => new J(this.file, `${this.path}[${i}]`, v));
  }

  /** A string; absent/null → null unless required. */
  str(required = false): string | null {
    if (this.absent) {
      if (required) this.fail('missing (a string is required)');
      return null;
    }
    if (typeof this.value !== 'string') this.fail(`expected a string, got ${typeName(this.value)}`);
    return this.value as string;
  }

  /** A required string. */
  s(): string {
    return this.str(true) as string;
  }

  bool(dflt: boolean | null): boolean | null {
    if (this.absent) return dflt;
    if (typeof this.value !== 'boolean') this.fail(`expected true or false, got ${typeName(this.value)}`);
    return this.value as boolean;
  }

  num(dflt: number | null): number | null {
    if (this.absent) return dflt;
    if (typeof this.value !== 'number') this.fail(`expected a number, got ${typeName(this.value)}`);
    return this.value as number;
  }
}

/** AWS `Tags` / `TagSet` ([{Key, Value}]) → the Name tag, or null. */
export function awsNameTag(o: J): string | null {
  for (const key of ['Tags', 'TagSet']) {
    for (const t of o.at(key).list()) if (t.at('Key').str() === 'Name') return t.at('Value').str();
  }
  return null;
}
