/**
 * `etcdgate explain`: reads its arguments, loads the policy (from a full config or a
 * policy file alone), builds the request (src/cli/explain-request.ts), decodes it with
 * the proxy's own decoder and prints the decision with the rule behind it.
 *
 * The options are one table (EXPLAIN_OPTIONS); adding an option is one entry there and
 * one field in toExplainArgs. Exit statuses: 0 allowed, 3 denied, 2 a usage, config or
 * policy problem (thrown as UsageError, ConfigError or PolicyError for the caller).
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config/load.js';
import { addressBits } from '../network/cidr.js';
import { DecodeError, type DecodedRequest } from '../etcd/types.js';
import { explainRequest as explainDecoded } from '../policy/explain.js';
import { loadConfiguredPolicy } from '../config/policy-file.js';
import type { CompiledPolicy } from '../policy/types.js';
import { explainIdentity, explainRequest, type ExplainArgs } from './explain-request.js';
import { UsageError } from './usage-error.js';

/** Exit status of an explain whose request is allowed / denied. */
export const EXPLAIN_ALLOWED = 0;
export const EXPLAIN_DENIED = 3;

/** The command line of explain, in --help. */
export const EXPLAIN_USAGE = `etcdgate explain (--config FILE | --policy FILE)
                 (--cert CLIENT.pem | --cn NAME [--o ORG]... [--ou UNIT]... [--dns NAME]... [--uri URI]...)
                 [--source ADDRESS] --method METHOD [request options]
  Request options, by method (an option a method does not take is an error):
    Range, DeleteRange, Watch  --key KEY [--range-end END | --prefix | --from-key]
    Put                        --key KEY [--prev-kv] [--lease ID] [--lease-key KEY]...
    DeleteRange                also [--prev-kv]
    Txn                        --txn 'compare: KEY [TARGET] [RANGE], ...; success: OP, ...; failure: OP, ...'
                               or --txn-file FILE (YAML/JSON, nested txns allowed); [--lease ID] [--lease-key KEY]...
                                 TARGET version|create|mod|value|lease; RANGE prefix|from-key|end=KEY
                                 OP range KEY [RANGE] | put KEY [prev_kv] [lease] | delete KEY [RANGE] [prev_kv]
                                 e.g. --txn 'compare: /a mod; success: put /a; failure: range /b prefix'
    LeaseRevoke, LeaseKeepAlive [--lease ID] [--lease-key KEY]...
    LeaseTimeToLive            [--lease ID] [--keys [--lease-key KEY]...]
    Alarm                      [--alarm get|activate|deactivate] (default get)
    Lock, Campaign             --key NAME [--lease ID] [--lease-key KEY]...
    Leader, Observe            --key NAME
    Unlock                     --key LOCK-KEY
    Proclaim                   --key LEADER-KEY [--lease ID] [--lease-key KEY]...
    Resign                     --key LEADER-KEY
    any other method           nothing: its needs are fixed (a capability, or only a binding)
  --source is the client's IP address (bindings with match.source need it to match).
  --lease-key names the keys attached to the lease (etcdgate asks etcd for them; explain is
  told): each needs write (read for LeaseTimeToLive --keys). No --lease-key: an empty lease.
  Exit status: 0 allowed, 3 denied, 2 bad arguments, config or policy, 1 other errors.`;

/** Every option explain takes, in node:util parseArgs form. */
export const EXPLAIN_OPTIONS = {
  config: { type: 'string' },
  policy: { type: 'string' },
  cert: { type: 'string' },
  cn: { type: 'string' },
  o: { type: 'string', multiple: true, default: [] },
  ou: { type: 'string', multiple: true, default: [] },
  dns: { type: 'string', multiple: true, default: [] },
  uri: { type: 'string', multiple: true, default: [] },
  method: { type: 'string' },
  key: { type: 'string' },
  'range-end': { type: 'string' },
  prefix: { type: 'boolean', default: false },
  'from-key': { type: 'boolean', default: false },
  'prev-kv': { type: 'boolean', default: false },
  lease: { type: 'string' },
  'lease-key': { type: 'string', multiple: true, default: [] },
  keys: { type: 'boolean', default: false },
  alarm: { type: 'string' },
  txn: { type: 'string' },
  'txn-file': { type: 'string' },
  source: { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** explain's options as parsed. */
export type ExplainValues = ReturnType<typeof parseExplainArgv>;

/** Parses explain's argv; an unknown option or a missing value is a UsageError. */
export function parseExplainArgv(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: EXPLAIN_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error: unknown) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${EXPLAIN_USAGE}`);
  }
}

/** The parsed values as ExplainArgs (absent options left out). */
export function toExplainArgs(values: ExplainValues, method: string): ExplainArgs {
  const optional = <K extends string>(name: K, value: string | undefined): { [P in K]?: string } =>
    (value === undefined ? {} : { [name]: value }) as { [P in K]?: string };
  return {
    o: values.o,
    ou: values.ou,
    dns: values.dns,
    uri: values.uri,
    method,
    prefix: values.prefix,
    fromKey: values['from-key'],
    prevKv: values['prev-kv'],
    leaseKeys: values['lease-key'],
    keys: values.keys,
    ...optional('cert', values.cert),
    ...optional('cn', values.cn),
    ...optional('key', values.key),
    ...optional('rangeEnd', values['range-end']),
    ...optional('lease', values.lease),
    ...optional('alarm', values.alarm),
    ...optional('txn', values.txn),
    ...optional('txnFile', values['txn-file']),
  };
}

/** The policy of --config FILE (its `policy`) or of --policy FILE; exactly one must be given. */
function policyOf(values: ExplainValues): CompiledPolicy {
  if ((values.config === undefined) === (values.policy === undefined)) {
    throw new UsageError(`explain needs --config FILE or --policy FILE (one of them)\n${EXPLAIN_USAGE}`);
  }
  if (values.policy !== undefined) return loadConfiguredPolicy({ kind: 'file', path: path.resolve(values.policy) });
  return loadConfiguredPolicy(loadConfig(values.config ?? '').policy);
}

/**
 * Runs explain on `argv` (the arguments after `explain`), writes the explanation with
 * `write` and returns the exit status (EXPLAIN_ALLOWED or EXPLAIN_DENIED).
 */
export function explainCommand(argv: readonly string[], write: (text: string) => void): number {
  const values = parseExplainArgv(argv);
  if (values.method === undefined) throw new UsageError(`explain needs --method METHOD\n${EXPLAIN_USAGE}`);
  const args = toExplainArgs(values, values.method);
  const policy = policyOf(values);
  if (values.source !== undefined && addressBits(values.source) === undefined) throw new UsageError(`--source must be an IP address, got ${values.source}`);
  const identity = explainIdentity(args);
  const request = explainRequest(args);
  let decoded: DecodedRequest;
  try {
    decoded = request.spec.decode(request.message);
  } catch (error: unknown) {
    // The proxy refuses such a request (INVALID_ARGUMENT) before any decision.
    if (error instanceof DecodeError) throw new UsageError(`the ${request.spec.method} request described is malformed: ${error.message}`);
    throw error;
  }
  const result = explainDecoded(policy, identity, decoded, request.leaseKeys, values.source);
  write(`method: ${request.spec.path}\n${result.lines.join('\n')}\n`);
  return result.decision.allowed ? EXPLAIN_ALLOWED : EXPLAIN_DENIED;
}
