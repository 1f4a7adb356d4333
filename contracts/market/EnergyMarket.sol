// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IEnergyMarket} from "./IEnergyMarket.sol";
import {IProsumerRegistry} from "../registry/IProsumerRegistry.sol";
import {EnergyMath} from "../libraries/EnergyMath.sol";
import {EnergySource} from "../libraries/EnergySource.sol";

/// @title EnergyMarket
/// @notice Listings, batch settlement of EIP-712 orders, escrow, delivery reports and disputes.
///         Gas shapes the storage: a settlement writes one Merkle root for all its trades,
///         one fill counter per order, one connection-use slot per account and window, and
///         one token transfer per buyer; trade statuses share packed words (64 trades per slot).
contract EnergyMarket is IEnergyMarket, AccessControl, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant MATCHER_ROLE = keccak256("MATCHER_ROLE");
    bytes32 public constant METER_ORACLE_ROLE = keccak256("METER_ORACLE_ROLE");
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address maker,uint8 side,bytes32 zone,uint64 deliveryStart,uint64 deliveryEnd,uint64 energyWh,"
        "uint128 limitPricePerKWh,uint8 source,uint8 acceptedSources,uint16 minSellerReputationBps,uint256 nonce,"
        "uint64 expiry)"
    );

    uint8 public constant SIDE_BUY = 0;
    uint8 public constant SIDE_SELL = 1;
    uint16 public constant MAX_TOLERANCE_BPS = 2_000;
    uint16 public constant MAX_COMMUNITY_FEE_BPS = 1_000;
    uint64 public constant MIN_WINDOW = 1 hours;
    uint64 public constant MAX_WINDOW = 90 days;
    /// @notice Reputation of a seller with no reported delivery yet. Registration is vetted by
    ///         the registrar, so a new seller is a known household, not an anonymous account.
    uint16 public constant NEW_SELLER_REPUTATION_BPS = 10_000;

    /// @dev A cancelled order's fill counter: larger than any order size.
    uint256 private constant CANCELLED = type(uint256).max;
    /// @dev Bit offsets of the sold and the bought total in a `_connectionUse` word.
    uint256 private constant SOLD = 0;
    uint256 private constant BOUGHT = 128;

    IERC20 public immutable paymentToken;
    IProsumerRegistry public immutable registry;
    uint128 public immutable maxNetworkFeePerKWh;

    uint16 private _toleranceBps = 500;
    uint16 private _communityFeeBps;
    uint128 private _networkFeePerKWh;
    address private _communityFeeRecipient;
    address private _networkFeeRecipient;
    uint64 private _confirmationWindow = 2 days;
    uint64 private _disputeWindow = 1 days;
    uint64 private _arbitrationTimeout = 14 days;

    uint256 private _nextListingId = 1;
    uint256 private _nextTradeId = 1;
    uint256 private _nextBatchId = 1;
    uint256 private _escrowedTotal;
    uint256 private _feesOutstanding;

    mapping(uint256 listingId => Listing) private _listings;
    mapping(bytes32 orderHash => uint256 filledWh) private _filledWh;
    mapping(address maker => uint256) private _nonceFloor;
    mapping(uint256 batchId => bytes32 root) private _batchRoots;
    mapping(uint256 word => uint256 statuses) private _statusWords;
    mapping(uint256 tradeId => Dispute) private _disputes;
    mapping(address seller => SellerRecord) private _sellerRecords;
    mapping(address recipient => uint256) private _feesOwed;
    /// @dev What each account has sold (low 128 bits) and bought (high 128 bits) for delivery in
    ///      the window starting at `deliveryStart`: one slot per account and window, read and
    ///      written by every fill and listing take.
    mapping(address account => mapping(uint64 deliveryStart => uint256 soldAndBought)) private _connectionUse;

    /// @dev Per-order facts while a batch is processed, worked out once per order index. The
    ///      fill counter is not cached: it is read from and written to storage at each fill, so
    ///      an order listed twice in one batch still cannot fill past its size (a second touch
    ///      of a slot costs 100 gas).
    struct OrderState {
        bytes32 hash;
        bool loaded;
        bool signatureValid;
        bool makerVerified;
        /// The maker's connection limit for the order's window, in Wh: export for a sell
        /// order, import for a buy; set with makerVerified.
        uint256 limitWh;
    }

    /// @dev Per-buyer payment while a batch is processed: one transferFrom per buyer.
    struct Payer {
        address account;
        uint256 budget;
        uint256 owed;
    }

    struct BatchContext {
        uint256 batchId;
        uint256 firstTradeId;
        uint256 tradeCount;
        uint256 payerCount;
        uint256 total;
        uint16 communityFeeBps;
        uint128 networkFeePerKWh;
        OrderState[] orders;
        Payer[] payers;
        bytes32[] leaves;
    }

    constructor(address admin, IERC20 token, IProsumerRegistry prosumerRegistry, uint128 maxNetworkFee)
        EIP712("EnergyMarket", "1")
    {
        if (admin == address(0) || address(token) == address(0) || address(prosumerRegistry) == address(0)) {
            revert ZeroAddress();
        }
        paymentToken = token;
        registry = prosumerRegistry;
        maxNetworkFeePerKWh = maxNetworkFee;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ================================================================== listings

    /// @inheritdoc IEnergyMarket
    function createListing(
        bytes32 zone,
        uint64 energyWh,
        uint96 pricePerKWh,
        uint40 deliveryStart,
        uint40 deliveryEnd,
        uint40 expiry,
        uint8 source
    ) external whenNotPaused returns (uint256 listingId) {
        if (energyWh == 0) revert InvalidEnergy(energyWh);
        if (pricePerKWh == 0) revert InvalidPrice(pricePerKWh);
        if (deliveryEnd <= deliveryStart) revert InvalidDeliveryWindow(deliveryStart, deliveryEnd);
        if (expiry <= block.timestamp || expiry > deliveryEnd) revert InvalidExpiry(expiry, block.timestamp);
        if (!EnergySource.isValid(source)) revert InvalidSource(source);
        // A listing may offer more than the seller's export limit for the window: each take
        // is held to it (executeTrade), so no window length is needed here.
        _requireSeller(msg.sender, zone, source, 0);

        listingId = _nextListingId++;
        _listings[listingId] =
            Listing(msg.sender, energyWh, source, zone, pricePerKWh, deliveryStart, deliveryEnd, expiry);
        emit ListingCreated(
            listingId, msg.sender, zone, energyWh, pricePerKWh, deliveryStart, deliveryEnd, expiry, source
        );
    }

    /// @inheritdoc IEnergyMarket
    function cancelListing(uint256 listingId) external {
        Listing storage l = _listings[listingId];
        address seller = l.seller;
        if (seller == address(0)) revert ListingNotFound(listingId);
        if (seller != msg.sender) revert NotListingSeller(listingId, msg.sender);
        uint64 remaining = l.remainingWh;
        delete _listings[listingId];
        emit ListingCancelled(listingId, seller, remaining);
    }

    /// @inheritdoc IEnergyMarket
    function executeTrade(uint256 listingId, uint64 energyWh)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 tradeId)
    {
        Listing memory l = _listings[listingId];
        if (l.seller == address(0)) revert ListingNotFound(listingId);
        if (l.expiry <= block.timestamp) revert ListingExpired(listingId, l.expiry);
        if (energyWh == 0) revert InvalidEnergy(energyWh);
        if (energyWh > l.remainingWh) revert InsufficientListingEnergy(listingId, energyWh, l.remainingWh);
        if (msg.sender == l.seller) revert CannotTradeWithSelf(msg.sender);
        uint64 windowSeconds = l.deliveryEnd - l.deliveryStart;
        (bool buyerEligible, uint256 importWh) = _buyerProfile(msg.sender, l.zone, windowSeconds);
        if (!buyerEligible) revert ProsumerNotActive(msg.sender, l.zone);
        uint256 exportWh = _requireSeller(l.seller, l.zone, l.source, windowSeconds);
        _checkConnection(l.seller, l.deliveryStart, SOLD, energyWh, exportWh);
        _checkConnection(msg.sender, l.deliveryStart, BOUGHT, energyWh, importWh);

        _useConnections(l.seller, msg.sender, l.deliveryStart, energyWh);
        uint64 remaining = l.remainingWh - energyWh;
        if (remaining == 0) delete _listings[listingId];
        else _listings[listingId].remainingWh = remaining;

        uint256 batchId = _nextBatchId++;
        tradeId = _nextTradeId++;
        Trade memory t = Trade({
            tradeId: tradeId,
            batchId: batchId,
            seller: l.seller,
            buyer: msg.sender,
            zone: l.zone,
            energyWh: energyWh,
            pricePerKWh: l.pricePerKWh,
            amount: EnergyMath.amountFor(energyWh, l.pricePerKWh),
            deliveryStart: l.deliveryStart,
            deliveryEnd: l.deliveryEnd,
            source: l.source,
            communityFeeBps: _communityFeeBps,
            networkFeePerKWh: _networkFeePerKWh
        });
        // A single trade is its own one-leaf tree: the root is the leaf and the proof is empty.
        bytes32 leaf = keccak256(abi.encode(t));
        _batchRoots[batchId] = leaf;
        _escrowedTotal += t.amount;
        _emitTradeExecuted(t);
        emit BatchSettled(batchId, leaf, tradeId, 1, t.communityFeeBps, t.networkFeePerKWh);

        // Effects are done; the buyer's payment moves last.
        paymentToken.safeTransferFrom(msg.sender, address(this), t.amount);
    }

    // ================================================================== signed orders

    /// @inheritdoc IEnergyMarket
    function settleBatch(SignedOrder[] calldata orders, Fill[] calldata fills)
        external
        onlyRole(MATCHER_ROLE)
        whenNotPaused
        nonReentrant
        returns (uint256 batchId, uint256 executed)
    {
        BatchContext memory ctx;
        ctx.batchId = _nextBatchId++;
        ctx.firstTradeId = _nextTradeId;
        ctx.communityFeeBps = _communityFeeBps;
        ctx.networkFeePerKWh = _networkFeePerKWh;
        ctx.orders = new OrderState[](orders.length);
        ctx.payers = new Payer[](fills.length);
        ctx.leaves = new bytes32[](fills.length);

        for (uint256 i; i < fills.length; ++i) {
            _settleFill(ctx, orders, fills[i], i);
        }

        batchId = ctx.batchId;
        executed = ctx.tradeCount;
        if (executed > 0) {
            bytes32 root = _merkleRoot(ctx.leaves, executed);
            _batchRoots[batchId] = root;
            _nextTradeId = ctx.firstTradeId + executed;
            _escrowedTotal += ctx.total;
            emit BatchSettled(batchId, root, ctx.firstTradeId, executed, ctx.communityFeeBps, ctx.networkFeePerKWh);
        }

        // All state is written; only now do tokens move, one pull per buyer. Budgets were
        // checked against balance and allowance, so a standard ERC-20 cannot fail here.
        for (uint256 i; i < ctx.payerCount; ++i) {
            Payer memory p = ctx.payers[i];
            if (p.owed > 0) paymentToken.safeTransferFrom(p.account, address(this), p.owed);
        }
    }

    /// @inheritdoc IEnergyMarket
    function cancelOrder(Order calldata order) external {
        bytes32 hash = hashOrder(order);
        if (order.maker != msg.sender) revert NotOrderMaker(hash, msg.sender);
        if (_filledWh[hash] == CANCELLED) revert OrderAlreadyCancelled(hash);
        _filledWh[hash] = CANCELLED;
        emit OrderCancelled(hash, msg.sender);
    }

    /// @inheritdoc IEnergyMarket
    function raiseNonceFloor(uint256 newNonceFloor) external {
        uint256 current = _nonceFloor[msg.sender];
        if (newNonceFloor <= current) revert NonceFloorNotRaised(current, newNonceFloor);
        _nonceFloor[msg.sender] = newNonceFloor;
        emit NonceIncremented(msg.sender, newNonceFloor);
    }

    // ================================================================== escrow and delivery

    /// @inheritdoc IEnergyMarket
    function reportDelivery(Trade calldata trade, bytes32[] calldata proof, uint64 deliveredWh, bytes32 evidenceHash)
        external
        onlyRole(METER_ORACLE_ROLE)
        nonReentrant
    {
        _verifyTrade(trade, proof);
        _recordDelivery(trade, deliveredWh, evidenceHash);
    }

    /// @inheritdoc IEnergyMarket
    function reportDeliveries(DeliveryReport[] calldata reports) external onlyRole(METER_ORACLE_ROLE) nonReentrant {
        for (uint256 i; i < reports.length; ++i) {
            DeliveryReport calldata r = reports[i];
            _verifyTrade(r.trade, r.proof);
            _recordDelivery(r.trade, r.deliveredWh, r.evidenceHash);
        }
    }

    /// @inheritdoc IEnergyMarket
    function openDispute(Trade calldata trade, bytes32[] calldata proof, bytes32 reasonHash) external {
        _verifyTrade(trade, proof);
        if (msg.sender != trade.buyer && msg.sender != trade.seller) revert NotTradeParty(trade.tradeId, msg.sender);
        // Nothing can be disputed about a delivery that has not ended.
        if (block.timestamp < trade.deliveryEnd) revert DeliveryNotEnded(trade.tradeId, trade.deliveryEnd);
        TradeStatus status = _status(trade.tradeId);
        Dispute storage d = _disputes[trade.tradeId];
        uint256 proposal;
        if (status == TradeStatus.Proposed) {
            if (block.timestamp > d.deadline) revert DisputeWindowClosed(trade.tradeId, d.deadline);
            proposal = _proRataSellerAmount(trade, d.deliveredWh);
        } else if (status != TradeStatus.Open) {
            revert InvalidTradeStatus(trade.tradeId, status);
        }
        uint64 deadline = uint64(block.timestamp) + _arbitrationTimeout;
        d.deadline = deadline;
        d.openedBy = msg.sender;
        _setStatus(trade.tradeId, TradeStatus.Contested);
        emit DisputeOpened(trade.tradeId, msg.sender, proposal, deadline, reasonHash);
    }

    /// @inheritdoc IEnergyMarket
    function finalizeDispute(Trade calldata trade, bytes32[] calldata proof) external nonReentrant {
        _verifyTrade(trade, proof);
        TradeStatus status = _status(trade.tradeId);
        if (status != TradeStatus.Proposed && status != TradeStatus.Contested) {
            revert InvalidTradeStatus(trade.tradeId, status);
        }
        Dispute memory d = _disputes[trade.tradeId];
        if (block.timestamp <= d.deadline) revert DisputeWindowOpen(trade.tradeId, d.deadline);
        // Undecided contested disputes fall back to the meter's word, or to the buyer when the
        // meter never reported: no report means no evidence of delivery.
        uint64 creditedWh = d.reported ? _cap(d.deliveredWh, trade.energyWh) : 0;
        uint256 sellerAmount = EnergyMath.amountFor(creditedWh, trade.pricePerKWh);
        delete _disputes[trade.tradeId];
        emit DisputeResolved(trade.tradeId, msg.sender, sellerAmount, trade.amount - sellerAmount);
        _settle(trade, sellerAmount, creditedWh);
    }

    /// @inheritdoc IEnergyMarket
    function resolveDispute(Trade calldata trade, bytes32[] calldata proof, uint256 sellerAmount)
        external
        onlyRole(ARBITER_ROLE)
        nonReentrant
    {
        _verifyTrade(trade, proof);
        TradeStatus status = _status(trade.tradeId);
        if (status != TradeStatus.Proposed && status != TradeStatus.Contested) {
            revert InvalidTradeStatus(trade.tradeId, status);
        }
        if (sellerAmount > trade.amount) revert SplitExceedsAmount(trade.tradeId, sellerAmount, trade.amount);
        // The network fee follows the energy the split pays for, in proportion to the amount.
        uint256 creditedWh = trade.amount == 0 ? 0 : (uint256(trade.energyWh) * sellerAmount) / trade.amount;
        delete _disputes[trade.tradeId];
        emit DisputeResolved(trade.tradeId, msg.sender, sellerAmount, trade.amount - sellerAmount);
        _settle(trade, sellerAmount, creditedWh);
    }

    /// @inheritdoc IEnergyMarket
    function releaseEarly(Trade calldata trade, bytes32[] calldata proof) external nonReentrant {
        _verifyTrade(trade, proof);
        if (msg.sender != trade.buyer) revert NotBuyer(trade.tradeId, msg.sender);
        TradeStatus status = _status(trade.tradeId);
        if (status == TradeStatus.Settled || status == TradeStatus.Refunded) {
            revert InvalidTradeStatus(trade.tradeId, status);
        }
        delete _disputes[trade.tradeId];
        emit EarlyReleased(trade.tradeId, msg.sender);
        _settle(trade, trade.amount, trade.energyWh);
    }

    /// @inheritdoc IEnergyMarket
    function reclaim(Trade calldata trade, bytes32[] calldata proof) external nonReentrant {
        _verifyTrade(trade, proof);
        // Anyone may call: the money goes only to the buyer, so a keeper can refund for it.
        TradeStatus status = _status(trade.tradeId);
        // A contest made before any report holds no evidence of delivery; it must not keep the
        // buyer waiting for the arbitration timeout when the meter never reports.
        bool contestedUnreported = status == TradeStatus.Contested && !_disputes[trade.tradeId].reported;
        if (status != TradeStatus.Open && !contestedUnreported) revert InvalidTradeStatus(trade.tradeId, status);
        uint256 deadline = uint256(trade.deliveryEnd) + _confirmationWindow;
        if (block.timestamp <= deadline) revert ConfirmationDeadlineNotReached(trade.tradeId, deadline);
        if (contestedUnreported) delete _disputes[trade.tradeId];
        _setStatus(trade.tradeId, TradeStatus.Refunded);
        _escrowedTotal -= trade.amount;
        emit TradeRefunded(trade.tradeId, trade.buyer, trade.amount);
        paymentToken.safeTransfer(trade.buyer, trade.amount);
    }

    /// @inheritdoc IEnergyMarket
    function claimFees() external nonReentrant {
        uint256 owed = _feesOwed[msg.sender];
        if (owed == 0) revert NothingToClaim(msg.sender);
        _feesOwed[msg.sender] = 0;
        _feesOutstanding -= owed;
        emit FeesClaimed(msg.sender, owed);
        paymentToken.safeTransfer(msg.sender, owed);
    }

    // ================================================================== administration

    /// @notice Sets the delivery tolerance below which a report opens a dispute (at most 20%).
    function setDeliveryTolerance(uint16 toleranceBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (toleranceBps > MAX_TOLERANCE_BPS) revert ToleranceOutOfBounds(toleranceBps, MAX_TOLERANCE_BPS);
        _toleranceBps = toleranceBps;
        emit DeliveryToleranceUpdated(toleranceBps);
    }

    /// @notice Sets the fees that trades executed from now on carry. A recipient left at zero
    ///         when a trade settles waives that fee for the seller.
    function setFees(
        uint16 communityFeeBps,
        address communityFeeRecipient,
        uint128 networkFeePerKWh,
        address networkFeeRecipient
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (communityFeeBps > MAX_COMMUNITY_FEE_BPS) {
            revert CommunityFeeOutOfBounds(communityFeeBps, MAX_COMMUNITY_FEE_BPS);
        }
        if (networkFeePerKWh > maxNetworkFeePerKWh) revert NetworkFeeOutOfBounds(networkFeePerKWh, maxNetworkFeePerKWh);
        if (communityFeeBps > 0 && communityFeeRecipient == address(0)) revert ZeroAddress();
        if (networkFeePerKWh > 0 && networkFeeRecipient == address(0)) revert ZeroAddress();
        _communityFeeBps = communityFeeBps;
        _communityFeeRecipient = communityFeeRecipient;
        _networkFeePerKWh = networkFeePerKWh;
        _networkFeeRecipient = networkFeeRecipient;
        emit FeesUpdated(communityFeeBps, communityFeeRecipient, networkFeePerKWh, networkFeeRecipient);
    }

    /// @notice Sets the confirmation window (after delivery end), the dispute window (after a
    ///         proposal) and the arbitration timeout (after a contest), each 1 hour to 90 days.
    function setWindows(uint64 confirmationWindow, uint64 disputeWindow, uint64 arbitrationTimeout)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _checkWindow(confirmationWindow);
        _checkWindow(disputeWindow);
        _checkWindow(arbitrationTimeout);
        _confirmationWindow = confirmationWindow;
        _disputeWindow = disputeWindow;
        _arbitrationTimeout = arbitrationTimeout;
        emit WindowsUpdated(confirmationWindow, disputeWindow, arbitrationTimeout);
    }

    /// @notice Stops new trades (listings, takes, settlements). Nothing else stops.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Lets new trades in again.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ================================================================== views

    /// @notice The EIP-712 digest a maker signs for `order`.
    function hashOrder(Order calldata order) public view returns (bytes32) {
        // Every Order field is a static type, so typehash followed by the struct's 12 calldata
        // words is exactly its EIP-712 encodeData. Copying the words raw skips 12 field
        // validations; a word with dirty high bits only yields a digest nobody signed.
        bytes32 typehash = ORDER_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), order, 0x180)
            structHash := keccak256(ptr, 0x1a0)
        }
        return _hashTypedDataV4(structHash);
    }

    /// @notice The Merkle leaf of a trade.
    function tradeLeaf(Trade calldata trade) external pure returns (bytes32) {
        return keccak256(abi.encode(trade));
    }

    function filledWh(bytes32 orderHash) external view returns (uint256) {
        uint256 filled = _filledWh[orderHash];
        return filled == CANCELLED ? 0 : filled;
    }

    function isOrderCancelled(Order calldata order) external view returns (bool) {
        return _filledWh[hashOrder(order)] == CANCELLED || order.nonce < _nonceFloor[order.maker];
    }

    function nonceFloor(address maker) external view returns (uint256) {
        return _nonceFloor[maker];
    }

    function listing(uint256 listingId) external view returns (Listing memory) {
        return _listings[listingId];
    }

    function batchRoot(uint256 batchId) external view returns (bytes32) {
        return _batchRoots[batchId];
    }

    function tradeStatus(uint256 tradeId) external view returns (TradeStatus) {
        return _status(tradeId);
    }

    function dispute(uint256 tradeId) external view returns (Dispute memory) {
        return _disputes[tradeId];
    }

    /// @notice What `account` has sold and bought for delivery in the window starting at
    ///         `deliveryStart`; its limits are in the registry (`tradingProfile`).
    function connectionUse(address account, uint64 deliveryStart)
        external
        view
        returns (uint256 soldWh, uint256 boughtWh)
    {
        return (_connectionUsed(account, deliveryStart, SOLD), _connectionUsed(account, deliveryStart, BOUGHT));
    }

    function sellerRecord(address seller) external view returns (SellerRecord memory) {
        return _sellerRecords[seller];
    }

    /// @notice Delivered / contracted energy of `seller` in basis points.
    function sellerReputationBps(address seller) public view returns (uint256) {
        SellerRecord memory r = _sellerRecords[seller];
        if (r.contractedWh == 0) return NEW_SELLER_REPUTATION_BPS;
        return (uint256(r.deliveredWh) * EnergyMath.BPS) / r.contractedWh;
    }

    function feesOwed(address recipient) external view returns (uint256) {
        return _feesOwed[recipient];
    }

    /// @notice Sum of the amounts of all trades not yet settled or refunded.
    function escrowedTotal() external view returns (uint256) {
        return _escrowedTotal;
    }

    /// @notice Sum of accrued fees not yet claimed.
    function feesOutstanding() external view returns (uint256) {
        return _feesOutstanding;
    }

    function nextTradeId() external view returns (uint256) {
        return _nextTradeId;
    }

    function nextBatchId() external view returns (uint256) {
        return _nextBatchId;
    }

    function nextListingId() external view returns (uint256) {
        return _nextListingId;
    }

    function deliveryToleranceBps() external view returns (uint16) {
        return _toleranceBps;
    }

    function fees()
        external
        view
        returns (uint16 communityFeeBps, address communityFeeRecipient, uint128 networkFeePerKWh, address networkFeeRecipient)
    {
        return (_communityFeeBps, _communityFeeRecipient, _networkFeePerKWh, _networkFeeRecipient);
    }

    function windows() external view returns (uint64 confirmationWindow, uint64 disputeWindow, uint64 arbitrationTimeout) {
        return (_confirmationWindow, _disputeWindow, _arbitrationTimeout);
    }

    /// @notice The EIP-712 domain separator orders are signed under.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ================================================================== batch internals

    function _settleFill(BatchContext memory ctx, SignedOrder[] calldata orders, Fill calldata fill, uint256 fillIndex)
        private
    {
        (RejectReason reason, uint256 payerIndex) = _checkFill(ctx, orders, fill);
        if (reason != RejectReason.None) {
            emit FillRejected(
                ctx.batchId,
                fillIndex,
                fill.buyIndex < orders.length ? _orderState(ctx, orders, fill.buyIndex).hash : bytes32(0),
                fill.sellIndex < orders.length ? _orderState(ctx, orders, fill.sellIndex).hash : bytes32(0),
                reason
            );
            return;
        }
        uint256 amount = EnergyMath.amountFor(fill.energyWh, fill.pricePerKWh);
        _filledWh[ctx.orders[fill.buyIndex].hash] += fill.energyWh;
        _filledWh[ctx.orders[fill.sellIndex].hash] += fill.energyWh;
        Payer memory payer = ctx.payers[payerIndex];
        payer.owed += amount;
        payer.budget -= amount;
        ctx.total += amount;

        Trade memory t = _tradeOf(ctx, orders[fill.buyIndex].order, orders[fill.sellIndex].order, fill);
        t.amount = amount;
        _useConnections(t.seller, t.buyer, t.deliveryStart, t.energyWh);
        ctx.leaves[ctx.tradeCount++] = keccak256(abi.encode(t));
        _emitTradeExecuted(t);
    }

    /// @dev Field by field: a struct literal of 13 members does not fit the legacy stack.
    function _tradeOf(BatchContext memory ctx, Order calldata buy, Order calldata sell, Fill calldata fill)
        private
        pure
        returns (Trade memory t)
    {
        t.tradeId = ctx.firstTradeId + ctx.tradeCount;
        t.batchId = ctx.batchId;
        t.seller = sell.maker;
        t.buyer = buy.maker;
        t.zone = buy.zone;
        t.energyWh = fill.energyWh;
        t.pricePerKWh = fill.pricePerKWh;
        t.deliveryStart = buy.deliveryStart;
        t.deliveryEnd = buy.deliveryEnd;
        t.source = sell.source;
        t.communityFeeBps = ctx.communityFeeBps;
        t.networkFeePerKWh = ctx.networkFeePerKWh;
    }

    /// @dev Every on-chain check of a fill, cheapest and most telling first. Returns the index
    ///      of the buyer's payer slot when the fill passes.
    function _checkFill(BatchContext memory ctx, SignedOrder[] calldata orders, Fill calldata fill)
        private
        view
        returns (RejectReason, uint256)
    {
        if (fill.buyIndex >= orders.length || fill.sellIndex >= orders.length) return (RejectReason.InvalidIndex, 0);
        Order calldata buy = orders[fill.buyIndex].order;
        Order calldata sell = orders[fill.sellIndex].order;
        if (buy.side != SIDE_BUY || sell.side != SIDE_SELL) return (RejectReason.SideMismatch, 0);

        OrderState memory b = _orderState(ctx, orders, fill.buyIndex);
        OrderState memory s = _orderState(ctx, orders, fill.sellIndex);
        if (!b.signatureValid) return (RejectReason.BadBuySignature, 0);
        if (!s.signatureValid) return (RejectReason.BadSellSignature, 0);
        uint256 buyFilled = _filledWh[b.hash];
        uint256 sellFilled = _filledWh[s.hash];
        if (buyFilled == CANCELLED || buy.nonce < _nonceFloor[buy.maker]) return (RejectReason.BuyOrderCancelled, 0);
        if (sellFilled == CANCELLED || sell.nonce < _nonceFloor[sell.maker]) return (RejectReason.SellOrderCancelled, 0);
        if (buy.expiry <= block.timestamp) return (RejectReason.BuyOrderExpired, 0);
        if (sell.expiry <= block.timestamp) return (RejectReason.SellOrderExpired, 0);
        if (buy.zone != sell.zone) return (RejectReason.ZoneMismatch, 0);
        if (
            buy.deliveryStart != sell.deliveryStart || buy.deliveryEnd != sell.deliveryEnd
                || buy.deliveryEnd <= buy.deliveryStart
        ) return (RejectReason.WindowMismatch, 0);
        if (fill.pricePerKWh < sell.limitPricePerKWh || fill.pricePerKWh > buy.limitPricePerKWh) {
            return (RejectReason.PriceOutOfRange, 0);
        }
        if (fill.energyWh == 0) return (RejectReason.ZeroEnergy, 0);
        if (buyFilled + fill.energyWh > buy.energyWh) return (RejectReason.BuyOverfill, 0);
        if (sellFilled + fill.energyWh > sell.energyWh) return (RejectReason.SellOverfill, 0);
        if (buy.maker == sell.maker) return (RejectReason.SelfTrade, 0);
        return _checkParties(ctx, buy, sell, fill);
    }

    /// @dev The checks that read the registry, the seller's record and the buyer's funds.
    function _checkParties(BatchContext memory ctx, Order calldata buy, Order calldata sell, Fill calldata fill)
        private
        view
        returns (RejectReason, uint256)
    {
        // A maker verified once in this batch stays verified: the registry cannot change
        // within the transaction, and an order that fills twice should not pay twice. Both
        // orders name the same window (checked before).
        uint64 deliveryStart = buy.deliveryStart;
        uint64 windowSeconds = buy.deliveryEnd - deliveryStart;
        OrderState memory b = ctx.orders[fill.buyIndex];
        if (!b.makerVerified) {
            (bool eligible, uint256 importWh) = _buyerProfile(buy.maker, buy.zone, windowSeconds);
            if (!eligible) return (RejectReason.BuyerInactive, 0);
            (b.makerVerified, b.limitWh) = (true, importWh);
        }
        OrderState memory s = ctx.orders[fill.sellIndex];
        if (!s.makerVerified) {
            (RejectReason reason, uint256 exportWh) = _sellerProfile(sell.maker, sell.zone, sell.source, windowSeconds);
            if (reason != RejectReason.None) return (reason, 0);
            (s.makerVerified, s.limitWh) = (true, exportWh);
        }
        if (buy.acceptedSources != 0 && !EnergySource.contains(buy.acceptedSources, sell.source)) {
            return (RejectReason.SourceNotAccepted, 0);
        }
        if (buy.minSellerReputationBps != 0 && sellerReputationBps(sell.maker) < buy.minSellerReputationBps) {
            return (RejectReason.ReputationTooLow, 0);
        }
        // Totals are read from storage at each fill (the settled fills before this one are
        // already counted), so several fills of one maker, over one or several orders, cannot
        // cross the limit together.
        if (_connectionUsed(sell.maker, deliveryStart, SOLD) + fill.energyWh > s.limitWh) {
            return (RejectReason.SellerExportLimit, 0);
        }
        if (_connectionUsed(buy.maker, deliveryStart, BOUGHT) + fill.energyWh > b.limitWh) {
            return (RejectReason.BuyerImportLimit, 0);
        }

        uint256 payerIndex = _payerIndex(ctx, buy.maker);
        if (ctx.payers[payerIndex].budget < EnergyMath.amountFor(fill.energyWh, fill.pricePerKWh)) {
            return (RejectReason.InsufficientFunds, 0);
        }
        return (RejectReason.None, payerIndex);
    }

    /// @dev Hashes, verifies and loads an order the first time a fill uses it in this batch.
    function _orderState(BatchContext memory ctx, SignedOrder[] calldata orders, uint256 index)
        private
        view
        returns (OrderState memory st)
    {
        st = ctx.orders[index];
        if (st.loaded) return st;
        SignedOrder calldata so = orders[index];
        st.hash = hashOrder(so.order);
        st.signatureValid = _isValidSignature(so.order.maker, st.hash, so.signature);
        st.loaded = true;
    }

    /// @dev ECDSA first, ERC-1271 only when that fails: asking a cold account for its code
    ///      costs 2,600 gas per maker, and almost every maker is an EOA.
    function _isValidSignature(address signer, bytes32 hash, bytes calldata signature) private view returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        return SignatureChecker.isValidERC1271SignatureNowCalldata(signer, hash, signature);
    }

    /// @dev Finds or adds the buyer's payer slot; a new slot's budget is what the buyer both
    ///      holds and has approved.
    function _payerIndex(BatchContext memory ctx, address buyer) private view returns (uint256) {
        // Newest first: a sorted book hands one buyer's fills over together.
        for (uint256 i = ctx.payerCount; i > 0; --i) {
            if (ctx.payers[i - 1].account == buyer) return i - 1;
        }
        uint256 balance = paymentToken.balanceOf(buyer);
        uint256 allowance = paymentToken.allowance(buyer, address(this));
        Payer memory p = ctx.payers[ctx.payerCount];
        p.account = buyer;
        p.budget = balance < allowance ? balance : allowance;
        return ctx.payerCount++;
    }

    /// @dev Root over `count` leaves: pairs hashed commutatively level by level, an odd last
    ///      node carried up unchanged. The TypeScript `merkleProof()` builds the same tree.
    function _merkleRoot(bytes32[] memory nodes, uint256 count) private pure returns (bytes32) {
        while (count > 1) {
            uint256 pairs = count / 2;
            for (uint256 i; i < pairs; ++i) {
                nodes[i] = Hashes.commutativeKeccak256(nodes[2 * i], nodes[2 * i + 1]);
            }
            if (count % 2 == 1) nodes[pairs] = nodes[count - 1];
            count = pairs + (count % 2);
        }
        return nodes[0];
    }

    // ================================================================== connection limits

    /// @dev Whether `buyer` may buy in `zone` (active there), and its import limit for a window
    ///      of `windowSeconds`, in Wh. One registry call.
    function _buyerProfile(address buyer, bytes32 zone, uint64 windowSeconds)
        private
        view
        returns (bool eligible, uint256 importWh)
    {
        (bytes32 buyerZone, bool active,,, uint64 importLimitW) = registry.tradingProfile(buyer);
        return (active && buyerZone == zone, EnergyMath.energyWhAt(importLimitW, windowSeconds));
    }

    /// @dev Whether `seller` may sell `source` energy in `zone` (None, SellerInactive or
    ///      SourceNotRegistered), and its export limit for a window of `windowSeconds`, in Wh.
    ///      One registry call.
    function _sellerProfile(address seller, bytes32 zone, uint8 source, uint64 windowSeconds)
        private
        view
        returns (RejectReason, uint256 exportWh)
    {
        (bytes32 sellerZone, bool active, uint8 sources, uint64 exportLimitW,) = registry.tradingProfile(seller);
        if (!active || sellerZone != zone) return (RejectReason.SellerInactive, 0);
        if (!EnergySource.contains(sources, source)) return (RejectReason.SourceNotRegistered, 0);
        return (RejectReason.None, EnergyMath.energyWhAt(exportLimitW, windowSeconds));
    }

    /// @dev _sellerProfile for the listing paths, which revert instead of skipping.
    function _requireSeller(address seller, bytes32 zone, uint8 source, uint64 windowSeconds)
        private
        view
        returns (uint256 exportWh)
    {
        RejectReason reason;
        (reason, exportWh) = _sellerProfile(seller, zone, source, windowSeconds);
        if (reason == RejectReason.SellerInactive) revert ProsumerNotActive(seller, zone);
        if (reason == RejectReason.SourceNotRegistered) revert SourceNotRegistered(seller, source);
    }

    /// @dev Reverts when `energyWh` more would take `account`'s sold (or bought) total for the
    ///      window past `limitWh`.
    function _checkConnection(address account, uint64 deliveryStart, uint256 side, uint256 energyWh, uint256 limitWh)
        private
        view
    {
        uint256 used = _connectionUsed(account, deliveryStart, side);
        if (used + energyWh > limitWh) revert ConnectionLimitExceeded(account, limitWh, used, energyWh);
    }

    /// @dev What `account` has sold (`side` SOLD) or bought (BOUGHT) for the window.
    function _connectionUsed(address account, uint64 deliveryStart, uint256 side) private view returns (uint256) {
        return uint128(_connectionUse[account][deliveryStart] >> side);
    }

    /// @dev Counts a trade against both connections; the caller checked both limits.
    function _useConnections(address seller, address buyer, uint64 deliveryStart, uint64 energyWh) private {
        // No total reaches 2^128, so adding to one half never carries into the other: the caller
        // checked that each new total stays at or below a limit of at most
        // (2^64 - 1) W * (2^64 - 1) s / 3600 < 2^128 Wh.
        unchecked {
            _connectionUse[seller][deliveryStart] += uint256(energyWh) << SOLD;
            _connectionUse[buyer][deliveryStart] += uint256(energyWh) << BOUGHT;
        }
    }

    // ================================================================== escrow internals

    function _verifyTrade(Trade calldata trade, bytes32[] calldata proof) private view {
        bytes32 root = _batchRoots[trade.batchId];
        if (root == bytes32(0) || !MerkleProof.verifyCalldata(proof, root, keccak256(abi.encode(trade)))) {
            revert InvalidTradeProof(trade.tradeId, trade.batchId);
        }
    }

    function _recordDelivery(Trade calldata trade, uint64 deliveredWh, bytes32 evidenceHash) private {
        if (block.timestamp < trade.deliveryEnd) revert DeliveryNotEnded(trade.tradeId, trade.deliveryEnd);
        TradeStatus status = _status(trade.tradeId);
        Dispute storage d = _disputes[trade.tradeId];
        bool contestedUnreported = status == TradeStatus.Contested && !d.reported;
        if (status != TradeStatus.Open && !contestedUnreported) revert InvalidTradeStatus(trade.tradeId, status);

        uint64 creditedWh = _cap(deliveredWh, trade.energyWh);
        SellerRecord storage record = _sellerRecords[trade.seller];
        record.contractedWh += trade.energyWh;
        record.deliveredWh += creditedWh;

        bool within = EnergyMath.withinTolerance(creditedWh, trade.energyWh, _toleranceBps);
        emit DeliveryConfirmed(trade.tradeId, deliveredWh, evidenceHash, within);

        if (within) {
            // The meter is the root of trust for delivery: in tolerance it settles the trade in
            // full, also when a party contested before the report (the contest would otherwise
            // turn a full delivery into the arbitration timeout's pro-rata payout).
            if (contestedUnreported) delete _disputes[trade.tradeId];
            _settle(trade, trade.amount, trade.energyWh);
        } else if (contestedUnreported) {
            // Short, and a party already contested: the report becomes the arbiter's evidence,
            // and finalizeDispute's pro-rata fallback if the arbiter does not decide.
            d.deliveredWh = creditedWh;
            d.reported = true;
        } else {
            uint64 deadline = uint64(block.timestamp) + _disputeWindow;
            _disputes[trade.tradeId] = Dispute(creditedWh, true, deadline, msg.sender);
            _setStatus(trade.tradeId, TradeStatus.Proposed);
            emit DisputeOpened(
                trade.tradeId, msg.sender, _proRataSellerAmount(trade, creditedWh), deadline, evidenceHash
            );
        }
    }

    /// @dev The one place a trade reaches Settled: fees come out of the seller's part, the
    ///      buyer gets the rest of the escrow back.
    function _settle(Trade calldata trade, uint256 sellerAmount, uint256 creditedWh) private {
        uint256 buyerRefund = trade.amount - sellerAmount;
        address communityRecipient = _communityFeeRecipient;
        address networkRecipient = _networkFeeRecipient;
        uint256 communityFee =
            communityRecipient == address(0) ? 0 : EnergyMath.bpsOf(sellerAmount, trade.communityFeeBps);
        uint256 networkFee =
            networkRecipient == address(0) ? 0 : EnergyMath.amountFor(creditedWh, trade.networkFeePerKWh);
        // Fees never exceed what the seller is paid.
        if (communityFee > sellerAmount) communityFee = sellerAmount;
        if (networkFee > sellerAmount - communityFee) networkFee = sellerAmount - communityFee;
        uint256 sellerPayout = sellerAmount - communityFee - networkFee;

        _setStatus(trade.tradeId, TradeStatus.Settled);
        _escrowedTotal -= trade.amount;
        if (communityFee > 0) _feesOwed[communityRecipient] += communityFee;
        if (networkFee > 0) _feesOwed[networkRecipient] += networkFee;
        _feesOutstanding += communityFee + networkFee;
        emit TradeSettled(trade.tradeId, sellerPayout, buyerRefund, communityFee, networkFee);

        if (sellerPayout > 0) paymentToken.safeTransfer(trade.seller, sellerPayout);
        if (buyerRefund > 0) paymentToken.safeTransfer(trade.buyer, buyerRefund);
    }

    function _proRataSellerAmount(Trade calldata trade, uint64 deliveredWh) private pure returns (uint256) {
        return EnergyMath.amountFor(_cap(deliveredWh, trade.energyWh), trade.pricePerKWh);
    }

    function _status(uint256 tradeId) private view returns (TradeStatus) {
        return TradeStatus((_statusWords[tradeId >> 6] >> ((tradeId & 63) * 4)) & 0xf);
    }

    function _setStatus(uint256 tradeId, TradeStatus status) private {
        uint256 shift = (tradeId & 63) * 4;
        uint256 word = _statusWords[tradeId >> 6];
        _statusWords[tradeId >> 6] = (word & ~(uint256(0xf) << shift)) | (uint256(status) << shift);
    }

    function _emitTradeExecuted(Trade memory t) private {
        emit TradeExecuted(
            t.tradeId,
            t.seller,
            t.buyer,
            t.zone,
            t.energyWh,
            t.pricePerKWh,
            t.amount,
            t.deliveryStart,
            t.deliveryEnd,
            t.source,
            t.batchId
        );
    }

    function _checkWindow(uint64 window) private pure {
        if (window < MIN_WINDOW || window > MAX_WINDOW) revert WindowOutOfBounds(window, MIN_WINDOW, MAX_WINDOW);
    }

    function _cap(uint64 value, uint64 maximum) private pure returns (uint64) {
        return value < maximum ? value : maximum;
    }
}
