/**
 * The router serves exactly the contract: `WIRE_PROCEDURES` (what the snapshots, releases and
 * the gate are made of) and `appRouter` are the same set of procedures, of the same kinds, with
 * the very same Zod schema objects in `.input()` / `.output()` — and a subscription's events are
 * parsed with the contract's event schema (tRPC's `.output()` does not reach yielded values).
 */
import { WIRE_PROCEDURES, type NodeId, type WireProcedure } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { feedWritten } from '../../src/events/append.js';
import { appRouter } from '../../src/trpc/root.js';
import { eventually } from '../eventually.js';
import { subscribeSse, subscribeWs, type Collected } from '../feed.js';
import { startTestServer, type TestServer } from '../server.js';

interface ProcedureDef {
  type: string;
  inputs: unknown[];
  output?: unknown;
  meta?: { eventOutput?: unknown };
}

const procedures = Object.entries(
  appRouter._def.procedures as unknown as Record<string, { _def: ProcedureDef }>,
).map(([path, procedure]) => [path, procedure._def] as const);
const wire = Object.entries(WIRE_PROCEDURES) as Array<[string, WireProcedure]>;

describe('WIRE_PROCEDURES and appRouter agree', () => {
  it('the same procedure paths', () => {
    expect(procedures.map(([path]) => path).sort()).toEqual(wire.map(([path]) => path).sort());
  });

  it('the same kind, and the contract schema objects themselves in .input() and .output()', () => {
    const mismatches: string[] = [];
    for (const [path, def] of procedures) {
      const contract = WIRE_PROCEDURES[path as keyof typeof WIRE_PROCEDURES] as WireProcedure;
      if (def.type !== contract.kind)
        mismatches.push(`${path}: kind ${def.type} ≠ ${contract.kind}`);
      if (def.inputs.length !== 1 || def.inputs[0] !== contract.input) {
        mismatches.push(`${path}: .input() is not WIRE_PROCEDURES["${path}"].input`);
      }
      if (def.type === 'subscription') {
        if (def.output !== undefined) mismatches.push(`${path}: a subscription has .output()`);
        if (def.meta?.eventOutput !== contract.output) {
          mismatches.push(`${path}: meta.eventOutput is not WIRE_PROCEDURES["${path}"].output`);
        }
      } else if (def.output !== contract.output) {
        mismatches.push(`${path}: .output() is not WIRE_PROCEDURES["${path}"].output`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('the comparison is by identity: a structurally equal copy of a schema would not pass', () => {
    const [path, def] = procedures.find(([p]) => p === 'runtimenode.detach')!;
    const contract = WIRE_PROCEDURES[path as 'runtimenode.detach'];
    expect(def.inputs[0]).toBe(contract.input);
    expect(def.inputs[0]).not.toBe(contract.input.extend({}));
  });
});

describe('subscription events are parsed with the contract event schema', () => {
  /**
   * A contract event, then one whose type the contract does not have, both written before the
   * subscription starts; it resumes from the beginning (lastEventId 0), so it meets both in order.
   */
  async function writeGoodThenPoison(server: TestServer): Promise<void> {
    await server.db.query(
      `INSERT INTO fleet_events (type, node_id, payload)
       VALUES ('node.updated', $1,
               jsonb_build_object('changed', jsonb_build_array('labels'),
                                  'by', jsonb_build_object('kind', 'node', 'nodeId', $1::text))),
              ('node.exploded', $1, '{}')`,
      [NODE],
    );
    feedWritten(server.db);
  }
  const NODE = 'contract-node';
  const RESUME = { lastEventId: '0', filter: { nodeId: NODE as NodeId } };

  const delivered = (feed: Collected): string[] => feed.events.map((e) => e.type as string);

  it('ws: an event outside FleetEventView (unknown type) never reaches the client; the subscription ends with system.internal', async () => {
    await using server = await startTestServer();
    await writeGoodThenPoison(server);
    const feed = subscribeWs(server.wsUrl, server.adminToken, RESUME);
    try {
      await Promise.race([
        feed.failed,
        feed.until((events) => events.some((e) => (e.type as string) === 'node.exploded')),
      ]);
      expect(delivered(feed)).toEqual(['node.updated']);
      expect(feed.error).toBe('system.internal');
    } finally {
      await feed.close();
    }
  });

  it('sse: the same event never reaches the client; the server reports the failed event (the SSE client retries: system.internal is retryable)', async () => {
    await using server = await startTestServer();
    await writeGoodThenPoison(server);
    const feed = subscribeSse(server.url, server.adminToken, RESUME);
    try {
      await feed.until((events) => events.length > 0);
      const failure = (): string[] =>
        server
          .logs()
          .split('\n')
          .filter(
            (line) =>
              line.includes('"procedure":"fleet.events"') && line.includes('unhandled error'),
          );
      await eventually(
        () => Promise.resolve(failure()),
        (lines) => lines.length > 0,
      );
      expect(failure()[0]).toContain('ZodError');
      expect(failure()[0]).toContain('No matching discriminator');
      expect(delivered(feed)).toEqual(['node.updated']);
    } finally {
      await feed.close();
    }
  });
});
