/**
 * When scheduled backups run. A cron expression is evaluated by croner (never by a
 * hand-written parser); an interval is aligned to the Unix epoch. Either way the times
 * depend only on the schedule, not on when an instance started, so every etcdgate of a
 * fleet computes the same slots and ./fleet-lock.ts can let exactly one take each.
 *
 * The Scheduler arms one timer at a time for the next slot (re-armed in steps, since
 * Node timers cannot wait longer than ~24.8 days) and never runs two slots at once:
 * a slot that comes while the previous run is still going is reported and skipped.
 */
import { Cron } from 'croner';
import type { BackupSchedule } from '../config/types.js';

/** Longest delay Node timers honour. */
const MAX_TIMER_MS = 2_147_483_647;

/** The first slot strictly after `after`; null when the schedule has no more runs. */
export function nextSlot(schedule: BackupSchedule, after: Date): Date | null {
  if (schedule.kind === 'interval') {
    const period = schedule.seconds * 1000;
    return new Date((Math.floor(after.getTime() / period) + 1) * period);
  }
  return new Cron(schedule.expression, { paused: true, timezone: schedule.timezone }).nextRun(after);
}

/** The timer functions and clock the scheduler uses (injected, so tests can drive time). */
export interface SchedulerClock {
  now(): Date;
  setTimeout(callback: () => void, ms: number): { unref?(): unknown };
  clearTimeout(handle: { unref?(): unknown }): void;
}

export const SYSTEM_CLOCK: SchedulerClock = {
  now: () => new Date(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What happens at a slot. */
export interface SlotHandlers {
  /** Runs the slot; the scheduler waits for it before it runs another. */
  run(slot: Date): Promise<void>;
  /** A slot came while the previous run was still going. */
  busy(slot: Date): void;
}

export class Scheduler {
  #timer: { unref?(): unknown } | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;

  constructor(
    private readonly schedule: BackupSchedule,
    private readonly handlers: SlotHandlers,
    private readonly clock: SchedulerClock = SYSTEM_CLOCK,
  ) {}

  /** Arms the timer for the next slot. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm(this.clock.now());
  }

  /** The slot the timer is armed for (for logs and tests). */
  next: Date | null = null;

  #arm(after: Date): void {
    if (this.#stopped) return;
    const slot = nextSlot(this.schedule, after);
    this.next = slot;
    if (slot === null) return;
    this.#wait(slot);
  }

  #wait(slot: Date): void {
    const delay = slot.getTime() - this.clock.now().getTime();
    if (delay > MAX_TIMER_MS) {
      this.#timer = this.clock.setTimeout(() => this.#wait(slot), MAX_TIMER_MS);
    } else {
      this.#timer = this.clock.setTimeout(() => this.#fire(slot), Math.max(0, delay));
    }
    this.#timer.unref?.();
  }

  #fire(slot: Date): void {
    if (this.#stopped) return;
    // Timers may fire a little early; never run a slot before its time.
    if (this.clock.now().getTime() < slot.getTime()) {
      this.#wait(slot);
      return;
    }
    if (this.#running !== undefined) this.handlers.busy(slot);
    else {
      const run = this.handlers.run(slot).catch(() => undefined);
      this.#running = run;
      void run.finally(() => {
        if (this.#running === run) this.#running = undefined;
      });
    }
    this.#arm(slot);
  }

  /** Disarms the timer; resolves when a run in progress has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.next = null;
    await this.#running;
  }
}
