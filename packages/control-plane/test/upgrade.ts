/** A WebSocket opening handshake by hand, as any client sends it (admission and drain tests). */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';

export type Outcome =
  | { admitted: true }
  | { admitted: false; status: number; retryAfter: string | undefined; body: string };

/** One WebSocket opening handshake by hand: did the server upgrade, or what did it answer? */
export function upgrade(url: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/trpc?connectionParams=1`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ admitted: true });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          admitted: false,
          status: res.statusCode ?? 0,
          retryAfter: res.headers['retry-after'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}
