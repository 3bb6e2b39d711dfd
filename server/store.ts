/**
 * Persistence behind the {@link Store} interface (see `store/types.ts`, one part per aggregate). The
 * embedded implementation uses `node:sqlite` (WAL), so a crashed process loses nothing it reported:
 * `SqliteStore` is a facade over one SQLite connection and the aggregates in `store/`.
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
} from "./domain.js";
import { SqliteActions } from "./store/actions.js";
import { SqliteEventOutbox } from "./store/event-outbox.js";
import { SqliteLicenses } from "./store/licenses.js";
import { SqliteProducts } from "./store/products.js";
import { SqliteReplicaApply } from "./store/replica-apply.js";
import { SqliteDb } from "./store/sqlite.js";
import { SqliteTxOutbox } from "./store/tx-outbox.js";
import type { ActionClaim, ActionRecord, SignedAction, Store, StoreOptions } from "./store/types.js";

export type {
  ApplyResult,
  BatchRecord,
  InsertResult,
  IssuedToken,
  LicenseRecord,
  LicenseStatus,
  ListFilter,
  NewLicense,
  NewLicenseItem,
  OutboxEvent,
  Product,
} from "./domain.js";
export type {
  ActionClaim,
  ActionRecord,
  ActionStore,
  SignedAction,
  EventOutboxStore,
  LicenseStore,
  ProductStore,
  ReplicaStore,
  Store,
  StoreOptions,
  TxOutboxStore,
} from "./store/types.js";

export class SqliteStore implements Store {
  private readonly db: SqliteDb;
  private readonly licenses: SqliteLicenses;
  private readonly productRows: SqliteProducts;
  private readonly batches: SqliteTxOutbox;
  private readonly events: SqliteEventOutbox;
  private readonly replica: SqliteReplicaApply;
  private readonly actions: SqliteActions;

  constructor(file: string, options: StoreOptions = {}) {
    this.db = new SqliteDb(file, () => options.events?.onCommitted?.());
    this.events = new SqliteEventOutbox(this.db, options.events);
    this.licenses = new SqliteLicenses(this.db, this.events);
    this.productRows = new SqliteProducts(this.db);
    this.batches = new SqliteTxOutbox(this.db, this.events);
    this.replica = new SqliteReplicaApply(this.db);
    this.actions = new SqliteActions(this.db, this.licenses, this.batches);
  }

  // licenses and idempotency keys
  insertLicense(license: NewLicense, idempotency?: { key: string; bodyHash: string }): InsertResult {
    return this.licenses.insertLicense(license, idempotency);
  }
  insertLicenses(items: readonly NewLicenseItem[]): (InsertResult | { error: unknown })[] {
    return this.licenses.insertLicenses(items);
  }
  getLicense(id: string): LicenseRecord | undefined {
    return this.licenses.getLicense(id);
  }
  findIdempotent(clientId: string, key: string): { bodyHash: string; license: LicenseRecord } | undefined {
    return this.licenses.findIdempotent(clientId, key);
  }
  listLicenses(filter: ListFilter): { items: LicenseRecord[]; next?: number } {
    return this.licenses.listLicenses(filter);
  }
  acceptedFor(chainId: number, max: number): LicenseRecord[] {
    return this.licenses.acceptedFor(chainId, max);
  }
  oldestAcceptedAt(chainId: number): number | undefined {
    return this.licenses.oldestAcceptedAt(chainId);
  }
  fail(ids: string[], errorCode: string, errorMessage: string): void {
    this.licenses.fail(ids, errorCode, errorMessage);
  }
  reassign(id: string, chainId: number, reason: string): boolean {
    return this.licenses.reassign(id, chainId, reason);
  }
  setRevoked(id: string): void {
    this.licenses.setRevoked(id);
  }
  setExpiry(id: string, expiresAt: number): void {
    this.licenses.setExpiry(id, expiresAt);
  }
  queueDepths(): Map<number, number> {
    return this.licenses.queueDepths();
  }
  confirmedCounts(): Map<number, number> {
    return this.licenses.confirmedCounts();
  }

  // products
  products(): Product[] {
    return this.productRows.products();
  }
  getProduct(id: number): Product | undefined {
    return this.productRows.getProduct(id);
  }
  addProduct(product: Product): boolean {
    return this.productRows.addProduct(product);
  }

  // transaction outbox
  createBatch(batch: Omit<BatchRecord, "status" | "createdAt" | "txHashes">): void {
    this.batches.createBatch(batch);
  }
  recordReplacement(batchId: string, txHash: string, rawTx: string): void {
    this.batches.recordReplacement(batchId, txHash, rawTx);
  }
  settleBatch(batchId: string, issued: Map<string, IssuedToken>, status: "done" | "dropped"): void {
    this.batches.settleBatch(batchId, issued, status);
  }
  openBatches(chainId: number): BatchRecord[] {
    return this.batches.openBatches(chainId);
  }

  // event outbox
  unpublishedEvents(limit: number): OutboxEvent[] {
    return this.events.unpublishedEvents(limit);
  }
  markPublished(seqs: number[]): void {
    this.events.markPublished(seqs);
  }
  eventBacklog(): number {
    return this.events.eventBacklog();
  }

  // replica
  applyEvent(event: LicenseEvent): ApplyResult {
    return this.replica.applyEvent(event);
  }
  appliedEventCount(): number {
    return this.replica.appliedEventCount();
  }

  // renew / revoke under an Idempotency-Key
  claimAction(claim: ActionClaim): { claimed: true } | { claimed: false; existing?: ActionRecord } {
    return this.actions.claimAction(claim);
  }
  getAction(clientId: string, key: string): ActionRecord | undefined {
    return this.actions.getAction(clientId, key);
  }
  actionSent(clientId: string, key: string, signed: SignedAction): void {
    this.actions.actionSent(clientId, key, signed);
  }
  completeAction(
    clientId: string,
    key: string,
    change: { expiresAt: number } | { revoked: true },
  ): LicenseRecord {
    return this.actions.completeAction(clientId, key, change);
  }
  resetAction(clientId: string, key: string): void {
    this.actions.resetAction(clientId, key);
  }
  releaseAction(clientId: string, key: string): void {
    this.actions.releaseAction(clientId, key);
  }

  close(): void {
    this.db.close();
  }
}
