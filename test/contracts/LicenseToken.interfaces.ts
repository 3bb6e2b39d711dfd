import { expect } from "chai";
import { network } from "hardhat";
import { id as keccakId } from "ethers";
import { deployLicenseToken } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();

async function deployed() {
  return deployLicenseToken(ethers);
}

/** ERC-165 interface id: XOR of the 4-byte selectors of the interface's functions. */
function interfaceId(signatures: readonly string[]): string {
  let xor = 0;
  for (const signature of signatures) xor ^= Number.parseInt(keccakId(signature).slice(2, 10), 16);
  return `0x${(xor >>> 0).toString(16).padStart(8, "0")}`;
}

/** Function signatures of each standard, copied from the EIP texts. */
const STANDARDS = {
  "ERC-165": { id: "0x01ffc9a7", functions: ["supportsInterface(bytes4)"] },
  "ERC-721": {
    id: "0x80ac58cd",
    functions: [
      "balanceOf(address)",
      "ownerOf(uint256)",
      "safeTransferFrom(address,address,uint256,bytes)",
      "safeTransferFrom(address,address,uint256)",
      "transferFrom(address,address,uint256)",
      "approve(address,uint256)",
      "setApprovalForAll(address,bool)",
      "getApproved(uint256)",
      "isApprovedForAll(address,address)",
    ],
  },
  "ERC-721 Metadata": { id: "0x5b5e139f", functions: ["name()", "symbol()", "tokenURI(uint256)"] },
  "ERC-5192": { id: "0xb45a3c0e", functions: ["locked(uint256)"] },
  "ERC-5643": {
    id: "0x8c65f84d",
    functions: [
      "renewSubscription(uint256,uint64)",
      "cancelSubscription(uint256)",
      "expiresAt(uint256)",
      "isRenewable(uint256)",
    ],
  },
  AccessControl: {
    id: "0x7965db0b",
    functions: [
      "hasRole(bytes32,address)",
      "getRoleAdmin(bytes32)",
      "grantRole(bytes32,address)",
      "revokeRole(bytes32,address)",
      "renounceRole(bytes32,address)",
    ],
  },
  // OpenZeppelin's IAccessControlDefaultAdminRules (its own functions; AccessControl's are the entry above).
  AccessControlDefaultAdminRules: {
    id: "0x31498786",
    functions: [
      "defaultAdmin()",
      "pendingDefaultAdmin()",
      "defaultAdminDelay()",
      "pendingDefaultAdminDelay()",
      "beginDefaultAdminTransfer(address)",
      "cancelDefaultAdminTransfer()",
      "acceptDefaultAdminTransfer()",
      "changeDefaultAdminDelay(uint48)",
      "rollbackDefaultAdminDelay()",
      "defaultAdminDelayIncreaseWait()",
    ],
  },
} as const;

/** ERC-4906 has no functions; the EIP fixes its id to this constant. */
const ERC4906_ID = "0x49064906";

describe("LicenseToken: interfaces (ERC-165) and ABI", function () {
  for (const [name, standard] of Object.entries(STANDARDS)) {
    it(`${name}: the id computed from its selectors is ${standard.id} and is supported`, async function () {
      const { token } = await networkHelpers.loadFixture(deployed);
      expect(interfaceId(standard.functions)).to.equal(standard.id);
      expect(await token.supportsInterface(standard.id)).to.equal(true);
    });
  }

  it("ERC-4906: supports the EIP's constant id 0x49064906 (an interface without functions)", async function () {
    const { token } = await networkHelpers.loadFixture(deployed);
    expect(interfaceId([])).to.equal("0x00000000");
    expect(await token.supportsInterface(ERC4906_ID)).to.equal(true);
    const events = token.interface.fragments
      .filter((f) => f.type === "event")
      .map((f) => f.format("sighash"));
    expect(events).to.include.members(["MetadataUpdate(uint256)", "BatchMetadataUpdate(uint256,uint256)"]);
  });

  it("does not claim interfaces it does not implement", async function () {
    const { token } = await networkHelpers.loadFixture(deployed);
    expect(await token.supportsInterface("0xffffffff")).to.equal(false); // required by ERC-165
    expect(await token.supportsInterface("0x780e9d63")).to.equal(false); // ERC-721 Enumerable
    expect(await token.supportsInterface("0x2a55205a")).to.equal(false); // ERC-2981 royalties
    expect(await token.supportsInterface("0x00000000")).to.equal(false);
  });

  it("the ABI offers every function of the standards and of the license API", async function () {
    const { token } = await networkHelpers.loadFixture(deployed);
    const functions = token.interface.fragments
      .filter((f) => f.type === "function")
      .map((f) => f.format("sighash"));
    const licenseApi = [
      "issue(address,(uint64,uint64,uint32,bool,bytes32,bytes32))",
      "issueBatch(address[],(uint64,uint64,uint32,bool,bytes32,bytes32)[])",
      "revoke(uint256,bytes32)",
      "lock(uint256)",
      "unlock(uint256)",
      "setBaseURI(string)",
      "license(uint256)",
      "isValid(uint256)",
      "tokenOfRequest(bytes32)",
      "nextTokenId()",
      "ISSUER_ROLE()",
      "DEFAULT_ADMIN_ROLE()",
      "owner()", // ERC-5313 (the default admin)
    ];
    const standardFunctions = Object.values(STANDARDS).flatMap((s) => s.functions);
    expect(functions).to.include.members([...standardFunctions, ...licenseApi]);
    const events = token.interface.fragments
      .filter((f) => f.type === "event")
      .map((f) => f.format("sighash"));
    expect(events).to.include.members([
      "Transfer(address,address,uint256)",
      "LicenseIssued(uint256,address,bytes32,uint64,uint64)",
      "LicenseRevoked(uint256,bytes32)",
      "LicenseCancelled(uint256,address)",
      "BaseURIUpdated(string)",
      "SubscriptionUpdate(uint256,uint64)",
      "Locked(uint256)",
      "Unlocked(uint256)",
      "DefaultAdminTransferScheduled(address,uint48)",
      "DefaultAdminTransferCanceled()",
      "DefaultAdminDelayChangeScheduled(uint48,uint48)",
      "DefaultAdminDelayChangeCanceled()",
    ]);
    // ERC-5643's functions keep the standard's `payable`, ERC-5192's `locked` is a view.
    expect(token.interface.getFunction("renewSubscription")!.payable).to.equal(true);
    expect(token.interface.getFunction("cancelSubscription")!.payable).to.equal(true);
    expect(token.interface.getFunction("locked")!.constant).to.equal(true);
  });

  it("the license record view returns every field by name", async function () {
    const { token } = await networkHelpers.loadFixture(deployed);
    const output = token.interface.getFunction("license")!.outputs[0]!;
    expect(output.components!.map((c) => `${c.type} ${c.name}`)).to.deep.equal([
      "uint64 productId",
      "uint64 issuedAt",
      "uint64 expiresAt",
      "uint32 seats",
      "bool locked",
      "bool revoked",
      "bytes32 termsHash",
    ]);
  });
});
