/**
 * Registry reads: `node.get`, `node.list`, `node.counts`, `node.isOnline`,
 * `node.findOnlineWithCapability`, `node.metrics`.
 * Invariants:
 *  - one SQL statement per call (identity, presence and active attachment joined), never one per row;
 *  - visibility: a participant sees the nodes they own and the nodes attached, in any state, to
 *    sessions they are an active member of (exactly the nodes a roster they can read shows);
 *    admins see every node. An invisible node is answered like a missing one (`node.not_found`,
 *    or absent from a page), so ids of other tenants' nodes cannot be probed;
 *  - presence is the one source of truth for liveness: a node is online when its identity is
 *    active and its presence is not `offline` (`degraded` counts, and is reported as such);
 *  - pages are ordered by node_id with keyset cursors (stable under concurrent inserts).
 */
import {
  AttachmentId,
  Capabilities,
  compareEventEnvelopeVersion,
  isEventEnvelopeVersion,
  LABEL_KEY_PATTERN,
  NodeId,
  NodeMetrics,
  AttachmentState,
  NodeStatus,
  ParticipantId,
  PresenceHealthState,
  SessionId,
  TetherError,
  type FindOnlineWithCapabilityInput,
  type NodeIsOnlineOutput,
  type NodeCountsInput,
  type NodeCountsOutput,
  type NodeListInput,
  type NodeMetricsInput,
  type NodeMetricsOutput,
  type NodeMetricsSample,
  type NodeView,
} from '@tether/contracts';
import { z } from 'zod';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { visibleNode, visibleNodeIdsSql } from '../auth/visibility.js';
import type { Sql } from '../db/pool.js';
import { decodeCursor, pageLimit, Params, toPage, type CursorList } from '../db/pagination.js';
import { parseRow } from '../db/rows.js';
import { metricsReportedAtSql } from '../runtime-nodes/metrics-history.js';
import { ACTIVE_ATTACHMENT_STATES_SQL } from '../db/sql-lists.js';

export interface NodePage {
  items: NodeView[];
  nextCursor: string | null;
}

const VIEW_COLUMNS = `
  n.node_id, n.owner_participant_id, n.name, n.node_type, n.platform, n.location, n.labels, n.metadata,
  n.capabilities, n.node_version, n.status, n.enrolled_at, n.updated_at, n.revoked_at,
  COALESCE(p.health_state, 'offline') AS health_state, p.last_heartbeat_at, p.online_since,
  p.metrics, ${metricsReportedAtSql('p')} AS metrics_reported_at,
  a.id AS attachment_id, a.session_id AS attachment_session_id, a.state AS attachment_state,
  a.attached_at AS attachment_attached_at, a.node_version AS attachment_node_version,
  (SELECT s.min_node_version FROM sessions s WHERE s.id = a.session_id) AS attachment_floor`;

// The active-attachment join matches the partial unique index, so it yields at most one row per node.
const VIEW_FROM = `
  FROM nodes n
  LEFT JOIN runtime_node_presence p ON p.node_id = n.node_id
  LEFT JOIN runtime_node_attachments a ON a.node_id = n.node_id AND a.state IN ${ACTIVE_ATTACHMENT_STATES_SQL}`;

function visibleSet(viewer: string): string {
  return `n.node_id IN (${visibleNodeIdsSql(viewer)})`;
}

/** Restricts to `sessionId` when the caller may read it: an active member, or an admin. */
function sessionReadable(actor: ParticipantPrincipal, params: Params, sessionId: string): string {
  if (isAdmin(actor)) return 'TRUE';
  return `EXISTS (SELECT 1 FROM session_memberships sm
                   WHERE sm.session_id = ${params.add(sessionId)}
                     AND sm.participant_id = ${params.add(actor.participantId)} AND sm.state = 'active')`;
}

const NodeRow = z.object({
  node_id: NodeId,
  owner_participant_id: ParticipantId,
  name: z.string(),
  node_type: z.string(),
  platform: z.string().nullable(),
  location: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  metadata: z.record(z.string(), z.json()),
  capabilities: Capabilities,
  node_version: z.string().nullable(),
  status: NodeStatus,
  enrolled_at: z.date(),
  updated_at: z.date(),
  revoked_at: z.date().nullable(),
  health_state: PresenceHealthState,
  last_heartbeat_at: z.date().nullable(),
  online_since: z.date().nullable(),
  metrics: NodeMetrics.nullable(),
  metrics_reported_at: z.date().nullable(),
  attachment_id: AttachmentId.nullable(),
  attachment_session_id: SessionId.nullable(),
  attachment_state: AttachmentState.nullable(),
  attachment_attached_at: z.date().nullable(),
  attachment_node_version: z.string().nullable(),
  attachment_floor: z.string().nullable(),
});

/** Below the session's floor, an attachment is read-only (as the roster says). */
function attachmentReadOnly(nodeVersion: string | null, floor: string | null): boolean {
  return (
    nodeVersion !== null &&
    floor !== null &&
    isEventEnvelopeVersion(nodeVersion) &&
    isEventEnvelopeVersion(floor) &&
    compareEventEnvelopeVersion(nodeVersion, floor) < 0
  );
}

function toNodeView(raw: unknown): NodeView {
  const r = parseRow(NodeRow, raw, 'node');
  return {
    nodeId: r.node_id,
    ownerParticipantId: r.owner_participant_id,
    name: r.name,
    nodeType: r.node_type,
    platform: r.platform,
    location: r.location,
    labels: r.labels,
    metadata: r.metadata,
    capabilities: r.capabilities,
    nodeVersion: r.node_version,
    status: r.status,
    enrolledAt: r.enrolled_at,
    updatedAt: r.updated_at,
    revokedAt: r.revoked_at,
    presence: {
      healthState: r.health_state,
      lastHeartbeatAt: r.last_heartbeat_at,
      onlineSince: r.online_since,
      metrics: r.metrics,
      metricsReportedAt: r.metrics_reported_at,
    },
    activeAttachment:
      r.attachment_id !== null &&
      r.attachment_session_id !== null &&
      r.attachment_state !== null &&
      r.attachment_attached_at !== null
        ? {
            attachmentId: r.attachment_id,
            sessionId: r.attachment_session_id,
            state: r.attachment_state,
            attachedAt: r.attachment_attached_at,
            readOnly: attachmentReadOnly(r.attachment_node_version, r.attachment_floor),
          }
        : null,
  };
}

function notFound(): TetherError {
  return new TetherError('node.not_found', 'No such node.');
}

/** The view of one node, without a visibility check: for services that already authorised the caller. */
export async function loadNodeView(sql: Sql, nodeId: string): Promise<NodeView> {
  const { rows } = await sql.query(`SELECT ${VIEW_COLUMNS} ${VIEW_FROM} WHERE n.node_id = $1`, [
    nodeId,
  ]);
  if (!rows[0]) throw notFound();
  return toNodeView(rows[0]);
}

export async function getNode(
  sql: Sql,
  actor: ParticipantPrincipal,
  nodeId: string,
): Promise<NodeView> {
  const params = new Params();
  const id = params.add(nodeId);
  const visible = isAdmin(actor) ? 'TRUE' : visibleNode(params.add(actor.participantId));
  const { rows } = await sql.query(
    `SELECT ${VIEW_COLUMNS} ${VIEW_FROM} WHERE n.node_id = ${id} AND ${visible}`,
    params.values,
  );
  if (!rows[0]) throw notFound();
  return toNodeView(rows[0]);
}

const IsOnlineRow = z.object({
  node_id: NodeId,
  status: NodeStatus,
  health_state: PresenceHealthState,
  last_heartbeat_at: z.date().nullable(),
  online_since: z.date().nullable(),
});

/**
 * `online` is true for `online` and `degraded` presence (a degraded node still answers; its
 * beats are late), and never for a revoked identity; `healthState` tells the two apart.
 */
export async function isNodeOnline(
  sql: Sql,
  actor: ParticipantPrincipal,
  nodeId: string,
): Promise<z.infer<typeof NodeIsOnlineOutput>> {
  const params = new Params();
  const id = params.add(nodeId);
  const visible = isAdmin(actor) ? 'TRUE' : visibleNode(params.add(actor.participantId));
  const { rows } = await sql.query(
    `SELECT n.node_id, n.status, COALESCE(p.health_state, 'offline') AS health_state, p.last_heartbeat_at, p.online_since
       FROM nodes n LEFT JOIN runtime_node_presence p ON p.node_id = n.node_id
      WHERE n.node_id = ${id} AND ${visible}`,
    params.values,
  );
  if (!rows[0]) throw notFound();
  const r = parseRow(IsOnlineRow, rows[0], 'node presence');
  return {
    nodeId: r.node_id,
    online: r.status === 'active' && r.health_state !== 'offline',
    healthState: r.health_state,
    onlineSince: r.online_since,
    lastHeartbeatAt: r.last_heartbeat_at,
  };
}

/** `%`, `_` and the escape character itself match literally in a search. */
function likeSubstring(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** `"k=v"` → exact value (containment, served by the jsonb_path_ops GIN index); `"k"` → key present. */
function labelCondition(label: string, params: Params): string {
  const eq = label.indexOf('=');
  const key = eq === -1 ? label : label.slice(0, eq);
  if (!LABEL_KEY_PATTERN.test(key)) {
    throw new TetherError(
      'request.invalid',
      'label must be "key=value" or "key" with a valid label key.',
      {
        field: 'label',
      },
    );
  }
  if (eq === -1) return `n.labels ? ${params.add(key)}`;
  return `n.labels @> ${params.add(JSON.stringify({ [key]: label.slice(eq + 1) }))}::jsonb`;
}

async function fetchPage(
  sql: Sql,
  params: Params,
  where: string[],
  input: { cursor?: string | undefined; limit?: number | undefined },
  list: CursorList,
): Promise<NodePage> {
  const limit = pageLimit(input.limit);
  const after = decodeCursor(list, input.cursor);
  if (after) where.push(`n.node_id > ${params.add(after[0])}`);
  const text = `SELECT ${VIEW_COLUMNS} ${VIEW_FROM}
    ${where.length > 0 ? `WHERE ${where.join('\n  AND ')}` : ''}
    ORDER BY n.node_id
    LIMIT ${params.add(limit + 1)}`;
  const { rows } = await sql.query<{ node_id: string }>(text, params.values);
  return toPage(rows, limit, toNodeView, list, (row) => [row.node_id]);
}

/**
 * Every filter narrows (AND). `sessionId` lists the nodes attached to that session in any state,
 * and only for its active members and admins (anyone else gets an empty page, as for a session
 * that does not exist). `status` defaults to every status: revoked identities stay listed.
 */
export async function listNodes(
  sql: Sql,
  actor: ParticipantPrincipal,
  input: NodeListInput,
): Promise<NodePage> {
  const filters = input ?? {};
  const params = new Params();
  const where = nodeFilters(actor, filters, params);
  if (filters.healthState === 'offline') {
    where.push(`(p.health_state IS NULL OR p.health_state = 'offline')`);
  } else if (filters.healthState !== undefined) {
    where.push(`p.health_state = ${params.add(filters.healthState)}`);
  }
  return fetchPage(sql, params, where, filters, 'node');
}

/** The conditions `node.list` and `node.counts` share: visibility and every filter but presence. */
function nodeFilters(
  actor: ParticipantPrincipal,
  filters: NonNullable<NodeCountsInput>,
  params: Params,
): string[] {
  const where: string[] = [];
  if (!isAdmin(actor)) where.push(visibleSet(params.add(actor.participantId)));
  if (filters.status !== undefined) where.push(`n.status = ${params.add(filters.status)}`);
  if (filters.capability !== undefined)
    where.push(`n.capabilities ? ${params.add(filters.capability)}`);
  if (filters.nodeType !== undefined) where.push(`n.node_type = ${params.add(filters.nodeType)}`);
  if (filters.location !== undefined) where.push(`n.location = ${params.add(filters.location)}`);
  if (filters.label !== undefined) where.push(labelCondition(filters.label, params));
  if (filters.sessionId !== undefined) {
    const readable = sessionReadable(actor, params, filters.sessionId);
    where.push(
      `n.node_id IN (SELECT sa.node_id FROM runtime_node_attachments sa WHERE sa.session_id = ${params.add(filters.sessionId)})`,
      readable,
    );
  }
  if (filters.search !== undefined) {
    const pattern = params.add(likeSubstring(filters.search));
    where.push(`(n.node_id ILIKE ${pattern} OR n.name ILIKE ${pattern})`);
  }
  return where;
}

const CountsRow = z.object({
  online: z.coerce.number(),
  degraded: z.coerce.number(),
  offline: z.coerce.number(),
  revoked: z.coerce.number(),
});

/**
 * `node.counts`: the nodes `node.list` would list with the same filters (same visibility), by
 * presence; active identities by their presence (no presence row: offline), revoked apart. One
 * statement, one pass.
 */
export async function countNodes(
  sql: Sql,
  actor: ParticipantPrincipal,
  input: NodeCountsInput,
): Promise<NodeCountsOutput> {
  const params = new Params();
  const where = nodeFilters(actor, input ?? {}, params);
  const { rows } = await sql.query(
    `SELECT count(*) FILTER (WHERE n.status = 'active' AND p.health_state = 'online') AS online,
            count(*) FILTER (WHERE n.status = 'active' AND p.health_state = 'degraded') AS degraded,
            count(*) FILTER (WHERE n.status = 'active'
                               AND (p.health_state IS NULL OR p.health_state = 'offline')) AS offline,
            count(*) FILTER (WHERE n.status = 'revoked') AS revoked
       FROM nodes n LEFT JOIN runtime_node_presence p ON p.node_id = n.node_id
      ${where.length > 0 ? `WHERE ${where.join('\n  AND ')}` : ''}`,
    params.values,
  );
  const r = parseRow(CountsRow, rows[0], 'node counts');
  return { ...r, total: r.online + r.degraded + r.offline + r.revoked };
}

/**
 * Active identities whose presence is not offline and that declare the capability (a key lookup
 * on the GIN-indexed capabilities). With `sessionId`, the node's active attachment must be in that
 * session and its snapshot must declare the capability too; non-members get an empty page.
 */
export async function findOnlineWithCapability(
  sql: Sql,
  actor: ParticipantPrincipal,
  input: z.infer<typeof FindOnlineWithCapabilityInput>,
): Promise<NodePage> {
  const params = new Params();
  const where: string[] = [];
  if (!isAdmin(actor)) where.push(visibleSet(params.add(actor.participantId)));
  const capability = params.add(input.capability);
  where.push(
    `n.status = 'active'`,
    `p.health_state IN ('online', 'degraded')`,
    `n.capabilities ? ${capability}`,
  );
  if (input.sessionId !== undefined) {
    const readable = sessionReadable(actor, params, input.sessionId);
    where.push(
      `a.session_id = ${params.add(input.sessionId)}`,
      `a.capabilities ? ${capability}`,
      readable,
    );
  }
  return fetchPage(sql, params, where, input, 'online');
}

/** The history's shape as the server is configured (runtime-nodes/metrics-history.ts). */
export interface MetricsHistorySettings {
  sampleIntervalMs: number;
  samples: number;
}

const SampleRow = z.object({
  sampled_at: z.date(),
  cpu_percent: z.number().nullable(),
  memory_used_bytes: z.number().nullable(),
  memory_total_bytes: z.number().nullable(),
  uptime_seconds: z.number().nullable(),
  gauges: z.record(z.string(), z.number()).nullable(),
});

function toSample(raw: unknown): NodeMetricsSample {
  const r = parseRow(SampleRow, raw, 'metrics sample');
  const sample: NodeMetricsSample = { at: r.sampled_at };
  if (r.cpu_percent !== null) sample.cpuPercent = r.cpu_percent;
  if (r.memory_used_bytes !== null) sample.memoryUsedBytes = r.memory_used_bytes;
  if (r.memory_total_bytes !== null) sample.memoryTotalBytes = r.memory_total_bytes;
  if (r.uptime_seconds !== null) sample.uptimeSeconds = r.uptime_seconds;
  if (r.gauges !== null) sample.gauges = r.gauges;
  return sample;
}

/**
 * `node.metrics`: the node's recent samples, oldest first (at most the ring's size), visible to
 * whoever may `node.get` it. One statement: the visibility check and the ring (found through its
 * primary key); a node the caller cannot see is `node.not_found`. Slots beyond the configured
 * size (left from a larger earlier setting) are not shown.
 */
export async function getNodeMetrics(
  sql: Sql,
  actor: ParticipantPrincipal,
  input: NodeMetricsInput,
  history: MetricsHistorySettings,
): Promise<NodeMetricsOutput> {
  const params = new Params();
  const id = params.add(input.nodeId);
  const visible = isAdmin(actor) ? 'TRUE' : visibleNode(params.add(actor.participantId));
  const since =
    input.since === undefined ? '' : `AND m.sampled_at > ${params.add(input.since)}::timestamptz`;
  const { rows } = await sql.query<{ sampled_at: Date | null }>(
    `SELECT m.sampled_at, m.cpu_percent, m.memory_used_bytes, m.memory_total_bytes,
            m.uptime_seconds, m.gauges
       FROM nodes n
       LEFT JOIN runtime_node_metrics m
              ON m.node_id = n.node_id AND m.slot < ${params.add(history.samples)} ${since}
      WHERE n.node_id = ${id} AND ${visible}
      ORDER BY m.sampled_at`,
    params.values,
  );
  if (!rows[0]) throw notFound();
  return {
    nodeId: input.nodeId,
    sampleIntervalMs: history.sampleIntervalMs,
    maxSamples: history.samples,
    samples: rows.filter((r) => r.sampled_at !== null).map(toSample),
  };
}
