/** Every scenario, in the order a run executes them (`pnpm bench --only a,b` picks some). */
import { commands } from './commands.js';
import { wsConnections } from './connections.js';
import { httpIngest, wsIngest, writeAmplification } from './ingest.js';
import { closeOffline, fanout } from './presence.js';
import { restart } from './restart.js';
import { sweep } from './sweep.js';
import type { Scenario } from '../scenario.js';

export const SCENARIOS: Scenario[] = [
  wsIngest,
  httpIngest,
  wsConnections,
  sweep,
  writeAmplification,
  fanout,
  closeOffline,
  restart,
  commands,
];
