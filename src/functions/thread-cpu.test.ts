import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { threadCpuMs, threadCpuSource } from './thread-cpu.js';

test('on Linux the thread CPU clock is the scheduler\'s per-thread time (or threadCpuUsage), not the process\'s', () => {
  if (process.platform === 'linux') assert.notEqual(threadCpuSource(), 'process');
});

test('another thread burning CPU is not charged to this thread', { skip: process.platform !== 'linux' ? 'process CPU fallback off Linux' : false }, async () => {
  const started = new Promise<void>((resolve) => setImmediate(resolve));
  await started;
  const thread0 = threadCpuMs();
  const proc0 = process.cpuUsage();
  // A worker spins until it has used 300 ms of its own CPU (however loaded the machine)
  // while this thread sleeps.
  const w = new Worker(`
    const { openSync, readSync } = require('node:fs');
    const fd = openSync('/proc/thread-self/schedstat', 'r');
    const b = Buffer.alloc(64);
    const ns = () => Number(b.toString('latin1', 0, readSync(fd, b, 0, 64, 0)).split(' ')[0]);
    const start = ns();
    while (ns() - start < 300e6) {}
  `, { eval: true });
  await new Promise<void>((resolve, reject) => { w.once('exit', () => resolve()); w.once('error', reject); });
  const threadMs = threadCpuMs() - thread0;
  const p = process.cpuUsage(proc0);
  const processMs = (p.user + p.system) / 1000;
  // The process was charged the worker's spin; this thread only its own bookkeeping.
  assert.ok(processMs >= 250, `process CPU ${processMs} ms should include the worker's spin`);
  assert.ok(threadMs < processMs / 2, `thread CPU ${threadMs} ms must not include the worker's spin (process ${processMs} ms)`);
});

test('this thread\'s own work is counted, never more than wall time', () => {
  const wall0 = performance.now();
  const t0 = threadCpuMs();
  let x = 0;
  while (performance.now() - wall0 < 60) x++;
  const used = threadCpuMs() - t0;
  const wall = performance.now() - wall0;
  assert.ok(x > 0);
  assert.ok(used > 0, `thread CPU must advance while the thread works (got ${used})`);
  assert.ok(used <= wall + 1, `thread CPU ${used} ms cannot exceed wall time ${wall} ms`);
});
