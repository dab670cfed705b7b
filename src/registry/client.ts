// A client of the OCI distribution API (v2): manifests and blobs, read and written, with the registry's
// authentication challenges answered. Every body is read under a size limit and every byte checked against
// the digest that names it. The transport is an injected fetch (the WHATWG one by default) so that tests
// can stand in for a registry and a token server.
import { channel } from 'node:diagnostics_channel';
import { basicAuthorization, type Credentials, parseChallenge } from './auth.ts';
import { readBounded, registryReason } from './body.ts';
import { checkDigest, sha256Digest } from './digest.ts';
import { RegistryError } from './errors.ts';
import { apiHost, isDigest, isLoopbackRegistry } from './reference.ts';

/** The subset of the WHATWG fetch this client uses. */
export type RegistryFetch = (url: string, init: RequestInit) => Promise<Response>;

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** Speak plain HTTP to a registry that is not on loopback (loopback ones always are). */
  readonly plainHttp?: boolean;
  /** Credentials for Basic challenges and for the token realm of Bearer challenges. */
  readonly credentials?: Credentials | undefined;
  readonly fetch?: RegistryFetch;
  /** Per request, covering headers and body. Default {@link DEFAULT_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Largest blob accepted. Default {@link MAX_BLOB_BYTES}. */
  readonly maxBlobBytes?: number;
}

/** A manifest as the registry served it, with the digest of its exact bytes. */
export interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
}

/** The largest manifest accepted (the distribution registry's own limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** The largest blob accepted by default. */
export const MAX_BLOB_BYTES = 256 * 1024 * 1024;
/** The largest answer of a token server. */
export const MAX_TOKEN_BYTES = 1024 * 1024;
/** Default per-request time limit. */
export const DEFAULT_TIMEOUT_MS = 120_000;

/** The media types of manifests this client asks for (an index is asked for only to refuse it clearly). */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Diagnostics channel with one message per HTTP exchange: `{ method, url, status?, error? }`. */
export const registryChannel = channel('donjon:registry:http');

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

interface Call {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT';
  /** A path under the registry (`/v2/…`) or an absolute URL the registry gave (an upload location). */
  readonly target: string;
  readonly repository: string;
  readonly push: boolean;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array;
  readonly maxBytes: number;
  readonly expect: readonly number[];
}

/**
 * One registry's API. Tokens obtained through a Bearer challenge are kept per scope for the client's
 * life, so a pull asks the token server once.
 */
export class RegistryClient {
  readonly registry: string;
  readonly #base: string;
  readonly #plainHttp: boolean;
  readonly #credentials: Credentials | undefined;
  readonly #fetch: RegistryFetch;
  readonly #timeoutMs: number;
  readonly #maxBlobBytes: number;
  readonly #tokens = new Map<string, string>();
  #basic = false;

  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.#plainHttp = options.plainHttp === true || isLoopbackRegistry(registry);
    this.#base = `${this.#plainHttp ? 'http' : 'https'}://${apiHost(registry)}`;
    this.#credentials = options.credentials;
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxBlobBytes = options.maxBlobBytes ?? MAX_BLOB_BYTES;
  }

  /** The URL the API is reached at (`http://127.0.0.1:5000`, `https://ghcr.io`). */
  get baseUrl(): string {
    return this.#base;
  }

  /**
   * Fetches a manifest by tag or digest. Its digest is that of the bytes served; when asked by digest, or
   * when the registry names one (`Docker-Content-Digest`), they must agree.
   */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    const answer = await this.#call({
      method: 'GET',
      target: `/v2/${repository}/manifests/${reference}`,
      repository,
      push: false,
      headers: { accept: MANIFEST_ACCEPT },
      maxBytes: MAX_MANIFEST_BYTES,
      expect: [200],
    });
    const what = `the manifest ${repository}:${reference}`;
    if (isDigest(reference)) checkDigest(answer.body, reference, what);
    const digest = sha256Digest(answer.body);
    const named = answer.headers.get('docker-content-digest');
    if (named?.startsWith('sha256:') && named !== digest) checkDigest(answer.body, named, what);
    const mediaType = (answer.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return { digest, mediaType, bytes: answer.body };
  }

  /** Fetches a blob and checks it against `digest`; at most `maxBytes` (default the client's limit). */
  async getBlob(repository: string, digest: string, maxBytes?: number): Promise<Uint8Array> {
    if (!isDigest(digest))
      throw new RegistryError('ERR_REGISTRY_PROTOCOL', `Cannot fetch blob ${digest}: not a sha256 digest`);
    const answer = await this.#call({
      method: 'GET',
      target: `/v2/${repository}/blobs/${digest}`,
      repository,
      push: false,
      maxBytes: maxBytes ?? this.#maxBlobBytes,
      expect: [200],
    });
    checkDigest(answer.body, digest, `the blob ${digest} of ${repository}`);
    return answer.body;
  }

  /** Whether the repository already holds the blob (a HEAD; pushes skip what is there). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    try {
      await this.#call({
        method: 'HEAD',
        target: `/v2/${repository}/blobs/${digest}`,
        repository,
        push: true,
        maxBytes: 0,
        expect: [200],
      });
      return true;
    } catch (error) {
      if (error instanceof RegistryError && error.code === 'ERR_REGISTRY_NOT_FOUND') return false;
      throw error;
    }
  }

  /** Uploads a blob in one piece (POST, then PUT with its digest) unless it is there; returns its digest. */
  async putBlob(repository: string, bytes: Uint8Array): Promise<string> {
    const digest = sha256Digest(bytes);
    if (await this.hasBlob(repository, digest)) return digest;
    const started = await this.#call({
      method: 'POST',
      target: `/v2/${repository}/blobs/uploads/`,
      repository,
      push: true,
      maxBytes: 64 * 1024,
      expect: [202],
    });
    const location = started.headers.get('location');
    if (location === null) {
      throw new RegistryError(
        'ERR_REGISTRY_PROTOCOL',
        `Cannot upload to ${repository}: the registry gave no upload location`,
      );
    }
    const url = new URL(location, this.#base);
    url.searchParams.set('digest', digest);
    await this.#call({
      method: 'PUT',
      target: url.toString(),
      repository,
      push: true,
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
      maxBytes: 64 * 1024,
      expect: [201],
    });
    return digest;
  }

  /** Stores a manifest under a tag (or its digest); returns the digest of its bytes. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<string> {
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && reference !== digest) {
      throw new TypeError(`Cannot store a manifest under ${reference}: its digest is ${digest}`);
    }
    const answer = await this.#call({
      method: 'PUT',
      target: `/v2/${repository}/manifests/${reference}`,
      repository,
      push: true,
      headers: { 'content-type': mediaType },
      body: bytes,
      maxBytes: 64 * 1024,
      expect: [201],
    });
    const named = answer.headers.get('docker-content-digest');
    if (named !== null && named !== digest) {
      throw new RegistryError(
        'ERR_REGISTRY_DIGEST_MISMATCH',
        `Cannot store the manifest of ${repository}: the registry names it ${named}, its bytes hash to ${digest}`,
      );
    }
    return digest;
  }

  #scope(call: Call): string {
    return `repository:${call.repository}:${call.push ? 'pull,push' : 'pull'}`;
  }

  #authorization(call: Call): string | undefined {
    const token = this.#tokens.get(this.#scope(call));
    if (token !== undefined) return `Bearer ${token}`;
    if (this.#basic && this.#credentials) return basicAuthorization(this.#credentials);
    return undefined;
  }

  async #send(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    maxBytes: number,
  ): Promise<Answer> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        signal,
        redirect: 'follow',
        ...(body === undefined ? {} : { body }),
      });
    } catch (cause) {
      const reason = signal.aborted
        ? `no answer within ${this.#timeoutMs} ms`
        : String((cause as { cause?: { code?: unknown } }).cause?.code ?? (cause as Error).message);
      registryChannel.publish({ method, url, error: reason });
      throw new RegistryError('ERR_REGISTRY_UNREACHABLE', `Cannot reach ${this.registry}: ${reason}`, {
        url,
        cause,
      });
    }
    registryChannel.publish({ method, url, status: response.status });
    const ok = response.status >= 200 && response.status < 300;
    let answerBody: Uint8Array = new Uint8Array(0);
    if (method !== 'HEAD' && ok) answerBody = await readBounded(response, maxBytes, url);
    // An error's body only explains it: a long one is dropped rather than hiding the status behind a size error.
    else if (method !== 'HEAD')
      answerBody = await readBounded(response, 64 * 1024, url).catch(() => answerBody);
    return { status: response.status, headers: response.headers, body: answerBody };
  }

  async #token(call: Call, params: Readonly<Record<string, string>>): Promise<void> {
    const realm = params.realm;
    if (realm === undefined) {
      throw new RegistryError(
        'ERR_REGISTRY_PROTOCOL',
        `Cannot authenticate to ${this.registry}: its Bearer challenge names no realm`,
      );
    }
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(
        'ERR_REGISTRY_PROTOCOL',
        `Cannot authenticate to ${this.registry}: its token realm ${realm} is not a URL`,
      );
    }
    if (
      url.protocol !== 'https:' &&
      !(url.protocol === 'http:' && (this.#plainHttp || isLoopbackRegistry(url.host)))
    ) {
      throw new RegistryError(
        'ERR_REGISTRY_INSECURE',
        `Cannot authenticate to ${this.registry}: its token realm ${realm} is not HTTPS (pass plain HTTP explicitly to allow it)`,
      );
    }
    const scope = this.#scope(call);
    if (params.service !== undefined) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#credentials) headers.authorization = basicAuthorization(this.#credentials);
    const answer = await this.#send('GET', url.toString(), headers, undefined, MAX_TOKEN_BYTES);
    if (answer.status === 401 || answer.status === 403) {
      throw new RegistryError(
        'ERR_REGISTRY_AUTH',
        `Cannot authenticate to ${this.registry}: the token server refused ${this.#credentials ? `the credentials of ${this.#credentials.username}` : 'an anonymous request'} (${answer.status})`,
        { url: url.toString(), status: answer.status },
      );
    }
    if (answer.status !== 200) {
      throw new RegistryError(
        'ERR_REGISTRY_PROTOCOL',
        `Cannot authenticate to ${this.registry}: the token server answered ${answer.status}`,
        { url: url.toString(), status: answer.status },
      );
    }
    let token: unknown;
    try {
      const parsed = JSON.parse(Buffer.from(answer.body).toString('utf8')) as {
        token?: unknown;
        access_token?: unknown;
      };
      token = parsed.token ?? parsed.access_token;
    } catch {}
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw new RegistryError(
        'ERR_REGISTRY_PROTOCOL',
        `Cannot authenticate to ${this.registry}: the token server's answer holds no token`,
        { url: url.toString() },
      );
    }
    this.#tokens.set(scope, token);
  }

  async #call(call: Call): Promise<Answer> {
    const url = call.target.startsWith('/') ? `${this.#base}${call.target}` : call.target;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { ...call.headers };
      const authorization = this.#authorization(call);
      if (authorization !== undefined) headers.authorization = authorization;
      const answer = await this.#send(call.method, url, headers, call.body, call.maxBytes);
      if (call.expect.includes(answer.status)) return answer;
      const where = `${call.method} ${url}`;
      if (answer.status === 401) {
        const challenge = parseChallenge(answer.headers.get('www-authenticate'));
        if (attempt > 1 || challenge === undefined) {
          throw new RegistryError(
            'ERR_REGISTRY_AUTH',
            `Cannot authenticate to ${this.registry}: ${attempt > 1 ? 'it refused the credentials' : 'it asks for credentials without saying how'}${this.#credentials ? '' : ' (none were given: --registry-auth USER:PASS or docker login)'}`,
            { url, status: 401 },
          );
        }
        if (challenge.scheme === 'bearer') await this.#token(call, challenge.params);
        else if (challenge.scheme === 'basic') {
          if (!this.#credentials) {
            throw new RegistryError(
              'ERR_REGISTRY_AUTH',
              `Cannot authenticate to ${this.registry}: it asks for a user name and password and none were given (--registry-auth USER:PASS or docker login)`,
              { url, status: 401 },
            );
          }
          this.#basic = true;
        } else {
          throw new RegistryError(
            'ERR_REGISTRY_AUTH',
            `Cannot authenticate to ${this.registry}: it asks for ${challenge.scheme} authentication, which this client does not speak`,
            { url, status: 401 },
          );
        }
        continue;
      }
      const reason = registryReason(answer.body);
      const because = reason === undefined ? `status ${answer.status}` : `${reason} (${answer.status})`;
      if (answer.status === 404) {
        throw new RegistryError(
          'ERR_REGISTRY_NOT_FOUND',
          `Cannot find ${call.target.startsWith('/') ? call.target : url} on ${this.registry}: ${because}`,
          { url, status: 404 },
        );
      }
      if (answer.status === 403) {
        throw new RegistryError(
          'ERR_REGISTRY_AUTH',
          `Cannot ${call.push ? 'push to' : 'pull from'} ${call.repository} on ${this.registry}: access denied, ${because}`,
          { url, status: 403 },
        );
      }
      throw new RegistryError('ERR_REGISTRY_PROTOCOL', `Cannot ${where}: ${because}`, {
        url,
        status: answer.status,
      });
    }
  }
}
