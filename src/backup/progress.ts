/**
 * Progress of a long backup command on a terminal: bytes so far and the rate, redrawn
 * in place at most a few times a second. When the stream is not a terminal (a pipe, a
 * file, cron mail) nothing at all is written, so scripted runs see only their result.
 */

/** What a command reports progress to. */
export interface Progress {
  /** Total bytes so far. */
  update(bytes: number): void;
  /** Clears the progress line (before the result is printed). */
  done(): void;
}

const REDRAW_MS = 200;

/** A human figure of bytes: B, KiB, MiB or GiB with one decimal. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`;
}

/** The terminal the progress goes to, and the clock that paces it. */
export interface ProgressTarget {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** Progress drawn on `target` when it is a terminal; a no-op otherwise. */
export function terminalProgress(target: ProgressTarget, label: string, now: () => number = () => Date.now()): Progress {
  if (target.isTTY !== true) return { update: () => undefined, done: () => undefined };
  const started = now();
  let lastDraw = 0;
  let drawn = false;
  return {
    update(bytes) {
      const t = now();
      if (t - lastDraw < REDRAW_MS) return;
      lastDraw = t;
      const seconds = Math.max(0.001, (t - started) / 1000);
      target.write(`\r\u001b[K${label} ${formatBytes(bytes)} ${formatBytes(bytes / seconds)}/s`);
      drawn = true;
    },
    done() {
      if (drawn) target.write('\r\u001b[K');
    },
  };
}
