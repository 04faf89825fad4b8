/**
 * Change-feed subscriptions: deliver every committed change after a starting sequence,
 * in order, exactly once per subscription, waking on {@link Store.watch} (at once for
 * this process's writes, within the poll interval for other processes'). A subscriber
 * that was away — or whose database was unreachable — catches up from its last
 * sequence without missing or reordering anything; if the changes it needs were
 * pruned, it is told to reload (`onReset`).
 */
import type { ChangeRecord, Store } from './types.js';

/** Options of {@link subscribeChanges}. */
export interface ChangeSubscriptionOptions {
  /** Deliver changes with sequence > fromSeq (the sequence the subscriber's state reflects). */
  fromSeq: number;
  /**
   * Receives changes in order, in batches of at most `batchSize`. The next batch is
   * not delivered before the returned promise settles. If it throws, the batch is
   * delivered again after `retryMs` (so a handler must be safe to retry from the same
   * batch; the replica's is, as it applies a batch atomically).
   */
  onChanges(changes: ChangeRecord[]): void | Promise<void>;
  /**
   * Called when changes the subscriber needs were pruned: reload the full state and
   * return the sequence the reloaded state reflects. Without it, a reset is an error.
   */
  onReset?(): Promise<number>;
  /**
   * Told about failures (database unreachable, handler threw); delivery retries. Also
   * told (with an Error naming both ids, before the reload) when the database's
   * identity differs from the one the subscriber's state came from.
   */
  onError?(err: unknown): void;
  /**
   * The identity ({@link Store.clusterId}) of the database the subscriber's state at
   * `fromSeq` was loaded from. Unset: the id of the first page read (read at once, when
   * the subscription starts).
   */
  clusterId?: string;
  /** Maximum changes per delivery (default 500). */
  batchSize?: number;
  /** Delay before retrying after a failure, ms (default 1000). */
  retryMs?: number;
}

/** A running subscription. */
export class ChangeSubscription {
  private running = false;
  private again = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly unwatch: () => void;
  private readonly waiters: { seq: number; resolve: () => void }[] = [];
  /** The last sequence delivered (or reloaded to). */
  lastSeq: number;
  /** True while the last attempt to read or apply changes failed (the state may be stale). */
  degraded = false;
  /** The last failure, while degraded. */
  lastError: unknown;
  /** The identity of the database the delivered state comes from (undefined until the first page). */
  clusterId: string | undefined;

  constructor(private readonly store: Store, private readonly opts: ChangeSubscriptionOptions) {
    this.lastSeq = opts.fromSeq;
    this.clusterId = opts.clusterId;
    this.unwatch = store.watch(() => this.pump());
    this.pump();
  }

  /** Reads and delivers everything available now; coalesces concurrent wake-ups. */
  pump(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    const batchSize = this.opts.batchSize ?? 500;
    try {
      for (;;) {
        this.again = false;
        if (this.stopped) return;
        const page = await this.store.changesAfter(this.lastSeq, batchSize);
        if (this.stopped) return;
        this.clusterId ??= page.clusterId;
        const replaced = page.clusterId !== this.clusterId;
        if (replaced) {
          this.opts.onError?.(new Error(
            `the database's cluster id is ${page.clusterId} but this node's state came from the database with cluster id ${this.clusterId}: `
            + 'the database was replaced (dropped and re-created, or another cluster\'s); reloading the whole state from it',
          ));
        } else if (page.reset && page.latestSeq < this.lastSeq) {
          this.opts.onError?.(new Error(
            `this node has applied change sequence ${this.lastSeq} but the database's latest is ${page.latestSeq}: `
            + 'the database was replaced or restored from an older backup; reloading the whole state from it',
          ));
        }
        if (page.reset || replaced) {
          if (!this.opts.onReset) throw new Error(`the changes after sequence ${this.lastSeq} are not in the database (pruned, or the database was replaced) and the subscriber cannot reload`);
          // The reload happens after this page was read: the next page's id must still
          // be this page's, or the reload may have read yet another database. Adopted
          // only once the reload succeeded (a failed one is retried as a reset).
          const reloaded = await this.opts.onReset();
          this.clusterId = page.clusterId;
          this.lastSeq = reloaded;
          this.settleWaiters();
          continue;
        }
        if (page.changes.length > 0) {
          await this.opts.onChanges(page.changes);
          this.lastSeq = page.changes[page.changes.length - 1]!.seq;
          this.settleWaiters();
        }
        this.degraded = false;
        this.lastError = undefined;
        if (page.changes.length < batchSize && !this.again) break;
      }
      this.running = false;
    } catch (err) {
      this.running = false;
      this.degraded = true;
      this.lastError = err;
      this.opts.onError?.(err);
      if (!this.stopped && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, this.opts.retryMs ?? 1000);
        this.retryTimer.unref();
      }
    }
  }

  private settleWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (this.lastSeq >= w.seq) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /**
   * Resolves once every change up to `seq` has been delivered. Rejects after
   * `timeoutMs` (default 10 s) or when the subscription stops.
   */
  waitFor(seq: number, timeoutMs = 10_000): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(entry);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`change ${seq} not delivered within ${timeoutMs} ms (at ${this.lastSeq})`));
      }, timeoutMs);
      const entry = { seq, resolve: () => { clearTimeout(timer); resolve(); } };
      this.waiters.push(entry);
      this.pump();
    });
  }

  /** Stops watching; no further delivery. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unwatch();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

/**
 * Subscribes to the change feed of `store` from `opts.fromSeq`. Delivery starts at
 * once (catching up on anything already committed after fromSeq).
 */
export function subscribeChanges(store: Store, opts: ChangeSubscriptionOptions): ChangeSubscription {
  return new ChangeSubscription(store, opts);
}
