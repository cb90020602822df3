/**
 * The node's credential file: `{ url, nodeId, token, ownerParticipantId }` as JSON, mode 0600 —
 * the same shape `createTetherNode` takes, so `createTetherNode({ ...(await loadCredentials(p)), … })`
 * is a whole daemon's identity.
 *
 * Written atomically: a temporary file in the same directory, created with mode 0600 (and
 * chmod-ed, since the umask can only narrow a mode and an existing file keeps its own), flushed,
 * then renamed over the target — a crash leaves either the old file or the new one, never half.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { NodeId, ParticipantId, TokenString } from '@tether/contracts';
import { z } from 'zod';

export const CREDENTIALS_FILE_MODE = 0o600;

const NodeCredentialsFile = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  nodeId: NodeId,
  token: TokenString,
  ownerParticipantId: ParticipantId,
});

/** What enrollment and pairing produce, and what a node needs to connect. */
export interface NodeCredentials {
  /** Server base URL, http(s)://host:port. */
  url: string;
  nodeId: string;
  /** The node token (`tnd_…`): the node's identity. Keep it secret; never log it. */
  token: string;
  ownerParticipantId: string;
}

export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
}

function invalidFields(error: z.ZodError, root: string): string {
  return [...new Set(error.issues.map((i) => i.path.join('.') || root))].join(', ');
}

/**
 * Writes `body` to `path` with mode 0600, atomically: a fresh temporary file (mode 0600 from
 * its creation) in the same directory, flushed, then renamed over the target.
 */
async function writeSecretFile(path: string, body: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', CREDENTIALS_FILE_MODE);
  try {
    await handle.chmod(CREDENTIALS_FILE_MODE);
    await handle.writeFile(body, 'utf8');
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  // rename keeps the temporary file's mode; this is belt and braces for odd filesystems.
  await chmod(path, CREDENTIALS_FILE_MODE);
}

/** Writes the credentials to `path` with mode 0600 (atomically). */
export async function saveCredentials(path: string, credentials: NodeCredentials): Promise<void> {
  const checked = NodeCredentialsFile.safeParse(credentials);
  if (!checked.success) {
    throw new CredentialsError(
      `refusing to save invalid credentials: ${invalidFields(checked.error, '(value)')}`,
    );
  }
  await writeSecretFile(path, `${JSON.stringify(checked.data, null, 2)}\n`);
}

/** Many identities in one file (the simulator's `--identities`), mode 0600. */
export async function saveCredentialsList(
  path: string,
  list: readonly NodeCredentials[],
): Promise<void> {
  const checked = z.array(NodeCredentialsFile).safeParse(list);
  if (!checked.success) {
    throw new CredentialsError(
      `refusing to save invalid credentials: ${invalidFields(checked.error, '(value)')}`,
    );
  }
  await writeSecretFile(path, `${JSON.stringify(checked.data)}\n`);
}

async function readJson(path: string): Promise<unknown> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CredentialsError(
        `no credentials at ${path} (enroll or pair first: tether-agent enroll|pair)`,
      );
    }
    throw new CredentialsError(`cannot read credentials at ${path} (${code ?? 'error'})`);
  }
  try {
    return JSON.parse(raw);
  } catch {
    throw new CredentialsError(`credentials at ${path} are not valid JSON`);
  }
}

/** Reads a file written by `saveCredentialsList`. */
export async function loadCredentialsList(path: string): Promise<NodeCredentials[]> {
  const parsed = z.array(NodeCredentialsFile).safeParse(await readJson(path));
  if (!parsed.success) {
    throw new CredentialsError(
      `credentials at ${path} are invalid: ${invalidFields(parsed.error, '(file)')}`,
    );
  }
  return parsed.data.map((c) => ({ ...c }));
}

/** Reads and validates a credential file (the token is never part of an error message). */
export async function loadCredentials(path: string): Promise<NodeCredentials> {
  const parsed = NodeCredentialsFile.safeParse(await readJson(path));
  if (!parsed.success) {
    throw new CredentialsError(
      `credentials at ${path} are invalid: ${invalidFields(parsed.error, '(file)')}`,
    );
  }
  return { ...parsed.data };
}
