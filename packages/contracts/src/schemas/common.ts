/** Shared building blocks: pagination, labels, names. */
import { z } from 'zod';
import { utf8ByteLength } from '../utf8.js';

export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 500;

/** Opaque cursor: clients pass back what the server returned. */
export const Cursor = z.string().min(1).max(512);

export const PageInput = {
  cursor: Cursor.optional(),
  limit: z.number().int().min(1).max(PAGE_LIMIT_MAX).optional(),
};

export const DisplayName = z.string().trim().min(1).max(200);
export const NodeType = z.string().trim().min(1).max(64);
export const Platform = z.string().trim().min(1).max(128);
export const Location = z.string().trim().min(1).max(200);

export const LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
export const LABELS_MAX = 64;

/** Labels: flat string → string, bounded (for filtering: `label: "k=v"`). */
export const Labels = z
  .record(z.string().regex(LABEL_KEY_PATTERN), z.string().max(256))
  .refine((l) => Object.keys(l).length <= LABELS_MAX, { message: `at most ${LABELS_MAX} labels` });
export type Labels = z.infer<typeof Labels>;

export const METADATA_MAX_BYTES = 16 * 1024;

/** Free-form JSON object, at most 16 KiB serialised. */
export const Metadata = z.record(z.string().max(128), z.json()).refine(
  (m) => {
    try {
      return utf8ByteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES;
    } catch {
      return false;
    }
  },
  { message: `metadata must serialise to at most ${METADATA_MAX_BYTES} bytes` },
);
export type Metadata = z.infer<typeof Metadata>;

export const Empty = z.strictObject({});

export function page<T extends z.ZodType>(item: T) {
  return z.strictObject({ items: z.array(item), nextCursor: Cursor.nullable() });
}
