/**
 * The control plane's test harness for other packages' tests (`@tether/control-plane/testing`):
 * databases cloned from the run's migrated template, real servers (in process or as a child
 * process), waiting for a state, and calls over the real wire. The run's PostgreSQL is started
 * by the global setup, `@tether/control-plane/testing/global-setup`.
 */
export { createTestDatabase, useTestDatabase, type TestDatabase } from './db.js';
export { eventually } from './eventually.js';
export { errorCode, mutate, query, type CallOptions, type CallResult } from './http.js';
export { freePort } from './postgres.js';
export { spawnServer, type ServerProcess } from './process-server.js';
export {
  FAST_PRESENCE_ENV,
  fastPresenceEnv,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from './server.js';
export {
  nodeOf,
  participant,
  sessionOf,
  wsClient,
  type NodeActor,
  type ParticipantActor,
  type WsActor,
} from './wire/actors.js';
