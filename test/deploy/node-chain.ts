/**
 * A chain in its own process: Hardhat 3's `hardhat node` (a JSON-RPC server,
 * automining, 20 funded accounts, chain id 31337), as an operator runs a
 * development chain, rather than the in-process EDR the other suites share.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { JsonRpcProvider } from "ethers";
import { rpcProvider } from "../../src/cli/wiring.ts";
import { freePort } from "../e2e/harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

export interface NodeChain {
  readonly url: string;
  readonly provider: JsonRpcProvider;
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startNodeChain(): Promise<NodeChain> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(ROOT, "node_modules/.bin/node"),
    [join(ROOT, "node_modules/hardhat/dist/src/cli.js"), "node", "--hostname", "127.0.0.1", "--port", String(port)],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Started HTTP")) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) => reject(new Error(`hardhat node exited ${code}\n${output}`)));
  });
  // Keep draining its output (one line per request): a full pipe would stall the node.
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  const provider = rpcProvider(url, 50);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url,
    provider,
    rpc: (method, params = []) => provider.send(method, params),
    async stop() {
      provider.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
