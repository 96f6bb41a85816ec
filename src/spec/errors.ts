/**
 * Bad input (a file, a record, a field): the message names the file, where in it, and what is
 * wrong. The CLI prints it and exits 2; it is never a crash.
 */
export class InputError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly where?: string,
  ) {
    super(message);
    this.name = 'InputError';
  }
}

/** Characters of a user-given value an error message quotes at most. */
export const EXCERPT_MAX = 60;

/**
 * A short, escaped excerpt of a user-given value, safe to put in a one-line message: at most
 * `max` characters, control characters escaped (a binary file or a 1 MB value never reaches the
 * terminal raw; escaping twice changes nothing), the full length said when cut.
 */
export function excerpt(text: string, max = EXCERPT_MAX): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const esc = cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufffd]/g, (c) =>
    c.charCodeAt(0) > 0xff
      ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
      : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return text.length > max ? `${esc}… (${text.length} characters)` : esc;
}

/** How excerpt() ends a cut value. */
const EXCERPT_TAIL = /… \(\d+ characters\)$/;

/** Characters an error message line keeps at most (a safety net behind excerpt()). */
export const MESSAGE_MAX = 1000;

/**
 * A message made safe to print on one line: every quoted value ('…' or "…") longer than
 * EXCERPT_MAX becomes an excerpt, control characters are escaped, and the whole is cut to
 * MESSAGE_MAX characters. Validators that quote user input pass their messages through it.
 */
export function boundMessage(msg: string): string {
  const s = msg.replace(/'([^'\n]{61,})'|"([^"\n]{61,})"/g, (m, a: string | undefined, b: string | undefined) =>
    // already an excerpt (bounded once, e.g. by the validator): keep it, so bounding is idempotent
    EXCERPT_TAIL.test(a ?? b!) ? m : a !== undefined ? `'${excerpt(a)}'` : `"${excerpt(b!)}"`,
  );
  return excerpt(s, MESSAGE_MAX);
}
