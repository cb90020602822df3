/**
 * Getting an identity: the pairing flow end to end (request → code → operator approves or
 * rejects → claim), and the credential file (mode 0600, atomic, validated, token-free errors).
 */
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CREDENTIALS_FILE_MODE,
  CredentialsError,
  PairingError,
  createTetherNode,
  loadCredentials,
  pair,
  saveCredentials,
  type NodeCredentials,
} from '../src/index.js';
import { operator, seed, startTestServer, tempDir } from './support.js';

describe('pairing flow end to end', () => {
  it('pair: the code the daemon shows is the one the operator sees pending; approval hands the token over exactly once and the node comes online with it', async () => {
    await using server = await startTestServer();
    const { admin, sessionId } = await seed(server.url, server.adminToken);
    const shown: string[] = [];
    let approved: Promise<unknown> | undefined;
    const credentials = await pair({
      url: server.url,
      name: 'kiosk 4',
      nodeType: 'desktop',
      platform: 'linux/x64',
      nodeId: 'kiosk-4',
      pollIntervalMs: 50,
      onCode: async (code) => {
        shown.push(code);
        const { items } = await admin.pairing.list.query({ state: 'pending' });
        const request = items.find((r) => r.pairingCode === code);
        expect(request).toMatchObject({ name: 'kiosk 4', requestedNodeId: 'kiosk-4' });
        // The operator decides while the daemon polls.
        approved = admin.pairing.approve.mutate({ requestId: request!.requestId });
      },
    });
    await approved;
    expect(shown).toHaveLength(1);
    expect(credentials).toMatchObject({
      url: server.url,
      nodeId: 'kiosk-4',
      ownerParticipantId: server.adminParticipantId,
    });
    expect(credentials.token).toMatch(/^tnd_/);
    const { items } = await admin.pairing.list.query({});
    expect(items).toEqual([expect.objectContaining({ nodeId: 'kiosk-4', state: 'claimed' })]);

    const node = createTetherNode({ ...credentials, sessionId, capabilities: { display: {} } });
    try {
      await node.start();
      await node.waitFor('online');
      expect(await admin.node.isOnline.query({ nodeId: 'kiosk-4' })).toMatchObject({
        online: true,
      });
    } finally {
      await node.stop();
    }
  });

  it('pair: an operator rejection ends the wait with PairingError(rejected)', async () => {
    await using server = await startTestServer();
    const admin = operator(server.url, server.adminToken);
    const outcome = await pair({
      url: server.url,
      name: 'unknown box',
      nodeType: 'edge',
      pollIntervalMs: 50,
      onCode: async (code) => {
        const { items } = await admin.pairing.list.query({ state: 'pending' });
        const request = items.find((r) => r.pairingCode === code)!;
        await admin.pairing.reject.mutate({ requestId: request.requestId });
      },
    }).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(PairingError);
    expect(outcome).toMatchObject({ outcome: 'rejected', code: 'pairing.rejected' });
  });

  it('pair: aborting while waiting stops polling and rejects with the abort reason', async () => {
    await using server = await startTestServer();
    const controller = new AbortController();
    const outcome = await pair({
      url: server.url,
      name: 'impatient',
      nodeType: 'edge',
      pollIntervalMs: 50,
      signal: controller.signal,
      onCode: () => controller.abort(new Error('user pressed ctrl-c')),
    }).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toBe('user pressed ctrl-c');
  });
});

const CREDENTIALS: NodeCredentials = {
  url: 'http://127.0.0.1:4000',
  nodeId: 'mac-studio',
  token: 'tnd_0123456789abcdef0123456789abcdef0123456789abcdef',
  ownerParticipantId: '7b0e1c43-5c6e-4f0b-9d43-0f2d7f7a3b10',
};

describe('credential file', () => {
  it('is written with mode 0600 whatever the umask, also over an existing world-readable file, and round-trips', async () => {
    await using dir = await tempDir();
    const path = join(dir.path, 'nested', 'tether-node.json');
    const previous = process.umask(0o000);
    try {
      await saveCredentials(path, CREDENTIALS);
      expect((await stat(path)).mode & 0o777).toBe(CREDENTIALS_FILE_MODE);
      await chmod(path, 0o644);
      await saveCredentials(path, { ...CREDENTIALS, nodeId: 'mac-mini' });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(previous);
    }
    expect(await loadCredentials(path)).toEqual({ ...CREDENTIALS, nodeId: 'mac-mini' });
    // Atomic: no temporary file is left behind.
    expect(await readdir(join(dir.path, 'nested'))).toEqual(['tether-node.json']);
  });

  it('a missing, malformed or invalid file is a CredentialsError that names the problem but never the token', async () => {
    await using dir = await tempDir();
    const path = join(dir.path, 'creds.json');
    await expect(loadCredentials(path)).rejects.toThrow(/no credentials at .*enroll or pair/);
    await writeFile(path, '{not json');
    await expect(loadCredentials(path)).rejects.toThrow(/not valid JSON/);
    await writeFile(path, JSON.stringify({ ...CREDENTIALS, nodeId: 'has spaces' }));
    const error = await loadCredentials(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialsError);
    expect((error as Error).message).toMatch(/invalid: nodeId/);
    expect((error as Error).message).not.toContain(CREDENTIALS.token);
    await expect(saveCredentials(path, { ...CREDENTIALS, url: 'ftp://x' })).rejects.toThrow(
      /invalid credentials: url/,
    );
    // The refused save left the previous content alone.
    expect(await readFile(path, 'utf8')).toContain('has spaces');
  });
});
