/**
 * The error of a command-line mistake (a missing or contradictory argument, a request
 * description that does not parse): the CLI prints its message and exits with status 2,
 * like an invalid config.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
