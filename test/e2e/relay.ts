import { connect, createServer, type Socket } from 'node:net';

/** What a hostile relay may do to the bytes of an upgraded channel (after the HTTP 101 response). */
export interface Tamper {
  /** Rewrites Keep → client bytes; `offset` counts channel bytes already passed in that direction. */
  toClient?: (chunk: Buffer, offset: number) => Buffer;
  /** Rewrites client → Keep bytes. */
  toKeep?: (chunk: Buffer, offset: number) => Buffer;
}

export interface Relay {
  url: string;
  /** Channel bytes the client sent towards the Keep, over all upgraded connections. */
  channelBytesFromClient(): number;
  close(): Promise<void>;
}

/**
 * A TCP relay standing where an untrusted Keep Manager's network path is: it passes HTTP through untouched and
 * lets a test tamper with the raw channel bytes once a connection has been upgraded.
 */
export function startRelay(targetPort: number, tamper: Tamper = {}): Promise<Relay> {
  let fromClient = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    let upgraded = false;
    let head = Buffer.alloc(0);
    let toClientOffset = 0;
    let toKeepOffset = 0;
    client.on('data', (chunk: Buffer) => {
      if (upgraded) {
        fromClient += chunk.length;
        const out = tamper.toKeep ? tamper.toKeep(chunk, toKeepOffset) : chunk;
        toKeepOffset += chunk.length;
        upstream.write(out);
      } else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (upgraded) {
        const out = tamper.toClient ? tamper.toClient(chunk, toClientOffset) : chunk;
        toClientOffset += chunk.length;
        client.write(out);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (head.subarray(0, 12).toString() === 'HTTP/1.1 101' && end !== -1) {
        upgraded = true;
        client.write(head.subarray(0, end + 4));
        const rest = head.subarray(end + 4);
        if (rest.length > 0) {
          const out = tamper.toClient ? tamper.toClient(rest, 0) : rest;
          toClientOffset += rest.length;
          client.write(out);
        }
      } else if (!head.subarray(0, 12).toString().startsWith('HTTP/1.1 101'.slice(0, head.length))) {
        client.write(head);
        head = Buffer.alloc(0);
      }
    });
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${address.port}`,
        channelBytesFromClient: () => fromClient,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
