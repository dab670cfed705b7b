// A fake AMD KDS and Intel PCS on 127.0.0.1 for collateral tests: it serves the real-hardware files of
// shared/evidence (read in place) at the paths the real services use, and records every request so a test
// can prove what was fetched and what came from the cache.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EVIDENCE } from '../../attestation/evidence.ts';

/** One answer of the fake server. `hang` never answers (for timeouts). */
export type FakeAnswer =
  | { status?: number; headers?: Record<string, string>; body: Uint8Array | string }
  | 'hang';

/** A route: a fixed answer, or one chosen by how many times the route was asked before (0, 1, ...). */
export type FakeRoute = FakeAnswer | ((count: number) => FakeAnswer);

/** The key a request is matched by: the path, then the query parameters sorted by name. */
export function routeKey(pathAndQuery: string): string {
  const url = new URL(pathAndQuery, 'http://fake.invalid');
  const params = [...url.searchParams.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const query = new URLSearchParams(params).toString();
  return query.length > 0 ? `${url.pathname}?${query}` : url.pathname;
}

/** A running fake service. */
export class FakeServices {
  readonly url: string;
  /** Every request's route key, in arrival order. */
  readonly requests: string[] = [];
  readonly #server: Server;

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  /** Starts a server on an ephemeral loopback port serving `routes` (keys as {@link routeKey} gives). */
  static async start(routes: Record<string, FakeRoute>): Promise<FakeServices> {
    const table = new Map(Object.entries(routes).map(([k, v]) => [routeKey(k), v]));
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const fake = new FakeServices(server, `http://127.0.0.1:${port}`);
    server.on('request', (req, res) => {
      const key = routeKey(req.url ?? '/');
      const count = fake.requests.filter((r) => r === key).length;
      fake.requests.push(key);
      const route = table.get(key);
      const answer = typeof route === 'function' ? route(count) : route;
      if (answer === 'hang') return;
      if (answer === undefined) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(answer.status ?? 200, answer.headers ?? {});
      res.end(typeof answer.body === 'string' ? answer.body : Buffer.from(answer.body));
    });
    return fake;
  }

  /** How many requests went to routes whose key starts with `prefix` (all when omitted). */
  count(prefix = ''): number {
    return this.requests.filter((r) => r.startsWith(prefix)).length;
  }

  /** Stops the server, dropping connections left open by hanging routes. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

/** Bytes of an evidence file. */
export function file(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(path, EVIDENCE)));
}

/** Text of an evidence file. */
export function text(path: string): string {
  return readFileSync(new URL(path, EVIDENCE), 'utf8');
}

/** DER of the first certificate of a PEM evidence file (KDS serves VCEKs as DER). */
export function firstDer(path: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text(path));
  return new Uint8Array(Buffer.from(m![1]!.replace(/\s+/g, ''), 'base64'));
}

interface SnpReportResult {
  chip_id: string;
  reported_tcb: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
}

/** RESULTS.json's decoding of an SNP report: its chip id and REPORTED_TCB, the KDS request's inputs. */
export function snpResult(report: string): SnpReportResult {
  const results = JSON.parse(text('RESULTS.json')) as { snp: Record<string, { report: SnpReportResult }> };
  return results.snp[report]!.report;
}

/**
 * The KDS path of a report's VCEK, written from FORMATS.md's rule and RESULTS.json's decoding (not from
 * the code under test): hwid = CHIP_ID hex (first 8 bytes on Turin), SPLs from REPORTED_TCB.
 */
export function expectedVcekPath(product: 'Milan' | 'Genoa' | 'Turin', report: string): string {
  const r = snpResult(report);
  const t = r.reported_tcb;
  const hwid = product === 'Turin' ? r.chip_id.slice(0, 16) : r.chip_id;
  const fmc = product === 'Turin' ? `&fmcSPL=${t.fmc}` : '';
  return `/vcek/v1/${product}/${hwid}?blSPL=${t.bootloader}&teeSPL=${t.tee}&snpSPL=${t.snp}&ucodeSPL=${t.microcode}${fmc}`;
}

/** KDS routes for the Milan (go-sev-guest, v2), Genoa (routex, v3) and Turin (routex, v5) samples. */
export function kdsRoutes(): Record<string, FakeRoute> {
  return {
    [expectedVcekPath('Milan', 'go-sev-guest/attestation.bin')]: { body: file('go-sev-guest/vcek.testcer') },
    [expectedVcekPath('Genoa', 'routex-client-lua/report-genoa-v3.bin')]: {
      body: firstDer('routex-client-lua/vcek-genoa.pem'),
    },
    [expectedVcekPath('Turin', 'routex-client-lua/report-turin.bin')]: {
      body: firstDer('routex-client-lua/vcek-turin.pem'),
    },
    '/vcek/v1/Milan/cert_chain': { body: text('roots/AMD_KDS_vcek_cert_chain_Milan.pem') },
    '/vcek/v1/Genoa/cert_chain': { body: text('roots/AMD_KDS_vcek_cert_chain_Genoa.pem') },
    '/vcek/v1/Turin/cert_chain': { body: text('roots/AMD_KDS_vcek_cert_chain_Turin.pem') },
    '/vcek/v1/Milan/crl': { body: file('enarx-steward/milan.signed.crl.crl1.der') },
    '/vcek/v1/Genoa/crl': { body: file('enarx-steward/milan.signed.crl.crl0.der') },
  };
}

/** The verification time of the go-tdx-guest PCS responses (their tests use it too). */
export const GO_TDX_GUEST_TIME = new Date('2023-07-01T01:00:00Z');

/** PCS routes serving go-tdx-guest's real PCS responses (TDX, FMSPC 50806f000000, Platform CA). */
export function goTdxGuestPcsRoutes(): Record<string, FakeRoute> {
  return {
    '/sgx/certification/v4/pckcrl?ca=platform&encoding=der': {
      headers: { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(text('go-tdx-guest/pckCrlIssuerChain.pem')) },
      body: file('go-tdx-guest/pckcrl'),
    },
    '/tdx/certification/v4/tcb?fmspc=50806f000000': {
      headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(text('go-tdx-guest/tcbInfoIssuerChain.pem')) },
      body: text('go-tdx-guest/sample_tcbInfo_response'),
    },
    '/tdx/certification/v4/qe/identity': {
      headers: {
        'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(
          text('go-tdx-guest/qeIdentityIssuerChain.pem'),
        ),
      },
      body: text('go-tdx-guest/sample_qeIdentity_response'),
    },
    '/IntelSGXRootCA.der': { body: file('go-tdx-guest/rootcrl.der') },
  };
}

/** dcap-qvl's collateral JSON for a quote (`sgx_quote`, `tdx_quote`, ...). */
export function dcapQvlCollateral(name: string): Record<string, string> {
  return JSON.parse(text(`dcap-qvl/${name}_collateral.json`)) as Record<string, string>;
}

/**
 * PCS routes rebuilt from one dcap-qvl collateral set, as PCS would serve it: the signed bodies wrapped
 * in their response objects byte for byte, the chains in the headers.
 */
export function dcapQvlPcsRoutes(
  name: string,
  kind: 'sgx' | 'tdx',
  fmspc: string,
  ca: 'platform' | 'processor',
): Record<string, FakeRoute> {
  const c = dcapQvlCollateral(name);
  return {
    [`/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`]: {
      headers: { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(c['pck_crl_issuer_chain']!) },
      body: new Uint8Array(Buffer.from(c['pck_crl']!, 'hex')),
    },
    [`/${kind}/certification/v4/tcb?fmspc=${fmspc}`]: {
      headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(c['tcb_info_issuer_chain']!) },
      body: `{"tcbInfo":${c['tcb_info']},"signature":"${c['tcb_info_signature']}"}`,
    },
    [`/${kind}/certification/v4/qe/identity`]: {
      headers: { 'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(c['qe_identity_issuer_chain']!) },
      body: `{"enclaveIdentity":${c['qe_identity']},"signature":"${c['qe_identity_signature']}"}`,
    },
    '/IntelSGXRootCA.der': { body: new Uint8Array(Buffer.from(c['root_ca_crl']!, 'hex')) },
  };
}
