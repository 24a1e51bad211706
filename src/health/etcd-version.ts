/**
 * etcd release versions, and the minimum each release line must be at. etcd patches
 * several lines at once (3.5.x, 3.6.x, 3.7.x), so "old enough to worry about" is
 * per line: a list of minimums, one per line, decides.
 *
 * The default minimums are the first release of each line that carries every etcd
 * RBAC fix of 2026 (sources in docs/authorization.md, "etcd versions"):
 *  - CVE-2026-33413 (authorization bypasses in several APIs) and CVE-2026-33343 (nested
 *    Txn ops unchecked): 3.4.42, 3.5.28, 3.6.9;
 *  - read access through PrevKv or a lease in Puts nested in a Txn: 3.4.44, 3.5.30, 3.6.11;
 *  - GHSA-xg4h-6gfc-h4m8 (a read grant on one key let a from-key Watch see every key
 *    after it): 3.5.33, 3.6.14, 3.7.1. The 3.4 line ended (3.4.45) without that fix, so
 *    no 3.4 release meets the default.
 */

/** A parsed version: major.minor.patch and an optional pre-release tag (3.7.0-rc.0). */
export interface EtcdVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly pre: string;
  readonly text: string;
}

/** The default `upstream.versionCheck.minimumVersions`. */
export const DEFAULT_MINIMUM_VERSIONS: readonly string[] = Object.freeze(['3.5.33', '3.6.14', '3.7.1']);

const VERSION = /^v?(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:-([0-9A-Za-z.-]{1,64}))?$/u;

/** Parses "3.5.30", "v3.6.11", "3.7.0-rc.0"; undefined for anything else. */
export function parseEtcdVersion(text: string): EtcdVersion | undefined {
  const match = VERSION.exec(text.trim());
  if (match === null) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]), pre: match[4] ?? '', text: text.trim() };
}

/** Orders versions; a pre-release sorts before its release (3.7.0-rc.0 < 3.7.0). */
export function compareVersions(a: EtcdVersion, b: EtcdVersion): number {
  const parts = [a.major - b.major, a.minor - b.minor, a.patch - b.patch];
  for (const d of parts) if (d !== 0) return Math.sign(d);
  if (a.pre === b.pre) return 0;
  if (a.pre === '') return 1;
  if (b.pre === '') return -1;
  return a.pre < b.pre ? -1 : 1;
}

const sameLine = (a: EtcdVersion, b: EtcdVersion): boolean => a.major === b.major && a.minor === b.minor;
const lineBefore = (a: EtcdVersion, b: EtcdVersion): boolean => a.major < b.major || (a.major === b.major && a.minor < b.minor);

/** How a member's version stands against the minimums. */
export interface VersionVerdict {
  /** True when the member must be upgraded. */
  readonly below: boolean;
  /** The minimum it is held to: its line's, else the oldest line above it; "" when none applies. */
  readonly minimum: string;
}

/**
 * Judges `version` against `minimums` (one per release line). A version of a listed line
 * is below when it is older than that line's minimum. A line that is not listed is held
 * to the next listed line above it (an older line without the fixes is below it); a line
 * newer than every listed one is not below anything. A version that does not parse is
 * below (fail closed: the operator should look).
 */
export function judgeVersion(version: string, minimums: readonly EtcdVersion[]): VersionVerdict {
  const parsed = parseEtcdVersion(version);
  if (parsed === undefined) return { below: true, minimum: minimums[0]?.text ?? '' };
  const own = minimums.find((m) => sameLine(m, parsed));
  if (own !== undefined) return { below: compareVersions(parsed, own) < 0, minimum: own.text };
  const above = [...minimums].sort(compareVersions).find((m) => lineBefore(parsed, m));
  return above === undefined ? { below: false, minimum: '' } : { below: true, minimum: above.text };
}
