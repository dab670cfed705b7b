import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the CLI keeps its own state (the embedded host's simulated root): $DONJON_HOME, else the XDG data dir. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['DONJON_HOME']) return env['DONJON_HOME'];
  const xdg = env['XDG_DATA_HOME'];
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.local', 'share'), 'donjon');
}
