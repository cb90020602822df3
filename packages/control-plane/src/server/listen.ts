/**
 * Where the server's port comes from: the listener `tether-server serve` bound before loading
 * anything (bin/boot-listener.mjs, decision 0023), adopted when it holds the configured
 * address, else a bind of its own, as always. The bin hands the listener over through a global
 * (`Symbol.for('tether.bootListener')`): it runs before, and apart from, this module graph.
 */
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';

const KEY = Symbol.for('tether.bootListener');

/** What bin/boot-listener.mjs leaves on the global object. */
interface HeldListener {
  server: NetServer;
  port: number;
  host: string;
  /** From now on, connections go to `httpServer`; the "starting" answers stop. */
  adopt(httpServer: Server): void;
}

/** The held listener (taken once) when it holds `port`/`host`; otherwise it is closed. */
function takeBootListener(port: number, host: string): HeldListener | null {
  const global = globalThis as { [KEY]?: HeldListener };
  const held = global[KEY];
  if (held === undefined) return null;
  delete global[KEY];
  if (held.port !== port || held.host !== host) {
    held.server.close();
    return null;
  }
  return held;
}

/**
 * `server` serves `port`/`host`: through the boot listener when there is one, else bound here.
 * Returns the server that holds the port (its `address()`, and `close()` on shutdown).
 */
export async function listenOn(
  server: Server,
  at: { port: number; host: string; backlog: number },
): Promise<NetServer> {
  const held = takeBootListener(at.port, at.host);
  if (held !== null) {
    held.adopt(server);
    // What `listen()` would have told it: Node's HTTP server starts tracking its connections
    // (closeIdleConnections / closeAllConnections at shutdown, the headers and request timeouts)
    // on its 'listening' event, which a server fed connections by another listener never gets.
    server.emit('listening');
    return held.server;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A reconnect wave brings thousands of connections within a second; with Node's default
    // backlog (511) the kernel drops the SYNs past it and clients retry them 1, 3, 7 s later.
    server.listen({ port: at.port, host: at.host, backlog: at.backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
