/**
 * A server nobody can sign in to creates its first admin (auth/participant-tokens.ts `ensureFirstAdmin`)
 * and writes the token to `<data dir>/first-admin-token` (mode 0600, written whole and renamed
 * into place). The log names the file and never the token.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ensureFirstAdmin, FIRST_ADMIN_NAME } from '../auth/participant-tokens.js';
import type { Db } from '../db/pool.js';

export const FIRST_ADMIN_FILE = 'first-admin-token';

/** How to make an admin by hand, from the repository (docs/operations.md). */
export const CREATE_ADMIN_COMMAND = 'pnpm tether-server token create --admin --name you';

/** Writes `content` to `file` readable by its owner only; a crash never leaves half a file. */
export async function writeSecretFile(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, content, { mode: 0o600, flag: 'wx' });
    await chmod(temporary, 0o600);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

class DeliveryError extends Error {}

export interface FirstAdmin {
  participantId: string;
  /** Absolute path of the token file. */
  tokenFile: string;
}

/**
 * Creates the first admin if there is no active admin, and writes its token file. A file that
 * cannot be written leaves no admin behind (the transaction rolls back): a warning says how to
 * create one instead, and the server starts anyway.
 */
export async function createFirstAdmin(
  db: Db,
  dataDir: string,
  log: Logger,
): Promise<FirstAdmin | null> {
  const tokenFile = join(resolve(dataDir), FIRST_ADMIN_FILE);
  try {
    const created = await ensureFirstAdmin(db, async (token) => {
      try {
        await writeSecretFile(tokenFile, `${token}\n`);
      } catch (error) {
        throw new DeliveryError(error instanceof Error ? error.message : String(error));
      }
    });
    return created && { participantId: created.participantId, tokenFile };
  } catch (error) {
    if (!(error instanceof DeliveryError)) throw error;
    log.warn(
      { tokenFile, reason: error.message },
      `no admin yet, and its token file could not be written; create an admin with: ${CREATE_ADMIN_COMMAND}`,
    );
    return null;
  }
}

/** The one line that says how to get in (logged once the server listens). */
export function firstAdminMessage(admin: FirstAdmin, url: string): string {
  return `no admin yet: created participant "${FIRST_ADMIN_NAME}"; its token is in ${admin.tokenFile} (sign in at ${url}, then delete the file) — or create one: ${CREATE_ADMIN_COMMAND}`;
}
