/**
 * What `hub start` and every `trader` command check before trusting the
 * configured MarginApp: code is deployed at the address, and its EIP-712
 * domain (EIP-5267 `eip712Domain()`) is the one oracle reports are signed
 * for here: our name and version, this chain, this address. A wrong address
 * (another chain's registry, a token's address pasted in the wrong field)
 * fails here with a typed error instead of as rejected prices later.
 */
import { Contract, getAddress, type Provider } from "ethers";
import { ChainError } from "../errors/chain.ts";
import { ORACLE_DOMAIN_NAME, ORACLE_DOMAIN_VERSION } from "../oracle/report.ts";
import type { Address } from "../protocol/types.ts";
import { read, toChainError, type CallOptions } from "./tx.ts";

const EIP5267_ABI = [
  "function eip712Domain() view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions)",
];

export async function checkMarginApp(
  provider: Provider,
  address: Address,
  chainId: bigint,
  options: CallOptions = {},
): Promise<void> {
  const code = await read("marginApp code", () => provider.getCode(address), options);
  if (code === "0x") throw new ChainError("CONTRACT_MISSING", { details: { contract: "MarginApp", address } });
  let domain: { name: string; version: string; chainId: bigint; verifyingContract: string };
  try {
    const [, name, version, domainChainId, verifyingContract] = (await new Contract(
      address,
      EIP5267_ABI,
      provider,
    ).getFunction("eip712Domain")()) as [string, string, string, bigint, string];
    domain = { name, version, chainId: domainChainId, verifyingContract };
  } catch (cause) {
    const mapped = toChainError(cause, "eip712Domain", options.signal);
    if (mapped.code === "RPC_UNAVAILABLE" || mapped.code === "ABORTED") throw mapped;
    throw new ChainError("DOMAIN_MISMATCH", {
      details: { contract: "MarginApp", address, reason: "no eip712Domain() at the address" },
      cause,
    });
  }
  const expected = {
    name: ORACLE_DOMAIN_NAME,
    version: ORACLE_DOMAIN_VERSION,
    chainId,
    verifyingContract: getAddress(address),
  };
  const actual = { ...domain, verifyingContract: getAddress(domain.verifyingContract) };
  const differs = (Object.keys(expected) as (keyof typeof expected)[]).filter((k) => expected[k] !== actual[k]);
  if (differs.length > 0)
    throw new ChainError("DOMAIN_MISMATCH", {
      details: {
        address,
        fields: differs.join(","),
        expected: `${expected.name}/${expected.version}/${expected.chainId}`,
        actual: `${actual.name}/${actual.version}/${actual.chainId}`,
      },
    });
}
