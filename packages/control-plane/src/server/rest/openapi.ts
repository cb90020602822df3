/**
 * The OpenAPI 3.1 document of the REST surface, generated once at startup from the procedures
 * (trpc-to-openapi: paths, parameters, request bodies, security, tags) and then made to say what
 * the server really does:
 *   - responses: 200 is the procedure's output schema rendered as JSON sends it (a `Date` output
 *     is `type: string, format: date-time`); every error is the one REST error body, whatever
 *     the status (trpc-to-openapi describes its own error shape, which this server never sends);
 *   - `GET /events`, the Server-Sent Events stream (not a procedure trpc-to-openapi can describe);
 *   - the error registry as a table, the bearer scheme, a relative server (`/api/v1`).
 */
import {
  CONTRACT_VERSION,
  ERROR_REGISTRY,
  FleetEventType,
  FleetEventView,
  NodeId,
  SessionId,
  TETHER_ERROR_CODES,
  FleetEventId,
} from '@tether/contracts';
import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi';
import type { z } from 'zod';
import { createSchema, type ZodOpenApiOverride } from 'zod-openapi';
import { appRouter } from '../../trpc/root.js';
import { REST_PREFIX } from './handler.js';
import type { RestRoutes } from './routes.js';

type Json = Record<string, unknown>;

const SECURITY_SCHEME = 'bearerAuth';

const TAGS: { name: string; description: string }[] = [
  { name: 'system', description: 'Server facts (public).' },
  {
    name: 'enrollment',
    description: 'Enrollment keys (operators) and device enrollment (daemons).',
  },
  { name: 'pairing', description: 'Device-first pairing with an operator approval.' },
  {
    name: 'runtime-nodes',
    description:
      'What a node does with its node token: attach, heartbeat, capabilities, detach; and session rosters.',
  },
  {
    name: 'nodes',
    description: 'The device registry: who exists, who is online, who can do what.',
  },
  {
    name: 'events',
    description: 'The fleet event feed: pages, and a live Server-Sent Events stream.',
  },
  {
    name: 'commands',
    description:
      'Invoke a capability on a node, follow the command to its result, cancel, approve or deny it.',
  },
  { name: 'sessions', description: 'Sessions and their client-version floor.' },
  { name: 'memberships', description: 'Who belongs to a session, in which role.' },
  { name: 'participants', description: 'People and service accounts (admin).' },
  { name: 'tokens', description: 'Participant tokens.' },
  {
    name: 'access-policy',
    description:
      "Who may invoke a node's capability: policies (owner, free, leased, gated) and leases.",
  },
];

/** Times are `Date`s inside the server and ISO-8601 strings on the JSON wire. */
const dateTime: ZodOpenApiOverride = (ctx) => {
  if (ctx.zodSchema._zod.def.type === 'date') {
    ctx.jsonSchema.type = 'string';
    ctx.jsonSchema.format = 'date-time';
  }
};

function render(schema: z.ZodType, io: 'input' | 'output', components: Json): Json {
  const result = createSchema(schema, {
    io,
    openapiVersion: '3.1.0',
    opts: { override: dateTime },
  });
  Object.assign(components, result.components);
  return result.schema as Json;
}

function registryTable(): string {
  const rows = TETHER_ERROR_CODES.map((code) => {
    const spec = ERROR_REGISTRY[code];
    return `| \`${code}\` | ${spec.httpStatus} | ${spec.retryable ? 'yes' : 'no'} | ${spec.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| code | HTTP | retryable | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

const ERROR_BODY: Json = {
  type: 'object',
  description: `Every error, with the registry's HTTP status:\n\n${registryTable()}`,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          enum: TETHER_ERROR_CODES,
          description: 'The registry code (see the table above).',
        },
        message: { type: 'string', description: 'For people; never parse it.' },
        details: {
          type: 'object',
          additionalProperties: true,
          description:
            'Code-specific facts, e.g. `issues[]` (path, message) for request.invalid, `retryAfterMs` for rate_limited.',
        },
      },
    },
  },
  example: {
    error: {
      code: 'request.invalid',
      message: 'Invalid input: name',
      details: {
        issues: [
          {
            path: 'name',
            message: 'Invalid input: expected string, received number',
            code: 'invalid_type',
          },
        ],
      },
    },
  },
};

function errorResponse(description: string): Json {
  return {
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  };
}

const RESPONSES: Json = {
  BadRequest: errorResponse(
    '`request.invalid` (field paths in `details.issues`) or `request.malformed`.',
  ),
  Unauthenticated: errorResponse(
    '`auth.unauthenticated`: no bearer token, or an unknown, expired or revoked one.',
  ),
  Forbidden: errorResponse(
    '`auth.forbidden`, `auth.principal_mismatch` or a domain permission error.',
  ),
  RateLimited: errorResponse(
    '`rate_limited`; `Retry-After` (seconds) and `details.retryAfterMs` say when to retry.',
  ),
  Unavailable: errorResponse(
    '`system.unavailable`: the server is draining or overloaded; retry (another replica).',
  ),
  Error: errorResponse(
    'Any other registry error, with its HTTP status (see the table in the introduction).',
  ),
};

function errorResponses(isProtected: boolean): Json {
  const ref = (name: string): Json => ({ $ref: `#/components/responses/${name}` });
  return {
    '400': ref('BadRequest'),
    ...(isProtected ? { '401': ref('Unauthenticated'), '403': ref('Forbidden') } : {}),
    '429': ref('RateLimited'),
    '503': ref('Unavailable'),
    default: ref('Error'),
  };
}

const DESCRIPTION = `Plain-JSON REST over the same procedures as Tether's tRPC API (\`/trpc\`), for curl and clients in any language.

- **Auth**: \`Authorization: Bearer <token>\`: a participant token (\`tpt_…\`) or a node token (\`tnd_…\`). Public operations need none.
- **Client version** (optional): \`x-tether-client-version: MAJOR.MINOR\`; a MAJOR above the server's contract gets \`version.ceiling_exceeded\`.
- **Times** are ISO-8601 strings; **event ids** are decimal strings.
- **Errors**: \`{ "error": { "code", "message", "details"? } }\` with the registry's HTTP status (the table is in the \`Error\` schema below).
- **Live updates**: \`GET ${REST_PREFIX}/events\` (Server-Sent Events).
`;

function eventsOperation(components: Json): Record<string, Json> {
  components.FleetEvent = render(FleetEventView, 'output', components);
  const query = (name: string, schema: z.ZodType, description: string): Json => ({
    name,
    in: 'query',
    required: false,
    description,
    schema: render(schema, 'input', components),
  });
  return {
    get: {
      operationId: 'fleet-events',
      summary: 'Follow the fleet event feed (Server-Sent Events)',
      description: [
        'A `text/event-stream` of the events you may see (the visibility of `GET /nodes/{nodeId}`), oldest first.',
        'Each event is one frame: `event: <type>`, `id: <event id>`, `data: <the event as JSON>` (schema `FleetEvent`), then a blank line.',
        'Lines starting with `:` are keep-alive comments. Resume after a disconnect with the `Last-Event-ID` header (or `lastEventId`):',
        'you get exactly the events you missed, then live ones. An expired cursor is refused with 412 `events.cursor_expired` before the stream starts;',
        'a stream that fails later sends one `event: error` frame whose data is the error body, and ends.',
      ].join(' '),
      tags: ['events'],
      security: [{ [SECURITY_SCHEME]: [] }],
      parameters: [
        query('lastEventId', FleetEventId, 'Resume after this event id.'),
        {
          name: 'Last-Event-ID',
          in: 'header',
          required: false,
          description:
            'Resume after this event id (what an EventSource resends); wins over `lastEventId`.',
          schema: render(FleetEventId, 'input', components),
        },
        query('nodeId', NodeId, "Only this node's events."),
        query('sessionId', SessionId, "Only this session's events."),
        {
          name: 'types',
          in: 'query',
          required: false,
          description: 'Only these event types (repeat the parameter, or separate with commas).',
          schema: { type: 'array', items: render(FleetEventType, 'input', components) },
          style: 'form',
          explode: true,
        },
      ],
      responses: {
        '200': {
          description: 'The stream (ends when the client goes away or the server stops).',
          content: {
            'text/event-stream': {
              schema: { type: 'string' },
              example:
                ': connected\n\nevent: presence.changed\nid: 42\ndata: {"id":"42","at":"2025-01-01T12:00:00.000Z","type":"presence.changed","nodeId":"mac-01","sessionId":null,"data":{"from":"offline","to":"online","cause":"heartbeat"}}\n\n: keep-alive\n\n',
            },
          },
        },
        '412': { $ref: '#/components/responses/Error' },
        ...errorResponses(true),
      },
    },
  };
}

/** The document served at `/api/v1/openapi.json`. */
export function buildOpenApiDocument(routes: RestRoutes): OpenAPIObject {
  const doc = generateOpenApiDocument(appRouter, {
    title: 'Tether REST API',
    description: DESCRIPTION,
    version: CONTRACT_VERSION,
    baseUrl: REST_PREFIX,
    securitySchemes: {
      [SECURITY_SCHEME]: {
        type: 'http',
        scheme: 'bearer',
        description: 'A participant token (`tpt_…`) or a node token (`tnd_…`).',
      },
    },
  }) as unknown as Json & { paths: Record<string, Record<string, Json>>; components: Json };

  const schemas: Json = {};
  for (const route of routes.all) {
    const operation = doc.paths[route.path]?.[route.method.toLowerCase()];
    if (!operation) throw new Error(`OpenAPI: no operation for ${route.method} ${route.path}`);
    const ok = (operation.responses as Json)['200'] as Json;
    operation.responses = {
      '200': {
        ...ok,
        content: { 'application/json': { schema: render(route.output, 'output', schemas) } },
      },
      ...errorResponses(Boolean(operation.security)),
    };
  }
  doc.paths['/events'] = eventsOperation(schemas);

  const generated = (doc.components.schemas ?? {}) as Json;
  for (const name of Object.keys(generated)) if (name.startsWith('error.')) delete generated[name];
  doc.components = {
    ...doc.components,
    schemas: { ...generated, ...schemas, Error: ERROR_BODY },
    responses: RESPONSES,
  };
  doc.tags = TAGS;
  return doc as unknown as OpenAPIObject;
}
