import { createServer } from "node:net";

/**
 * A free loopback port below Linux's ephemeral range (32768-60999). A hub
 * restarted on its port after a kill -9 must find it free; a port from the
 * ephemeral range may meanwhile be the local end of any outgoing connection
 * on the machine (EADDRINUSE), one below it only if something listens there.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error("no free port below the ephemeral range after 50 tries");
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
