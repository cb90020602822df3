/** Every scenario, in the order a run executes them (`pnpm bench --only a,b` picks some). */
import { closeOffline } from './close-offline.js';
import { commands } from './commands.js';
import { wsConnections } from './connections.js';
import { fanout } from './fanout.js';
import { httpIngest, wsIngest, writeAmplification } from './ingest.js';
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
