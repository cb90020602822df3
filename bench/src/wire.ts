/** The raw tRPC wire the bench's clients speak (docs/performance.md, "How the harness works"). */
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import { Histogram } from './histogram.js';
import { inLanes, preciseNow, sleep } from './ipc.js';

export const HEARTBEAT = 'runtimenode.heartbeat';

export interface NodeIdentity {
  nodeId: string;
  token: string;
}

export const wsUrl = (baseUrl: string): string =>
  `${baseUrl.replace(/^http/, 'ws')}/trpc?connectionParams=1`;

export const paramsFrame = (token: string): string =>
  JSON.stringify({ method: 'connectionParams', data: { token } });

export const callFrame = (id: number, method: string, path: string, input: unknown): string =>
  JSON.stringify({ id, method, params: { path, input: { json: input } } });

/** A metrics object that changes every beat (write-amp, the WAL probe). */
export const randomMetrics = (uptimeSeconds: number) => ({
  cpuPercent: Math.round(Math.random() * 1000) / 10,
  memoryUsedBytes: 4_000_000_000 + Math.floor(Math.random() * 1_000_000_000),
  memoryTotalBytes: 17_179_869_184,
  uptimeSeconds,
});

/** A stream's whole body as text (an HTTP request or response). */
export const readBody = (stream: NodeJS.ReadableStream): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });

/** A text frame's JSON (null for binary, keep-alive and unparsable frames); answers `PING`. */
export function frameOf(socket: WebSocket, data: WebSocket.RawData, isBinary: boolean): unknown {
  if (isBinary) return null; // tRPC's JSON encoding uses text frames only
  const bytes = Array.isArray(data) || Buffer.isBuffer(data) ? data : Buffer.from(data);
  const text = (Array.isArray(bytes) ? Buffer.concat(bytes) : bytes).toString('utf8');
  if (text === 'PING') socket.send('PONG');
  if (text === 'PING' || text === 'PONG' || text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** The Tether (or tRPC) code of a superjson-encoded error shape (`{ json: shape }`). */
export function errorCode(encoded: unknown, fallback: string): string {
  const error = (encoded as { json?: unknown } | null)?.json ?? encoded;
  const data = (error as { data?: { code?: unknown; tetherError?: { code?: unknown } } } | null)
    ?.data;
  const code = data?.tetherError?.code ?? data?.code;
  return typeof code === 'string' ? code : fallback;
}

/**
 * A one-shot answer with a deadline: the returned `settle` passes the first value to `resolve`;
 * when the deadline passes first, it settles with `timeoutValue` and runs `onTimeout`.
 */
export function settleOnce<T>(
  resolve: (value: T) => void,
  timeoutMs: number,
  timeoutValue: T,
  onTimeout?: () => void,
): (value: T) => void {
  let settled = false;
  const settle = (value: T): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    resolve(value);
  };
  const timer = setTimeout(() => {
    settle(timeoutValue);
    onTimeout?.();
  }, timeoutMs);
  return settle;
}

/** `null` when the call succeeded, else a short error code (a Tether error code when known). */
export type Done = (error: string | null) => void;

export interface TransportSpec {
  baseUrl: string;
  nodes: NodeIdentity[];
  /** WebSocket handshakes in flight at once while connecting. */
  connectConcurrency: number;
  /** HTTP keep-alive sockets per process. */
  httpMaxSockets: number;
  /** A call without an answer after this long counts as a timeout. */
  requestTimeoutMs: number;
}

/**
 * Sockets opened and failed, open → first acknowledged beat (WS), failures (retried ones too),
 * sockets the server closed while connecting (`retried`) and upgrades its admission deferred
 * (`deferred`, come back when told: not failures, as in the SDK).
 */
export type ConnectReport = Awaited<ReturnType<WsTransport['connect']>>;

const CONNECT_ATTEMPTS = 3;
/** Upgrades deferred by the server's admission are retried at the time it gave, this often. */
const MAX_DEFERRALS = 100;
const DEFERRED = 'deferred: retry after ms ';

/**
 * An upgrade the server refused settles `finish` with why; admission's answer (503 with
 * `system.unavailable` and `retryAfterMs` in the body) as a deferral `openDeferred` retries.
 */
export function onRefusedUpgrade(socket: WebSocket, finish: (why: string) => void): void {
  socket.on('unexpected-response', (_req, res) => {
    const refused = `Unexpected server response: ${res.statusCode}`;
    readBody(res).then(
      (body) => {
        const match = /"retryAfterMs":(\d+)/.exec(body);
        finish(match ? `${DEFERRED}${match[1]}` : refused);
      },
      () => finish(refused),
    );
  });
}

/** Opens again at the time each deferral gave, as clients do (at most MAX_DEFERRALS times). */
export async function openDeferred(
  open: () => Promise<string | null>,
): Promise<{ error: string | null; deferred: number }> {
  let error = await open();
  let deferred = 0;
  for (; error?.startsWith(DEFERRED) && deferred < MAX_DEFERRALS; deferred++) {
    await sleep(Number(error.slice(DEFERRED.length)));
    error = await open();
  }
  return { error, deferred };
}

export class WsTransport {
  readonly #sockets: (WebSocket | null)[];
  readonly #pending = new Map<number, { socket: number; done: Done }>();
  #nextId = 1;

  constructor(readonly spec: TransportSpec) {
    this.#sockets = spec.nodes.map(() => null);
  }

  /** Opens every node's socket; deferred and server-closed ones are retried (docs: "Connecting"). */
  async connect() {
    const started = preciseNow();
    const connect = new Histogram();
    const failures: string[] = [];
    let [failed, retried, deferred] = [0, 0, 0];
    const { nodes, connectConcurrency } = this.spec;
    await inLanes(nodes.length, connectConcurrency, async (index) => {
      const nodeId = nodes[index]!.nodeId;
      const t0 = preciseNow();
      const first = await openDeferred(() => this.openOne(index));
      let error = first.error;
      deferred += first.deferred;
      for (let attempt = 1; error !== null && attempt < CONNECT_ATTEMPTS; attempt++) {
        if (failures.length < 5) failures.push(`${nodeId}: ${error} (retried)`);
        retried++;
        await sleep(100 * attempt);
        error = await this.openOne(index);
      }
      if (error === null) connect.recordMs(preciseNow() - t0);
      else {
        failed++;
        if (failures.length < 10) failures.push(`${nodeId}: ${error}`);
      }
    });
    const opened = nodes.length - failed;
    const durationMs = preciseNow() - started;
    const histogram = connect.toData();
    return { opened, failed, connect: histogram, failures, retried, deferred, durationMs };
  }

  /** Opens node `index`'s socket and waits for its first acknowledged beat: null, or why not. */
  openOne(index: number): Promise<string | null> {
    const node = this.spec.nodes[index]!;
    return new Promise((resolve) => {
      const finish = settleOnce<string | null>(
        resolve,
        this.spec.requestTimeoutMs,
        'connect timeout',
        () => socket.terminate(),
      );
      const socket = new WebSocket(wsUrl(this.spec.baseUrl), { perMessageDeflate: false });
      socket.on('open', () => {
        this.#sockets[index] = socket;
        socket.send(paramsFrame(node.token));
        const input = { nodeId: node.nodeId, healthState: 'online' };
        if (!this.send(index, HEARTBEAT, input, finish)) finish('socket closed');
      });
      socket.on('message', (data, isBinary) => {
        const message = frameOf(socket, data, isBinary) as { id?: unknown; error?: unknown };
        const call = typeof message?.id === 'number' ? this.#pending.get(message.id) : undefined;
        if (!call) return; // reconnect notifications, connection errors
        this.#pending.delete(message.id as number);
        call.done(message.error === undefined ? null : errorCode(message.error, 'error'));
      });
      onRefusedUpgrade(socket, finish);
      socket.on('error', (error) => finish(error.message));
      socket.on('close', (code, reason) => {
        finish(`closed ${code} ${reason.toString('utf8')}`.trim());
        if (this.#sockets[index] === socket) this.#sockets[index] = null;
        for (const [id, call] of this.#pending) {
          if (call.socket !== index) continue;
          this.#pending.delete(id);
          call.done(`socket_closed_${code}`);
        }
      });
    });
  }

  /** Sends one call for node `index`; false (and `done` never called) if it cannot be sent. */
  send(index: number, path: string, input: unknown, done: Done): boolean {
    const socket = this.#sockets[index];
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    const id = this.#nextId++;
    this.#pending.set(id, { socket: index, done });
    socket.send(callFrame(id, 'mutation', path, input));
    return true;
  }

  /** Closes node `index`'s socket normally (1000); false if it was not open. */
  closeOne(index: number, reason = 'bench close'): boolean {
    const socket = this.#sockets[index];
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.close(1000, reason);
    return true;
  }

  close(): Promise<void> {
    return closeSockets(this.#sockets);
  }
}

/** Closes sockets normally, waiting at most 3 s for them to close. */
export async function closeSockets(sockets: (WebSocket | null)[]): Promise<void> {
  const closing = sockets.map((socket) =>
    !socket || socket.readyState === WebSocket.CLOSED
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.close(1000, 'bench done');
        }),
  );
  await Promise.race([Promise.all(closing), sleep(3_000)]);
}

/** The same calls over HTTP POST with a keep-alive agent (nothing to connect up front). */
export class HttpTransport {
  readonly #agent: Agent;
  readonly #url: URL;

  constructor(readonly spec: TransportSpec) {
    this.#agent = new Agent({ keepAlive: true, maxSockets: spec.httpMaxSockets });
    this.#url = new URL(spec.baseUrl);
  }

  connect(): Promise<ConnectReport> {
    const connect = new Histogram().toData();
    const opened = this.spec.nodes.length;
    const none = { failed: 0, failures: [], retried: 0, deferred: 0, durationMs: 0 };
    return Promise.resolve({ opened, connect, ...none });
  }

  send(index: number, path: string, input: unknown, done: Done): boolean {
    const body = JSON.stringify({ json: input });
    const headers = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      authorization: `Bearer ${this.spec.nodes[index]!.token}`,
    };
    const { hostname, port } = this.#url;
    const options = { agent: this.#agent, hostname, port, method: 'POST', headers };
    const req = request({ ...options, path: `/trpc/${path}` }, (res) => {
      const status = `http_${res.statusCode ?? 0}`;
      readBody(res).then(
        (text) => {
          if (res.statusCode === 200) return done(null);
          try {
            done(errorCode((JSON.parse(text) as { error?: unknown }).error, status));
          } catch {
            done(status); // not JSON: keep the status
          }
        },
        () => done('network'),
      );
    });
    req.on('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'network'));
    req.end(body);
    return true;
  }

  close(): Promise<void> {
    this.#agent.destroy();
    return Promise.resolve();
  }
}
