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
    if (this.next !== nonce) throw new Error(`nonce ${nonce} committed out of order (expected ${this.next})`);
    this.next = nonce + 1;
  }

  /** Forget the local counter; the next peek asks the chain. */
  resync(): void {
    this.next = undefined;
  }
}

/** True when the node says the nonce was already used (ethers code or the node's message). */
export function isNonceError(error: unknown): boolean {
  const text = errorText(error);
  return /nonce too low|nonce has already been used|NONCE_EXPIRED|already known|replacement transaction underpriced/i.test(
    text,
  );
}

/** True when the request certainly did not reach the node (connection refused / reset before send). */
export function isConnectionError(error: unknown): boolean {
  return /ECONNREFUSED|ECONNRESET|fetch failed|socket hang up|EHOSTUNREACH|ENOTFOUND/i.test(errorText(error));
}

export function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    if (current instanceof Error) {
      parts.push(current.message);
      const code = (current as { code?: unknown }).code;
      if (typeof code === "string") parts.push(code);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(" | ");
}
