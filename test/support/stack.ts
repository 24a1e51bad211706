/**
 * The stack most integration tests run against: a fresh PKI, a real etcd and (unless
 * asked not to) an in-process etcdgate in front of it, started once per file in
 * `beforeAll` and torn down in reverse order in `afterAll`.
 *
 * Hooks a file registers after calling `useGatewayStack` run after the stack is up, and
 * their `afterAll` runs before it is torn down (vitest runs after-hooks in reverse), so
 * clients opened there are closed while the gateway is still serving.
 */
import { afterAll, beforeAll } from 'vitest';
import { startEtcd, type EtcdCluster } from './etcd.js';
import { startGatewayProcess, type GatewayProcess, type GatewayProcessOptions } from './gateway-process.js';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from './gateway.js';
import { makePki, type Pki } from './pki.js';

/** What the stack is made of; every field is optional. */
export interface GatewayStackOptions {
  /**
   * Inline policy document or policy file path for the gateway (default ROOT_ONLY_POLICY),
   * or a function returning one, called when the gateway starts (after earlier hooks).
   */
  readonly policy?: unknown;
  /** Config sections merged into the gateway's (see TestGatewayOptions.overrides). */
  readonly overrides?: TestGatewayOptions['overrides'];
  /** etcd members (default 1). */
  readonly clusterSize?: 1 | 3;
  /** false: only the PKI and etcd; the file starts its own gateways. */
  readonly gateway?: false;
}

/** The running stack; each getter throws until `beforeAll` has started its part. */
export interface GatewayStack {
  readonly pki: Pki;
  readonly etcd: EtcdCluster;
  readonly gate: TestGateway;
  /**
   * Starts one more in-process gateway in front of this stack's etcd (or `upstream`);
   * the caller stops it.
   */
  startGateway(options?: Partial<Omit<TestGatewayOptions, 'pki'>>): Promise<TestGateway>;
  /** Starts etcdgate as a child process (see gateway-process.ts) in front of this stack's etcd. */
  startGatewayProcess(options: StackProcessOptions): Promise<GatewayProcess>;
}

/** GatewayProcessOptions without what the stack provides (`upstream` defaults to its etcd). */
export type StackProcessOptions = Omit<GatewayProcessOptions, 'pki' | 'upstream'> & { readonly upstream?: readonly string[] };

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`stack.${what} used before useGatewayStack's beforeAll started it (or it failed to start)`);
  return value;
}

/** Registers the stack's beforeAll/afterAll hooks in the calling file (or describe block). */
export function useGatewayStack(options: GatewayStackOptions = {}): GatewayStack {
  let pki: Pki | undefined;
  let etcd: EtcdCluster | undefined;
  let gate: TestGateway | undefined;

  beforeAll(async () => {
    pki = await makePki();
    etcd = await startEtcd(pki, options.clusterSize === undefined ? {} : { clusterSize: options.clusterSize });
    if (options.gateway === false) return;
    const policy: unknown = typeof options.policy === 'function' ? (options.policy as () => unknown)() : options.policy;
    gate = await startTestGateway({
      pki,
      upstream: etcd.endpoints,
      ...(policy === undefined ? {} : { policy }),
      ...(options.overrides === undefined ? {} : { overrides: options.overrides }),
    });
  });

  afterAll(async () => {
    await gate?.stop();
    await etcd?.stop();
    await pki?.remove();
  });

  return {
    get pki() {
      return started(pki, 'pki');
    },
    get etcd() {
      return started(etcd, 'etcd');
    },
    get gate() {
      if (options.gateway === false) throw new Error('stack.gate: this stack was made with gateway: false');
      return started(gate, 'gate');
    },
    startGateway(more = {}) {
      return startTestGateway({ pki: started(pki, 'pki'), upstream: started(etcd, 'etcd').endpoints, ...more });
    },
    startGatewayProcess(more) {
      return startGatewayProcess({ pki: started(pki, 'pki'), upstream: started(etcd, 'etcd').endpoints, ...more });
    },
  };
}
