/**
 * The Cluster service's proxy side. MemberList is answered with etcdgate's advertised
 * URLs in place of the members' client URLs (method table column `rewrite:
 * 'member-urls'`), so clients that sync their endpoints from it (etcdctl, kube-apiserver's
 * client with auto-sync) keep talking to the proxy. Member changes are plain unary calls
 * behind the `members` capability.
 */
import { rewriteMemberListUrls } from '../etcd/responses.js';
import type { MethodSpec } from '../etcd/types.js';

/** etcd's answer as the client gets it, by the method's `rewrite` column. */
export function memberUrlRewrite(advertiseClientUrls: readonly string[]): (spec: MethodSpec, response: Buffer) => Buffer {
  return (spec, response) => (spec.rewrite === 'member-urls' ? rewriteMemberListUrls(response, advertiseClientUrls) : response);
}
