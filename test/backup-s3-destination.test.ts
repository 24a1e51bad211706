/**
 * The S3 destination against a real S3-compatible server: OpenStack Swift with its
 * s3api middleware, started from Debian's packages (test/support/swift-s3.ts). Three
 * `etcdgate backup now` runs with credentials from the standard AWS environment upload
 * the snapshot as a multipart upload and the manifest beside it; retention (keep 2)
 * deletes the oldest, audited; `backup list` reads the manifests back; a downloaded
 * snapshot matches its manifest, passes `backup verify` and `etcdctl snapshot status`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseManifest } from '../src/backup/manifest.js';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl } from './support/etcdctl.js';
import { backupFields, recordsOfKind } from './support/backup.js';
import { ROOT_ONLY_POLICY } from './support/gateway.js';
import { useGatewayStack } from './support/stack.js';
import { startSwiftS3, type SwiftS3 } from './support/swift-s3.js';

const cli = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const stack = useGatewayStack({ gateway: false });
const BUCKET = 'etcd-backups';
const PREFIX = 'cluster-a/';

let swift: SwiftS3;
let s3: S3Client;
let dir: string;
let configFile: string;
let env: NodeJS.ProcessEnv;

function etcdgate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

async function objectText(key: string): Promise<Buffer> {
  const answer = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await answer.Body!.transformToByteArray());
}

beforeAll(async () => {
  swift = await startSwiftS3();
  s3 = new S3Client({ endpoint: swift.endpoint, region: swift.region, forcePathStyle: true, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-s3-'));
  const { pki } = stack;
  // Over 5 MiB, so the 5 MiB parts make it a multipart upload.
  const direct = etcd3Client(stack.etcd.endpoints[0]!, pki, 'root');
  try {
    const value = Buffer.alloc(1024 * 1024, 'v');
    for (let i = 0; i < 12; i += 1) await direct.put(`/bulk/${i}`).value(value);
  } finally {
    direct.close();
  }
  configFile = path.join(dir, 'etcdgate.yaml');
  writeFileSync(
    configFile,
    stringify({
      server: { listen: '127.0.0.1:0', advertiseClientUrls: ['https://127.0.0.1:32379'], tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca } },
      upstream: { endpoints: [...stack.etcd.endpoints], tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key, serverName: 'localhost' } },
      audit: { sink: `file:${path.join(dir, 'audit.jsonl')}` },
      backup: {
        enabled: false,
        destinations: [{ s3: { bucket: BUCKET, prefix: PREFIX, endpoint: swift.endpoint, region: swift.region, partSizeBytes: 5 * 1024 * 1024 }, name: 'swift' }],
        stagingDir: dir,
        retention: { keepLast: 2 },
      },
      policy: ROOT_ONLY_POLICY,
    }),
  );
  // The standard AWS environment; no instance-metadata lookups on a test machine; and
  // without the SDK's notice that its 2027 releases need Node 22 (stderr must stay empty).
  env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: swift.accessKeyId,
    AWS_SECRET_ACCESS_KEY: swift.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}, 90_000);

afterAll(async () => {
  s3?.destroy();
  await swift?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('stores, lists, keeps the newest two and deletes the oldest, through a real S3 API', async () => {
  const stored: string[] = [];
  for (let i = 0; i < 3; i += 1) {
    const result = await etcdgate(['backup', 'now', '--config', configFile]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const file = /stored (etcd-snapshot-\S+\.db)/u.exec(result.stdout)?.[1];
    expect(file, result.stdout).toBeDefined();
    stored.push(file!);
    if (i === 2) expect(result.stdout).toContain(`retention deleted swift:${stored[0]}`);
  }

  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }));
  const keys = (listed.Contents ?? []).map((o) => o.Key).sort();
  expect(keys).toEqual([stored[1], `${stored[1]}.json`, stored[2], `${stored[2]}.json`].map((name) => `${PREFIX}${name}`).sort());
  // Nothing is left in the staging directory but the config and the audit file.
  expect(readdirSync(dir).sort()).toEqual(['audit.jsonl', 'etcdgate.yaml']);

  const newest = stored[2]!;
  const manifest = parseManifest((await objectText(`${PREFIX}${newest}.json`)).toString('utf8'));
  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${newest}` }));
  // A multipart upload's ETag is "<hash>-<parts>".
  expect(head.ETag).toMatch(/-\d+"?$/u);
  expect(manifest.sizeBytes).toBeGreaterThan(12 * 1024 * 1024);
  const body = await objectText(`${PREFIX}${newest}`);
  expect(body.length).toBe(manifest.sizeBytes);
  expect(createHash('sha256').update(body).digest('hex')).toBe(manifest.sha256);

  const local = path.join(dir, newest);
  writeFileSync(local, body);
  writeFileSync(`${local}.json`, await objectText(`${PREFIX}${newest}.json`));
  const verified = await etcdgate(['backup', 'verify', local]);
  expect(verified.code, verified.stdout).toBe(0);
  const status = await etcdctl(['snapshot', 'status', local, '-w', 'json'], { endpoint: stack.etcd.endpoints[0]!, cacert: stack.pki.ca, ...stack.pki.client('root') });
  expect(status.code, status.stderr).toBe(0);
  expect(JSON.parse(status.stdout).totalKey).toBeGreaterThanOrEqual(12);

  const list = await etcdgate(['backup', 'list', '--config', configFile]);
  expect(list.code, list.stderr).toBe(0);
  expect(list.stdout.trim().split('\n').map((line) => line.split('\t').slice(0, 2))).toEqual([
    ['swift', stored[1]],
    ['swift', stored[2]],
  ]);

  const records = readFileSync(path.join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  const runs = recordsOfKind(records, 'backup.run');
  expect(runs.map((r) => (r['file'] as { name: string }).name)).toEqual(stored);
  expect(runs.map((r) => backupFields(r)['destinations'])).toEqual([['swift'], ['swift'], ['swift']]);
  const deletions = recordsOfKind(records, 'backup.delete');
  expect(deletions.map((r) => [(r['file'] as { name: string }).name, (r['event'] as { outcome: string }).outcome])).toEqual([[stored[0], 'success']]);
}, 240_000);
