/**
 * CPU time of the calling thread, for the connection-function CPU limit (SPEC section 4,
 * CloudFront's compute limit): a function must be charged for its own work, not for
 * what other threads of the process did meanwhile. The gateway runs functions in a
 * worker thread while the main thread completes TLS handshakes; charging process CPU
 * time would deny well-behaved functions exactly when the gateway is busy.
 *
 * Sources, best first:
 * 1. `process.threadCpuUsage()` (Node ≥ 23.9): this thread's user + system time.
 * 2. Linux `/proc/thread-self/schedstat`: its first field is the thread's time on a
 *    CPU in nanoseconds (the scheduler's `sum_exec_runtime`). The file is opened once
 *    per thread — `/proc/thread-self` resolves to the opening thread's task directory,
 *    and every module instance (one per worker thread) opens its own — and re-read with
 *    `pread` at offset 0 (≈ 1–2 µs).
 * 3. `process.cpuUsage()`: the whole process. Only when neither of the above exists
 *    (not Linux, old Node); it over-charges when other threads are busy, which can only
 *    deny more (fail closed), never less.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Which source {@link threadCpuMs} reads (see the module comment). */
export type ThreadCpuSource = 'threadCpuUsage' | 'schedstat' | 'process';

type CpuUsageFn = () => NodeJS.CpuUsage;
const threadCpuUsage = (process as { threadCpuUsage?: CpuUsageFn }).threadCpuUsage?.bind(process);

let schedFd: number | undefined;
const schedBuf = Buffer.alloc(128);

function readSchedstatNs(fd: number): number {
  const n = readSync(fd, schedBuf, 0, schedBuf.length, 0);
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = schedBuf[i]!;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  return v;
}

function openSchedstat(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  let fd: number | undefined;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
    const probe = readSync(fd, schedBuf, 0, schedBuf.length, 0);
    if (probe > 0 && schedBuf[0]! >= 48 && schedBuf[0]! <= 57) return fd;
  } catch {
    // no procfs (containers without /proc, gVisor): fall back
  }
  if (fd !== undefined) try { closeSync(fd); } catch { /* ignore */ }
  return undefined;
}

/** The source this thread uses; decided on first use. */
export function threadCpuSource(): ThreadCpuSource {
  if (threadCpuUsage) return 'threadCpuUsage';
  if (schedFd === undefined) schedFd = openSchedstat() ?? -1;
  return schedFd >= 0 ? 'schedstat' : 'process';
}

/**
 * CPU time used so far by the calling thread, in milliseconds (fractional; only
 * differences are meaningful). See the module comment for the source and its
 * precision (nanoseconds with schedstat, microseconds otherwise). Never throws: a
 * failing read falls back to process CPU time for the rest of the thread's life.
 */
export function threadCpuMs(): number {
  const source = threadCpuSource();
  if (source === 'threadCpuUsage') {
    const u = threadCpuUsage!();
    return (u.user + u.system) / 1000;
  }
  if (source === 'schedstat') {
    try {
      return readSchedstatNs(schedFd!) / 1e6;
    } catch {
      try { closeSync(schedFd!); } catch { /* ignore */ }
      schedFd = -1;
    }
  }
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
