// Over 400 lines: the two stores (memory and SQLite) of both record kinds (Keeps and deployments) with their
// row schemas belong together, so that a column added to one is seen beside the others.
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { reasonOf } from '../../lib/errors.ts';
import { isTerminalState, KEEP_STATES } from '../../protocol/lifecycle.ts';
import {
  type Backend,
  fileSchema,
  type KeepState,
  type Limits,
  limitsSchema,
  type MessageOf,
  messageSchemas,
  type PortMapping,
  secretSchema,
} from '../../protocol/messages.ts';
import {
  arrayOf,
  bool,
  checkValue,
  int,
  oneOf,
  optional,
  struct,
  textMap,
  tstr,
  uint,
} from '../../protocol/schema.ts';
import { KeepManagerError } from './errors.ts';

/** A Keep as the Keep Manager records it. Nothing of the workload's data is ever part of it. */
export interface KeepRecord {
  id: string;
  /** The tenant (token id) that owns it; '' for a pre-started Keep still in the pool. */
  owner: string;
  backend: Backend;
  state: KeepState;
  createdAt: number;
  updatedAt: number;
  exitCode?: number;
  error?: string;
  keepldrPid?: number;
  keepPid?: number;
  socketPath: string;
  limits: Limits;
  /** Host ports forwarded to the workload's listen sockets. */
  ports?: PortMapping[];
}

/** What a tenant asked to deploy: the `create-deployment` body. Public only (docs/registry.md). */
export type DeploymentSpec = Omit<MessageOf<'create-deployment'>, 'v' | 'type'>;

/** A deployment the Keep Manager recreates without its tenant. */
export interface DeploymentRecord {
  id: string;
  owner: string;
  /** `active`: recreated when its Keep ends; `stopped` by its tenant; `given-up` after `maxRestarts`. */
  state: 'active' | 'stopped' | 'given-up';
  createdAt: number;
  updatedAt: number;
  /** The current (or last) Keep. */
  keepId?: string;
  /** Keeps recreated so far (the first is not a restart). */
  restarts: number;
  lastFailure?: string;
  spec: DeploymentSpec;
}

/** The backends a stored row may name: those of the wire protocol. */
const BACKEND_SCHEMA = messageSchemas['create-keep'].fields.backend;

/** A stored deployment's spec, decoded like a Keep row. */
const deploymentSpecSchema = struct({
  reference: tstr,
  backend: BACKEND_SCHEMA,
  restart: oneOf('on-failure', 'always'),
  maxRestarts: optional(uint),
  limits: optional(limitsSchema),
  args: arrayOf(tstr),
  env: textMap,
  files: optional(arrayOf(fileSchema)),
  secrets: optional(arrayOf(secretSchema)),
  keys: arrayOf(tstr),
  plainHttp: optional(bool),
  tier: optional(oneOf('default', 'optimizing')),
});

/** A stored deployment, declared with the schema language: every row read back is decoded with it. */
export const deploymentRecordSchema = struct({
  id: tstr,
  owner: tstr,
  state: oneOf('active', 'stopped', 'given-up'),
  createdAt: uint,
  updatedAt: uint,
  keepId: optional(tstr),
  restarts: uint,
  lastFailure: optional(tstr),
  spec: deploymentSpecSchema,
});

export interface KeepEventRecord {
  at: number;
  state: KeepState;
  message?: string;
}

/** Where the Keep Manager keeps its records: in memory (embedded use) or in SQLite (the daemon). */
export interface KeepStore {
  insert(record: KeepRecord): void;
  update(id: string, patch: Partial<Omit<KeepRecord, 'id'>>): void;
  get(id: string): KeepRecord | undefined;
  /** Every Keep, or those of one owner, oldest first. */
  list(owner?: string): KeepRecord[];
  remove(id: string): void;
  addEvent(id: string, event: KeepEventRecord): void;
  events(id: string): KeepEventRecord[];
  /** Makes a bearer token; only its SHA-256 is stored. Returns the token itself, shown once. */
  createToken(name: string): { id: string; token: string };
  /** The tenant id of a token, if it is known. */
  tenantOf(token: string): string | undefined;
  insertDeployment(record: DeploymentRecord): void;
  updateDeployment(id: string, patch: Partial<Omit<DeploymentRecord, 'id' | 'spec'>>): void;
  getDeployment(id: string): DeploymentRecord | undefined;
  /** Every deployment, or those of one owner, oldest first. */
  listDeployments(owner?: string): DeploymentRecord[];
  removeDeployment(id: string): void;
  /**
   * A number that changes whenever a Keep record or a deployment may have changed (written here or, for a
   * store on disk, by another program): what was read from the store at one value still holds while it stays.
   */
  readonly generation: number;
  close(): void;
}

/** Whether a record's state ends its Keep's lifecycle (see `isTerminalState`). */
export function isTerminal(state: KeepState): boolean {
  return isTerminalState(state);
}

/**
 * A stored Keep record, declared with the protocol's schema language: every row read back from SQLite is
 * decoded with it, so a row changed behind the Keep Manager's back is an error naming the row, never a cast.
 */
export const keepRecordSchema = struct({
  id: tstr,
  owner: tstr,
  backend: BACKEND_SCHEMA,
  state: oneOf<KeepState>(...KEEP_STATES),
  createdAt: uint,
  updatedAt: uint,
  exitCode: optional(int),
  error: optional(tstr),
  keepldrPid: optional(uint),
  keepPid: optional(uint),
  socketPath: tstr,
  limits: limitsSchema,
  ports: optional(arrayOf(struct({ name: tstr, port: uint }))),
});

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function newToken(): { id: string; token: string } {
  return { id: randomBytes(6).toString('hex'), token: `djt_${randomBytes(32).toString('base64url')}` };
}

/** Records in memory: for the Keep Manager embedded in one `donjon run`, whose Keeps end with it. */
export class MemoryStore implements KeepStore {
  readonly #keeps = new Map<string, KeepRecord>();
  readonly #events = new Map<string, KeepEventRecord[]>();
  readonly #tokens = new Map<string, string>();
  readonly #deployments = new Map<string, DeploymentRecord>();
  #generation = 0;

  get generation(): number {
    return this.#generation;
  }

  insert(record: KeepRecord): void {
    this.#generation++;
    this.#keeps.set(record.id, { ...record });
  }
  update(id: string, patch: Partial<Omit<KeepRecord, 'id'>>): void {
    this.#generation++;
    const r = this.#keeps.get(id);
    if (r) Object.assign(r, patch);
  }
  get(id: string): KeepRecord | undefined {
    const r = this.#keeps.get(id);
    return r && { ...r };
  }
  list(owner?: string): KeepRecord[] {
    return [...this.#keeps.values()]
      .filter((r) => owner === undefined || r.owner === owner)
      .map((r) => ({ ...r }));
  }
  remove(id: string): void {
    this.#generation++;
    this.#keeps.delete(id);
    this.#events.delete(id);
  }
  addEvent(id: string, event: KeepEventRecord): void {
    this.#events.set(id, [...(this.#events.get(id) ?? []), event]);
  }
  events(id: string): KeepEventRecord[] {
    return [...(this.#events.get(id) ?? [])];
  }
  createToken(_name: string): { id: string; token: string } {
    const t = newToken();
    this.#tokens.set(hashToken(t.token), t.id);
    return t;
  }
  tenantOf(token: string): string | undefined {
    return this.#tokens.get(hashToken(token));
  }
  insertDeployment(record: DeploymentRecord): void {
    this.#generation++;
    this.#deployments.set(record.id, structuredClone(record));
  }
  updateDeployment(id: string, patch: Partial<Omit<DeploymentRecord, 'id' | 'spec'>>): void {
    this.#generation++;
    const d = this.#deployments.get(id);
    if (d) Object.assign(d, patch);
  }
  getDeployment(id: string): DeploymentRecord | undefined {
    const d = this.#deployments.get(id);
    return d && structuredClone(d);
  }
  listDeployments(owner?: string): DeploymentRecord[] {
    return [...this.#deployments.values()]
      .filter((d) => owner === undefined || d.owner === owner)
      .map((d) => structuredClone(d));
  }
  removeDeployment(id: string): void {
    this.#generation++;
    this.#deployments.delete(id);
  }
  close(): void {}
}

const COLUMNS: Record<string, string> = {
  owner: 'owner',
  backend: 'backend',
  state: 'state',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  exitCode: 'exit_code',
  error: 'error',
  keepldrPid: 'keepldr_pid',
  keepPid: 'keep_pid',
  socketPath: 'socket_path',
  limits: 'limits',
  ports: 'ports',
};

function parseJson(text: string, column: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${column} is not JSON`);
  }
}

/**
 * Decodes one row with {@link keepRecordSchema}. SQL NULL stands for an absent optional field; the JSON
 * columns are parsed first. Throws ERR_STORE_ROW_DAMAGED naming the row and what is wrong with it.
 */
export function decodeKeepRow(row: Record<string, unknown>): KeepRecord {
  const id = typeof row['id'] === 'string' ? row['id'] : '(no id)';
  try {
    const value: Record<string, unknown> = {};
    for (const [key, column] of Object.entries({ id: 'id', ...COLUMNS })) {
      let v = row[column];
      if (v === null || v === undefined) continue;
      if ((key === 'limits' || key === 'ports') && typeof v === 'string') v = parseJson(v, column);
      value[key] = v;
    }
    return checkValue({ action: 'decode', type: 'stored Keep' }, '', value, keepRecordSchema) as KeepRecord;
  } catch (cause) {
    throw new KeepManagerError(
      'ERR_STORE_ROW_DAMAGED',
      `Cannot read the record of Keep ${id}: ${reasonOf(cause)}`,
      { cause },
    );
  }
}

/** A stored event, decoded like a record. */
const keepEventSchema = struct({
  at: uint,
  state: oneOf<KeepState>(...KEEP_STATES),
  message: optional(tstr),
});

function decodeEventRow(id: string, row: Record<string, unknown>): KeepEventRecord {
  const value: Record<string, unknown> = { at: row['at'], state: row['state'] };
  if (row['message'] !== null && row['message'] !== undefined) value['message'] = row['message'];
  try {
    return checkValue(
      { action: 'decode', type: 'stored event' },
      '',
      value,
      keepEventSchema,
    ) as KeepEventRecord;
  } catch (cause) {
    throw new KeepManagerError(
      'ERR_STORE_ROW_DAMAGED',
      `Cannot read an event of Keep ${id}: ${reasonOf(cause)}`,
      { cause },
    );
  }
}

const DEPLOYMENT_COLUMNS: Record<string, string> = {
  owner: 'owner',
  state: 'state',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  keepId: 'keep_id',
  restarts: 'restarts',
  lastFailure: 'last_failure',
};

/**
 * Decodes one deployment row with {@link deploymentRecordSchema} (its spec column is JSON). Throws
 * ERR_STORE_ROW_DAMAGED naming the row and what is wrong with it.
 */
export function decodeDeploymentRow(row: Record<string, unknown>): DeploymentRecord {
  const id = typeof row['id'] === 'string' ? row['id'] : '(no id)';
  try {
    const value: Record<string, unknown> = { id: row['id'] };
    for (const [key, column] of Object.entries({ ...DEPLOYMENT_COLUMNS, spec: 'spec' })) {
      let v = row[column];
      if (v === null || v === undefined) continue;
      if (key === 'spec' && typeof v === 'string') v = parseJson(v, column);
      value[key] = v;
    }
    return checkValue(
      { action: 'decode', type: 'stored deployment' },
      '',
      value,
      deploymentRecordSchema,
    ) as DeploymentRecord;
  } catch (cause) {
    throw new KeepManagerError(
      'ERR_STORE_ROW_DAMAGED',
      `Cannot read the record of deployment ${id}: ${reasonOf(cause)}`,
      { cause },
    );
  }
}

function toColumn(key: string, value: unknown): unknown {
  if (key === 'limits') return JSON.stringify(value);
  if (key === 'ports') return value === undefined ? null : JSON.stringify(value);
  return value === undefined ? null : value;
}

/** A row as the store keeps it: decoded, or the reason it does not decode. */
function cached(row: Record<string, unknown>): CachedKeep {
  const rowid = Number(row['_rowid']);
  try {
    return { rowid, record: decodeKeepRow(row) };
  } catch (error) {
    return { rowid, damaged: error as KeepManagerError };
  }
}

function createdAt(c: CachedKeep): number {
  return 'record' in c ? c.record.createdAt : 0;
}

/** A record callers may change: its own object, and its own `limits` and `ports`. */
function copyRecord(r: KeepRecord): KeepRecord {
  const copy = { ...r, limits: { ...r.limits } };
  if (r.ports !== undefined) copy.ports = r.ports.map((p) => ({ ...p }));
  return copy;
}

type Database = import('better-sqlite3').Database;
type Statement = import('better-sqlite3').Statement;

/** A Keep row as last read: its record, or why it does not decode; `rowid` keeps SQLite's order among equal times. */
type CachedKeep =
  | { readonly rowid: number; readonly record: KeepRecord }
  | { readonly rowid: number; readonly damaged: KeepManagerError };

/**
 * Records in SQLite, in the daemon's state directory: they survive the Keep Manager's crashes, so a restarted
 * Keep Manager finds the Keeps it was running. Every change is one transaction in WAL mode, so a Keep Manager
 * killed with SIGKILL restarts on exactly what it had written. Tokens and deployments (what an operator or a
 * tenant asked for) are also flushed to the disk before they are acknowledged (synchronous=FULL); Keep
 * records and their events are not: they describe processes, which a power cut ends anyway, and an fsync for
 * each change of state held the daemon's event loop for milliseconds each (the channels it relays included).
 *
 * Keep rows are read and decoded once and kept decoded: listing hundreds of Keeps would otherwise query and
 * decode every row on every request. The copy stays exact: this store's own writes re-read the row they
 * wrote, and a change committed by any other connection (another program, or someone editing the file)
 * moves SQLite's `data_version`, which every read checks first, so the rows are read and decoded again.
 */
export class SqliteStore implements KeepStore {
  readonly #db: Database;
  readonly #onDamaged: (error: KeepManagerError) => void;
  readonly #statements = new Map<string, Statement>();
  /** The Keep rows as last read, in `created_at, rowid` order once sorted; undefined until first read. */
  #keeps: Map<string, CachedKeep> | undefined;
  /** `data_version` when {@link #keeps} was read. */
  #version = -1;
  #generation = 0;

  /** `onDamaged` hears of each row `list` leaves out because it does not decode (default: a line on stderr). */
  constructor(path: string, options: { onDamaged?: (error: KeepManagerError) => void } = {}) {
    this.#onDamaged =
      options.onDamaged ??
      ((error) =>
        process.stderr.write(`${JSON.stringify({ event: 'store-row-damaged', error: error.message })}\n`));
    // Loaded only here: the embedded Keep Manager of `donjon run` needs no native module.
    const require = createRequire(import.meta.url);
    const Sqlite = require('better-sqlite3') as typeof import('better-sqlite3');
    this.#db = new Sqlite(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS keeps (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, backend TEXT NOT NULL, state TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, exit_code INTEGER, error TEXT,
        keepldr_pid INTEGER, keep_pid INTEGER, socket_path TEXT NOT NULL, limits TEXT NOT NULL, ports TEXT);
      CREATE INDEX IF NOT EXISTS keeps_owner ON keeps(owner);
      CREATE TABLE IF NOT EXISTS events (keep_id TEXT NOT NULL, at INTEGER NOT NULL, state TEXT NOT NULL, message TEXT);
      CREATE INDEX IF NOT EXISTS events_keep ON events(keep_id);
      CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS deployments (id TEXT PRIMARY KEY, owner TEXT NOT NULL, state TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, keep_id TEXT, restarts INTEGER NOT NULL,
        last_failure TEXT, spec TEXT NOT NULL);
    `);
    // State directories made before port forwarding existed lack the column.
    const columns = this.#sql('PRAGMA table_info(keeps)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'ports')) this.#db.exec('ALTER TABLE keeps ADD COLUMN ports TEXT');
  }

  /** Runs a change that is flushed to the disk before it returns (tokens, deployments). */
  #durably<T>(f: () => T): T {
    this.#db.pragma('synchronous = FULL');
    try {
      return f();
    } finally {
      this.#db.pragma('synchronous = NORMAL');
    }
  }

  /** A statement prepared once: preparing costs more than running most of these. */
  #sql(text: string): Statement {
    let st = this.#statements.get(text);
    if (st === undefined) {
      st = this.#db.prepare(text);
      this.#statements.set(text, st);
    }
    return st;
  }

  /** The Keep rows, read again when another connection has committed since they were last read. */
  #cache(): Map<string, CachedKeep> {
    const version = this.#sql('PRAGMA data_version').pluck().get() as number;
    if (this.#keeps === undefined || version !== this.#version) {
      const rows = this.#sql(
        'SELECT rowid AS _rowid, * FROM keeps ORDER BY created_at, rowid',
      ).all() as Record<string, unknown>[];
      this.#keeps = new Map(rows.map((row) => [String(row['id']), cached(row)]));
      this.#version = version;
      this.#generation++;
    }
    return this.#keeps;
  }

  get generation(): number {
    // Another connection's commit (a row changed behind this store's back) moves it too.
    this.#cache();
    return this.#generation;
  }

  /** Reads one row again after this store wrote it (its own writes do not move `data_version`). */
  #reread(id: string): void {
    this.#generation++;
    const keeps = this.#cache();
    const row = this.#sql('SELECT rowid AS _rowid, * FROM keeps WHERE id = ?').get(id) as
      | Record<string, unknown>
      | undefined;
    if (row === undefined) keeps.delete(id);
    else keeps.set(id, cached(row));
  }

  insert(r: KeepRecord): void {
    this.#sql(
      `INSERT INTO keeps (id, owner, backend, state, created_at, updated_at, exit_code, error, keepldr_pid,
          keep_pid, socket_path, limits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      r.id,
      r.owner,
      r.backend,
      r.state,
      r.createdAt,
      r.updatedAt,
      r.exitCode ?? null,
      r.error ?? null,
      r.keepldrPid ?? null,
      r.keepPid ?? null,
      r.socketPath,
      JSON.stringify(r.limits),
    );
    this.#reread(r.id);
  }

  update(id: string, patch: Partial<Omit<KeepRecord, 'id'>>): void {
    const keys = Object.keys(patch).filter((k) => COLUMNS[k] !== undefined);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${COLUMNS[k]} = ?`).join(', ');
    const values = keys.map((k) => toColumn(k, (patch as Record<string, unknown>)[k]));
    this.#sql(`UPDATE keeps SET ${sets} WHERE id = ?`).run(...values, id);
    this.#reread(id);
  }

  get(id: string): KeepRecord | undefined {
    const c = this.#cache().get(id);
    if (c === undefined) return undefined;
    if ('damaged' in c) throw c.damaged;
    return copyRecord(c.record);
  }

  /** Every record that decodes; a damaged row is reported to `onDamaged` and left out, so one bad row does not stop the rest. */
  list(owner?: string): KeepRecord[] {
    const all = [...this.#cache().values()];
    // Rows inserted since the last full read are at the end; the order is SQLite's `created_at, rowid`.
    all.sort((a, b) => createdAt(a) - createdAt(b) || a.rowid - b.rowid);
    const out: KeepRecord[] = [];
    for (const c of all) {
      if ('damaged' in c) this.#onDamaged(c.damaged);
      else if (owner === undefined || c.record.owner === owner) out.push(copyRecord(c.record));
    }
    return out;
  }

  remove(id: string): void {
    this.#db.transaction(() => {
      this.#sql('DELETE FROM events WHERE keep_id = ?').run(id);
      this.#sql('DELETE FROM keeps WHERE id = ?').run(id);
    })();
    this.#reread(id);
  }

  addEvent(id: string, event: KeepEventRecord): void {
    this.#sql('INSERT INTO events (keep_id, at, state, message) VALUES (?, ?, ?, ?)').run(
      id,
      event.at,
      event.state,
      event.message ?? null,
    );
  }

  events(id: string): KeepEventRecord[] {
    const rows = this.#sql('SELECT at, state, message FROM events WHERE keep_id = ? ORDER BY at, rowid').all(
      id,
    ) as Record<string, unknown>[];
    return rows.map((row) => decodeEventRow(id, row));
  }

  createToken(name: string): { id: string; token: string } {
    const t = newToken();
    this.#durably(() =>
      this.#sql('INSERT INTO tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)').run(
        t.id,
        name,
        hashToken(t.token),
        Date.now(),
      ),
    );
    return t;
  }

  tenantOf(token: string): string | undefined {
    const row = this.#sql('SELECT id FROM tokens WHERE hash = ?').get(hashToken(token)) as
      | { id: string }
      | undefined;
    return row?.id;
  }

  insertDeployment(d: DeploymentRecord): void {
    this.#generation++;
    const insert = this.#sql(
      `INSERT INTO deployments (id, owner, state, created_at, updated_at, keep_id, restarts, last_failure, spec)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#durably(() =>
      insert.run(
        d.id,
        d.owner,
        d.state,
        d.createdAt,
        d.updatedAt,
        d.keepId ?? null,
        d.restarts,
        d.lastFailure ?? null,
        JSON.stringify(d.spec),
      ),
    );
  }

  updateDeployment(id: string, patch: Partial<Omit<DeploymentRecord, 'id' | 'spec'>>): void {
    this.#generation++;
    const keys = Object.keys(patch).filter((k) => DEPLOYMENT_COLUMNS[k] !== undefined);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${DEPLOYMENT_COLUMNS[k]} = ?`).join(', ');
    const values = keys.map((k) => (patch as Record<string, unknown>)[k] ?? null);
    this.#durably(() => this.#sql(`UPDATE deployments SET ${sets} WHERE id = ?`).run(...values, id));
  }

  getDeployment(id: string): DeploymentRecord | undefined {
    const row = this.#sql('SELECT * FROM deployments WHERE id = ?').get(id) as
      | Record<string, unknown>
      | undefined;
    return row && decodeDeploymentRow(row);
  }

  /** Every deployment that decodes; a damaged row is reported to `onDamaged` and left out. */
  listDeployments(owner?: string): DeploymentRecord[] {
    const rows = (
      owner === undefined
        ? this.#sql('SELECT * FROM deployments ORDER BY created_at, rowid').all()
        : this.#sql('SELECT * FROM deployments WHERE owner = ? ORDER BY created_at, rowid').all(owner)
    ) as Record<string, unknown>[];
    const out: DeploymentRecord[] = [];
    for (const row of rows) {
      try {
        out.push(decodeDeploymentRow(row));
      } catch (error) {
        this.#onDamaged(error as KeepManagerError);
      }
    }
    return out;
  }

  removeDeployment(id: string): void {
    this.#generation++;
    this.#durably(() => this.#sql('DELETE FROM deployments WHERE id = ?').run(id));
  }

  close(): void {
    this.#db.close();
  }
}
