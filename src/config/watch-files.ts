/**
 * Watching the files a running etcdgate depends on (policy, TLS material), so a changed
 * file is reloaded without a signal. Files are polled, so a rename-replace (how
 * certificate tools and ConfigMap updates write) is seen too, and the reload waits for
 * the writes to settle, so a certificate and its key written together are read together.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';

/** Watches `files` and calls `reload` once things settle after a change; returns the un-watch function. */
export function watchFiles(files: readonly string[], reload: () => void, settleMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  const onChange = (current: Stats): void => {
    // A file replaced by rename is briefly absent: wait for the new one to appear.
    if (current.nlink === 0 && current.ino === 0) return;
    clearTimeout(timer);
    timer = setTimeout(reload, settleMs);
    timer.unref();
  };
  const unique = [...new Set(files)];
  for (const file of unique) watchFile(file, { interval: 1000, persistent: false }, onChange);
  return () => {
    clearTimeout(timer);
    for (const file of unique) unwatchFile(file, onChange);
  };
}
