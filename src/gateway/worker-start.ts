/**
 * How a cluster worker starts its data path (cluster issue 8, outage behaviour): the
 * first workers of a node refuse to start without state (no database, no usable
 * snapshot: the node exits non-zero with the error), but a REPLACEMENT worker — the
 * node already serves, another worker keeps enforcing its state — does not exit when
 * its store is unreachable: it waits, without listening, and retries with backoff until
 * the database answers. The same wait applies whenever the snapshot is older than what
 * the node already enforced ({@link SnapshotBehindError}): serving it would fail open.
 */
import { StoreUnavailableError } from '../errors.js';
import { SnapshotBehindError } from './node.js';

/** Options of {@link startWhenStoreAvailable}. */
export interface WorkerStartOptions<T> {
  /** Starts the data path (throws StoreUnavailableError while the store cannot be used). */
  start: () => Promise<T>;
  /** True for a worker started after the node already served (waits instead of exiting). */
  replacement: boolean;
  /** Told before each wait: the reason (for the primary and `/readyz`), the attempt (1…) and the delay, ms. */
  onWaiting: (reason: string, attempt: number, delayMs: number) => void;
  /** First delay between attempts, ms (default 250); doubled up to {@link maxDelayMs}. */
  initialDelayMs?: number;
  /** Largest delay between attempts, ms (default 5000). */
  maxDelayMs?: number;
  /** Sleep (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Stop waiting (the worker is being stopped): the last error is thrown. */
  stopped?: () => boolean;
}

/**
 * Runs `start` until it succeeds. A StoreUnavailableError is waited out (backoff) when
 * the worker is a replacement or the error is a {@link SnapshotBehindError}; any other
 * error, or a store error at the node's very first start, is thrown at once.
 * @returns what `start` returned.
 * @throws the error of `start` that is not waited out, or the last one when `stopped()`.
 */
export async function startWhenStoreAvailable<T>(opts: WorkerStartOptions<T>): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const max = opts.maxDelayMs ?? 5000;
  let delay = opts.initialDelayMs ?? 250;
  let last: unknown;
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1 && opts.stopped?.()) throw last;
    try {
      return await opts.start();
    } catch (err) {
      last = err;
      if (!(err instanceof StoreUnavailableError)) throw err;
      if (!opts.replacement && !(err instanceof SnapshotBehindError)) throw err;
      if (opts.stopped?.()) throw err;
      const reason = err instanceof SnapshotBehindError ? err.message : `waiting for the database: ${err.message}`;
      opts.onWaiting(reason, attempt, delay);
      await sleep(delay);
      delay = Math.min(max, delay * 2);
    }
  }
}
