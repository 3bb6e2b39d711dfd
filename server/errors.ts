/**
 * The one catalogue of error codes of the licensing service, and the error class every layer throws.
 * HTTP handlers map an {@link AppError} to `{ code, message, field? }` with its `httpStatus`; anything
 * else becomes `INTERNAL` (500) without details.
 */

export interface ErrorSpec {
  httpStatus: number;
  retriable: boolean;
  description: string;
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
  IDEMPOTENCY_CONFLICT: {
    httpStatus: 409,
    retriable: false,
    description: "The Idempotency-Key was already used with a different request body.",
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
  CONFIG_INVALID: {
    httpStatus: 500,
    retriable: false,
    description: "The server configuration is invalid (start-up only).",
  },
  INTERNAL: {
    httpStatus: 500,
    retriable: true,
    description: "An unexpected error; details are only in the server log.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly retriable: boolean;
  readonly field?: string;

  constructor(code: ErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.httpStatus = ERROR_CATALOGUE[code].httpStatus;
    this.retriable = ERROR_CATALOGUE[code].retriable;
    if (options.field !== undefined) this.field = options.field;
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
