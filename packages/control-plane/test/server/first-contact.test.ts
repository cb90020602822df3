/**
 * A newcomer's first contact, through real processes: a fresh server creates its first admin
 * and says where the token is (once, never the token itself); `tether-server token create` and
 * `tether-server pairing …` work while the server runs on its embedded database, and say what
 * to do when they cannot.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { embeddedEnv, tetherDir } from '../embedded-cluster.js';
import { mutate, query } from '../http.js';
import { launchServer, spawnServer, type ServerProcess } from '../process-server.js';

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));
const REPO_DIR = fileURLToPath(new URL('../../../..', import.meta.url));
const TEST_MS = 240_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-first-contact-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function database(): Promise<string> {
  const created = await createTestDatabase();
  cleanups.push(() => created.drop());
  return created.url;
}

async function serve(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const server = await spawnServer({ TETHER_BOOTSTRAP_TOKEN: undefined, ...env });
  cleanups.push(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });
  return server;
}

async function stop(server: ServerProcess): Promise<void> {
  server.child.kill('SIGTERM');
  expect(await server.exited, server.output().slice(-3000)).toBe(0);
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `tether-server …` as an operator runs it, in its own process. */
function cli(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  const merged: NodeJS.ProcessEnv = { ...process.env, TETHER_BOOTSTRAP_TOKEN: undefined };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/server/cli.ts', ...args],
      { cwd: PACKAGE_DIR, env: merged, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The server's JSON log lines with this message (prefix). */
function logLines(server: ServerProcess, msg: string): Record<string, unknown>[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => typeof line.msg === 'string' && line.msg.startsWith(msg));
}

const tokenOf = async (file: string): Promise<string> => (await readFile(file, 'utf8')).trim();

describe('first start: the first admin', () => {
  it(
    'with no admin, the server creates "admin", writes its token to <data dir>/first-admin-token (0600, absolute path) and logs one line naming the file, never the token; the token signs in; a restart says nothing',
    async () => {
      const cwd = await tempDir();
      const url = await database();
      // Relative, as in the default `./.tether`: resolved against where the command ran.
      const env = { DATABASE_URL: url, TETHER_DATA_DIR: 'data', INIT_CWD: cwd };
      const first = await serve(env);
      const file = join(cwd, 'data', 'first-admin-token');
      const lines = logLines(first, 'no admin yet');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.level).toBe(30);
      expect(lines[0]!.msg).toBe(
        `no admin yet: created participant "admin"; its token is in ${file} (sign in at ${first.url}, then delete the file) — or create one: pnpm tether-server token create --admin --name you`,
      );
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const token = await tokenOf(file);
      expect(token).toMatch(/^tpt_/);
      expect(first.output()).not.toContain(token);
      // The config line shows an unset bootstrap token as null, not as a redacted secret.
      const config = logLines(first, 'configuration')[0]!.config as Record<string, unknown>;
      expect(config.bootstrapToken).toBeNull();

      const listed = await query<{ items: { name: string; role: string }[] }>(
        first.url,
        'participant.list',
        {},
        { token },
      );
      expect(listed.status, listed.raw).toBe(200);
      expect(listed.data.items).toEqual([
        expect.objectContaining({ name: 'admin', role: 'admin' }),
      ]);
      await stop(first);

      await rm(file);
      const second = await serve(env);
      expect(logLines(second, 'no admin yet')).toHaveLength(0);
      await expect(stat(file)).rejects.toThrow();
      const again = await query<{ items: unknown[] }>(
        second.url,
        'participant.list',
        {},
        { token },
      );
      expect(again.data.items).toHaveLength(1);
      await stop(second);
    },
    TEST_MS,
  );

  it(
    'replicas starting together on one database create one admin, and one of them says so',
    async () => {
      const url = await database();
      const [a, b] = await Promise.all(
        [await tempDir(), await tempDir()].map((dir) =>
          serve({ DATABASE_URL: url, TETHER_DATA_DIR: dir }),
        ),
      );
      const said = [a!, b!].map((s) => logLines(s, 'no admin yet').length);
      expect([...said].sort()).toEqual([0, 1]);
      const writer = said[0] === 1 ? a! : b!;
      const file = logLines(writer, 'no admin yet')[0]!.tokenFile as string;
      const listed = await query<{ items: { name: string }[] }>(
        a!.url,
        'participant.list',
        {},
        { token: await tokenOf(file) },
      );
      expect(listed.data.items.map((p) => p.name)).toEqual(['admin']);
      await stop(a!);
      await stop(b!);
    },
    TEST_MS,
  );

  it(
    'with TETHER_BOOTSTRAP_TOKEN, or with an admin already there, nothing is created and nothing said',
    async () => {
      const dir = await tempDir();
      const bootstrap = 'tpt_first-contact-bootstrap-token-0001';
      const withToken = await serve({
        DATABASE_URL: await database(),
        TETHER_DATA_DIR: dir,
        TETHER_BOOTSTRAP_TOKEN: bootstrap,
      });
      expect(logLines(withToken, 'no admin yet')).toHaveLength(0);
      const config = logLines(withToken, 'configuration')[0]!.config as Record<string, unknown>;
      expect(config.bootstrapToken).toBe('[redacted]');
      await expect(stat(join(dir, 'first-admin-token'))).rejects.toThrow();
      await stop(withToken);

      const url = await database();
      const made = await cli(['token', 'create', '--admin', '--name', 'ops'], {
        DATABASE_URL: url,
        TETHER_DATA_DIR: dir,
      });
      expect(made.code, made.stderr).toBe(0);
      const withAdmin = await serve({ DATABASE_URL: url, TETHER_DATA_DIR: dir });
      expect(logLines(withAdmin, 'no admin yet')).toHaveLength(0);
      await expect(stat(join(dir, 'first-admin-token'))).rejects.toThrow();
      await stop(withAdmin);
    },
    TEST_MS,
  );
});

describe('tether-server commands while the server runs', () => {
  it(
    'token create uses the running server’s embedded database; when it cannot, it says what to do',
    async () => {
      const dir = await tetherDir();
      cleanups.push(() => dir.remove());
      const env = embeddedEnv(dir);
      const server = await serve(env);
      const made = await cli(['token', 'create', '--admin', '--name', 'you'], env);
      expect(made.code, made.stderr).toBe(0);
      expect(made.stderr).toContain('using the database of the running server');
      const token = /^token\s+(tpt_\S+)$/m.exec(made.stdout)?.[1];
      expect(token, made.stdout).toBeDefined();
      const listed = await query<{ items: { name: string }[] }>(
        server.url,
        'participant.list',
        {},
        { token: token! },
      );
      expect(listed.status, listed.raw).toBe(200);
      expect(listed.data.items.map((p) => p.name).sort()).toEqual(['admin', 'you']);

      // The recorded credentials no longer open the database: a clear way out, no stack trace.
      const stateFile = `${dir.pgDir}.json`;
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as {
        rolePasswords: Record<string, string>;
      };
      state.rolePasswords.tether = 'x'.repeat(32);
      await writeFile(stateFile, JSON.stringify(state));
      const refused = await cli(['token', 'create', '--name', 'nobody'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`The Tether server (process ${server.child.pid})`);
      expect(refused.stderr).toContain('stop the server (Ctrl-C) and run the command again');
      expect(refused.stderr).not.toMatch(/undefined|\n\s+at /);
      await stop(server);
    },
    TEST_MS,
  );

  it(
    'pairing list / approve / reject by the code the device shows',
    async () => {
      const dir = await tempDir();
      const env = { DATABASE_URL: await database(), TETHER_DATA_DIR: dir };
      const server = await serve(env);
      const request = async (name: string) => {
        const r = await mutate<{ requestId: string; pairingCode: string; claimSecret: string }>(
          server.url,
          'pairing.request',
          { name, nodeType: 'daemon' },
        );
        expect(r.status, r.raw).toBe(200);
        return r.data;
      };
      const kept = await request('kept box');
      const dropped = await request('dropped box');

      const listed = await cli(['pairing', 'list'], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain(kept.pairingCode);
      expect(listed.stdout).toContain(dropped.pairingCode);

      const approved = await cli(['pairing', 'approve', kept.pairingCode.toLowerCase()], env);
      expect(approved.code, approved.stderr).toBe(0);
      expect(approved.stdout).toContain(`approved request ${kept.requestId} as admin`);
      const rejected = await cli(['pairing', 'reject', dropped.pairingCode], env);
      expect(rejected.code, rejected.stderr).toBe(0);

      const claimed = await mutate<{ state: string; nodeToken?: string }>(
        server.url,
        'pairing.claim',
        { requestId: kept.requestId, claimSecret: kept.claimSecret },
      );
      expect(claimed.data.state).toBe('approved');
      expect(claimed.data.nodeToken).toMatch(/^tnd_/);
      const refused = await mutate<{ state: string }>(server.url, 'pairing.claim', {
        requestId: dropped.requestId,
        claimSecret: dropped.claimSecret,
      });
      expect(refused.data.state).toBe('rejected');

      const again = await cli(['pairing', 'approve', kept.pairingCode], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('pairing.not_pending');
      const unknown = await cli(['pairing', 'approve', 'nope'], env);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('not a pairing code or a request id');
      expect((await cli(['pairing', 'list'], env)).stdout).toContain('no pending pairing requests');
      await stop(server);
    },
    TEST_MS,
  );
});

/**
 * A root script as a user runs it, in a process group of its own: a terminal's Ctrl-C is a
 * SIGINT to every process of the foreground group (pnpm, the shells it runs scripts with, the
 * server), which is what `kill(-pgid)` sends.
 */
function runScript(args: string[], env: Record<string, string | undefined>) {
  const merged: NodeJS.ProcessEnv = { ...process.env, TETHER_PORT: '0', TETHER_HOST: '127.0.0.1' };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  const child = spawn('pnpm', args, {
    cwd: REPO_DIR,
    env: merged,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer): void => void (output += chunk.toString('utf8'));
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
    await exited;
  });
  return { child, exited, output: () => output };
}

describe('the commands in the README', () => {
  it(
    'Ctrl-C on `pnpm start` and `pnpm tether-server serve`: a graceful stop, exit 0, and no failure printed by pnpm',
    async () => {
      const dir = await tempDir();
      const env = { DATABASE_URL: await database(), TETHER_DATA_DIR: dir };
      for (const args of [['start'], ['tether-server', 'serve']]) {
        const run = runScript(args, env);
        await eventually(
          () => Promise.resolve(run.output()),
          (text) => text.includes('tether listening'),
          120_000,
        );
        process.kill(-run.child.pid!, 'SIGINT');
        expect(await run.exited, run.output()).toBe(0);
        expect(run.output()).toContain('shutdown complete');
        expect(run.output()).not.toMatch(/ERR_PNPM|ELIFECYCLE|Command failed/);
      }
    },
    TEST_MS,
  );

  it(
    'a signal while the server is still starting stops it as soon as it has started: exit 0, not a kill',
    async () => {
      const dir = await tempDir();
      const server = launchServer({
        DATABASE_URL: await database(),
        TETHER_DATA_DIR: dir,
        TETHER_BOOTSTRAP_TOKEN: undefined,
      });
      cleanups.push(async () => {
        server.child.kill('SIGKILL');
        await server.exited;
      });
      await eventually(
        () => Promise.resolve(server.output()),
        (text) => text.includes('"msg":"configuration"'),
        60_000,
      );
      server.child.kill('SIGINT');
      expect(await server.exited, server.output()).toBe(0);
      expect(server.output()).toContain('tether listening');
      expect(server.output()).toContain('shutdown complete');
    },
    TEST_MS,
  );

  it(
    'turbo says nothing about telemetry: every root script that runs turbo disables it',
    async () => {
      const pkg = JSON.parse(await readFile(join(REPO_DIR, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      const turboRuns = Object.entries(pkg.scripts).flatMap(([name, script]) =>
        script
          .split('&&')
          .map((part) => part.trim())
          .filter((part) => /(^|\s)turbo\s/.test(part))
          .map((part) => [name, part] as const),
      );
      expect(turboRuns.length).toBeGreaterThan(0);
      for (const [name, part] of turboRuns) {
        expect(part, `script "${name}"`).toMatch(/^TURBO_TELEMETRY_DISABLED=1 /);
      }
      // And as a first-time user sees it (no turbo configuration yet): no notice.
      const config = await tempDir();
      const run = runScript(['typecheck', '--dry=json'], { XDG_CONFIG_HOME: config });
      expect(await run.exited, run.output()).toBe(0);
      expect(run.output()).not.toMatch(/collects completely anonymous telemetry/);
    },
    TEST_MS,
  );
});
