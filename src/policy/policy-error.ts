/** One problem found in a policy (or policy cases) document, located by its path. */
export interface PolicyIssue {
  /** Where, e.g. `roles.tenant.keys[2].access` or `bindings[0].match`; "" for the document itself. */
  readonly path: string;
  readonly message: string;
}

/**
 * Thrown by compilePolicy when a document is invalid. Carries every problem found, not
 * just the first, so an operator fixes a policy in one round; the message lists them all.
 */
export class PolicyError extends Error {
  readonly issues: readonly PolicyIssue[];

  /** `what` names the document in the message ("policy", "policy cases"). */
  constructor(issues: readonly PolicyIssue[], what = 'policy') {
    const lines = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`));
    super(`invalid ${what} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n  ${lines.join('\n  ')}`);
    this.name = 'PolicyError';
    this.issues = Object.freeze([...issues]);
  }
}
