// The probes of one service replica: /healthz (alive) and /readyz (serving), plain HTTP on the address the
// Pod's probes use. They answer from the state the pod reports and read nothing of a request but its path.
import { createServer, type Server } from 'node:http';
import { reasonOf } from '../../lib/errors.ts';
import { KeepPodError } from './errors.ts';

/** What the probes answer from. */
export interface HealthState {
  /** Alive: starting, or the Keep Loader and the Keep run. */
  alive(): boolean;
  /** Ready: the workload started (its secrets fetched, its certificate made) and no drain began. */
  ready(): boolean;
}

/** The probes' HTTP server. */
export class HealthServer {
  readonly #server: Server;

  constructor(state: HealthState) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const ok = path === '/healthz' ? state.alive() : path === '/readyz' ? state.ready() : undefined;
      const status = ok === undefined ? 404 : ok ? 200 : 503;
      const body = ok === undefined ? 'not found\n' : ok ? 'ok\n' : 'unavailable\n';
      res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' });
      res.end(body);
    });
    // A probe is one short request: nothing holds the server open during a drain.
    this.#server.keepAliveTimeout = 0;
    this.#server.headersTimeout = 5_000;
    this.#server.requestTimeout = 5_000;
  }

  /** Binds host:port; resolves to the port bound. Throws ERR_POD_SETUP_FAILED when it cannot. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', (error) =>
        reject(
          new KeepPodError(
            'ERR_POD_SETUP_FAILED',
            `Cannot serve the probes on ${host}:${port}: ${reasonOf(error)}`,
            { cause: error },
          ),
        ),
      );
      this.#server.listen(port, host, () => resolve((this.#server.address() as { port: number }).port));
    });
  }

  /** Stops serving, closing the probes' connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
