/** `tether-agent enroll` and `pair`: a new identity for this machine, saved (mode 0600). */
import { access } from 'node:fs/promises';
import os from 'node:os';
import {
  CREDENTIALS_FILE_MODE,
  loadCredentials,
  saveCredentials,
  type NodeCredentials,
} from '../credentials.js';
import { enrollWithKey, pair } from '../enroll.js';
import {
  DEFAULT_CREDENTIALS,
  RefusedError,
  cancellable,
  enrollmentKey,
  httpUrl,
  out,
  parse,
  positiveInt,
} from './common.js';

function platform(): string {
  return `${process.platform}/${process.arch}`;
}

async function saved(path: string, credentials: NodeCredentials, verb: string): Promise<number> {
  await saveCredentials(path, credentials);
  out(`${verb}: node ${credentials.nodeId} (owner ${credentials.ownerParticipantId})`);
  out(`credentials saved to ${path} (mode ${CREDENTIALS_FILE_MODE.toString(8)})`);
  return 0;
}

/**
 * Refuses to replace an existing credential file unless `--force`: it may be the only copy of
 * a node's token (enroll or pair from earlier). Checked before anything is asked of the server,
 * so a refused run spends no key use and leaves no pairing request.
 */
async function assertMayWrite(path: string, force: boolean | undefined): Promise<void> {
  if (force) return;
  try {
    await access(path);
  } catch {
    return;
  }
  let holder = 'credentials';
  try {
    holder = `the credentials of node ${(await loadCredentials(path)).nodeId}`;
  } catch {
    // unreadable or not a credential file: still not ours to overwrite
  }
  throw new RefusedError(
    `${path} already holds ${holder}; pass --force to replace them (the old token is then lost), or --credentials PATH to write elsewhere`,
  );
}

export async function enrollCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    key: { type: 'string' },
    'node-id': { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    credentials: { type: 'string' },
    force: { type: 'boolean' },
  });
  const url = httpUrl(values.url, '--url');
  const key = enrollmentKey(values.key);
  const path = values.credentials ?? DEFAULT_CREDENTIALS;
  await assertMayWrite(path, values.force);
  const credentials = await enrollWithKey({
    url,
    enrollmentKey: key,
    name: values.name ?? os.hostname(),
    nodeType: values.type ?? 'daemon',
    platform: platform(),
    ...(values['node-id'] !== undefined ? { nodeId: values['node-id'] } : {}),
  });
  return saved(path, credentials, 'enrolled');
}

export async function pairCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    'node-id': { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    credentials: { type: 'string' },
    'poll-interval': { type: 'string' },
    force: { type: 'boolean' },
  });
  const url = httpUrl(values.url, '--url');
  const pollIntervalMs = positiveInt(values['poll-interval'], '--poll-interval');
  const path = values.credentials ?? DEFAULT_CREDENTIALS;
  await assertMayWrite(path, values.force);
  return cancellable('pairing', async (signal) => {
    const credentials = await pair({
      url,
      name: values.name ?? os.hostname(),
      nodeType: values.type ?? 'daemon',
      platform: platform(),
      signal,
      ...(values['node-id'] !== undefined ? { nodeId: values['node-id'] } : {}),
      ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}),
      onCode: (code, info) => {
        out(`pairing code: ${code}`);
        out(`ask an operator to approve it (expires ${info.expiresAt.toISOString()}); waiting...`);
      },
    });
    return saved(path, credentials, 'approved');
  });
}
