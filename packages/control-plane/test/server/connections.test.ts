/**
 * The registry of open sockets, on its own: revalidation closes only sockets whose credential
 * it actually checked and found invalid — never one that authenticated while the check ran.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { Principal } from '../../src/auth/principal.js';
import type { AuthService } from '../../src/auth/service.js';
import { CLOSE_CREDENTIAL_REVOKED, ConnectionRegistry } from '../../src/server/connections.js';

class FakeSocket extends EventEmitter {
  readonly CLOSED = 3;
  readyState = 1;
  closedWith: number | null = null;
  close(code: number): void {
    this.closedWith = code;
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

describe('ConnectionRegistry.revalidate', () => {
  it('closes checked-and-invalid credentials only, not sockets that arrived during the check', async () => {
    const registry = new ConnectionRegistry();
    const valid = new FakeSocket();
    const revoked = new FakeSocket();
    registry.add(valid as unknown as WebSocket, { principal: node('aa'), connectionId: '1' });
    registry.add(revoked as unknown as WebSocket, { principal: node('bb'), connectionId: '2' });

    let answer: (hashes: Set<string>) => void = () => undefined;
    const checked: string[][] = [];
    const auth = {
      stillValid: (hashes: string[]) => {
        checked.push(hashes);
        return new Promise<Set<string>>((resolve) => (answer = resolve));
      },
      forget: () => undefined,
    } as unknown as AuthService;

    const running = registry.revalidate(auth);
    // A node authenticates while the database answers.
    const newcomer = new FakeSocket();
    registry.add(newcomer as unknown as WebSocket, { principal: node('cc'), connectionId: '3' });
    answer(new Set(['aa']));
    expect(await running).toBe(1);

    expect(checked).toEqual([['aa', 'bb']]);
    expect(revoked.closedWith).toBe(CLOSE_CREDENTIAL_REVOKED);
    expect(valid.closedWith).toBeNull();
    expect(newcomer.closedWith).toBeNull();
    expect(registry.size).toBe(2);
  });

  it('a socket that closed before it finished authenticating is not registered', () => {
    const registry = new ConnectionRegistry();
    const gone = new FakeSocket();
    gone.readyState = 3;
    registry.add(gone as unknown as WebSocket, { principal: node('dd'), connectionId: '4' });
    expect(registry.size).toBe(0);
  });
});
