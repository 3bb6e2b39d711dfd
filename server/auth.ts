/** API keys (stored as SHA-256 hashes) with scopes, and a token-bucket rate limit per key. */
import { timingSafeEqual } from "node:crypto";
import type { ApiKeyConfig, Scope } from "./config.js";
import { sha256Hex } from "./config.js";

export interface Principal {
  id: string;
  scopes: readonly Scope[];
}

export class ApiKeys {
  private readonly byHash: Map<string, ApiKeyConfig>;

  constructor(keys: readonly ApiKeyConfig[]) {
    this.byHash = new Map(keys.map((k) => [k.sha256, k]));
  }

  /** The principal of a presented key, or undefined. */
  authenticate(presented: string): Principal | undefined {
    const hash = sha256Hex(presented);
    const key = this.byHash.get(hash);
    if (!key || !timingSafeEqual(Buffer.from(key.sha256), Buffer.from(hash))) return undefined;
    return { id: key.id, scopes: key.scopes };
  }
}

/**
 * Whether `principal` may use an operation that needs `scope`: admin may do everything, and
 * `platform:read` (the dashboard's key) includes `licenses:read`.
 */
export function allows(principal: Principal, scope: Scope): boolean {
  if (principal.scopes.includes("admin") || principal.scopes.includes(scope)) return true;
  return scope === "licenses:read" && principal.scopes.includes("platform:read");
}

/** Whether `principal` sees every client's licenses (admin, platform:read), not only its own. */
export function seesAllClients(principal: { scopes: readonly string[] }): boolean {
  return principal.scopes.includes("admin") || principal.scopes.includes("platform:read");
}

export interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Pure token bucket step: whether a request at `now` passes, the new bucket, and the wait if not. */
export function takeToken(
  bucket: Bucket | undefined,
  now: number,
  perSecond: number,
  burst: number,
  /** Tokens this request costs (a bulk request: one per item). */
  cost = 1,
): { allowed: boolean; bucket: Bucket; retryAfterSeconds: number } {
  const current = bucket ?? { tokens: burst, updatedAt: now };
  const tokens = Math.min(burst, current.tokens + ((now - current.updatedAt) / 1000) * perSecond);
  if (tokens >= cost)
    return { allowed: true, bucket: { tokens: tokens - cost, updatedAt: now }, retryAfterSeconds: 0 };
  return {
    allowed: false,
    bucket: { tokens, updatedAt: now },
    retryAfterSeconds: Math.max(1, Math.ceil((cost - tokens) / perSecond)),
  };
}

/** One rate-limit decision, with what the `RateLimit` headers report. */
export interface RateLimitResult {
  allowed: boolean;
  retryAfterSeconds: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** The quota as `RateLimit-Policy` states it: `burst` tokens, refilled in `windowSeconds`. */
  get policy(): { burst: number; windowSeconds: number } {
    return { burst: this.burst, windowSeconds: Math.max(1, Math.ceil(this.burst / this.perSecond)) };
  }

  take(key: string, now = Date.now(), cost = 1): RateLimitResult {
    const result = takeToken(this.buckets.get(key), now, this.perSecond, this.burst, cost);
    this.buckets.set(key, result.bucket);
    const tokens = result.bucket.tokens;
    return {
      allowed: result.allowed,
      retryAfterSeconds: result.retryAfterSeconds,
      remaining: Math.max(0, Math.floor(tokens)),
      resetSeconds: Math.max(0, Math.ceil((this.burst - tokens) / this.perSecond)),
    };
  }
}

/**
 * The rate-limit headers of draft-ietf-httpapi-ratelimit-headers-10 (structured fields, one policy
 * named "default"): `RateLimit-Policy: "default";q=<burst>;w=<seconds>` and
 * `RateLimit: "default";r=<remaining>;t=<seconds until full>`.
 */
export function rateLimitHeaders(limiter: RateLimiter, result: RateLimitResult): Record<string, string> {
  const { burst, windowSeconds } = limiter.policy;
  return {
    "RateLimit-Policy": `"default";q=${burst};w=${windowSeconds}`,
    RateLimit: `"default";r=${result.remaining};t=${result.resetSeconds}`,
  };
}
