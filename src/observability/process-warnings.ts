/**
 * Process warnings (deprecations, experimental features, insecure settings) as JSON log
 * lines. Node prints them to stderr as plain text by default, which breaks the rule that
 * everything etcdgate writes to stderr is one JSON object per line (log shippers parse
 * it as such). This replaces Node's printer with the logger.
 *
 * Only src/main.ts touches `process`: it passes the process in as a WarningSource.
 */
import type { Logger } from './logger.js';

/** The part of `process` used here: its `warning` event. */
export interface WarningSource {
  on(event: 'warning', listener: (warning: Error) => void): unknown;
  removeAllListeners(event: 'warning'): unknown;
}

/** What a warning line carries: Node's name and code, and its text (never a value). */
export interface WarningFields {
  readonly name: string;
  readonly code?: string;
  readonly message: string;
}

/** The fields of one warning, as they go into the log line. */
export function warningFields(warning: Error): WarningFields {
  const code = 'code' in warning && typeof warning.code === 'string' ? warning.code : undefined;
  return { name: warning.name, ...(code === undefined ? {} : { code }), message: warning.message };
}

/**
 * Sends every later process warning to `logger()` at level warn, and stops Node's own
 * plain-text printer. `logger` is a function so that the caller can switch to the
 * configured logger once the config is read; warnings before that use the first one.
 */
export function logProcessWarnings(source: WarningSource, logger: () => Logger): void {
  // Node's printer is a 'warning' listener of its own; removing it is the documented
  // alternative to --no-warnings, which the CLI cannot pass to itself.
  source.removeAllListeners('warning');
  source.on('warning', (warning) => {
    logger().warn({ warning: warningFields(warning) }, 'process warning');
  });
}
