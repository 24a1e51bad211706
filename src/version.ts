/** etcdgate's version, read once from the package.json next to the sources or the build. */
import { readFileSync } from 'node:fs';

function findVersion(): string {
  // src/version.ts and dist/src/version.js sit one and two levels below the package root.
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && parsed.name === 'etcdgate' && 'version' in parsed && typeof parsed.version === 'string') {
        return parsed.version;
      }
    } catch {
      // try the next location
    }
  }
  return '0.0.0-unknown';
}

export const VERSION = findVersion();
