/**
 * An embedded development chain: Hardhat's EDR node serving JSON-RPC on
 * loopback, so the hub, traders and tools talk to it exactly as they would
 * to a remote node.
 */
import type { JsonRpcServer } from "hardhat/types/network";
import { ChainError } from "../errors/chain.ts";

export interface LocalChainInit {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
}

export class LocalChain {
  #server: JsonRpcServer | undefined;
  #url: string | undefined;
  readonly #init: LocalChainInit;

  constructor(init: LocalChainInit = {}) {
    this.#init = init;
  }

  get url(): string {
    if (this.#url === undefined) throw new Error("local chain is not started");
    return this.#url;
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    // Hardhat is a development dependency: the published package runs without it, all but this.
    const hardhat = await import("hardhat").catch((cause: unknown) => {
      throw new ChainError("DEV_CHAIN_UNAVAILABLE", { cause });
    });
    const { network } = hardhat.default;
    const host = this.#init.host ?? "127.0.0.1";
    this.#server = await network.createServer("default", host, this.#init.port ?? 0);
    const { address, port } = await this.#server.listen();
    this.#url = `http://${address}:${port}`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#url = undefined;
    await server?.close();
  }
}
