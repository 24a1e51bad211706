/**
 * The policy engine: pure, no I/O, no networking. A YAML policy (roles of key rules and
 * capabilities, bindings from certificate identities to roles) is validated and compiled
 * once (compilePolicy); each identity's permissions are resolved once and cached
 * (PermissionCache); each request's accesses are then checked with binary searches over
 * byte intervals, following etcd's range semantics (docs/authorization.md). Decisions are
 * values. Operator tools (explain, policy test cases) live here too, as pure functions.
 */
export type { Access, Capability, CompiledPolicy, Decision, Permissions } from './types.js';
export { CAPABILITIES } from './types.js';
export { compilePolicy, compilePolicyText, IdentityPermissions, PolicyEngine, type Grant } from './compile.js';
export { PolicyError, type PolicyIssue } from './policy-error.js';
export { PermissionCache, type PermissionCacheOptions } from './cache.js';
export { explain, describeAccess } from './explain.js';
export { identityFromFields, parsePolicyCases, runPolicyCases, type IdentityFields, type PolicyCase } from './test-cases.js';
export { formatKey, prefixEnd, requestInterval, type KeyInterval } from './key-range.js';
export { PLACEHOLDERS } from './templates.js';
export { RESERVED_DENIAL, RESERVED_PREFIX, touchesReserved } from './reserved.js';
