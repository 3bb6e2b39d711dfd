/**
 * Hardhat Ignition module for the license token.
 *
 *   npx hardhat ignition deploy ignition/modules/LicenseToken.ts --network <name> \
 *     --parameters '{"LicenseTokenModule":{"issuer":"0x…","baseURI":"https://…/"}}'
 *
 * Parameters: `admin` (default: the deploying account), `issuer` (default: none; grant ISSUER_ROLE
 * later), `baseURI` (default: empty; a token's URI is `{baseURI}{chainId}/{contract}/{tokenId}`),
 * `adminDelay` (seconds before a new default admin may accept, default 3 days). For several chains at once and the deployments file the licensing
 * service reads, use `scripts/deploy.ts`.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

const NO_ISSUER = "0x0000000000000000000000000000000000000000";
/** Same default as scripts/deploy.ts: 3 days. */
const DEFAULT_ADMIN_DELAY = 3n * 24n * 3600n;

export default buildModule("LicenseTokenModule", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const issuer = m.getParameter("issuer", NO_ISSUER);
  const baseURI = m.getParameter("baseURI", "");
  const adminDelay = m.getParameter("adminDelay", DEFAULT_ADMIN_DELAY);
  const licenseToken = m.contract("LicenseToken", [admin, issuer, baseURI, adminDelay]);
  return { licenseToken };
});
