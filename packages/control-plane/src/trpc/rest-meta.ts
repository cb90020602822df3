/**
 * The REST face of a procedure: `rest('POST', '/sessions', 'Create a session', …)` becomes the
 * procedure's `meta.openapi`, from which the server routes `/api/v1/sessions` and generates the
 * OpenAPI document. Paths are relative to `/api/v1`. Conventions (docs/api.md): collections are
 * plural nouns, `/{id}` names one item, actions on an item are `POST …/{id}/<verb>` (revoke,
 * approve), what the calling node does to itself lives under `/runtime-nodes` and `/node`.
 */
import type { OpenApiMethod } from 'trpc-to-openapi';
import type { TetherMeta } from './init.js';

export type RestTag =
  | 'system'
  | 'participants'
  | 'tokens'
  | 'sessions'
  | 'memberships'
  | 'enrollment'
  | 'pairing'
  | 'nodes'
  | 'runtime-nodes'
  | 'events'
  | 'access-policy'
  | 'commands';

export interface RestOptions {
  /** Anyone may call it (no bearer token needed). */
  public?: boolean;
  description?: string;
}

export function rest(
  method: OpenApiMethod,
  path: `/${string}`,
  tag: RestTag,
  summary: string,
  options: RestOptions = {},
): TetherMeta {
  return {
    openapi: {
      method,
      path,
      tags: [tag],
      summary,
      protect: options.public !== true,
      ...(options.description === undefined ? {} : { description: options.description }),
    },
  };
}
