/**
 * The store's interface, by aggregate. {@link Store} is all of them: the embedded SQLite store
 * implements it (one class per aggregate behind the `SqliteStore` facade), and another database can
 * implement the same parts.
 */
import type {
  ApplyResult,
  BatchRecord,
  InsertResult,
  IssuedToken,
  LicenseEvent,
  LicenseRecord,
  ListFilter,
  NewLicense,
  NewLicenseItem,
  OutboxEvent,
  Product,
} from "../domain.js";

export interface StoreOptions {
  /** Record lifecycle events in the outbox (same transaction as each change). */
  events?: {
    origin: string;
    contractOf(chainId: number): string | undefined;
    /** Called after a transaction that wrote events committed (the publisher sends them at once). */
    onCommitted?(): void;
  };
}

/** Licenses and their idempotency keys; every state change writes its event to the outbox. */
export interface LicenseStore {
  /** Inserts the license, or returns the one already stored under (clientId, idempotencyKey). */
  insertLicense(license: NewLicense, idempotency?: { key: string; bodyHash: string }): InsertResult;
  /**
   * Group commit: inserts every item as {@link insertLicense} would, in order, in ONE transaction (a
   * later item sees the keys of earlier ones). If that transaction fails, each item is retried in its
   * own transaction, so one bad item costs only itself: its slot holds the error instead of a result.
   */
  insertLicenses(items: readonly NewLicenseItem[]): (InsertResult | { error: unknown })[];
  getLicense(id: string): LicenseRecord | undefined;
  findIdempotent(clientId: string, key: string): { bodyHash: string; license: LicenseRecord } | undefined;
  listLicenses(filter: ListFilter): { items: LicenseRecord[]; next?: number };
  /** Up to `max` accepted licenses of the chain, oldest first. */
  acceptedFor(chainId: number, max: number): LicenseRecord[];
  oldestAcceptedAt(chainId: number): number | undefined;
  fail(ids: string[], errorCode: string, errorMessage: string): void;
  /** Moves an accepted license to another chain (failover before send). */
  reassign(id: string, chainId: number, reason: string): boolean;
  setRevoked(id: string): void;
  setExpiry(id: string, expiresAt: number): void;
  /** accepted + submitted per chain. */
  queueDepths(): Map<number, number>;
  confirmedCounts(): Map<number, number>;
}

export interface ProductStore {
  products(): Product[];
  getProduct(id: number): Product | undefined;
  addProduct(product: Product): boolean;
}

/** The outbox of signed batch transactions: written before the broadcast, settled from the chain. */
export interface TxOutboxStore {
  /** Records a signed batch and moves its licenses to `submitted` (one transaction). */
  createBatch(batch: Omit<BatchRecord, "status" | "createdAt" | "txHashes">): void;
  /** A fee-bumped replacement (same nonce) was signed: recorded before it is broadcast. */
  recordReplacement(batchId: string, txHash: string, rawTx: string): void;
  /**
   * Settles a batch: the licenses in `issued` → confirmed (token id, tx hash, block); every other
   * license of the batch → back to `accepted` (to be sent again); the batch → `status`.
   */
  settleBatch(batchId: string, issued: Map<string, IssuedToken>, status: "done" | "dropped"): void;
  openBatches(chainId: number): BatchRecord[];
}

/** The outbox of lifecycle events, read by the publisher. */
export interface EventOutboxStore {
  /** Unpublished events, oldest first. */
  unpublishedEvents(limit: number): OutboxEvent[];
  /** Marks events published (after the broker acknowledged them). */
  markPublished(seqs: number[]): void;
  /** Number of unpublished events. */
  eventBacklog(): number;
}

/** A replica's side: replicated events applied last-writer-wins. */
export interface ReplicaStore {
  /** Applies a replicated event (once per event id; a newer change per license wins). */
  applyEvent(event: LicenseEvent): ApplyResult;
  /** Number of distinct events applied so far. */
  appliedEventCount(): number;
}

/** A renew or revoke claimed under an Idempotency-Key (per API client). */
export interface ActionClaim {
  clientId: string;
  key: string;
  licenseId: string;
  action: "renew" | "revoke";
  /** Hash over action, license id and body: another one under the same key is a conflict. */
  bodyHash: string;
}

/** The state of a claimed action: `pending` (nothing broadcast), `sent` (its transaction is), `done`. */
export interface ActionRecord extends ActionClaim {
  status: "pending" | "sent" | "done";
  /** Its transaction in the outbox (status as the chain settled it). */
  batch?: { id: string; status: "sent" | "done" | "dropped"; txHashes: string[] };
  /** The license as answered when the action was done (a replay answers it again). */
  result?: LicenseRecord;
}

/** The action's signed transaction, written to the outbox before it is broadcast. */
export interface SignedAction {
  id: string;
  chainId: number;
  nonce: number;
  txHash: string;
  rawTx: string;
}

/** Idempotent renew / revoke (`Idempotency-Key`): claim, transaction sent, done or given up. */
export interface ActionStore {
  /**
   * Claims the key by insert (atomic: of concurrent claims one wins). Not claimed: the action stored
   * under it (none when the key belongs to an issue request).
   */
  claimAction(claim: ActionClaim): { claimed: true } | { claimed: false; existing?: ActionRecord };
  getAction(clientId: string, key: string): ActionRecord | undefined;
  /** Records the signed transaction in the outbox and the action as `sent` (one transaction). */
  actionSent(clientId: string, key: string, signed: SignedAction): void;
  /** Mined: the license changed (its event), the outbox entry settled, the result stored (one transaction). */
  completeAction(
    clientId: string,
    key: string,
    change: { expiresAt: number } | { revoked: true },
  ): LicenseRecord;
  /** Its transaction will never be mined: back to `pending`, to be sent again. */
  resetAction(clientId: string, key: string): void;
  /** Nothing happened on-chain: the key is free again (a retry starts afresh). */
  releaseAction(clientId: string, key: string): void;
}

export interface Store
  extends LicenseStore, ProductStore, TxOutboxStore, EventOutboxStore, ReplicaStore, ActionStore {
  close(): void;
}
