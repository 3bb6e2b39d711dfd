/**
 * The worker's hot path without ethers' generic machinery (pure functions): ABI encoding of
 * `issueBatch` and RLP serialization and signing of its transaction, on Buffers. ethers' generic
 * encoder and `Transaction` validate and convert hex strings of the whole calldata several times
 * (about 20 KB for 100 licenses), which cost more CPU per batch than the node needed to mine it.
 * `test/server/txcodec.test.ts` checks every output against ethers (`encodeFunctionData`,
 * `Transaction.from`, signer recovery).
 */
import type { SigningKey } from "ethers";
import { LICENSE_INTERFACE } from "./contract.js";
import { keccakHex } from "./keccak.js";
import { AppError } from "./errors.js";

/** What `issueBatch` needs of one license. */
export interface BatchItem {
  licensee: string;
  productId: number;
  expiresAt: number;
  seats: number;
  termsHash: string;
  requestRef: string;
}

const ISSUE_BATCH_SELECTOR = Buffer.from(
  LICENSE_INTERFACE.getFunction("issueBatch")!.selector.slice(2),
  "hex",
);

function hexBytes(hex: string, length: number, what: string): Buffer {
  const body = hex.startsWith("0x") || hex.startsWith("0X") ? hex.slice(2) : hex;
  if (body.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(body))
    throw new AppError("VALIDATION_FAILED", `${what}: expected ${length} bytes of hex`, { field: what });
  return Buffer.from(body, "hex");
}

function writeUint(word: Buffer, offset: number, value: number | bigint, what: string): void {
  const n = BigInt(value);
  if (n < 0n || n >= 1n << 64n)
    throw new AppError("VALIDATION_FAILED", `${what}: out of range`, { field: what });
  word.writeBigUInt64BE(n, offset + 24);
}

/**
 * Calldata of `issueBatch(address[] licensees, (uint64 productId, uint64 expiresAt, uint32 seats,
 * bool locked, bytes32 termsHash, bytes32 requestRef)[] terms)`, `locked` false: the same bytes as
 * `LICENSE_INTERFACE.encodeFunctionData("issueBatch", ...)`.
 */
export function encodeIssueBatch(items: readonly BatchItem[]): Buffer {
  const n = items.length;
  // selector, 2 offsets, licensees (length + n words), terms (length + 6n words)
  const out = Buffer.alloc(4 + 32 * (2 + 1 + n + 1 + 6 * n));
  ISSUE_BATCH_SELECTOR.copy(out, 0);
  const at = (word: number): number => 4 + 32 * word;
  writeUint(out, at(0), 0x40, "offset");
  writeUint(out, at(1), 0x40 + 32 * (1 + n), "offset");
  writeUint(out, at(2), n, "length");
  const termsStart = 3 + n;
  writeUint(out, at(termsStart), n, "length");
  items.forEach((item, i) => {
    hexBytes(item.licensee, 20, "licensee").copy(out, at(3 + i) + 12);
    const base = termsStart + 1 + 6 * i;
    writeUint(out, at(base), item.productId, "productId");
    writeUint(out, at(base + 1), item.expiresAt, "expiresAt");
    if (!Number.isInteger(item.seats) || item.seats < 0 || item.seats > 0xffffffff)
      throw new AppError("VALIDATION_FAILED", "seats: out of range", { field: "seats" });
    writeUint(out, at(base + 2), item.seats, "seats");
    // locked: false (word stays zero)
    hexBytes(item.termsHash, 32, "termsHash").copy(out, at(base + 4));
    hexBytes(item.requestRef, 32, "requestRef").copy(out, at(base + 5));
  });
  return out;
}

// ------------------------------------------------------------------ RLP

type RlpItem = Buffer | RlpItem[];

function lengthPrefix(length: number, short: number, long: number): Buffer {
  if (length <= 55) return Buffer.from([short + length]);
  const bytes = uintBytes(BigInt(length));
  return Buffer.concat([Buffer.from([long + bytes.length]), bytes]);
}

export function rlpEncode(item: RlpItem): Buffer {
  if (Buffer.isBuffer(item)) {
    if (item.length === 1 && item[0]! < 0x80) return item;
    return Buffer.concat([lengthPrefix(item.length, 0x80, 0xb7), item]);
  }
  const payload = Buffer.concat(item.map(rlpEncode));
  return Buffer.concat([lengthPrefix(payload.length, 0xc0, 0xf7), payload]);
}

/** Minimal big-endian bytes of a non-negative integer (0 → empty), as RLP wants integers. */
export function uintBytes(value: bigint): Buffer {
  if (value < 0n) throw new AppError("VALIDATION_FAILED", "negative integer");
  if (value === 0n) return Buffer.alloc(0);
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, "hex");
}

// ------------------------------------------------------------------ transactions

export interface TxFields {
  chainId: number;
  nonce: number;
  gasLimit: bigint;
  to: string;
  data: Buffer;
  /** EIP-1559 fees (type 2), or a legacy gas price (type 0, EIP-155). */
  fee: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint };
}

/** Signs a contract call (value 0, no access list); the raw transaction and its hash, as ethers would. */
export function signTx(tx: TxFields, key: SigningKey): { rawTx: string; txHash: string } {
  const to = hexBytes(tx.to, 20, "to");
  const common = [uintBytes(BigInt(tx.nonce))];
  let raw: Buffer;
  if ("maxFeePerGas" in tx.fee) {
    const fields: RlpItem[] = [
      uintBytes(BigInt(tx.chainId)),
      ...common,
      uintBytes(tx.fee.maxPriorityFeePerGas),
      uintBytes(tx.fee.maxFeePerGas),
      uintBytes(tx.gasLimit),
      to,
      Buffer.alloc(0),
      tx.data,
      [],
    ];
    const digest = keccakHex(Buffer.concat([Buffer.from([2]), rlpEncode(fields)]));
    const sig = key.sign(digest);
    raw = Buffer.concat([
      Buffer.from([2]),
      rlpEncode([
        ...fields,
        uintBytes(BigInt(sig.yParity)),
        uintBytes(BigInt(sig.r)),
        uintBytes(BigInt(sig.s)),
      ]),
    ]);
  } else {
    const fields: RlpItem[] = [
      ...common,
      uintBytes(tx.fee.gasPrice),
      uintBytes(tx.gasLimit),
      to,
      Buffer.alloc(0),
      tx.data,
    ];
    const chainId = BigInt(tx.chainId);
    const digest = keccakHex(rlpEncode([...fields, uintBytes(chainId), Buffer.alloc(0), Buffer.alloc(0)]));
    const sig = key.sign(digest);
    raw = rlpEncode([
      ...fields,
      uintBytes(chainId * 2n + 35n + BigInt(sig.yParity)),
      uintBytes(BigInt(sig.r)),
      uintBytes(BigInt(sig.s)),
    ]);
  }
  return { rawTx: `0x${raw.toString("hex")}`, txHash: keccakHex(raw) };
}
