/** Public surface of the control plane for embedding and for typed clients. */
export type { AppRouter } from './trpc/root.js';
export { startTether, SERVER_VERSION, type RunningTether } from './server/main.js';
export { loadConfig, type Config } from './server/config.js';
