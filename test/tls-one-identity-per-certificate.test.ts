/**
 * One identity per certificate (issue 13.4): a subject that readers would disagree on is
 * refused at the handshake. Before, `CN=tenant-b, CN=tenant-a` was tenant-b to etcdgate
 * and tenant-a to Go's x509 (so to etcd's own CN auth), and the multi-valued RDN
 * `CN=tenant-a+CN=tenant-b` became the one CN "tenant-a + CN=tenant-b", which a
 * `tenant-*` binding matched. Now both are refused with reason `ambiguous_subject`
 * (audited with the client's address, counted), while several O and OU values (how
 * Kubernetes writes groups) are served and bound by each of them. Certificates are made
 * by openssl with the subjects written verbatim.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { makePki, type CertPair, type Pki } from './support/pki.js';
import { issueWithSubject } from './support/pki-variants.js';
import { freePort } from './support/ports.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { probeTls } from './support/tls-probe.js';
import { readFileSync } from 'node:fs';
import { AmbiguousSubjectError, identityFromDer } from '../src/tls/identity.js';
import { X509Certificate } from 'node:crypto';

let pki: Pki;
let gate: TestGateway;
const made: Record<string, CertPair> = {};

beforeAll(async () => {
  pki = await makePki();
  made['two-cns'] = await issueWithSubject(pki, 'two-cns', '/CN=tenant-b/CN=tenant-a');
  made['multi-valued'] = await issueWithSubject(pki, 'multi-valued', '/CN=tenant-a+CN=tenant-b');
  made['o-plus-ou'] = await issueWithSubject(pki, 'o-plus-ou', '/CN=tenant-c/O=team+OU=ops');
  made['groups'] = await issueWithSubject(pki, 'groups', '/CN=svc-reader/O=system:masters/O=readers/OU=a/OU=b');
  // No etcd: the handshake is what is under test.
  gate = await startTestGateway({
    pki,
    upstream: [`https://127.0.0.1:${await freePort()}`],
    policy: { roles: { tenant: { keys: [{ prefix: '/t/', access: 'read' }] } }, bindings: [{ match: { cn: 'tenant-*' }, roles: ['tenant'] }] },
  });
});

afterAll(async () => {
  await gate?.stop();
  await pki?.remove();
});

const portOf = (target: TestGateway): number => Number(new URL(target.endpoint).port);

async function refusals(reason: string): Promise<number> {
  const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), 'etcdgate_tls_handshake_failures_total', { reason });
}

describe('a subject that is not one identity is refused at the handshake', () => {
  it.each(['two-cns', 'multi-valued', 'o-plus-ou'])('%s: refused, audited with its reason and source, counted', async (name) => {
    const before = await refusals('ambiguous_subject');
    const result = await probeTls(portOf(gate), pki, made[name]);
    expect(result.served).toBe(false);
    await expect.poll(() => refusals('ambiguous_subject')).toBe(before + 1);
    const records = await gate.auditRecords();
    const record = records.find((r) => (r['source'] as { port?: number } | undefined)?.port === result.localPort);
    expect(record).toMatchObject({ event: { reason: 'ambiguous_subject', outcome: 'failure' }, source: { ip: '127.0.0.1' }, etcdgate: { event_kind: 'handshake.refused' } });
    // Nobody's name is claimed for it: the refused certificate is not an identity.
    expect(record?.['user']).toBeUndefined();
  });

  it('several O and OU values, each in its own RDN, are one identity and are served', async () => {
    expect((await probeTls(portOf(gate), pki, made['groups'])).served).toBe(true);
    const identity = identityFromDer(new X509Certificate(readFileSync(made['groups']?.cert ?? '')).raw);
    expect(identity).toMatchObject({ cn: 'svc-reader', o: ['system:masters', 'readers'], ou: ['a', 'b'] });
  });

  it('a client certificate with one CN is still served', async () => {
    expect((await probeTls(portOf(gate), pki, pki.client('tenant-a'))).served).toBe(true);
  });

  it('explain --cert refuses the same certificates (identityFromDer throws)', () => {
    for (const name of ['two-cns', 'multi-valued']) {
      const der = new X509Certificate(readFileSync(made[name]?.cert ?? '')).raw;
      expect(() => identityFromDer(der)).toThrow(AmbiguousSubjectError);
    }
  });
});
