/**
 * Turns `etcdgate explain` arguments into what the policy decides on: the identity (from
 * a certificate file or from subject fields) and the accesses of one RPC. Key methods
 * take --key/--range-end; every other method is decoded from an empty request through
 * the method table, so explain reports exactly what the proxy would check.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { METHODS } from '../etcd/methods.js';
import type { Access } from '../policy/types.js';
import { identityFromFields } from '../policy/test-cases.js';
import { identityFromDer, type Identity } from '../tls/identity.js';

export interface ExplainArgs {
  readonly cert?: string;
  readonly cn?: string;
  readonly o: readonly string[];
  readonly ou: readonly string[];
  readonly dns: readonly string[];
  readonly uri: readonly string[];
  readonly method: string;
  readonly key?: string;
  readonly rangeEnd?: string;
}

/** The identity named on the command line. */
export function explainIdentity(args: ExplainArgs): Identity {
  if (args.cert !== undefined) return identityFromDer(new X509Certificate(readFileSync(args.cert)).raw);
  return identityFromFields({ cn: args.cn ?? '', o: [...args.o], ou: [...args.ou], dns: [...args.dns], uri: [...args.uri] });
}

const KEY_METHODS: Readonly<Record<string, 'read' | 'write' | 'read-write'>> = {
  range: 'read',
  get: 'read',
  watch: 'read',
  put: 'write',
  deleterange: 'write',
  delete: 'write',
};

/** The accesses one RPC needs; throws with the list of known methods for an unknown one. */
export function explainAccesses(args: ExplainArgs): Access[] {
  const name = args.method.toLowerCase();
  const kind = KEY_METHODS[name];
  if (kind !== undefined) {
    if (args.key === undefined) throw new Error(`--key is required for ${args.method}`);
    const key = Buffer.from(args.key, 'utf8');
    const rangeEnd = Buffer.from(name === 'put' ? '' : (args.rangeEnd ?? ''), 'utf8');
    return [{ kind: kind === 'read' ? 'read' : 'write', key, rangeEnd }];
  }
  const spec = [...METHODS.values()].find((candidate) => candidate.method.toLowerCase() === name);
  if (spec === undefined) {
    const known = ['Range', 'Put', 'DeleteRange', 'Watch', ...[...METHODS.values()].map((m) => m.method)];
    throw new Error(`unknown method ${args.method}; known: ${[...new Set(known)].join(', ')}`);
  }
  return [...spec.decode(Buffer.alloc(0)).accesses];
}
