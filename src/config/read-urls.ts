/**
 * Reader for the lists of https:// URLs in the config (`server.advertiseClientUrls`,
 * `upstream.endpoints`).
 */
import { checkHttpsUrl } from './addresses.js';
import type { Reader } from './read.js';
import { describe, index, isAbsent } from './read.js';

/**
 * Reads a required, non-empty list of https:// URLs, keeping each as written. A repeated
 * URL is reported: it is always a copy-paste slip, and for endpoints it would skew failover.
 */
export function readHttpsUrls(reader: Reader, value: unknown, fieldPath: string): readonly string[] {
  if (isAbsent(value)) {
    reader.report(fieldPath, 'is required');
    return [];
  }
  if (!Array.isArray(value)) {
    reader.report(fieldPath, `must be a list of https:// URLs, got ${describe(value)}`);
    return [];
  }
  if (value.length === 0) reader.report(fieldPath, 'must list at least one https:// URL');
  const urls: string[] = [];
  const seen = new Set<string>();
  value.forEach((item: unknown, i) => {
    const itemPath = index(fieldPath, i);
    if (typeof item !== 'string') {
      reader.report(itemPath, `must be an https:// URL, got ${describe(item)}`);
      return;
    }
    const checked = checkHttpsUrl(item);
    if (!checked.ok) {
      reader.report(itemPath, checked.error);
      return;
    }
    // Compare origins so that https://h:1 and https://h:1/ count as the same URL.
    if (seen.has(checked.value.origin)) reader.report(itemPath, 'repeats an earlier URL');
    seen.add(checked.value.origin);
    urls.push(item);
  });
  return urls;
}
