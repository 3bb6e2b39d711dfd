import { expect } from "chai";
import { network } from "hardhat";
import LicenseTokenModule from "../../ignition/modules/LicenseToken.js";
import type { LicenseTokenContract } from "./helpers.js";

const { ethers, ignition } = await network.create();

describe("Ignition module LicenseTokenModule", function () {
  it("deploys with the deployer as admin and no issuer by default", async function () {
    const [deployer, someone] = await ethers.getSigners();
    const { licenseToken } = await ignition.deploy(LicenseTokenModule);
    const token = licenseToken as unknown as LicenseTokenContract;
    const ISSUER_ROLE = await token.ISSUER_ROLE();
    expect(await token.hasRole(await token.DEFAULT_ADMIN_ROLE(), deployer!.address)).to.equal(true);
    expect(await token.hasRole(ISSUER_ROLE, deployer!.address)).to.equal(false);
    expect(await token.hasRole(ISSUER_ROLE, someone!.address)).to.equal(false);
    expect(await token.nextTokenId()).to.equal(1n);
    expect(await token.defaultAdminDelay()).to.equal(3n * 86_400n); // the module's default
  });

  it("takes admin, issuer, base URI and admin delay as parameters", async function () {
    const [, admin, issuer] = await ethers.getSigners();
    const { licenseToken } = await ignition.deploy(LicenseTokenModule, {
      parameters: {
        LicenseTokenModule: {
          admin: admin!.address,
          issuer: issuer!.address,
          baseURI: "ipfs://lic/",
          adminDelay: 3600n,
        },
      },
      deploymentId: "with-parameters",
    });
    const token = licenseToken as unknown as LicenseTokenContract;
    expect(await token.hasRole(await token.DEFAULT_ADMIN_ROLE(), admin!.address)).to.equal(true);
    expect(await token.hasRole(await token.ISSUER_ROLE(), issuer!.address)).to.equal(true);
    await (
      await token.connect(issuer!).issue(admin!.address, {
        productId: 1n,
        expiresAt: 0n,
        seats: 1n,
        locked: false,
        termsHash: ethers.id("t"),
        requestRef: ethers.ZeroHash,
      })
    ).wait();
    const { chainId } = await ethers.provider.getNetwork();
    const address = (await token.getAddress()).toLowerCase();
    expect(await token.tokenURI(1n)).to.equal(`ipfs://lic/${chainId}/${address}/1`);
    expect(await token.defaultAdminDelay()).to.equal(3600n);
  });
});
