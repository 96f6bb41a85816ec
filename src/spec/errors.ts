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
