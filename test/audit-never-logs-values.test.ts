/**
 * The audit trail and the operational log never contain a value, password or token.
 * etcdgate runs as a real process (node dist/src/main.js) at log level trace, with the
 * audit trail on stdout and then in a file; unique random secrets go through every path
 * a value or credential can take (Put, both Txn branches, Put with a lease, election
 * Campaign and Proclaim, UserAdd, UserChangePassword, Authenticate, `token` and
 * `authorization` headers, Range and Watch responses carrying the values back). Then no
 * secret, nor its base64 or hex, may appear in anything the process wrote, while the
 * keys of those calls must (proving the records were written).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import { gatewayDir } from './support/gateway-process.js';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient, rawUnary, rawWatch } from './support/raw-client.js';

const stack = useGatewayStack({ gateway: false });

/** A secret nobody could write by accident: 24 random bytes as hex, tagged. */
function secret(): string {
  return `SECRET${randomBytes(24).toString('hex')}`;
}

/**
 * Every way `text` could show up encoded: itself, its hex, and its base64 at each of the
 * three alignments it can have inside a longer base64'd buffer (edge characters, which
 * depend on neighbouring bytes, are trimmed).
 */
function forms(text: string): string[] {
  const bytes = Buffer.from(text, 'utf8');
  const out = [text, bytes.toString('hex'), bytes.toString('hex').toUpperCase()];
  for (let shift = 0; shift < 3; shift += 1) {
    const b64 = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    // Characters touched by the padding bytes or by whatever follows are unreliable.
    out.push(b64.slice(Math.ceil((shift * 4) / 3) + 1, -4));
  }
  return out;
}

const b = (text: string): Buffer => Buffer.from(text, 'utf8');

interface Exercise {
  readonly secrets: readonly string[];
  readonly keys: readonly string[];
}

/** Sends every value- and credential-carrying call through `endpoint` as root. */
async function exercise(endpoint: string, run: string): Promise<Exercise> {
  const secrets: string[] = [];
  const keys: string[] = [];
  const fresh = (): string => {
    const s = secret();
    secrets.push(s);
    return s;
  };
  const key = (name: string): string => {
    const k = `/audit-secrets/${run}/${name}`;
    keys.push(k);
    return k;
  };
  const client = rawClient(endpoint, stack.pki, 'root');
  const credentials = new grpc.Metadata();
  credentials.set('token', fresh());
  credentials.set('authorization', `Bearer ${fresh()}`);
  try {
    // A watcher on the run's prefix: every value written below comes back in its events.
    const watch = rawWatch(client, credentials);
    let events = 0;
    const created = new Promise<void>((resolve) => {
      watch.on('data', (chunk: Buffer) => {
        const response = decode('etcdserverpb.WatchResponse', chunk);
        if (response['created'] === true) resolve();
        events += (response['events'] as unknown[] | undefined)?.length ?? 0;
      });
    });
    const prefix = `/audit-secrets/${run}/`;
    watch.write(encode('etcdserverpb.WatchRequest', { create_request: { key: b(prefix), range_end: b(`/audit-secrets/${run}0`), prev_kv: true } }));
    await created;

    const putKey = key('put');
    await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: b(putKey), value: b(fresh()), prev_kv: true }], 'PutResponse', credentials);
    // Overwrite, so prev_kv returns the first secret too.
    await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: b(putKey), value: b(fresh()), prev_kv: true }], 'PutResponse', credentials);
    await callEtcd(client, 'KV', 'Range', ['RangeRequest', { key: b(putKey) }], 'RangeResponse', credentials);

    const txnKey = key('txn');
    const txnOther = key('txn-other');
    for (const holds of [true, false]) {
      await callEtcd(
        client,
        'KV',
        'Txn',
        [
          'TxnRequest',
          {
            compare: [{ key: b(txnKey), target: 'VERSION', result: holds ? 'GREATER' : 'LESS', version: -1 }],
            success: [{ request_put: { key: b(txnKey), value: b(fresh()) } }],
            failure: [{ request_put: { key: b(txnOther), value: b(fresh()) } }],
          },
        ],
        'TxnResponse',
        credentials,
      );
    }

    const grant = await callEtcd(client, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 60 }], 'LeaseGrantResponse', credentials);
    const lease = String(grant['ID']);
    await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: b(key('leased')), value: b(fresh()), lease }], 'PutResponse', credentials);

    const election = key('election');
    const campaign = decode(
      'v3electionpb.CampaignResponse',
      await rawUnary(client, '/v3electionpb.Election/Campaign', encode('v3electionpb.CampaignRequest', { name: b(election), lease, value: b(fresh()) }), credentials),
    );
    await rawUnary(client, '/v3electionpb.Election/Proclaim', encode('v3electionpb.ProclaimRequest', { leader: campaign['leader'], value: b(fresh()) }), credentials);

    const user = `audit-user-${run}`;
    await callEtcd(client, 'Auth', 'UserAdd', ['AuthUserAddRequest', { name: user, password: fresh() }], 'AuthUserAddResponse', credentials);
    await callEtcd(client, 'Auth', 'UserChangePassword', ['AuthUserChangePasswordRequest', { name: user, password: fresh() }], 'AuthUserChangePasswordResponse', credentials);
    // etcd's auth is disabled, so this fails; the password must stay out of the logs all the same.
    await expect(
      callEtcd(client, 'Auth', 'Authenticate', ['AuthenticateRequest', { name: user, password: fresh() }], 'AuthenticateResponse', credentials),
    ).rejects.toMatchObject({ code: expect.any(Number) as unknown });
    keys.push(user);

    // Events for put x2, txn x2, leased, election campaign + proclaim: wait until they are all relayed.
    const deadline = Date.now() + 10_000;
    while (events < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events).toBeGreaterThanOrEqual(7);
    watch.cancel();
  } finally {
    client.close();
  }
  return { secrets, keys };
}

/** Fails listing which secrets (by position, never by value) leaked, and where. */
function expectNoSecret(where: string, output: string, secrets: readonly string[]): void {
  const leaked: string[] = [];
  secrets.forEach((s, i) => {
    for (const form of forms(s)) {
      if (form.length > 8 && output.includes(form)) leaked.push(`secret #${i} in ${where}`);
    }
  });
  expect(leaked).toEqual([]);
}

it('the leak detector finds a secret base64-encoded inside a larger buffer, at any alignment', () => {
  const s = secret();
  for (const prefix of ['', 'a', 'ab', 'abc']) {
    const encoded = Buffer.from(`${prefix}${s}tail`).toString('base64');
    expect(forms(s).some((form) => encoded.includes(form)), prefix).toBe(true);
  }
  expect(forms(s).some((form) => Buffer.from(`x${s}`).toString('hex').includes(form))).toBe(true);
});

describe.each([
  { sink: 'stdout' as const },
  { sink: 'file' as const },
])('a trace-level etcdgate with the $sink sink', ({ sink }) => {
  it('writes the keys of every call and never a value, password or token', async () => {
    const dir = await gatewayDir();
    const auditFile = path.join(dir, 'audit.jsonl');
    const gate = await stack.startGatewayProcess({
      dir,
      logLevel: 'trace',
      audit: { sink: sink === 'stdout' ? 'stdout' : `file:${auditFile}` },
    });
    let result: Exercise;
    let auditText = '';
    try {
      result = await exercise(gate.endpoint, `${sink}-${randomBytes(4).toString('hex')}`);
      gate.child.kill('SIGTERM');
      expect((await gate.exited).code).toBe(0);
      if (sink === 'file') auditText = readFileSync(auditFile, 'utf8');
    } finally {
      await gate.stop();
    }
    const everything = `${gate.stdout()}\n${gate.stderr()}\n${auditText}`;
    expectNoSecret('stdout', gate.stdout(), result.secrets);
    expectNoSecret('stderr', gate.stderr(), result.secrets);
    expectNoSecret('audit file', auditText, result.secrets);
    // The process did log (at trace level), so "nothing in stderr" is not for want of output.
    expect(gate.stderr()).toContain('etcdgate listening');
    const records = (sink === 'stdout' ? gate.stdout() : auditText)
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { event: { action: string } });
    const actions = new Set(records.map((r) => r.event.action));
    for (const action of ['etcd.kv.put', 'etcd.kv.txn', 'etcd.kv.range', 'etcd.lease.lease_grant', 'etcd.election.campaign', 'etcd.election.proclaim', 'etcd.auth.user_add', 'etcd.auth.user_change_password', 'etcd.auth.authenticate', 'etcd.watch.watch']) {
      expect(actions, action).toContain(action);
    }
    for (const key of result.keys) expect(everything, key).toContain(key);
  });
});
