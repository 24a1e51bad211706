/**
 * etcdgate's operational log: pino JSON lines on stderr. Stderr, not stdout, because the
 * audit sink may own stdout and the two streams must never interleave.
 */
import pino from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import type { LogConfig } from '../config/types.js';

/** The logger every module receives (pino's). */
export type Logger = PinoLogger;

/** Field names whose values are never written, wherever they appear in the first few levels of a log object. */
const SECRET_FIELDS = ['value', 'password', 'token', 'authorization'] as const;

/**
 * Redaction paths. Code must not log etcd values or credentials in the first place; this
 * is the second line of defence for a field that slips into a log object by accident.
 */
const REDACT_PATHS: readonly string[] = SECRET_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
  `*.*.*.${field}`,
]);

/**
 * Creates the JSON logger at `level`. Without `destination` it writes synchronously to
 * stderr (fd 2), so nothing is lost when the process exits right after a fatal line.
 */
export function createLogger(level: LogConfig['level'], destination?: DestinationStream): Logger {
  const options = {
    level,
    name: 'etcdgate',
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
  };
  return pino(options, destination ?? pino.destination({ dest: 2, sync: true }));
}
