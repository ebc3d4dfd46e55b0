/** Pages PushPages keeps (consolidation.ts; a few per mirror). */
export const PUSH_PAGES_KEPT = 8;

/**
 * How many pages a mirror may be ahead of the slowest mirror of its convoy: the slowest one's
 * page, the pages up to the leader's and the leader's prefetched next page all stay in PushPages.
 */
export const PUSH_LEAD = PUSH_PAGES_KEPT - 2;

/**
 * The mirrors of one run's push that start from the same cursor (on a first sync, all of them):
 * they read the same pages of the feed. A mirror that sends nothing for a page (every record of it
 * is one it holds: its own pulled records) would run far ahead, and the pages it read would be
 * dropped from PushPages before the others got there and read again: the first sync of 1,000,000
 * records read the primary's feed nearly three times (bench/README.md, "Issue 10: reconcile,
 * session 2026-12-04"). So a member waits while it is PUSH_LEAD pages ahead of the slowest member
 * still pushing; the slowest never waits, and one that ends or fails leaves (no deadlock). The
 * price: a mirror's push ends no sooner than about the slowest's (the run waits for that one anyway),
 * and a mirror that stalls holds the others until its request fails.
 */
export class Convoy {
  /** Per member, the pages it has taken. */
  private readonly taken = new Map<string, number>();
  private waiting: Array<() => void> = [];

  join(member: string): void {
    this.taken.set(member, 0);
  }

  leave(member: string): void {
    this.taken.delete(member);
    this.wake();
  }

  /** Resolves when `member` may take its next page (and counts it taken). */
  async advance(member: string): Promise<void> {
    for (;;) {
      const mine = this.taken.get(member) ?? 0;
      let slowest = mine;
      for (const n of this.taken.values()) if (n < slowest) slowest = n;
      if (mine - slowest < PUSH_LEAD) break;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.taken.set(member, (this.taken.get(member) ?? 0) + 1);
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const resolve of w) resolve();
  }
}
