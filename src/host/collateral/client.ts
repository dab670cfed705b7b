// Over 400 lines: both services (AMD KDS, Intel PCS) share one cache, one retry rule and one set of errors.
// Fetches attestation collateral from AMD KDS and Intel PCS, through an optional cache directory: the
// VCEK and its chain for an SEV-SNP report, and the PCK CRL, Root CA CRL, TCB info and QE identity for a
// DCAP quote. Each answer is checked for shape before it is used or cached, and cached until the instant
// it stops being useful (certificate notAfter, CRL or PCS nextUpdate).
import { channel } from 'node:diagnostics_channel';
import {
  type AmdProduct,
  parseSnpReport,
  type SnpReport,
  type SnpTcbParts,
} from '../../attestation/index.ts';
import { type CacheEntry, CollateralCache } from './cache.ts';
import { CollateralError, isCollateralError } from './errors.ts';
import { type FetchLike, httpGet, type RawResponse } from './http.ts';
import { certChainPath, KDS_URL, kdsCrlPath, snpProductOf, vcekPath } from './kds.ts';
import {
  INTEL_ROOT_CA_CRL_URL,
  ISSUER_CHAIN_HEADERS,
  PCS_URL,
  type PckCa,
  pckCrlPath,
  qeIdentityPath,
  type TeeKind,
  tcbInfoPath,
} from './pcs.ts';
import { decodeIssuerChainHeader, pemBlocks, pemCertificates } from './pem.ts';
import { dcapFetchParameters } from './quote.ts';
import { type SignedJson, splitSignedJson } from './signed-json.ts';
import { certificateInfo, crlInfo } from './x509-info.ts';

/** Where and how {@link CollateralClient} fetches. Every field has a default. */
export interface CollateralClientOptions {
  /** Cache directory; without one every call fetches. */
  cacheDir?: string;
  /** AMD KDS base URL (default {@link KDS_URL}): a caching proxy, or a test server. */
  kdsUrl?: string;
  /** Intel PCS base URL (default {@link PCS_URL}): a PCCS, or a test server. */
  pcsUrl?: string;
  /** Where the Intel SGX Root CA CRL is fetched (default {@link INTEL_ROOT_CA_CRL_URL}). */
  intelRootCaCrlUrl?: string;
  /** Per request attempt, in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Pause before the single retry, in milliseconds (default 1 000). */
  retryDelayMs?: number;
  /** Largest answer accepted, in bytes (default 4 MiB). */
  maxBytes?: number;
  /** Longest an answer is served from the cache, in milliseconds, whatever its own expiry says. */
  maxAgeMs?: number;
  /** The clock (default the system clock). */
  now?: () => Date;
  /** The HTTP client (default the global fetch). */
  fetch?: FetchLike;
  /** How to wait before a retry (default a timer). */
  sleep?: (ms: number) => Promise<void>;
}

/** A PCS signed document (TCB info, QE identity) with the chain of its signer. */
export interface SignedCollateral extends SignedJson {
  /** PEM: the Intel SGX TCB Signing certificate, then the root. */
  readonly issuerChain: string;
}

/**
 * Collateral for one DCAP quote in the JSON layout of dcap-qvl's `QuoteCollateralV3` (what
 * `parseDcapCollateral` reads): CRLs as hex DER, issuer chains as PEM, signed bodies as their exact text,
 * signatures as hex r‖s.
 */
export interface QuoteCollateralJson {
  pck_crl_issuer_chain: string;
  root_ca_crl: string;
  pck_crl: string;
  tcb_info_issuer_chain: string;
  tcb_info: string;
  tcb_info_signature: string;
  qe_identity_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string;
}

/** Diagnostics channel with one message per lookup: `{ url, source: 'cache' | 'network' }`. */
export const collateralChannel = channel('donjon:collateral:lookup');

interface Decoded<T> {
  value: T;
  expiresAt: Date;
}

const DAY_MS = 86_400_000;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function invalid(url: string, state: string, cause?: unknown): never {
  throw new CollateralError('ERR_COLLATERAL_MALFORMED', `Cannot use the answer of ${url}: ${state}`, {
    url,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Re-labels a decoding failure with the URL whose answer it was. */
function decoding<T>(url: string, f: () => T): T {
  try {
    return f();
  } catch (cause) {
    if (cause instanceof CollateralError && cause.url === undefined) {
      return invalid(url, cause.detail, cause);
    }
    throw cause;
  }
}

function text(url: string, body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch (cause) {
    return invalid(url, 'it is not UTF-8 text', cause);
  }
}

/** A CRL answer as DER: PCS and KDS serve DER, PCCS servers sometimes PEM or hex. */
function crlDer(url: string, body: Uint8Array): Uint8Array {
  if (body[0] === 0x30) return body;
  const t = text(url, body).trim();
  if (t.includes('-----BEGIN')) {
    const block = pemBlocks(t).find((b) => b.label === 'X509 CRL');
    if (block === undefined) invalid(url, 'it holds no X509 CRL block');
    return block.der;
  }
  if (/^(?:[0-9a-fA-F]{2})+$/.test(t)) return new Uint8Array(Buffer.from(t, 'hex'));
  return invalid(url, 'it is not a CRL (DER, PEM or hex)');
}

function issuerChain(url: string, response: Pick<RawResponse, 'headers'>, names: readonly string[]): string {
  for (const name of names) {
    const value = response.headers[name];
    if (value !== undefined) return decodeIssuerChainHeader(value);
  }
  return invalid(url, `it has no ${names[0]} header`);
}

function earliest(...dates: Date[]): Date {
  return new Date(Math.min(...dates.map((d) => d.getTime())));
}

/**
 * A client for AMD KDS and Intel PCS with a cache. Concurrent requests for one URL share one fetch; at
 * most one retry follows a failure. Errors are {@link CollateralError}s.
 *
 * @example
 * const client = new CollateralClient({ cacheDir: '/var/cache/donjon/collateral' });
 * const certs = await client.snpCertificates(report); // [VCEK, ASK, ARK], DER
 */
export class CollateralClient {
  readonly #cache: CollateralCache | undefined;
  readonly #kdsUrl: string;
  readonly #pcsUrl: string;
  readonly #rootCrlUrl: string;
  readonly #timeoutMs: number;
  readonly #retryDelayMs: number;
  readonly #maxBytes: number;
  readonly #maxAgeMs: number | undefined;
  readonly #now: () => Date;
  readonly #fetch: FetchLike;
  readonly #sleep: ((ms: number) => Promise<void>) | undefined;
  readonly #inFlight = new Map<string, Promise<RawResponse>>();

  constructor(options: CollateralClientOptions = {}) {
    const base = (name: string, value: string | undefined, fallback: string): string => {
      const url = value ?? fallback;
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new TypeError(`Cannot create collateral client: ${name} ${url} is not a URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new TypeError(`Cannot create collateral client: ${name} must be an http or https URL`);
      }
      return url.replace(/\/+$/, '');
    };
    const positive = (name: string, value: number | undefined, fallback: number): number => {
      const n = value ?? fallback;
      if (!Number.isFinite(n) || n < 0)
        throw new RangeError(`Cannot create collateral client: ${name} must be >= 0`);
      return n;
    };
    this.#cache = options.cacheDir === undefined ? undefined : new CollateralCache(options.cacheDir);
    this.#kdsUrl = base('kdsUrl', options.kdsUrl, KDS_URL);
    this.#pcsUrl = base('pcsUrl', options.pcsUrl, PCS_URL);
    this.#rootCrlUrl = options.intelRootCaCrlUrl ?? INTEL_ROOT_CA_CRL_URL;
    base('intelRootCaCrlUrl', this.#rootCrlUrl, INTEL_ROOT_CA_CRL_URL);
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs, 10_000);
    this.#retryDelayMs = positive('retryDelayMs', options.retryDelayMs, 1_000);
    this.#maxBytes = positive('maxBytes', options.maxBytes, 4 * 1024 * 1024);
    this.#maxAgeMs = options.maxAgeMs === undefined ? undefined : positive('maxAgeMs', options.maxAgeMs, 0);
    this.#now = options.now ?? (() => new Date());
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#sleep = options.sleep;
  }

  /** Fetches (or reads from the cache) `url`, decoded by `decode`, which also says until when it is good. */
  async #get<T>(
    url: string,
    keepHeaders: readonly string[],
    decode: (r: RawResponse, at: Date) => Decoded<T>,
  ): Promise<T> {
    const now = this.#now();
    const cached = await this.#cache?.read(url);
    if (cached !== undefined && cached.expiresAt.getTime() > now.getTime()) {
      try {
        const { value } = decode(
          { status: 200, headers: cached.headers, body: cached.body },
          cached.fetchedAt,
        );
        collateralChannel.publish({ url, source: 'cache' });
        return value;
      } catch {
        // A cached answer that no longer decodes (an older format, a damaged file) is fetched again.
      }
    }
    let pending = this.#inFlight.get(url);
    if (pending === undefined) {
      pending = httpGet(url, {
        timeoutMs: this.#timeoutMs,
        retryDelayMs: this.#retryDelayMs,
        maxBytes: this.#maxBytes,
        fetch: this.#fetch,
        ...(this.#sleep === undefined ? {} : { sleep: this.#sleep }),
      }).finally(() => this.#inFlight.delete(url));
      this.#inFlight.set(url, pending);
    }
    const response = await pending;
    collateralChannel.publish({ url, source: 'network' });
    const { value, expiresAt } = decode(response, now);
    const limit =
      this.#maxAgeMs === undefined
        ? expiresAt
        : earliest(expiresAt, new Date(now.getTime() + this.#maxAgeMs));
    if (this.#cache !== undefined && limit.getTime() > now.getTime()) {
      const headers: Record<string, string> = {};
      for (const name of keepHeaders) {
        const v = response.headers[name];
        if (v !== undefined) headers[name] = v;
      }
      const entry: CacheEntry = { url, fetchedAt: now, expiresAt: limit, headers, body: response.body };
      // A cache that cannot be written (full disk, read-only) costs a refetch next time, not this answer.
      await this.#cache
        .write(entry)
        .catch((error: unknown) => collateralChannel.publish({ url, cacheError: error }));
    }
    return value;
  }

  /** The VCEK (DER) of the chip `chipId` at TCB `tcb`, from AMD KDS. */
  vcek(product: AmdProduct, chipId: Uint8Array, tcb: SnpTcbParts): Promise<Uint8Array> {
    const url = this.#kdsUrl + vcekPath(product, chipId, tcb);
    return this.#get(url, [], (r) =>
      decoding(url, () => {
        const info = certificateInfo(r.body);
        if (!info.snpEndorsementKey) invalid(url, 'the certificate is not a VCEK');
        return { value: r.body, expiresAt: info.notAfter };
      }),
    );
  }

  /** The product's chain from AMD KDS (DER): ASK (or ASVK for `vlek`), then ARK. */
  amdCertChain(product: AmdProduct, key: 'vcek' | 'vlek' = 'vcek'): Promise<Uint8Array[]> {
    const url = this.#kdsUrl + certChainPath(product, key);
    return this.#get(url, [], (r) =>
      decoding(url, () => {
        const ders = pemCertificates(text(url, r.body));
        if (ders.length !== 2) invalid(url, `it holds ${ders.length} certificates, expected 2`);
        const expiresAt = earliest(...ders.map((d) => certificateInfo(d).notAfter));
        return { value: ders, expiresAt };
      }),
    );
  }

  /** The product's CRL from AMD KDS (DER), signed by the ARK. */
  amdCrl(product: AmdProduct, key: 'vcek' | 'vlek' = 'vcek'): Promise<Uint8Array> {
    const url = this.#kdsUrl + kdsCrlPath(product, key);
    return this.#get(url, [], (r, at) => decoding(url, () => this.#crl(url, r.body, at)));
  }

  #crl(url: string, body: Uint8Array, at: Date): Decoded<Uint8Array> {
    const der = crlDer(url, body);
    const info = crlInfo(der);
    // A CRL without nextUpdate promises nothing about tomorrow: keep it a day at most.
    return { value: der, expiresAt: info.nextUpdate ?? new Date(at.getTime() + DAY_MS) };
  }

  /**
   * The VCEK and its chain for an SEV-SNP report, DER: `[VCEK, ASK, ARK]`. The product comes from the
   * report's CPUID (v3+), else `options.product`, else Milan and then Genoa are tried. Fails with
   * ERR_COLLATERAL_UNSUPPORTED for VLEK-signed reports (AMD does not publish VLEKs) and reports that
   * mask their chip id.
   */
  async snpCertificates(report: Uint8Array, options: { product?: AmdProduct } = {}): Promise<Uint8Array[]> {
    let parsed: SnpReport;
    try {
      parsed = parseSnpReport(report);
    } catch (cause) {
      throw new CollateralError(
        'ERR_COLLATERAL_UNSUPPORTED',
        'Cannot fetch a VCEK for this report: it does not parse',
        {
          cause,
        },
      );
    }
    if (parsed.signingKey === 'vlek') {
      throw new CollateralError(
        'ERR_COLLATERAL_UNSUPPORTED',
        'Cannot fetch the VLEK of this report: AMD KDS does not publish VLEKs (the cloud provider supplies them)',
      );
    }
    if (parsed.signingKey !== 'vcek') {
      throw new CollateralError(
        'ERR_COLLATERAL_UNSUPPORTED',
        'Cannot fetch a VCEK for this report: it is not signed',
      );
    }
    if (parsed.chipId.every((b) => b === 0)) {
      throw new CollateralError(
        'ERR_COLLATERAL_UNSUPPORTED',
        'Cannot fetch a VCEK for this report: its chip id is masked (MASK_CHIP_ID)',
      );
    }
    const known = snpProductOf(parsed) ?? options.product;
    const candidates: AmdProduct[] = known === undefined ? ['Milan', 'Genoa'] : [known];
    const tcb: SnpTcbParts = {
      bootloader: parsed.reportedTcb.bootloader,
      tee: parsed.reportedTcb.tee,
      snp: parsed.reportedTcb.snp,
      microcode: parsed.reportedTcb.microcode,
      ...(parsed.reportedTcb.fmc === undefined ? {} : { fmc: parsed.reportedTcb.fmc }),
    };
    for (const [i, product] of candidates.entries()) {
      let vcek: Uint8Array;
      try {
        vcek = await this.vcek(product, parsed.chipId, tcb);
      } catch (error) {
        // KDS answers 404 (or 400) for a chip it does not know under this product.
        const wrongProduct =
          isCollateralError(error, 'ERR_COLLATERAL_NOT_FOUND') ||
          (isCollateralError(error, 'ERR_COLLATERAL_FETCH_FAILED') && error.status === 400);
        if (wrongProduct && i < candidates.length - 1) continue;
        throw error;
      }
      return [vcek, ...(await this.amdCertChain(product, 'vcek'))];
    }
    throw new Error('unreachable');
  }

  /** The CRL of a PCK CA (DER) with its issuer chain (PEM: the PCK CA, then the root). */
  pckCrl(ca: PckCa): Promise<{ crl: Uint8Array; issuerChain: string }> {
    const url = this.#pcsUrl + pckCrlPath(ca);
    const names = ISSUER_CHAIN_HEADERS.pckCrl;
    return this.#get(url, names, (r, at) =>
      decoding(url, () => {
        const { value, expiresAt } = this.#crl(url, r.body, at);
        return { value: { crl: value, issuerChain: issuerChain(url, r, names) }, expiresAt };
      }),
    );
  }

  /** The CRL of the Intel SGX Root CA (DER): revoked PCK CAs. */
  intelRootCaCrl(): Promise<Uint8Array> {
    const url = this.#rootCrlUrl;
    return this.#get(url, [], (r, at) => decoding(url, () => this.#crl(url, r.body, at)));
  }

  #signed(url: string, members: readonly string[], names: readonly string[]): Promise<SignedCollateral> {
    return this.#get(url, names, (r) =>
      decoding(url, () => {
        const signed = splitSignedJson(text(url, r.body), members);
        return {
          value: { ...signed, issuerChain: issuerChain(url, r, names) },
          expiresAt: signed.nextUpdate,
        };
      }),
    );
  }

  /** The signed TCB info of a platform family (`fmspc`, 12 hex digits). */
  tcbInfo(kind: TeeKind, fmspc: string): Promise<SignedCollateral> {
    return this.#signed(this.#pcsUrl + tcbInfoPath(kind, fmspc), ['tcbInfo'], ISSUER_CHAIN_HEADERS.tcbInfo);
  }

  /** The signed identity of the quoting enclave (QE for SGX, TD_QE for TDX). */
  qeIdentity(kind: TeeKind): Promise<SignedCollateral> {
    return this.#signed(
      this.#pcsUrl + qeIdentityPath(kind),
      ['enclaveIdentity', 'qeIdentity'],
      ISSUER_CHAIN_HEADERS.qeIdentity,
    );
  }

  /**
   * Everything a DCAP quote needs checked beyond its own signatures, in dcap-qvl's layout: the PCK CRL
   * of the quote's PCK CA, the Root CA CRL, and the TCB info and QE identity of its TEE kind and FMSPC.
   */
  async dcapCollateral(quote: Uint8Array): Promise<QuoteCollateralJson> {
    const { kind, fmspc, ca } = dcapFetchParameters(quote);
    const [pck, root, tcb, qe] = await Promise.all([
      this.pckCrl(ca),
      this.intelRootCaCrl(),
      this.tcbInfo(kind, fmspc),
      this.qeIdentity(kind),
    ]);
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    return {
      pck_crl_issuer_chain: pck.issuerChain,
      root_ca_crl: hex(root),
      pck_crl: hex(pck.crl),
      tcb_info_issuer_chain: tcb.issuerChain,
      tcb_info: tcb.body,
      tcb_info_signature: tcb.signature,
      qe_identity_issuer_chain: qe.issuerChain,
      qe_identity: qe.body,
      qe_identity_signature: qe.signature,
    };
  }
}
