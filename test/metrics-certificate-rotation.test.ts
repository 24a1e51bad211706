/**
 * After a certificate rotation whose subject changed, etcdgate exports the expiry of the
 * certificate it now uses and no longer the old one's: a rotated-away certificate must
 * not keep `etcdgate_certificate_not_after_seconds` alive (it would fire an expiry alert
 * for a file nobody uses). Certificates of the other roles keep their series. A failed
 * reload changes nothing.
 */
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from './support/gateway.js';
import { testCa } from './support/pki-variants.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
const live = { cert: '', key: '' };
let gate: TestGateway;

/** role/subject of every certificate series exported now. */
async function certificateSeries(): Promise<string[]> {
  const exposition = parseExposition(await (await fetch(`${gate.adminUrl}/metrics`)).text());
  return findSamples(exposition, 'etcdgate_certificate_not_after_seconds')
    .map((sample) => `${sample.labels['role']}/${sample.labels['subject']}`)
    .sort();
}

beforeAll(async () => {
  live.cert = path.join(stack.pki.dir, 'rotating-server.crt');
  live.key = path.join(stack.pki.dir, 'rotating-server.key');
  await copyFile(stack.pki.gateServer.cert, live.cert);
  await copyFile(stack.pki.gateServer.key, live.key);
  gate = await stack.startGateway({ overrides: { server: { tls: { cert: live.cert, key: live.key, clientCA: stack.pki.ca } } } });
}, 60_000);

afterAll(async () => {
  await gate?.stop();
});

describe('certificate expiry series after a rotation', () => {
  it('drops the old subject’s series and exports the new one; other roles keep theirs', async () => {
    const before = await certificateSeries();
    expect(before).toContain('server/etcdgate-server');
    expect(before).toContain('client-ca/etcdgate dev CA');

    const ca = await testCa(stack.pki);
    const next = await ca.issue({ name: 'server-next', cn: 'etcdgate-server-2027', eku: 'serverAuth', san: 'DNS:localhost, IP:127.0.0.1' });
    await copyFile(next.key, live.key);
    await copyFile(next.cert, live.cert);
    expect(gate.gateway.reloadTls()).toBe(true);

    const after = await certificateSeries();
    expect(after).toContain('server/etcdgate-server-2027');
    expect(after).not.toContain('server/etcdgate-server');
    expect(after.filter((series) => !series.startsWith('server/'))).toEqual(before.filter((series) => !series.startsWith('server/')));

    // A broken file is refused as a whole: the series stay those of the material in use.
    await writeFile(live.cert, 'not a certificate\n');
    expect(gate.gateway.reloadTls()).toBe(false);
    expect(await certificateSeries()).toEqual(after);
  }, 30_000);
});
