/**
 * The etcd version every member behind etcdgate runs, from Maintenance.Status asked of
 * each configured endpoint in turn (not through failover: the question is about that
 * member), under etcdgate's own identity, every `intervalMs`. Each answer is judged
 * against the minimum of its release line (./etcd-version.ts) and exported as metrics,
 * so an alert can say which member still lacks the RBAC fixes etcdgate was written
 * against. A member that does not answer keeps the last version it reported.
 */
import { WireReader } from '../etcd/wire.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import { judgeVersion, parseEtcdVersion, type EtcdVersion } from './etcd-version.js';

const STATUS = '/etcdserverpb.Maintenance/Status';
const EMPTY = Buffer.alloc(0);

/** What one member said about itself. */
export interface MemberStatus {
  readonly version: string;
  /** The member ID as etcdctl prints it (hex). */
  readonly memberId: string;
}

/** Reads StatusResponse { header = 1 { member_id = 2 }, version = 2 }; never throws. */
export function readStatusResponse(response: Buffer): MemberStatus | undefined {
  try {
    let version = '';
    let memberId = 0n;
    const reader = new WireReader(response);
    while (reader.next()) {
      if (reader.field === 2) version = reader.string();
      else if (reader.field === 1) {
        const header = new WireReader(reader.bytes());
        while (header.next()) {
          if (header.field === 2) memberId = BigInt(header.uint64());
          else header.skip();
        }
      } else reader.skip();
    }
    return version === '' ? undefined : { version, memberId: memberId.toString(16) };
  } catch {
    return undefined;
  }
}

/** Options (config upstream.versionCheck, and the endpoints and deadline of upstream). */
export interface MemberVersionsOptions {
  readonly endpoints: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly minimumVersions: readonly string[];
}

export interface MemberVersionsDeps {
  readonly upstream: UpstreamCalls;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** Polls every endpoint's Status in the background and reports versions. */
export class MemberVersions {
  readonly #minimums: EtcdVersion[];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Last version seen per endpoint, to log a change once. */
  readonly #seen = new Map<string, string>();

  constructor(private readonly options: MemberVersionsOptions, private readonly deps: MemberVersionsDeps) {
    // Validated by the config loader: every entry parses.
    this.#minimums = options.minimumVersions.map(parseEtcdVersion).filter((v): v is EtcdVersion => v !== undefined);
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Asks every endpoint once; resolves when all have answered or failed. */
  async poll(): Promise<void> {
    await Promise.all(this.options.endpoints.map((endpoint) => this.#pollOne(endpoint)));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.poll().then(() => this.#schedule(this.options.intervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #pollOne(endpoint: string): Promise<void> {
    let status: MemberStatus | undefined;
    try {
      status = readStatusResponse(await this.deps.upstream.unary(STATUS, EMPTY, { endpoint, timeoutMs: this.options.timeoutMs, idempotent: true }));
    } catch {
      // Down or refusing: etcdgate_upstream_up tells that; the last known version stays.
      return;
    }
    if (this.#stopped || status === undefined) return;
    const verdict = judgeVersion(status.version, this.#minimums);
    this.deps.metrics.etcdMember(endpoint, { ...status, ...verdict });
    if (this.#seen.get(endpoint) !== status.version) {
      this.#seen.set(endpoint, status.version);
      const fields = { endpoint, version: status.version, memberId: status.memberId, minimum: verdict.minimum };
      if (verdict.below) this.deps.logger.warn(fields, 'etcd member runs a version below the minimum for its line');
      else this.deps.logger.info(fields, 'etcd member version');
    }
  }
}
