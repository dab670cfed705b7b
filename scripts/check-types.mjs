// Checks the package as a consumer sees it: packs it (npm pack, as it would be published), installs the
// tarball into a temporary project, and there
//   1. type-checks a small consumer under `moduleResolution: nodenext` with the declarations themselves
//      checked (skipLibCheck off): the `types` conditions of the exports map resolve, the declarations are
//      whole, and `donjon/attestation` does not export the simulator (an @ts-expect-error holds that);
//   2. imports the three entries with Node: the JavaScript resolves, and only `donjon/attestation/sim`
//      exports the signing functions.
// Builds dist/ first when it is missing, and always rebuilds the declarations. Run by .ci/run and
// `npm run check:types`.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args, options = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) {
    console.error(`check-types: ${cmd} ${args.join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
  return r;
};

if (!existsSync(join(root, 'dist', 'cli.cjs'))) run(process.execPath, ['scripts/build.mjs']);
run(process.execPath, ['scripts/build-types.mjs']);

const dir = mkdtempSync(join(tmpdir(), 'donjon-types-'));
try {
  // --ignore-scripts: pack what was just built, without `prepare` emptying dist/ and building it again.
  const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [{ filename }] = JSON.parse(packed.stdout.toString());
  const pkg = join(dir, 'node_modules', 'donjon');
  mkdirSync(pkg, { recursive: true });
  run('tar', ['-xzf', join(dir, filename), '-C', pkg, '--strip-components=1']);

  // The consumer gets what an install would give it: the package's dependencies, and @types/node.
  const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const name of [...Object.keys(own.dependencies ?? {}), '@types']) {
    const to = join(dir, 'node_modules', name);
    mkdirSync(join(to, '..'), { recursive: true });
    symlinkSync(join(root, 'node_modules', name), to);
  }

  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2022'],
        types: ['node'],
        noEmit: true,
        skipLibCheck: false,
      },
      files: ['consumer.ts'],
    }),
  );
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', type: 'module', private: true }),
  );
  writeFileSync(
    join(dir, 'consumer.ts'),
    `import { type Claims, type Policy, parsePolicy, verify } from 'donjon/attestation';
// @ts-expect-error the verifier's entry does not export the simulator
import { signSimReport as notInTheVerifier } from 'donjon/attestation';
import { createSimRoot, type SimRootMaterial, signSimReport } from 'donjon/attestation/sim';
import { ClientError, type ClientErrorCode, KeepManagerClient } from 'donjon/client';

const policy: Policy = parsePolicy({ allowDebug: false });
const fingerprint = (m: SimRootMaterial): string => m.fingerprint;
const report: (m: SimRootMaterial) => Uint8Array = (m) =>
  signSimReport(m, { reportData: new Uint8Array(64), measurement: new Uint8Array(48) });
const code = (e: ClientError): ClientErrorCode => e.code;
const claims = (c: Claims): string => c.kind;
export { claims, code, createSimRoot, fingerprint, KeepManagerClient, notInTheVerifier, policy, report, verify };
`,
  );
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  run(process.execPath, [tsc, '-p', dir]);

  const probe = `
    const verifier = await import('donjon/attestation');
    const sim = await import('donjon/attestation/sim');
    const client = await import('donjon/client');
    const fail = (why) => { console.error('check-types: ' + why); process.exit(1); };
    if (typeof verifier.verify !== 'function') fail('donjon/attestation has no verify()');
    for (const name of ['signSimReport', 'createSimRoot', 'parseSimRoot', 'serializeSimRoot', 'assembleSnpReport'])
      if (name in verifier) fail('donjon/attestation exports ' + name);
    if (typeof sim.signSimReport !== 'function') fail('donjon/attestation/sim has no signSimReport()');
    if (typeof client.KeepManagerClient !== 'function') fail('donjon/client has no KeepManagerClient');
  `;
  run(process.execPath, ['--input-type=module', '-e', probe], { cwd: dir });
  console.log(
    'check-types: donjon/client, donjon/attestation and donjon/attestation/sim resolve with their types',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
