// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @dev Interface of the https://eips.ethereum.org/EIPS/eip-5643[ERC-5643] Subscription NFTs standard.
 *
 * The ERC-165 identifier for this interface is `0x8c65f84d`.
 */
interface IERC5643 {
    /// @notice Emitted when a subscription expiration changes.
    event SubscriptionUpdate(uint256 indexed tokenId, uint64 expiration);

    /// @notice Renews the subscription to an NFT. Throws if `tokenId` is not a valid NFT.
    /// @param tokenId The NFT to renew the subscription for.
    /// @param duration The number of seconds to extend a subscription for.
    function renewSubscription(uint256 tokenId, uint64 duration) external payable;

    /// @notice Cancels the subscription of an NFT. Throws if `tokenId` is not a valid NFT.
    /// @param tokenId The NFT to cancel the subscription for.
    function cancelSubscription(uint256 tokenId) external payable;

    /// @notice Gets the expiration date of a subscription. Throws if `tokenId` is not a valid NFT.
    /// @param tokenId The NFT to get the expiration date of.
    /// @return The expiration date of the subscription.
    function expiresAt(uint256 tokenId) external view returns (uint64);

    /// @notice Determines whether a subscription can be renewed. Throws if `tokenId` is not a valid NFT.
    /// @param tokenId The NFT to get the renewability of.
    /// @return The renewability of the subscription.
    function isRenewable(uint256 tokenId) external view returns (bool);
}
