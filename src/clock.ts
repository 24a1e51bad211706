/**
 * Time, injected: the wall clock for records and deadlines, the monotonic clock for
 * durations and rates. Modules take a Clock instead of calling Date.now or
 * performance.now, so tests can drive time.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now(): number;
  /** Monotonic milliseconds (fractional), for durations. */
  monotonic(): number;
}

export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => Date.now(),
  monotonic: () => performance.now(),
});
