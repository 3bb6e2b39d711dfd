/**
 * The request shapes of the REST API (zod) and the one parser that turns a failed check into
 * `VALIDATION_FAILED` naming the field (`items.1.licensee` inside a bulk request).
 */
import { isAddress, ZeroAddress } from "ethers";
import { z } from "zod";
import { AppError } from "./errors.js";
import { isHexAddress } from "./keccak.js";

export const MAX_DURATION = 100 * 365 * 24 * 3600;

export const chainRef = z.union([z.number().int().positive(), z.string().min(1).max(63)]);
export const issueBody = z
  .object({
    productId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    licensee: z
      .string()
      .refine(
        (v) => isHexAddress(v, isAddress),
        "must be an EVM address (0x + 40 hex, valid checksum if mixed case)",
      )
      .refine((v) => v.toLowerCase() !== ZeroAddress, "must not be the zero address"),
    durationSeconds: z.number().int().min(1).max(MAX_DURATION).optional(),
    seats: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32 - 1)
      .optional(),
    chain: z.union([chainRef, z.array(chainRef).min(1).max(16)]).optional(),
  })
  .strict();

/** One item of `POST /v1/licenses/batch`: the single request's body plus its own idempotency key. */
export const bulkItem = issueBody.extend({ idempotencyKey: z.string().optional() }).strict();

export const listQuery = z
  .object({
    licensee: z
      .string()
      .refine((v) => isAddress(v), "must be an EVM address")
      .optional(),
    productId: z.coerce.number().int().positive().optional(),
    status: z.enum(["accepted", "submitted", "confirmed", "failed"]).optional(),
    chainId: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    /** `desc`: newest first (the cursor then pages to older licenses). */
    order: z.enum(["asc", "desc"]).default("asc"),
    cursor: z
      .string()
      .regex(/^\d{1,15}$/, "must be a cursor returned by a previous page")
      .optional(),
  })
  .strict();

export const renewBody = z.object({ durationSeconds: z.number().int().min(1).max(MAX_DURATION) }).strict();
export const revokeBody = z.object({ reason: z.string().max(31).optional() }).strict();
export const productBody = z
  .object({
    id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    name: z.string().min(1).max(200),
    defaultDurationSeconds: z.number().int().min(0).max(MAX_DURATION).default(0),
    chains: z.array(z.number().int().positive()).min(1).max(64).optional(),
  })
  .strict();
export const idParam = z.string().uuid("must be a license id (UUID)");
export const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,200}$/, "1-200 visible ASCII characters");

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
