/**
 * License lifecycle events (pure): the event shape written to the outbox in the same SQLite transaction
 * as the state change, its Kafka value (JSON, `schemaVersion` 1) and the parser a replica uses.
 *
 * Every event carries the whole license as it is after the change (a snapshot), so a consumer applies
 * events idempotently: an event id is applied once, and per license only a newer `sequence` wins.
 */
import { z } from "zod";
import {
  EVENT_SCHEMA_VERSION,
  EVENT_TYPES,
  type LicenseEvent,
  type LicenseEventType,
  type LicenseRecord,
  type LicenseSnapshot,
  type OutboxPayload,
} from "./domain.js";
import { AppError } from "./errors.js";

export { EVENT_SCHEMA_VERSION, EVENT_TYPES };
export type { LicenseEvent, LicenseEventType, LicenseSnapshot, OutboxPayload } from "./domain.js";

export function snapshot(license: LicenseRecord, contract: string | undefined): LicenseSnapshot {
  return {
    id: license.id,
    clientId: license.clientId,
    productId: license.productId,
    licensee: license.licensee,
    seats: license.seats,
    expiresAt: license.expiresAt,
    requestRef: license.requestRef,
    termsHash: license.termsHash,
    chainId: license.chainId,
    contract: contract ?? null,
    policy: license.policy,
    reason: license.reason,
    candidates: license.candidates,
    status: license.status,
    revoked: license.revoked,
    tokenId: license.status === "confirmed" ? license.tokenId : null,
    txHash: license.status === "confirmed" || license.status === "submitted" ? license.txHash : null,
    blockNumber: license.status === "confirmed" ? license.blockNumber : null,
    error: license.status === "failed" ? { code: license.errorCode, message: license.errorMessage } : null,
    createdAt: license.createdAt,
    updatedAt: license.updatedAt,
  };
}

export function outboxPayload(
  eventId: string,
  type: LicenseEventType,
  origin: string,
  license: LicenseRecord,
  contract: string | undefined,
  occurredAt = Date.now(),
): OutboxPayload {
  return {
    schemaVersion: EVENT_SCHEMA_VERSION,
    eventId,
    type,
    occurredAt: new Date(occurredAt).toISOString(),
    origin,
    licenseId: license.id,
    license: snapshot(license, contract),
  };
}

const hex = (bytes: number): z.ZodString => z.string().regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`));

const snapshotSchema = z.object({
  id: z.string().uuid(),
  clientId: z.string().min(1),
  productId: z.number().int().positive(),
  licensee: hex(20),
  seats: z.number().int().positive(),
  expiresAt: z.number().int().min(0),
  requestRef: hex(32),
  termsHash: hex(32),
  chainId: z.number().int().positive(),
  contract: hex(20).nullable(),
  policy: z.string(),
  reason: z.string(),
  candidates: z.array(z.number().int().positive()),
  status: z.enum(["accepted", "submitted", "confirmed", "failed"]),
  revoked: z.boolean(),
  tokenId: z.string().regex(/^\d+$/).nullable(),
  txHash: hex(32).nullable(),
  blockNumber: z.number().int().min(0).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

const eventSchema = z.object({
  schemaVersion: z.literal(EVENT_SCHEMA_VERSION),
  eventId: z.string().min(1).max(100),
  type: z.enum(EVENT_TYPES),
  occurredAt: z.string().datetime(),
  origin: z.string().min(1),
  licenseId: z.string().uuid(),
  sequence: z.number().int().positive(),
  license: snapshotSchema,
});

/** A Kafka record that is not a valid license event (`EVENT_INVALID`): the replica skips it. */
export class EventParseError extends AppError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("EVENT_INVALID", message, options);
  }
}

/** Parses and checks a Kafka record value; throws {@link EventParseError}. */
export function parseEvent(value: Buffer | string | null): LicenseEvent {
  if (value === null) throw new EventParseError("empty record value");
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString());
  } catch (error) {
    throw new EventParseError("record value is not JSON", { cause: error });
  }
  const result = eventSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new EventParseError(`invalid event: ${issue.path.join(".")}: ${issue.message}`);
  }
  if (result.data.license.id !== result.data.licenseId)
    throw new EventParseError("licenseId differs from license.id");
  return result.data as LicenseEvent;
}

/** Last writer wins per license: by `sequence` of the same origin, else by `occurredAt`, then origin. */
export function isNewer(
  incoming: { origin: string; sequence: number; occurredAt: number },
  stored: { origin: string; sequence: number; occurredAt: number } | undefined,
): boolean {
  if (!stored) return true;
  if (incoming.origin === stored.origin) return incoming.sequence > stored.sequence;
  if (incoming.occurredAt !== stored.occurredAt) return incoming.occurredAt > stored.occurredAt;
  return incoming.origin > stored.origin;
}
