/**
 * The single error type the config loader throws. It carries every problem found, not
 * just the first, so an operator fixes a broken file in one round instead of many.
 */

/** One problem in a config document, located by its dotted path (e.g. `upstream.endpoints[1]`). */
export interface ConfigIssue {
  /** Dotted path of the offending field; `<config>` for the document or file as a whole. */
  readonly path: string;
  readonly message: string;
}

/** Path used for problems that belong to the whole document (unreadable file, YAML syntax). */
export const ROOT_PATH = '<config>';

/**
 * Thrown when a config cannot be read, parsed or validated. `message` lists every
 * issue, one per line, as `path: message`; `source` names the file ("" when in memory).
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  readonly source: string;

  constructor(issues: readonly ConfigIssue[], source: string) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n'));
    this.name = 'ConfigError';
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
    this.source = source;
  }
}
