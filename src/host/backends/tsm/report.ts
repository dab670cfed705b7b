// One configfs-tsm report request (Linux Documentation/ABI/testing/configfs-tsm): a fresh report directory,
// the 64 bytes of report_data written to `inblob` and committed on close, `outblob` (and `auxblob`) read,
// the directory removed. The kernel counts every write to a report directory in `generation`; reading it
// before and after tells us whether anyone else wrote there meanwhile, or whether a write we made was not
// taken. There are no retries: a failed SEV-SNP guest request can leave the guest unable to make any more
// until it reboots, so a failure is reported, never repeated blindly.
import { randomBytes } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { errnoOf, fromSystemError, TsmError } from './errors.ts';
import { nodeTsmFs, TSM_REPORT_ROOT, type TsmFs } from './fs.ts';

/** Size of `inblob`: the report_data the report binds. */
export const TSM_INBLOB_SIZE = 64;
/** The highest privilege level (VMPL) configfs-tsm accepts. */
export const TSM_PRIVLEVEL_MAX = 3;
/** The providers whose evidence Donjon hands over by default. */
export const TSM_PROVIDERS: readonly string[] = ['sev_guest', 'tdx_guest'];

/**
 * Diagnostics channel of configfs-tsm requests: `{ event: 'request' | 'report' | 'cleanup-failed', dir, ... }`.
 * Nothing secret passes through it (report_data is public, and never published anyway).
 */
export const tsmChannel = channel('donjon.host.tsm');

/** How to make a request. */
export interface TsmRequestOptions {
  /** The report directory; default {@link TSM_REPORT_ROOT}. */
  root?: string;
  /** Filesystem access; default the real one. */
  fs?: TsmFs;
  /** Privilege level (SEV-SNP VMPL) to request the report at; default: the provider's own default. */
  privlevel?: number;
  /** Providers to accept; default {@link TSM_PROVIDERS}. Anything else is refused before any request. */
  providers?: readonly string[];
  /** Name of the report directory; default `donjon-<pid>-<16 random hex digits>`. */
  name?: string;
}

/** What one request produced. */
export interface TsmReport {
  /** The provider that produced it (`sev_guest`, `tdx_guest`): it says what `outblob` is. */
  provider: string;
  outblob: Uint8Array;
  /** Present when the provider has an `auxblob` attribute (SEV-SNP: the certificate table; may be empty). */
  auxblob?: Uint8Array;
  /** The report directory's generation the blobs belong to. */
  generation: number;
}

function text(bytes: Uint8Array): string {
  const s = Buffer.from(bytes).toString('utf8');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

async function readGeneration(fs: TsmFs, dir: string): Promise<number> {
  let raw: Uint8Array;
  try {
    raw = await fs.read(join(dir, 'generation'));
  } catch (error) {
    throw fromSystemError('read the report generation', error);
  }
  const value = text(raw);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value)) {
    throw new TsmError(
      'ERR_TSM_IO',
      `Cannot read the report generation: '${value.slice(0, 32)}' is not a number`,
    );
  }
  return Number(value);
}

async function write(fs: TsmFs, path: string, data: Uint8Array, what: string): Promise<void> {
  let written: number;
  try {
    written = await fs.write(path, data);
  } catch (error) {
    throw fromSystemError(`write ${what}`, error);
  }
  if (written !== data.byteLength) {
    throw new TsmError(
      'ERR_TSM_IO',
      `Cannot write ${what}: the kernel took ${written} of ${data.byteLength} bytes`,
    );
  }
}

async function checkGeneration(fs: TsmFs, dir: string, expected: number, when: string): Promise<number> {
  const generation = await readGeneration(fs, dir);
  if (generation !== expected) {
    throw new TsmError(
      'ERR_TSM_INTERFERENCE',
      `Cannot trust the report: generation is ${generation} ${when}, expected ${expected} (another writer, or a write the kernel refused)`,
    );
  }
  return generation;
}

async function setPrivlevel(fs: TsmFs, dir: string, privlevel: number): Promise<void> {
  let floorText: Uint8Array;
  try {
    floorText = await fs.read(join(dir, 'privlevel_floor'));
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') {
      throw new TsmError('ERR_TSM_PRIVLEVEL', 'Cannot request privilege level: the provider has none', {
        cause: error,
      });
    }
    throw fromSystemError('read the privilege level floor', error);
  }
  const floor = text(floorText);
  if (!/^[0-3]$/.test(floor)) {
    throw new TsmError(
      'ERR_TSM_IO',
      `Cannot read the privilege level floor: '${floor.slice(0, 32)}' is not 0 to 3`,
    );
  }
  if (privlevel < Number(floor)) {
    throw new TsmError(
      'ERR_TSM_PRIVLEVEL',
      `Cannot request privilege level ${privlevel}: the floor is ${floor}`,
    );
  }
  await write(fs, join(dir, 'privlevel'), Buffer.from(`${privlevel}\n`), 'the privilege level');
}

async function readBlob(fs: TsmFs, dir: string, name: 'outblob' | 'auxblob'): Promise<Uint8Array> {
  try {
    return await fs.read(join(dir, name));
  } catch (error) {
    throw fromSystemError(`read ${name}`, error);
  }
}

function checkOptions(reportData: Uint8Array, options: TsmRequestOptions): void {
  if (!(reportData instanceof Uint8Array))
    throw new TypeError('Cannot request a TSM report: reportData must be bytes');
  if (reportData.byteLength !== TSM_INBLOB_SIZE) {
    throw new RangeError(`Cannot request a TSM report: reportData must be ${TSM_INBLOB_SIZE} bytes`);
  }
  const { privlevel, name } = options;
  if (
    privlevel !== undefined &&
    (!Number.isInteger(privlevel) || privlevel < 0 || privlevel > TSM_PRIVLEVEL_MAX)
  ) {
    throw new RangeError(
      `Cannot request a TSM report: privlevel must be an integer from 0 to ${TSM_PRIVLEVEL_MAX}`,
    );
  }
  if (name !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw new TypeError('Cannot request a TSM report: name must be a plain directory name');
  }
}

/**
 * Asks the kernel's TSM provider for a report binding `reportData` (64 bytes), through configfs-tsm.
 *
 * The steps, in order: mkdir a fresh report directory; read `generation` and `provider` (an unknown provider
 * is refused before anything is requested); write `privlevel` if asked; write `inblob`; check that
 * `generation` advanced by exactly our writes; read `outblob`, then `auxblob` where the provider has one;
 * check `generation` again; remove the directory (a failed removal is published on {@link tsmChannel}, not
 * thrown, since the report is good).
 *
 * Throws {@link TsmError} for every failure of the request, TypeError/RangeError for bad arguments.
 */
export async function requestTsmReport(
  reportData: Uint8Array,
  options: TsmRequestOptions = {},
): Promise<TsmReport> {
  checkOptions(reportData, options);
  const fs = options.fs ?? nodeTsmFs();
  const root = options.root ?? TSM_REPORT_ROOT;
  const dir = join(root, options.name ?? `donjon-${process.pid}-${randomBytes(8).toString('hex')}`);
  const providers = options.providers ?? TSM_PROVIDERS;

  try {
    await fs.mkdir(dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') {
      throw new TsmError('ERR_TSM_UNAVAILABLE', `Cannot request a TSM report: ${root} does not exist`, {
        cause: error,
        errno: 'ENOENT',
      });
    }
    throw fromSystemError(`create a report directory in ${root}`, error);
  }
  tsmChannel.publish({ event: 'request', dir });
  try {
    const before = await readGeneration(fs, dir);
    let provider: string;
    try {
      provider = text(await fs.read(join(dir, 'provider')));
    } catch (error) {
      throw fromSystemError('read the provider', error);
    }
    if (!providers.includes(provider)) {
      throw new TsmError(
        'ERR_TSM_PROVIDER_UNSUPPORTED',
        `Cannot request a TSM report: provider '${provider.slice(0, 32)}' is not one of ${providers.join(', ')}`,
      );
    }
    let writes = 0;
    if (options.privlevel !== undefined) {
      await setPrivlevel(fs, dir, options.privlevel);
      writes++;
    }
    await write(fs, join(dir, 'inblob'), reportData, 'inblob');
    writes++;
    // Checked before outblob is read: reading it is the guest request, which must not be spent on a
    // directory whose inputs are not ours.
    const generation = await checkGeneration(fs, dir, before + writes, 'after our writes');
    const outblob = await readBlob(fs, dir, 'outblob');
    let auxblob: Uint8Array | undefined;
    try {
      auxblob = await fs.read(join(dir, 'auxblob'));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw fromSystemError('read auxblob', error);
    }
    await checkGeneration(fs, dir, generation, 'after reading the report');
    tsmChannel.publish({ event: 'report', dir, provider, generation });
    const report: TsmReport = { provider, outblob, generation };
    if (auxblob !== undefined) report.auxblob = auxblob;
    return report;
  } finally {
    try {
      await fs.rmdir(dir);
    } catch (error) {
      tsmChannel.publish({ event: 'cleanup-failed', dir, errno: errnoOf(error) ?? String(error) });
    }
  }
}
