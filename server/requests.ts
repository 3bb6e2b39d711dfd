/**
 * The request shapes of the REST API (zod) and the one parser that turns a failed check into
 * `VALIDATION_FAILED` naming the field (`items.1.licensee` inside a bulk request). The routes validate
 * with these schemas and `openapi.ts` generates the OpenAPI document from them (one source of truth).
 */
import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { AppError } from "./errors.js";
import { isHexAddress } from "./keccak.js";

// `.openapi(...)` metadata on the schemas below (before any of them is built)
extendZodWithOpenApi(z);

export const MAX_DURATION = 100 * 365 * 24 * 3600;

const ZERO_ADDRESS = `0x${"0".repeat(40)}`;
// JSON Schema cannot express the EIP-55 checksum: the document's pattern is all lower or all upper case
// hex, and the description says mixed case is accepted with a valid checksum (never more than the service takes)
const addressDoc = (pattern: string, extra = ""): { pattern: string; description: string } => ({
  pattern,
  description: `0x + 40 hex digits, all lower or all upper case (mixed case: a valid EIP-55 checksum)${extra}`,
});
/** An EVM address as 0x-prefixed hex (lower, upper, or mixed case with a valid EIP-55 checksum). */
export const evmAddress = z
  .string()
  .refine(
    (v) => isHexAddress(v, () => false),
    "must be an EVM address (0x + 40 hex, valid checksum if mixed case)",
  )
  .openapi(addressDoc("^0x(?:[0-9a-f]{40}|[0-9A-F]{40})$"));
/** A licensee: an EVM address other than the zero address (a token cannot be minted to it). */
export const licenseeAddress = evmAddress
  .refine((v) => v.toLowerCase() !== ZERO_ADDRESS, "must not be the zero address")
  .openapi(addressDoc("^0x(?!0{40}$)(?:[0-9a-f]{40}|[0-9A-F]{40})$", "; not the zero address"));

export const chainRef = z.union([z.number().int().positive(), z.string().min(1).max(63)]);
// the fields of an issue request, shared by the single and the bulk body (a plain object, not `.extend`,
// so the bulk item is documented as one closed object rather than an `allOf` no value can satisfy)
const issueFields = {
  productId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  licensee: licenseeAddress,
  durationSeconds: z.number().int().min(1).max(MAX_DURATION).optional(),
  seats: z
    .number()
    .int()
    .min(1)
    .max(2 ** 32 - 1)
    .optional(),
  chain: z
    .union([chainRef, z.array(chainRef).min(1).max(16)])
    .optional()
    .openapi({ description: "chain id or name, or a list of them in order of preference" }),
};
export const issueBody = z.object(issueFields).strict().openapi("IssueRequest");

export const idempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,200}$/, "1-200 visible ASCII characters")
  .openapi({ description: "1-200 visible ASCII characters; a retry with the same key and body replays" });

/** One item of `POST /v1/licenses/batch`: the single request's body plus its own idempotency key. */
export const bulkItem = z
  .object({ ...issueFields, idempotencyKey: idempotencyKey.optional() })
  .strict()
  .openapi("BulkIssueItem");

const itemsOf = <T extends z.ZodTypeAny>(item: T, maxItems: number) =>
  z.array(item).min(1).max(maxItems, `at most ${maxItems} items per request`);
/** The body of `POST /v1/licenses/batch` (at most `maxItems` items, `server.bulk.maxItems`), as documented. */
export const bulkBody = (maxItems: number) =>
  z
    .object({ items: itemsOf(bulkItem, maxItems) })
    .strict()
    .openapi("BulkIssueRequest");
/** The same body's envelope: the route checks the items one by one, to name `items.<i>.<field>`. */
export const bulkEnvelope = (maxItems: number) =>
  z.object({ items: itemsOf(z.unknown(), maxItems) }).strict();

/** `POST /v1/licenses` query: `?wait=true|false|<ms>` waits for confirmation (201). */
export const issueQuery = z.object({
  wait: z
    .string()
    .regex(/^(?:true|false|\d{1,15})$/, "true, false or milliseconds")
    .optional()
    .openapi({ description: "`true` (the longest wait), `false`, or milliseconds: wait for confirmation" }),
});
/** `POST /v1/licenses` headers. */
export const issueHeaders = z.object({
  "Idempotency-Key": idempotencyKey.optional(),
  Prefer: z
    .string()
    .optional()
    .openapi({ description: "`wait=<seconds>` (RFC 7240): wait for confirmation like `?wait`" }),
});

/** `POST /v1/licenses/{id}/renew` and `/revoke` headers: one on-chain action per key. */
export const actionHeaders = z.object({
  "Idempotency-Key": idempotencyKey.optional().openapi({
    description:
      "1-200 visible ASCII characters: the same key, license and body again → the same answer " +
      "(`Idempotent-Replayed: true`), no second on-chain action; another body or license → 409. " +
      "Without it every call acts (a retried renew extends twice)",
  }),
});

/**
 * An integer query parameter: only decimal digits are a number (no `0x10`, `1e1` or blanks, which
 * `z.coerce` would take); anything else stays a string and fails as one. Documented as an integer.
 */
const queryInt = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => (typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : v), schema);

export const listQuery = z
  .object({
    licensee: evmAddress.optional(),
    productId: queryInt(z.number().int().positive().optional()),
    status: z.enum(["accepted", "submitted", "confirmed", "failed"]).optional(),
    chainId: queryInt(z.number().int().positive().optional()),
    limit: queryInt(z.number().int().min(1).max(200).default(50)),
    /** `desc`: newest first (the cursor then pages to older licenses). */
    order: z.enum(["asc", "desc"]).default("asc"),
    cursor: z
      .string()
      .regex(/^\d{1,15}$/, "must be a cursor returned by a previous page")
      .optional(),
  })
  .strict();

export const renewBody = z
  .object({ durationSeconds: z.number().int().min(1).max(MAX_DURATION) })
  .strict()
  .openapi("RenewRequest");
export const revokeBody = z
  .object({ reason: z.string().max(31).optional() })
  .strict()
  .openapi("RevokeRequest");
export const productBody = z
  .object({
    id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    name: z.string().min(1).max(200),
    defaultDurationSeconds: z.number().int().min(0).max(MAX_DURATION).default(0),
    chains: z.array(z.number().int().positive()).min(1).max(64).optional(),
  })
  .strict()
  .openapi("ProductRequest");
export const idParam = z.string().uuid("must be a license id (UUID)");
/** The `{id}` path parameter of the license routes. */
export const idParams = z.object({ id: idParam });

export function parse<T extends z.ZodTypeAny>(schema: T, value: unknown, prefix = ""): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.infer<T>;
  const issue = result.error.issues[0]!;
  const field =
    issue.code === "unrecognized_keys"
      ? issue.keys.join(",")
      : issue.path.map(String).join(".") || prefix.replace(/\.$/, "");
  const name = prefix && field !== prefix.replace(/\.$/, "") ? `${prefix}${field}` : field || "(body)";
  throw new AppError("VALIDATION_FAILED", `${name}: ${issue.message}`, { field: name });
}
