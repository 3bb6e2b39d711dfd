/**
 * What a failed send means for its partition, pure (no I/O): a record the destination cannot take (the
 * partition's error policy decides: stop, or dead-letter and go on), or a failure worth retrying (the
 * partition alone waits, with jittered backoff, and resumes at its acknowledged position). Also the
 * bisection that finds the record inside a refused slice without sending any record twice.
 */
import { ReplicatorError } from "../errors.js";
import { protocolErrorCode } from "../../kafka/protocol.js";

export type FailureKind = "record" | "retry";

export interface SendFailure {
  kind: FailureKind;
  /** A short machine-readable reason: a Kafka error type (MESSAGE_TOO_LARGE), ENCODING, or a code. */
  reason: string;
}

/** Kafka error codes that refuse the records themselves: sending the same bytes again cannot succeed. */
const RECORD_ERRORS: Record<number, string> = {
  2: "CORRUPT_MESSAGE",
  10: "MESSAGE_TOO_LARGE",
  18: "RECORD_LIST_TOO_LARGE",
  32: "INVALID_TIMESTAMP",
  43: "UNSUPPORTED_FOR_MESSAGE_FORMAT",
  87: "INVALID_RECORD",
};

/** An error and its causes, outermost first (at most 6). */
export function causes(error: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && out.length < 6; e = (e as { cause?: unknown }).cause) {
    out.push(e);
  }
  return out;
}

/** Whether a failure is the records' own (the error policy applies) or one to retry, and why. */
export function classifyFailure(error: unknown): SendFailure {
  for (const e of causes(error)) {
    // Sent in full, outcome unknown (../transactions.ts): never the records' fault, never bisected.
    if (e instanceof ReplicatorError && e.code === "TRANSACTION_OUTCOME_UNKNOWN")
      return { kind: "retry", reason: e.code };
    const code = protocolErrorCode(e);
    if (code !== undefined && RECORD_ERRORS[code] !== undefined)
      return { kind: "record", reason: RECORD_ERRORS[code] };
    // The encoder or kafkajs could not write the record (a value it cannot take): the same every time.
    if (e instanceof TypeError || e instanceof RangeError) return { kind: "record", reason: "ENCODING" };
  }
  const top = error as { type?: unknown; code?: unknown; name?: unknown } | null;
  const reason =
    typeof top?.type === "string"
      ? top.type
      : typeof top?.code === "string"
        ? top.code
        : typeof top?.name === "string"
          ? top.name
          : "UNKNOWN";
  return { kind: "retry", reason };
}

/** The wait before a partition's next attempt: 500 ms doubling to 30 s, jittered to 50–100 %. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + random() * (base / 2));
}

/** A record the destination refused, found by {@link bisect}. */
export class RefusedRecord<T> extends Error {
  constructor(
    readonly unit: T,
    /** Units before it, delivered. */
    readonly delivered: number,
    readonly failure: SendFailure,
    override readonly cause: unknown,
  ) {
    super(`record refused (${failure.reason})`);
  }
}

/**
 * Delivers `units` in order. When the destination refuses a group for the records' own reason, it is
 * halved and each half sent in turn, so that the refused record is found in O(log n) sends and every
 * record before it is delivered exactly once (a refused request writes nothing). Resolves with the
 * count delivered; rejects with a {@link RefusedRecord} for the first refused record, or with a
 * retriable error as is (`delivered` units went through before it: see {@link PartialDelivery}).
 */
export async function bisect<T>(
  units: readonly T[],
  send: (group: readonly T[]) => Promise<void>,
): Promise<number> {
  let delivered = 0;
  const run = async (group: readonly T[]): Promise<void> => {
    try {
      await send(group);
      delivered += group.length;
    } catch (error) {
      // A send may have delivered its first units before it failed (a record in several requests).
      const partial = error instanceof PartialDelivery ? error.delivered : 0;
      const cause = error instanceof PartialDelivery ? error.cause : error;
      delivered += partial;
      const rest = group.slice(partial);
      const failure = classifyFailure(cause);
      if (failure.kind !== "record") throw new PartialDelivery(delivered, cause);
      if (rest.length === 1) throw new RefusedRecord(rest[0]!, delivered, failure, cause);
      const half = Math.ceil(rest.length / 2);
      await run(rest.slice(0, half));
      await run(rest.slice(half));
    }
  };
  if (units.length > 0) await run(units);
  return delivered;
}

/** A retriable failure after `delivered` units went through. */
export class PartialDelivery extends Error {
  constructor(
    readonly delivered: number,
    override readonly cause: unknown,
  ) {
    super("delivery interrupted");
  }
}
