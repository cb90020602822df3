/**
 * `tether-agent` as a user runs it (a child process through bin/tether-agent.mjs) against a real
 * server: enroll, pair, run, simulate — and what it prints (never a token).
 */
import { execFileSync } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCredentials } from '../src/index.js';
import {
  eventually,
  operator,
  runAgent,
  seed,
  spawnAgent,
  startTestServer,
  tempDir,
} from './support.js';

describe('tether-agent CLI', () => {
  it('enroll --url --key saves a 0600 credential file; run --session --capability gpu --capability shell is online with both and reports metrics; SIGTERM detaches', async () => {
    await using server = await startTestServer({
      env: { TETHER_HEARTBEAT_INTERVAL_MS: '200', TETHER_RATE_HEARTBEATS_PER_MINUTE: '6000' },
    });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using dir = await tempDir();
    const file = join(dir.path, 'node.json');

    const enroll = await runAgent([
      'enroll',
      '--url',
      server.url,
      '--key',
      enrollmentKey,
      '--node-id',
      'render-01',
      '--credentials',
      file,
    ]);
    expect(enroll.code, enroll.stderr).toBe(0);
    expect(enroll.stdout).toMatch(/enrolled: node render-01/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const credentials = await loadCredentials(file);
    expect(credentials).toMatchObject({ nodeId: 'render-01', url: server.url });
    expect(`${enroll.stdout}${enroll.stderr}`).not.toContain(credentials.token);

    await using agent = spawnAgent([
      'run',
      '--credentials',
      file,
      '--session',
      sessionId,
      '--capability',
      'gpu',
      '--capability',
      'shell',
    ]);
    await agent.waitForOutput(/render-01: online/);
    const found = await admin.node.findOnlineWithCapability.query({ capability: 'gpu', sessionId });
    expect(found.items.map((n) => n.nodeId)).toEqual(['render-01']);
    const { rows } = await eventually(
      () =>
        server.db.query<{
          metrics: { memoryTotalBytes?: number; uptimeSeconds?: number } | null;
        }>(`SELECT metrics FROM runtime_node_presence WHERE node_id = 'render-01'`),
      (r) => (r.rows[0]?.metrics?.memoryTotalBytes ?? 0) > 0,
    );
    expect(rows[0]!.metrics?.uptimeSeconds).toBeGreaterThan(0);
    const view = await admin.node.get.query({ nodeId: 'render-01' });
    // Declared: the two given, and the built-in commands the agent answers (with input schemas).
    expect(Object.keys(view.capabilities).sort()).toEqual([
      'echo',
      'gpu',
      'shell',
      'system.metrics',
    ]);
    expect(view.capabilities.gpu).toEqual({});
    expect(view.capabilities['system.metrics']?.inputSchema).toMatchObject({ type: 'object' });

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.stdout()).toMatch(/SIGTERM: detaching[\s\S]*stopped/);
    const roster = await admin.runtimenode.roster.query({ sessionId });
    expect(roster.nodes).toEqual([
      expect.objectContaining({ nodeId: 'render-01', state: 'offline', healthState: 'offline' }),
    ]);
    expect(`${agent.stdout()}${agent.stderr()}`).not.toContain(credentials.token);
  });

  it('pair --url prints the code, waits for approval and saves the token (0600)', async () => {
    await using server = await startTestServer();
    const admin = operator(server.url, server.adminToken);
    await using dir = await tempDir();
    const file = join(dir.path, 'paired.json');
    await using agent = spawnAgent([
      'pair',
      '--url',
      server.url,
      '--name',
      'lab printer',
      '--poll-interval',
      '100',
      '--credentials',
      file,
    ]);
    const [, code] = await agent.waitForOutput(/pairing code: (\S+)/);
    const { items } = await admin.pairing.list.query({ state: 'pending' });
    const request = items.find((r) => r.pairingCode === code);
    expect(request).toMatchObject({ name: 'lab printer' });
    await admin.pairing.approve.mutate({ requestId: request!.requestId });
    expect(await agent.exited).toBe(0);
    expect(agent.stdout()).toMatch(/approved: node \S+/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const credentials = await loadCredentials(file);
    expect(`${agent.stdout()}${agent.stderr()}`).not.toContain(credentials.token);
  });

  it('simulate --count N --session: N nodes online via the API; SIGINT stops them all and prints a summary', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000' } });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using dir = await tempDir();
    const identities = join(dir.path, 'identities.json');
    await using agent = spawnAgent(
      [
        'simulate',
        '--url',
        server.url,
        '--count',
        '5',
        '--session',
        sessionId,
        '--identities',
        identities,
        '--interval',
        '0.2',
      ],
      { TETHER_ENROLLMENT_KEY: enrollmentKey },
    );
    await agent.waitForOutput(/online=5 /);
    const found = await admin.node.findOnlineWithCapability.query({ capability: 'sim', sessionId });
    expect(found.items).toHaveLength(5);
    expect((await stat(identities)).mode & 0o777).toBe(0o600);
    agent.child.kill('SIGINT');
    expect(await agent.exited).toBe(0);
    expect(agent.stdout()).toMatch(/summary: time_to_all_online=\d+ms/);
    const roster = await admin.runtimenode.roster.query({ sessionId });
    expect(roster.nodes.map((n) => n.state)).toEqual(Array(5).fill('offline'));
    expect(agent.stdout()).not.toContain(enrollmentKey);
  });

  it('simulate --count 1 000-style (--until-online): a fleet enrolls in one call under a public limit of 2/min, with enrolled=N/N progress, admission deferrals reported apart from connect errors, and no MaxListenersExceededWarning', async () => {
    await using server = await startTestServer({
      // Per-node enrollment would need 30 minutes under this limit; the sockets are admitted
      // 20 per second, so most are deferred (told when to come back) at first.
      env: { TETHER_RATE_PUBLIC_PER_MINUTE: '2', TETHER_WS_ADMIT_PER_SECOND: '20' },
    });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using agent = spawnAgent(
      [
        'simulate',
        '--url',
        server.url,
        '--count',
        '60',
        '--session',
        sessionId,
        '--interval',
        '0.2',
        '--until-online',
      ],
      { TETHER_ENROLLMENT_KEY: enrollmentKey },
    );
    // --until-online: it ends by itself once every node is online.
    expect(await agent.exited, agent.stderr()).toBe(0);
    expect(agent.stdout()).toMatch(/enrolled=60\/60\n/);
    expect(agent.stdout()).toMatch(/ online=60 /);
    expect(agent.stdout()).toContain('all 60 nodes online: stopping the simulation...');
    const roster = await admin.runtimenode.roster.query({ sessionId });
    expect(roster.nodes).toHaveLength(60);
    const summary = /summary: .* deferred=(\d+) connect_errors=(\d+)/.exec(agent.stdout());
    expect(summary, agent.stdout()).not.toBeNull();
    expect(Number(summary![1])).toBeGreaterThan(0);
    expect(Number(summary![2])).toBe(0);
    expect(agent.stderr()).not.toContain('MaxListenersExceededWarning');
  });

  it('simulate without --session: the nodes come online by their beats alone, attached nowhere', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000' } });
    const { admin, enrollmentKey } = await seed(server.url, server.adminToken);
    await using agent = spawnAgent(
      ['simulate', '--url', server.url, '--count', '3', '--interval', '0.2'],
      { TETHER_ENROLLMENT_KEY: enrollmentKey },
    );
    await agent.waitForOutput(/online=3 /);
    const online = await admin.node.list.query({ healthState: 'online', limit: 10 });
    expect(online.items).toHaveLength(3);
    const { rows } = await server.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM runtime_node_attachments`,
    );
    expect(Number(rows[0]!.n)).toBe(0);
    agent.child.kill('SIGINT');
    expect(await agent.exited, agent.stderr()).toBe(0);
  });

  it('simulate --count > 1 with a single-use key is refused before anything is enrolled', async () => {
    await using server = await startTestServer();
    const { admin, sessionId } = await seed(server.url, server.adminToken);
    const single = await admin.enrollment.createKey.mutate({});
    const run = await runAgent(
      ['simulate', '--url', server.url, '--count', '3', '--session', sessionId],
      { TETHER_ENROLLMENT_KEY: single.enrollmentKey },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/enrollment\.key_single_use: .*Nothing was enrolled/);
    expect(run.stderr).toMatch(/needs a reusable key/);
    expect((await admin.node.list.query({ limit: 10 })).items).toEqual([]);
    const [key] = (await admin.enrollment.listKeys.query({})).items.filter(
      (k) => k.keyId === single.keyId,
    );
    expect(key).toMatchObject({ state: 'active', useCount: 0 });
  });

  it('enroll and pair refuse to replace an existing credential file without --force (nothing asked of the server); --force replaces it', async () => {
    await using server = await startTestServer();
    const { admin, enrollmentKey } = await seed(server.url, server.adminToken);
    await using dir = await tempDir();
    const file = join(dir.path, 'tether-node.json');
    const env = { TETHER_ENROLLMENT_KEY: enrollmentKey };
    const first = await runAgent(['enroll', '--url', server.url, '--credentials', file], env);
    expect(first.code, first.stderr).toBe(0);
    const before = await readFile(file, 'utf8');
    const { nodeId } = await loadCredentials(file);

    const enrollAgain = await runAgent(['enroll', '--url', server.url, '--credentials', file], env);
    expect(enrollAgain.code).toBe(1);
    expect(enrollAgain.stderr).toContain(
      `${file} already holds the credentials of node ${nodeId}; pass --force to replace them`,
    );
    const pairAgain = await runAgent(['pair', '--url', server.url, '--credentials', file]);
    expect(pairAgain.code).toBe(1);
    expect(pairAgain.stderr).toContain('pass --force to replace them');
    expect(await readFile(file, 'utf8')).toBe(before);
    expect((await admin.pairing.list.query({})).items).toEqual([]);
    expect((await admin.node.list.query({ limit: 10 })).items).toHaveLength(1);

    const forced = await runAgent(
      ['enroll', '--url', server.url, '--credentials', file, '--force'],
      env,
    );
    expect(forced.code, forced.stderr).toBe(0);
    expect((await loadCredentials(file)).nodeId).not.toBe(nodeId);
  });

  it('credential files and the server data directory are ignored by git', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const ignored = execFileSync(
      'git',
      [
        'check-ignore',
        'tether-node.json',
        'packages/node-client/tether-node.json',
        '.tether/first-admin-token',
      ],
      { cwd: root, encoding: 'utf8' },
    );
    expect(ignored.trim().split('\n')).toHaveLength(3);
  });

  it('run with a revoked credential exits 1 and says why; usage errors exit 2', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using dir = await tempDir();
    const file = join(dir.path, 'node.json');
    const enroll = await runAgent(['enroll', '--url', server.url, '--credentials', file], {
      TETHER_ENROLLMENT_KEY: enrollmentKey,
    });
    expect(enroll.code, enroll.stderr).toBe(0);
    const { nodeId } = await loadCredentials(file);
    await admin.node.revoke.mutate({ nodeId });
    const run = await runAgent(['run', '--credentials', file, '--session', sessionId]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/stopped for good: auth\.unauthenticated/);

    const usage = await runAgent(['simulate', '--count', 'many']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--url is required/);
  });

  it('--session and --node-version are checked with the contract schemas (usage error, exit 2)', async () => {
    await using dir = await tempDir();
    const file = join(dir.path, 'absent.json');
    // Hex in UUID shape but no RFC 9562 variant, and a version longer than the contract's 64
    // characters: both pass a plain pattern, and the server would refuse both.
    for (const [flag, value, message] of [
      ['--session', 'not-a-uuid', /--session must be a session UUID/],
      ['--session', '12345678-1234-1234-1234-123456789012', /--session must be a session UUID/],
      ['--node-version', '1.02', /--node-version must be MAJOR\.MINOR/],
      ['--node-version', `1${'0'.repeat(63)}.0`, /--node-version must be MAJOR\.MINOR/],
    ] as const) {
      const run = await runAgent(['run', '--credentials', file, flag, value]);
      expect(run.code, `${flag} ${value}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(message);
    }
  });
});
