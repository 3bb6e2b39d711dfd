/**
 * Verify: reads a confirmed license back from its chain at the latest block (a reader of the chain,
 * no signer): the token must be the one issued for the license's request reference, then owner,
 * record and validity decide the code.
 */
import type { ChainClient } from "../chain.js";
import { rpcFailure, withTimeout } from "../rpc-errors.js";
import type { LicenseRecord } from "../domain.js";

export type VerifyCode = "VALID" | "EXPIRED" | "REVOKED" | "NOT_FOUND" | "NOT_ISSUED" | "CHAIN_UNAVAILABLE";

export interface VerifyResult {
  code: VerifyCode;
  valid: boolean;
  chainId: number;
  contract: string;
  tokenId?: string;
  owner?: string;
  expiresAt?: number;
  revoked?: boolean;
  blockNumber?: number;
  blockTimestamp?: number;
}

/** The license as its chain has it; throws when the chain cannot answer within `timeoutMs`. */
export async function verifyOnChain(
  chain: ChainClient,
  license: LicenseRecord & { status: "confirmed" },
  timeoutMs: number,
): Promise<VerifyResult> {
  const base = { chainId: license.chainId, contract: chain.config.contract };
  const tokenId = BigInt(license.tokenId);
  return withTimeout(
    (async (): Promise<VerifyResult> => {
      const block = await chain.provider.getBlock("latest");
      if (!block) throw rpcFailure("no latest block");
      const tag = { blockTag: block.number };
      const notFound = { ...base, code: "NOT_FOUND", valid: false, tokenId: license.tokenId } as const;
      // the token must be the one issued for this request (not another token with the same id)
      const issuedFor = (await chain.contract.getFunction("tokenOfRequest")(
        license.requestRef,
        tag,
      )) as bigint;
      if (issuedFor !== tokenId) return { ...notFound, blockNumber: block.number };
      let owner: string;
      try {
        owner = (await chain.contract.getFunction("ownerOf")(tokenId, tag)) as string;
      } catch (error) {
        if (
          /ERC721NonexistentToken|0x7e273289/.test(
            String((error as Error).message) + JSON.stringify((error as { data?: unknown }).data ?? ""),
          )
        ) {
          return { ...notFound, blockNumber: block.number };
        }
        throw error;
      }
      const record = (await chain.contract.getFunction("license")(tokenId, tag)) as {
        expiresAt: bigint;
        revoked: boolean;
      };
      const valid = (await chain.contract.getFunction("isValid")(tokenId, tag)) as boolean;
      const expiresAt = Number(record.expiresAt);
      const code: VerifyCode = record.revoked
        ? "REVOKED"
        : expiresAt !== 0 && expiresAt <= block.timestamp
          ? "EXPIRED"
          : valid
            ? "VALID"
            : "NOT_FOUND";
      return {
        ...base,
        code,
        valid,
        tokenId: license.tokenId,
        owner,
        expiresAt,
        revoked: record.revoked,
        blockNumber: block.number,
        blockTimestamp: block.timestamp,
      };
    })(),
    timeoutMs,
  );
}
