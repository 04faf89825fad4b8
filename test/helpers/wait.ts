/**
 * Polling for integration tests: what a test waits for is a condition with a deadline,
 * never a fixed sleep.
 */
import assert from 'node:assert/strict';

/**
 * Calls `fn` every 100 ms until it returns something other than undefined, and returns
 * that. A throw counts as "not yet" (its message is kept for the failure).
 * @throws AssertionError naming `what` (and the last error) after `timeoutMs`.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
