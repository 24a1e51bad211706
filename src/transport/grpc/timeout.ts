/**
 * `grpc-timeout` (gRPC over HTTP/2: "TimeoutValue TimeoutUnit", at most 8 digits, units
 * H M S m u n), to and from milliseconds.
 */

const TIMEOUT = /^(\d{1,8})([HMSmun])$/u;
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * Milliseconds of a grpc-timeout value, rounded up to a whole millisecond and at least 1
 * (a deadline below 1 ms still gets its try); undefined when the value is malformed.
 */
export function parseTimeout(value: string): number | undefined {
  const match = TIMEOUT.exec(value);
  if (match === null) return undefined;
  return Math.max(1, Math.ceil(Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 1)));
}

/** The grpc-timeout value for `ms` milliseconds: whole units only (etcd answers a fraction with HTTP 500). */
export function formatTimeout(ms: number): string {
  const whole = Math.max(1, Math.ceil(ms));
  if (whole < 100_000_000) return `${whole}m`;
  const seconds = Math.ceil(whole / 1000);
  if (seconds < 100_000_000) return `${seconds}S`;
  return `${Math.min(99_999_999, Math.ceil(seconds / 3600))}H`;
}
