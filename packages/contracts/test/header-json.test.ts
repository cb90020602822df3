/**
 * The handshake headers' codec (`x-tether-resume`, `x-tether-handshake`): base64url JSON, with
 * Node's native codec where `Buffer` exists and a portable one (atob/btoa) in browsers. Both
 * paths must encode the same text and accept and refuse the same inputs.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type * as ResumeModule from '../src/resume.js';

const Any = z.unknown();
const VALUES = [
  { a: 1 },
  { text: 'héllo — 世界 🚀', n: [1, 2, 3], nested: { ok: true, none: null } },
  'x',
  '',
  Array.from({ length: 300 }, (_, i) => i),
];
/** Not base64url, a length of 4k + 1, valid base64url of bytes that are not UTF-8 / not JSON. */
const BAD = [
  'a+b',
  'ab=c',
  'abcde',
  Buffer.from([0xff, 0xfe]).toString('base64url'),
  'bm90IGpzb24',
];

type Codec = typeof ResumeModule;

async function portable(): Promise<Codec> {
  vi.resetModules();
  vi.stubGlobal('Buffer', undefined);
  try {
    return await import('../src/resume.js');
  } finally {
    vi.unstubAllGlobals();
  }
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.resetModules();
});

describe('handshake header JSON', () => {
  it('encodes base64url JSON without padding, the same on both paths, and round-trips', async () => {
    const native = await import('../src/resume.js');
    const browser = await portable();
    for (const value of VALUES) {
      const expected = Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      expect(native.encodeHeaderJson(value)).toBe(expected);
      expect(browser.encodeHeaderJson(value)).toBe(expected);
      for (const codec of [native, browser]) {
        expect(codec.decodeHeaderJson(Any, expected)).toEqual({ ok: true, value });
      }
    }
  });

  it('refuses the same malformed headers on both paths', async () => {
    const native = await import('../src/resume.js');
    const browser = await portable();
    for (const text of BAD) {
      const a = native.decodeHeaderJson(Any, text);
      const b = browser.decodeHeaderJson(Any, text);
      expect(a.ok, text).toBe(false);
      expect(b, text).toEqual(a);
    }
  });
});
