/**
 * The router's transformer (src/trpc/transformer.ts): superjson, with an output marked shared
 * (a fanned-out event) serialised once — alone and inside tRPC's tracked `{ id, data }` — and
 * the answer frames carrying it written with its text made once; everything else as before.
 */
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { frameText, shareOutput, transformer } from '../../src/trpc/transformer.js';

const event = () => ({
  id: '42',
  type: 'presence.changed',
  at: new Date('2026-12-03T08:00:00.000Z'),
  data: { to: 'online', cause: 'heartbeat', since: new Date(5) },
});

describe('router transformer', () => {
  it('serialises a shared output once: the same result for every subscriber, equal to superjson', () => {
    const value = event();
    shareOutput(value);
    const first = transformer.output.serialize(value);
    expect(transformer.output.serialize(value)).toBe(first);
    expect(first).toEqual(superjson.serialize(value));
    expect(transformer.output.deserialize(first)).toEqual(value);
  });

  it("serialises tRPC's tracked wrapper around a shared output once per id", () => {
    const value = event();
    shareOutput(value);
    const first = transformer.output.serialize({ id: '42', data: value });
    expect(transformer.output.serialize({ id: '42', data: value })).toBe(first);
    expect(first).toEqual(superjson.serialize({ id: '42', data: value }));
    const other = transformer.output.serialize({ id: '43', data: value });
    expect(other).toEqual(superjson.serialize({ id: '43', data: value }));
    expect(transformer.output.deserialize(other)).toEqual({ id: '43', data: value });
  });

  it('serialises anything not marked shared anew (a value may change between answers)', () => {
    const value = event();
    const first = transformer.output.serialize(value);
    value.data.to = 'offline';
    const second = transformer.output.serialize(value);
    expect(second).not.toBe(first);
    expect(second).toEqual(superjson.serialize(value));
    const wrapped = { id: '42', data: value };
    expect(transformer.output.serialize(wrapped)).toEqual(superjson.serialize(wrapped));
    for (const plain of [null, 1, 'text', [1, 2]]) {
      expect(transformer.output.serialize(plain)).toEqual(superjson.serialize(plain));
    }
    shareOutput(null); // not an object: nothing to mark, no error
  });

  it('writes every answer frame as JSON.stringify does, shared payloads included', () => {
    const value = event();
    shareOutput(value);
    const tracked = transformer.output.serialize({ id: '42', data: value });
    const plain = transformer.output.serialize(value);
    const frames: unknown[] = [
      { id: 1, result: { type: 'data', data: tracked, id: '42' } },
      { id: 'sub "a"', jsonrpc: '2.0', result: { type: 'data', data: tracked, id: '42' } },
      { id: 2, jsonrpc: undefined, result: { type: 'data', data: plain } },
      { id: 3, result: { type: 'data', data: plain, id: undefined } },
      { id: 4, result: { type: 'started' } },
      { id: 5, result: { type: 'data', data: superjson.serialize(event()) } },
      { id: 6, error: { json: { message: 'no' } } },
      { result: { data: tracked, type: 'data' }, id: 7 },
      null,
      'text',
    ];
    for (const frame of frames) {
      expect(frameText(frame)).toBe(JSON.stringify(frame));
      expect(frameText(frame)).toBe(JSON.stringify(frame)); // the text kept is the same
    }
  });
});
