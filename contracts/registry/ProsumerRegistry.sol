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
        if (p.meterId != meterId) {
            _claimMeter(account, meterId);
            delete _meterOwner[p.meterId];
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
    function tradingProfile(address account) external view returns (bytes32 zone, bool active, uint8 sources) {
        Prosumer storage p = _prosumers[account];
        return (p.zone, p.status == Status.Active, p.sources);
    }

    function _checkProsumer(address account, bytes32 meterId, bytes32 zone, uint8 sources) private pure {
        if (account == address(0) || meterId == bytes32(0) || zone == bytes32(0)) {
            revert InvalidProsumer(account, meterId, zone);
        }
        if (sources & ~EnergySource.ALL != 0) revert InvalidSources(sources);
    }

    function _claimMeter(address account, bytes32 meterId) private {
        address owner = _meterOwner[meterId];
        if (owner != address(0) && owner != account) revert MeterAlreadyRegistered(meterId, owner);
        _meterOwner[meterId] = account;
    }
}
