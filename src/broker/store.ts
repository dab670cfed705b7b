// The broker's state in one SQLite database: secrets (encrypted at rest), the policy text, KBS sessions and
// the audit log, plus the hashes of admin tokens. Every change is one transaction in WAL mode, so a broker
// killed with SIGKILL restarts on exactly what it had acknowledged. The admin's changes (secrets, policy,
// tokens) are also flushed to the disk before they are acknowledged (synchronous=FULL); the protocol's own
// writes (sessions, audit) are not, as an fsync per step would be most of a release's time: a power cut may
// lose the last moments of audit and sessions, never an acknowledged secret or policy.
//
// Secrets are sealed with AES-256-GCM under a 32-byte key in `secrets.key` beside the database (mode 0600),
// with the secret's name as additional data so a row moved to another name no longer opens. What that does
// and does not protect is in docs/broker.md ("Secrets at rest").
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BrokerError } from './errors.ts';

type Database = import('better-sqlite3').Database;

/** A secret as listed: never its value. */
export interface SecretInfo {
  name: string;
  size: number;
  createdAt: number;
  updatedAt: number;
}

/** The state of a KBS session. */
export type SessionState = 'challenged' | 'answered' | 'attested';

/** A KBS session, keyed by its cookie. */
export interface SessionRecord {
  id: string;
  state: SessionState;
  tee: string;
  nonce: Uint8Array;
  /** Until when the challenge may be answered (ms since the epoch). */
  nonceExpiresAt: number;
  /** Until when the session may be used at all. */
  expiresAt: number;
  /** The attestation token issued to it, once attested. */
  token?: string;
}

/** One audit entry: every release and every refusal. */
export interface AuditEntry {
  at: number;
  /** `attest` (evidence appraised) or `resource` (a secret asked for). */
  stage: 'attest' | 'resource';
  verdict: 'released' | 'refused' | 'attested';
  evidenceKind?: string;
  measurement?: string;
  simulated?: boolean;
  workload?: string;
  config?: string;
  secret?: string;
  reason?: string;
}

const KEY_FILE = 'secrets.key';
const DB_FILE = 'broker.db';

/** Reads the key that seals secrets, making it on first use; refuses one that others can read. */
export function loadOrCreateSealingKey(stateDir: string): Buffer {
  const path = join(stateDir, KEY_FILE);
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
    writeSync(fd, randomBytes(32));
    closeSync(fd);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0) {
      throw new BrokerError(
        'ERR_BROKER_STATE_INVALID',
        `Cannot use ${path}: it is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    const key = readFileSync(fd);
    if (key.length !== 32) {
      throw new BrokerError('ERR_BROKER_STATE_INVALID', `Cannot use ${path}: it does not hold a 32-byte key`);
    }
    return key;
  } finally {
    closeSync(fd);
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The broker's database. Synchronous, as better-sqlite3 is; one instance per process. */
export class BrokerStore {
  readonly #db: Database;
  readonly #key: Buffer;

  /** Opens (or makes) the state in `stateDir`: `broker.db` and `secrets.key`. */
  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.#key = loadOrCreateSealingKey(stateDir);
    const require = createRequire(import.meta.url);
    const Sqlite = require('better-sqlite3') as typeof import('better-sqlite3');
    this.#db = new Sqlite(join(stateDir, DB_FILE));
    // Sealed secrets, token hashes and the audit log: the owner's alone (SQLite gives -wal the same mode).
    chmodSync(join(stateDir, DB_FILE), 0o600);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, iv BLOB NOT NULL, sealed BLOB NOT NULL,
        size INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS policy (id INTEGER PRIMARY KEY CHECK (id = 1), source TEXT NOT NULL,
        updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, tee TEXT NOT NULL,
        nonce BLOB NOT NULL, nonce_expires_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, token TEXT);
      CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
        stage TEXT NOT NULL, verdict TEXT NOT NULL, evidence_kind TEXT, measurement TEXT, simulated INTEGER,
        workload TEXT, config TEXT, secret TEXT, reason TEXT);
      CREATE TABLE IF NOT EXISTS admin_tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL);
    `);
  }

  /** Runs an admin change flushed to the disk before it returns. */
  #durably<T>(f: () => T): T {
    this.#db.pragma('synchronous = FULL');
    try {
      return f();
    } finally {
      this.#db.pragma('synchronous = NORMAL');
    }
  }

  // Secrets.

  /** Stores (or replaces) a secret, sealed. */
  putSecret(name: string, value: Uint8Array, now: number): void {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(`donjon/broker/secret/v1\0${name}`));
    const sealed = Buffer.concat([cipher.update(value), cipher.final(), cipher.getAuthTag()]);
    this.#durably(() =>
      this.#db
        .prepare(
          `INSERT INTO secrets (name, iv, sealed, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET iv = excluded.iv, sealed = excluded.sealed, size = excluded.size,
           updated_at = excluded.updated_at`,
        )
        .run(name, iv, sealed, value.length, now, now),
    );
  }

  /** A secret's value, opened; undefined when there is none of that name. */
  getSecret(name: string): Uint8Array | undefined {
    const row = this.#db.prepare('SELECT iv, sealed FROM secrets WHERE name = ?').get(name) as
      | { iv: Buffer; sealed: Buffer }
      | undefined;
    if (!row) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, row.iv);
      decipher.setAAD(Buffer.from(`donjon/broker/secret/v1\0${name}`));
      decipher.setAuthTag(row.sealed.subarray(row.sealed.length - 16));
      return new Uint8Array(
        Buffer.concat([decipher.update(row.sealed.subarray(0, row.sealed.length - 16)), decipher.final()]),
      );
    } catch (cause) {
      throw new BrokerError(
        'ERR_BROKER_STATE_INVALID',
        `Cannot open secret ${name}: it was not sealed under this state directory's key`,
        { cause },
      );
    }
  }

  /** Every secret, by name; never a value. */
  listSecrets(): SecretInfo[] {
    return (
      this.#db.prepare('SELECT name, size, created_at, updated_at FROM secrets ORDER BY name').all() as {
        name: string;
        size: number;
        created_at: number;
        updated_at: number;
      }[]
    ).map((r) => ({ name: r.name, size: r.size, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  /** Removes a secret; whether there was one. */
  removeSecret(name: string): boolean {
    return this.#durably(
      () => this.#db.prepare('DELETE FROM secrets WHERE name = ?').run(name).changes === 1,
    );
  }

  /** How many secrets are held. */
  secretCount(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n;
  }

  // Policy.

  /** The policy text as set, or undefined (no policy: everything is refused). */
  policySource(): string | undefined {
    const row = this.#db.prepare('SELECT source FROM policy WHERE id = 1').get() as
      | { source: string }
      | undefined;
    return row?.source;
  }

  /** Replaces the policy text (the caller checked it). */
  setPolicySource(source: string, now: number): void {
    this.#durably(() =>
      this.#db
        .prepare(
          `INSERT INTO policy (id, source, updated_at) VALUES (1, ?, ?)
           ON CONFLICT(id) DO UPDATE SET source = excluded.source, updated_at = excluded.updated_at`,
        )
        .run(source, now),
    );
  }

  // Sessions.

  /** Records a new challenge. */
  insertSession(s: SessionRecord): void {
    this.#db
      .prepare(
        `INSERT INTO sessions (id, state, tee, nonce, nonce_expires_at, expires_at, token)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(s.id, s.state, s.tee, Buffer.from(s.nonce), s.nonceExpiresAt, s.expiresAt, s.token ?? null);
  }

  /**
   * Takes a session's challenge for answering, once: moves it from `challenged` to `answered` if its nonce is
   * still valid, and returns it; undefined for an unknown, expired or already answered one. Atomic, so two
   * answers racing with the same cookie cannot both use the nonce.
   */
  takeChallenge(id: string, now: number): SessionRecord | undefined {
    return this.#db.transaction(() => {
      const row = this.#db
        .prepare(
          `SELECT id, state, tee, nonce, nonce_expires_at, expires_at, token FROM sessions
           WHERE id = ? AND state = 'challenged' AND nonce_expires_at > ?`,
        )
        .get(id, now) as SessionRow | undefined;
      if (!row) return undefined;
      this.#db.prepare(`UPDATE sessions SET state = 'answered' WHERE id = ?`).run(id);
      return { ...fromSessionRow(row), state: 'answered' as const };
    })();
  }

  /** Marks a session attested with its token. */
  attestSession(id: string, token: string, expiresAt: number): void {
    this.#db
      .prepare(`UPDATE sessions SET state = 'attested', token = ?, expires_at = ? WHERE id = ?`)
      .run(token, expiresAt, id);
  }

  /** A session that is still valid at `now`. */
  getSession(id: string, now: number): SessionRecord | undefined {
    const row = this.#db
      .prepare(
        'SELECT id, state, tee, nonce, nonce_expires_at, expires_at, token FROM sessions WHERE id = ? AND expires_at > ?',
      )
      .get(id, now) as SessionRow | undefined;
    return row && fromSessionRow(row);
  }

  /** Forgets sessions that ended before `now`; how many. */
  pruneSessions(now: number): number {
    return this.#db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }

  // Audit.

  /** Appends an audit entry. */
  audit(e: AuditEntry): void {
    this.#db
      .prepare(
        `INSERT INTO audit (at, stage, verdict, evidence_kind, measurement, simulated, workload, config, secret,
          reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        e.at,
        e.stage,
        e.verdict,
        e.evidenceKind ?? null,
        e.measurement ?? null,
        e.simulated === undefined ? null : e.simulated ? 1 : 0,
        e.workload ?? null,
        e.config ?? null,
        e.secret ?? null,
        e.reason ?? null,
      );
  }

  /** The audit log, oldest first; the last `limit` entries. */
  auditLog(limit = 1000): AuditEntry[] {
    const rows = this.#db
      .prepare('SELECT * FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id')
      .all(limit) as AuditRow[];
    return rows.map((r) => {
      const e: AuditEntry = { at: r.at, stage: r.stage, verdict: r.verdict };
      if (r.evidence_kind !== null) e.evidenceKind = r.evidence_kind;
      if (r.measurement !== null) e.measurement = r.measurement;
      if (r.simulated !== null) e.simulated = r.simulated === 1;
      if (r.workload !== null) e.workload = r.workload;
      if (r.config !== null) e.config = r.config;
      if (r.secret !== null) e.secret = r.secret;
      if (r.reason !== null) e.reason = r.reason;
      return e;
    });
  }

  // Admin tokens.

  /** Makes an admin token; only its SHA-256 is stored. Returns the token, shown once. */
  createAdminToken(now: number): { id: string; token: string } {
    const id = randomBytes(6).toString('hex');
    const token = `dbt_${randomBytes(32).toString('base64url')}`;
    this.#db
      .prepare('INSERT INTO admin_tokens (id, hash, created_at) VALUES (?, ?, ?)')
      .run(id, hashToken(token), now);
    return { id, token };
  }

  /** The id of an admin token, if it is known. */
  adminOf(token: string): string | undefined {
    const row = this.#db.prepare('SELECT id FROM admin_tokens WHERE hash = ?').get(hashToken(token)) as
      | { id: string }
      | undefined;
    return row?.id;
  }

  close(): void {
    this.#db.close();
  }
}

interface SessionRow {
  id: string;
  state: SessionState;
  tee: string;
  nonce: Buffer;
  nonce_expires_at: number;
  expires_at: number;
  token: string | null;
}

function fromSessionRow(r: SessionRow): SessionRecord {
  const s: SessionRecord = {
    id: r.id,
    state: r.state,
    tee: r.tee,
    nonce: new Uint8Array(r.nonce),
    nonceExpiresAt: r.nonce_expires_at,
    expiresAt: r.expires_at,
  };
  if (r.token !== null) s.token = r.token;
  return s;
}

interface AuditRow {
  at: number;
  stage: 'attest' | 'resource';
  verdict: 'released' | 'refused' | 'attested';
  evidence_kind: string | null;
  measurement: string | null;
  simulated: number | null;
  workload: string | null;
  config: string | null;
  secret: string | null;
  reason: string | null;
}
