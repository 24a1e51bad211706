/**
 * The benchmark's policy: a few hundred rules shaped like a real deployment (one broad
 * kube-apiserver grant with carve-outs, many narrow per-team grants), so authorization
 * cost is measured against a policy of realistic size rather than a single rule.
 */
import { stringify } from 'yaml';

/** YAML text of the benchmark policy; `teams` sets its size (about 2 rules per team plus ~150). */
export function benchPolicy(teams = 150): string {
  const kubeKeys: Record<string, string>[] = [
    { prefix: '/registry/', access: 'readwrite' },
    { key: 'compact_rev_key', access: 'readwrite' },
  ];
  for (let i = 0; i < 100; i++) kubeKeys.push({ prefix: `/registry-mirror/group-${i}/`, access: 'read' });
  const deny: Record<string, string>[] = [];
  for (let i = 0; i < 50; i++) deny.push({ prefix: `/registry/forbidden-${i}/` });
  const roles: Record<string, unknown> = {
    'kube-apiserver': { keys: kubeKeys, deny, capabilities: ['lease', 'status', 'compact'] },
  };
  const bindings: Record<string, unknown>[] = [{ match: { cn: 'kube-apiserver-etcd-client' }, roles: ['kube-apiserver'] }];
  for (let i = 0; i < teams; i++) {
    roles[`team-${i}`] = {
      keys: [
        { prefix: `/teams/${i}/`, access: 'readwrite' },
        { key: `/config/team-${i}`, access: 'read' },
      ],
    };
    bindings.push({ match: { cn: `team-${i}` }, roles: [`team-${i}`] });
  }
  return stringify({ roles, bindings });
}

/** Number of key rules benchPolicy(teams) holds. */
export function benchPolicyRules(teams = 150): number {
  return 2 + 100 + 50 + teams * 2;
}
