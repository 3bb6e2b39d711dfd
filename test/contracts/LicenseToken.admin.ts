/**
 * The default admin (AccessControlDefaultAdminRules): exactly one account holds DEFAULT_ADMIN_ROLE; it moves
 * only by a two-step transfer (begin, then accept by the new admin after the delay); renouncing it needs
 * the same schedule, so a one-step renounce (or a grant of the role to a second account) is refused.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { ADMIN_DELAY, ZERO_ADDRESS, deployLicenseToken, mined } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;
const DAY = 86_400n;

async function deployed() {
  return deployLicenseToken(ethers);
}

/** The timestamp of the block that mined `receipt`. */
async function minedAt(receipt: { blockNumber: number }): Promise<bigint> {
  return BigInt((await ethers.provider.getBlock(receipt.blockNumber))!.timestamp);
}

describe("LicenseToken: default admin rules (two-step, delayed transfer)", function () {
  it("refuses a second default admin: grantRole and revokeRole of DEFAULT_ADMIN_ROLE", async function () {
    const { token, admin, carol, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(deployed);
    await expect(
      token.connect(admin).grantRole(DEFAULT_ADMIN_ROLE, carol.address),
    ).to.be.revertedWithCustomError(token, "AccessControlEnforcedDefaultAdminRules");
    await expect(
      token.connect(admin).revokeRole(DEFAULT_ADMIN_ROLE, admin.address),
    ).to.be.revertedWithCustomError(token, "AccessControlEnforcedDefaultAdminRules");
    expect(await token.hasRole(DEFAULT_ADMIN_ROLE, carol.address)).to.equal(false);
  });

  it("transfers in two steps: scheduled, refused before the delay and to others, accepted after it", async function () {
    const { token, admin, carol, outsider, ISSUER_ROLE, DEFAULT_ADMIN_ROLE } =
      await networkHelpers.loadFixture(deployed);
    const begin = await mined(token.connect(admin).beginDefaultAdminTransfer(carol.address));
    const schedule = (await minedAt(begin)) + ADMIN_DELAY;
    await expect(begin.hash)
      .to.emit(token, "DefaultAdminTransferScheduled")
      .withArgs(carol.address, schedule);
    expect(await token.pendingDefaultAdmin()).to.deep.equal([carol.address, schedule]);
    // Nothing changed yet: the old admin still administers, carol is not admin.
    expect(await token.defaultAdmin()).to.equal(admin.address);
    expect(await token.hasRole(DEFAULT_ADMIN_ROLE, carol.address)).to.equal(false);

    await expect(token.connect(carol).acceptDefaultAdminTransfer())
      .to.be.revertedWithCustomError(token, "AccessControlEnforcedDefaultAdminDelay")
      .withArgs(schedule);
    await time.increaseTo(schedule);
    await expect(token.connect(outsider).acceptDefaultAdminTransfer())
      .to.be.revertedWithCustomError(token, "AccessControlInvalidDefaultAdmin")
      .withArgs(outsider.address);

    const accept = token.connect(carol).acceptDefaultAdminTransfer();
    await expect(accept)
      .to.emit(token, "RoleRevoked")
      .withArgs(DEFAULT_ADMIN_ROLE, admin.address, carol.address);
    await expect(accept)
      .to.emit(token, "RoleGranted")
      .withArgs(DEFAULT_ADMIN_ROLE, carol.address, carol.address);
    expect(await token.defaultAdmin()).to.equal(carol.address);
    expect(await token.owner()).to.equal(carol.address);
    expect(await token.pendingDefaultAdmin()).to.deep.equal([ZERO_ADDRESS, 0n]);
    await expect(token.connect(admin).setBaseURI("ipfs://x/"))
      .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
      .withArgs(admin.address, DEFAULT_ADMIN_ROLE);
    await mined(token.connect(carol).grantRole(ISSUER_ROLE, outsider.address));
    expect(await token.hasRole(ISSUER_ROLE, outsider.address)).to.equal(true);
  });

  it("a cancelled transfer cannot be accepted", async function () {
    const { token, admin, carol } = await networkHelpers.loadFixture(deployed);
    await mined(token.connect(admin).beginDefaultAdminTransfer(carol.address));
    await expect(token.connect(admin).cancelDefaultAdminTransfer()).to.emit(
      token,
      "DefaultAdminTransferCanceled",
    );
    await time.increase(ADMIN_DELAY + 1n);
    await expect(token.connect(carol).acceptDefaultAdminTransfer())
      .to.be.revertedWithCustomError(token, "AccessControlInvalidDefaultAdmin")
      .withArgs(carol.address);
    expect(await token.defaultAdmin()).to.equal(admin.address);
  });

  it("refuses a one-step renounce; renouncing needs a scheduled transfer to zero and the delay", async function () {
    const { token, admin, DEFAULT_ADMIN_ROLE } = await networkHelpers.loadFixture(deployed);
    await expect(token.connect(admin).renounceRole(DEFAULT_ADMIN_ROLE, admin.address))
      .to.be.revertedWithCustomError(token, "AccessControlEnforcedDefaultAdminDelay")
      .withArgs(0n);
    const begin = await mined(token.connect(admin).beginDefaultAdminTransfer(ZERO_ADDRESS));
    const schedule = (await minedAt(begin)) + ADMIN_DELAY;
    await expect(token.connect(admin).renounceRole(DEFAULT_ADMIN_ROLE, admin.address))
      .to.be.revertedWithCustomError(token, "AccessControlEnforcedDefaultAdminDelay")
      .withArgs(schedule);
    expect(await token.defaultAdmin()).to.equal(admin.address);

    await time.increaseTo(schedule);
    await expect(token.connect(admin).renounceRole(DEFAULT_ADMIN_ROLE, admin.address))
      .to.emit(token, "RoleRevoked")
      .withArgs(DEFAULT_ADMIN_ROLE, admin.address, admin.address);
    expect(await token.defaultAdmin()).to.equal(ZERO_ADDRESS);
    await expect(token.connect(admin).setBaseURI("ipfs://x/"))
      .to.be.revertedWithCustomError(token, "AccessControlUnauthorizedAccount")
      .withArgs(admin.address, DEFAULT_ADMIN_ROLE);
  });

  it("a longer delay takes effect only after the increase wait (5 days at most)", async function () {
    const { token, admin } = await networkHelpers.loadFixture(deployed);
    const wait = (await token.defaultAdminDelayIncreaseWait()) as bigint;
    expect(wait).to.equal(5n * DAY);
    const change = await mined(token.connect(admin).changeDefaultAdminDelay(10n * DAY));
    const effect = (await minedAt(change)) + wait;
    await expect(change.hash)
      .to.emit(token, "DefaultAdminDelayChangeScheduled")
      .withArgs(10n * DAY, effect);
    expect(await token.pendingDefaultAdminDelay()).to.deep.equal([10n * DAY, effect]);
    expect(await token.defaultAdminDelay()).to.equal(ADMIN_DELAY);
    await time.increaseTo(effect + 1n);
    expect(await token.defaultAdminDelay()).to.equal(10n * DAY);
  });
});
