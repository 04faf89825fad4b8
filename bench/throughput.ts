import type { Benchmark } from './lib.js';
export const throughputBench: Benchmark = { name: 'throughput', description: 'TODO', run: async () => { throw new Error('not written yet'); } };
