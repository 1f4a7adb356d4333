// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Prosumer registry
/// @notice Links a prosumer's wallet to a smart meter and a grid zone (a distribution
///         transformer), with the power limits of the connection and the energy sources the
///         prosumer owns. Only active prosumers trade, and only inside their zone.
interface IProsumerRegistry {
    /// @notice Status of a registered account. `None` means never registered.
    enum Status {
        None,
        Active,
        Suspended
    }

    /// @notice What the registry holds for one prosumer.
    /// @param meterId The smart meter's id (e.g. "SM-001" as bytes32).
    /// @param zone The grid zone the meter sits in.
    /// @param exportLimitW Most power the connection may feed in, in watts. The market lets the
    ///        account sell at most `exportLimitW * windowSeconds / 3600` Wh (rounded down) for
    ///        delivery in any one window.
    /// @param importLimitW Most power the connection may draw, in watts; bounds what the account
    ///        buys for one window the same way.
    /// @param sources Bitmask of energy sources the prosumer owns: bit `1 << source`
    ///        for the sources of {EnergySource}.
    /// @param status Active or suspended.
    struct Prosumer {
        bytes32 meterId;
        bytes32 zone;
        uint64 exportLimitW;
        uint64 importLimitW;
        uint8 sources;
        Status status;
    }

    /// @notice `account` was verified with `meterId` in `zone`.
    event ProsumerRegistered(
        address indexed account,
        bytes32 indexed meterId,
        bytes32 indexed zone,
        uint64 exportLimitW,
        uint64 importLimitW,
        uint8 sources
    );
    /// @notice `account`'s meter, zone, limits or sources changed.
    event ProsumerUpdated(
        address indexed account,
        bytes32 indexed meterId,
        bytes32 indexed zone,
        uint64 exportLimitW,
        uint64 importLimitW,
        uint8 sources
    );
    /// @notice `account` moved to `status`.
    event ProsumerStatusChanged(address indexed account, Status status);
    /// @notice The key that signs `meterId`'s readings is now `signer` (an Ed25519 public key,
    ///         the raw 32 bytes); zero means the meter has none, so none of its readings is
    ///         delivery evidence. Also emitted with zero when `account` moves to another meter,
    ///         because a key belongs to the device, not to the household.
    event MeterSignerSet(address indexed account, bytes32 indexed meterId, bytes32 signer);

    /// @notice The account is already registered.
    error ProsumerAlreadyRegistered(address account);
    /// @notice The account has never been registered.
    error ProsumerNotRegistered(address account);
    /// @notice The meter already belongs to another account.
    error MeterAlreadyRegistered(bytes32 meterId, address owner);
    /// @notice Zero address, zero meter id or zero zone.
    error InvalidProsumer(address account, bytes32 meterId, bytes32 zone);
    /// @notice The sources bitmask names a source that does not exist.
    error InvalidSources(uint8 sources);
    /// @notice The status change is not a change to Active or Suspended.
    error InvalidStatus(Status status);
    /// @notice The meter already has `signer` as its key: setting it again would say nothing.
    error MeterSignerUnchanged(address account, bytes32 meterId, bytes32 signer);

    /// @notice Registers a verified prosumer as active. REGISTRAR only.
    function registerProsumer(
        address account,
        bytes32 meterId,
        bytes32 zone,
        uint64 exportLimitW,
        uint64 importLimitW,
        uint8 sources
    ) external;

    /// @notice Changes a registered prosumer's meter, zone, limits or sources. REGISTRAR only.
    function updateProsumer(
        address account,
        bytes32 meterId,
        bytes32 zone,
        uint64 exportLimitW,
        uint64 importLimitW,
        uint8 sources
    ) external;

    /// @notice Suspends or reactivates a registered prosumer. REGISTRAR only.
    function setStatus(address account, Status status) external;

    /// @notice Sets the Ed25519 public key (raw 32 bytes) that signs the readings of
    ///         `account`'s current meter. REGISTRAR only; the account must be registered
    ///         (active or suspended). A new key replaces the old one at once: the meter bridge
    ///         checks each reading against the key in force when it takes the reading in.
    ///         Zero revokes the key (a lost or compromised meter) until a new one is set.
    function setMeterSigner(address account, bytes32 signer) external;

    /// @notice The key that signs `meterId`'s readings, or zero when it has none.
    function meterSignerOf(bytes32 meterId) external view returns (bytes32);

    /// @notice Everything the registry holds for `account` (all zero when unknown).
    function getProsumer(address account) external view returns (Prosumer memory);

    /// @notice The account owning `meterId`, or zero.
    function accountOfMeter(bytes32 meterId) external view returns (address);

    /// @notice Whether `account` is active and registered in `zone`.
    function isActiveIn(address account, bytes32 zone) external view returns (bool);

    /// @notice What the market checks on every trade of `account`, in one call: its zone,
    ///         whether it is active, its sources bitmask and its connection's power limits (W).
    ///         The limits share a storage slot with the sources and status, so they cost no
    ///         extra read.
    function tradingProfile(address account)
        external
        view
        returns (bytes32 zone, bool active, uint8 sources, uint64 exportLimitW, uint64 importLimitW);
}
