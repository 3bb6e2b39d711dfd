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

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  take(key: string, now = Date.now(), cost = 1): { allowed: boolean; retryAfterSeconds: number } {
    const result = takeToken(this.buckets.get(key), now, this.perSecond, this.burst, cost);
    this.buckets.set(key, result.bucket);
    return result;
  }
}
