/**
 * Shared pieces of the LicenseToken contract tests (no tests here).
 *
 * The tests use ethers' untyped `Contract` rather than the typechain output in `types/`, so that the
 * type check does not depend on a prior `hardhat build`.
 */
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type {
  BaseContract,
  BaseContractMethod,
  ContractRunner,
  ContractTransactionReceipt,
  Log,
} from "ethers";

type Method = BaseContractMethod;

/** The LicenseToken contract as an ethers contract with its methods declared (results are untyped). */
export interface LicenseTokenContract extends BaseContract {
  connect(runner: ContractRunner | null): LicenseTokenContract;
  // ERC-721, ERC-165, AccessControl
  name: Method;
  symbol: Method;
  tokenURI: Method;
  ownerOf: Method;
  balanceOf: Method;
  approve: Method;
  setApprovalForAll: Method;
  transferFrom: Method;
  supportsInterface: Method;
  DEFAULT_ADMIN_ROLE: Method;
  hasRole: Method;
  getRoleAdmin: Method;
  grantRole: Method;
  revokeRole: Method;
  renounceRole: Method;
  // AccessControlDefaultAdminRules (and its ERC-5313 owner)
  owner: Method;
  defaultAdmin: Method;
  pendingDefaultAdmin: Method;
  defaultAdminDelay: Method;
  pendingDefaultAdminDelay: Method;
  defaultAdminDelayIncreaseWait: Method;
  beginDefaultAdminTransfer: Method;
  cancelDefaultAdminTransfer: Method;
  acceptDefaultAdminTransfer: Method;
  changeDefaultAdminDelay: Method;
  rollbackDefaultAdminDelay: Method;
  // license API, ERC-5643, ERC-5192
  ISSUER_ROLE: Method;
  issue: Method;
  issueBatch: Method;
  revoke: Method;
  lock: Method;
  unlock: Method;
  setBaseURI: Method;
  license: Method;
  isValid: Method;
  tokenOfRequest: Method;
  nextTokenId: Method;
  renewSubscription: Method;
  cancelSubscription: Method;
  expiresAt: Method;
  isRenewable: Method;
  locked: Method;
}

/** The test-only ReentrantReceiver contract. */
export interface ReceiverContract extends BaseContract {
  callbacks: Method;
  reenteredTokenId: Method;
  forward: Method;
}

export type Connection = Awaited<ReturnType<typeof network.create>>;
export type Ethers = Connection["ethers"];

export const ZERO_HASH = `0x${"00".repeat(32)}`;
export const ZERO_ADDRESS = `0x${"00".repeat(20)}`;

/** `LicenseTerms` as the contract takes it. */
export interface Terms {
  productId: bigint;
  expiresAt: bigint;
  seats: bigint;
  locked: boolean;
  termsHash: string;
  requestRef: string;
}

/** `License` as the contract returns it (a struct decoded by ethers). */
export interface LicenseRecord {
  productId: bigint;
  issuedAt: bigint;
  expiresAt: bigint;
  seats: bigint;
  locked: boolean;
  revoked: boolean;
  termsHash: string;
}

export interface Deployment {
  token: LicenseTokenContract;
  admin: HardhatEthersSigner;
  issuer: HardhatEthersSigner;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  outsider: HardhatEthersSigner;
  ISSUER_ROLE: string;
  DEFAULT_ADMIN_ROLE: string;
}

export const BASE_URI = "https://licenses.example/token/";

/** The delay of a default-admin transfer in the test deployments: 3 days, as scripts/deploy.ts defaults to. */
export const ADMIN_DELAY = 3n * 86_400n;

/** The token URI the contract builds: base URI, chain id, contract address (lower-case hex), token id. */
export function expectedTokenURI(
  baseURI: string,
  chainId: bigint,
  contract: string,
  tokenId: bigint,
): string {
  return `${baseURI}${chainId}/${contract.toLowerCase()}/${tokenId}`;
}

/** Deploys a LicenseToken with account 0 as admin and account 1 as issuer. */
export async function deployLicenseToken(ethers: Ethers): Promise<Deployment> {
  const [admin, issuer, alice, bob, carol, outsider] = await ethers.getSigners();
  if (!admin || !issuer || !alice || !bob || !carol || !outsider) throw new Error("need 6 signers");
  const token = (await ethers.deployContract("LicenseToken", [
    admin.address,
    issuer.address,
    BASE_URI,
    ADMIN_DELAY,
  ])) as unknown as LicenseTokenContract;
  await token.waitForDeployment();
  return {
    token,
    admin,
    issuer,
    alice,
    bob,
    carol,
    outsider,
    ISSUER_ROLE: (await token.ISSUER_ROLE()) as string,
    DEFAULT_ADMIN_ROLE: (await token.DEFAULT_ADMIN_ROLE()) as string,
  };
}

/** Terms with sensible defaults: product 7, perpetual, 5 seats, transferable, a terms hash, no request ref. */
export function terms(ethers: Ethers, overrides: Partial<Terms> = {}): Terms {
  return {
    productId: 7n,
    expiresAt: 0n,
    seats: 5n,
    locked: false,
    termsHash: ethers.id("terms-v1"),
    requestRef: ZERO_HASH,
    ...overrides,
  };
}

/** Parses a receipt's logs that come from `contract`, in order, as `{ name, args }`. */
export function parsedLogs(
  contract: BaseContract,
  receipt: ContractTransactionReceipt | null,
): { name: string; args: readonly unknown[] }[] {
  if (!receipt) throw new Error("no receipt");
  const address = (contract.target as string).toLowerCase();
  return receipt.logs
    .filter((log: Log) => log.address.toLowerCase() === address)
    .map((log: Log) => {
      const parsed = contract.interface.parseLog({ topics: [...log.topics], data: log.data });
      if (!parsed) throw new Error(`unparsable log ${log.topics[0]}`);
      return { name: parsed.name, args: parsed.args.toArray() as unknown[] };
    });
}

/** Sends a transaction and returns its receipt. */
export async function mined(tx: Promise<{ wait(): Promise<ContractTransactionReceipt | null> }>) {
  const receipt = await (await tx).wait();
  if (!receipt) throw new Error("no receipt");
  return receipt;
}
