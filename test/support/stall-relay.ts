/**
 * A TCP relay between etcdgate and etcd that can hold back etcd's answers. TLS runs end
 * to end through it (etcd's certificate names 127.0.0.1), so neither side notices the
 * relay; while it is stalled, bytes from etcdgate still reach etcd (requests are applied)
 * but nothing etcd sends back is delivered. That makes "etcd applied the request but
 * etcdgate never saw the answer" a state a test can hold, without racing a timer.
 */
import * as net from 'node:net';

export interface StallRelay {
  /** https://127.0.0.1:PORT, to use as an upstream endpoint. */
  readonly endpoint: string;
  /** Stops delivering etcd's bytes to etcdgate (they are queued). */
  stall(): void;
  /** Delivers what was queued and everything after it. */
  resume(): void;
  /** Destroys every relayed connection (etcdgate sees its connection to etcd lost). */
  dropConnections(): void;
  /** Refuses new connections from now on (etcdgate cannot reach etcd). */
  refuse(): void;
  close(): Promise<void>;
}

/** Starts a relay to the etcd client URL `target` (https://host:port). */
export async function startStallRelay(target: string): Promise<StallRelay> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  /** etcd's bytes held back while stalled, per relayed connection, in order. */
  const held = new Map<net.Socket, Buffer[]>();
  let stalled = false;
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    const queue: Buffer[] = [];
    held.set(client, queue);
    client.on('close', () => held.delete(client));
    client.pipe(upstream);
    // Not piped: pipe() resumes its source on drain, which would end a stall early.
    upstream.on('data', (chunk: Buffer) => {
      if (stalled) queue.push(chunk);
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    endpoint: `https://127.0.0.1:${address.port}`,
    stall() {
      stalled = true;
    },
    resume() {
      stalled = false;
      for (const [client, queue] of held) {
        for (const chunk of queue.splice(0)) client.write(chunk);
      }
    },
    dropConnections() {
      for (const socket of [...sockets]) socket.destroy();
    },
    refuse() {
      refusing = true;
    },
    close: async () => {
      for (const socket of [...sockets]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
