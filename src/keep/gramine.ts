// The Keep's own evidence under Gramine: inside an SGX enclave only the enclave can have a report made over
// its own report_data, so the Keep obtains its quote itself through Gramine's attestation pseudo-files
// (/dev/attestation: write 64 bytes to `user_report_data`, read `quote`; `attestation_type` says `dcap`) rather
// than asking the Keep Loader for evidence as it does for the other backends. Only the quote's collateral, which
// is public and Intel-signed, comes from the host (its PCS cache), as it does for TDX.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDcapQuote } from '../attestation/dcap/quote.ts';
import { AttestationError } from '../attestation/errors.ts';
import { reasonOf } from '../lib/errors.ts';
import type { MessageOf } from '../protocol/messages.ts';

/** Where Gramine mounts its attestation interface inside the enclave. */
export const GRAMINE_ATTESTATION_ROOT = '/dev/attestation';

/** The file operations the source needs: Node's by default, a fake tree's in tests. */
export interface AttestationFs {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
}

/** Node's filesystem, as the source uses it. */
export const nodeAttestationFs: AttestationFs = {
  readFile: async (path) => new Uint8Array(await readFile(path)),
  writeFile: (path, data) => writeFile(path, data),
};

/** Where a Keep's evidence comes from: the Keep Loader (`Control`) or the enclave itself (`GramineEvidence`). */
export interface EvidenceSource {
  /** Evidence binding `reportData` (64 bytes), as the Keep's certificate carries it. */
  evidence(reportData: Uint8Array): Promise<MessageOf<'evidence'>>;
  /** The kind of evidence this source gives, once known (the channel's evidence comes before any deploy). */
  readonly evidenceKind: MessageOf<'evidence'>['kind'] | undefined;
}

/** How the `gramine` source is set up. */
export interface GramineEvidenceOptions {
  /** The attestation interface; default {@link GRAMINE_ATTESTATION_ROOT}. */
  root?: string;
  fs?: AttestationFs;
  /**
   * The collateral of a quote, from the host (the Keep Loader's `collateral-request`): its answer's collateral,
   * or undefined when the host has none (relying parties that require collateral then refuse the Keep).
   */
  collateral(quote: Uint8Array): Promise<Uint8Array | undefined>;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}

/**
 * The `gramine` evidence source. Requests are made one at a time: Gramine's pseudo-files hold one
 * user_report_data per process, so two requests must not interleave their write and read.
 *
 * Throws AttestationError: ERR_EVIDENCE_UNSUPPORTED when `attestation_type` is not `dcap` (EPID, or none
 * outside an enclave), ERR_EVIDENCE_MALFORMED when the quote is not an SGX quote, ERR_REPORT_DATA_MISMATCH when
 * its REPORTDATA is not what was written; each before any certificate is made from it.
 */
export class GramineEvidence implements EvidenceSource {
  readonly #root: string;
  readonly #fs: AttestationFs;
  readonly #collateral: GramineEvidenceOptions['collateral'];
  #queue: Promise<unknown> = Promise.resolve();
  #checked = false;

  /** Always an SGX quote. */
  readonly evidenceKind = 'sgx' as const;

  constructor(options: GramineEvidenceOptions) {
    this.#root = options.root ?? GRAMINE_ATTESTATION_ROOT;
    this.#fs = options.fs ?? nodeAttestationFs;
    this.#collateral = options.collateral;
  }

  evidence(reportData: Uint8Array): Promise<MessageOf<'evidence'>> {
    if (!(reportData instanceof Uint8Array) || reportData.byteLength !== 64)
      return Promise.reject(new RangeError('Cannot make evidence: report_data must be 64 bytes'));
    const run = () => this.#quote(reportData);
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #quote(reportData: Uint8Array): Promise<MessageOf<'evidence'>> {
    if (!this.#checked) {
      const type = await this.#read('attestation_type');
      const name = new TextDecoder().decode(type).trim();
      if (name !== 'dcap') {
        throw new AttestationError(
          'ERR_EVIDENCE_UNSUPPORTED',
          `Cannot make evidence: ${join(this.#root, 'attestation_type')} is '${name.slice(0, 32)}', not dcap (DCAP quotes are the only kind this Keep can prove itself with)`,
        );
      }
      this.#checked = true;
    }
    try {
      await this.#fs.writeFile(join(this.#root, 'user_report_data'), reportData);
    } catch (cause) {
      throw new Error(`Cannot make evidence: writing user_report_data failed: ${reasonOf(cause)}`, { cause });
    }
    const quote = await this.#read('quote');
    let parsed: ReturnType<typeof parseDcapQuote>;
    try {
      parsed = parseDcapQuote(quote);
    } catch (cause) {
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `Cannot make evidence: the quote Gramine gave is not a DCAP quote (${reasonOf(cause)})`,
        { cause },
      );
    }
    if (parsed.kind !== 'sgx')
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        'Cannot make evidence: the quote is not an SGX quote',
      );
    if (!equal(parsed.body.reportData, reportData)) {
      throw new AttestationError(
        'ERR_REPORT_DATA_MISMATCH',
        'Cannot make evidence: the quote binds other report_data than was written to user_report_data',
      );
    }
    const bytes = parsed.bytes.slice();
    const collateral = await this.#collateral(bytes);
    return {
      v: 1,
      type: 'evidence',
      kind: 'sgx',
      report: bytes,
      certs: [],
      ...(collateral === undefined ? {} : { collateral }),
    };
  }

  async #read(name: string): Promise<Uint8Array> {
    try {
      return await this.#fs.readFile(join(this.#root, name));
    } catch (cause) {
      throw new Error(`Cannot make evidence: reading ${join(this.#root, name)} failed: ${reasonOf(cause)}`, {
        cause,
      });
    }
  }
}
