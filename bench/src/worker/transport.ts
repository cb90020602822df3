/**
 * The two ways a load-generator worker talks to a server: raw tRPC wire messages, no client
 * library, so one process can hold thousands of nodes cheaply.
 *
 * - WebSocket: one socket per node at `/trpc?connectionParams=1`; the first frame carries
 *   `{ token }` (tRPC connectionParams), then JSON-RPC frames `{id, method: 'mutation', params:
 *   {path, input}}`, answered by `{id, result}` or `{id, error}`. The server's keep-alive `PING`
 *   text frames are answered with `PONG`, as tRPC's own client does.
 * - HTTP: `POST /trpc/<path>` with the input as the JSON body and `Authorization: Bearer`, over a
 *   keep-alive agent shared by the worker's nodes.
 */
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import { Histogram } from '../histogram.js';
import { preciseNow, type ConnectReport, type NodeIdentity, type WorkerSpec } from '../protocol.js';
import { settleOnce } from '../settle.js';

/** `null` when the call succeeded, else a short error code (a Tether error code when known). */
export type Done = (error: string | null) => void;

export interface BeatTransport {
  connect(): Promise<ConnectReport>;
  /** Sends one call for node `index`; false (and `done` never called) if it cannot be sent. */
  send(index: number, path: string, input: unknown, done: Done): boolean;
  socketsOpen(): number;
  close(): Promise<void>;
}

const HEARTBEAT = 'runtimenode.heartbeat';
const CONNECT_ATTEMPTS = 3;
/** Upgrades deferred by the server's admission are retried at the time it gave, this often. */
const MAX_DEFERRALS = 100;
const DEFERRED = 'deferred: retry after ms ';

function deferredMs(error: string): number | null {
  return error.startsWith(DEFERRED) ? Number(error.slice(DEFERRED.length)) : null;
}

/** The registry code from a tRPC error shape, or the tRPC code, or a fallback. */
/** The Tether (or tRPC) code of a superjson-encoded error shape (`{ json: shape }`). */
function errorCode(encoded: unknown, fallback: string): string {
  const error = (encoded as { json?: unknown } | null)?.json;
  if (typeof error !== 'object' || error === null) return fallback;
  const data = (error as { data?: { code?: unknown; tetherError?: { code?: unknown } } }).data;
  const tether = data?.tetherError?.code;
  if (typeof tether === 'string') return tether;
  return typeof data?.code === 'string' ? data.code : fallback;
}

interface PendingCall {
  socket: number;
  done: Done;
}

export class WsTransport implements BeatTransport {
  readonly #spec: WorkerSpec;
  readonly #sockets: (WebSocket | null)[];
  readonly #pending = new Map<number, PendingCall>();
  #nextId = 1;
  #open = 0;

  constructor(spec: WorkerSpec) {
    this.#spec = spec;
    this.#sockets = spec.nodes.map(() => null);
  }

  socketsOpen(): number {
    return this.#open;
  }

  async connect(): Promise<ConnectReport> {
    const started = preciseNow();
    const connect = new Histogram();
    const failures: string[] = [];
    let failed = 0;
    let nextNode = 0;
    let retried = 0;
    const lane = async (): Promise<void> => {
      while (nextNode < this.#spec.nodes.length) {
        const index = nextNode++;
        const t0 = preciseNow();
        let error = await this.openOne(index);
        // An upgrade the server's admission deferred comes back when it was told to, as the
        // SDK does (not counted as a failed attempt; reported as retried).
        for (let deferrals = 0; error !== null && deferrals < MAX_DEFERRALS; deferrals++) {
          const wait = deferredMs(error);
          if (wait === null) break;
          retried++;
          await new Promise((resolve) => setTimeout(resolve, wait));
          error = await this.openOne(index);
        }
        // A socket the server closed while connecting is retried (and reported as such), so
        // the steady-state measurements run with the full fleet.
        for (let attempt = 1; error !== null && attempt < CONNECT_ATTEMPTS; attempt++) {
          if (failures.length < 5)
            failures.push(`${this.#spec.nodes[index]!.nodeId}: ${error} (retried)`);
          retried++;
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
          error = await this.openOne(index);
        }
        if (error === null) connect.recordMs(preciseNow() - t0);
        else {
          failed++;
          if (failures.length < 10) failures.push(`${this.#spec.nodes[index]!.nodeId}: ${error}`);
        }
      }
    };
    const lanes = Math.max(1, Math.min(this.#spec.connectConcurrency, this.#spec.nodes.length));
    await Promise.all(Array.from({ length: lanes }, lane));
    return {
      opened: this.#spec.nodes.length - failed,
      failed,
      connect: connect.toData(),
      failures,
      retried,
      durationMs: preciseNow() - started,
    };
  }

  /**
   * Opens node `index`'s socket, authenticates, and waits for its first acknowledged beat;
   * resolves null when connected, else why not.
   */
  openOne(index: number): Promise<string | null> {
    const node = this.#spec.nodes[index]!;
    const url = `${this.#spec.baseUrl.replace(/^http/, 'ws')}/trpc?connectionParams=1`;
    return new Promise((resolve) => {
      const finish = settleOnce<string | null>(
        resolve,
        this.#spec.requestTimeoutMs,
        'connect timeout',
        () => socket.terminate(),
      );
      const socket = new WebSocket(url, { perMessageDeflate: false });
      socket.on('open', () => {
        this.#open++;
        this.#sockets[index] = socket;
        socket.send(JSON.stringify({ method: 'connectionParams', data: { token: node.token } }));
        const sent = this.send(
          index,
          HEARTBEAT,
          { nodeId: node.nodeId, healthState: 'online' },
          finish,
        );
        if (!sent) finish('socket closed');
      });
      socket.on('message', (data, isBinary) => this.#onMessage(index, data, isBinary));
      socket.on('unexpected-response', (_req, res) => {
        // Admission's answer: 503 with `system.unavailable` and `retryAfterMs` in the body.
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const match = /"retryAfterMs":(\d+)/.exec(Buffer.concat(chunks).toString('utf8'));
          finish(
            match ? `${DEFERRED}${match[1]}` : `Unexpected server response: ${res.statusCode}`,
          );
        });
        res.on('error', () => finish(`Unexpected server response: ${res.statusCode}`));
      });
      socket.on('error', (error) => finish(error.message));
      socket.on('close', (code, reason) => {
        finish(`closed ${code} ${reason.toString('utf8')}`.trim());
        if (this.#sockets[index] === socket) {
          this.#sockets[index] = null;
          this.#open--;
        }
        for (const [id, call] of this.#pending) {
          if (call.socket === index) {
            this.#pending.delete(id);
            call.done(`socket_closed_${code}`);
          }
        }
      });
    });
  }

  #onMessage(index: number, data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return; // tRPC's JSON encoding uses text frames only
    const text = (
      Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
    ).toString('utf8');
    if (text === 'PING') {
      this.#sockets[index]?.send('PONG');
      return;
    }
    if (text === 'PONG' || text === '') return;
    let message: { id?: unknown; result?: unknown; error?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (typeof message.id !== 'number') return; // reconnect notifications, connection errors
    const call = this.#pending.get(message.id);
    if (!call) return;
    this.#pending.delete(message.id);
    call.done(message.error === undefined ? null : errorCode(message.error, 'error'));
  }

  send(index: number, path: string, input: unknown, done: Done): boolean {
    const socket = this.#sockets[index];
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    const id = this.#nextId++;
    this.#pending.set(id, { socket: index, done });
    // `{ json }`: superjson's encoding of a plain-JSON value (the tRPC transformer).
    socket.send(
      JSON.stringify({ id, method: 'mutation', params: { path, input: { json: input } } }),
    );
    return true;
  }

  /** Closes node `index`'s socket normally (1000); false if it was not open. */
  closeOne(index: number, reason = 'bench close'): boolean {
    const socket = this.#sockets[index];
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.close(1000, reason);
    return true;
  }

  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const socket of this.#sockets) {
      if (!socket) continue;
      closing.push(new Promise((resolve) => socket.once('close', () => resolve())));
      socket.close(1000, 'bench done');
    }
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => setTimeout(resolve, 3_000).unref()),
    ]);
  }
}

export class HttpTransport implements BeatTransport {
  readonly #spec: WorkerSpec;
  readonly #agent: Agent;
  readonly #url: URL;

  constructor(spec: WorkerSpec) {
    this.#spec = spec;
    this.#agent = new Agent({ keepAlive: true, maxSockets: spec.httpMaxSockets });
    this.#url = new URL(spec.baseUrl);
  }

  connect(): Promise<ConnectReport> {
    return Promise.resolve({
      opened: this.#spec.nodes.length,
      failed: 0,
      connect: new Histogram().toData(),
      failures: [],
      retried: 0,
      durationMs: 0,
    });
  }

  socketsOpen(): number {
    let open = 0;
    for (const list of Object.values(this.#agent.sockets)) open += list?.length ?? 0;
    for (const list of Object.values(this.#agent.freeSockets)) open += list?.length ?? 0;
    return open;
  }

  send(index: number, path: string, input: unknown, done: Done): boolean {
    const node: NodeIdentity = this.#spec.nodes[index]!;
    const body = JSON.stringify({ json: input });
    const req = request(
      {
        agent: this.#agent,
        hostname: this.#url.hostname,
        port: this.#url.port,
        method: 'POST',
        path: `/trpc/${path}`,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${node.token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          if (res.statusCode === 200) return done(null);
          let code = `http_${res.statusCode ?? 0}`;
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              error?: unknown;
            };
            code = errorCode(parsed.error, code);
          } catch {
            // not JSON: keep the status
          }
          done(code);
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'network'));
    req.end(body);
    return true;
  }

  close(): Promise<void> {
    this.#agent.destroy();
    return Promise.resolve();
  }
}
