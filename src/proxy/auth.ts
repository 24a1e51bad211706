/**
 * The Auth service's proxy side: every Auth RPC is a plain unary call behind the `auth`
 * capability (AuthStatus is informational). A token etcd hands out through Authenticate
 * changes nothing here: etcdgate drops `token` and `authorization` metadata, and the
 * caller is always the identity of its certificate.
 */
import type { FlowFactory } from './services.js';

export function authFlows(): Readonly<Record<string, FlowFactory>> {
  return {};
}
