/** What the embedded PostgreSQL launcher throws (embedded.ts re-exports them). */

export class EmbeddedPostgresError extends Error {
  override readonly name: string = 'EmbeddedPostgresError';
}

export class EmbeddedPostgresAccessError extends EmbeddedPostgresError {
  override readonly name = 'EmbeddedPostgresAccessError';
}

/** Another live process (a running server, or a command) owns the data directory. */
export class EmbeddedPostgresInUseError extends EmbeddedPostgresError {
  override readonly name = 'EmbeddedPostgresInUseError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      `Embedded PostgreSQL: ${dataDir} is in use by process ${pid} (a running Tether server or command); stop it first (or remove ${lockFile} if that process is not Tether).`,
    );
  }
}

export class EmbeddedPostgresPortInUseError extends EmbeddedPostgresError {
  override readonly name = 'EmbeddedPostgresPortInUseError';
  constructor(readonly port: number) {
    super(`127.0.0.1:${port} is already in use by another program`);
  }
}
