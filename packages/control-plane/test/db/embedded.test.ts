import { describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { tetherDir } from '../embedded-cluster.js';

describe('embedded PostgreSQL in a process', () => {
  it('leaves no process signal or exit handlers behind, so the server alone decides how it exits', async () => {
    const events = ['SIGHUP', 'SIGINT', 'SIGTERM', 'beforeExit', 'exit'] as const;
    const before = events.map((event) => process.listenerCount(event));
    const dir = await tetherDir();
    try {
      const embedded = await startEmbeddedPostgres({ dataDir: dir.pgDir, persistent: false });
      try {
        expect(events.map((event) => process.listenerCount(event))).toEqual(before);
      } finally {
        await embedded.stop();
      }
    } finally {
      await dir.remove();
    }
  }, 120_000);
});
