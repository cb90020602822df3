/**
 * Every scenario, in the order a run executes them. Phase 2 adds event fan-out latency
 * (presence change → 100 / 1 000 dashboard subscribers), WS close → offline under ingest load,
 * and a restart with 10 000 connected agents, once the live feed and the node SDK exist.
 */
import { closeOffline } from './close-offline.js';
import { wsConnections } from './connections.js';
import { fanout } from './fanout.js';
import { httpIngest, wsIngest, writeAmplification } from './ingest.js';
import { restart } from './restart.js';
import { sweep } from './sweep.js';
import type { Scenario } from './types.js';

export const SCENARIOS: Scenario[] = [
  wsIngest,
  httpIngest,
  wsConnections,
  sweep,
  writeAmplification,
  fanout,
  closeOffline,
  restart,
];
