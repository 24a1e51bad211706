/**
 * `etcdgate policy explain`: why an identity may or may not do something, in lines an
 * operator can read. Pure; the CLI prints the lines.
 */
import type { Identity } from '../tls/identity.js';
import type { Access, CompiledPolicy, Decision } from './types.js';
import { IdentityPermissions } from './compile.js';
import { formatKey, isNulByte, prefixEnd } from './key-range.js';

/** Renders an access for humans, recognising etcd's prefix and from-key forms. */
export function describeAccess(access: Access): string {
  switch (access.kind) {
    case 'authenticated':
      return 'authenticated caller';
    case 'capability':
      return `capability ${access.capability}`;
    default: {
      const { key, rangeEnd } = access;
      if (rangeEnd.length === 0) return `${access.kind} key ${formatKey(key)}`;
      if (isNulByte(rangeEnd)) return isNulByte(key) ? `${access.kind} all keys` : `${access.kind} keys from ${formatKey(key)}`;
      const end = prefixEnd(key);
      if (end !== null && key.length > 0 && Buffer.compare(end, rangeEnd) === 0) return `${access.kind} prefix ${formatKey(key)}`;
      return `${access.kind} range [${formatKey(key)}, ${formatKey(rangeEnd)})`;
    }
  }
}

function describeDecision(decision: Decision): string {
  const verdict = decision.allowed ? 'ALLOW' : 'DENY';
  const by = decision.role !== undefined ? ` by role ${decision.role}` : '';
  const rule = decision.rule !== undefined ? ` (${decision.rule})` : '';
  return `${verdict}: ${decision.reason}${by}${rule}`;
}

function list(values: readonly string[]): string {
  return values.length === 0 ? '-' : values.join(', ');
}

/**
 * Explains the decision on `accesses` for `identity` connecting from `source` (an IP
 * address; bindings with match.source never match without one): the decision, bound
 * roles and readable lines.
 */
export function explain(
  policy: CompiledPolicy,
  identity: Identity,
  accesses: readonly Access[],
  source?: string,
): { decision: Decision; roles: readonly string[]; lines: string[] } {
  const permissions = policy.permissionsFor(identity, source);
  const detailed = permissions instanceof IdentityPermissions ? permissions : undefined;
  const lines: string[] = [
    `policy version ${policy.version}`,
    `identity: cn=${identity.cn === '' ? '-' : identity.cn} o=[${list(identity.o)}] ou=[${list(identity.ou)}] dns=[${list(identity.dns)}] uri=[${list(identity.uri)}]`,
    `          serial=${identity.serial === '' ? '-' : identity.serial} fingerprint=${identity.fingerprint === '' ? '-' : identity.fingerprint}`,
  ];
  if (source !== undefined) lines.push(`source: ${source}`);
  else if (policy.usesSource === true) lines.push('source: not given (bindings with match.source do not match; pass --source ADDRESS)');
  if (permissions.roles.length === 0) {
    lines.push('bindings: none match, so every access is denied');
  } else {
    if (detailed !== undefined) lines.push(`bindings: ${list(detailed.bindings)}`);
    lines.push(`roles: ${list(permissions.roles)}`);
    if (detailed !== undefined) {
      lines.push('effective grants:');
      for (const line of detailed.describe()) lines.push(`  ${line}`);
    }
  }
  accesses.forEach((access, i) => {
    lines.push(`request ${i + 1}: ${describeAccess(access)} -> ${describeDecision(permissions.check([access]))}`);
  });
  const decision = permissions.check(accesses);
  lines.push(`decision: ${describeDecision(decision)}`);
  return { decision, roles: permissions.roles, lines };
}
