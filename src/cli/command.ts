// A natlab subcommand. Exit codes: 0 ok, 1 a check failed (difference found), 2 bad input/usage.
export const EXIT_OK = 0;
export const EXIT_DIFF = 1;
export const EXIT_USAGE = 2;

export interface Command {
  name: string;
  /** One line for `natlab --help`. */
  summary: string;
  /** Full text for `natlab <name> --help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}
