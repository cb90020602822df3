/**
 * Live credentials and the socket registry, on their own: revalidation ends only holds whose
 * credential it actually checked and found invalid — never one taken while the check ran — and
 * a socket whose credential ended is dead at once, closed next, terminated after the grace.
 */
import { EventEmitter, once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { LiveCredentials } from '../../src/auth/live-credentials.js';
import type { Principal } from '../../src/auth/principal.js';
import { RevocationBus } from '../../src/auth/revocations.js';
import type { AuthService } from '../../src/auth/service.js';
import { CLOSE_CREDENTIAL_REVOKED, ConnectionRegistry } from '../../src/server/connections.js';

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CLOSED = 3;
  readyState = 1;
  closedWith: number | null = null;
  terminated = false;
  close(code: number): void {
    this.closedWith = code;
    this.readyState = 2; // CLOSING: a client that ignores the close frame leaves it there
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close');
  }
}

const node = (hash: string): Principal =>
  ({
    kind: 'node',
    nodeId: `n-${hash}`,
    ownerParticipantId: 'o',
    credentialHash: hash,
  }) as Principal;

function authAnswering(): {
  auth: Pick<AuthService, 'stillValid' | 'forget'>;
  checked: string[][];
  answer: (hashes: Set<string>) => void;
} {
  const result = {
    checked: [] as string[][],
    answer: (_: Set<string>) => undefined as void,
    auth: {
      stillValid: (hashes: string[]) => {
        result.checked.push(hashes);
        return new Promise<Set<string>>((resolve) => (result.answer = resolve));
      },
      forget: () => undefined,
    },
  };
  return result;
}

describe('LiveCredentials.revalidate', () => {
  it('ends checked-and-invalid credentials only, not holds taken during the check', async () => {
    const db = authAnswering();
    const live = new LiveCredentials(db.auth, new RevocationBus());
    const valid = live.hold(node('aa'));
    const revoked = live.hold(node('bb'));

    const running = live.revalidate();
    // A node authenticates while the database answers.
    const newcomer = live.hold(node('cc'));
    db.answer(new Set(['aa']));
    expect(await running).toBe(1);

    expect(db.checked).toEqual([['aa', 'bb']]);
    expect(revoked.ended).toBe(true);
    const reason = revoked.signal.reason as { code: string; details: { reason: string } };
    expect(reason).toMatchObject({
      code: 'auth.unauthenticated',
      details: { reason: 'credential_invalid' },
    });
    expect(valid.ended).toBe(false);
    expect(newcomer.ended).toBe(false);
    expect(live.size).toBe(2);
  });

  it('a participant_suspended revocation ends every hold of that participant, and only those', () => {
    const bus = new RevocationBus();
    const live = new LiveCredentials(authAnswering().auth, bus);
    const p = (id: string, hash: string): Principal =>
      ({
        kind: 'participant',
        participantId: id,
        role: 'member',
        credentialHash: hash,
      }) as Principal;
    const a1 = live.hold(p('A', '01'));
    const a2 = live.hold(p('A', '02'));
    const b = live.hold(p('B', '03'));
    const nodeOfA = live.hold({ ...node('04'), ownerParticipantId: 'A' } as Principal);
    bus.publish({ credentialHashes: [], participantId: 'A', reason: 'participant_suspended' });
    expect([a1.ended, a2.ended, b.ended, nodeOfA.ended]).toEqual([true, true, false, false]);
  });
});

describe('ConnectionRegistry', () => {
  it('a socket whose credential ended is dead at once, gets 4401 next turn, and is terminated after the grace', async () => {
    const bus = new RevocationBus();
    const live = new LiveCredentials(authAnswering().auth, bus);
    const registry = new ConnectionRegistry({ closeGraceMs: 10 });
    const socket = new FakeSocket();
    const principal = node('ee');
    registry.add(socket as unknown as WebSocket, {
      principal,
      connectionId: '1',
      hold: live.hold(principal),
    });
    expect(registry.principalOf(socket as unknown as WebSocket)).toBe(principal);

    bus.publish({ credentialHashes: ['ee'], reason: 'token_rotated' });
    expect(registry.principalOf(socket as unknown as WebSocket)).toBeUndefined();
    expect(socket.closedWith).toBeNull();
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.closedWith).toBe(CLOSE_CREDENTIAL_REVOKED);
    await once(socket, 'close');
    expect(socket.terminated).toBe(true);
    expect(registry.size).toBe(0);
    expect(live.size).toBe(0);
  });

  it('a socket that closed before it finished authenticating is not registered and holds nothing', () => {
    const live = new LiveCredentials(authAnswering().auth, new RevocationBus());
    const registry = new ConnectionRegistry();
    const gone = new FakeSocket();
    gone.readyState = 3;
    registry.add(gone as unknown as WebSocket, {
      principal: node('dd'),
      connectionId: '4',
      hold: live.hold(node('dd')),
    });
    expect(registry.size).toBe(0);
    expect(live.size).toBe(0);
  });
});
