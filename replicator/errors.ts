/**
 * The error catalogue of the replicator: every code thrown in replicator/, whether a retry may help,
 * and what it means. Errors are {@link ReplicatorError}s (a {@link PlatformError} with a catalogue code).
 */
import { PlatformError, type ErrorSpec, type PlatformErrorOptions } from "../common/errors.js";

export const REPLICATOR_ERRORS = {
  CONFIG_INVALID: {
    retriable: false,
    description:
      "The configuration (file, or a registration on a registry topic) fails validation; `issues` names each field.",
  },
  CHUNK_INVALID: {
    retriable: false,
    description: "A chunked record cannot be reassembled (missing, repeated or inconsistent chunks).",
  },
  INVALID_ENGINE: {
    retriable: false,
    description: "The engine slot (index of count engines in the process) is not valid.",
  },
  UNKNOWN_DATACENTER: {
    retriable: false,
    description: "A pipeline or the election names a datacenter missing from the configuration.",
  },
  TARGET_NOT_READY: {
    retriable: true,
    description:
      "The target topic was created but the destination does not list it with its leaders yet; its pipeline starts in a later round.",
  },
  WAITING_FOR_LEADER: {
    retriable: true,
    description:
      "The target topic (or its partitions) is created by the elected leader; this engine tries again next round.",
  },
  SOURCE_GONE: {
    retriable: true,
    description: "The source topic has no partitions any more (deleted while the pipeline started).",
  },
  NOT_STARTED: {
    retriable: true,
    description: "A batch arrived at a pipeline whose destination producer is not set up.",
  },
  DEAD_LETTER_FAILED: {
    retriable: true,
    description:
      "A refused record could not be written to the dead-letter topic (out of reach, or refused there too): its partition retries with backoff.",
  },
  TRANSACTION_FAILED: {
    retriable: true,
    description: "An exactly-once destination transaction failed without an error of its own.",
  },
  TRANSACTION_OUTCOME_UNKNOWN: {
    retriable: true,
    description:
      "An exactly-once transaction failed after its records were sent (adding its positions or committing): it may have committed, so its partitions resume at the positions the destination holds, never by re-sending its records at once.",
  },
  TIMEOUT: {
    retriable: true,
    description: "A pipeline did not reach the running state in time.",
  },
  WORKER_FAILED: {
    retriable: false,
    description: "A replication engine thread failed, exited or did not answer the pool.",
  },
  NOT_A_WORKER: {
    retriable: false,
    description: "replicator/worker.ts was started outside a worker thread of replicator/pool.ts.",
  },
  NO_STATUS: {
    retriable: false,
    description: "Statuses were merged without any engine status.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ReplicatorErrorCode = keyof typeof REPLICATOR_ERRORS;

export class ReplicatorError extends PlatformError<ReplicatorErrorCode> {
  constructor(code: ReplicatorErrorCode, message: string, options: PlatformErrorOptions = {}) {
    super(code, message, REPLICATOR_ERRORS[code].retriable, options);
  }
}

/**
 * An invalid configuration: each issue names its field (`replication[0].destinations[1]: ...`, the
 * `fieldPath` style); `field` is the first issue's path (none for a file that cannot be read or parsed).
 */
export class ConfigError extends ReplicatorError {
  readonly issues: string[];
  constructor(issues: string[], options: { cause?: unknown; field?: string } = {}) {
    super("CONFIG_INVALID", `invalid replicator configuration: ${issues.join("; ")}`, {
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
      ...(options.field !== undefined ? { field: options.field } : {}),
    });
    this.issues = issues;
  }
}

/** A chunked record could not be reassembled (missing or inconsistent chunks). */
export class ChunkError extends ReplicatorError {
  constructor(message: string) {
    super("CHUNK_INVALID", message);
  }
}
