// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

import {IForceMoveApp} from "@statechannels/nitro-protocol/contracts/interfaces/IForceMoveApp.sol";
import {NitroUtils} from "@statechannels/nitro-protocol/contracts/libraries/NitroUtils.sol";

/// @title MarginApp
/// @notice Support rule for trader/hub margin channels.
/// @dev Rule 1 (consensus): a candidate signed by every participant, with no proof, is supported.
/// Rule 2 (unilateral settlement at an oracle price) lands with the disputes work; until then
/// anything but consensus is rejected, so no single party can move funds on its own.
contract MarginApp is IForceMoveApp {
    function stateIsSupported(
        FixedPart calldata fixedPart,
        RecoveredVariablePart[] calldata proof,
        RecoveredVariablePart calldata candidate
    ) external pure override returns (bool, string memory) {
        if (fixedPart.participants.length != 2) return (false, "MarginApp: 2 participants");
        if (proof.length != 0) return (false, "MarginApp: proof not supported");
        if (NitroUtils.getClaimedSignersNum(candidate.signedBy) != 2) {
            return (false, "MarginApp: !unanimous");
        }
        return (true, "");
    }
}
