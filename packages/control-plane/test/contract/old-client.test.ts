/**
 * Clients built on an earlier contract keep working against this server. A "client" here knows
 * nothing but a published snapshot set: it validates every request it sends against that set's
 * input JSON Schemas and every response (and event) it receives against its output JSON Schemas,
 * with a JSON Schema validator (ajv), as a client in any language would — never with our Zod
 * schemas. It announces that set's version in `x-tether-client-version` / connectionParams.
 *
 * The clients: every recorded release whose MAJOR this server serves (a MINOR below the current
 * one, and older MINORs of the same MAJOR), and the current snapshots (the contract this server
 * publishes now: its own responses must be valid under it, and stay valid with a field added).
 * A release whose MAJOR the server no longer serves must be refused with version.unsupported.
 *
 * One scenario calls every query and mutation of the contract with real data and subscribes to
 * the fleet feed; a test asserts the scenario covered every procedure of each snapshot set.
 */
import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  compareEventEnvelopeVersion,
  parseEventEnvelopeVersion,
  parseProcedureSnapshot,
  type JsonSchema,
  type ProcedureContract,
  type SnapshotSet,
} from '@tether/contracts';
import { readContractFiles } from '@tether/contracts/node';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { errorCode, mutate, query, type CallResult } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { wsClient } from '../wire/actors.js';

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv2020) => Ajv2020 }).default;

interface Baseline {
  /** `releases/<version>` or `snapshots (current)`. */
  readonly name: string;
  readonly version: string;
  readonly procedures: ReadonlyMap<string, ProcedureContract>;
}

function baselineOf(name: string, version: string, files: SnapshotSet): Baseline {
  const procedures = new Map<string, ProcedureContract>();
  for (const [file, text] of files) {
    if (file === 'index.json') continue;
    const contract = parseProcedureSnapshot(text);
    if (contract === undefined) throw new Error(`${name}/${file} is not a procedure snapshot`);
    procedures.set(file.slice(0, -'.json'.length), contract);
  }
  return { name, version, procedures };
}

const files = await readContractFiles();
const releases = [...files.releases]
  .sort(([a], [b]) => compareEventEnvelopeVersion(a, b))
  .map(([version, release]) => baselineOf(`releases/${version}`, version, release.files));
const served = (version: string): boolean => {
  const major = parseEventEnvelopeVersion(version).major;
  return (
    major >= BigInt(SUPPORTED_CONTRACT_MAJORS.min) && major <= BigInt(SUPPORTED_CONTRACT_MAJORS.max)
  );
};
const current = baselineOf('snapshots (current)', CONTRACT_VERSION, files.snapshots);
const CLIENTS: Baseline[] = [...releases.filter((r) => served(r.version)), current];
const REFUSED: Baseline[] = releases.filter((r) => !served(r.version));

/** A client that validates with one snapshot set's JSON Schemas. */
class SchemaClient {
  readonly #ajv = new Ajv2020({ allErrors: true, strict: false });
  readonly #validators = new Map<string, ValidateFunction>();
  /** Every procedure called with success, and every subscription that delivered an event. */
  readonly covered = new Set<string>();
  readonly #baseline: Baseline;
  readonly #server: TestServer;
  /** The contract version this client announces (and sends as its attach nodeVersion). */
  readonly version: string;

  constructor(baseline: Baseline, server: TestServer) {
    addFormats(this.#ajv);
    this.#baseline = baseline;
    this.#server = server;
    this.version = baseline.version;
  }

  validator(procedure: string, side: 'input' | 'output'): ValidateFunction {
    const key = `${procedure} ${side}`;
    let validate = this.#validators.get(key);
    if (validate === undefined) {
      const contract = this.#baseline.procedures.get(procedure);
      if (contract === undefined) throw new Error(`${this.#baseline.name} has no ${procedure}`);
      validate = this.#ajv.compile(contract[side] as Exclude<JsonSchema, boolean>);
      this.#validators.set(key, validate);
    }
    return validate;
  }

  /**
   * Asserts that `value` is valid under the baseline's schema for that side of `procedure`. The
   * schemas describe the JSON form (a timestamp is an ISO-8601 string, as in superjson's `json`
   * part and over REST), so decoded values (`Date`s) are checked in that form.
   */
  check(procedure: string, side: 'input' | 'output', value: unknown): void {
    const validate = this.validator(procedure, side);
    const ok = validate(value === undefined ? value : JSON.parse(JSON.stringify(value)));
    expect(
      ok,
      `${this.#baseline.name}: ${procedure} ${side} ${JSON.stringify(value)?.slice(0, 400)} — ${this.#ajv.errorsText(validate.errors)}`,
    ).toBe(true);
  }

  /** Whether this client's contract has the procedure (newer procedures are called only then). */
  knows(procedure: string): boolean {
    return this.#baseline.procedures.has(procedure);
  }

  async call<T>(procedure: string, input: unknown, token?: string): Promise<T> {
    const kind = this.#baseline.procedures.get(procedure)?.kind;
    if (input !== undefined) this.check(procedure, 'input', input);
    const options = {
      ...(token === undefined ? {} : { token }),
      headers: { 'x-tether-client-version': this.#baseline.version },
    };
    const result: CallResult<T> =
      kind === 'query'
        ? await query<T>(this.#server.url, procedure, input, options)
        : await mutate<T>(this.#server.url, procedure, input, options);
    expect(result.status, `${procedure}: ${result.raw.slice(0, 400)}`).toBe(200);
    this.check(procedure, 'output', result.data);
    this.covered.add(procedure);
    return result.data;
  }
}

/** Every query and mutation of the contract, with real data, as one operator and two nodes. */
async function scenario(client: SchemaClient, server: TestServer): Promise<void> {
  const admin = server.adminToken;
  const tag = Math.random().toString(36).slice(2, 8);
  await client.call('system.info', undefined);

  const member = await client.call<{ participantId: string; token: string }>(
    'participant.create',
    { name: `member-${tag}`, role: 'member' },
    admin,
  );
  await client.call('participant.list', {}, admin);
  const token = await client.call<{ tokenId: string }>(
    'token.create',
    { name: `spare-${tag}` },
    member.token,
  );
  await client.call('token.revoke', { tokenId: token.tokenId }, member.token);
  if (client.knows('token.list')) await client.call('token.list', {}, member.token);
  if (client.knows('participant.suspend')) {
    const other = await client.call<{ participantId: string }>(
      'participant.create',
      { name: `suspended-${tag}`, role: 'member' },
      admin,
    );
    await client.call('participant.suspend', { participantId: other.participantId }, admin);
    await client.call('participant.resume', { participantId: other.participantId }, admin);
  }

  const session = await client.call<{ sessionId: string }>(
    'session.create',
    { name: `lab-${tag}` },
    admin,
  );
  const sessionId = session.sessionId;
  await client.call('session.get', { sessionId }, admin);
  await client.call('session.list', {}, admin);
  await client.call('session.raiseFloor', { sessionId, minNodeVersion: '1.0' }, admin);
  const membership = { sessionId, participantId: member.participantId };
  await client.call('membership.add', { ...membership, role: 'viewer' }, admin);
  await client.call('membership.update', { ...membership, role: 'collaborator' }, admin);
  await client.call('membership.list', { sessionId }, admin);

  // A node enrolled with a key, and one paired by an operator's approval.
  const key = await client.call<{ keyId: string; enrollmentKey: string }>(
    'enrollment.createKey',
    {},
    admin,
  );
  await client.call('enrollment.listKeys', {}, admin);
  const enrolled = await client.call<{
    nodeId: string;
    nodeToken: string;
    ownerParticipantId: string;
  }>('device.enroll', {
    enrollmentKey: key.enrollmentKey,
    name: `Enrolled ${tag}`,
    nodeType: 'daemon',
  });
  if (client.knows('device.enrollBatch')) {
    const fleetKey = await client.call<{ enrollmentKey: string }>(
      'enrollment.createKey',
      { reusable: true },
      admin,
    );
    await client.call('device.enrollBatch', {
      enrollmentKey: fleetKey.enrollmentKey,
      nodes: [
        { name: `Batch A ${tag}`, nodeType: 'daemon' },
        { name: `Batch B ${tag}`, nodeType: 'edge' },
      ],
    });
  }
  const spare = await client.call<{ keyId: string }>('enrollment.createKey', {}, admin);
  await client.call('enrollment.revokeKey', { keyId: spare.keyId }, admin);

  const pairing = await client.call<{ requestId: string; claimSecret: string }>('pairing.request', {
    name: `Paired ${tag}`,
    nodeType: 'desktop',
  });
  await client.call('pairing.list', {}, admin);
  await client.call('pairing.approve', { requestId: pairing.requestId }, admin);
  const claimed = await client.call<{ nodeId: string; nodeToken: string }>('pairing.claim', {
    requestId: pairing.requestId,
    claimSecret: pairing.claimSecret,
  });
  const rejected = await client.call<{ requestId: string }>('pairing.request', {
    name: `Rejected ${tag}`,
    nodeType: 'desktop',
  });
  await client.call('pairing.reject', { requestId: rejected.requestId }, admin);

  // The enrolled node's life in the session.
  const nodeId = enrolled.nodeId;
  const asNode = enrolled.nodeToken;
  const attach = {
    sessionId,
    participantId: enrolled.ownerParticipantId,
    nodeId,
    nodeVersion: client.version,
    capabilities: { gpu: { description: 'a GPU' } },
    healthState: 'online',
  };
  await client.call('runtimenode.attach', attach, asNode);
  await client.call('runtimenode.heartbeat', { nodeId, healthState: 'online' }, asNode);
  await client.call(
    'runtimenode.capabilityupdate',
    { nodeId, capabilities: { gpu: {}, shell: {} } },
    asNode,
  );
  await client.call('runtimenode.roster', { sessionId }, admin);
  await client.call('node.get', { nodeId }, admin);
  await client.call('node.list', {}, admin);
  await client.call('node.isOnline', { nodeId }, admin);
  if (client.knows('node.metrics')) await client.call('node.metrics', { nodeId }, admin);
  if (client.knows('node.counts')) await client.call('node.counts', {}, admin);
  await client.call('node.findOnlineWithCapability', { capability: 'gpu' }, admin);
  await client.call('node.update', { nodeId, name: `Renamed ${tag}` }, admin);
  if (client.knows('policy.set')) {
    // The access policy: a leased capability, its lease taken, renewed, listed and released.
    await client.call('policy.set', { nodeId, capability: 'shell', policy: 'leased' }, admin);
    await client.call('policy.get', { nodeId }, admin);
    const lease = await client.call<{ leaseId: string }>(
      'lease.acquire',
      { nodeId, capability: 'shell', ttlSeconds: 60 },
      admin,
    );
    await client.call('lease.renew', { leaseId: lease.leaseId, ttlSeconds: 120 }, admin);
    await client.call('lease.list', { nodeId }, admin);
    await client.call('lease.release', { leaseId: lease.leaseId }, admin);
  }
  if (client.knows('command.invoke')) await commands(client, server, { nodeId, asNode, member });
  await client.call('runtimenode.detach', { nodeId }, asNode);
  await client.call('runtimenode.attach', attach, asNode);
  if (client.knows('node.detach')) {
    // The owner's non-terminal detach; the node attaches again.
    await client.call('node.detach', { nodeId, reason: 'compat' }, admin);
    await client.call('runtimenode.attach', attach, asNode);
  }
  await client.call('runtimenode.revoke', { sessionId, nodeId }, admin);
  await client.call('node.rotateToken', {}, asNode);
  if (client.knows('node.reissueToken')) {
    await client.call('node.reissueToken', { nodeId: claimed.nodeId }, admin);
  }

  await client.call('node.revoke', { nodeId: claimed.nodeId }, admin);
  await client.call('membership.remove', membership, admin);
  await client.call('fleet.list', {}, admin);
}

/**
 * Commands: one run over the REST-style node calls, gated ones approved, denied and cancelled,
 * and the two subscriptions (the node's stream, a watch) over WebSockets announcing the version.
 */
async function commands(
  client: SchemaClient,
  server: TestServer,
  cast: { nodeId: string; asNode: string; member: { token: string } },
): Promise<void> {
  const admin = server.adminToken;
  const { nodeId, asNode } = cast;
  let keys = 0;
  const invoke = (token: string) =>
    client.call<{ commandId: string }>(
      'command.invoke',
      { target: { nodeId }, capability: 'gpu', input: { n: keys }, idempotencyKey: `k-${keys++}` },
      token,
    );
  const ran = await invoke(admin);
  await client.call('command.get', { commandId: ran.commandId }, admin);
  await client.call('command.list', { nodeId }, admin);
  await client.call('runtimenode.pendingCommands', {}, asNode);
  await client.call('runtimenode.commandack', { commandId: ran.commandId }, asNode);
  await client.call(
    'runtimenode.commandresult',
    { commandId: ran.commandId, ok: true, output: { done: true } },
    asNode,
  );
  await client.call('policy.set', { nodeId, capability: 'gpu', policy: 'gated' }, admin);
  const approved = await invoke(cast.member.token);
  await client.call('command.approve', { commandId: approved.commandId }, admin);
  await client.call('command.cancel', { commandId: approved.commandId }, admin);
  const denied = await invoke(cast.member.token);
  await client.call('command.deny', { commandId: denied.commandId, reason: 'no' }, admin);
  await client.call('policy.set', { nodeId, capability: 'gpu', policy: 'owner' }, admin);

  const node = wsClient(server, { token: asNode, clientVersion: client.version });
  const watcher = wsClient(server, { token: admin, clientVersion: client.version });
  const received: unknown[] = [];
  const watched: unknown[] = [];
  const streamInput = {};
  client.check('runtimenode.commands', 'input', streamInput);
  const stream = node.client.runtimenode.commands.subscribe(streamInput, {
    onData: (message) => received.push(message.data),
    onError: () => undefined,
  });
  try {
    const live = await invoke(admin);
    const watchInput = { commandId: live.commandId };
    client.check('command.watch', 'input', watchInput);
    const watch = watcher.client.command.watch.subscribe(watchInput, {
      onData: (update) => watched.push(update.data),
      onError: () => undefined,
    });
    await eventually(
      () => Promise.resolve(received.length > 0 && watched.length > 0),
      (done) => done,
    );
    watch.unsubscribe();
    for (const message of received) client.check('runtimenode.commands', 'output', message);
    for (const update of watched) client.check('command.watch', 'output', update);
    client.covered.add('runtimenode.commands');
    client.covered.add('command.watch');
  } finally {
    stream.unsubscribe();
    await node.close();
    await watcher.close();
  }
}

/** The fleet feed from the beginning, over a WebSocket announcing the client's version. */
async function subscribe(client: SchemaClient, server: TestServer): Promise<void> {
  const input = { lastEventId: '0' };
  client.check('fleet.events', 'input', input);
  const ws = wsClient(server, { token: server.adminToken, clientVersion: client.version });
  const events: unknown[] = [];
  let failure: unknown = null;
  const subscription = ws.client.fleet.events.subscribe(input, {
    onData: (tracked) => events.push(tracked.data),
    onError: (error) => (failure = error),
  });
  try {
    await eventually(
      () => Promise.resolve(events.length),
      (count) => count >= 5 || failure !== null,
    );
    expect(failure).toBeNull();
    for (const event of events) client.check('fleet.events', 'output', event);
    client.covered.add('fleet.events');
  } finally {
    subscription.unsubscribe();
    await ws.close();
  }
}

describe.each(CLIENTS)('a client built on $name keeps working against this server', (baseline) => {
  it(`every procedure it knows: requests valid under its input schemas succeed, responses and events are valid under its output schemas`, async () => {
    await using server = await startTestServer();
    const client = new SchemaClient(baseline, server);
    await scenario(client, server);
    await subscribe(client, server);
    expect([...client.covered].sort()).toEqual([...baseline.procedures.keys()].sort());
  });
});

describe('the published (current) output schemas are open', () => {
  it('every object output the server sends stays valid with a field added, as from a newer server', async () => {
    await using server = await startTestServer();
    const client = new SchemaClient(current, server);
    const info = await client.call<Record<string, unknown>>('system.info', undefined);
    client.check('system.info', 'output', { ...info, addedByANewerServer: { any: 'thing' } });
    const sessions = await client.call<{ items: Array<Record<string, unknown>> }>(
      'session.list',
      {},
      server.adminToken,
    );
    client.check('session.list', 'output', {
      ...sessions,
      addedByANewerServer: 1,
      items: sessions.items.map((s) => ({ ...s, addedByANewerServer: 1 })),
    });
    // ... while a request with an unknown key is refused, as the strict input schema says.
    expect(client.validator('session.list', 'input')({ addedByANewerClient: 1 })).toBe(false);
    const refused = await query(
      server.url,
      'session.list',
      { addedByANewerClient: 1 },
      { token: server.adminToken },
    );
    expect(errorCode(refused)).toBe('request.invalid');
  });
});

describe.each(REFUSED)(
  'a client built on $name (a MAJOR this server no longer serves)',
  (baseline) => {
    it('is refused with version.unsupported naming the supported range', async () => {
      await using server = await startTestServer();
      const result = await query(server.url, 'system.info', undefined, {
        headers: { 'x-tether-client-version': baseline.version },
      });
      expect(errorCode(result)).toBe('version.unsupported');
      expect(result.error?.data.tetherError.details).toMatchObject({
        supportedContractMajors: SUPPORTED_CONTRACT_MAJORS,
      });
    });
  },
);
