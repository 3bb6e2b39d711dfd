/**
 * The one catalogue of error codes of the licensing service, and the error class every layer throws.
 * HTTP handlers map an {@link AppError} to `{ code, message, field? }` with its `httpStatus`; anything
 * else becomes `INTERNAL` (500) without details.
 */

import {
  PlatformError,
  type ErrorSpec as PlatformErrorSpec,
  type PlatformErrorOptions,
} from "../common/errors.js";

/** A code of the catalogue: the platform's `retriable` and `description`, plus the HTTP status. */
export interface ErrorSpec extends PlatformErrorSpec {
  httpStatus: number;
}

export const ERROR_CATALOGUE = {
  VALIDATION_FAILED: {
    httpStatus: 400,
    retriable: false,
    description: "A body field, query parameter or header is invalid; `field` names it.",
  },
  INVALID_JSON: { httpStatus: 400, retriable: false, description: "The request body is not valid JSON." },
  UNAUTHENTICATED: {
    httpStatus: 401,
    retriable: false,
    description: "No API key, or an unknown one (header `Authorization: Bearer <key>` or `X-API-Key`).",
  },
  FORBIDDEN: {
    httpStatus: 403,
    retriable: false,
    description: "The API key is valid but lacks the scope, or the license belongs to another client.",
  },
  NOT_FOUND: { httpStatus: 404, retriable: false, description: "No such license, product or route." },
  READ_ONLY_REPLICA: {
    httpStatus: 405,
    retriable: false,
    description:
      "This instance is a read-only replica; send writes to the primary of the license's datacenter.",
  },
  METHOD_NOT_ALLOWED: {
    httpStatus: 405,
    retriable: false,
    description: "The path exists but not with this method; `Allow` lists its methods.",
  },
  IDEMPOTENCY_CONFLICT: {
    httpStatus: 409,
    retriable: false,
    description:
      "The Idempotency-Key was already used with a different request body (or another route or license).",
  },
  IDEMPOTENCY_IN_PROGRESS: {
    httpStatus: 409,
    retriable: true,
    description:
      "The renew or revoke under this Idempotency-Key is still being processed (its transaction is pending); retry later.",
  },
  INVALID_STATE: {
    httpStatus: 409,
    retriable: false,
    description:
      "The license is not in a state that allows the operation (e.g. not yet confirmed, revoked, perpetual).",
  },
  PRODUCT_EXISTS: {
    httpStatus: 409,
    retriable: false,
    description: "A product with this id already exists.",
  },
  PAYLOAD_TOO_LARGE: {
    httpStatus: 413,
    retriable: false,
    description: "The request body exceeds the size limit.",
  },
  UNSUPPORTED_MEDIA_TYPE: {
    httpStatus: 415,
    retriable: false,
    description: "The request body is not `application/json`.",
  },
  HEADERS_TOO_LARGE: {
    httpStatus: 431,
    retriable: false,
    description: "The request's headers exceed the server's limit (16 KiB).",
  },
  RATE_LIMITED: {
    httpStatus: 429,
    retriable: true,
    description: "Too many requests for this API key; retry after `Retry-After` seconds.",
  },
  NO_CHAIN_AVAILABLE: {
    httpStatus: 503,
    retriable: true,
    description: "No enabled, healthy chain is allowed for this request.",
  },
  CHAIN_UNAVAILABLE: {
    httpStatus: 503,
    retriable: true,
    description: "The chain of this license cannot be reached right now.",
  },
  CHAIN_TX_FAILED: {
    httpStatus: 502,
    retriable: true,
    description: "The chain rejected or reverted the transaction.",
  },
  CHAIN_RPC_FAILED: {
    httpStatus: 502,
    retriable: true,
    description: "A chain node answered a JSON-RPC call with an error, an unreadable answer or not in time.",
  },
  RECEIPT_TIMEOUT: {
    httpStatus: 504,
    retriable: true,
    description: "A sent transaction had no receipt in time; its outbox entry is settled against the chain.",
  },
  NONCE_CONFLICT: {
    httpStatus: 500,
    retriable: true,
    description: "A nonce was committed out of order; the signer's nonce is reloaded from the chain.",
  },
  STORE_CONFLICT: {
    httpStatus: 500,
    retriable: true,
    description: "A store write found its rows in another state than expected; nothing was written.",
  },
  EVENT_INVALID: {
    httpStatus: 500,
    retriable: false,
    description: "A replicated Kafka record is not a valid license event; the replica skips it.",
  },
  CONFIG_INVALID: {
    httpStatus: 500,
    retriable: false,
    description: "The server configuration is invalid (start-up only).",
  },
  ARTIFACT_MISSING: {
    httpStatus: 500,
    retriable: false,
    description: "The compiled contract artifact is missing or has no ABI: run `npx hardhat build`.",
  },
  INTERNAL: {
    httpStatus: 500,
    retriable: true,
    description: "An unexpected error; details are only in the server log.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The error every layer of the licensing service throws: a catalogue code with its HTTP status. */
export class AppError extends PlatformError<ErrorCode> {
  readonly httpStatus: number;

  constructor(code: ErrorCode, message: string, options: PlatformErrorOptions = {}) {
    super(code, message, ERROR_CATALOGUE[code].retriable, options);
    this.httpStatus = ERROR_CATALOGUE[code].httpStatus;
  }

  toBody(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

/** The client-facing body of any thrown value: never a stack, never an internal message. */
export function errorBody(error: unknown): {
  status: number;
  body: { code: string; message: string; field?: string };
} {
  if (error instanceof AppError) return { status: error.httpStatus, body: error.toBody() };
  return { status: 500, body: { code: "INTERNAL", message: "internal error" } };
}
