/**
 * The licensing domain's types, shared by the store, the service, the chain workers and the events
 * (types plus the event type list); it imports only the error type, so it is in no import cycle.
 */
import type { AppError } from "./errors.js";

export type LicenseStatus = "accepted" | "submitted" | "confirmed" | "failed";

export interface LicenseBase {
  id: string;
  clientId: string;
  productId: number;
  licensee: string;
  /** Unix seconds; 0 = perpetual. */
  expiresAt: number;
  seats: number;
  /** bytes32 hex: the on-chain request reference (contract's `tokenOfRequest`). */
  requestRef: string;
  termsHash: string;
  chainId: number;
  policy: string;
  reason: string;
  /** Eligible chains at selection time, in order of preference (failover order). */
  candidates: number[];
  createdAt: number;
  updatedAt: number;
  revoked: boolean;
}

/** The lifecycle as a union on `status`: fields exist exactly in the states that have them. */
export type LicenseRecord =
  | (LicenseBase & { status: "accepted" })
  | (LicenseBase & { status: "submitted"; batchId: string; txHash: string })
  | (LicenseBase & {
      status: "confirmed";
      batchId: string;
      txHash: string;
      tokenId: string;
      blockNumber: number;
    })
  | (LicenseBase & { status: "failed"; errorCode: string; errorMessage: string });

export type NewLicense = Omit<LicenseBase, "createdAt" | "updatedAt" | "revoked">;

export interface NewLicenseItem {
  license: NewLicense;
  idempotency?: { key: string; bodyHash: string };
}

export type InsertResult =
  { created: true; license: LicenseRecord } | { created: false; license: LicenseRecord; sameBody: boolean };

export interface ListFilter {
  clientId?: string;
  licensee?: string;
  productId?: number;
  status?: LicenseStatus;
  chainId?: number;
  /** Return rows after this cursor (exclusive): later ones, or earlier ones with `newestFirst`. */
  after?: number;
  /** Newest first (the dashboard's recent licenses); oldest first by default. */
  newestFirst?: boolean;
  limit: number;
}

export interface Product {
  id: number;
  name: string;
  defaultDurationSeconds: number;
  chains?: number[];
}

/** A signed batch transaction in the transaction outbox (written before it is broadcast). */
export interface BatchRecord {
  id: string;
  chainId: number;
  nonce: number;
  /** The latest signed transaction of the batch and its hash. */
  txHash: string;
  rawTx: string;
  /** Every hash sent for the batch's nonce (the original and its fee bumps); any of them may be mined. */
  txHashes: string[];
  status: "sent" | "done" | "dropped";
  createdAt: number;
  licenseIds: string[];
}

export interface IssuedToken {
  tokenId: string;
  txHash: string;
  blockNumber: number;
}

export const EVENT_SCHEMA_VERSION = 1;

export const EVENT_TYPES = ["requested", "reassigned", "issued", "renewed", "revoked", "failed"] as const;
export type LicenseEventType = (typeof EVENT_TYPES)[number];

/** The whole license as an event carries it (after the change). */
export interface LicenseSnapshot {
  id: string;
  clientId: string;
  productId: number;
  licensee: string;
  seats: number;
  /** Unix seconds; 0 = perpetual. */
  expiresAt: number;
  requestRef: string;
  termsHash: string;
  chainId: number;
  /** The license contract on `chainId` (null when the origin did not know it). */
  contract: string | null;
  policy: string;
  reason: string;
  candidates: number[];
  status: LicenseStatus;
  revoked: boolean;
  tokenId: string | null;
  txHash: string | null;
  blockNumber: number | null;
  error: { code: string; message: string } | null;
  /** Epoch milliseconds. */
  createdAt: number;
  updatedAt: number;
}

/** The event as the outbox stores it (the publisher adds `sequence`, the outbox row number). */
export interface OutboxPayload {
  schemaVersion: typeof EVENT_SCHEMA_VERSION;
  eventId: string;
  type: LicenseEventType;
  /** ISO-8601 time of the state change. */
  occurredAt: string;
  /** Datacenter of the service that made the change. */
  origin: string;
  licenseId: string;
  license: LicenseSnapshot;
}

/** The Kafka record value. */
export interface LicenseEvent extends OutboxPayload {
  /** Position in the origin's outbox: increases with every committed change (per license order). */
  sequence: number;
}

/** An outbox row: a lifecycle event committed with its state change, not yet acknowledged by Kafka. */
export interface OutboxEvent {
  seq: number;
  licenseId: string;
  event: LicenseEvent;
}

/** What a replica did with a replicated event. */
export type ApplyResult = "applied" | "duplicate" | "stale";

/** An API client (its key's id and scopes). */
export interface Client {
  id: string;
  scopes: readonly string[];
}

/** An issue request as the API takes it. */
export interface IssueInput {
  productId: number;
  licensee: string;
  durationSeconds?: number;
  seats?: number;
  /** Chain ids the client asks for, in order of preference. */
  chains?: number[];
}

/** One item's outcome in a bulk accept: its license (new or replayed) or its own error. */
export type BulkItemResult = { license: LicenseRecord; created: boolean } | { error: AppError };
