/**
 * Every event the control plane writes matches the contract's `FleetEvent` union. Payloads built
 * in TypeScript go through `fleetEvent` (checked when built); the ones built inside SQL
 * statements — presence changes from the heartbeat batch, the single-beat path, the sweep,
 * connection binds and releases, attach, detach and revocation, and `runtimenode.attached` —
 * are proven here by driving every writer against real PostgreSQL and parsing what it stored.
 */
import { randomBytes } from 'node:crypto';
import {
  FleetEvent,
  FleetEventType,
  PresenceCause,
  type FleetEventsFilter,
  type EventEnvelopeVersion,
  type NodeId,
} from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import {
  acquireLease,
  expireLeases,
  releaseLease,
  renewLease,
} from '../../src/access-policy/leases.js';
import { setPolicy } from '../../src/access-policy/policies.js';
import { RevocationBus } from '../../src/auth/revocations.js';
import { createKey, enroll } from '../../src/enrollment/service.js';
import { ackCommand, commandResult, takeForDelivery } from '../../src/commands/delivery.js';
import { expireCommands } from '../../src/commands/expiry.js';
import { cancelCommand, invoke } from '../../src/commands/service.js';
import { CommandSignals } from '../../src/commands/signals.js';
import { readAllAfter } from '../../src/events/feed.js';
import { detachNode, revokeNode, rotateNodeToken, updateNode } from '../../src/nodes/service.js';
import {
  approveRequest,
  claimRequest,
  rejectRequest,
  requestPairing,
} from '../../src/pairing/service.js';
import { HeartbeatBatcher } from '../../src/runtime-nodes/heartbeat-batch.js';
import { bindConnections, releaseConnections } from '../../src/runtime-nodes/presence.js';
import { resumeAttachments } from '../../src/runtime-nodes/resume.js';
import { capabilitiesDigest } from '@tether/contracts/node';
import {
  attach,
  capabilityUpdate,
  detach,
  heartbeat,
  revokeAttachment,
} from '../../src/runtime-nodes/service.js';
import { sweepPresence } from '../../src/runtime-nodes/sweep.js';
import { raiseFloor } from '../../src/sessions/service.js';
import { useTestDatabase } from '../db.js';
import {
  GPU,
  SECONDS,
  addMemberAs,
  ageHeartbeat,
  attachInput,
  makeNode,
  makeParticipant,
  makeSession,
} from '../fixtures.js';

const t = useTestDatabase();
const pairingContext = { requesterAddress: '192.0.2.7', ttlSeconds: 600 };
const metrics = { cpuPercent: 12.5, memoryUsedBytes: 1_000, gauges: { queue: 3 } };

/** Drives every event writer once (and every presence cause), through the real services. */
async function writeEveryEvent(): Promise<void> {
  const owner = await makeParticipant(t.db);
  const admin = await makeParticipant(t.db, 'admin');
  const session = await makeSession(t.db, owner);
  const batcher = new HeartbeatBatcher(t.db);

  // node.enrolled (by key), node.updated (fields, token), session.floor_raised
  const key = await createKey(t.db, owner, {});
  const enrolled = await enroll(t.db, {
    enrollmentKey: key.enrollmentKey,
    name: 'enrolled',
    nodeType: 'daemon',
  });
  await updateNode(t.db, owner, { nodeId: enrolled.nodeId, name: 'renamed', labels: { a: 'b' } });
  await rotateNodeToken(
    t.db,
    { kind: 'node', nodeId: enrolled.nodeId, ownerParticipantId: owner.participantId },
    new RevocationBus(),
  );
  await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.0' });
  await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.2' });

  // pairing.requested (new and refreshed), approved + node.enrolled (pairing), claim → node.updated,
  // rejected, expired
  const secret = randomBytes(32).toString('base64url');
  const first = await requestPairing(
    t.db,
    { name: 'pi', nodeType: 'edge', claimSecret: secret },
    pairingContext,
  );
  await requestPairing(
    t.db,
    { name: 'pi', nodeType: 'edge', claimSecret: secret, nodeId: 'pi-7' as NodeId },
    pairingContext,
  );
  // Only an admin's approval may keep the node id the device asked for.
  await approveRequest(t.db, admin, { requestId: first.requestId });
  await claimRequest(t.db, { requestId: first.requestId, claimSecret: secret });
  const rejected = await requestPairing(t.db, { name: 'x', nodeType: 'edge' }, pairingContext);
  await rejectRequest(t.db, owner, { requestId: rejected.requestId });
  const expiringRequest = await requestPairing(
    t.db,
    { name: 'y', nodeType: 'edge' },
    pairingContext,
  );
  await t.db.query(
    `UPDATE pairing_requests SET expires_at = now() - interval '1 s' WHERE id = $1`,
    [expiringRequest.requestId],
  );
  await claimRequest(t.db, {
    requestId: expiringRequest.requestId,
    claimSecret: expiringRequest.claimSecret,
  });

  // attach (presence attach + runtimenode.attached), capability update with a health change
  // (state_changed + capabilities_updated), beats (batch and single path), sweep, connection
  // bind and release, detach, attachment revoke, node revoke.
  const node = await makeNode(t.db, owner);
  await attach(t.db, node, attachInput(node, session, { nodeVersion: '1.2' }));
  // An attach with a health change: its runtimenode.state_changed is built in the statement.
  const ready = await makeNode(t.db, owner);
  await attach(t.db, ready, {
    ...attachInput(ready, session, { nodeVersion: '1.2' }),
    healthChanges: { state: 'online', reason: 'ready' },
  });
  await capabilityUpdate(t.db, node, {
    nodeId: node.nodeId,
    capabilities: GPU,
    healthChanges: { state: 'online', reason: 'ready' },
  });
  await ageHeartbeat(t.db, node.nodeId, 45);
  await sweepPresence(t.db, SECONDS); // online → degraded: sweep
  await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online', metrics }, {}, batcher);
  await ageHeartbeat(t.db, node.nodeId, 45);
  await sweepPresence(t.db, SECONDS);
  await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online', metrics }); // single path
  await detach(t.db, node, { nodeId: node.nodeId, reason: 'maintenance' });
  await bindConnections(t.db, [{ nodeId: node.nodeId, connectionId: 'c1' }]);
  await releaseConnections(t.db, [{ nodeId: node.nodeId, connectionId: 'c1' }]);
  // A stale attachment (presence offline) superseded by the node's attach to another session
  // (runtimenode.detached built inside the attach statement), then the owner's node.detach.
  const mover = await makeNode(t.db, owner);
  await attach(t.db, mover, attachInput(mover, session, { nodeVersion: '1.2' }));
  await bindConnections(t.db, [{ nodeId: mover.nodeId, connectionId: 'c2' }]);
  await releaseConnections(t.db, [{ nodeId: mover.nodeId, connectionId: 'c2' }]);
  const elsewhere = await makeSession(t.db, owner);
  const moved = await attach(t.db, mover, attachInput(mover, elsewhere));
  expect(moved.superseded?.sessionId).toBe(session);
  await detachNode(t.db, owner, { nodeId: mover.nodeId, reason: 'moving' });
  // A resume in the handshake (SQL: presence change and runtimenode.state_changed).
  const resumer = await makeNode(t.db, owner);
  const held = await attach(t.db, resumer, attachInput(resumer, session, { nodeVersion: '1.2' }));
  await capabilityUpdate(t.db, resumer, {
    nodeId: resumer.nodeId,
    capabilities: GPU,
    healthChanges: { state: 'online' },
  });
  await releaseConnections(t.db, [{ nodeId: resumer.nodeId, connectionId: 'none' }]);
  const resumed = await resumeAttachments(t.db, [
    {
      nodeId: resumer.nodeId,
      ownerParticipantId: resumer.ownerParticipantId,
      connectionId: 'r1',
      claim: {
        attachmentId: held.attachmentId,
        sessionId: session,
        nodeVersion: '1.2' as EventEnvelopeVersion,
        capabilitiesDigest: capabilitiesDigest(GPU),
        healthState: 'degraded',
      },
    },
  ]);
  expect(resumed.get('r1')).toEqual({ resumed: true, state: 'degraded', bound: true });

  // policy.changed; lease.granted, renewed, released (by its holder and broken), expired (the
  // expiry statement builds its payloads in SQL).
  await setPolicy(t.db, owner, { nodeId: node.nodeId, capability: 'gpu', policy: 'leased' });
  const lease = await acquireLease(t.db, owner, {
    nodeId: node.nodeId,
    capability: 'gpu',
    ttlSeconds: 60,
  });
  await renewLease(t.db, owner, { leaseId: lease.leaseId, ttlSeconds: 90 });
  await releaseLease(t.db, owner, { leaseId: lease.leaseId });
  const broken = await acquireLease(t.db, owner, {
    nodeId: node.nodeId,
    capability: 'gpu',
    ttlSeconds: 60,
  });
  await releaseLease(t.db, admin, { leaseId: broken.leaseId });
  const expiring = await acquireLease(t.db, owner, {
    nodeId: node.nodeId,
    capability: 'gpu',
    ttlSeconds: 60,
  });
  await t.db.query(
    `UPDATE capability_leases SET acquired_at = now() - interval '2 min',
            expires_at = now() - interval '1 s' WHERE id = $1`,
    [expiring.leaseId],
  );
  expect(await expireLeases(t.db)).toBe(1);

  const other = await makeNode(t.db, owner);
  const second = await makeSession(t.db, owner);
  await addMemberAs(t.db, owner, second, admin, 'viewer');
  await attach(t.db, other, attachInput(other, second));
  await revokeAttachment(t.db, owner, { sessionId: second, nodeId: other.nodeId, reason: 'gone' });
  const third = await makeSession(t.db, owner);
  await attach(t.db, other, attachInput(other, third));
  await revokeNode(t.db, owner, { nodeId: other.nodeId }, new RevocationBus());

  // command.invoked, command.refused, and command.state_changed by the delivery (SQL), the node,
  // a participant's cancel and the expiry sweep (SQL).
  const signals = new CommandSignals();
  const worker = await makeNode(t.db, owner);
  const member = await makeParticipant(t.db);
  await addMemberAs(t.db, owner, session, member, 'collaborator');
  await attach(t.db, worker, attachInput(worker, session, { nodeVersion: '1.2' }));
  await capabilityUpdate(t.db, worker, { nodeId: worker.nodeId, capabilities: GPU });
  const call = (key: string, timeoutMs?: number) => ({
    target: { nodeId: worker.nodeId },
    capability: 'gpu',
    idempotencyKey: key,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  await invoke(t.db, signals, member, call('refused')).catch(() => undefined);
  const ran = await invoke(t.db, signals, owner, call('ran'));
  const cancelled = await invoke(t.db, signals, owner, call('cancelled'));
  await takeForDelivery(t.db, worker.nodeId, 'all', 10);
  await ackCommand(t.db, signals, worker, { commandId: ran.commandId });
  await commandResult(t.db, signals, worker, { commandId: ran.commandId, ok: true, output: 1 });
  await cancelCommand(t.db, signals, owner, { commandId: cancelled.commandId, reason: 'no' });
  const overdue = await invoke(t.db, signals, owner, call('expiring', 1_000));
  await t.db.query(`UPDATE node_commands SET expires_at = now() WHERE id = $1`, [
    overdue.commandId,
  ]);
  await expireCommands(t.db, 'tether.command_expiry');
}

async function everyStoredEvent(filter?: FleetEventsFilter) {
  const page = await readAllAfter(t.db, '0', 10_000);
  expect(page.full).toBe(false);
  return filter?.types ? page.events.filter((e) => filter.types!.includes(e.type)) : page.events;
}

describe('fleet event payload conformance', () => {
  it('every event written by every writer parses as the contract union, losing no field', async () => {
    await writeEveryEvent();
    const events = await everyStoredEvent();
    for (const event of events) {
      const parsed = FleetEvent.safeParse(event);
      expect(parsed.success, `${event.type} ${JSON.stringify(event.data)}`).toBe(true);
      // Nothing the writer stored is unknown to the schema (an open object would drop it).
      expect(parsed.data, event.type).toEqual(event);
    }
    // Every event type was written, and presence changes with every cause.
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(FleetEventType.options));
    const causes = new Set(
      events.flatMap((e) => (e.type === 'presence.changed' ? [e.data.cause] : [])),
    );
    expect(causes).toEqual(new Set(PresenceCause.options));
  });

  it('runtimenode.attached, built inside the attach statement, carries its attachment', async () => {
    const events = await everyStoredEvent({ types: ['runtimenode.attached'] });
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const e of events) {
      if (e.type !== 'runtimenode.attached') continue;
      expect(e.data).toEqual({
        attachmentId: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
        state: 'registering',
        previousState: null,
        readOnly: false,
        nodeVersion: expect.stringMatching(/^\d+\.\d+$/) as unknown,
      });
    }
  });
});
