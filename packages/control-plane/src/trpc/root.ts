/** The whole API: routers composed by name. `AppRouter` is what typed clients import. */
import { router } from './init.js';
import { leaseRouter, policyRouter } from './routers/access-policy.js';
import { commandRouter } from './routers/command.js';
import { deviceRouter, enrollmentRouter } from './routers/enrollment.js';
import { fleetRouter } from './routers/fleet.js';
import { pairingRouter } from './routers/pairing.js';
import { nodeRouter } from './routers/node.js';
import { participantRouter, tokenRouter } from './routers/participant.js';
import { runtimenodeRouter } from './routers/runtimenode.js';
import { membershipRouter, sessionRouter } from './routers/session.js';
import { systemRouter } from './routers/system.js';

export const appRouter = router({
  system: systemRouter,
  participant: participantRouter,
  token: tokenRouter,
  session: sessionRouter,
  membership: membershipRouter,
  node: nodeRouter,
  runtimenode: runtimenodeRouter,
  enrollment: enrollmentRouter,
  device: deviceRouter,
  pairing: pairingRouter,
  fleet: fleetRouter,
  policy: policyRouter,
  lease: leaseRouter,
  command: commandRouter,
});

export type AppRouter = typeof appRouter;
