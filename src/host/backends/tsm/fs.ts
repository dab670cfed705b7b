// The filesystem operations configfs-tsm needs, as an interface so that tests can drive a faithful fake of
// the kernel's rules instead of a real /sys/kernel/config.
import { constants } from 'node:fs';
import { mkdir, open, readFile, rmdir } from 'node:fs/promises';

/** The default configfs-tsm report directory. */
export const TSM_REPORT_ROOT = '/sys/kernel/config/tsm/report';

/**
 * What the configfs-tsm client does to the filesystem. Failures reject with Node-style system errors
 * (an `Error` whose `code` is the errno name, e.g. `EBUSY`).
 */
export interface TsmFs {
  /** Creates a report directory; the kernel populates its attributes. */
  mkdir(path: string): Promise<void>;
  /** Removes a report directory, releasing the kernel's state for it. */
  rmdir(path: string): Promise<void>;
  /** Reads a whole attribute. Reading `outblob` or `auxblob` is what makes the kernel produce the report. */
  read(path: string): Promise<Uint8Array>;
  /**
   * Writes an attribute in one write(2) on a descriptor opened write-only (no create, no truncate), then
   * closes it: configfs commits binary attributes on close. Resolves to the number of bytes the write took.
   */
  write(path: string, data: Uint8Array): Promise<number>;
}

/** The real filesystem, for /sys/kernel/config. */
export function nodeTsmFs(): TsmFs {
  return {
    mkdir: async (path) => {
      await mkdir(path);
    },
    rmdir: (path) => rmdir(path),
    read: async (path) => new Uint8Array(await readFile(path)),
    write: async (path, data) => {
      const handle = await open(path, constants.O_WRONLY);
      try {
        const { bytesWritten } = await handle.write(data, 0, data.byteLength, null);
        return bytesWritten;
      } finally {
        await handle.close();
      }
    },
  };
}
