import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import { deployLicenseToken, mined, terms, type LicenseTokenContract } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const DAY = 86_400n;

/** Deployment plus license 1 (expiring, held by alice) and license 2 (perpetual, locked, held by alice). */
async function withLicense() {
  const d = await deployLicenseToken(ethers);
  const expiresAt = BigInt(await networkHelpers.time.latest()) + 30n * DAY;
  await mined(d.token.connect(d.issuer).issue(d.alice.address, terms(ethers, { expiresAt })));
  await mined(d.token.connect(d.issuer).issue(d.alice.address, terms(ethers, { locked: true })));
  return d;
}

type Call = (token: LicenseTokenContract, who: HardhatEthersSigner) => Promise<ContractTransactionResponse>;

/** Every function restricted to ISSUER_ROLE, called in a way that succeeds for an issuer. */
const issuerOnly: Record<string, Call> = {
  issue: (t, who) => t.connect(who).issue(who.address, terms(ethers)),
  issueBatch: (t, who) => t.connect(who).issueBatch([who.address], [terms(ethers)]),
  renewSubscription: (t, who) => t.connect(who).renewSubscription(1n, DAY),
  revoke: (t, who) => t.connect(who).revoke(1n, ethers.id("reason")),
  lock: (t, who) => t.connect(who).lock(1n),
  unlock: (t, who) => t.connect(who).unlock(2n),
};

/** Every function restricted to DEFAULT_ADMIN_ROLE, called in a way that succeeds for the admin. */
const adminOnly: Record<
  string,
  (token: LicenseTokenContract, who: HardhatEthersSigner, other: string) => Promise<unknown>
> = {
  setBaseURI: (t, who) => t.connect(who).setBaseURI("ipfs://x/"),
  grantRole: async (t, who, other) => t.connect(who).grantRole(await t.ISSUER_ROLE(), other),
  revokeRole: async (t, who, other) => t.connect(who).revokeRole(await t.ISSUER_ROLE(), other),
  // AccessControlDefaultAdminRules
  beginDefaultAdminTransfer: (t, who, other) => t.connect(who).beginDefaultAdminTransfer(other),
  cancelDefaultAdminTransfer: (t, who) => t.connect(who).cancelDefaultAdminTransfer(),
  changeDefaultAdminDelay: (t, who) => t.connect(who).changeDefaultAdminDelay(DAY),
  rollbackDefaultAdminDelay: (t, who) => t.connect(who).rollbackDefaultAdminDelay(),
};

describe("LicenseToken: roles", function () {
  for (const [name, call] of Object.entries(issuerOnly)) {
    describe(`${name} (ISSUER_ROLE)`, function () {
      it("succeeds for the issuer", async function () {
        const { token, issuer } = await networkHelpers.loadFixture(withLicense);
        await mined(call(token, issuer));
      });

      for (const role of ["admin", "alice", "outsider"] as const) {
        it(`reverts with AccessControlUnauthorizedAccount for the ${role === "alice" ? "licensee" : role}`, async function () {
          const d = await networkHelpers.loadFixture(withLicense);
          const who = d[role];
          await expect(call(d.token, who))
            .to.be.revertedWithCustomError(d.token, "AccessControlUnauthorizedAccount")
            .withArgs(who.address, d.ISSUER_ROLE);
        });
      }
    });
  }

  for (const [name, call] of Object.entries(adminOnly)) {
    describe(`${name} (DEFAULT_ADMIN_ROLE)`, function () {
      it("succeeds for the admin", async function () {
        const { token, admin, carol } = await networkHelpers.loadFixture(withLicense);
        await mined(call(token, admin, carol.address) as Promise<ContractTransactionResponse>);
      });

      for (const role of ["issuer", "alice", "outsider"] as const) {
        it(`reverts with AccessControlUnauthorizedAccount for the ${role === "alice" ? "licensee" : role}`, async function () {
          const d = await networkHelpers.loadFixture(withLicense);
          const who = d[role];
          await expect(call(d.token, who, d.carol.address))
            .to.be.revertedWithCustomError(d.token, "AccessControlUnauthorizedAccount")
            .withArgs(who.address, d.DEFAULT_ADMIN_ROLE);
        });
      }
    });
  }

  describe("cancelSubscription (licensee or issuer)", function () {
    for (const role of ["issuer", "alice"] as const) {
      it(`succeeds for the ${role === "alice" ? "licensee" : role}`, async function () {
        const d = await networkHelpers.loadFixture(withLicense);
        await expect(d.token.connect(d[role]).cancelSubscription(1n))
          .to.emit(d.token, "LicenseCancelled")
          .withArgs(1n, d[role].address);
      });
    }
    for (const role of ["admin", "outsider"] as const) {
      it(`reverts with LicenseUnauthorizedCancel for the ${role}`, async function () {
        const d = await networkHelpers.loadFixture(withLicense);
        await expect(d.token.connect(d[role]).cancelSubscription(1n))
          .to.be.revertedWithCustomError(d.token, "LicenseUnauthorizedCancel")
          .withArgs(d[role].address, 1n);
      });
    }
  });

  describe("role management", function () {
    it("a newly granted issuer can issue; after revokeRole it cannot", async function () {
      const { token, admin, carol, ISSUER_ROLE } = await networkHelpers.loadFixture(withLicense);
      await expect(token.connect(admin).grantRole(ISSUER_ROLE, carol.address))
        .to.emit(token, "RoleGranted")
        .withArgs(ISSUER_ROLE, carol.address, admin.address);
      await mined(token.connect(carol).issue(carol.address, terms(ethers)));
      await expect(token.connect(admin).revokeRole(ISSUER_ROLE, carol.address))
        .to.emit(token, "RoleRevoked")
        .withArgs(ISSUER_ROLE, carol.address, admin.address);
      await expect(token.connect(carol).issue(carol.address, terms(ethers)))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(carol.address, ISSUER_ROLE);
    });

    it("the admin is not an issuer unless it grants itself the role", async function () {
      const { token, admin, ISSUER_ROLE } = await networkHelpers.loadFixture(withLicense);
      expect(await token.hasRole(ISSUER_ROLE, admin.address)).to.equal(false);
      await mined(token.connect(admin).grantRole(ISSUER_ROLE, admin.address));
      await mined(token.connect(admin).issue(admin.address, terms(ethers)));
    });

    it("an issuer can renounce its role, but only for itself", async function () {
      const { token, issuer, admin, ISSUER_ROLE } = await networkHelpers.loadFixture(withLicense);
      await expect(
        token.connect(admin).renounceRole(ISSUER_ROLE, issuer.address),
      ).to.be.revertedWithCustomError(token, "AccessControlBadConfirmation");
      await mined(token.connect(issuer).renounceRole(ISSUER_ROLE, issuer.address));
      await expect(token.connect(issuer).revoke(1n, ethers.id("x")))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(issuer.address, ISSUER_ROLE);
    });

    it("the holder's ERC-721 rights do not include issuer operations on its own license", async function () {
      const { token, alice, ISSUER_ROLE } = await networkHelpers.loadFixture(withLicense);
      await expect(token.connect(alice).renewSubscription(1n, DAY))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, ISSUER_ROLE);
      await expect(token.connect(alice).unlock(2n))
        .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, ISSUER_ROLE);
    });
  });
});
