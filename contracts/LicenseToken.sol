// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC4906} from "@openzeppelin/contracts/interfaces/IERC4906.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IERC5192} from "./interfaces/IERC5192.sol";
import {IERC5643} from "./interfaces/IERC5643.sol";
import {ILicenseToken} from "./ILicenseToken.sol";

/**
 * @title LicenseToken
 * @notice Software licenses as ERC-721 tokens. Anyone can check on-chain who holds a license, for which
 * product, until when, and whether it was revoked ({license}, {isValid}).
 *
 * @dev Composition of OpenZeppelin's {ERC721} and {AccessControlDefaultAdminRules} with:
 *
 * - ERC-5643 subscriptions: the issuer renews ({renewSubscription}); the licensee or the issuer cancels
 *   ({cancelSubscription}). `SubscriptionUpdate` is emitted whenever an expiration is set or changes,
 *   including at issue. Perpetual licenses (`expiresAt == 0`) have no subscription and no such event.
 * - ERC-5192 locking: a per-license non-transferable flag ({lock}, {unlock}, {locked}); every mint emits
 *   `Locked` or `Unlocked`, as the ERC asks.
 * - ERC-4906: `MetadataUpdate` whenever a license record changes after issue; `BatchMetadataUpdate` when the
 *   base URI changes.
 * - Token URIs that name the chain and the contract: `{baseURI}{chainId}/{contract}/{tokenId}` ({_baseURI}),
 *   since the same address on two chains holds different licenses.
 *
 * Roles: `DEFAULT_ADMIN_ROLE` (exactly one account, moved only by a two-step transfer after a delay, see
 * {AccessControlDefaultAdminRules}) grants and revokes roles and sets the base URI; `ISSUER_ROLE` (the
 * licensing service's signer on this chain) issues, renews, revokes, locks and unlocks.
 *
 * Licenses are minted with {ERC721-_mint}, never `_safeMint`: issuing makes no external call, so a licensee
 * contract cannot re-enter through `onERC721Received`. Token ids are sequential from 1, so the ids of a batch
 * are `firstTokenId .. firstTokenId + n - 1`, and every license also has its own `Transfer` and {LicenseIssued}
 * events in the receipt.
 *
 * All transfer rules live in {_update}.
 */
contract LicenseToken is
    ERC721,
    AccessControlDefaultAdminRules,
    IERC4906,
    IERC5192,
    IERC5643,
    ILicenseToken
{
    using Strings for uint256;

    /// @notice Role of the accounts that issue, renew, revoke, lock and unlock licenses.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    /// @dev ERC-4906 defines this constant as its ERC-165 identifier (the interface has no functions).
    bytes4 private constant _ERC4906_INTERFACE_ID = bytes4(0x49064906);

    mapping(uint256 tokenId => License) private _licenses;
    mapping(bytes32 requestRef => uint256 tokenId) private _tokenOfRequest;
    uint256 private _nextTokenId = 1;
    string private _baseTokenURI;

    /**
     * @param admin Receives `DEFAULT_ADMIN_ROLE`: the only default admin, also the ERC-5313 `owner`.
     * @param issuer Receives `ISSUER_ROLE`, unless it is the zero address.
     * @param baseURI Initial base of the token URIs (may be empty: `tokenURI` then returns "").
     * @param adminDelay Seconds between {beginDefaultAdminTransfer} and the moment the new admin may accept
     * (also before the admin may renounce); the deploy script and the Ignition module default to 3 days.
     *
     * Requirements:
     *
     * - `admin` is not the zero address ({IAccessControlDefaultAdminRules-AccessControlInvalidDefaultAdmin}).
     */
    constructor(
        address admin,
        address issuer,
        string memory baseURI,
        uint48 adminDelay
    ) ERC721("Software License", "LICENSE") AccessControlDefaultAdminRules(adminDelay, admin) {
        if (issuer != address(0)) {
            _grantRole(ISSUER_ROLE, issuer);
        }
        _baseTokenURI = baseURI;
    }

    // ---------------------------------------------------------------- issue

    /**
     * @inheritdoc ILicenseToken
     * @dev Requirements:
     *
     * - the caller has `ISSUER_ROLE`.
     * - `licensee` is not the zero address.
     * - `terms.termsHash` is not zero; `terms.expiresAt` is 0 or in the future.
     * - `terms.requestRef` is 0 or not used by another license.
     *
     * Emits {IERC721-Transfer}, {LicenseIssued}, {IERC5192-Locked} or {IERC5192-Unlocked} (the initial
     * locking status) and, unless the license is perpetual, {IERC5643-SubscriptionUpdate} with its expiry.
     */
    function issue(
        address licensee,
        LicenseTerms calldata terms
    ) external onlyRole(ISSUER_ROLE) returns (uint256 tokenId) {
        tokenId = _nextTokenId;
        _issue(licensee, terms, tokenId);
        _nextTokenId = tokenId + 1;
    }

    /**
     * @inheritdoc ILicenseToken
     * @dev Token ids are `firstTokenId + i` for `licensees[i]`. The batch is all-or-nothing.
     *
     * Requirements:
     *
     * - the caller has `ISSUER_ROLE`.
     * - `licensees` and `terms` are non-empty and of equal length.
     * - every entry meets the requirements of {issue}; request references are unique within the batch too.
     *
     * Emits, per license, the events of {issue}.
     */
    function issueBatch(
        address[] calldata licensees,
        LicenseTerms[] calldata terms
    ) external onlyRole(ISSUER_ROLE) returns (uint256 firstTokenId) {
        uint256 count = licensees.length;
        if (count == 0) {
            revert LicenseEmptyBatch();
        }
        if (count != terms.length) {
            revert LicenseBatchLengthMismatch(count, terms.length);
        }
        firstTokenId = _nextTokenId;
        for (uint256 i = 0; i < count; ++i) {
            _issue(licensees[i], terms[i], firstTokenId + i);
        }
        _nextTokenId = firstTokenId + count;
    }

    // ---------------------------------------------------------------- issuer operations

    /**
     * @inheritdoc ILicenseToken
     * @dev A revoked license is never valid, cannot be transferred, and its record is frozen. {locked}
     * reports it as locked.
     *
     * Requirements:
     *
     * - the caller has `ISSUER_ROLE`.
     * - `tokenId` exists and is not revoked.
     *
     * Emits {LicenseRevoked}, {IERC5192-Locked} (unless it was already locked) and {IERC4906-MetadataUpdate}.
     */
    function revoke(uint256 tokenId, bytes32 reason) external onlyRole(ISSUER_ROLE) {
        License storage record = _existingLicense(tokenId);
        if (record.revoked) {
            revert LicenseIsRevoked(tokenId);
        }
        record.revoked = true;
        emit LicenseRevoked(tokenId, reason);
        if (!record.locked) {
            emit Locked(tokenId);
        }
        emit MetadataUpdate(tokenId);
    }

    /**
     * @inheritdoc ILicenseToken
     * @dev Requirements:
     *
     * - the caller has `ISSUER_ROLE`.
     * - `tokenId` exists, is not revoked and is not locked.
     *
     * Emits {IERC5192-Locked} and {IERC4906-MetadataUpdate}.
     */
    function lock(uint256 tokenId) external onlyRole(ISSUER_ROLE) {
        _setLocked(tokenId, true);
    }

    /**
     * @inheritdoc ILicenseToken
     * @dev Requirements:
     *
     * - the caller has `ISSUER_ROLE`.
     * - `tokenId` exists, is not revoked and is locked.
     *
     * Emits {IERC5192-Unlocked} and {IERC4906-MetadataUpdate}.
     */
    function unlock(uint256 tokenId) external onlyRole(ISSUER_ROLE) {
        _setLocked(tokenId, false);
    }

    /**
     * @notice Extends license `tokenId` by `duration` seconds: from its expiry if it is still valid, from now
     * if it already expired (or was cancelled).
     * @dev Only the issuer renews: renewal follows a payment made off-chain to the licensing service.
     *
     * Requirements:
     *
     * - the caller has `ISSUER_ROLE`; no ether is sent.
     * - `tokenId` exists, is not revoked and is not perpetual.
     * - `duration` is not zero and the new expiry fits in a `uint64`.
     *
     * Emits {IERC5643-SubscriptionUpdate} and {IERC4906-MetadataUpdate}.
     */
    function renewSubscription(uint256 tokenId, uint64 duration) external payable onlyRole(ISSUER_ROLE) {
        _requireNoValue();
        License storage record = _subscription(tokenId);
        if (duration == 0) {
            revert LicenseInvalidDuration(duration);
        }
        uint256 current = record.expiresAt;
        uint256 newExpiry = (current > block.timestamp ? current : block.timestamp) + duration;
        if (newExpiry > type(uint64).max) {
            revert LicenseExpiryOverflow(tokenId, newExpiry);
        }
        record.expiresAt = uint64(newExpiry);
        emit SubscriptionUpdate(tokenId, uint64(newExpiry));
        emit MetadataUpdate(tokenId);
    }

    /**
     * @notice Ends the subscription of license `tokenId` now: its expiry becomes the current block time, so
     * it is no longer valid. The issuer may renew it later.
     * @dev Who may cancel: the licensee (the current holder, giving up their own license) or an issuer. An
     * account approved for the token (ERC-721 approval or operator) may not: a marketplace approval must not
     * end a license. ERC-5643 suggests an expiration of 0 for a cancelled subscription, but 0 means perpetual
     * here, so the event carries the actual end time.
     *
     * Requirements:
     *
     * - no ether is sent; `tokenId` exists.
     * - the caller holds `tokenId` or has `ISSUER_ROLE`.
     * - the license is not revoked, not perpetual and not yet expired.
     *
     * Emits {IERC5643-SubscriptionUpdate}, {LicenseCancelled} and {IERC4906-MetadataUpdate}.
     */
    function cancelSubscription(uint256 tokenId) external payable {
        _requireNoValue();
        address holder = _requireOwned(tokenId);
        address caller = _msgSender();
        if (caller != holder && !hasRole(ISSUER_ROLE, caller)) {
            revert LicenseUnauthorizedCancel(caller, tokenId);
        }
        License storage record = _subscription(tokenId);
        uint64 expiry = record.expiresAt;
        if (expiry <= block.timestamp) {
            revert LicenseAlreadyExpired(tokenId, expiry);
        }
        uint64 now_ = uint64(block.timestamp);
        record.expiresAt = now_;
        emit SubscriptionUpdate(tokenId, now_);
        emit LicenseCancelled(tokenId, caller);
        emit MetadataUpdate(tokenId);
    }

    // ---------------------------------------------------------------- admin

    /**
     * @inheritdoc ILicenseToken
     * @dev Requirements:
     *
     * - the caller has `DEFAULT_ADMIN_ROLE`.
     *
     * Emits {BaseURIUpdated} and {IERC4906-BatchMetadataUpdate} for all token ids.
     */
    function setBaseURI(string calldata baseURI) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _baseTokenURI = baseURI;
        emit BaseURIUpdated(baseURI);
        emit BatchMetadataUpdate(1, type(uint256).max);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ILicenseToken
    /// @dev Reverts with {IERC721Errors-ERC721NonexistentToken} if `tokenId` does not exist.
    function license(uint256 tokenId) external view returns (License memory) {
        return _existingLicense(tokenId);
    }

    /// @inheritdoc ILicenseToken
    /// @dev A license is valid while `block.timestamp < expiresAt`; never reverts.
    function isValid(uint256 tokenId) external view returns (bool) {
        if (_ownerOf(tokenId) == address(0)) {
            return false;
        }
        License storage record = _licenses[tokenId];
        uint64 expiry = record.expiresAt;
        return !record.revoked && (expiry == 0 || block.timestamp < expiry);
    }

    /// @inheritdoc ILicenseToken
    function tokenOfRequest(bytes32 requestRef) external view returns (uint256) {
        return _tokenOfRequest[requestRef];
    }

    /// @inheritdoc ILicenseToken
    function nextTokenId() external view returns (uint256) {
        return _nextTokenId;
    }

    /// @inheritdoc IERC5643
    /// @dev 0 for a perpetual license. Reverts with {IERC721Errors-ERC721NonexistentToken} for unknown ids.
    function expiresAt(uint256 tokenId) external view returns (uint64) {
        return _existingLicense(tokenId).expiresAt;
    }

    /// @inheritdoc IERC5643
    /// @dev True for a subscription license (not perpetual) that is not revoked, expired or not.
    function isRenewable(uint256 tokenId) external view returns (bool) {
        License storage record = _existingLicense(tokenId);
        return !record.revoked && record.expiresAt != 0;
    }

    /// @inheritdoc IERC5192
    /// @dev A revoked license is reported as locked, since it cannot be transferred either.
    function locked(uint256 tokenId) external view returns (bool) {
        License storage record = _existingLicense(tokenId);
        return record.locked || record.revoked;
    }

    /// @inheritdoc IERC165
    function supportsInterface(
        bytes4 interfaceId
    ) public view override(ERC721, AccessControlDefaultAdminRules, IERC165) returns (bool) {
        return
            interfaceId == _ERC4906_INTERFACE_ID ||
            interfaceId == type(IERC5192).interfaceId ||
            interfaceId == type(IERC5643).interfaceId ||
            super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internal

    /**
     * @dev The single place of the transfer policy. Applies to every change of owner of an existing token
     * (`transferFrom`, `safeTransferFrom`): a revoked license cannot move ({LicenseIsRevoked}), nor can a
     * locked one ({LicenseIsLocked}). Minting (no previous owner) is not restricted here.
     */
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        if (_ownerOf(tokenId) != address(0)) {
            License storage record = _licenses[tokenId];
            if (record.revoked) {
                revert LicenseIsRevoked(tokenId);
            }
            if (record.locked) {
                revert LicenseIsLocked(tokenId);
            }
        }
        return super._update(to, tokenId, auth);
    }

    /**
     * @dev The base of {ERC721-tokenURI}, which appends the token id: `{baseURI}{chainId}/{contract}/`, the
     * chain id in decimal and this contract's address in lower-case hex, so token 1 on two chains (same
     * address everywhere) has two URIs. Empty when no base URI is set, so `tokenURI` returns "".
     */
    function _baseURI() internal view override returns (string memory) {
        string memory base = _baseTokenURI;
        if (bytes(base).length == 0) {
            return "";
        }
        return string.concat(base, block.chainid.toString(), "/", Strings.toHexString(address(this)), "/");
    }

    /// @dev Validates `terms` and mints license `tokenId` to `licensee`, without a receiver callback.
    function _issue(address licensee, LicenseTerms calldata terms, uint256 tokenId) private {
        if (terms.termsHash == bytes32(0)) {
            revert LicenseEmptyTermsHash(tokenId);
        }
        uint64 expiry = terms.expiresAt;
        if (expiry != 0 && expiry <= block.timestamp) {
            revert LicenseInvalidExpiry(tokenId, expiry, block.timestamp);
        }
        bytes32 requestRef = terms.requestRef;
        if (requestRef != bytes32(0)) {
            uint256 existing = _tokenOfRequest[requestRef];
            if (existing != 0) {
                revert LicenseDuplicateRequest(requestRef, existing);
            }
            _tokenOfRequest[requestRef] = tokenId;
        }

        _mint(licensee, tokenId);

        bool isLocked = terms.locked;
        _licenses[tokenId] = License({
            productId: terms.productId,
            issuedAt: uint64(block.timestamp),
            expiresAt: expiry,
            seats: terms.seats,
            locked: isLocked,
            revoked: false,
            termsHash: terms.termsHash
        });
        emit LicenseIssued(tokenId, licensee, requestRef, terms.productId, expiry);
        // ERC-5192: a mint announces the locking status either way.
        if (isLocked) {
            emit Locked(tokenId);
        } else {
            emit Unlocked(tokenId);
        }
        // ERC-5643: the expiration is set (a perpetual license has none, so no event).
        if (expiry != 0) {
            emit SubscriptionUpdate(tokenId, expiry);
        }
    }

    /// @dev Sets the locking status of an existing, non-revoked license; emits {IERC5192-Locked} or
    /// {IERC5192-Unlocked}, then {IERC4906-MetadataUpdate}.
    function _setLocked(uint256 tokenId, bool isLocked) private {
        License storage record = _existingLicense(tokenId);
        if (record.revoked) {
            revert LicenseIsRevoked(tokenId);
        }
        if (record.locked == isLocked) {
            revert LicenseLockUnchanged(tokenId, isLocked);
        }
        record.locked = isLocked;
        if (isLocked) {
            emit Locked(tokenId);
        } else {
            emit Unlocked(tokenId);
        }
        emit MetadataUpdate(tokenId);
    }

    /// @dev The record of an existing, non-revoked, non-perpetual license.
    function _subscription(uint256 tokenId) private view returns (License storage record) {
        record = _existingLicense(tokenId);
        if (record.revoked) {
            revert LicenseIsRevoked(tokenId);
        }
        if (record.expiresAt == 0) {
            revert LicensePerpetual(tokenId);
        }
    }

    /// @dev The record of `tokenId`; reverts with {IERC721Errors-ERC721NonexistentToken} if it does not exist.
    function _existingLicense(uint256 tokenId) private view returns (License storage) {
        _requireOwned(tokenId);
        return _licenses[tokenId];
    }

    /// @dev ERC-5643 declares its functions `payable`; this contract takes no ether.
    function _requireNoValue() private view {
        if (msg.value != 0) {
            revert LicenseNonPayable(msg.value);
        }
    }
}
