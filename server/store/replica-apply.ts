/**
 * A replica's apply: each replicated event is applied once (by event id), and per license only a newer
 * change wins (last writer wins, see `isNewer`): the event's snapshot replaces the license row.
 */
import type { ApplyResult, LicenseEvent } from "../domain.js";
import { isNewer } from "../events.js";
import type { SqliteDb } from "./sqlite.js";
import type { ReplicaStore } from "./types.js";

export class SqliteReplicaApply implements ReplicaStore {
  constructor(private readonly db: SqliteDb) {}

  appliedEventCount(): number {
    const row = this.db.prepare("SELECT count(*) AS n FROM applied_events").get() as
      { n: number } | undefined;
    return Number(row?.n ?? 0);
  }

  applyEvent(event: LicenseEvent): ApplyResult {
    return this.db.tx(() => {
      const seen = this.db.prepare("SELECT 1 FROM applied_events WHERE event_id = ?").get(event.eventId);
      if (seen) return "duplicate" as const;
      this.db
        .prepare("INSERT INTO applied_events (event_id, license_id, applied_at) VALUES (?, ?, ?)")
        .run(event.eventId, event.licenseId, Date.now());
      const stored = this.db
        .prepare("SELECT origin, sequence, occurred_at FROM replica_versions WHERE license_id = ?")
        .get(event.licenseId) as { origin: string; sequence: number; occurred_at: number } | undefined;
      const incoming = {
        origin: event.origin,
        sequence: event.sequence,
        occurredAt: Date.parse(event.occurredAt),
      };
      const current = stored
        ? { origin: stored.origin, sequence: Number(stored.sequence), occurredAt: Number(stored.occurred_at) }
        : undefined;
      if (!isNewer(incoming, current)) return "stale" as const;
      const l = event.license;
      this.db
        .prepare(
          `INSERT INTO licenses (id, client_id, product_id, licensee, expires_at, seats, request_ref, terms_hash,
             chain_id, policy, reason, candidates, status, batch_id, tx_hash, token_id, block_number, error_code,
             error_message, revoked, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, product_id = excluded.product_id,
             licensee = excluded.licensee, expires_at = excluded.expires_at, seats = excluded.seats,
             terms_hash = excluded.terms_hash, chain_id = excluded.chain_id, policy = excluded.policy,
             reason = excluded.reason, candidates = excluded.candidates, status = excluded.status,
             tx_hash = excluded.tx_hash, token_id = excluded.token_id, block_number = excluded.block_number,
             error_code = excluded.error_code, error_message = excluded.error_message,
             revoked = excluded.revoked, updated_at = excluded.updated_at`,
        )
        .run(
          l.id,
          l.clientId,
          l.productId,
          l.licensee,
          l.expiresAt,
          l.seats,
          l.requestRef,
          l.termsHash,
          l.chainId,
          l.policy,
          l.reason,
          JSON.stringify(l.candidates),
          l.status,
          l.txHash,
          l.tokenId,
          l.blockNumber,
          l.error?.code ?? null,
          l.error?.message ?? null,
          l.revoked ? 1 : 0,
          l.createdAt,
          l.updatedAt,
        );
      this.db
        .prepare(
          `INSERT INTO replica_versions (license_id, origin, sequence, occurred_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (license_id) DO UPDATE SET origin = excluded.origin, sequence = excluded.sequence,
             occurred_at = excluded.occurred_at`,
        )
        .run(event.licenseId, incoming.origin, incoming.sequence, incoming.occurredAt);
      return "applied" as const;
    });
  }
}
