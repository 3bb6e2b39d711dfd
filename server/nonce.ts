import { errorFields } from "../common/log.js";
import { AppError } from "./errors.js";

/**
 * Nonce manager for one signer on one chain. Nonces are allocated locally (no RPC per send), so two
 * sends never get the same nonce; a nonce is only given up when its transaction is known not to have
 * reached the node, and the counter is resynced from the chain's pending count on "nonce too low".
 */
export class NonceManager {
  private next: number | undefined;

  constructor(private readonly fetchPending: () => Promise<number>) {}

  /** The nonce for the next transaction (loads it from the chain the first time or after a resync). */
  async peek(): Promise<number> {
    this.next ??= await this.fetchPending();
    return this.next;
  }

  /** The transaction with `nonce` reached the node: the next one gets `nonce + 1`. */
  commit(nonce: number): void {
    if (this.next === undefined) return; // resynced meanwhile: the chain's count is authoritative
    if (this.next !== nonce)
      throw new AppError("NONCE_CONFLICT", `nonce ${nonce} committed out of order (expected ${this.next})`);
    this.next = nonce + 1;
  }

  /** Forget the local counter; the next peek asks the chain. */
  resync(): void {
    this.next = undefined;
  }
}

/** True when the node says the nonce was already used (ethers code or the node's message). */
export function isNonceError(error: unknown): boolean {
  return matchesError(
    error,
    /nonce too low|nonce has already been used|NONCE_EXPIRED|already known|replacement transaction underpriced/i,
  );
}

/** True when the request certainly did not reach the node (connection refused / reset before send). */
export function isConnectionError(error: unknown): boolean {
  return matchesError(error, /ECONNREFUSED|ECONNRESET|fetch failed|socket hang up|EHOSTUNREACH|ENOTFOUND/i);
}

/**
 * True when the message or code of the error or of one of its causes (at most five deep) matches: a
 * node's words may sit in the cause of a provider's error (e.g. `fetch failed` ← `ECONNREFUSED`).
 */
export function matchesError(error: unknown, pattern: RegExp): boolean {
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const { message, code } = errorFields(current);
    if (pattern.test(message) || (typeof code === "string" && pattern.test(code))) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}
