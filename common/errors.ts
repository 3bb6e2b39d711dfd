/**
 * The one error base of the platform. Each half (licensing service, replicator, Kafka home, launchers)
 * keeps a typed catalogue of its codes and throws a subclass of {@link PlatformError}: a stable `code`,
 * whether a retry may help (`retriable`), the input `field` at fault if any, and the `cause`.
 */

/** What a catalogue says about one code. */
export interface ErrorSpec {
  retriable: boolean;
  description: string;
}

export interface PlatformErrorOptions {
  /** Overrides the catalogue's `retriable` (e.g. a send that failed on a connection, not on the record). */
  retriable?: boolean;
  /** The input at fault, in the one path style of {@link fieldPath}: `chains[1].rpcUrl`. */
  field?: string;
  cause?: unknown;
}

export class PlatformError<C extends string = string> extends Error {
  readonly code: C;
  readonly retriable: boolean;
  readonly field?: string;

  constructor(code: C, message: string, retriable: boolean, options: PlatformErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? retriable;
    if (options.field !== undefined) this.field = options.field;
  }
}

/**
 * The one field-path style of every configuration and validation message: object keys joined by `.`,
 * array indexes in brackets — `chains[1].rpcUrl`, `replication[0].destinations[1]`.
 */
export function fieldPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? part : `.${part}`;
  }
  return out;
}
