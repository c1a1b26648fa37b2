/**
 * A state's hash, once per state object: the node names a new state by its
 * hash in the history, the `state` event and the call's answer, and hashing
 * an 1,800-byte appData costs about 0.2 ms.
 */
import { stateHashOf } from "../../protocol/sign.ts";
import type { State } from "../../protocol/state.ts";
import type { Bytes32 } from "../../protocol/types.ts";

const hashes = new WeakMap<State, Bytes32>();

export function stateHash(state: State): Bytes32 {
  let hash = hashes.get(state);
  if (hash === undefined) hashes.set(state, (hash = stateHashOf(state)));
  return hash;
}
