/**
 * Ids and hashes of a license: its time-ordered id, its on-chain request reference, and the canonical
 * JSON that body hashes and terms hashes are taken over.
 */
import { createHash, randomFillSync } from "node:crypto";
import { keccakHex } from "./keccak.js";

const uuidPool = Buffer.alloc(16 * 256);
let uuidPoolAt = uuidPool.length;

/**
 * A time-ordered UUID (RFC 9562 version 7: 48-bit Unix milliseconds, then random bits) for license ids:
 * consecutive licenses land next to each other in the id index, so a group commit of many accepts
 * writes a few index pages instead of one random page per license (random v4 ids did).
 */
export function uuidV7(now: number = Date.now()): string {
  if (uuidPoolAt + 16 > uuidPool.length) {
    // random bytes fetched 256 ids at a time (one call per id cost more than the rest of the id)
    randomFillSync(uuidPool);
    uuidPoolAt = 0;
  }
  const bytes = Buffer.from(uuidPool.subarray(uuidPoolAt, uuidPoolAt + 16));
  uuidPoolAt += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The on-chain request reference of a license: keccak256 of the UTF-8 bytes of `license:<id>`. */
export function requestRefOf(id: string): string {
  return keccakHex(Buffer.from(`license:${id}`, "utf8"));
}

/** JSON with sorted keys (stable body hashes). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256 (hex) of the canonical JSON: what an idempotency key's request is compared by. */
export function bodyHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}
