import { describe, expect, it } from 'vitest';
import {
  ERROR_REGISTRY,
  FleetEventsInput,
  FleetEventView,
  FleetListInput,
  WS_CLOSE,
  isTerminalCloseCode,
} from '../src/index.js';

describe('fleet.events contract', () => {
  it('accepts a resume id and a filter; rejects unknown keys, bad ids, unknown types', () => {
    expect(FleetEventsInput.safeParse({}).success).toBe(true);
    expect(
      FleetEventsInput.safeParse({
        lastEventId: '42',
        filter: { nodeId: 'mac-studio', types: ['presence.changed'] },
      }).success,
    ).toBe(true);
    expect(FleetEventsInput.safeParse({ lastEventId: null }).success).toBe(true);
    for (const lastEventId of ['', '-1', '01', '1.5', 'abc', '12345678901234567890', 42]) {
      expect(FleetEventsInput.safeParse({ lastEventId }).success).toBe(false);
    }
    expect(FleetEventsInput.safeParse({ since: '1' }).success).toBe(false);
    expect(FleetEventsInput.safeParse({ filter: { types: ['heartbeat'] } }).success).toBe(false);
    expect(FleetEventsInput.safeParse({ filter: { types: [] } }).success).toBe(false);
    expect(FleetEventsInput.safeParse({ filter: { sessionId: 'not-a-uuid' } }).success).toBe(false);
  });

  it('an event: decimal string id (a bigint does not fit a JSON number), Date time, nullable node and session', () => {
    const event = {
      id: '9007199254740993',
      at: new Date('2026-11-23T10:00:00.000Z'),
      type: 'presence.changed',
      nodeId: 'mac-studio',
      sessionId: null,
      data: { from: 'offline', to: 'online', cause: 'connection' },
    };
    expect(FleetEventView.parse(event)).toEqual(event);
    expect(FleetEventView.safeParse({ ...event, id: 7 }).success).toBe(false);
    expect(FleetEventView.safeParse({ ...event, at: '2026-11-23T10:00:00.000Z' }).success).toBe(
      false,
    );
  });

  it('fleet.list bounds its page size', () => {
    expect(FleetListInput.safeParse({ limit: 500 }).success).toBe(true);
    expect(FleetListInput.safeParse({ limit: 501 }).success).toBe(false);
  });

  it('an expired cursor is a typed, non-retryable 412', () => {
    expect(ERROR_REGISTRY['events.cursor_expired']).toMatchObject({
      httpStatus: 412,
      trpcCode: 'PRECONDITION_FAILED',
      retryable: false,
    });
  });

  it('the revoked close code is terminal; ordinary closes are not', () => {
    expect(isTerminalCloseCode(WS_CLOSE.CREDENTIAL_REVOKED)).toBe(true);
    for (const code of [1000, 1001, 1006, 1011, 4000])
      expect(isTerminalCloseCode(code)).toBe(false);
  });
});
