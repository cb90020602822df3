import { describe, expect, it } from 'vitest';
import { loadEmbeddedPostgres } from '../../src/db/embedded.js';

describe('embedded PostgreSQL loader', () => {
  it('leaves no process signal handlers behind, so the server alone decides how it exits', async () => {
    const events = ['SIGHUP', 'SIGINT', 'SIGTERM', 'beforeExit', 'exit'] as const;
    const before = events.map((event) => process.listenerCount(event));
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    expect(typeof EmbeddedPostgres).toBe('function');
    expect(events.map((event) => process.listenerCount(event))).toEqual(before);
  });
});
