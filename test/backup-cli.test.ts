/**
 * The backup commands as an operator runs them (issue 15, item 7): `etcdgate backup
 * now` prints one result line and nothing else when not on a terminal, and shows its
 * progress (bytes, rate) when it is (a pseudo-terminal made by util-linux `script`);
 * `backup list` reads the manifests; a bad `backup` section fails check-config with
 * the field path; a missing section and bad arguments exit 2.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ROOT_ONLY_POLICY } from './support/gateway.js';
import { filesIn } from './support/backup.js';
import { useGatewayStack } from './support/stack.js';

const cli = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const stack = useGatewayStack({ gateway: false });
let dir: string;
let backups: string;

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** Writes a config (the stack's etcd, the given backup section) and returns its path. */
function config(name: string, backup: unknown): string {
  const { pki } = stack;
  const file = path.join(dir, name);
  writeFileSync(
    file,
    stringify({
      server: { listen: '127.0.0.1:0', advertiseClientUrls: ['https://127.0.0.1:32379'], tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca } },
      upstream: { endpoints: [...stack.etcd.endpoints], tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key, serverName: 'localhost' } },
      audit: { sink: `file:${path.join(dir, 'audit.jsonl')}` },
      ...(backup === undefined ? {} : { backup }),
      policy: ROOT_ONLY_POLICY,
    }),
  );
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-backup-cli-'));
  backups = path.join(dir, 'backups');
  await run('mkdir', [backups]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('backup now: one result line and nothing else when not on a terminal', async () => {
  const file = config('plain.yaml', { enabled: false, destinations: [{ directory: backups, name: 'local' }] });
  const result = await run(process.execPath, [cli, 'backup', 'now', '--config', file]);
  expect(result.code, result.stderr).toBe(0);
  expect(result.stderr).toBe('');
  expect(result.stdout).toMatch(/^stored etcd-snapshot-\S+\.db \([\d.]+ KiB, revision \d+, [\d.]+ s\) in local\n$/u);
});

it('backup now: progress with bytes and rate on a terminal', async () => {
  const file = config('tty.yaml', { enabled: false, destinations: [{ directory: backups, name: 'local' }] });
  // script(1) runs the command on a pseudo-terminal and copies what it shows to stdout.
  const result = await run('script', ['-qefc', `${process.execPath} ${cli} backup now --config ${file}`, '/dev/null']);
  expect(result.code, result.stdout).toBe(0);
  // eslint-disable-next-line no-control-regex -- the terminal's erase-line sequence is what is checked
  expect(result.stdout).toMatch(/\r\u001b\[Ksnapshot [\d.]+ (B|KiB|MiB) [\d.]+ (B|KiB|MiB|GiB)\/s/u);
  expect(result.stdout).toContain('stored etcd-snapshot-');
});

it('backup list: every backup from the manifests, oldest first', async () => {
  const file = config('list.yaml', { enabled: false, destinations: [{ directory: backups, name: 'local' }] });
  const result = await run(process.execPath, [cli, 'backup', 'list', '--config', file]);
  expect(result.code, result.stderr).toBe(0);
  const lines = result.stdout.trim().split('\n').map((line) => line.split('\t'));
  expect(lines.map((fields) => fields[1])).toEqual(filesIn(backups).filter((name) => name.endsWith('.db')));
  for (const fields of lines) expect(fields).toEqual(['local', expect.stringMatching(/^etcd-snapshot-/u), expect.any(String), expect.stringMatching(/^\d+$/u), expect.stringMatching(/^revision \d+$/u), expect.stringMatching(/^etcd 3\.4\./u), 'plain']);
  const json = await run(process.execPath, [cli, 'backup', 'list', '--config', file, '--json']);
  expect((JSON.parse(json.stdout) as unknown[]).length).toBe(lines.length);
});

it('check-config names a bad backup field; a missing section and bad arguments exit 2', async () => {
  const bad = config('bad.yaml', { schedule: { cron: '0 25 * * *' }, destinations: [{ directory: path.join(dir, 'nope') }] });
  const checked = await run(process.execPath, [cli, 'check-config', bad]);
  expect(checked.code).toBe(2);
  expect(checked.stderr).toContain('\n  backup.schedule.cron: is not valid');
  expect(checked.stderr).toContain('\n  backup.destinations[0].directory: directory does not exist');

  const none = await run(process.execPath, [cli, 'backup', 'now', '--config', config('none.yaml', undefined)]);
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('no backup section');
  const usage = await run(process.execPath, [cli, 'backup', 'verify']);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain('verify needs exactly one FILE');
});
