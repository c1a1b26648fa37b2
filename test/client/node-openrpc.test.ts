/**
 * The trader node's schema and its typed client agree: the committed OpenRPC
 * document is the one the node serves (built from the method table the
 * server parses params with), and every method of the typed client is in it
 * with the same params (names, and which are optional), and the other way
 * round.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { openRpcDocument, type OpenRpcDocument } from "../../src/client/node/openrpc.ts";
import { NODE_CLIENT_PARAMS, NodeClient } from "../../src/client/node-client.ts";
import { OPENRPC_FILE } from "../../scripts/openrpc.ts";

const committed = JSON.parse(readFileSync(OPENRPC_FILE, "utf8")) as OpenRpcDocument;

test("the committed document is the one the node serves (run scripts/openrpc.ts after changing a method)", () => {
  assert.equal(committed, JSON.parse(JSON.stringify(openRpcDocument())));
});

test("every method of the document is in the typed client with the same params, and the other way round", () => {
  const fromDocument = Object.fromEntries(
    committed.methods.map((m) => [m.name, m.params.map((p) => (p.required ? p.name : `${p.name}?`))]),
  );
  assert.equal(Object.keys(NODE_CLIENT_PARAMS).sort(), Object.keys(fromDocument).sort());
  for (const [name, params] of Object.entries(NODE_CLIENT_PARAMS))
    assert.equal([...params].sort(), [...fromDocument[name]!].sort(), name);
});

test("the typed client has a call for every method", () => {
  const client = new NodeClient({ url: "http://127.0.0.1:1/", token: "unused-unused-unused" }) as unknown as Record<
    string,
    unknown
  >;
  for (const name of Object.keys(NODE_CLIENT_PARAMS)) {
    const call = name === "unsubscribe" ? "subscribe" : name; // unsubscribe is the Subscription's
    assert.type(client[call], "function", name);
  }
});

test("money params are decimal strings in the document, never numbers", () => {
  const trade = committed.methods.find((m) => m.name === "trade")!;
  for (const name of ["size", "limitPrice"])
    assert.is(trade.params.find((p) => p.name === name)?.schema.type, "string", name);
});

test.run();
