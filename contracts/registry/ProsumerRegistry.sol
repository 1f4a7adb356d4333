// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IProsumerRegistry} from "./IProsumerRegistry.sol";
import {EnergySource} from "../libraries/EnergySource.sol";

/// @title ProsumerRegistry
/// @notice The community operator (REGISTRAR) verifies each household once: wallet, meter, zone,
///         connection limits and owned sources. The market reads it on every trade.
contract ProsumerRegistry is IProsumerRegistry, AccessControl {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    mapping(address account => Prosumer) private _prosumers;
    mapping(bytes32 meterId => address account) private _meterOwner;
    /// @dev Keyed by meter, not by account: the key lives in the device. Non-zero only while
    ///      the meter has an owner (a meter given up loses its key, see updateProsumer).
    mapping(bytes32 meterId => bytes32 signer) private _meterSigners;

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    /// @inheritdoc IProsumerRegistry
    function registerProsumer(
        address account,
        bytes32 meterId,
        bytes32 zone,
        uint64 exportLimitW,
        uint64 importLimitW,
        uint8 sources
    ) external onlyRole(REGISTRAR_ROLE) {
        if (_prosumers[account].status != Status.None) revert ProsumerAlreadyRegistered(account);
        _checkProsumer(account, meterId, zone, sources);
        _claimMeter(account, meterId);
        _prosumers[account] = Prosumer(meterId, zone, exportLimitW, importLimitW, sources, Status.Active);
        emit ProsumerRegistered(account, meterId, zone, exportLimitW, importLimitW, sources);
    }

    /// @inheritdoc IProsumerRegistry
    function updateProsumer(
        address account,
        bytes32 meterId,
        bytes32 zone,
        uint64 exportLimitW,
        uint64 importLimitW,
        uint8 sources
    ) external onlyRole(REGISTRAR_ROLE) {
        Prosumer storage p = _prosumers[account];
        if (p.status == Status.None) revert ProsumerNotRegistered(account);
        _checkProsumer(account, meterId, zone, sources);
        bytes32 oldMeter = p.meterId;
        if (oldMeter != meterId) {
            _claimMeter(account, meterId);
            delete _meterOwner[oldMeter];
            // The old device's key must not sign for whoever registers that meter next, and
            // the new meter starts without one until the registrar sets its key.
            if (_meterSigners[oldMeter] != bytes32(0)) _setMeterSigner(account, oldMeter, bytes32(0));
        }
        p.meterId = meterId;
        p.zone = zone;
        p.exportLimitW = exportLimitW;
        p.importLimitW = importLimitW;
        p.sources = sources;
        emit ProsumerUpdated(account, meterId, zone, exportLimitW, importLimitW, sources);
    }

    /// @inheritdoc IProsumerRegistry
    function setStatus(address account, Status status) external onlyRole(REGISTRAR_ROLE) {
        Prosumer storage p = _prosumers[account];
        if (p.status == Status.None) revert ProsumerNotRegistered(account);
        if (status == Status.None) revert InvalidStatus(status);
        p.status = status;
        emit ProsumerStatusChanged(account, status);
    }

    /// @inheritdoc IProsumerRegistry
    function setMeterSigner(address account, bytes32 signer) external onlyRole(REGISTRAR_ROLE) {
        Prosumer storage p = _prosumers[account];
        if (p.status == Status.None) revert ProsumerNotRegistered(account);
        if (_meterSigners[p.meterId] == signer) revert MeterSignerUnchanged(account, p.meterId, signer);
        _setMeterSigner(account, p.meterId, signer);
    }

    /// @inheritdoc IProsumerRegistry
    function meterSignerOf(bytes32 meterId) external view returns (bytes32) {
        return _meterSigners[meterId];
    }

    /// @inheritdoc IProsumerRegistry
    function getProsumer(address account) external view returns (Prosumer memory) {
        return _prosumers[account];
    }

    /// @inheritdoc IProsumerRegistry
    function accountOfMeter(bytes32 meterId) external view returns (address) {
        return _meterOwner[meterId];
    }

    /// @inheritdoc IProsumerRegistry
    function isActiveIn(address account, bytes32 zone) external view returns (bool) {
        Prosumer storage p = _prosumers[account];
        return p.status == Status.Active && p.zone == zone;
    }

    /// @inheritdoc IProsumerRegistry
    function tradingProfile(address account)
        external
        view
        returns (bytes32 zone, bool active, uint8 sources, uint64 exportLimitW, uint64 importLimitW)
    {
        Prosumer storage p = _prosumers[account];
        return (p.zone, p.status == Status.Active, p.sources, p.exportLimitW, p.importLimitW);
    }

    function _checkProsumer(address account, bytes32 meterId, bytes32 zone, uint8 sources) private pure {
        if (account == address(0) || meterId == bytes32(0) || zone == bytes32(0)) {
            revert InvalidProsumer(account, meterId, zone);
        }
        if (sources & ~EnergySource.ALL != 0) revert InvalidSources(sources);
    }

    /// @dev Every change of a meter's key goes through here, so every one has its event.
    function _setMeterSigner(address account, bytes32 meterId, bytes32 signer) private {
        _meterSigners[meterId] = signer;
        emit MeterSignerSet(account, meterId, signer);
    }

    function _claimMeter(address account, bytes32 meterId) private {
        address owner = _meterOwner[meterId];
        if (owner != address(0) && owner != account) revert MeterAlreadyRegistered(meterId, owner);
        _meterOwner[meterId] = account;
    }
}
