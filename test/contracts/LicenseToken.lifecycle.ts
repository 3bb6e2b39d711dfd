import { expect } from "chai";
import { network } from "hardhat";
import {
  BASE_URI,
  deployLicenseToken,
  expectedTokenURI,
  mined,
  parsedLogs,
  terms,
  type LicenseRecord,
} from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;
const DAY = 86_400n;
const UINT64_MAX = 2n ** 64n - 1n;

/** A deployment with three licenses for alice: 1 perpetual, 2 expiring in 30 days, 3 locked + 30 days. */
async function withLicenses() {
  const d = await deployLicenseToken(ethers);
  const now = BigInt(await time.latest());
  const in30Days = now + 30n * DAY;
  await mined(d.token.connect(d.issuer).issue(d.alice.address, terms(ethers)));
  await mined(d.token.connect(d.issuer).issue(d.alice.address, terms(ethers, { expiresAt: in30Days })));
  await mined(
    d.token.connect(d.issuer).issue(d.alice.address, terms(ethers, { expiresAt: in30Days, locked: true })),
  );
  return { ...d, in30Days };
}

describe("LicenseToken: expiry, renewal, cancellation, revocation, locking, transfers", function () {
  describe("views of a token that does not exist", function () {
    it("isValid is false; the other views revert with ERC721NonexistentToken", async function () {
      const { token } = await networkHelpers.loadFixture(withLicenses);
      expect(await token.isValid(99n)).to.equal(false);
      expect(await token.isValid(0n)).to.equal(false);
      for (const view of ["license", "expiresAt", "isRenewable", "locked", "tokenURI", "ownerOf"]) {
        await expect(token.getFunction(view).staticCall(99n))
          .to.be.revertedWithCustomError(token, "ERC721NonexistentToken")
          .withArgs(99n);
      }
    });

    it("issuer and holder operations revert with ERC721NonexistentToken", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      const calls = [
        () => token.connect(issuer).renewSubscription(99n, DAY),
        () => token.connect(issuer).cancelSubscription(99n),
        () => token.connect(issuer).revoke(99n, ethers.id("fraud")),
        () => token.connect(issuer).lock(99n),
        () => token.connect(issuer).unlock(99n),
      ];
      for (const call of calls) {
        await expect(call()).to.be.revertedWithCustomError(token, "ERC721NonexistentToken").withArgs(99n);
      }
    });
  });

  describe("expiry (time travel)", function () {
    it("a perpetual license stays valid; an expiring one is valid until exactly expiresAt", async function () {
      const { token, in30Days } = await networkHelpers.loadFixture(withLicenses);
      expect(await token.expiresAt(1n)).to.equal(0n);
      expect(await token.expiresAt(2n)).to.equal(in30Days);
      expect(await token.isValid(2n)).to.equal(true);

      await time.increaseTo(in30Days - 1n);
      expect(await token.isValid(2n)).to.equal(true);
      await time.increaseTo(in30Days);
      expect(await token.isValid(2n)).to.equal(false);
      expect(await token.isValid(1n)).to.equal(true);

      await time.increase(10n * 365n * DAY);
      expect(await token.isValid(1n)).to.equal(true);
      expect(await token.isValid(2n)).to.equal(false);
      // Expiry changes validity only: the token still exists and is owned.
      expect(await token.ownerOf(2n)).to.not.equal(ethers.ZeroAddress);
    });

    it("isRenewable is true for subscriptions (expired or not) and false for perpetual ones", async function () {
      const { token, in30Days } = await networkHelpers.loadFixture(withLicenses);
      expect(await token.isRenewable(1n)).to.equal(false);
      expect(await token.isRenewable(2n)).to.equal(true);
      await time.increaseTo(in30Days + DAY);
      expect(await token.isRenewable(2n)).to.equal(true);
    });
  });

  describe("renewSubscription", function () {
    it("extends a running subscription from its expiry", async function () {
      const { token, issuer, in30Days } = await networkHelpers.loadFixture(withLicenses);
      const tx = token.connect(issuer).renewSubscription(2n, 30n * DAY);
      await expect(tx)
        .to.emit(token, "SubscriptionUpdate")
        .withArgs(2n, in30Days + 30n * DAY);
      await expect(tx).to.emit(token, "MetadataUpdate").withArgs(2n);
      expect(await token.expiresAt(2n)).to.equal(in30Days + 30n * DAY);
      expect(((await token.license(2n)) as LicenseRecord).expiresAt).to.equal(in30Days + 30n * DAY);
    });

    it("renews an expired subscription from now, making it valid again", async function () {
      const { token, issuer, in30Days } = await networkHelpers.loadFixture(withLicenses);
      await time.increaseTo(in30Days + 5n * DAY);
      expect(await token.isValid(2n)).to.equal(false);
      const at = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(at);
      await expect(token.connect(issuer).renewSubscription(2n, DAY))
        .to.emit(token, "SubscriptionUpdate")
        .withArgs(2n, at + DAY);
      expect(await token.isValid(2n)).to.equal(true);
      await time.increaseTo(at + DAY);
      expect(await token.isValid(2n)).to.equal(false);
    });

    it("reverts with LicensePerpetual for a perpetual license", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(issuer).renewSubscription(1n, DAY))
        .to.be.revertedWithCustomError(token, "LicensePerpetual")
        .withArgs(1n);
    });

    it("reverts with LicenseInvalidDuration for a zero duration", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(issuer).renewSubscription(2n, 0n))
        .to.be.revertedWithCustomError(token, "LicenseInvalidDuration")
        .withArgs(0n);
    });

    it("reverts with LicenseExpiryOverflow when the expiry would not fit in uint64", async function () {
      const { token, issuer, in30Days } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(issuer).renewSubscription(2n, UINT64_MAX))
        .to.be.revertedWithCustomError(token, "LicenseExpiryOverflow")
        .withArgs(2n, in30Days + UINT64_MAX);
      await mined(token.connect(issuer).renewSubscription(2n, UINT64_MAX - in30Days));
      expect(await token.expiresAt(2n)).to.equal(UINT64_MAX);
    });

    it("reverts with LicenseIsRevoked for a revoked license", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(issuer).revoke(2n, ethers.id("fraud")));
      await expect(token.connect(issuer).renewSubscription(2n, DAY))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(2n);
      expect(await token.isRenewable(2n)).to.equal(false);
    });

    it("reverts with LicenseNonPayable when ether is sent", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(issuer).renewSubscription(2n, DAY, { value: 1n }))
        .to.be.revertedWithCustomError(token, "LicenseNonPayable")
        .withArgs(1n);
    });
  });

  describe("cancelSubscription", function () {
    it("the licensee cancels: the license ends now and the issuer can renew it later", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(withLicenses);
      const at = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(at);
      const receipt = await mined(token.connect(alice).cancelSubscription(2n));
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "SubscriptionUpdate", args: [2n, at] },
        { name: "LicenseCancelled", args: [2n, alice.address] },
        { name: "MetadataUpdate", args: [2n] },
      ]);
      expect(await token.expiresAt(2n)).to.equal(at);
      expect(await token.isValid(2n)).to.equal(false);
      expect(await token.isRenewable(2n)).to.equal(true);
      await mined(token.connect(issuer).renewSubscription(2n, DAY));
      expect(await token.isValid(2n)).to.equal(true);
    });

    it("an issuer cancels any subscription", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(issuer).cancelSubscription(3n))
        .to.emit(token, "LicenseCancelled")
        .withArgs(3n, issuer.address);
      expect(await token.isValid(3n)).to.equal(false);
    });

    it("reverts with LicenseUnauthorizedCancel for others, even an approved operator", async function () {
      const { token, alice, bob, admin } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(alice).setApprovalForAll(bob.address, true));
      await mined(token.connect(alice).approve(admin.address, 2n));
      for (const caller of [bob, admin]) {
        await expect(token.connect(caller).cancelSubscription(2n))
          .to.be.revertedWithCustomError(token, "LicenseUnauthorizedCancel")
          .withArgs(caller.address, 2n);
      }
    });

    it("a former holder can no longer cancel after a transfer", async function () {
      const { token, alice, bob } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(alice).transferFrom(alice.address, bob.address, 2n));
      await expect(token.connect(alice).cancelSubscription(2n))
        .to.be.revertedWithCustomError(token, "LicenseUnauthorizedCancel")
        .withArgs(alice.address, 2n);
      await expect(token.connect(bob).cancelSubscription(2n))
        .to.emit(token, "LicenseCancelled")
        .withArgs(2n, bob.address);
    });

    it("reverts with LicensePerpetual for a perpetual license", async function () {
      const { token, alice } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(alice).cancelSubscription(1n))
        .to.be.revertedWithCustomError(token, "LicensePerpetual")
        .withArgs(1n);
    });

    it("reverts with LicenseAlreadyExpired once the license has expired (or was cancelled)", async function () {
      const { token, alice, in30Days } = await networkHelpers.loadFixture(withLicenses);
      await time.increaseTo(in30Days);
      await expect(token.connect(alice).cancelSubscription(2n))
        .to.be.revertedWithCustomError(token, "LicenseAlreadyExpired")
        .withArgs(2n, in30Days);
    });

    it("reverts with LicenseIsRevoked for a revoked license", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(issuer).revoke(2n, ethers.id("fraud")));
      await expect(token.connect(alice).cancelSubscription(2n))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(2n);
    });

    it("reverts with LicenseNonPayable when ether is sent", async function () {
      const { token, alice } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(alice).cancelSubscription(2n, { value: 5n }))
        .to.be.revertedWithCustomError(token, "LicenseNonPayable")
        .withArgs(5n);
    });
  });

  describe("revoke", function () {
    it("marks the license revoked, makes it invalid and reports it locked", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      const reason = ethers.id("chargeback");
      const receipt = await mined(token.connect(issuer).revoke(1n, reason));
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "LicenseRevoked", args: [1n, reason] },
        { name: "Locked", args: [1n] },
        { name: "MetadataUpdate", args: [1n] },
      ]);
      expect(((await token.license(1n)) as LicenseRecord).revoked).to.equal(true);
      expect(await token.isValid(1n)).to.equal(false);
      expect(await token.locked(1n)).to.equal(true);
      expect(await token.isRenewable(1n)).to.equal(false);
    });

    it("emits no second Locked when revoking an already locked license", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      const receipt = await mined(token.connect(issuer).revoke(3n, ethers.id("x")));
      expect(parsedLogs(token, receipt).map((l) => l.name)).to.deep.equal([
        "LicenseRevoked",
        "MetadataUpdate",
      ]);
    });

    it("reverts with LicenseIsRevoked when revoked twice", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(issuer).revoke(1n, ethers.id("x")));
      await expect(token.connect(issuer).revoke(1n, ethers.id("y")))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(1n);
    });

    it("stays invalid after time passes and cannot be unlocked or locked", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(issuer).revoke(2n, ethers.id("x")));
      await time.increase(DAY);
      expect(await token.isValid(2n)).to.equal(false);
      await expect(token.connect(issuer).unlock(2n))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(2n);
      await expect(token.connect(issuer).lock(2n))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(2n);
    });
  });

  describe("lock and unlock (ERC-5192)", function () {
    it("lock emits Locked and MetadataUpdate; unlock emits Unlocked and MetadataUpdate", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      expect(await token.locked(1n)).to.equal(false);
      let receipt = await mined(token.connect(issuer).lock(1n));
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "Locked", args: [1n] },
        { name: "MetadataUpdate", args: [1n] },
      ]);
      expect(await token.locked(1n)).to.equal(true);
      expect(((await token.license(1n)) as LicenseRecord).locked).to.equal(true);
      receipt = await mined(token.connect(issuer).unlock(1n));
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "Unlocked", args: [1n] },
        { name: "MetadataUpdate", args: [1n] },
      ]);
      expect(await token.locked(1n)).to.equal(false);
    });

    it("reverts with LicenseLockUnchanged when the status would not change", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(issuer).lock(3n))
        .to.be.revertedWithCustomError(token, "LicenseLockUnchanged")
        .withArgs(3n, true);
      await expect(token.connect(issuer).unlock(1n))
        .to.be.revertedWithCustomError(token, "LicenseLockUnchanged")
        .withArgs(1n, false);
    });
  });

  describe("transfer policy (_update)", function () {
    it("a transferable license moves with transferFrom and safeTransferFrom", async function () {
      const { token, alice, bob, carol } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(alice).transferFrom(alice.address, bob.address, 1n))
        .to.emit(token, "Transfer")
        .withArgs(alice.address, bob.address, 1n);
      await mined(
        token.connect(bob).getFunction("safeTransferFrom(address,address,uint256)")(
          bob.address,
          carol.address,
          1n,
        ),
      );
      expect(await token.ownerOf(1n)).to.equal(carol.address);
      expect(await token.isValid(1n)).to.equal(true);
    });

    it("a locked license reverts with LicenseIsLocked on every transfer path", async function () {
      const { token, alice, bob } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(alice).setApprovalForAll(bob.address, true));
      const paths = [
        () => token.connect(alice).transferFrom(alice.address, bob.address, 3n),
        () => token.connect(bob).transferFrom(alice.address, bob.address, 3n),
        () =>
          token.connect(alice).getFunction("safeTransferFrom(address,address,uint256)")(
            alice.address,
            bob.address,
            3n,
          ),
        () =>
          token.connect(alice).getFunction("safeTransferFrom(address,address,uint256,bytes)")(
            alice.address,
            bob.address,
            3n,
            "0x",
          ),
      ];
      for (const send of paths) {
        await expect(send()).to.be.revertedWithCustomError(token, "LicenseIsLocked").withArgs(3n);
      }
      expect(await token.ownerOf(3n)).to.equal(alice.address);
    });

    it("a revoked license reverts with LicenseIsRevoked, locked or not", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(issuer).revoke(1n, ethers.id("x")));
      await expect(token.connect(alice).transferFrom(alice.address, bob.address, 1n))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(1n);
      await mined(token.connect(issuer).revoke(3n, ethers.id("x")));
      await expect(token.connect(alice).transferFrom(alice.address, bob.address, 3n))
        .to.be.revertedWithCustomError(token, "LicenseIsRevoked")
        .withArgs(3n);
    });

    it("an unlocked license becomes transferable again", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(withLicenses);
      await mined(token.connect(issuer).unlock(3n));
      await mined(token.connect(alice).transferFrom(alice.address, bob.address, 3n));
      expect(await token.ownerOf(3n)).to.equal(bob.address);
    });

    it("an expired license can still be transferred (expiry is not a transfer rule)", async function () {
      const { token, alice, bob, in30Days } = await networkHelpers.loadFixture(withLicenses);
      await time.increaseTo(in30Days + 1n);
      await mined(token.connect(alice).transferFrom(alice.address, bob.address, 2n));
      expect(await token.ownerOf(2n)).to.equal(bob.address);
    });

    it("ERC-721 authorization still applies: ERC721InsufficientApproval for a stranger", async function () {
      const { token, alice, bob } = await networkHelpers.loadFixture(withLicenses);
      await expect(token.connect(bob).transferFrom(alice.address, bob.address, 1n))
        .to.be.revertedWithCustomError(token, "ERC721InsufficientApproval")
        .withArgs(bob.address, 1n);
    });
  });

  describe("token URI and setBaseURI", function () {
    it("tokenURI is base URI + chain id + contract + token id; setBaseURI changes it for all tokens", async function () {
      const { token, admin } = await networkHelpers.loadFixture(withLicenses);
      const { chainId } = await ethers.provider.getNetwork();
      const address = (token.target as string).toLowerCase();
      expect(await token.tokenURI(2n)).to.equal(`${BASE_URI}${chainId}/${address}/2`);
      const receipt = await mined(token.connect(admin).setBaseURI("ipfs://licenses/"));
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "BaseURIUpdated", args: ["ipfs://licenses/"] },
        { name: "BatchMetadataUpdate", args: [1n, 2n ** 256n - 1n] },
      ]);
      expect(await token.tokenURI(2n)).to.equal(expectedTokenURI("ipfs://licenses/", chainId, address, 2n));
      await mined(token.connect(admin).setBaseURI(""));
      expect(await token.tokenURI(2n)).to.equal("");
    });
  });
});
