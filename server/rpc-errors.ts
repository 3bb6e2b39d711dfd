/**
 * Errors of a chain's JSON-RPC endpoint (`CHAIN_RPC_FAILED`): the node's error answer, an unreadable
 * answer or a timeout.
 */
import { AppError } from "./errors.js";

/** A JSON-RPC error answer of the node (message as the node wrote it, e.g. "nonce too low"). */
export class RpcError extends AppError {
  constructor(
    readonly method: string,
    message: string,
    readonly rpcCode?: number,
    readonly data?: unknown,
  ) {
    super("CHAIN_RPC_FAILED", `${method}: ${message}`);
  }
}

/** A chain call that failed without a JSON-RPC error answer (unreadable answer, timeout, wrong chain). */
export function rpcFailure(message: string): AppError {
  return new AppError("CHAIN_RPC_FAILED", message);
}

/** One answer of a JSON-RPC call (or of one call of a batch). */
export interface RpcAnswer {
  result?: unknown;
  error?: { code?: number; message?: string; data?: unknown };
}

/** The node's error answer to `method` as an {@link RpcError}. */
export function rpcError(method: string, error: NonNullable<RpcAnswer["error"]>): RpcError {
  return new RpcError(method, error.message ?? "error", error.code, error.data);
}

/** `promise`, or `CHAIN_RPC_FAILED` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(rpcFailure(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
