/**
 * The router's transformer: superjson, with a fanned-out output serialised once. The feed hub
 * hands the same event object to every subscriber and `parseEvents` (procedures.ts) parses it
 * once; tRPC then serialised each subscriber's answer on its own (for a tracked event, a fresh
 * `{ id, data }` around it), which with 1 000 dashboards walked the same event 1 000 times.
 *
 * An output marked shared (`shareOutput`) is serialised on its first answer and the result is
 * reused; so is the tracked wrapper around it (its id is the event's, the same for everyone).
 * `frameText` then writes an answer frame carrying such a result with the result's JSON text
 * made once, not once per subscriber. Only objects nobody changes after marking may be marked:
 * the parsed events are built by the schema and never written to again.
 */
import superjson from 'superjson';

type Serialized = ReturnType<typeof superjson.serialize>;

const shared = new WeakSet<object>();
/** A shared output's serialisation, and that of the tracked wrapper around it (by its id). */
const serialized = new WeakMap<object, { plain?: Serialized; tracked?: [unknown, Serialized] }>();
/** Serialisations that are the same for every subscriber, with their JSON text once written. */
const texts = new WeakMap<object, string | null>();

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

/** `value` is answered to many callers unchanged: serialise it once. */
export function shareOutput(value: unknown): void {
  if (isObject(value)) shared.add(value);
}

function reused(result: Serialized): Serialized {
  texts.set(result, null);
  return result;
}

function entryOf(value: object): { plain?: Serialized; tracked?: [unknown, Serialized] } {
  let entry = serialized.get(value);
  if (!entry) serialized.set(value, (entry = {}));
  return entry;
}

function serialize(value: unknown): Serialized {
  if (!isObject(value)) return superjson.serialize(value);
  if (shared.has(value)) {
    const entry = entryOf(value);
    return (entry.plain ??= reused(superjson.serialize(value)));
  }
  // tRPC's tracked answer, `{ id, data }` around a shared event.
  const data = value.data;
  if (isObject(data) && shared.has(data) && Object.keys(value).length === 2 && 'id' in value) {
    const entry = entryOf(data);
    const known = entry.tracked;
    if (known !== undefined && known[0] === value.id) return known[1];
    const result = reused(superjson.serialize(value));
    entry.tracked = [value.id, result];
    return result;
  }
  return superjson.serialize(value);
}

export const transformer = {
  input: superjson,
  output: {
    serialize,
    deserialize: (value: unknown): unknown => superjson.deserialize(value as Serialized),
  },
};

const FRAME_KEYS = ['id,result', 'id,jsonrpc,result'];
const RESULT_KEYS = ['type,data', 'type,data,id'];

/**
 * An answer frame as JSON text, equal to `JSON.stringify(frame)`: a data frame whose payload is
 * a reused serialisation (above) gets that payload's text written once for every subscriber.
 */
export function frameText(frame: unknown): string {
  const result = isObject(frame) ? frame.result : undefined;
  const data = isObject(result) ? result.data : undefined;
  if (!isObject(data) || !texts.has(data)) return JSON.stringify(frame);
  const f = frame as { id: unknown; jsonrpc?: unknown };
  const r = result as { type: unknown; id?: unknown };
  if (
    !FRAME_KEYS.includes(Object.keys(f).join(',')) ||
    !RESULT_KEYS.includes(Object.keys(r).join(','))
  ) {
    return JSON.stringify(frame);
  }
  let text = texts.get(data);
  if (text == null) texts.set(data, (text = JSON.stringify(data)));
  // Like JSON.stringify, an undefined member is left out.
  const jsonrpc = f.jsonrpc === undefined ? '' : `,"jsonrpc":${JSON.stringify(f.jsonrpc)}`;
  const id = r.id === undefined ? '' : `,"id":${JSON.stringify(r.id)}`;
  return `{"id":${JSON.stringify(f.id)}${jsonrpc},"result":{"type":${JSON.stringify(r.type)},"data":${text}${id}}}`;
}
