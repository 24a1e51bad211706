/**
 * Free loopback ports for tests that must name a port up front (etcd's flags, static
 * cluster URLs). Prefer binding port 0 directly when the server under test allows it.
 */
import { createServer } from 'node:net';

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the
 * port the kernel chose, closes. Another process could take it before the caller binds;
 * callers that start a server on it should treat "address in use" as retryable.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the bound port'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
