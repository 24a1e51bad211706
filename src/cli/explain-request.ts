/**
 * Turns `etcdgate explain` arguments into what the proxy decides on: the identity (from
 * a certificate file or from subject fields) and one real request message of the named
 * method, encoded from the arguments and then decoded by the method table's own decoder
 * (src/etcd/methods.ts). So explain checks exactly what the proxy checks for the same
 * request: Txn compares and both branches, prev_kv, the keys attached to a lease.
 *
 * Each method says which arguments it takes; an argument it does not take is an error
 * rather than silently ignored, and a method this table does not describe is refused.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ALL_KEYS_FROM, prefixEnd } from '../etcd/keys.js';
import { METHODS } from '../etcd/methods.js';
import type { MethodSpec } from '../etcd/types.js';
import { WireWriter } from '../etcd/wire-writer.js';
import { identityFromFields } from '../policy/test-cases.js';
import { identityFromDer, type Identity } from '../tls/identity.js';
import { UsageError } from './usage-error.js';
import { encodeTxn, parseCompactTxn, parseTxnFile, txnUsesLease, type TxnDescription } from './txn-description.js';

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
  readonly prefix: boolean;
  readonly fromKey: boolean;
  readonly prevKv: boolean;
  /** Lease ID, decimal or 0x-prefixed hex. */
  readonly lease?: string;
  /** Keys attached to the lease the request names (what the proxy would ask etcd). */
  readonly leaseKeys: readonly string[];
  /** LeaseTimeToLive with keys=true. */
  readonly keys: boolean;
  /** Maintenance.Alarm action. */
  readonly alarm?: string;
  readonly txn?: string;
  readonly txnFile?: string;
}

/** The request to explain: which method, the encoded message, and the keys of its lease. */
export interface ExplainRequest {
  readonly spec: MethodSpec;
  readonly message: Buffer;
  readonly leaseKeys: readonly Buffer[];
}

/** The identity named on the command line. */
export function explainIdentity(args: ExplainArgs): Identity {
  if (args.cert !== undefined) {
    if (args.cn !== undefined || args.o.length + args.ou.length + args.dns.length + args.uri.length > 0) {
      throw new UsageError('give either --cert or subject fields (--cn, --o, --ou, --dns, --uri), not both');
    }
    return identityFromDer(new X509Certificate(readFileSync(args.cert)).raw);
  }
  return identityFromFields({ cn: args.cn ?? '', o: [...args.o], ou: [...args.ou], dns: [...args.dns], uri: [...args.uri] });
}

/** Request arguments a method may take (the identity, --config/--policy and --method always apply). */
type Arg = 'key' | 'range' | 'prevKv' | 'lease' | 'keys' | 'alarm' | 'txn';

const ARG_FLAGS: Readonly<Record<Arg, string>> = {
  key: '--key',
  range: '--range-end/--prefix/--from-key',
  prevKv: '--prev-kv',
  lease: '--lease/--lease-key',
  keys: '--keys',
  alarm: '--alarm',
  txn: '--txn/--txn-file',
};

/** The arguments of `args` that were given. */
function given(args: ExplainArgs): Set<Arg> {
  const out = new Set<Arg>();
  if (args.key !== undefined) out.add('key');
  if (args.rangeEnd !== undefined || args.prefix || args.fromKey) out.add('range');
  if (args.prevKv) out.add('prevKv');
  if (args.lease !== undefined || args.leaseKeys.length > 0) out.add('lease');
  if (args.keys) out.add('keys');
  if (args.alarm !== undefined) out.add('alarm');
  if (args.txn !== undefined || args.txnFile !== undefined) out.add('txn');
  return out;
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

function requireKey(args: ExplainArgs, method: string, what = 'KEY'): Buffer {
  if (args.key === undefined) throw new UsageError(`${method} needs --key ${what}`);
  return utf8(args.key);
}

/** The range end named by --range-end, --prefix or --from-key (at most one), else empty. */
function rangeEnd(args: ExplainArgs, key: Buffer): Buffer {
  const count = Number(args.rangeEnd !== undefined) + Number(args.prefix) + Number(args.fromKey);
  if (count > 1) throw new UsageError('give at most one of --range-end, --prefix, --from-key');
  if (args.prefix) return prefixEnd(key);
  if (args.fromKey) return Buffer.from(ALL_KEYS_FROM);
  return args.rangeEnd === undefined ? Buffer.alloc(0) : utf8(args.rangeEnd);
}

const INT64_MAX = (1n << 63n) - 1n;
/** The lease ID explain uses when only --lease-key is given (any non-zero ID: the keys are what is checked). */
const DEFAULT_LEASE_ID = 1n;

/** The lease the request names: --lease, or a stand-in when only its keys are given; 0n for none. */
function leaseId(args: ExplainArgs): bigint {
  if (args.lease === undefined) return args.leaseKeys.length > 0 ? DEFAULT_LEASE_ID : 0n;
  const text = args.lease.trim();
  const valid = /^(0x[0-9a-f]+|[0-9]+)$/iu.test(text);
  const id = valid ? BigInt(text) : 0n;
  if (!valid || id <= 0n || id > INT64_MAX) throw new UsageError(`--lease must be a lease ID (decimal, or hex with 0x), got ${args.lease}`);
  return id;
}

function txnOf(args: ExplainArgs): TxnDescription {
  if (args.txn !== undefined && args.txnFile !== undefined) throw new UsageError('give --txn or --txn-file, not both');
  if (args.txn !== undefined) return parseCompactTxn(args.txn);
  if (args.txnFile !== undefined) return parseTxnFile(readFileSync(args.txnFile, 'utf8'));
  throw new UsageError("Txn needs --txn 'compare: ...; success: ...; failure: ...' or --txn-file FILE");
}

const ALARM_ACTIONS = ['get', 'activate', 'deactivate'] as const;

/** How explain builds one method's request message from the arguments. */
interface RequestRecipe {
  readonly args: readonly Arg[];
  readonly encode: (args: ExplainArgs, method: string) => Buffer;
}

/** A request whose content no decision depends on: the method's fixed needs. */
const FIXED: RequestRecipe = { args: [], encode: () => Buffer.alloc(0) };

/** { name = 1, lease = 2 }: Lock.Lock and Election.Campaign. */
const RECIPE_ENTRY: RequestRecipe = {
  args: ['key', 'lease'],
  encode: (args, method) => new WireWriter().bytes(1, requireKey(args, method, 'NAME')).int(2, leaseId(args)).finish(),
};

/** { name = 1 }: Election.Leader and Observe. */
const ELECTION_NAME: RequestRecipe = {
  args: ['key'],
  encode: (args, method) => new WireWriter().bytes(1, requireKey(args, method, 'NAME')).finish(),
};

/** { leader = 1: LeaderKey { key = 2, lease = 4 } }: Election.Proclaim and Resign (the key Campaign returned). */
function leaderKeyRecipe(withLease: boolean): RequestRecipe {
  return {
    args: withLease ? ['key', 'lease'] : ['key'],
    encode: (args, method) => {
      const leader = new WireWriter().bytes(2, requireKey(args, method, 'LEADER-KEY')).int(4, withLease ? leaseId(args) : 0n).finish();
      return new WireWriter().bytes(1, leader, true).finish();
    },
  };
}

/** { ID = 1 }: LeaseRevoke and LeaseKeepAlive always name a lease. */
const LEASE_ID: RequestRecipe = {
  args: ['lease'],
  encode: (args) => new WireWriter().int(1, leaseId(args) === 0n ? DEFAULT_LEASE_ID : leaseId(args)).finish(),
};

/**
 * Methods whose decision depends on the request's content, by method name; every other
 * method of the table has fixed needs (a capability, or only a binding) and is FIXED.
 * Field numbers are etcd's (api/etcdserverpb/rpc.proto, v3lock.proto, v3election.proto).
 */
const RECIPES: Readonly<Record<string, RequestRecipe>> = {
  Range: {
    args: ['key', 'range'],
    encode: (args, method) => {
      const key = requireKey(args, method);
      return new WireWriter().bytes(1, key).bytes(2, rangeEnd(args, key)).finish();
    },
  },
  Put: {
    args: ['key', 'prevKv', 'lease'],
    encode: (args, method) => new WireWriter().bytes(1, requireKey(args, method)).int(3, leaseId(args)).int(4, args.prevKv).finish(),
  },
  DeleteRange: {
    args: ['key', 'range', 'prevKv'],
    encode: (args, method) => {
      const key = requireKey(args, method);
      return new WireWriter().bytes(1, key).bytes(2, rangeEnd(args, key)).int(3, args.prevKv).finish();
    },
  },
  Txn: {
    args: ['txn', 'lease'],
    encode: (args) => {
      const txn = txnOf(args);
      if (args.leaseKeys.length > 0 && !txnUsesLease(txn)) throw new UsageError('--lease-key is given but no put of the Txn names the lease (add "lease" to it)');
      return encodeTxn(txn, txnUsesLease(txn) && leaseId(args) === 0n ? DEFAULT_LEASE_ID : leaseId(args));
    },
  },
  Watch: {
    args: ['key', 'range'],
    encode: (args, method) => {
      // An empty key watches from "\x00" (etcd's rule): --key "" is allowed here.
      const key = args.key === undefined ? undefined : utf8(args.key);
      if (key === undefined) throw new UsageError(`${method} needs --key KEY`);
      const create = new WireWriter().bytes(1, key).bytes(2, rangeEnd(args, key)).finish();
      return new WireWriter().bytes(1, create, true).finish();
    },
  },
  LeaseRevoke: LEASE_ID,
  LeaseKeepAlive: LEASE_ID,
  LeaseTimeToLive: {
    args: ['lease', 'keys'],
    encode: (args) => {
      if (args.leaseKeys.length > 0 && !args.keys) throw new UsageError('--lease-key only matters for LeaseTimeToLive with --keys');
      return new WireWriter().int(1, leaseId(args) === 0n ? DEFAULT_LEASE_ID : leaseId(args)).int(2, args.keys).finish();
    },
  },
  Alarm: {
    args: ['alarm'],
    encode: (args) => {
      const action = ALARM_ACTIONS.indexOf((args.alarm ?? 'get').toLowerCase() as (typeof ALARM_ACTIONS)[number]);
      if (action === -1) throw new UsageError(`--alarm must be one of ${ALARM_ACTIONS.join(', ')}`);
      // An ACTIVATE or DEACTIVATE names the NOSPACE alarm; which alarm does not change the decision.
      return new WireWriter().int(1, action).int(3, action === 0 ? 0 : 1).finish();
    },
  },
  Lock: RECIPE_ENTRY,
  Unlock: {
    args: ['key'],
    encode: (args, method) => new WireWriter().bytes(1, requireKey(args, method, 'LOCK-KEY')).finish(),
  },
  Campaign: RECIPE_ENTRY,
  Proclaim: leaderKeyRecipe(true),
  Resign: leaderKeyRecipe(false),
  Leader: ELECTION_NAME,
  Observe: ELECTION_NAME,
  // A server stream, but its needs are fixed (the snapshot capability).
  Snapshot: FIXED,
};

/** Methods explain accepts a name for: the table's, plus etcdctl's words for the KV ones. */
const ALIASES: Readonly<Record<string, string>> = { get: 'Range', delete: 'DeleteRange', del: 'DeleteRange' };

/** The method table's entry for a method name (case-insensitive, "Service/Method" or just "Method"). */
function findMethod(name: string): MethodSpec {
  const wanted = (ALIASES[name.toLowerCase()] ?? name).toLowerCase();
  const matches = [...METHODS.values()].filter((m) => m.method.toLowerCase() === wanted || `${m.service}/${m.method}`.toLowerCase() === wanted);
  const spec = matches[0];
  if (spec === undefined || matches.length > 1) {
    const known = [...new Set([...METHODS.values()].map((m) => m.method))].join(', ');
    throw new UsageError(`${spec === undefined ? 'unknown' : 'ambiguous'} method ${name}; known: ${known}`);
  }
  return spec;
}

/** The recipe of a method; a method with a stream shape explain cannot model is refused. */
function recipeOf(spec: MethodSpec): RequestRecipe {
  const recipe = RECIPES[spec.method];
  if (recipe !== undefined) return recipe;
  if (spec.shape !== 'unary') throw new UsageError(`explain cannot describe a ${spec.method} request`);
  return FIXED;
}

/** Builds the request to explain; throws UsageError for arguments the method does not take. */
export function explainRequest(args: ExplainArgs): ExplainRequest {
  const spec = findMethod(args.method);
  const recipe = recipeOf(spec);
  const extra = [...given(args)].filter((arg) => !recipe.args.includes(arg));
  if (extra.length > 0) {
    throw new UsageError(`${spec.method} does not take ${extra.map((arg) => ARG_FLAGS[arg]).join(', ')}${recipe === FIXED ? ' (its needs do not depend on the request)' : ''}`);
  }
  return { spec, message: recipe.encode(args, spec.method), leaseKeys: args.leaseKeys.map(utf8) };
}

/** Every method explain can describe, for --help and tests. */
export function explainableMethods(): string[] {
  return [...METHODS.values()].filter((spec) => RECIPES[spec.method] !== undefined || spec.shape === 'unary').map((spec) => spec.method);
}
