// A fake configfs-tsm for tests: an in-memory TsmFs that follows the kernel's rules (drivers/virt/coco/tsm.c
// and the sev_guest / tdx_guest providers) closely enough that the client's flow is exercised for real:
// mkdir populates a report directory; every accepted write to `inblob` or `privlevel` advances `generation`;
// `inblob` takes at most 64 bytes and is committed when the descriptor closes; reading `outblob` or `auxblob`
// makes the report (one "guest request") unless the cached one still matches the generation. A test supplies
// the provider's report maker and can hook any operation to misbehave.
import type { TsmFs } from '../../../../src/host/backends/tsm/fs.ts';

/** A system error as Node's fs reports one. */
export function sysError(code: string, path: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: fake configfs-tsm, '${path}'`);
  e.code = code;
  return e;
}

/** What the provider sees of a request. */
export interface FakeRequest {
  inblob: Uint8Array;
  privlevel: number;
}

/** What the provider returns: the blobs, as the kernel would expose them. */
export interface FakeBlobs {
  outblob: Uint8Array;
  auxblob?: Uint8Array;
}

/** The state of one report directory (mutable: tests may tamper with it from a hook). */
export interface FakeReportDir {
  inblob: Uint8Array;
  privlevel: number;
  writeGeneration: number;
  readGeneration: number;
  blobs?: FakeBlobs;
}

export interface FakeOp {
  op: 'mkdir' | 'rmdir' | 'read' | 'write';
  /** The directory name (under the root) and the attribute, if any. */
  dir: string;
  attr?: string;
}

export interface FakeTsmOptions {
  root?: string;
  /** Whether the report root exists (configfs mounted, TSM reports built in). Default true. */
  present?: boolean;
  /** The registered provider, or null for none. Default `sev_guest`. */
  provider?: string | null;
  /** Whether the caller may create report directories (root). Default true. */
  privileged?: boolean;
  /** The provider's privilege level floor (SEV-SNP: the guest's VMPL). Default 0. */
  privlevelFloor?: number;
  /** Makes a report: the simulated secure processor. May throw a system error (`sysError('EIO', ...)`). */
  generate?: (request: FakeRequest) => FakeBlobs;
}

const INBLOB_MAX = 64;
const PRIVLEVEL_MAX = 3;

/** The fake configfs-tsm, usable wherever a {@link TsmFs} is. */
export class FakeTsm implements TsmFs {
  readonly root: string;
  present: boolean;
  provider: string | null;
  privileged: boolean;
  privlevelFloor: number;
  generate: (request: FakeRequest) => FakeBlobs;
  readonly dirs = new Map<string, FakeReportDir>();
  /** Every operation, in order. */
  readonly log: FakeOp[] = [];
  /** Number of reports made (guest requests). */
  guestRequests = 0;
  /** Called after each successful operation; may tamper with the directory's state. */
  after: ((op: FakeOp, dir: FakeReportDir | undefined) => void) | undefined;
  /** Called before each operation; may throw to make it fail. */
  before: ((op: FakeOp) => void) | undefined;

  constructor(options: FakeTsmOptions = {}) {
    this.root = options.root ?? '/sys/kernel/config/tsm/report';
    this.present = options.present ?? true;
    this.provider = options.provider === undefined ? 'sev_guest' : options.provider;
    this.privileged = options.privileged ?? true;
    this.privlevelFloor = options.privlevelFloor ?? 0;
    this.generate =
      options.generate ??
      (() => {
        throw sysError('EIO', 'outblob');
      });
  }

  /** The attributes a report directory of the current provider has. */
  attributes(): string[] {
    const common = ['inblob', 'outblob', 'provider', 'generation'];
    return this.provider === 'tdx_guest' ? common : [...common, 'auxblob', 'privlevel', 'privlevel_floor'];
  }

  #split(path: string): { dir: string; attr?: string } {
    const prefix = `${this.root}/`;
    if (!path.startsWith(prefix)) throw sysError('ENOENT', path);
    const [dir, attr, ...rest] = path.slice(prefix.length).split('/');
    if (!dir || rest.length > 0) throw sysError('ENOENT', path);
    return attr === undefined ? { dir } : { dir, attr };
  }

  #dir(path: string): { name: string; state: FakeReportDir; attr: string } {
    if (!this.present) throw sysError('ENOENT', path);
    const { dir, attr } = this.#split(path);
    const state = this.dirs.get(dir);
    if (!state || attr === undefined || !this.attributes().includes(attr)) throw sysError('ENOENT', path);
    return { name: dir, state, attr };
  }

  #op(op: FakeOp, state: FakeReportDir | undefined): void {
    this.log.push(op);
    this.after?.(op, state);
  }

  async mkdir(path: string): Promise<void> {
    if (!this.present) throw sysError('ENOENT', path);
    const { dir, attr } = this.#split(path);
    if (attr !== undefined) throw sysError('ENOENT', path);
    this.before?.({ op: 'mkdir', dir });
    if (!this.privileged) throw sysError('EACCES', path);
    if (this.dirs.has(dir)) throw sysError('EEXIST', path);
    if (this.provider === null) throw sysError('ENXIO', path);
    const state: FakeReportDir = {
      inblob: new Uint8Array(0),
      privlevel: this.privlevelFloor,
      writeGeneration: 0,
      readGeneration: 0,
    };
    this.dirs.set(dir, state);
    this.#op({ op: 'mkdir', dir }, state);
  }

  async rmdir(path: string): Promise<void> {
    if (!this.present) throw sysError('ENOENT', path);
    const { dir, attr } = this.#split(path);
    this.before?.({ op: 'rmdir', dir });
    if (attr !== undefined || !this.dirs.has(dir)) throw sysError('ENOENT', path);
    this.dirs.delete(dir);
    this.#op({ op: 'rmdir', dir }, undefined);
  }

  async read(path: string): Promise<Uint8Array> {
    const { name, state, attr } = this.#dir(path);
    this.before?.({ op: 'read', dir: name, attr });
    let out: Uint8Array;
    switch (attr) {
      case 'generation':
        out = Buffer.from(`${state.writeGeneration}\n`);
        break;
      case 'provider':
        if (this.provider === null) throw sysError('ENXIO', path);
        out = Buffer.from(`${this.provider}\n`);
        break;
      case 'privlevel_floor':
        out = Buffer.from(`${this.privlevelFloor}\n`);
        break;
      case 'outblob':
      case 'auxblob': {
        const blobs = this.#report(state, path);
        out = attr === 'outblob' ? blobs.outblob : (blobs.auxblob ?? new Uint8Array(0));
        break;
      }
      default:
        // inblob and privlevel are write-only.
        throw sysError('EACCES', path);
    }
    this.#op({ op: 'read', dir: name, attr }, state);
    return Uint8Array.from(out);
  }

  /** The cached report if it still matches the generation, else a fresh one (a guest request). */
  #report(state: FakeReportDir, path: string): FakeBlobs {
    if (state.inblob.byteLength === 0) throw sysError('EINVAL', path);
    if (state.blobs && state.readGeneration === state.writeGeneration) return state.blobs;
    delete state.blobs;
    if (state.inblob.byteLength !== INBLOB_MAX) throw sysError('EINVAL', path);
    this.guestRequests++;
    const blobs = this.generate({ inblob: Uint8Array.from(state.inblob), privlevel: state.privlevel });
    state.blobs = blobs;
    state.readGeneration = state.writeGeneration;
    return blobs;
  }

  async write(path: string, data: Uint8Array): Promise<number> {
    const { name, state, attr } = this.#dir(path);
    this.before?.({ op: 'write', dir: name, attr });
    if (attr === 'inblob') {
      if (data.byteLength > INBLOB_MAX) throw sysError('EFBIG', path);
      state.inblob = Uint8Array.from(data);
      state.writeGeneration++;
    } else if (attr === 'privlevel') {
      const value = Buffer.from(data).toString('latin1');
      if (!/^[0-9]+\n?$/.test(value)) throw sysError('EINVAL', path);
      const level = Number.parseInt(value, 10);
      if (level < this.privlevelFloor || level > PRIVLEVEL_MAX) throw sysError('EINVAL', path);
      state.privlevel = level;
      state.writeGeneration++;
    } else {
      throw sysError('EACCES', path);
    }
    this.#op({ op: 'write', dir: name, attr }, state);
    return data.byteLength;
  }
}

/** A structurally valid TDX quote: header, TD body with `reportData`, and `sigLength` bytes of signature data. */
export function fakeTdxQuote(
  options: { version?: 4 | 5; bodyType?: 2 | 3; reportData?: Uint8Array; sigLength?: number } = {},
): Uint8Array {
  const version = options.version ?? 4;
  const bodyType = options.bodyType ?? 2;
  const bodySize = bodyType === 3 ? 648 : 584;
  const sigLength = options.sigLength ?? 100;
  const bodyAt = version === 5 ? 54 : 48;
  const out = new Uint8Array(bodyAt + bodySize + 4 + sigLength).fill(0x5c, 0, bodyAt + bodySize);
  const v = new DataView(out.buffer);
  v.setUint16(0, version, true);
  v.setUint16(2, 2, true);
  v.setUint32(4, 0x81, true);
  if (version === 5) {
    v.setUint16(48, bodyType, true);
    v.setUint32(50, bodySize, true);
  }
  out.set(options.reportData ?? new Uint8Array(64).fill(0x42), bodyAt + 520);
  v.setUint32(bodyAt + bodySize, sigLength, true);
  out.fill(0x77, bodyAt + bodySize + 4);
  return out;
}
