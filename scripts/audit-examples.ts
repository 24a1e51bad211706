/**
 * Produces docs/audit-examples.md: one real audit record of every kind, written by a
 * real etcdgate in front of a real etcd (not hand-written), so the documented examples
 * cannot drift from what etcdgate writes. Run: `npm run audit-examples`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { encode } from '../test/support/etcd-messages.js';
import { startEtcd } from '../test/support/etcd.js';
import { startTestGateway } from '../test/support/gateway.js';
import { makePki } from '../test/support/pki.js';
import { callEtcd, collectWatch, rawClient, rawUnary, rawWatch } from '../test/support/raw-client.js';
import { startStallRelay } from '../test/support/stall-relay.js';

const POLICY = {
  roles: {
    tenant: { keys: [{ prefix: '/tenants/{cn}/', access: 'readwrite' }], capabilities: ['lease'] },
    backup: { capabilities: ['snapshot', 'status'] },
  },
  bindings: [
    { match: { cn: ['tenant-a', 'tenant-b'] }, roles: ['tenant'] },
    { match: { o: 'backup-operators' }, roles: ['backup'] },
  ],
};

const passThrough = (b: Buffer): Buffer => b;
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

const README = new URL('../README.md', import.meta.url);
const START = '<!-- audit-examples:start -->';
const END = '<!-- audit-examples:end -->';

/** The distinctive fields of a record, on one line, for the README. */
function abbreviate(record: Record<string, unknown>): string {
  const event = record['event'] as Record<string, unknown>;
  const short: Record<string, unknown> = {
    'etcdgate.event_kind': (record['etcdgate'] as Record<string, unknown>)['event_kind'],
    'event.action': event['action'],
    'event.outcome': event['outcome'],
  };
  const user = record['user'] as Record<string, unknown> | undefined;
  if (user !== undefined) short['user.name'] = user['name'];
  const own = record['etcdgate'] as Record<string, unknown>;
  const etcd = record['etcd'] as Record<string, unknown> | undefined;
  if (etcd !== undefined) {
    const { service: _service, method: _method, ...request } = etcd['request'] as Record<string, unknown>;
    short['etcd.request'] = request;
    const { role, reason, refused } = etcd['decision'] as Record<string, unknown>;
    short['etcd.decision'] = Object.fromEntries(Object.entries({ role, reason, refused }).filter(([, v]) => v !== undefined));
    const { code_name, message, count, bytes } = etcd['response'] as Record<string, unknown>;
    short['etcd.response'] = Object.fromEntries(Object.entries({ code_name, message, count, bytes }).filter(([, v]) => v !== undefined && v !== ''));
  } else {
    // Connection and handshake records: who, by the certificate.
    const client = (record['tls'] as { client?: { x509?: { subject?: Record<string, unknown> } } } | undefined)?.client;
    const cn = client?.x509?.subject?.['common_name'];
    if (cn !== undefined) short['tls.client.x509.subject.common_name'] = cn;
  }
  if ('error' in record) short['error.message'] = (record['error'] as Record<string, unknown>)['message'];
  for (const field of ['connection_id', 'request_sent', 'identity_verified']) {
    if (own[field] !== undefined) short[`etcdgate.${field}`] = own[field];
  }
  return JSON.stringify(short);
}

/** Replaces the README's excerpt (between the markers) with one abbreviated record of every kind. */
function writeReadmeExcerpt(sections: readonly string[]): void {
  const text = readFileSync(README, 'utf8');
  const lines = sections.map((section) => {
    const title = /^### (.*)$/mu.exec(section)?.[1] ?? '';
    const json = /```json\n([\s\S]*?)```/u.exec(section)?.[1] ?? '{}';
    return `# ${title}\n${abbreviate(JSON.parse(json) as Record<string, unknown>)}`;
  });
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start < 0 || end < start) throw new Error('README.md has no audit-examples markers');
  writeFileSync(README, `${text.slice(0, start + START.length)}\n\`\`\`\n${lines.join('\n')}\n\`\`\`\n${text.slice(end)}`);
}

async function main(): Promise<void> {
  const pki = await makePki();
  const etcd = await startEtcd(pki);
  // A relay that can hold back etcd's answers, for a call that ends without one.
  const relay = await startStallRelay(etcd.endpoints[0] as string);
  const gate = await startTestGateway({ pki, upstream: [relay.endpoint], policy: POLICY });
  const a = rawClient(gate.endpoint, pki, 'tenant-a');
  const b = rawClient(gate.endpoint, pki, 'tenant-b');
  const backup = rawClient(gate.endpoint, pki, 'backup');
  const traced = new grpc.Metadata();
  traced.set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  try {
    // Unary: allowed (with a trace id), denied, and allowed but refused by etcd.
    const put = await callEtcd(a, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/tenants/tenant-a/config'), value: Buffer.from('secret') }], 'PutResponse', traced);
    await callEtcd(a, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/tenants/tenant-b/'), range_end: Buffer.from('/tenants/tenant-b0') }], 'RangeResponse').catch(() => undefined);
    await callEtcd(a, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/tenants/tenant-a/more'), value: Buffer.from('x') }], 'PutResponse');
    // A binary key (not UTF-8) at a future revision: allowed by the policy, refused by etcd.
    const binaryKey = Buffer.concat([Buffer.from('/tenants/tenant-a/'), Buffer.from([0xff, 0x00])]);
    await callEtcd(a, 'KV', 'Range', ['RangeRequest', { key: binaryKey, revision: 1_000_000 }], 'RangeResponse').catch(() => undefined);
    await callEtcd(a, 'KV', 'Txn', ['TxnRequest', {
      compare: [{ key: Buffer.from('/tenants/tenant-a/config'), target: 'MOD', result: 'EQUAL', mod_revision: (put['header'] as { revision: string }).revision }],
      success: [{ request_put: { key: Buffer.from('/tenants/tenant-a/config'), value: Buffer.from('v2') } }],
      failure: [{ request_range: { key: Buffer.from('/tenants/tenant-a/config') } }],
    }], 'TxnResponse');

    // A Txn refused for one operation of its failure branch.
    await callEtcd(a, 'KV', 'Txn', ['TxnRequest', {
      compare: [{ key: Buffer.from('/tenants/tenant-a/config'), target: 'VERSION', result: 'GREATER', version: 0 }],
      success: [{ request_range: { key: Buffer.from('/tenants/tenant-a/config') } }],
      failure: [{ request_put: { key: Buffer.from('/tenants/tenant-a/config'), value: Buffer.from('x') } }, { request_delete_range: { key: Buffer.from('/tenants/tenant-b/config') } }],
    }], 'TxnResponse').catch(() => undefined);

    // A Put etcd received while its answer is held back: the client's deadline passes first.
    relay.stall();
    const deadline = new Date(Date.now() + 1000);
    await new Promise<void>((resolve) => {
      a.makeUnaryRequest('/etcdserverpb.KV/Put', passThrough, passThrough, encode('etcdserverpb.PutRequest', { key: Buffer.from('/tenants/tenant-a/slow'), value: Buffer.from('x') }), new grpc.Metadata(), { deadline }, () => resolve());
    });
    relay.resume();

    // Watch: one allowed, one refused in-band, then the stream closes.
    const stream = rawWatch(a);
    const created = collectWatch(stream, (rs) => rs.filter((r) => r['created'] === true).length === 2);
    stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/tenants/tenant-a/'), range_end: Buffer.from('/tenants/tenant-a0'), prev_kv: true } }));
    stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/tenants/') , range_end: Buffer.from('/tenants0') } }));
    await created;
    await callEtcd(a, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/tenants/tenant-a/config'), value: Buffer.from('v3') }], 'PutResponse');
    await settle();
    stream.cancel();

    // LeaseKeepAlive: tenant-b's lease holds a key, so tenant-a may not renew it.
    const lease = await callEtcd(b, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 60 }], 'LeaseGrantResponse');
    await callEtcd(b, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/tenants/tenant-b/leased'), value: Buffer.from('x'), lease: lease['ID'] }], 'PutResponse');
    const own = b.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, new grpc.Metadata());
    own.on('error', () => undefined);
    own.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: lease['ID'] }));
    await settle();
    own.end();
    await settle();
    const foreign = a.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough, new grpc.Metadata());
    foreign.on('error', () => undefined);
    foreign.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: lease['ID'] }));
    await settle();

    // Snapshot by the backup identity.
    await new Promise<void>((resolve) => {
      const snap = backup.makeServerStreamRequest('/etcdserverpb.Maintenance/Snapshot', passThrough, passThrough, encode('etcdserverpb.SnapshotRequest', {}), new grpc.Metadata());
      snap.on('data', () => undefined);
      snap.on('error', () => undefined);
      snap.on('status', () => resolve());
    });

    // A refused handshake: a certificate from another CA.
    const rogue = rawClient(gate.endpoint, pki, 'rogue');
    await rawUnary(rogue, '/etcdserverpb.KV/Range', Buffer.alloc(0)).catch(() => undefined);
    rogue.close();
    await settle();

    // A connection that makes one call and closes.
    const brief = rawClient(gate.endpoint, pki, 'tenant-b');
    await callEtcd(brief, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/tenants/tenant-b/leased') }], 'RangeResponse');
    brief.close();
    await settle();

    const records = await gate.auditRecords();
    const pick = (title: string, test: (r: Record<string, unknown>) => boolean): string => {
      const record = records.find(test);
      if (record === undefined) throw new Error(`no record for ${title}`);
      return `### ${title}\n\n\`\`\`json\n${JSON.stringify(record, null, 2)}\n\`\`\`\n`;
    };
    const kind = (r: Record<string, unknown>): unknown => (r['etcdgate'] as Record<string, unknown> | undefined)?.['event_kind'];
    const action = (r: Record<string, unknown>): unknown => (r['event'] as Record<string, unknown>)['action'];
    const outcome = (r: Record<string, unknown>): unknown => (r['event'] as Record<string, unknown>)['outcome'];
    const sections = [
      pick('Connection opened (the client certificate in full, once per connection)', (r) => kind(r) === 'connection.open'),
      pick('Unary call, allowed (with a W3C trace id)', (r) => kind(r) === 'call' && action(r) === 'etcd.kv.put' && 'trace' in r),
      pick('Unary call, denied', (r) => kind(r) === 'call' && action(r) === 'etcd.kv.range' && outcome(r) === 'failure'),
      pick('Txn: every compare and both branches', (r) => kind(r) === 'call' && action(r) === 'etcd.kv.txn' && outcome(r) === 'success'),
      pick('Txn denied: the first refused operation named', (r) => kind(r) === 'call' && action(r) === 'etcd.kv.txn' && outcome(r) === 'failure'),
      pick('Sent to etcd, no answer (the deadline passed): outcome unknown', (r) => kind(r) === 'call' && outcome(r) === 'unknown'),
      pick('Allowed, but refused by etcd (a future revision; a binary key in base64)', (r) => kind(r) === 'call' && action(r) === 'etcd.kv.range' && JSON.stringify(r).includes('key_base64')),
      pick('Watcher created', (r) => kind(r) === 'watch.create' && outcome(r) === 'success'),
      pick('Watcher refused (answered in-band)', (r) => kind(r) === 'watch.create' && outcome(r) === 'failure'),
      pick('Watcher ended (count = events delivered)', (r) => kind(r) === 'watch.end'),
      pick('LeaseKeepAlive stream opened', (r) => kind(r) === 'keepalive.open'),
      pick('LeaseKeepAlive stream closed (count = keepalives forwarded)', (r) => kind(r) === 'keepalive.close'),
      pick('LeaseKeepAlive refused for a lease', (r) => kind(r) === 'keepalive.deny'),
      pick('Snapshot started', (r) => kind(r) === 'snapshot.start'),
      pick('Snapshot finished (bytes = snapshot bytes sent)', (r) => kind(r) === 'snapshot.end'),
      pick('Refused TLS handshake (certificate from an untrusted CA: its name is not verified, so not the user)', (r) => kind(r) === 'handshake.refused'),
      pick('Connection closed', (r) => kind(r) === 'connection.close'),
    ];
    writeFileSync(
      new URL('../docs/audit-examples.md', import.meta.url),
      `# Audit record examples\n\nGenerated by \`npm run audit-examples\` (scripts/audit-examples.ts): real records written by\netcdgate in front of a real etcd, one of every kind. The field reference is\n[audit-schema.md](audit-schema.md).\n\n${sections.join('\n')}`,
    );
    writeReadmeExcerpt(sections);
    console.log(`wrote docs/audit-examples.md and the README excerpt (${sections.length} records)`);
  } finally {
    for (const client of [a, b, backup]) client.close();
    await gate.stop();
    await relay.close();
    await etcd.stop();
    await pki.remove();
  }
}

await main();
