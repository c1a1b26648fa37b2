/**
 * NitroAdjudicator's events as a typed union, decoded from raw logs. Every
 * event the watcher delivers names its channel (the indexed first topic),
 * and a ChallengeRegistered carries the challenged state back in protocol
 * types, so a responder can compare it with the latest state it holds.
 */
import { concat, type Interface, type Log, type Result } from "ethers";
import type { AllocationType, AssetType, Outcome, Signature65, VariablePart } from "../protocol/state.ts";
import type { Address, Bytes32, Hex } from "../protocol/types.ts";

export const WATCHED_EVENTS = [
  "Deposited",
  "ChallengeRegistered",
  "ChallengeCleared",
  "Checkpointed",
  "Concluded",
  "AllocationUpdated",
] as const;
export type WatchedEventName = (typeof WATCHED_EVENTS)[number];

export interface EventMeta {
  readonly channelId: Bytes32;
  readonly blockNumber: number;
  readonly blockHash: Bytes32;
  readonly transactionHash: Bytes32;
  readonly logIndex: number;
}

export interface SignedVariablePart {
  readonly variablePart: VariablePart;
  readonly sigs: readonly Signature65[];
}

export type AdjudicatorEvent = EventMeta &
  (
    | { readonly name: "Deposited"; readonly asset: Address; readonly destinationHoldings: bigint }
    | {
        readonly name: "ChallengeRegistered";
        readonly finalizesAt: number;
        readonly proof: readonly SignedVariablePart[];
        readonly candidate: SignedVariablePart;
      }
    | { readonly name: "ChallengeCleared"; readonly newTurnNumRecord: number }
    | { readonly name: "Checkpointed"; readonly newTurnNumRecord: number }
    | { readonly name: "Concluded"; readonly finalizesAt: number }
    | {
        readonly name: "AllocationUpdated";
        readonly assetIndex: bigint;
        readonly initialHoldings: bigint;
        readonly finalHoldings: bigint;
      }
  );

/** Decodes one adjudicator log; `undefined` for events the watcher does not deliver. */
export function decodeEvent(iface: Interface, log: Log): AdjudicatorEvent | undefined {
  const parsed = iface.parseLog(log);
  if (parsed === null) return undefined;
  const meta: EventMeta = {
    channelId: String(parsed.args[0]).toLowerCase() as Bytes32,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash as Bytes32,
    transactionHash: log.transactionHash as Bytes32,
    logIndex: log.index,
  };
  const a = parsed.args;
  switch (parsed.name as WatchedEventName) {
    case "Deposited":
      return Object.freeze({ ...meta, name: "Deposited", asset: a[1] as Address, destinationHoldings: a[2] as bigint });
    case "ChallengeRegistered":
      return Object.freeze({
        ...meta,
        name: "ChallengeRegistered",
        finalizesAt: Number(a[1]),
        proof: (a[2] as Result).toArray().map((p) => signedVariablePart(p as Result)),
        candidate: signedVariablePart(a[3] as Result),
      });
    case "ChallengeCleared":
      return Object.freeze({ ...meta, name: "ChallengeCleared", newTurnNumRecord: Number(a[1]) });
    case "Checkpointed":
      return Object.freeze({ ...meta, name: "Checkpointed", newTurnNumRecord: Number(a[1]) });
    case "Concluded":
      return Object.freeze({ ...meta, name: "Concluded", finalizesAt: Number(a[1]) });
    case "AllocationUpdated":
      return Object.freeze({
        ...meta,
        name: "AllocationUpdated",
        assetIndex: a[1] as bigint,
        initialHoldings: a[2] as bigint,
        finalHoldings: a[3] as bigint,
      });
    default:
      return undefined;
  }
}

function signedVariablePart(r: Result): SignedVariablePart {
  const [vp, sigs] = [r[0] as Result, r[1] as Result];
  const outcome: Outcome = (vp[0] as Result).toArray().map((exitResult) => {
    const exit = exitResult as Result;
    const meta = exit[1] as Result;
    return {
      asset: exit[0] as Address,
      assetMetadata: { assetType: Number(meta[0]) as AssetType, metadata: meta[1] as Hex },
      allocations: (exit[2] as Result).toArray().map((allocation) => {
        const al = allocation as Result;
        return {
          destination: al[0] as Bytes32,
          amount: al[1] as bigint,
          allocationType: Number(al[2]) as AllocationType,
          metadata: al[3] as Hex,
        };
      }),
    };
  });
  return {
    variablePart: { outcome, appData: vp[1] as Hex, turnNum: Number(vp[2]), isFinal: vp[3] as boolean },
    sigs: sigs.toArray().map((s) => {
      const sig = s as Result;
      return concat([sig[1] as string, sig[2] as string, new Uint8Array([Number(sig[0])])]) as Signature65;
    }),
  };
}
