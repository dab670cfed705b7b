// A small registry and token server that follow the distribution spec's documented flows (the 401
// challenge, Docker's token endpoint, monolithic upload), for what a real registry needs much setup to
// show: bearer tokens, Basic auth, and registries that lie about bytes.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface FakeOptions {
  /** How the registry asks for credentials. */
  readonly auth: 'none' | 'basic' | 'bearer';
  /** Accepted user → password. */
  readonly users?: Readonly<Record<string, string>>;
  /** Repositories anyone may pull without credentials (bearer only). */
  readonly publicRepositories?: readonly string[];
}

export interface FakeRegistry {
  readonly host: string;
  /** Requests the token server answered, by scope. */
  readonly tokenRequests: string[];
  /** Every request the registry saw: `METHOD path`. */
  readonly requests: string[];
  readonly blobs: Map<string, Buffer>;
  readonly manifests: Map<string, { bytes: Buffer; type: string }>;
  /** Overrides: answer this path with these bytes (and headers) instead. */
  readonly tamper: Map<string, { body: Buffer; headers?: Record<string, string> }>;
  close(): Promise<void>;
}

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

function basicUser(header: string | undefined, users: Readonly<Record<string, string>>): string | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
  return user !== undefined && users[user] === rest.join(':') ? user : undefined;
}

/** Starts the fake registry (and, for `bearer`, its token server) on loopback. */
export async function startFakeRegistry(options: FakeOptions): Promise<FakeRegistry> {
  const users = options.users ?? {};
  const tokens = new Map<string, { repository: string; push: boolean }>();
  const tokenRequests: string[] = [];
  const requests: string[] = [];
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { bytes: Buffer; type: string }>();
  const uploads = new Map<string, string>();
  const tamper = new Map<string, { body: Buffer; headers?: Record<string, string> }>();

  const tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.get('scope') ?? '';
    tokenRequests.push(scope);
    const m = /^repository:([^:]+):(pull|pull,push)$/.exec(scope);
    const user = basicUser(req.headers.authorization, users);
    if (!m || url.searchParams.get('service') !== 'fake-registry') {
      res.writeHead(400).end();
      return;
    }
    const anonymousOk = m[2] === 'pull' && (options.publicRepositories ?? []).includes(m[1]!);
    if (user === undefined && !anonymousOk) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    const token = randomUUID();
    tokens.set(token, { repository: m[1]!, push: m[2] === 'pull,push' });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, expires_in: 300 }));
  });
  const tokenPort = options.auth === 'bearer' ? await listen(tokenServer) : 0;

  const authorized = (req: IncomingMessage, repository: string, push: boolean): boolean => {
    if (options.auth === 'none') return true;
    if (options.auth === 'basic') return basicUser(req.headers.authorization, users) !== undefined;
    const h = req.headers.authorization;
    const t = h?.startsWith('Bearer ') ? tokens.get(h.slice(7)) : undefined;
    return t !== undefined && t.repository === repository && (t.push || !push);
  };

  const challenge = (res: ServerResponse, repository: string, push: boolean): void => {
    const header =
      options.auth === 'basic'
        ? 'Basic realm="fake-registry"'
        : `Bearer realm="http://127.0.0.1:${tokenPort}/token",service="fake-registry",scope="repository:${repository}:${push ? 'pull,push' : 'pull'}"`;
    res.writeHead(401, { 'www-authenticate': header, 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  };

  const registry = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}`);
    const forced = tamper.get(url.pathname);
    const upload = /^\/upload\/([^/]+)$/.exec(url.pathname);
    const m = upload ? undefined : /^\/v2\/(.+?)\/(blobs\/uploads|manifests|blobs)\/(.*)$/.exec(url.pathname);
    const repository = upload ? uploads.get(upload[1]!) : m?.[1];
    if (repository === undefined) {
      res.writeHead(url.pathname === '/v2/' ? 200 : 404).end();
      return;
    }
    const push = req.method === 'PUT' || req.method === 'POST';
    if (!authorized(req, repository, push)) {
      challenge(res, repository, push);
      return;
    }
    if (forced) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...forced.headers }).end(forced.body);
      return;
    }
    if (upload) {
      const data = await body(req);
      const digest = url.searchParams.get('digest');
      if (digest !== digestOf(data)) {
        res.writeHead(400).end('{"errors":[{"code":"DIGEST_INVALID","message":"digest does not match"}]}');
        return;
      }
      blobs.set(digest, data);
      res.writeHead(201, { location: `/v2/${repository}/blobs/${digest}` }).end();
      return;
    }
    const [, , kind, ref] = m!;
    if (kind === 'blobs/uploads') {
      const id = randomUUID();
      uploads.set(id, repository);
      res.writeHead(202, { location: `/upload/${id}` }).end();
      return;
    }
    if (kind === 'blobs') {
      const blob = blobs.get(ref!);
      if (!blob) {
        res.writeHead(404).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
        return;
      }
      res.writeHead(200, { 'content-length': blob.length, 'docker-content-digest': ref! });
      res.end(req.method === 'HEAD' ? undefined : blob);
      return;
    }
    if (req.method === 'PUT') {
      const data = await body(req);
      const entry = { bytes: data, type: req.headers['content-type'] ?? '' };
      manifests.set(`${repository}:${ref}`, entry);
      manifests.set(`${repository}:${digestOf(data)}`, entry);
      res.writeHead(201, { 'docker-content-digest': digestOf(data) }).end();
      return;
    }
    const found = manifests.get(`${repository}:${ref}`);
    if (!found) {
      res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      return;
    }
    res
      .writeHead(200, { 'content-type': found.type, 'docker-content-digest': digestOf(found.bytes) })
      .end(found.bytes);
  });
  const port = await listen(registry);
  return {
    host: `127.0.0.1:${port}`,
    tokenRequests,
    requests,
    blobs,
    manifests,
    tamper,
    close: async () => {
      registry.closeAllConnections();
      tokenServer.closeAllConnections();
      await new Promise((r) => registry.close(r));
      if (tokenServer.listening) await new Promise((r) => tokenServer.close(r));
    },
  };
}
