// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

import {IForceMoveApp} from "@statechannels/nitro-protocol/contracts/interfaces/IForceMoveApp.sol";
import {NitroUtils} from "@statechannels/nitro-protocol/contracts/libraries/NitroUtils.sol";
import {ExitFormat as Outcome} from "@statechannels/exit-format/contracts/ExitFormat.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MarginMath} from "./lib/MarginMath.sol";
import {Mark, MarginStateV2, MarketTerms, PriceReport, Position, SettlementV2} from "./lib/MarginTypes.sol";

/// @title MarginApp
/// @notice Support rule for trader/hub margin channels (participants [trader, hub], outcome [hub, trader]).
/// @dev Rule 1 (consensus): a candidate signed by both participants, with no proof, is supported.
/// Rule 2 (unilateral settlement / liquidation): from the latest state signed by both (the one proof
/// state), either side alone may close every position at fresh oracle-signed prices. The contract
/// recomputes the settlement (src/engine/unilateral.ts is its TS mirror) and accepts only the exact
/// outcome, with the liquidation penalty to the hub only when the proof's account is below
/// maintenance at those prices. So a silent hub cannot trap a trader's funds and a silent trader
/// below maintenance can still be liquidated. Funding accrued since the proof is not charged: the
/// chain has no funding index, and the proof's cash already holds all funding settled up to it.
/// The bound on the mover's price: each report must be newer than the proof's mark and at most the
/// market's `settleWindow` old at block.timestamp (a committed term, 15 s by default, well inside
/// the engine's 60 s maxOracleAge). The mover still picks which genuine report of that window, and
/// when to send. A newer report does not re-settle the same proof: the candidate is proof + 1 and
/// Nitro needs a higher turn, which keeps any newer doubly-signed state decisive and stops endless
/// re-settlements from stalling the payout. See docs/RISK.md, "Unilateral settlement price".
/// States commit to the channel's constants (oracle, risk hash, terms) by hash; the candidate carries
/// them in full, checked against the proof's hash, with the signed reports it settles at.
contract MarginApp is IForceMoveApp, EIP712 {
    uint8 internal constant FORMAT_STATE = 2;
    uint8 internal constant FORMAT_SETTLEMENT = 3;
    uint8 internal constant TRADER = 0;
    uint8 internal constant HUB = 1;
    bytes32 internal constant PRICE_REPORT_TYPEHASH =
        keccak256("PriceReport(bytes32 market,uint256 price,uint64 timestamp)");

    /// @dev What closing the proof's positions at the candidate's reports comes to.
    struct Settlement {
        int256 equity;
        int256 maintenance;
        int256 penalty;
    }

    constructor() EIP712("NitroMargin Oracle", "1") {}

    function stateIsSupported(
        FixedPart calldata fixedPart,
        RecoveredVariablePart[] calldata proof,
        RecoveredVariablePart calldata candidate
    ) external view override returns (bool, string memory) {
        if (fixedPart.participants.length != 2) return (false, "MarginApp: 2 participants");
        if (proof.length == 0) {
            if (NitroUtils.getClaimedSignersNum(candidate.signedBy) != 2) {
                return (false, "MarginApp: !unanimous");
            }
            return (true, "");
        }
        if (proof.length != 1) return (false, "MarginApp: proof must be one state");
        return _unilateral(fixedPart, proof[0], candidate);
    }

    /// @notice A state's `constantsHash` for these constants (src/protocol/channel-constants.ts).
    function constantsHash(address oracle, bytes32 riskParamsHash, MarketTerms[] memory terms)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(oracle, riskParamsHash, terms));
    }

    /// @notice The EIP-712 digest an oracle signs for `report` (domain: this contract on this chain).
    function priceReportDigest(bytes32 market, uint256 price, uint64 timestamp) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(PRICE_REPORT_TYPEHASH, market, price, timestamp)));
    }

    function _unilateral(
        FixedPart calldata fixedPart,
        RecoveredVariablePart calldata proof,
        RecoveredVariablePart calldata candidate
    ) internal view returns (bool, string memory) {
        if (proof.signedBy != 3) return (false, "MarginApp: proof not signed by both");
        if (candidate.signedBy != (1 << TRADER) && candidate.signedBy != (1 << HUB)) {
            return (false, "MarginApp: unilateral candidate must be signed by exactly one participant");
        }
        if (proof.variablePart.isFinal) return (false, "MarginApp: proof is final");
        if (candidate.variablePart.isFinal) return (false, "MarginApp: unilateral candidate must not be final");
        if (uint256(candidate.variablePart.turnNum) != uint256(proof.variablePart.turnNum) + 1) {
            return (false, "MarginApp: turnNum must be proof + 1");
        }
        (bool ok, string memory why, uint256 funding) = _proofFunding(fixedPart, proof.variablePart.outcome);
        if (!ok) return (false, why);

        MarginStateV2 memory p = _decodeState(proof.variablePart.appData);
        SettlementV2 memory c = _decodeSettlement(candidate.variablePart.appData);
        if (constantsHash(c.oracle, c.riskParamsHash, c.terms) != p.constantsHash) {
            return (false, "MarginApp: constants differ from the proof's");
        }
        if (c.reports.length != p.positions.length) return (false, "MarginApp: one report per proof position");

        Settlement memory s;
        (ok, why, s) = _settle(p, c);
        if (!ok) return (false, why);

        int256 penalty = 0;
        if (s.equity < s.maintenance) {
            int256 room = s.equity > 0 ? s.equity : int256(0);
            penalty = s.penalty < room ? s.penalty : room;
        }
        int256 cash = s.equity - penalty;
        if (c.traderCash != cash) return (false, "MarginApp: wrong trader cash");
        uint256 traderAmount = cash <= 0 ? 0 : (uint256(cash) > funding ? funding : uint256(cash));
        return _checkOutcome(fixedPart, proof.variablePart.outcome[0], candidate.variablePart.outcome, traderAmount, funding);
    }

    function _decodeState(bytes calldata appData) internal pure returns (MarginStateV2 memory state) {
        require(_format(appData) == FORMAT_STATE, "MarginApp: proof appData is not a state (format 2)");
        (, state) = abi.decode(appData, (uint8, MarginStateV2));
    }

    function _decodeSettlement(bytes calldata appData) internal pure returns (SettlementV2 memory settlement) {
        require(_format(appData) == FORMAT_SETTLEMENT, "MarginApp: candidate appData is not a settlement (format 3)");
        (, settlement) = abi.decode(appData, (uint8, SettlementV2));
    }

    /// @dev The first word, read before the rest: each format is decoded with its own struct.
    function _format(bytes calldata appData) internal pure returns (uint256) {
        return appData.length < 32 ? 0 : uint256(bytes32(appData[:32]));
    }

    /// @dev Closes every proof position at reports[i] (which must be for positions[i].market).
    function _settle(MarginStateV2 memory p, SettlementV2 memory c)
        internal
        view
        returns (bool ok, string memory why, Settlement memory s)
    {
        s.equity = p.traderCash;
        for (uint256 i = 0; i < p.positions.length; i++) {
            Position memory pos = p.positions[i];
            PriceReport memory r = c.reports[i];
            if (r.market != pos.market) return (false, "MarginApp: report market differs from the position's", s);
            MarketTerms memory t;
            (ok, why, t) = _checkReport(p.marks, c, r);
            if (!ok) return (false, why, s);
            int256 n = MarginMath.notional(pos.size, r.price);
            s.equity += MarginMath.unrealizedPnl(pos.size, pos.costBasis, r.price);
            s.maintenance += MarginMath.maintenance(t.tiers, n);
            s.penalty += MarginMath.penalty(n, t.liquidationPenalty);
        }
        return (true, "", s);
    }

    /// @dev A report counts if the channel's oracle signed it, it is at most settleWindow old at block.timestamp
    /// (so the mover picks among the last few seconds' reports only) and newer than the proof's mark.
    function _checkReport(Mark[] memory marks, SettlementV2 memory k, PriceReport memory r)
        internal
        view
        returns (bool, string memory, MarketTerms memory t)
    {
        bool found;
        (found, t) = _terms(k.terms, r.market);
        if (!found) return (false, "MarginApp: no terms for market", t);
        if (t.tiers.length == 0) return (false, "MarginApp: no maintenance tiers", t);
        if (r.price == 0) return (false, "MarginApp: zero price", t);
        if (r.timestamp > block.timestamp) return (false, "MarginApp: price from the future", t);
        if (block.timestamp - r.timestamp > t.settleWindow) return (false, "MarginApp: stale price", t);
        if (r.timestamp <= _markTimestamp(marks, r.market)) {
            return (false, "MarginApp: price not newer than the proof's mark", t);
        }
        (address signer, ECDSA.RecoverError err) =
            ECDSA.tryRecover(priceReportDigest(r.market, r.price, r.timestamp), r.signature);
        if (err != ECDSA.RecoverError.NoError || signer != k.oracle) {
            return (false, "MarginApp: report not signed by the oracle", t);
        }
        return (true, "", t);
    }

    function _terms(MarketTerms[] memory terms, bytes32 market) internal pure returns (bool, MarketTerms memory t) {
        for (uint256 i = 0; i < terms.length; i++) if (terms[i].market == market) return (true, terms[i]);
        return (false, t);
    }

    /// @dev The proof's mark time for `market`, 0 if it has none.
    function _markTimestamp(Mark[] memory marks, bytes32 market) internal pure returns (uint64) {
        for (uint256 i = 0; i < marks.length; i++) if (marks[i].market == market) return marks[i].timestamp;
        return 0;
    }

    /// @dev The proof's outcome must be one default-asset exit paying [hub, trader]; returns its total.
    function _proofFunding(FixedPart calldata fixedPart, Outcome.SingleAssetExit[] calldata outcome)
        internal
        pure
        returns (bool, string memory, uint256)
    {
        if (outcome.length != 1) return (false, "MarginApp: proof outcome must be one exit", 0);
        Outcome.SingleAssetExit calldata e = outcome[0];
        if (
            e.assetMetadata.assetType != Outcome.AssetType.Default ||
            e.assetMetadata.metadata.length != 0 ||
            e.allocations.length != 2 ||
            !_isSimple(e.allocations[0], fixedPart.participants[HUB]) ||
            !_isSimple(e.allocations[1], fixedPart.participants[TRADER])
        ) return (false, "MarginApp: proof outcome must pay [hub, trader]", 0);
        return (true, "", e.allocations[0].amount + e.allocations[1].amount);
    }

    function _isSimple(Outcome.Allocation calldata a, address to) internal pure returns (bool) {
        return a.destination == bytes32(uint256(uint160(to))) &&
            a.allocationType == uint8(Outcome.AllocationType.simple) &&
            a.metadata.length == 0;
    }

    /// @dev The candidate's outcome must be exactly [hub: funding - trader, trader] in the proof's asset.
    function _checkOutcome(
        FixedPart calldata fixedPart,
        Outcome.SingleAssetExit calldata proofExit,
        Outcome.SingleAssetExit[] calldata outcome,
        uint256 traderAmount,
        uint256 funding
    ) internal pure returns (bool, string memory) {
        if (outcome.length != 1) return (false, "MarginApp: outcome must be one exit");
        Outcome.SingleAssetExit calldata e = outcome[0];
        if (
            e.asset != proofExit.asset ||
            e.assetMetadata.assetType != Outcome.AssetType.Default ||
            e.assetMetadata.metadata.length != 0 ||
            e.allocations.length != 2 ||
            !_isSimple(e.allocations[0], fixedPart.participants[HUB]) ||
            !_isSimple(e.allocations[1], fixedPart.participants[TRADER])
        ) return (false, "MarginApp: outcome must pay [hub, trader] in the proof's asset");
        if (e.allocations[1].amount != traderAmount) return (false, "MarginApp: wrong trader allocation");
        if (e.allocations[0].amount != funding - traderAmount) return (false, "MarginApp: wrong hub allocation");
        return (true, "");
    }
}
