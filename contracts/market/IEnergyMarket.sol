// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Energy market: listings, signed orders, escrow and delivery
/// @notice Every trade, whether a buyer took a listing or the matching node settled two signed
///         orders, locks the buyer's payment here until the meter oracle reports what was
///         delivered. Trades are not stored as structs: each settlement stores one Merkle root
///         over its trades, and later calls present the trade and its proof. A trade's status
///         lives in a 4-bit slot of a packed word.
interface IEnergyMarket {
    // ------------------------------------------------------------------ types

    /// @notice A wallet's signed intent to buy or sell energy for one delivery window (EIP-712).
    /// @param maker The signer (EOA or ERC-1271 wallet) whose tokens or energy trade.
    /// @param side 0 = buy, 1 = sell.
    /// @param zone Grid zone; both sides of a fill must name the same zone.
    /// @param deliveryStart Unix seconds, start of the delivery window.
    /// @param deliveryEnd Unix seconds, end of the delivery window.
    /// @param energyWh Order size in watt-hours; fills add up to at most this.
    /// @param limitPricePerKWh Buy: the most it pays; sell: the least it accepts (token units per kWh).
    /// @param source Sell: the source sold (EnergySource), registered to the seller. Buy: 0.
    /// @param acceptedSources Buy: bitmask of acceptable sources, 0 = any. Sell: 0.
    /// @param minSellerReputationBps Buy: least seller reputation (delivered/contracted), 0 = any.
    /// @param nonce Makes the order unique; orders below the maker's nonce floor are void.
    /// @param expiry Unix seconds after which the order cannot fill.
    struct Order {
        address maker;
        uint8 side;
        bytes32 zone;
        uint64 deliveryStart;
        uint64 deliveryEnd;
        uint64 energyWh;
        uint128 limitPricePerKWh;
        uint8 source;
        uint8 acceptedSources;
        uint16 minSellerReputationBps;
        uint256 nonce;
        uint64 expiry;
    }

    /// @notice An order with its maker's signature.
    struct SignedOrder {
        Order order;
        bytes signature;
    }

    /// @notice One match chosen by the matching node: indexes into the batch's order list.
    struct Fill {
        uint32 buyIndex;
        uint32 sellIndex;
        uint64 energyWh;
        uint128 pricePerKWh;
    }

    /// @notice A trade as committed in a settlement's Merkle root. Every call about a trade
    ///         after its execution presents this struct with a proof.
    struct Trade {
        uint256 tradeId;
        uint256 batchId;
        address seller;
        address buyer;
        bytes32 zone;
        uint64 energyWh;
        uint128 pricePerKWh;
        uint256 amount;
        uint64 deliveryStart;
        uint64 deliveryEnd;
        uint8 source;
        uint16 communityFeeBps;
        uint128 networkFeePerKWh;
    }

    /// @notice A seller's fixed-price offer that any active buyer in the zone may take.
    struct Listing {
        address seller;
        uint64 remainingWh;
        uint8 source;
        bytes32 zone;
        uint96 pricePerKWh;
        uint40 deliveryStart;
        uint40 deliveryEnd;
        uint40 expiry;
    }

    /// @notice Where a trade is in its life. Settled and Refunded are final.
    enum TradeStatus {
        Open,
        Proposed,
        Contested,
        Settled,
        Refunded
    }

    /// @notice Why a fill of a batch was skipped. New reasons are appended, never inserted, so
    ///         the numbers in FillRejected events already indexed keep their meaning.
    ///         SellerExportLimit (22): the fill would take the seller's sales for the window past
    ///         its connection's export limit; BuyerImportLimit (23): the buyer's purchases past
    ///         its import limit (see connectionUse).
    enum RejectReason {
        None,
        InvalidIndex,
        SideMismatch,
        BadBuySignature,
        BadSellSignature,
        BuyOrderCancelled,
        SellOrderCancelled,
        BuyOrderExpired,
        SellOrderExpired,
        ZoneMismatch,
        WindowMismatch,
        PriceOutOfRange,
        ZeroEnergy,
        BuyOverfill,
        SellOverfill,
        SelfTrade,
        BuyerInactive,
        SellerInactive,
        SourceNotRegistered,
        SourceNotAccepted,
        ReputationTooLow,
        InsufficientFunds,
        SellerExportLimit,
        BuyerImportLimit
    }

    /// @notice One meter-oracle report in a batch of reports.
    struct DeliveryReport {
        Trade trade;
        bytes32[] proof;
        uint64 deliveredWh;
        bytes32 evidenceHash;
    }

    /// @notice Delivery record of a seller: reputation = deliveredWh / contractedWh.
    struct SellerRecord {
        uint128 contractedWh;
        uint128 deliveredWh;
    }

    /// @notice The dispute record of a trade in Proposed or Contested status.
    struct Dispute {
        uint64 deliveredWh;
        bool reported;
        uint64 deadline;
        address openedBy;
    }

    // ------------------------------------------------------------------ events

    event ListingCreated(
        uint256 indexed listingId,
        address indexed seller,
        bytes32 indexed zone,
        uint64 energyWh,
        uint96 pricePerKWh,
        uint40 deliveryStart,
        uint40 deliveryEnd,
        uint40 expiry,
        uint8 source
    );
    event ListingCancelled(uint256 indexed listingId, address indexed seller, uint64 remainingWh);
    event OrderCancelled(bytes32 indexed orderHash, address indexed maker);
    event NonceIncremented(address indexed maker, uint256 newNonceFloor);
    event FillRejected(
        uint256 indexed batchId, uint256 indexed fillIndex, bytes32 buyOrderHash, bytes32 sellOrderHash, RejectReason reason
    );
    event TradeExecuted(
        uint256 indexed tradeId,
        address indexed seller,
        address indexed buyer,
        bytes32 zone,
        uint64 energyWh,
        uint128 pricePerKWh,
        uint256 amount,
        uint64 deliveryStart,
        uint64 deliveryEnd,
        uint8 source,
        uint256 batchId
    );
    /// @notice A settlement committed `tradeCount` trades from `firstTradeId` under `root`.
    ///         Leaves are `keccak256(abi.encode(Trade))` in trade-id order, pairs hashed
    ///         commutatively; the fee terms are those every trade of the batch carries.
    event BatchSettled(
        uint256 indexed batchId,
        bytes32 root,
        uint256 firstTradeId,
        uint256 tradeCount,
        uint16 communityFeeBps,
        uint128 networkFeePerKWh
    );
    event DeliveryConfirmed(uint256 indexed tradeId, uint64 deliveredWh, bytes32 evidenceHash, bool withinTolerance);
    event DisputeOpened(
        uint256 indexed tradeId, address indexed openedBy, uint256 proposedSellerAmount, uint64 deadline, bytes32 reasonHash
    );
    event DisputeResolved(uint256 indexed tradeId, address indexed resolvedBy, uint256 sellerAmount, uint256 buyerAmount);
    event TradeSettled(
        uint256 indexed tradeId, uint256 sellerPayout, uint256 buyerRefund, uint256 communityFee, uint256 networkFee
    );
    event EarlyReleased(uint256 indexed tradeId, address indexed buyer);
    event TradeRefunded(uint256 indexed tradeId, address indexed buyer, uint256 amount);
    event FeesClaimed(address indexed recipient, uint256 amount);
    event DeliveryToleranceUpdated(uint16 toleranceBps);
    event FeesUpdated(
        uint16 communityFeeBps, address communityFeeRecipient, uint128 networkFeePerKWh, address networkFeeRecipient
    );
    event WindowsUpdated(uint64 confirmationWindow, uint64 disputeWindow, uint64 arbitrationTimeout);

    // ------------------------------------------------------------------ errors

    error ZeroAddress();
    error InvalidEnergy(uint256 energyWh);
    error InvalidPrice(uint256 pricePerKWh);
    error InvalidDeliveryWindow(uint256 deliveryStart, uint256 deliveryEnd);
    error InvalidExpiry(uint256 expiry, uint256 nowTimestamp);
    error InvalidSource(uint8 source);
    error SourceNotRegistered(address seller, uint8 source);
    error ProsumerNotActive(address account, bytes32 zone);
    error ListingNotFound(uint256 listingId);
    error ListingExpired(uint256 listingId, uint256 expiry);
    error NotListingSeller(uint256 listingId, address caller);
    error InsufficientListingEnergy(uint256 listingId, uint256 requestedWh, uint256 remainingWh);
    error CannotTradeWithSelf(address account);
    error NotOrderMaker(bytes32 orderHash, address caller);
    error OrderAlreadyCancelled(bytes32 orderHash);
    error NonceFloorNotRaised(uint256 current, uint256 requested);
    error InvalidTradeProof(uint256 tradeId, uint256 batchId);
    error InvalidTradeStatus(uint256 tradeId, TradeStatus status);
    error DeliveryNotEnded(uint256 tradeId, uint64 deliveryEnd);
    error ConfirmationDeadlineNotReached(uint256 tradeId, uint256 deadline);
    error DisputeWindowOpen(uint256 tradeId, uint256 deadline);
    error DisputeWindowClosed(uint256 tradeId, uint256 deadline);
    error NotTradeParty(uint256 tradeId, address caller);
    error NotBuyer(uint256 tradeId, address caller);
    error SplitExceedsAmount(uint256 tradeId, uint256 sellerAmount, uint256 amount);
    error ToleranceOutOfBounds(uint256 toleranceBps, uint256 maximum);
    error CommunityFeeOutOfBounds(uint256 feeBps, uint256 maximum);
    error NetworkFeeOutOfBounds(uint256 feePerKWh, uint256 maximum);
    error WindowOutOfBounds(uint256 window, uint256 minimum, uint256 maximum);
    error NothingToClaim(address recipient);
    error LengthMismatch(uint256 expected, uint256 actual);
    /// @notice A listing take of `requestedWh` would take `account` past the `limitWh` its
    ///         connection may carry in the delivery window, of which `usedWh` is already traded:
    ///         export when `account` is the listing's seller, import when it is the taker.
    error ConnectionLimitExceeded(address account, uint256 limitWh, uint256 usedWh, uint256 requestedWh);

    // ------------------------------------------------------------------ listings

    /// @notice Lists `energyWh` of `source` energy at a fixed price for one delivery window.
    ///         The listing expires at `expiry`, which must lie after now and no later than
    ///         the end of the delivery window.
    /// @return listingId The new listing's id.
    function createListing(
        bytes32 zone,
        uint64 energyWh,
        uint96 pricePerKWh,
        uint40 deliveryStart,
        uint40 deliveryEnd,
        uint40 expiry,
        uint8 source
    ) external returns (uint256 listingId);

    /// @notice Withdraws the seller's listing; what was already taken stays traded.
    function cancelListing(uint256 listingId) external;

    /// @notice Takes `energyWh` from a listing straight from the caller's wallet: the payment
    ///         moves into escrow and a trade is executed. The take counts against the seller's
    ///         export limit and the buyer's import limit for the window, as a batch fill does,
    ///         and reverts with ConnectionLimitExceeded past either.
    /// @return tradeId The new trade's id.
    function executeTrade(uint256 listingId, uint64 energyWh) external returns (uint256 tradeId);

    // ------------------------------------------------------------------ signed orders

    /// @notice Settles matched pairs of signed orders. MATCHER only. A fill that fails any check
    ///         is skipped with FillRejected and its reason; the rest of the batch goes through.
    ///         Each account may sell at most `exportLimitW * (deliveryEnd - deliveryStart) / 3600`
    ///         Wh (rounded down) and buy at most the same of its `importLimitW` for delivery in a
    ///         window, counted over every batch and listing take for that window's start; the
    ///         fill that would cross a limit is rejected (SellerExportLimit, BuyerImportLimit),
    ///         the fills before it stand.
    /// @return batchId This settlement's id, used even when every fill was rejected so that
    ///         FillRejected events never share an id with another settlement's trades.
    /// @return executed How many fills became trades.
    function settleBatch(SignedOrder[] calldata orders, Fill[] calldata fills)
        external
        returns (uint256 batchId, uint256 executed);

    /// @notice Cancels one of the caller's orders for good.
    function cancelOrder(Order calldata order) external;

    /// @notice Voids every order of the caller with a nonce below `newNonceFloor`.
    function raiseNonceFloor(uint256 newNonceFloor) external;

    // ------------------------------------------------------------------ escrow and delivery

    /// @notice The meter oracle reports delivered energy after the window, on an Open trade or
    ///         on one a party contested before any report. Within tolerance the seller is paid in
    ///         full at once, contested or not. Below it, an Open trade moves to Proposed with a
    ///         pro-rata proposal; a contested one stays Contested with the report as the
    ///         arbiter's evidence (and the pro-rata fallback if the arbiter does not decide).
    function reportDelivery(Trade calldata trade, bytes32[] calldata proof, uint64 deliveredWh, bytes32 evidenceHash)
        external;

    /// @notice Several reports in one transaction (same rules as reportDelivery each).
    function reportDeliveries(DeliveryReport[] calldata reports) external;

    /// @notice Buyer or seller disputes an open trade after its delivery window, or contests a
    ///         proposal within its dispute window. A contest before any report does not stop the
    ///         meter's report (see reportDelivery) nor the buyer's refund (see reclaim).
    function openDispute(Trade calldata trade, bytes32[] calldata proof, bytes32 reasonHash) external;

    /// @notice Anyone finalises an uncontested proposal after its window, or a contested dispute
    ///         the arbiter left undecided past the arbitration timeout: the seller gets the
    ///         pro-rata amount of the reported energy, nothing when the meter never reported.
    function finalizeDispute(Trade calldata trade, bytes32[] calldata proof) external;

    /// @notice The arbiter splits a disputed trade: `sellerAmount` to the seller (before fees),
    ///         the rest back to the buyer.
    function resolveDispute(Trade calldata trade, bytes32[] calldata proof, uint256 sellerAmount) external;

    /// @notice The buyer pays the seller in full before or instead of a report.
    function releaseEarly(Trade calldata trade, bytes32[] calldata proof) external;

    /// @notice Refunds the buyer in full when no report came by the confirmation deadline
    ///         (`deliveryEnd` + the confirmation window). Anyone may call it, a keeper as well as
    ///         the buyer; the payment only ever goes to `trade.buyer`. Allowed on an Open trade,
    ///         and on a Contested one without a meter report: a contest before any report must
    ///         not hold the buyer's money until the arbitration timeout. A reported trade
    ///         (Proposed, or Contested with a report) is for the dispute rules instead.
    function reclaim(Trade calldata trade, bytes32[] calldata proof) external;

    /// @notice Pays the caller's accrued fees.
    function claimFees() external;
}
