/**
 * Commands on a node's page: a "Run" form per declared capability (`command.invoke` with a
 * fresh idempotency key, then the `command.watch` subscription showing the command live until
 * it ends, with a Cancel button while it is open), and the node's command history
 * (`command.list`, newest first, "Load more"), refreshed by the feed's `command.*` events
 * (cache.ts) and offering Approve / Deny on gated commands to the node's owner or an admin.
 */
import type {
  CapabilityDescriptor,
  CommandInvokeInput,
  CommandView,
  NodeView,
} from '@tether/client';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useSubscription } from '@trpc/tanstack-react-query';
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { Failed, Loading } from '../components/Status.js';
import { errorMessage } from '../errors.js';
import { dateTime } from '../format.js';
import { useTRPC, useTRPCClient } from '../trpc.js';

type CommandState = CommandView['state'];

const OPEN_STATES: readonly CommandState[] = [
  'awaiting_approval',
  'pending',
  'delivered',
  'running',
];

function isOpen(state: CommandState): boolean {
  return OPEN_STATES.includes(state);
}

const DEFAULT_TIMEOUT_S = 60;
const HISTORY_PAGE = 20;

/** The capability table of the node page, each with its "Run" button and form. */
export function Capabilities({ node }: { node: NodeView }) {
  const entries = Object.entries(node.capabilities);
  const [running, setRunning] = useState<string | null>(null);
  const runnable = node.status === 'active';
  const descriptor = running !== null ? node.capabilities[running] : undefined;
  const runButtons = useRef(new Map<string, HTMLButtonElement>());
  const close = () => {
    // Focus goes back to the Run button that opened the form.
    const opener = running !== null ? runButtons.current.get(running) : undefined;
    setRunning(null);
    opener?.focus();
  };
  return (
    <div className="panel">
      <h2>Capabilities</h2>
      {entries.length === 0 ? (
        <p className="muted">This node declares no capabilities.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Descriptor</th>
                {runnable && (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {entries.map(([name, d]) => (
                <tr key={name} data-capability={name}>
                  <td>
                    <code>{name}</code>
                  </td>
                  <td>
                    <code>{JSON.stringify(d)}</code>
                  </td>
                  {runnable && (
                    <td>
                      <button
                        type="button"
                        aria-label={`Run ${name}`}
                        aria-expanded={running === name}
                        ref={(el) => {
                          if (el === null) runButtons.current.delete(name);
                          else runButtons.current.set(name, el);
                        }}
                        onClick={() => setRunning(name)}
                      >
                        Run
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {running !== null && descriptor !== undefined && (
        <RunPanel
          key={running}
          nodeId={node.nodeId}
          capability={running}
          descriptor={descriptor}
          onClose={close}
        />
      )}
    </div>
  );
}

function RunPanel({
  nodeId,
  capability,
  descriptor,
  onClose,
}: {
  nodeId: string;
  capability: string;
  descriptor: CapabilityDescriptor;
  onClose: () => void;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const commands = descriptor.commands ?? [];
  const [command, setCommand] = useState(commands[0] ?? '');
  const [input, setInput] = useState('{}');
  const [timeout, setTimeoutS] = useState(String(DEFAULT_TIMEOUT_S));
  const [inputError, setInputError] = useState<string | null>(null);
  const [started, setStarted] = useState<{ commandId: string; state: CommandState } | null>(null);
  const first = useRef<HTMLSelectElement & HTMLTextAreaElement>(null);
  useEffect(() => first.current?.focus(), []);

  const invoke = useMutation(
    trpc.command.invoke.mutationOptions({
      onSuccess: (out) => {
        setStarted({ commandId: out.commandId, state: out.state });
        void queryClient.invalidateQueries(trpc.command.list.pathFilter());
      },
    }),
  );

  const submit = (e: FormEvent) => {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch (error) {
      setInputError(`Not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    setInputError(null);
    const seconds = Number(timeout);
    setStarted(null);
    invoke.mutate({
      target: { nodeId },
      capability,
      ...(commands.length > 0 ? { command } : {}),
      input: parsed as CommandInvokeInput['input'],
      ...(Number.isFinite(seconds) && timeout.trim() !== ''
        ? { timeoutMs: Math.round(seconds * 1000) }
        : {}),
      idempotencyKey: crypto.randomUUID(),
    });
  };

  return (
    <div className="run-panel">
      <form aria-label="Run command" onSubmit={submit}>
        <h3>
          Run <code>{capability}</code>
        </h3>
        {typeof descriptor.description === 'string' && (
          <p className="muted">{descriptor.description}</p>
        )}
        <div className="form-row">
          {commands.length > 0 && (
            <div className="field">
              <label htmlFor={`${id}-command`}>Command</label>
              <select
                id={`${id}-command`}
                ref={first}
                value={command}
                onChange={(e) => setCommand(e.target.value)}
              >
                {commands.map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </div>
          )}
          <div className="field">
            <label htmlFor={`${id}-timeout`}>Timeout (seconds)</label>
            <input
              id={`${id}-timeout`}
              type="number"
              min={1}
              max={86_400}
              step={1}
              value={timeout}
              onChange={(e) => setTimeoutS(e.target.value)}
            />
          </div>
        </div>
        <div className="field">
          <label htmlFor={`${id}-input`}>Input (JSON)</label>
          <textarea
            id={`${id}-input`}
            ref={commands.length > 0 ? undefined : first}
            rows={4}
            spellCheck={false}
            className="mono"
            value={input}
            onChange={(e) => setInput(e.target.value)}
            aria-invalid={inputError !== null}
            aria-describedby={inputError !== null ? `${id}-input-error` : undefined}
          />
          {inputError !== null && (
            <p id={`${id}-input-error`} role="alert" className="error">
              {inputError}
            </p>
          )}
        </div>
        {invoke.error !== null && (
          <p role="alert" className="error">
            {errorMessage(invoke.error)}
          </p>
        )}
        <div className="actions">
          <button type="submit" disabled={invoke.isPending}>
            Run
          </button>
          <button type="button" className="secondary" onClick={onClose}>
            Close
          </button>
        </div>
      </form>
      {started !== null && (
        <CommandResult
          key={started.commandId}
          commandId={started.commandId}
          initialState={started.state}
        />
      )}
    </div>
  );
}

/** One command followed live through `command.watch` until it ends. */
function CommandResult({
  commandId,
  initialState,
}: {
  commandId: string;
  initialState: CommandState;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  // Kept here: the subscription's own `data` is cleared when the stream ends (at the end state).
  const [view, setView] = useState<CommandView | null>(null);
  const watch = useSubscription(
    trpc.command.watch.subscriptionOptions(
      { commandId },
      {
        onData: (tracked) => {
          setView(tracked.data);
          queryClient.setQueryData(trpc.command.get.queryKey({ commandId }), tracked.data);
        },
      },
    ),
  );
  const state = view?.state ?? initialState;
  const cancel = useMutation(trpc.command.cancel.mutationOptions());
  return (
    <section
      className="command-result"
      data-testid="command-result"
      data-state={state}
      aria-live="polite"
      aria-label="Command result"
    >
      <p>
        <span className="muted">Command</span> <code>{commandId}</code>:{' '}
        <CommandStateBadge state={state} />
      </p>
      {state === 'awaiting_approval' && (
        <p className="muted">Waiting for the node owner&apos;s (or an admin&apos;s) approval.</p>
      )}
      {view !== null && <CommandOutcome view={view} />}
      {watch.status === 'error' && watch.error !== null && (
        <Failed error={watch.error} retry={() => watch.reset()} />
      )}
      {cancel.error !== null && (
        <p role="alert" className="error">
          {errorMessage(cancel.error)}
        </p>
      )}
      {isOpen(state) && (
        <div className="actions">
          <button
            type="button"
            className="danger"
            disabled={cancel.isPending}
            onClick={() => cancel.mutate({ commandId })}
          >
            Cancel
          </button>
        </div>
      )}
    </section>
  );
}

function CommandOutcome({ view }: { view: CommandView }) {
  return (
    <>
      {view.output !== null && (
        <>
          <h4>Output</h4>
          <pre className="json" data-testid="command-output">
            {JSON.stringify(view.output, null, 2)}
          </pre>
        </>
      )}
      {view.error !== null && (
        <div className="error" data-testid="command-error">
          <h4>Error</h4>
          <p>
            {view.error.code !== null && <code>{view.error.code}</code>}
            {view.error.code !== null && ': '}
            {view.error.message}
          </p>
          {view.error.details !== undefined && (
            <pre className="json">{JSON.stringify(view.error.details, null, 2)}</pre>
          )}
        </div>
      )}
    </>
  );
}

function CommandStateBadge({ state }: { state: CommandState }) {
  const tone =
    state === 'succeeded'
      ? 'ok'
      : state === 'failed' || state === 'expired' || state === 'denied'
        ? 'warn'
        : '';
  return (
    <span className={`badge ${tone}`} data-testid="command-state">
      {state.replace('_', ' ')}
    </span>
  );
}

/** The node's commands, newest first, with Approve / Deny for gated ones the caller may decide. */
export function CommandHistory({ node }: { node: NodeView }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const me = useQuery(trpc.system.info.queryOptions(undefined, { staleTime: Infinity }));
  const caller = me.data?.caller?.kind === 'participant' ? me.data.caller : null;
  const mayDecide =
    caller !== null &&
    (caller.role === 'admin' || caller.participantId === node.ownerParticipantId);
  const filter = { nodeId: node.nodeId, limit: HISTORY_PAGE };
  const history = useInfiniteQuery({
    queryKey: trpc.command.list.infiniteQueryKey(filter),
    queryFn: ({ pageParam, signal }) =>
      client.command.list.query(
        { ...filter, ...(pageParam !== null ? { cursor: pageParam } : {}) },
        { signal },
      ),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.nextCursor,
  });
  const rows = history.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <div className="panel">
      <h2>Command history</h2>
      {history.isPending ? (
        <Loading what="commands" />
      ) : history.isError ? (
        <Failed error={history.error} retry={() => void history.refetch()} />
      ) : rows.length === 0 ? (
        <p className="muted">No commands for this node yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="commands">
            <thead>
              <tr>
                <th scope="col">Capability / command</th>
                <th scope="col">Caller</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">Finished</th>
                {mayDecide && (
                  <th scope="col">
                    <span className="visually-hidden">Decision</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <HistoryRow
                  key={c.commandId}
                  command={c}
                  me={caller?.participantId ?? null}
                  mayDecide={mayDecide}
                />
              ))}
            </tbody>
          </table>
          {history.hasNextPage && (
            <div className="actions">
              <button
                type="button"
                className="secondary"
                disabled={history.isFetchingNextPage}
                onClick={() => void history.fetchNextPage()}
              >
                Load more
              </button>
            </div>
          )}
        </div>
      )}
    </div>
  );
}

function HistoryRow({
  command: c,
  me,
  mayDecide,
}: {
  command: CommandView;
  me: string | null;
  mayDecide: boolean;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const done = {
    onSuccess: () => void queryClient.invalidateQueries(trpc.command.list.pathFilter()),
  };
  const approve = useMutation(trpc.command.approve.mutationOptions(done));
  const deny = useMutation(trpc.command.deny.mutationOptions(done));
  const failure = approve.error ?? deny.error;
  const gated = c.state === 'awaiting_approval';
  return (
    <tr data-command-id={c.commandId} data-state={c.state}>
      <td>
        <code>{c.capability}</code>
        {c.command !== null && (
          <>
            {' / '}
            <code>{c.command}</code>
          </>
        )}
      </td>
      <td>{c.callerParticipantId === me ? 'you' : <code>{c.callerParticipantId}</code>}</td>
      <td>
        <CommandStateBadge state={c.state} />
        {c.error !== null && (
          <span className="muted">
            {' '}
            {c.error.code ?? ''} {c.error.message}
          </span>
        )}
      </td>
      <td>{dateTime(c.createdAt)}</td>
      <td>{dateTime(c.finishedAt)}</td>
      {mayDecide && (
        <td>
          {gated && (
            <div className="actions tight">
              <button
                type="button"
                disabled={approve.isPending || deny.isPending}
                onClick={() => approve.mutate({ commandId: c.commandId })}
              >
                Approve
              </button>
              <button
                type="button"
                className="danger"
                disabled={approve.isPending || deny.isPending}
                onClick={() => deny.mutate({ commandId: c.commandId })}
              >
                Deny
              </button>
            </div>
          )}
          {failure !== null && (
            <p role="alert" className="error">
              {errorMessage(failure)}
            </p>
          )}
        </td>
      )}
    </tr>
  );
}
