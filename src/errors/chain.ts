/**
 * Errors of the chain shell (5000–5999): RPC, transactions, the adjudicator's
 * revert reasons that callers act on, key files, the watcher. Every revert
 * keeps the contract's reason in `context.reason`, so a caller that does not
 * know a reason still sees it.
 */
import { type Catalogue, errorClassFor } from "./base.ts";

export const CHAIN_ERRORS = {
  RPC_UNAVAILABLE: { number: 5000, title: "The chain RPC endpoint cannot be reached" },
  CHAIN_ID_MISMATCH: { number: 5001, title: "The RPC endpoint serves a different chain than configured" },
  CONTRACT_MISSING: { number: 5002, title: "No contract code at the configured address" },
  NO_CHAIN: { number: 5003, title: "This hub runs without a chain, and the request needs one" },
  DEV_CHAIN_UNAVAILABLE: {
    number: 5004,
    title:
      "The embedded development chain needs the hardhat package: npm install hardhat (or run `hardhat node` and `nitro-margin deploy`)",
  },
  TX_REVERTED: { number: 5100, title: "The transaction reverted" },
  TX_TIMEOUT: { number: 5101, title: "The transaction was not confirmed in time" },
  ABORTED: { number: 5102, title: "The chain operation was aborted" },
  DEPOSIT_RACE: {
    number: 5200,
    title: "The channel's holdings differ from the expected amount; nothing was deposited",
  },
  CHANNEL_FINALIZED: { number: 5201, title: "The channel is already finalized on chain" },
  CHALLENGE_ONGOING: { number: 5202, title: "The channel is under challenge on chain" },
  CHANNEL_NOT_FINALIZED: { number: 5203, title: "The channel is not finalized on chain yet" },
  TURN_NUM_NOT_INCREASED: { number: 5204, title: "The state's turn number does not exceed the one recorded on chain" },
  INSUFFICIENT_TOKEN_BALANCE: { number: 5205, title: "The wallet holds fewer collateral tokens than the deposit" },
  WATCHER_DEEP_REORG: { number: 5300, title: "A block the watcher had already confirmed was reorganised away" },
  WATCHER_HANDLER_FAILED: { number: 5301, title: "The watcher's event handler failed; the batch will be retried" },
  DISPUTE_ANSWER_FAILED: { number: 5302, title: "Answering one channel's dispute event failed; it will be retried" },
  FLOW_STEP_FAILED: { number: 5303, title: "A step of one of the hub's flows failed; it will be tried again" },
  KEYSTORE_INVALID: { number: 5400, title: "The key file cannot be decrypted or parsed" },
  KEYSTORE_PASSWORD_MISSING: {
    number: 5401,
    title: "No password for the keystore was given (environment variable or password file)",
  },
  PLAIN_KEY_REFUSED: {
    number: 5402,
    title: "A plain private key file is refused without the explicit development flag",
  },
  KEYSTORE_EXISTS: { number: 5403, title: "A key file already exists at that path" },
  // deployment and the address registry (deployments/<chainId>.json): 5500-5599
  DEPLOYMENT_FAILED: {
    number: 5500,
    title: "The deployment did not complete; run the same command again to resume it",
  },
  REGISTRY_MISSING: {
    number: 5501,
    title: "No deployment is recorded for this chain; run `nitro-margin deploy` or give the addresses in the config",
  },
  REGISTRY_INVALID: { number: 5502, title: "The deployment registry file is not valid" },
  REGISTRY_CHAIN_MISMATCH: { number: 5503, title: "The deployment registry records another chain" },
  DOMAIN_MISMATCH: { number: 5504, title: "MarginApp's EIP-712 domain is not the one this program signs for" },
  BALANCE_BELOW_FLOOR: {
    number: 5505,
    title:
      "The hub's ETH balance is below its configured floor (chain.minBalance): it could not pay for the disputes it may have to answer",
  },
  CONTRACT_ARTIFACT_MISSING: {
    number: 5506,
    title:
      "A contract's ABI and bytecode are missing: run `npm run build:contracts` (from source) or reinstall the package",
  },
} as const satisfies Catalogue;

export type ChainErrorCode = keyof typeof CHAIN_ERRORS;
export class ChainError extends errorClassFor("chain", CHAIN_ERRORS, "ChainError") {}
