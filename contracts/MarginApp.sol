// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

import {IForceMoveApp} from "@statechannels/nitro-protocol/contracts/interfaces/IForceMoveApp.sol";
import {NitroUtils} from "@statechannels/nitro-protocol/contracts/libraries/NitroUtils.sol";
import {ExitFormat as Outcome} from "@statechannels/exit-format/contracts/ExitFormat.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MarginMath} from "./lib/MarginMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MarketTerms} from "./lib/MarginTypes.sol";

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
/// States commit to the channel's constants (oracle, risk hash, terms) by one hash over a hash per
/// market; the candidate carries in full the terms of the markets the proof holds (with the signed
/// report each settles at) and only the hashes of the others, all read from calldata in place
/// (contracts/lib/MarginTypes.sol has both layouts).
contract MarginApp is IForceMoveApp, EIP712 {
    uint8 internal constant FORMAT_STATE = 2;
    uint8 internal constant FORMAT_SETTLEMENT = 3;
    uint8 internal constant TRADER = 0;
    uint8 internal constant HUB = 1;
    bytes32 internal constant PRICE_REPORT_TYPEHASH =
        keccak256("PriceReport(bytes32 market,uint256 price,uint64 timestamp)");

    // Format 3 byte offsets (MarginTypes.sol): head, slot tags, packed terms and report sizes.
    uint256 internal constant C_CASH = 32;
    uint256 internal constant C_ORACLE = 64;
    uint256 internal constant C_RISK = 84;
    uint256 internal constant C_COUNT = 116;
    uint256 internal constant C_SLOTS = 117;
    uint8 internal constant SLOT_HASH = 0;
    uint8 internal constant SLOT_FULL = 1;
    uint256 internal constant TERMS_HEAD = 45;
    uint256 internal constant TIER = 68;
    uint256 internal constant REPORT = 105;
    /// @dev Positions are tracked in one bitmap word.
    uint256 internal constant MAX_POSITIONS = 256;

    /// @dev The proof's fields (format 2), as calldata offsets into its appData where they are lists.
    struct Proof {
        bytes32 constantsHash;
        int256 traderCash;
        uint256 positionsAt; // first element (4 words each)
        uint256 positionCount;
        uint256 marksAt; // first element (3 words each)
        uint256 markCount;
        uint256 settled; // bitmap: positions a slot has settled
    }

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
        require(terms.length <= type(uint8).max, "MarginApp: too many markets");
        bytes32[] memory hashes = new bytes32[](terms.length);
        for (uint256 j = 0; j < terms.length; j++) hashes[j] = marketTermsHash(terms[j]);
        return keccak256(abi.encodePacked(oracle, riskParamsHash, hashes));
    }

    /// @notice keccak256 of one market's packed terms, as a candidate carries them.
    function marketTermsHash(MarketTerms memory t) public pure returns (bytes32) {
        bytes memory b =
            abi.encodePacked(t.market, t.settleWindow, t.liquidationPenalty, SafeCast.toUint8(t.tiers.length));
        for (uint256 i = 0; i < t.tiers.length; i++) {
            b = bytes.concat(b, abi.encodePacked(t.tiers[i].notionalFloor, t.tiers[i].mmf, t.tiers[i].mmDeduction));
        }
        return keccak256(b);
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
        (bool ok, string memory why, uint256 funding, uint256 toHub, uint256 toTrader) =
            _payouts(fixedPart, proof.variablePart.outcome, candidate.variablePart.outcome);
        if (!ok) return (false, why);

        int256 cash;
        (ok, why, cash) = _settle(proof.variablePart.appData, candidate.variablePart.appData);
        if (!ok) return (false, why);
        uint256 traderAmount = cash <= 0 ? 0 : (uint256(cash) > funding ? funding : uint256(cash));
        if (toTrader != traderAmount) return (false, "MarginApp: wrong trader allocation");
        if (toHub != funding - traderAmount) return (false, "MarginApp: wrong hub allocation");
        return (true, "");
    }

    /// @dev Both outcomes must be one default-asset exit paying [hub, trader] by simple allocations, the
    /// candidate's in the proof's asset. Returns the proof's total and the candidate's two amounts.
    function _payouts(
        FixedPart calldata fixedPart,
        Outcome.SingleAssetExit[] calldata proofOutcome,
        Outcome.SingleAssetExit[] calldata outcome
    ) internal pure returns (bool, string memory, uint256 funding, uint256 toHub, uint256 toTrader) {
        bytes32 hub = bytes32(uint256(uint160(fixedPart.participants[HUB])));
        bytes32 trader = bytes32(uint256(uint160(fixedPart.participants[TRADER])));
        (uint256 fault, address asset, uint256 a, uint256 b) = _payout(proofOutcome, hub, trader);
        if (fault == 1) return (false, "MarginApp: proof outcome must be one exit", 0, 0, 0);
        if (fault == 2) return (false, "MarginApp: proof outcome must pay [hub, trader]", 0, 0, 0);
        funding = a + b;
        address proofAsset = asset;
        (fault, asset, toHub, toTrader) = _payout(outcome, hub, trader);
        if (fault == 1) return (false, "MarginApp: outcome must be one exit", 0, 0, 0);
        if (fault == 2 || asset != proofAsset) {
            return (false, "MarginApp: outcome must pay [hub, trader] in the proof's asset", 0, 0, 0);
        }
        return (true, "", funding, toHub, toTrader);
    }

    /// @dev 0 and (asset, hub amount, trader amount) if `outcome` is one default-asset exit of two simple
    /// allocations to `hub` then `trader`; 1 if it is not one exit, 2 if that exit is not such.
    function _payout(Outcome.SingleAssetExit[] calldata outcome, bytes32 hub, bytes32 trader)
        internal
        pure
        returns (uint256 fault, address asset, uint256 toHub, uint256 toTrader)
    {
        if (outcome.length != 1) return (1, address(0), 0, 0);
        Outcome.SingleAssetExit calldata e = outcome[0];
        Outcome.Allocation[] calldata allocations = e.allocations;
        if (
            e.assetMetadata.assetType != Outcome.AssetType.Default ||
            e.assetMetadata.metadata.length != 0 ||
            allocations.length != 2
        ) return (2, address(0), 0, 0);
        Outcome.Allocation calldata h = allocations[0];
        Outcome.Allocation calldata t = allocations[1];
        if (!_isSimple(h, hub) || !_isSimple(t, trader)) return (2, address(0), 0, 0);
        return (0, e.asset, h.amount, t.amount);
    }

    function _isSimple(Outcome.Allocation calldata a, bytes32 to) internal pure returns (bool) {
        return a.destination == to &&
            a.allocationType == uint8(Outcome.AllocationType.simple) &&
            a.metadata.length == 0;
    }

    /// @dev The candidate's cash, checked: the proof's positions closed at the candidate's reports under the
    /// proof's constants, less the penalty when the account is below maintenance at those prices.
    function _settle(bytes calldata pd, bytes calldata cd) internal view returns (bool, string memory, int256) {
        Proof memory p = _readProof(pd);
        require(_format(cd) == FORMAT_SETTLEMENT, "MarginApp: candidate appData is not a settlement (format 3)");
        (bool ok, string memory why, uint256[] memory held, uint256 heldCount) = _checkConstants(cd, p.constantsHash);
        if (!ok) return (false, why, 0);
        if (heldCount != p.positionCount) return (false, "MarginApp: one report per proof position", 0);

        // Each slot settles a distinct position and there are as many as positions: all are settled.
        Settlement memory s = Settlement(p.traderCash, 0, 0);
        for (uint256 k = 0; k < heldCount; k++) {
            (ok, why) = _settleMarket(pd, cd, held[k], p, s);
            if (!ok) return (false, why, 0);
        }
        int256 penalty = 0;
        if (s.equity < s.maintenance) {
            int256 room = s.equity > 0 ? s.equity : int256(0);
            penalty = s.penalty < room ? s.penalty : room;
        }
        int256 cash = s.equity - penalty;
        if (int256(_load(cd, C_CASH)) != cash) return (false, "MarginApp: wrong trader cash", 0);
        return (true, "", cash);
    }

    /// @dev The proof's appData (format 2) in place. The head and both lists are checked to lie inside it
    /// here (checked arithmetic: a huge offset reverts), so later reads of them need no check.
    function _readProof(bytes calldata pd) internal pure returns (Proof memory p) {
        require(_format(pd) == FORMAT_STATE, "MarginApp: proof appData is not a state (format 2)");
        require(pd.length >= 64, "MarginApp: proof appData out of bounds");
        uint256 t0 = _load(pd, 32);
        require(t0 + 160 <= pd.length, "MarginApp: proof appData out of bounds");
        p.constantsHash = bytes32(_load(pd, t0 + 32));
        p.traderCash = int256(_load(pd, t0 + 64));
        uint256 at = t0 + _load(pd, t0 + 96);
        require(at + 32 <= pd.length, "MarginApp: proof appData out of bounds");
        p.positionCount = _load(pd, at);
        p.positionsAt = at + 32;
        at = t0 + _load(pd, t0 + 128);
        require(at + 32 <= pd.length, "MarginApp: proof appData out of bounds");
        p.markCount = _load(pd, at);
        p.marksAt = at + 32;
        require(p.positionCount <= MAX_POSITIONS, "MarginApp: too many positions");
        require(p.positionsAt + 128 * p.positionCount <= pd.length, "MarginApp: proof positions out of bounds");
        require(p.marksAt + 96 * p.markCount <= pd.length, "MarginApp: proof marks out of bounds");
    }

    /// @dev Walks the candidate's slots: the constants they commit to must be the proof's, and the last slot
    /// must end where the appData does. Reads in the walk are unchecked: one past the end only walks on to a
    /// length that cannot match (each step is bounded, so no offset wraps), and nothing read is used
    /// unless the length matches, which puts every slot inside the appData. Returns where each held
    /// market's terms start.
    function _checkConstants(bytes calldata cd, bytes32 expected)
        internal
        pure
        returns (bool, string memory, uint256[] memory held, uint256 heldCount)
    {
        if (cd.length < C_SLOTS) return (false, "MarginApp: candidate appData length", held, 0);
        held = new uint256[](_load(cd, C_COUNT) >> 248);
        // The hash's preimage: oracle and risk hash (contiguous in the candidate), then one hash per market.
        uint256 preimage;
        uint256 end;
        assembly {
            preimage := mload(0x40)
            end := add(preimage, add(52, mul(32, mload(held))))
            mstore(0x40, end)
            calldatacopy(preimage, add(cd.offset, C_ORACLE), 52)
        }
        uint256 at = C_SLOTS;
        for (uint256 w = preimage + 52; w < end; w += 32) {
            (uint256 tag, bytes32 h, uint256 next) = _slot(cd, at);
            if (tag == SLOT_FULL) held[heldCount++] = at + 1;
            else if (tag != SLOT_HASH) return (false, "MarginApp: unknown market slot", held, 0);
            assembly {
                mstore(w, h)
            }
            at = next;
        }
        if (at != cd.length) return (false, "MarginApp: candidate appData length", held, 0);
        bytes32 actual;
        assembly {
            actual := keccak256(preimage, sub(end, preimage))
        }
        if (actual != expected) return (false, "MarginApp: constants differ from the proof's", held, 0);
        return (true, "", held, heldCount);
    }

    /// @dev Closes the proof's position in the market whose terms start at `at` in the candidate, at the
    /// report after them.
    function _settleMarket(bytes calldata pd, bytes calldata cd, uint256 at, Proof memory p, Settlement memory s)
        internal
        view
        returns (bool, string memory)
    {
        bytes32 market = bytes32(_load(cd, at));
        uint256 i = 0;
        while (i < p.positionCount && bytes32(_load(pd, p.positionsAt + 128 * i)) != market) i++;
        if (i == p.positionCount) return (false, "MarginApp: report for a market the proof does not hold");
        if (p.settled & (1 << i) != 0) return (false, "MarginApp: two reports for one position");
        p.settled |= 1 << i;

        if (_load(cd, at + 44) >> 248 == 0) return (false, "MarginApp: no maintenance tiers");
        (bool ok, string memory why, uint256 price) = _checkReport(pd, cd, at, p, market);
        if (!ok) return (false, why);
        _accrue(pd, p.positionsAt + 128 * i, cd, at, price, s);
        return (true, "");
    }

    /// @dev Adds closing the proof position at `pos` at `price` to `s`, under the terms at `at`.
    function _accrue(bytes calldata pd, uint256 pos, bytes calldata cd, uint256 at, uint256 price, Settlement memory s)
        internal
        pure
    {
        int256 size = int256(_load(pd, pos + 32));
        int256 n = MarginMath.notional(size, price);
        s.equity += MarginMath.unrealizedPnl(size, int256(_load(pd, pos + 64)), price);
        s.maintenance += _maintenance(cd, at + TERMS_HEAD, _load(cd, at + 44) >> 248, n);
        s.penalty += MarginMath.penalty(n, uint32(_load(cd, at + 40) >> 224));
    }

    /// @dev The report after the terms at `at` counts if the channel's oracle signed it for the terms'
    /// market, it is at most settleWindow old at block.timestamp (so the mover picks among the last few
    /// seconds' reports only) and newer than the proof's mark. Returns its price.
    function _checkReport(bytes calldata pd, bytes calldata cd, uint256 at, Proof memory p, bytes32 market)
        internal
        view
        returns (bool, string memory, uint256 price)
    {
        uint256 r = at + TERMS_HEAD + TIER * (_load(cd, at + 44) >> 248);
        price = _load(cd, r);
        uint256 timestamp = _load(cd, r + 32) >> 192;
        if (price == 0) return (false, "MarginApp: zero price", 0);
        if (timestamp > block.timestamp) return (false, "MarginApp: price from the future", 0);
        if (block.timestamp - timestamp > _load(cd, at + 32) >> 192) {
            return (false, "MarginApp: stale price", 0);
        }
        if (timestamp <= _markTimestamp(pd, p, market)) {
            return (false, "MarginApp: price not newer than the proof's mark", 0);
        }
        if (!_signedByOracle(cd, market, price, timestamp, r + 40)) {
            return (false, "MarginApp: report not signed by the oracle", 0);
        }
        return (true, "", price);
    }

    /// @dev The (v, r, s) form of what tryRecover(digest, 65-byte signature) does: low-s only, no zero signer.
    function _signedByOracle(bytes calldata cd, bytes32 market, uint256 price, uint256 timestamp, uint256 sig)
        internal
        view
        returns (bool)
    {
        (address signer, ECDSA.RecoverError err) = ECDSA.tryRecover(
            priceReportDigest(market, price, uint64(timestamp)),
            uint8(_load(cd, sig + 64) >> 248),
            bytes32(_load(cd, sig)),
            bytes32(_load(cd, sig + 32))
        );
        return err == ECDSA.RecoverError.NoError && signer == address(uint160(_load(cd, C_ORACLE) >> 96));
    }

    /// @dev requirement(n) at the packed tiers from `tiersAt`: the tier is the last after the first whose
    /// floor is <= n, else the first (src/engine/margin.ts).
    function _maintenance(bytes calldata cd, uint256 tiersAt, uint256 count, int256 n) internal pure returns (int256) {
        if (n == 0) return 0;
        uint256 i = count - 1;
        while (i > 0 && _load(cd, tiersAt + TIER * i) > uint256(n)) i--;
        uint256 t = tiersAt + TIER * i;
        return MarginMath.requirement(n, uint32(_load(cd, t + 32) >> 224), _load(cd, t + 36));
    }

    /// @dev The proof's mark time for `market`, 0 if it has none.
    function _markTimestamp(bytes calldata pd, Proof memory p, bytes32 market) internal pure returns (uint256) {
        for (uint256 i = 0; i < p.markCount; i++) {
            uint256 m = p.marksAt + 96 * i;
            if (bytes32(_load(pd, m)) == market) return _load(pd, m + 64);
        }
        return 0;
    }

    /// @dev The first word, read before the rest: each format is read with its own layout.
    function _format(bytes calldata appData) internal pure returns (uint256) {
        return appData.length < 32 ? 0 : _load(appData, 0);
    }

    /// @dev The slot at `at`: its tag, the market's terms hash (carried, or of the terms carried) and where
    /// the next slot starts (unchecked reads, see _checkConstants).
    function _slot(bytes calldata cd, uint256 at) internal pure returns (uint256 tag, bytes32 h, uint256 next) {
        tag = _load(cd, at) >> 248;
        if (tag == SLOT_HASH) return (tag, bytes32(_load(cd, at + 1)), at + 33);
        if (tag != SLOT_FULL) return (tag, 0, at);
        uint256 len = TERMS_HEAD + TIER * (_load(cd, at + 45) >> 248);
        assembly {
            let scratch := mload(0x40)
            calldatacopy(scratch, add(cd.offset, add(at, 1)), len)
            h := keccak256(scratch, len)
        }
        return (tag, h, at + 1 + len + REPORT);
    }

    /// @dev The 32 bytes at `at` in `a`, unchecked: callers have checked (or will check) that what they
    /// use lies inside `a`.
    function _load(bytes calldata a, uint256 at) internal pure returns (uint256 v) {
        assembly {
            v := calldataload(add(a.offset, at))
        }
    }
}
