/**
 * Opaque bearer tokens: a recognisable prefix + 256 random bits (base64url). Only the SHA-256
 * of a token is ever stored; comparison happens by hash lookup (a unique index), and the one
 * place that compares secrets directly uses timingSafeEqual.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenPrefix = 'tpt_' | 'tnd_' | 'tek_';

export function generateToken(prefix: TokenPrefix): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Constant-time equality of two secrets (by their hashes, so lengths never leak). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashToken(a), hashToken(b));
}

/** A random URL-safe secret (claim secrets). */
export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

const CODE_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ'; // no 0/O/1/I: read aloud and typed by people

/** A short human pairing code like `K7QF-2M9D` (40 bits). */
export function generatePairingCode(): string {
  const raw = randomBytes(8);
  let code = '';
  for (let i = 0; i < 8; i++) code += CODE_ALPHABET[raw[i]! % CODE_ALPHABET.length];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}
