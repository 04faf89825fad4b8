/**
 * gateway/: a running Portcullis node — `serve` (config → applied resources → data
 * path in one process or in cluster workers → admin listener), the per-process data
 * path, and the `serve --demo` environment. Entry file.
 */
export { serve, createLogger } from './serve.js';
export type { ServeOptions, RunningServe } from './serve.js';
export { startGatewayNode } from './node.js';
export type { GatewayNode, GatewayNodeOptions } from './node.js';
export { prepareDemo, demoInstructions, startEchoOrigin, DEMO_FUNCTION_SOURCE } from './demo.js';
export type { DemoEnvironment, DemoClient, DemoOptions } from './demo.js';
