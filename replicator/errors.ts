/** Error classes of the replicator. Every error carries a stable `code` and whether a retry may help. */
export class ReplicatorError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  constructor(code: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** An invalid configuration: the message names the field, e.g. `replication[0].destinations[1]: ...`. */
export class ConfigError extends ReplicatorError {
  readonly issues: string[];
  constructor(issues: string[], options: { cause?: unknown } = {}) {
    super("CONFIG_INVALID", `invalid replicator configuration: ${issues.join("; ")}`, options);
    this.issues = issues;
  }
}

/** A chunked record could not be reassembled (missing or inconsistent chunks). */
export class ChunkError extends ReplicatorError {
  constructor(message: string) {
    super("CHUNK_INVALID", message);
  }
}
