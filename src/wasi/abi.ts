// Numbers and layouts of the wasi_snapshot_preview1 ABI, from the preview1 witx (typenames.witx and
// wasi_snapshot_preview1.witx). Kept as plain constants so the host code reads like the spec.

/** The import module name of WASI preview1. */
export const PREVIEW1_MODULE = 'wasi_snapshot_preview1';

/** WASI errno values the host returns. */
export const errno = {
  success: 0,
  '2big': 1,
  acces: 2,
  again: 6,
  badf: 8,
  busy: 10,
  connreset: 15,
  exist: 20,
  fault: 21,
  fbig: 22,
  ilseq: 25,
  inval: 28,
  io: 29,
  isdir: 31,
  loop: 32,
  mfile: 33,
  nametoolong: 37,
  noent: 44,
  nospc: 51,
  nosys: 52,
  notconn: 53,
  notdir: 54,
  notempty: 55,
  notsock: 57,
  notsup: 58,
  overflow: 61,
  perm: 63,
  pipe: 64,
  rofs: 69,
  spipe: 70,
  xdev: 75,
  notcapable: 76,
} as const;

/** Clock ids of `clock_time_get`, `clock_res_get` and clock subscriptions. */
export const clockid = { realtime: 0, monotonic: 1, processCputime: 2, threadCputime: 3 } as const;

/** File types reported in `fdstat` and `filestat`. */
export const filetype = {
  unknown: 0,
  blockDevice: 1,
  characterDevice: 2,
  directory: 3,
  regularFile: 4,
  socketDgram: 5,
  socketStream: 6,
  symbolicLink: 7,
} as const;

/** Descriptor flags (`fdflags`). */
export const fdflags = { append: 1, dsync: 2, nonblock: 4, rsync: 8, sync: 16 } as const;

/** Rights bits (`rights`). */
export const rights = {
  fdDatasync: 1n << 0n,
  fdRead: 1n << 1n,
  fdSeek: 1n << 2n,
  fdFdstatSetFlags: 1n << 3n,
  fdSync: 1n << 4n,
  fdTell: 1n << 5n,
  fdWrite: 1n << 6n,
  fdAdvise: 1n << 7n,
  fdAllocate: 1n << 8n,
  pathCreateDirectory: 1n << 9n,
  pathCreateFile: 1n << 10n,
  pathLinkSource: 1n << 11n,
  pathLinkTarget: 1n << 12n,
  pathOpen: 1n << 13n,
  fdReaddir: 1n << 14n,
  pathReadlink: 1n << 15n,
  pathRenameSource: 1n << 16n,
  pathRenameTarget: 1n << 17n,
  pathFilestatGet: 1n << 18n,
  pathFilestatSetSize: 1n << 19n,
  pathFilestatSetTimes: 1n << 20n,
  fdFilestatGet: 1n << 21n,
  fdFilestatSetSize: 1n << 22n,
  fdFilestatSetTimes: 1n << 23n,
  pathSymlink: 1n << 24n,
  pathRemoveDirectory: 1n << 25n,
  pathUnlinkFile: 1n << 26n,
  pollFdReadwrite: 1n << 27n,
  sockShutdown: 1n << 28n,
  sockAccept: 1n << 29n,
} as const;

/** Every rights bit preview1 defines. */
export const ALL_RIGHTS = (1n << 30n) - 1n;

/** Rights that mean something on a regular file. */
export const FILE_RIGHTS =
  rights.fdDatasync |
  rights.fdRead |
  rights.fdSeek |
  rights.fdFdstatSetFlags |
  rights.fdSync |
  rights.fdTell |
  rights.fdWrite |
  rights.fdAdvise |
  rights.fdAllocate |
  rights.fdFilestatGet |
  rights.fdFilestatSetSize |
  rights.fdFilestatSetTimes |
  rights.pollFdReadwrite;

/**
 * What a read-only directory grants, and the files and folders opened from it: reading, seeking, listing,
 * looking up; nothing that creates, writes, truncates, renames, links or removes.
 */
export const READ_ONLY_RIGHTS =
  rights.fdRead |
  rights.fdSeek |
  rights.fdFdstatSetFlags |
  rights.fdTell |
  rights.fdAdvise |
  rights.pathOpen |
  rights.fdReaddir |
  rights.pathReadlink |
  rights.pathFilestatGet |
  rights.fdFilestatGet |
  rights.pollFdReadwrite;

/** Rights that mean something on a directory. */
export const DIRECTORY_RIGHTS =
  rights.fdDatasync |
  rights.fdFdstatSetFlags |
  rights.fdSync |
  rights.pathCreateDirectory |
  rights.pathCreateFile |
  rights.pathLinkSource |
  rights.pathLinkTarget |
  rights.pathOpen |
  rights.fdReaddir |
  rights.pathReadlink |
  rights.pathRenameSource |
  rights.pathRenameTarget |
  rights.pathFilestatGet |
  rights.pathFilestatSetSize |
  rights.pathFilestatSetTimes |
  rights.fdFilestatGet |
  rights.fdFilestatSetTimes |
  rights.pathSymlink |
  rights.pathRemoveDirectory |
  rights.pathUnlinkFile |
  rights.pollFdReadwrite;

/** `oflags` of path_open. */
export const oflags = { creat: 1, directory: 2, excl: 4, trunc: 8 } as const;

/** `lookupflags.symlink_follow`. */
export const LOOKUP_SYMLINK_FOLLOW = 1;

/** `fstflags` of the set_times calls. */
export const fstflags = { atim: 1, atimNow: 2, mtim: 4, mtimNow: 8 } as const;

/** `whence` of fd_seek. */
export const whence = { set: 0, cur: 1, end: 2 } as const;

/** Event and subscription tags of `poll_oneoff`. */
export const eventtype = { clock: 0, fdRead: 1, fdWrite: 2 } as const;

/** `subclockflags.subscription_clock_abstime`. */
export const SUBCLOCK_ABSTIME = 1;
/** `riflags` of sock_recv: peek, and wait for the whole buffer. */
export const riflags = { peek: 1, waitall: 2 } as const;
/** `sdflags` of sock_shutdown: the read side, the write side. */
export const sdflags = { rd: 1, wr: 2 } as const;
/** `eventrwflags.fd_readwrite_hangup`. */
export const EVENTRW_HANGUP = 1;

/** Sizes in bytes of the ABI structs the host reads or writes. */
export const sizes = { iovec: 8, fdstat: 24, filestat: 64, subscription: 48, event: 32, dirent: 24 } as const;

/**
 * The wasm type of every preview1 function, as `params:results` with `i` for i32 and `I` for i64. A module
 * may import only these names, each with exactly this type: the host is plain JavaScript, which would
 * otherwise link against any type and see its arguments coerced.
 */
export const PREVIEW1_SIGNATURES: Readonly<Record<string, string>> = {
  args_get: 'ii:i',
  args_sizes_get: 'ii:i',
  environ_get: 'ii:i',
  environ_sizes_get: 'ii:i',
  clock_res_get: 'ii:i',
  clock_time_get: 'iIi:i',
  fd_advise: 'iIIi:i',
  fd_allocate: 'iII:i',
  fd_close: 'i:i',
  fd_datasync: 'i:i',
  fd_fdstat_get: 'ii:i',
  fd_fdstat_set_flags: 'ii:i',
  fd_fdstat_set_rights: 'iII:i',
  fd_filestat_get: 'ii:i',
  fd_filestat_set_size: 'iI:i',
  fd_filestat_set_times: 'iIIi:i',
  fd_pread: 'iiiIi:i',
  fd_prestat_get: 'ii:i',
  fd_prestat_dir_name: 'iii:i',
  fd_pwrite: 'iiiIi:i',
  fd_read: 'iiii:i',
  fd_readdir: 'iiiIi:i',
  fd_renumber: 'ii:i',
  fd_seek: 'iIii:i',
  fd_sync: 'i:i',
  fd_tell: 'ii:i',
  fd_write: 'iiii:i',
  path_create_directory: 'iii:i',
  path_filestat_get: 'iiiii:i',
  path_filestat_set_times: 'iiiiIIi:i',
  path_link: 'iiiiiii:i',
  path_open: 'iiiiiIIii:i',
  path_readlink: 'iiiiii:i',
  path_remove_directory: 'iii:i',
  path_rename: 'iiiiii:i',
  path_symlink: 'iiiii:i',
  path_unlink_file: 'iii:i',
  poll_oneoff: 'iiii:i',
  proc_exit: 'i:',
  proc_raise: 'i:i',
  sched_yield: ':i',
  random_get: 'ii:i',
  sock_accept: 'iii:i',
  sock_recv: 'iiiiii:i',
  sock_send: 'iiiii:i',
  sock_shutdown: 'ii:i',
};
