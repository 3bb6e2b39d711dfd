/** SQLite rows ↔ domain records. */
import type { LicenseBase, LicenseRecord, LicenseStatus, Product } from "../domain.js";
import type { SqliteDb } from "./sqlite.js";

export function toLicense(row: Record<string, unknown>): LicenseRecord {
  const base: LicenseBase = {
    id: row.id as string,
    clientId: row.client_id as string,
    productId: Number(row.product_id),
    licensee: row.licensee as string,
    expiresAt: Number(row.expires_at),
    seats: Number(row.seats),
    requestRef: row.request_ref as string,
    termsHash: row.terms_hash as string,
    chainId: Number(row.chain_id),
    policy: row.policy as string,
    reason: row.reason as string,
    candidates: JSON.parse(row.candidates as string) as number[],
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    revoked: Number(row.revoked) === 1,
  };
  switch (row.status as LicenseStatus) {
    case "accepted":
      return { ...base, status: "accepted" };
    case "submitted":
      return { ...base, status: "submitted", batchId: row.batch_id as string, txHash: row.tx_hash as string };
    case "confirmed":
      return {
        ...base,
        status: "confirmed",
        batchId: row.batch_id as string,
        txHash: row.tx_hash as string,
        tokenId: row.token_id as string,
        blockNumber: Number(row.block_number),
      };
    case "failed":
      return {
        ...base,
        status: "failed",
        errorCode: row.error_code as string,
        errorMessage: row.error_message as string,
      };
  }
}

export function toProduct(row: Record<string, unknown>): Product {
  const chains = row.chains as string | null;
  return {
    id: Number(row.id),
    name: row.name as string,
    defaultDurationSeconds: Number(row.default_duration),
    ...(chains ? { chains: JSON.parse(chains) as number[] } : {}),
  };
}

export function readLicense(db: SqliteDb, id: string): LicenseRecord | undefined {
  const row = db.prepare("SELECT * FROM licenses WHERE id = ?").get(id);
  return row ? toLicense(row) : undefined;
}
