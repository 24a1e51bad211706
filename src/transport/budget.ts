/**
 * A memory budget with two ceilings: per owner (a client connection) and for the whole
 * process. What a hostile peer can make etcdgate hold is bounded by the first; what all
 * of them together can, by the second. A reservation that would pass either ceiling is
 * refused, and the caller backs off (pauses reading, or refuses the message); releases
 * wake the owners that waited, oldest first.
 */

export class Budget {
  private readonly used = new Map<object, number>();
  private total = 0;
  private readonly waiting = new Set<() => boolean>();

  constructor(
    /** Bytes one owner may hold. */
    readonly perOwner: number,
    /** Bytes all owners together may hold. */
    readonly overall: number,
  ) {}

  /** Takes `bytes` for `owner`; false (and nothing taken) when a ceiling would be passed. */
  reserve(owner: object, bytes: number): boolean {
    const mine = this.used.get(owner) ?? 0;
    if (mine + bytes > this.perOwner || this.total + bytes > this.overall) return false;
    this.used.set(owner, mine + bytes);
    this.total += bytes;
    return true;
  }

  /** Gives back `bytes` of `owner`'s, then lets waiters retry in order. */
  release(owner: object, bytes: number): void {
    const mine = this.used.get(owner) ?? 0;
    const left = Math.max(0, mine - bytes);
    if (left === 0) this.used.delete(owner);
    else this.used.set(owner, left);
    this.total = Math.max(0, this.total - Math.min(mine, bytes));
    if (this.waiting.size === 0) return;
    for (const retry of [...this.waiting]) {
      // A waiter returns true once it got what it needed (and is then forgotten).
      if (retry()) this.waiting.delete(retry);
    }
  }

  /** Registers a retry to run on releases until it returns true; returns the function that cancels it. */
  wait(retry: () => boolean): () => void {
    this.waiting.add(retry);
    return () => this.waiting.delete(retry);
  }

  /** Bytes `owner` holds. */
  heldBy(owner: object): number {
    return this.used.get(owner) ?? 0;
  }

  /** Bytes held by all owners. */
  get held(): number {
    return this.total;
  }
}
