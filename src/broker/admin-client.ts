// The admin API's client, for `donjon broker secret|policy|audit`: HTTPS to the broker, whose certificate must
// have the pinned fingerprint before the admin token or any secret byte is sent.
import { BrokerError } from './errors.ts';
import { answerJson, connectPinned, PinnedConnection } from './http.ts';
import type { BrokerPolicy } from './policy.ts';
import type { AuditEntry, SecretInfo } from './store.ts';

/** How to reach and authenticate to a broker. */
export interface BrokerAdminOptions {
  /** An admin token (`donjon broker token create`). */
  token: string;
  /** The broker's certificate fingerprint (`donjon broker info`). */
  fingerprint: string;
}

/** A client of one broker's admin API (`/donjon/v1`). */
export class BrokerAdminClient {
  readonly #url: URL;
  readonly #o: BrokerAdminOptions;

  constructor(url: string, options: BrokerAdminOptions) {
    let u: URL;
    try {
      u = new URL(url);
    } catch (cause) {
      throw new BrokerError('ERR_BROKER_REQUEST_INVALID', `Cannot use broker ${url}: not a URL`, { cause });
    }
    if (u.protocol !== 'https:') {
      throw new BrokerError('ERR_BROKER_REQUEST_INVALID', `Cannot use broker ${url}: only https URLs`);
    }
    this.#url = u;
    this.#o = options;
  }

  async #call(
    method: string,
    path: string,
    body?: Uint8Array,
    action = `${method} ${path}`,
  ): Promise<unknown> {
    const socket = await connectPinned(
      { host: this.#url.hostname.replace(/^\[|\]$/g, ''), port: Number(this.#url.port || 443) },
      this.#o.fingerprint,
    );
    const http = new PinnedConnection(socket);
    try {
      const headers: Record<string, string> = {
        authorization: `Bearer ${this.#o.token}`,
        accept: 'application/json',
      };
      if (body) headers['content-type'] = 'application/octet-stream';
      return answerJson(await http.send(method, path, headers, body), action);
    } finally {
      http.close();
    }
  }

  /** Stores (or replaces) a secret. */
  async putSecret(name: string, value: Uint8Array): Promise<void> {
    await this.#call('PUT', `/donjon/v1/secrets/${encodeURIComponent(name)}`, value, `store secret ${name}`);
  }

  /** Every secret the broker holds (names, sizes, times; never values). */
  async listSecrets(): Promise<SecretInfo[]> {
    return (
      (await this.#call('GET', '/donjon/v1/secrets', undefined, 'list secrets')) as { secrets: SecretInfo[] }
    ).secrets;
  }

  /** Removes a secret. */
  async removeSecret(name: string): Promise<void> {
    await this.#call(
      'DELETE',
      `/donjon/v1/secrets/${encodeURIComponent(name)}`,
      undefined,
      `remove secret ${name}`,
    );
  }

  /** Replaces the policy (JSON or TOML text); the broker refuses one it cannot parse. */
  async setPolicy(text: string): Promise<BrokerPolicy> {
    return (
      (await this.#call('PUT', '/donjon/v1/policy', new TextEncoder().encode(text), 'set the policy')) as {
        parsed: BrokerPolicy;
      }
    ).parsed;
  }

  /** The policy as set (its text, or null) and as parsed. */
  async getPolicy(): Promise<{ policy: string | null; parsed: BrokerPolicy }> {
    return (await this.#call('GET', '/donjon/v1/policy', undefined, 'show the policy')) as {
      policy: string | null;
      parsed: BrokerPolicy;
    };
  }

  /** The audit log, oldest first. */
  async audit(limit?: number): Promise<AuditEntry[]> {
    const q = limit === undefined ? '' : `?limit=${limit}`;
    return (
      (await this.#call('GET', `/donjon/v1/audit${q}`, undefined, 'read the audit log')) as {
        audit: AuditEntry[];
      }
    ).audit;
  }
}
