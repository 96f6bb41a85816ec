// Collects validation errors so one load reports several problems; the first is the precise one
// the InputError is named after. Cold path.

import { InputError, boundMessage, excerpt } from '../spec/errors.ts';

export interface ErrorItem {
  /** Where in the file: a key path (`instances.nat.privateIp`) or `line N`. */
  where: string;
  /** File line (1-based) when known, else 0. */
  line: number;
  msg: string;
}

/** Characters of a key path kept (a path holds user-given key names). */
export const WHERE_MAX = 200;

/** Stop collecting after this many; one mistake tends to cause a cascade. */
export const MAX_ERRORS = 20;

export class ErrorList {
  readonly items: ErrorItem[] = [];
  constructor(readonly file: string) {}

  add(where: string, msg: string, line = 0): void {
    // Messages quote the user's values: bounded and escaped (a 1 MB value or binary junk in a
    // scenario file never reaches the terminal whole).
    if (this.items.length < MAX_ERRORS)
      this.items.push({ where: excerpt(where, WHERE_MAX), line, msg: boundMessage(msg) });
  }

  get count(): number {
    return this.items.length;
  }

  format(item: ErrorItem): string {
    const loc = item.line > 0 ? `${this.file}:${item.line}` : this.file;
    return item.where ? `${loc}: ${item.where}: ${item.msg}` : `${loc}: ${item.msg}`;
  }

  /** Throws one InputError listing every collected error (first line = first error). */
  throwIfAny(): void {
    if (this.items.length === 0) return;
    const lines = this.items.map((i) => this.format(i));
    let msg = lines[0];
    if (lines.length > 1) {
      msg += `\n  (${lines.length - 1} more error${lines.length > 2 ? 's' : ''}${lines.length >= MAX_ERRORS ? ', list truncated' : ''})`;
      msg += `\n${lines
        .slice(1)
        .map((l) => `  ${l}`)
        .join('\n')}`;
    }
    throw new ScenarioError(msg, this.file, this.items[0].where, this.items.slice());
  }
}

/** An InputError carrying every collected item (tests and `--json` use them). */
export class ScenarioError extends InputError {
  constructor(
    message: string,
    file: string,
    where: string,
    readonly items: ErrorItem[],
  ) {
    super(message, file, where);
    this.name = 'InputError';
  }
}
