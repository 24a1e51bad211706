/**
 * The manifest written beside every stored snapshot: a small JSON file that says what
 * the snapshot is (time, etcd revision, version and member, size and SHA-256 of the
 * file as stored, encryption, etcdgate's version). A backup exists only when its
 * manifest does: the manifest is written last and removed first, so `backup list`
 * never shows a file that is half stored or half deleted.
 *
 * Names: `etcd-snapshot-<UTC time, to the millisecond, no colons>.db`, plus `.age` when
 * encrypted; the manifest is the file's name plus `.json`. Names sort by time.
 */

/** Identifies the format; bumped when a field changes meaning. */
export const MANIFEST_FORMAT = 'etcdgate-backup/1';
export const MANIFEST_SUFFIX = '.json';
const NAME_PATTERN = /^etcd-snapshot-\d{8}T\d{6}\.\d{3}Z\.db(\.age)?$/u;

/** Why the run was made. */
export type BackupTrigger = 'schedule' | 'manual';

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  /** The snapshot file's name (no directory). */
  readonly file: string;
  /** When the snapshot stream started and when the file was stored (ISO 8601, UTC). */
  readonly startedAt: string;
  readonly createdAt: string;
  readonly trigger: BackupTrigger;
  readonly etcd: {
    /** Store revision reported by the serving member just before the snapshot (the snapshot holds at least this revision). */
    readonly revision: string;
    readonly version: string;
    /** Member ID (hex) of the member that answered. */
    readonly memberId: string;
    /** The configured endpoint the calls went to. */
    readonly endpoint: string;
  };
  /** Size and SHA-256 (hex) of the file as stored (after encryption, if any). */
  readonly sizeBytes: number;
  readonly sha256: string;
  /** Size of the snapshot as etcd sent it (database plus its 32-byte SHA-256). */
  readonly snapshotBytes: number;
  /** Encryption: absent for plain snapshots. */
  readonly encryption?: { readonly format: 'age'; readonly recipients: readonly string[] };
  readonly etcdgateVersion: string;
}

/** The file name of a snapshot taken at `time`. */
export function snapshotFileName(time: Date, encrypted: boolean): string {
  const stamp = time.toISOString().replace(/[-:]/gu, '');
  return `etcd-snapshot-${stamp}.db${encrypted ? '.age' : ''}`;
}

/** True for names snapshotFileName makes (so nothing else in a directory is ever deleted). */
export function isSnapshotFileName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** The manifest's text: pretty JSON with a final newline, readable with `cat`. */
export function manifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** A manifest that cannot be read: names what is wrong, never echoes the content. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

function field(object: Record<string, unknown>, name: string, where: string): unknown {
  if (!(name in object)) throw new ManifestError(`${where}${name} is missing`);
  return object[name];
}

function text(object: Record<string, unknown>, name: string, where = ''): string {
  const value = field(object, name, where);
  if (typeof value !== 'string') throw new ManifestError(`${where}${name} must be a string`);
  return value;
}

function count(object: Record<string, unknown>, name: string): number {
  const value = field(object, name, '');
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ManifestError(`${name} must be a non-negative integer`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses and checks a manifest's text (from a file or an object; untrusted). */
export function parseManifest(textValue: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textValue);
  } catch {
    throw new ManifestError('not JSON');
  }
  if (!isRecord(parsed)) throw new ManifestError('not a JSON object');
  if (parsed['format'] !== MANIFEST_FORMAT) throw new ManifestError(`format is not ${MANIFEST_FORMAT}`);
  const file = text(parsed, 'file');
  if (!isSnapshotFileName(file)) throw new ManifestError('file is not a snapshot name etcdgate makes');
  const sha256 = text(parsed, 'sha256');
  if (!/^[0-9a-f]{64}$/u.test(sha256)) throw new ManifestError('sha256 must be 64 hex digits');
  const trigger = text(parsed, 'trigger');
  if (trigger !== 'schedule' && trigger !== 'manual') throw new ManifestError('trigger must be schedule or manual');
  const etcd = field(parsed, 'etcd', '');
  if (!isRecord(etcd)) throw new ManifestError('etcd must be an object');
  const createdAt = text(parsed, 'createdAt');
  const startedAt = text(parsed, 'startedAt');
  if (Number.isNaN(Date.parse(createdAt)) || Number.isNaN(Date.parse(startedAt))) throw new ManifestError('startedAt and createdAt must be ISO 8601 times');
  let encryption: Manifest['encryption'];
  const rawEncryption = parsed['encryption'];
  if (rawEncryption !== undefined) {
    if (!isRecord(rawEncryption) || rawEncryption['format'] !== 'age' || !Array.isArray(rawEncryption['recipients'])) throw new ManifestError('encryption must be { format: age, recipients: [...] }');
    const recipients = rawEncryption['recipients'].filter((r): r is string => typeof r === 'string');
    encryption = { format: 'age', recipients };
  }
  if ((encryption !== undefined) !== file.endsWith('.age')) throw new ManifestError('encryption and the file name disagree');
  return {
    format: MANIFEST_FORMAT,
    file,
    startedAt,
    createdAt,
    trigger,
    etcd: {
      revision: text(etcd, 'revision', 'etcd.'),
      version: text(etcd, 'version', 'etcd.'),
      memberId: text(etcd, 'memberId', 'etcd.'),
      endpoint: text(etcd, 'endpoint', 'etcd.'),
    },
    sizeBytes: count(parsed, 'sizeBytes'),
    sha256,
    snapshotBytes: count(parsed, 'snapshotBytes'),
    ...(encryption === undefined ? {} : { encryption }),
    etcdgateVersion: text(parsed, 'etcdgateVersion'),
  };
}
