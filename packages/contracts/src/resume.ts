/**
 * Resume in the WebSocket handshake. A reconnecting node sends, with its `GET /trpc` upgrade,
 * `Authorization: Bearer <token>`, `x-tether-client-version` and — when it had an attachment —
 * `x-tether-resume: base64url(JSON ResumeClaim)`: what it was. The server checks the claim and
 * binds presence in one statement, and answers in the 101 response with
 * `x-tether-handshake: base64url(JSON HandshakeAnswer)`: whether the attachment was resumed (or
 * why not) and what the node would otherwise ask `system.info` for.
 *
 * Pure (no `node:` imports): the capabilities digest is SHA-256 (hex) of
 * `canonicalJson(capabilities)`, computed with each side's own hash function
 * (in Node: `capabilitiesDigest`, exported by the contracts package's `node` entry).
 */
import { z } from 'zod';
import { AttachmentId, SessionId } from './ids.js';
import { AttachmentState, RuntimeNodeHealthState } from './states.js';
import { SystemInfoOutput } from './schemas/system.js';
import { EventEnvelopeVersion } from './version.js';

/** Request header: the claim (base64url of its JSON). */
export const RESUME_HEADER = 'x-tether-resume';
/** 101 response header: the answer (base64url of its JSON). */
export const HANDSHAKE_HEADER = 'x-tether-handshake';
/** Request header: the contract version the client speaks (as over HTTP). */
export const CLIENT_VERSION_HEADER = 'x-tether-client-version';
/** Upper bound of an encoded claim header (characters). */
export const RESUME_HEADER_MAX_LENGTH = 2_048;

/**
 * JSON with object keys sorted (UTF-16 code unit order) at every depth and no whitespace: the
 * same value gives the same text whatever order its keys were declared in. Arrays keep their
 * order; `undefined` members are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const v = record[key];
    if (v === undefined || typeof v === 'function') continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A SHA-256 digest, lowercase hex. */
export const CapabilitiesDigest = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

/** What a reconnecting node was: sent in `x-tether-resume`. */
export const ResumeClaim = z.strictObject({
  attachmentId: AttachmentId,
  sessionId: SessionId,
  /** The node software's version (`MAJOR.MINOR`), compared with the session's floor. */
  nodeVersion: EventEnvelopeVersion,
  /** SHA-256 (hex) of `canonicalJson` of the capabilities it last declared. */
  capabilitiesDigest: CapabilitiesDigest,
  /** The health it reports (what the attachment and presence come back to). */
  healthState: RuntimeNodeHealthState,
});
export type ResumeClaim = z.infer<typeof ResumeClaim>;

/** Why a handshake did not resume an attachment. */
export const ResumeRefusalReason = z.enum([
  /** No `x-tether-resume` header (or not a node credential). */
  'no_claim',
  /** The attachment is not active, or is not this node's (the same answer: no oracle). */
  'attachment_ended',
  /** The attachment is this node's and active, but in another session than claimed. */
  'session_mismatch',
  /** The stored capabilities digest differs from the claimed one. */
  'capabilities_changed',
  /** The node version differs from the one the attachment recorded. */
  'version_changed',
  /** The node version is below the session's floor now: attach again (read-only). */
  'floor_raised',
  /** The node's owner may no longer attach to the session. */
  'access_changed',
  /** The check could not run (database error); attach as usual. */
  'unavailable',
]);
export type ResumeRefusalReason = z.infer<typeof ResumeRefusalReason>;

/**
 * The server's answer in the 101 response (`x-tether-handshake`): everything `system.info`
 * answers (so a reconnecting client need not call it), and the resume's outcome.
 */
export const HandshakeAnswer = SystemInfoOutput.extend({
  resumed: z.boolean(),
  /** Set when not resumed. */
  reason: ResumeRefusalReason.optional(),
  /** The resumed attachment's state (null when not resumed). */
  state: AttachmentState.nullable(),
  /** The resumed attachment's read-only flag (false when not resumed: attach reports it). */
  readOnly: z.boolean(),
});
export type HandshakeAnswer = z.infer<typeof HandshakeAnswer>;

/**
 * Node's `Buffer` where there is one (the server, the SDK): its base64url codec is native, where
 * `atob`/`btoa` are JavaScript in Node 20 and were a visible share of a reconnect wave's CPU
 * (docs/performance.md, "Resume protocol"). Browsers use the portable path.
 */
const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;

/** One of each for every header (both are stateless outside streaming). */
const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder('utf-8', { fatal: true });

/** base64url (no padding) of a string's UTF-8. */
function toBase64Url(text: string): string {
  if (NodeBuffer) return NodeBuffer.from(text, 'utf8').toString('base64url');
  let binary = '';
  for (const b of UTF8_ENCODER.encode(text)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array | null {
  // As forgiving-base64 (atob) decides: the alphabet only, and no length of 4k + 1.
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  if (NodeBuffer) return NodeBuffer.from(text, 'base64url');
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** base64url (no padding) of a value's JSON, UTF-8. */
export function encodeHeaderJson(value: unknown): string {
  return toBase64Url(JSON.stringify(value));
}

/** A header's base64url JSON parsed with `schema`; an error message when it does not decode. */
export function decodeHeaderJson<S extends z.ZodType>(
  schema: S,
  text: string,
): { ok: true; value: z.infer<S> } | { ok: false; message: string } {
  const bytes = fromBase64Url(text.trim());
  if (bytes === null) return { ok: false, message: 'not base64url' };
  let json: unknown;
  try {
    json = JSON.parse(UTF8_DECODER.decode(bytes));
  } catch {
    return { ok: false, message: 'not JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      message: parsed.error.issues
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; '),
    };
  }
  return { ok: true, value: parsed.data };
}
