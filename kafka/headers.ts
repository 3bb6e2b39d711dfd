/**
 * Record headers in the order Kafka keeps them. kafkajs hands headers out as an object (`a=1, b=2, a=3`
 * becomes `{a: [1, 3], b: 2}`), which loses their order; the record decoder patch
 * (./patches/record-decoding.ts) also attaches the headers as an ordered list under {@link HEADER_LIST},
 * and the produce encoder (./patches/produce-encoding.ts) writes that list when a message carries one.
 * A header value may be null (Kafka allows it; kafkajs's own encoder does not).
 */

/** One header as Kafka stores it: name and value (null allowed; a string is written as UTF-8). */
export type HeaderEntry = readonly [name: string, value: Buffer | string | null];
export type HeaderList = readonly HeaderEntry[];

/** The ordered headers of a fetched or to-be-produced message (a registered symbol: one per process). */
export const HEADER_LIST: unique symbol = Symbol.for("license-platform.kafka.headerList") as never;

export type HeaderValue = Buffer | string | null;
/** kafkajs's header object: a value, or the values of a repeated name in order. */
export type HeaderObject = Record<string, HeaderValue | HeaderValue[] | undefined>;

/** A message that may carry its ordered headers. */
export interface WithHeaderList {
  [HEADER_LIST]?: HeaderList;
}

/** The ordered headers of a message: its list when it has one, else its object's entries in key order. */
export function headerListOf(message: { headers?: HeaderObject | undefined } & WithHeaderList): HeaderList {
  const list = message[HEADER_LIST];
  if (list) return list;
  const out: HeaderEntry[] = [];
  const headers = message.headers;
  if (!headers) return out;
  for (const name of Object.keys(headers)) {
    const raw = headers[name];
    if (raw === undefined) continue;
    for (const v of Array.isArray(raw) ? raw : [raw]) out.push([name, toBuffer(v)]);
  }
  return out;
}

function toBuffer(value: HeaderValue): Buffer | null {
  return value === null ? null : typeof value === "string" ? Buffer.from(value, "utf8") : value;
}

/**
 * kafkajs's header object of an ordered list (repeated names become arrays in order). Unlike kafkajs
 * 2.2.4's own reduce it is linear and takes names such as `toString` or `__proto__` as plain names.
 */
export function headerObjectOf(list: HeaderList): HeaderObject {
  const out: HeaderObject = {};
  for (const [name, value] of list) {
    if (!Object.hasOwn(out, name)) {
      // an assignment would set the prototype for `__proto__`: only that name needs defineProperty
      if (name === "__proto__")
        Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
      else out[name] = value;
      continue;
    }
    const prior = out[name];
    if (Array.isArray(prior)) prior.push(value);
    else out[name] = [prior as HeaderValue, value];
  }
  return out;
}

/**
 * The list with `set` applied: each name's first entry takes the new value and its later entries go; a
 * name not there yet is appended. (The provenance headers a replicated copy carries, in place.)
 */
export function setHeaders(list: HeaderList, set: readonly (readonly [string, string])[]): HeaderEntry[] {
  // A linear scan of `set` (a handful of names) costs less per record than building a Map and a Set.
  const done: boolean[] = new Array<boolean>(set.length).fill(false);
  const out: HeaderEntry[] = [];
  for (const entry of list) {
    let at = -1;
    for (let i = 0; i < set.length; i++) {
      if (set[i]![0] === entry[0]) {
        at = i;
        break;
      }
    }
    if (at < 0) out.push(entry);
    else if (!done[at]) {
      out.push(set[at]!);
      done[at] = true;
    }
  }
  for (let i = 0; i < set.length; i++) if (!done[i]) out.push(set[i]!);
  return out;
}
