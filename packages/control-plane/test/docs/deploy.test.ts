/**
 * The deployment examples in docs/deploy work: nginx accepts docs/deploy/nginx.conf and, started
 * with it in front of two real replicas on one PostgreSQL, carries an HTTP call, a WebSocket
 * subscription, a tRPC SSE subscription and the plain SSE stream, with the client's address
 * (not one the client made up) reaching the server's per-address limits; systemd accepts
 * docs/deploy/tether.service, whose stop timeout covers the server's own drain bound.
 * The tools must be installed (.ci/run installs them); a missing one fails with its name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FleetEventView } from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../../src/trpc/root.js';
import { loadConfig } from '../../src/server/config.js';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { subscribeSse, subscribeWs, type Collected } from '../feed.js';
import { metricSample, mutate, query } from '../http.js';
import { freePort } from '../postgres.js';
import { spawnServer, type ServerProcess } from '../process-server.js';
import { REPO_ROOT } from './blocks.js';

const ADMIN = 'tpt_deploy-docs-test-bootstrap-admin-01';
const NGINX_CONF = readFileSync(join(REPO_ROOT, 'docs/deploy/nginx.conf'), 'utf8');
const UNIT = readFileSync(join(REPO_ROOT, 'docs/deploy/tether.service'), 'utf8');

/** The binary by name on PATH or in the sbin directories (not on a non-root PATH). */
function findTool(name: string, installHint: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`"${name}" not found: the deployment docs test needs it (${installHint})`);
}

/**
 * The documented configuration with only what a test machine must change: the files nginx
 * writes go to `dir`, it listens on a free loopback port, and the upstream lists our replicas.
 */
function testNginxConf(conf: string, dir: string, port: number, replicas: string[]): string {
  const upstream = /^(\s*)server 10\.0\.0\.\d+:4000( [^;]*);$/gm;
  const lines = [...conf.matchAll(upstream)];
  expect(lines.length).toBeGreaterThanOrEqual(2);
  let n = 0;
  return conf
    .replace(/^pid .*;$/m, `pid ${dir}/nginx.pid;`)
    .replace(/^error_log .*;$/m, `error_log ${dir}/error.log warn;`)
    .replace(/^(\s*)access_log [^\s;]+/m, `$1access_log ${dir}/access.log`)
    .replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`)
    .replace(upstream, (_m, indent: string, rest: string) =>
      n < replicas.length ? `${indent}server ${replicas[n++]}${rest};` : '',
    )
    .replace(
      /^http \{$/m,
      `http {\n    client_body_temp_path ${dir}/body;\n    proxy_temp_path ${dir}/proxy;`,
    );
}

/** Enrolls a node through `proxy` (a `node.enrolled` event); returns its id. */
async function enrollThrough(proxy: string, name: string): Promise<string> {
  const key = await mutate<{ enrollmentKey: string }>(
    proxy,
    'enrollment.createKey',
    {},
    { token: ADMIN },
  );
  expect(key.status).toBe(200);
  const enrolled = await mutate<{ nodeId: string }>(proxy, 'device.enroll', {
    enrollmentKey: key.data.enrollmentKey,
    name,
    nodeType: 'edge',
  });
  expect(enrolled.status).toBe(200);
  return enrolled.data.nodeId;
}

/** Waits until a live subscriber's `events` hold one about `nodeId`. */
async function seen(events: FleetEventView[], nodeId: string): Promise<void> {
  await eventually(
    () => Promise.resolve(events.map((e) => e.nodeId)),
    (ids) => ids.includes(nodeId),
  );
}

describe('docs/deploy/nginx.conf', () => {
  it('nginx -t accepts the configuration as documented', async () => {
    const nginx = findTool('nginx', 'apt-get install nginx-light');
    const dir = mkdtempSync(join(tmpdir(), 'tether-nginx-t-'));
    const port = await freePort();
    try {
      // Only what nginx touches at -t is moved: the files it writes, and the listener (-t binds
      // it, and a normal user may not bind port 80). The upstreams and the rest as written.
      const conf = NGINX_CONF.replace(/^pid .*;$/m, `pid ${dir}/nginx.pid;`)
        .replace(/^error_log .*;$/m, `error_log ${dir}/error.log warn;`)
        .replace(/^(\s*)access_log [^\s;]+/m, `$1access_log ${dir}/access.log`)
        .replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`);
      expect(conf).toContain(`listen 127.0.0.1:${port};`);
      writeFileSync(join(dir, 'nginx.conf'), conf);
      const r = spawnSync(
        nginx,
        ['-t', '-q', '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')],
        {
          encoding: 'utf8',
        },
      );
      expect(r.stderr).not.toMatch(/emerg|\[error\]/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('in front of two replicas on one PostgreSQL', () => {
    let dir: string;
    let nginx: ChildProcess | undefined;
    let nginxExited: Promise<void> = Promise.resolve();
    let replicas: ServerProcess[] = [];
    let dropDatabase: (() => Promise<void>) | undefined;
    let proxy: string;
    const streams: Collected[] = [];

    beforeAll(async () => {
      const binary = findTool('nginx', 'apt-get install nginx-light');
      const database = await createTestDatabase();
      await database.db.close();
      dropDatabase = async () => {
        const { adminQuery } = await import('../postgres.js');
        const { inject } = await import('vitest');
        await adminQuery(
          inject('pgAdminUrl'),
          `DROP DATABASE IF EXISTS ${database.name} WITH (FORCE)`,
        );
      };
      const env = {
        DATABASE_URL: database.url,
        TETHER_BOOTSTRAP_TOKEN: ADMIN,
        TETHER_TRUST_PROXY: 'true',
        TETHER_RATE_AUTH_FAILURES_PER_MINUTE: '3',
      };
      replicas.push(await spawnServer(env));
      replicas.push(await spawnServer(env));
      dir = mkdtempSync(join(tmpdir(), 'tether-nginx-'));
      mkdirSync(join(dir, 'body'));
      mkdirSync(join(dir, 'proxy'));
      const port = await freePort();
      const conf = testNginxConf(
        NGINX_CONF,
        dir,
        port,
        replicas.map((r) => new URL(r.url).host),
      );
      writeFileSync(join(dir, 'nginx.conf'), conf);
      const child = spawn(
        binary,
        ['-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      nginx = child;
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      nginxExited = new Promise((resolve) => child.once('exit', () => resolve()));
      proxy = `http://127.0.0.1:${port}`;
      await eventually(
        () =>
          fetch(`${proxy}/livez`).then(
            (r) => r.status,
            () => (child.exitCode === null ? 0 : -1),
          ),
        (status) => status === 200 || status === -1,
      );
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    });

    afterAll(async () => {
      await Promise.all(streams.map((s) => s.close()));
      nginx?.kill('SIGTERM');
      await nginxExited;
      for (const r of replicas) r.child.kill('SIGTERM');
      await Promise.all(replicas.map((r) => r.exited));
      replicas = [];
      await dropDatabase?.();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('an HTTP call, a WebSocket and a tRPC SSE subscription, and the plain SSE stream all go through it', async () => {
      // HTTP: REST and tRPC calls.
      const info = await fetch(`${proxy}/api/v1/system/info`);
      expect(info.status).toBe(200);
      expect(((await info.json()) as { contractVersion: string }).contractVersion).toMatch(
        /^\d+\.\d+$/,
      );
      const sessions = await query(proxy, 'session.list', {}, { token: ADMIN });
      expect(sessions.status).toBe(200);

      // Two long-lived subscriptions (least_conn puts them on different replicas) and the
      // plain SSE stream, all through nginx.
      const ws = subscribeWs(`${proxy.replace(/^http/, 'ws')}/trpc`, ADMIN);
      streams.push(ws);
      const sse = subscribeSse(proxy, ADMIN);
      streams.push(sse);
      const controller = new AbortController();
      const rest = await fetch(`${proxy}/api/v1/events`, {
        headers: { authorization: `Bearer ${ADMIN}` },
        signal: controller.signal,
      });
      expect(rest.status).toBe(200);
      expect(rest.headers.get('content-type')).toMatch(/^text\/event-stream/);
      let restText = '';
      const reading = (async () => {
        const decoder = new TextDecoder();
        try {
          for await (const chunk of rest.body!) restText += decoder.decode(chunk as Uint8Array);
        } catch {
          // aborted at the end of the test
        }
      })();
      try {
        // Every replica holds a subscriber: the events below cross replicas by LISTEN/NOTIFY.
        await eventually(
          () => Promise.all(replicas.map((r) => metricSample(r.url, 'tether_feed_subscribers'))),
          (counts) => counts.every((c) => c >= 1),
        );
        // Unbuffered: ": connected" arrives before any event exists.
        await eventually(
          () => Promise.resolve(restText),
          (t) => t.startsWith(': connected'),
        );

        const created = await mutate<{ sessionId: string }>(
          proxy,
          'session.create',
          { name: 'through-nginx' },
          { token: ADMIN },
        );
        expect(created.status).toBe(200);
        const key = await mutate<{ enrollmentKey: string }>(
          proxy,
          'enrollment.createKey',
          {},
          { token: ADMIN },
        );
        const enrolled = await mutate<{ nodeId: string }>(proxy, 'device.enroll', {
          enrollmentKey: key.data.enrollmentKey,
          name: 'behind nginx',
          nodeType: 'edge',
        });
        expect(enrolled.status).toBe(200);
        const nodeId = enrolled.data.nodeId;
        const seen = (events: { type: string; nodeId: string | null }[]): boolean =>
          events.some((e) => e.type === 'node.enrolled' && e.nodeId === nodeId);
        await ws.until(seen);
        await sse.until(seen);
        await eventually(
          () => Promise.resolve(restText),
          (t) => t.includes('event: node.enrolled') && t.includes(`"nodeId":"${nodeId}"`),
        );
      } finally {
        controller.abort();
        await reading;
      }
    });

    it('the access log keeps no query string, so a token in an SSE URL is never written to it', async () => {
      // An EventSource cannot send headers: tRPC's SSE link puts connectionParams (the token)
      // in the query string.
      const secret = 'tpt_in-the-query-string-never-logged';
      const r = await fetch(`${proxy}/livez?connectionParams=${secret}`);
      expect(r.status).toBe(200);
      await eventually(
        () => Promise.resolve(readFileSync(join(dir, 'access.log'), 'utf8')),
        (log) => log.includes('GET /livez '),
      );
      expect(readFileSync(join(dir, 'access.log'), 'utf8')).not.toContain(secret);
    });

    it("the server's per-address limits see the client's address, not an X-Forwarded-For the client sent", async () => {
      // Three failed authentications per minute per address (TETHER_RATE_AUTH_FAILURES_PER_MINUTE).
      // Each request claims another address; nginx must replace it with the one it saw, so the
      // fourth failure from this one client is refused as rate limited.
      const codes: number[] = [];
      for (let i = 1; i <= 5; i++) {
        const r = await fetch(`${proxy}/api/v1/sessions`, {
          headers: {
            authorization: 'Bearer tpt_not-a-token-this-server-knows',
            'x-forwarded-for': `198.51.100.${i}`,
          },
        });
        codes.push(r.status);
      }
      expect(codes.slice(0, 3)).toEqual([401, 401, 401]);
      expect(codes.slice(3)).toEqual([429, 429]);
    });

    it('a replica stopped with SIGTERM drains: its WebSocket subscription stops, and subscribing again with the last id through nginx reaches the other replica and misses nothing', async () => {
      const wsClient = createWSClient({
        url: `${proxy.replace(/^http/, 'ws')}/trpc`,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        connectionParams: { token: ADMIN },
        retryDelayMs: () => 100,
      });
      const client = createTRPCClient<AppRouter>({
        links: [wsLink({ client: wsClient, transformer: superjson })],
      });
      const events: FleetEventView[] = [];
      const failures: unknown[] = [];
      let stopped = false;
      const subscribe = (lastEventId?: string) =>
        client.fleet.events.subscribe(lastEventId === undefined ? {} : { lastEventId }, {
          onData: (t) => events.push(t.data),
          onError: (e) => failures.push(e),
          onStopped: () => (stopped = true),
        });
      const subscriptions = [subscribe()];
      try {
        const before = await Promise.all(
          replicas.map((r) => metricSample(r.url, 'tether_feed_subscribers')),
        );
        // Which replica holds it: the one whose subscriber count rises.
        const holder = await eventually(
          async () => {
            const now = await Promise.all(
              replicas.map((r) => metricSample(r.url, 'tether_feed_subscribers')),
            );
            return now.findIndex((n, i) => n > before[i]!);
          },
          (i) => i >= 0,
        );
        const stopping = replicas[holder]!;
        const other = replicas[1 - holder]!;
        await seen(events, await enrollThrough(proxy, 'before the drain'));

        stopping.child.kill('SIGTERM');
        expect(await stopping.exited).toBe(0);
        await eventually(
          () => Promise.resolve(stopped),
          (s) => s,
        );
        // While nobody listens, through nginx (the survivor answers): an event to catch up on.
        const missed = await enrollThrough(proxy, 'during the gap');
        const otherBefore = await metricSample(other.url, 'tether_feed_subscribers');
        subscriptions.push(subscribe(events.at(-1)!.id));
        await seen(events, missed);
        expect(await metricSample(other.url, 'tether_feed_subscribers')).toBe(otherBefore + 1);
        await seen(events, await enrollThrough(proxy, 'after the drain'));

        expect(failures).toEqual([]);
        // Nothing missed, nothing twice: exactly the feed's events from the first one it got.
        const first = events[0]!.id;
        const feed = await fetch(`${proxy}/api/v1/events/query`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ afterId: String(BigInt(first) - 1n), limit: 500 }),
        });
        const page = (await feed.json()) as { items: { id: string }[] };
        expect(events.map((e) => e.id)).toEqual(page.items.map((e) => e.id));
      } finally {
        for (const s of subscriptions) s.unsubscribe();
        await wsClient.close();
      }
    });
  });
});

/** A systemd unit file as sections of key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`not a unit file line: ${raw}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

describe('docs/deploy/tether.service', () => {
  const unit = parseUnit(UNIT);
  const service = unit.get('Service')!;
  const one = (key: string): string | undefined => service.get(key)?.at(-1);

  it('runs the server as a dedicated user from an environment file, restarts on failure, hardened', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(one('User')).toBe('tether');
    expect(one('EnvironmentFile')).toMatch(/^\/etc\/tether\//);
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillSignal')).toBe('SIGTERM');
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'PrivateDevices'])
      expect(one(key), key).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('CapabilityBoundingSet')).toBe('');
    // With a read-only system, the server's files (first-admin token) go to its state directory.
    expect(service.get('Environment')).toContain(
      `TETHER_DATA_DIR=/var/lib/${one('StateDirectory')}`,
    );
    // The server's entry point, at the path the unit names relative to WorkingDirectory.
    const exec = one('ExecStart')!;
    const workdir = one('WorkingDirectory')!;
    expect(exec).toMatch(/ serve$/);
    const script = exec.split(' ')[1]!;
    expect(script.startsWith(`${workdir}/`)).toBe(true);
    expect(existsSync(join(REPO_ROOT, script.slice(workdir.length + 1)))).toBe(true);
  });

  it("TimeoutStopSec outlasts the server's own drain bound (shutdown timeout + 1.5 s hard stop)", () => {
    const defaults = loadConfig({});
    const stopSec = Number(one('TimeoutStopSec'));
    expect(stopSec * 1000).toBeGreaterThan(defaults.shutdownTimeoutMs + 1_500);
  });

  it('systemd-analyze verify accepts it without a warning', () => {
    const analyze = findTool('systemd-analyze', 'apt-get install systemd');
    const node = one('ExecStart')!.split(' ')[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'tether-unit-'));
    try {
      // The only change: ExecStart's interpreter is this machine's node (verify checks it exists).
      writeFileSync(
        join(dir, 'tether.service'),
        UNIT.replace(`ExecStart=${node} `, `ExecStart=${process.execPath} `),
      );
      const r = spawnSync(analyze, ['verify', join(dir, 'tether.service')], { encoding: 'utf8' });
      expect(r.stderr.trim()).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
