// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @dev Types, events, errors and functions of {LicenseToken} beyond the ERC standards it implements
 * (ERC-721 with Metadata, ERC-4906, ERC-5192, ERC-5643, AccessControlDefaultAdminRules).
 *
 * A license's identity is the triple (chain id, contract address, token id).
 */
interface ILicenseToken {
    /**
     * @dev What the issuer supplies for one license.
     *
     * - `productId`: the licensed product, as numbered by the licensing service.
     * - `expiresAt`: unix time (seconds) at which the license stops being valid; 0 = perpetual.
     * - `seats`: number of seats (or a features bitmap); its meaning is defined by the product.
     * - `locked`: non-transferable from the start (ERC-5192).
     * - `termsHash`: digest of the off-chain license terms; must not be zero.
     * - `requestRef`: the service's reference of the issue request; 0 = none. A non-zero reference can be
     *   used by one license only (see {tokenOfRequest}).
     */
    struct LicenseTerms {
        uint64 productId;
        uint64 expiresAt;
        uint32 seats;
        bool locked;
        bytes32 termsHash;
        bytes32 requestRef;
    }

    /**
     * @dev The on-chain license record, stored in two slots (the first holds every field but `termsHash`).
     * `issuedAt` is the timestamp of the block that issued the license; `revoked` is final.
     */
    struct License {
        uint64 productId;
        uint64 issuedAt;
        uint64 expiresAt;
        uint32 seats;
        bool locked;
        bool revoked;
        bytes32 termsHash;
    }

    /// @dev Emitted once per issued license, after its ERC-721 `Transfer` event and before its ERC-5192
    /// `Locked`/`Unlocked` and (unless perpetual) ERC-5643 `SubscriptionUpdate` events.
    event LicenseIssued(
        uint256 indexed tokenId,
        address indexed licensee,
        bytes32 indexed requestRef,
        uint64 productId,
        uint64 expiresAt
    );

    /// @dev Emitted when the issuer revokes a license. `reason` is a code defined by the licensing service.
    event LicenseRevoked(uint256 indexed tokenId, bytes32 reason);

    /// @dev Emitted when a subscription is cancelled by `by` (the licensee or an issuer).
    event LicenseCancelled(uint256 indexed tokenId, address indexed by);

    /// @dev Emitted when the admin changes the base URI of all token URIs.
    event BaseURIUpdated(string baseURI);

    /// @dev A batch has no licenses.
    error LicenseEmptyBatch();

    /// @dev A batch has a different number of licensees and license terms.
    error LicenseBatchLengthMismatch(uint256 licensees, uint256 terms);

    /// @dev The license that would get `tokenId` has no terms hash.
    error LicenseEmptyTermsHash(uint256 tokenId);

    /// @dev The license that would get `tokenId` would already be expired at `currentTime`.
    error LicenseInvalidExpiry(uint256 tokenId, uint64 expiresAt, uint256 currentTime);

    /// @dev The request reference `requestRef` was already used by license `tokenId`.
    error LicenseDuplicateRequest(bytes32 requestRef, uint256 tokenId);

    /// @dev License `tokenId` is revoked: it cannot be transferred, renewed, cancelled, locked or unlocked.
    error LicenseIsRevoked(uint256 tokenId);

    /// @dev License `tokenId` is locked (ERC-5192) and cannot be transferred.
    error LicenseIsLocked(uint256 tokenId);

    /// @dev License `tokenId` already has the locking status `locked`.
    error LicenseLockUnchanged(uint256 tokenId, bool locked);

    /// @dev License `tokenId` is perpetual: it has no subscription to renew or cancel.
    error LicensePerpetual(uint256 tokenId);

    /// @dev A renewal must extend the license by at least one second.
    error LicenseInvalidDuration(uint64 duration);

    /// @dev Renewing license `tokenId` would set an expiry `expiresAt` beyond `type(uint64).max`.
    error LicenseExpiryOverflow(uint256 tokenId, uint256 expiresAt);

    /// @dev License `tokenId` already expired at `expiresAt`: there is nothing left to cancel.
    error LicenseAlreadyExpired(uint256 tokenId, uint64 expiresAt);

    /// @dev `caller` is neither the holder of license `tokenId` nor an issuer.
    error LicenseUnauthorizedCancel(address caller, uint256 tokenId);

    /// @dev The (ERC-5643 `payable`) function was called with `value` wei; the contract accepts no ether.
    error LicenseNonPayable(uint256 value);

    /// @notice Issues one license to `licensee` and returns its token id.
    function issue(address licensee, LicenseTerms calldata terms) external returns (uint256 tokenId);

    /// @notice Issues `licensees.length` licenses with sequential token ids and returns the first one.
    function issueBatch(
        address[] calldata licensees,
        LicenseTerms[] calldata terms
    ) external returns (uint256 firstTokenId);

    /// @notice Revokes license `tokenId` for good.
    function revoke(uint256 tokenId, bytes32 reason) external;

    /// @notice Makes license `tokenId` non-transferable.
    function lock(uint256 tokenId) external;

    /// @notice Makes license `tokenId` transferable again.
    function unlock(uint256 tokenId) external;

    /// @notice Sets the base of all token URIs (`baseURI` + chain id + "/" + contract + "/" + token id).
    function setBaseURI(string calldata baseURI) external;

    /// @notice The license record of `tokenId`.
    function license(uint256 tokenId) external view returns (License memory);

    /// @notice True exactly when `tokenId` exists, is not revoked, and is perpetual or not yet expired.
    function isValid(uint256 tokenId) external view returns (bool);

    /// @notice The token id issued for `requestRef`, or 0 if none was.
    function tokenOfRequest(bytes32 requestRef) external view returns (uint256);

    /// @notice The token id the next issued license will get.
    function nextTokenId() external view returns (uint256);
}
