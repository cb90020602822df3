import {
  FleetEventView,
  FleetEventsInput,
  FleetListInput,
  FleetListOutput,
} from '@tether/contracts';
import { tracked } from '@trpc/server';
import { listEvents } from '../../events/feed.js';
import { router } from '../init.js';
import { participantProcedure, streamSignal } from '../procedures.js';
import { rest } from '../rest-meta.js';

export const fleetRouter = router({
  /** One page of the feed over plain HTTP (catch-up reads, scripts). */
  list: participantProcedure
    .meta(
      rest(
        'POST',
        '/events/query',
        'events',
        'One page of the fleet event feed (filters in the body)',
      ),
    )
    .input(FleetListInput)
    .output(FleetListOutput)
    .query(({ ctx, input }) => listEvents(ctx.deps.db, ctx.principal, input)),

  /**
   * The live feed (WebSocket or SSE). `tracked(id, …)`: a client that reconnects sends its last
   * id back and receives exactly the events it missed, then live ones. Each event is parsed with
   * `FleetEventView` on the way out (`meta.eventOutput`, see procedures.ts). It ends with
   * `auth.unauthenticated` once the caller's credential ends.
   */
  events: participantProcedure
    .input(FleetEventsInput)
    .meta({ eventOutput: FleetEventView })
    // A paused feed hub resumes before the client is told that the subscription started.
    .use(async ({ ctx, next }) => {
      await ctx.deps.feed.awaken();
      return next();
    })
    .subscription(async function* ({ ctx, input, signal }) {
      const until = streamSignal(ctx, signal);
      for await (const event of ctx.deps.feed.subscribe(ctx.principal, input, until)) {
        yield tracked(event.id, event);
      }
    }),
});
