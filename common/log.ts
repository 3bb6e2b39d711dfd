/**
 * The one way to log an error, in both halves: `logger.warn({ err: errorFields(error) }, "what failed")`.
 * Pino's own serializer would log stacks and every enumerable property (a kafkajs error carries its
 * broker request); these fields are the message, the code and the cause chain, nothing a secret could
 * hide in. Loggers come from `createLogger`, which logs `err` as given (pino's own `err` serializer
 * would turn these plain fields into `{type: "Object", stack: ""}`).
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

/** A pino logger whose `err` field is logged as given: the fields of `errorFields`, nothing added. */
export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const all = { ...options, serializers: { ...options.serializers, err: (value: unknown) => value } };
  return destination ? pino(all, destination) : pino(all);
}

export interface ErrorFields {
  message: string;
  name?: string;
  code?: string | number;
  field?: string;
  retriable?: boolean;
  /** Messages of the causes, outermost first (at most five). */
  causes?: string[];
}

const MAX_CAUSES = 5;
const MAX_MESSAGE = 500;

function messageOf(value: unknown): string {
  const text = value instanceof Error ? value.message : String(value);
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

/** An error (or any thrown value) as log fields: message, name, code, field, retriable, cause chain. */
export function errorFields(error: unknown): ErrorFields {
  const fields: ErrorFields = { message: messageOf(error) };
  if (typeof error === "object" && error !== null) {
    const e = error as {
      name?: unknown;
      code?: unknown;
      field?: unknown;
      retriable?: unknown;
      cause?: unknown;
    };
    if (typeof e.name === "string" && e.name !== "Error") fields.name = e.name;
    if (typeof e.code === "string" || typeof e.code === "number") fields.code = e.code;
    if (typeof e.field === "string") fields.field = e.field;
    if (typeof e.retriable === "boolean") fields.retriable = e.retriable;
    const causes: string[] = [];
    let cause = e.cause;
    while (cause !== undefined && cause !== null && causes.length < MAX_CAUSES) {
      causes.push(messageOf(cause));
      cause = (cause as { cause?: unknown }).cause;
    }
    if (causes.length > 0) fields.causes = causes;
  }
  return fields;
}

/** The message of any thrown value, for a human-readable line (a CLI's stderr, a status field). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
