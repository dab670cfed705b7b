import { Writable } from 'node:stream';
import type { RunEvent, RunOutcome } from '../client/index.ts';

/**
 * The short account of a run on stderr: human lines, JSON lines (--json), or nothing (-q). Errors are not
 * its business: the donjon command reports the one it ends with (main.ts), even with -q.
 */
export class Reporter {
  readonly #quiet: boolean;
  readonly #json: boolean;

  constructor(options: { quiet: boolean; json: boolean }) {
    this.#quiet = options.quiet;
    this.#json = options.json;
  }

  #emit(record: Record<string, unknown>, line: string): void {
    if (this.#json) process.stderr.write(`${JSON.stringify(record)}\n`);
    else if (!this.#quiet) process.stderr.write(`donjon: ${line}\n`);
  }

  /**
   * Where the workload's own stderr goes: process.stderr, or with --json a stream that makes each chunk
   * one JSON line `{"event":"stderr","data":TEXT}`, so that every line of stderr is one JSON object.
   * (stdout stays the workload's raw bytes on stdout.)
   */
  workloadStderr(): Writable {
    if (!this.#json) return process.stderr;
    const decoder = new TextDecoder('utf-8');
    return new Writable({
      write(chunk: Buffer, _encoding, done) {
        const data = decoder.decode(chunk, { stream: true });
        if (data.length > 0) process.stderr.write(`${JSON.stringify({ event: 'stderr', data })}\n`);
        done();
      },
    });
  }

  /** A line the user must see even with -q (a detach, a stop): a JSON line with --json. */
  notice(record: Record<string, unknown>, line: string): void {
    if (this.#json) process.stderr.write(`${JSON.stringify(record)}\n`);
    else process.stderr.write(`donjon: ${line}\n`);
  }

  #simulated(vendor: 'AMD' | 'Intel', rootFingerprint: string): void {
    this.#emit(
      { event: 'warning', simulated: true, rootFingerprint },
      `WARNING: SIMULATED hardware: the evidence is signed by a simulated ${vendor} root (SHA-256 ${rootFingerprint}), not by ${vendor}; it proves which runtime runs, not that its memory is isolated`,
    );
  }

  note(message: string): void {
    this.#emit({ event: 'note', message }, message);
  }

  event(e: RunEvent): void {
    switch (e.type) {
      case 'keep-created':
        this.#emit(
          { event: 'keep-created', id: e.keep.id, backend: e.keep.backend },
          `Keep ${e.keep.id} created on backend ${e.keep.backend}`,
        );
        return;
      case 'evidence-verified': {
        const c = e.identity.claims;
        if (c && c.kind !== 'sev-snp') {
          this.#emit(
            {
              event: 'evidence-verified',
              attested: true,
              kind: c.kind,
              version: c.version,
              measurement: c.measurement,
              ...(c.tcbStatus === undefined ? {} : { tcbStatus: c.tcbStatus }),
              debug: c.debug,
              simulated: c.simulated,
              rootFingerprint: c.rootFingerprint,
            },
            `evidence verified: ${c.kind} quote v${c.version}, ${c.kind === 'sgx' ? 'MRENCLAVE' : 'MRTD'} ${c.measurement}${c.tcbStatus === undefined ? '' : `, TCB ${c.tcbStatus}`}`,
          );
          if (c.simulated) this.#simulated('Intel', c.rootFingerprint);
          return;
        }
        if (!c) {
          this.#emit(
            { event: 'evidence-verified', attested: false },
            'WARNING: INSECURE: this Keep has no attestation evidence; nothing proves what code runs it or where',
          );
          return;
        }
        const tcb = c.tcb;
        this.#emit(
          {
            event: 'evidence-verified',
            attested: true,
            kind: c.kind,
            version: c.version,
            product: c.product,
            measurement: c.measurement,
            tcb,
            debug: c.debug,
            simulated: c.simulated,
            rootFingerprint: c.rootFingerprint,
          },
          `evidence verified: ${c.kind} report v${c.version} (${c.product}), measurement ${c.measurement}, TCB bootloader ${tcb.bootloader} tee ${tcb.tee} snp ${tcb.snp} microcode ${tcb.microcode}`,
        );
        if (c.simulated) this.#simulated('AMD', c.rootFingerprint);
        return;
      }
      case 'workload-sent':
        this.#emit(
          { event: 'workload-sent', bytes: e.bytes, sha256: e.digest },
          `workload sent (${e.bytes} bytes, sha256 ${e.digest})`,
        );
        return;
      case 'workload-started':
        this.#emit(
          e.tier === undefined ? { event: 'workload-started' } : { event: 'workload-started', tier: e.tier },
          e.tier === undefined ? 'workload started' : `workload started (compiler tier: ${e.tier})`,
        );
        return;
      case 'attached':
        this.#emit({ event: 'attached' }, 'attached to the workload');
        return;
      case 'notice':
        this.#emit({ event: 'notice', message: e.message }, `the Keep says: ${e.message}`);
        return;
    }
  }

  outcome(o: RunOutcome): void {
    switch (o.kind) {
      case 'exit':
        this.#emit({ event: 'exit', code: o.code }, `workload exited with status ${o.code}`);
        return;
      // A trap or a limit is a failure the user must see even with -q.
      case 'trap':
        if (this.#json) this.#emit({ event: 'trap', message: o.message }, '');
        else process.stderr.write(`donjon: workload trapped: ${o.message}\n`);
        return;
      case 'limit':
        if (this.#json) this.#emit({ event: 'limit', limit: o.limit, message: o.message }, '');
        else process.stderr.write(`donjon: workload stopped: ${o.message}\n`);
        return;
    }
  }
}
