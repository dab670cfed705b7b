// Key broker: secret release latency (evidence in the Keep to the secret opened in the Keep, over TLS on
// loopback: handshake, challenge, attestation, token, JWE) and releases per second, beside the cost of one
// evidence verification and one loopback TLS handshake measured in the same run. The goal: the broker
// adds no more than one verification plus one handshake. Run alone with `BENCH_ONLY=broker npm run bench`.
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { verify } from '../src/attestation/index.ts';
import { signSimReport } from '../src/attestation/sim/index.ts';
import { brokerReportData } from '../src/broker/binding.ts';
import { fetchSecrets } from '../src/broker/client.ts';
import { connectPinned } from '../src/broker/http.ts';
import { spkiOf } from '../src/ratls/index.ts';
import { allowPolicy, CONFIG, MEASUREMENT, makeKeep, startBroker, WORKLOAD } from '../test/broker/support.ts';

const ROUNDS = Number(process.env['BENCH_BROKER_ROUNDS'] ?? 40);
const SECONDS = Number(process.env['BENCH_BROKER_SECONDS'] ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timeMany(n: number, f: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Releases completed in `seconds` with `parallel` Keeps asking at once (bounded in time and count). */
async function throughput(run: () => Promise<unknown>, seconds: number, parallel: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (performance.now() < end && done < 100_000) {
        await run();
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

export async function benchBroker(): Promise<string> {
  const b = await startBroker();
  try {
    b.store.putSecret('db', new TextEncoder().encode('bench-secret'), Date.now());
    b.store.setPolicySource(allowPolicy(b, ['db']), Date.now());
    const keep = makeKeep(b);
    const release = async () => {
      const got = await fetchSecrets({
        stream: connect(b.port, '127.0.0.1'),
        fingerprint: b.fingerprint,
        key: keep.key,
        evidence: keep.evidence,
        workload: WORKLOAD,
        config: CONFIG,
        tee: 'snp',
        secrets: ['db'],
      });
      if (got.get('db')?.length !== 12) throw new Error('the release returned the wrong secret');
    };
    for (let i = 0; i < 5; i++) await release();

    // The pieces, on the same evidence kind.
    const nonce = new Uint8Array(32).fill(7);
    const reportData = brokerReportData({
      nonce,
      spki: spkiOf(keep.key),
      workload: WORKLOAD,
      config: CONFIG,
    });
    const evidence = await keep.evidence(reportData);
    const measurement = Buffer.from(MEASUREMENT, 'hex');
    const signMs = await timeMany(ROUNDS, () => signSimReport(b.root.material, { reportData, measurement }));
    const policy = { reportData, allowDebug: true, trustSimulatedRoots: [b.root.fingerprint] };
    const verifyMs = await timeMany(ROUNDS, () =>
      verify({ kind: 'sev-snp', report: evidence.report, certs: evidence.certs }, policy, {
        now: new Date(),
      }),
    );
    const handshakeMs = await timeMany(ROUNDS, async () => {
      (await connectPinned({ host: '127.0.0.1', port: b.port }, b.fingerprint)).destroy();
    });

    // Interleave so that both see the same load.
    const releases: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      await release();
      releases.push(performance.now() - t0);
    }
    const releaseMs = median(releases);
    // The server's own time per step, from its request log lines (the last rounds).
    const routeMs = (route: string): number =>
      median(
        b.logs
          .map((l) => JSON.parse(l) as { event: string; route?: string; ms?: number })
          .filter((e) => e.event === 'request' && e.route === route)
          .slice(-ROUNDS)
          .map((e) => e.ms ?? 0),
      );
    const authMs = routeMs('/kbs/v0/auth');
    const attestMs = routeMs('/kbs/v0/attest');
    const resourceMs = routeMs('/kbs/v0/resource/{repository}/{type}/{tag}');
    const serial = await throughput(release, SECONDS, 1);
    const parallel = await throughput(release, SECONDS, 4);
    const inBroker =
      (b.server.metrics.get('donjon_broker_evidence_verify_seconds_sum') /
        b.server.metrics.get('donjon_broker_evidence_verify_seconds_count')) *
      1000;

    const { FlattenedEncrypt } = await import('jose');
    const { createPublicKey } = await import('node:crypto');
    const jweMs = await timeMany(ROUNDS, () =>
      new FlattenedEncrypt(new Uint8Array(12))
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
        .encrypt(createPublicKey(keep.key)),
    );
    const added = releaseMs - signMs;
    const goal = verifyMs + handshakeMs;
    const f = (x: number): string => x.toFixed(1);
    return `## Key broker: secret release (issue goal: adds at most one verification plus one TLS handshake)

In process, on loopback, with simulated SEV-SNP evidence: a fresh TCP connection and TLS 1.3 handshake to the
pinned broker, \`/kbs/v0/auth\`, the simulated report signed, \`/kbs/v0/attest\` (evidence verified, EAR token
signed), \`/kbs/v0/resource\` (token verified, policy decided, JWE made) and the JWE opened with the Keep's key.
Medians of ${ROUNDS} rounds; releases per second over ${SECONDS} s.

| what | median ms |
|---|---|
| one release, end to end | ${f(releaseMs)} |
| of which the simulated report signing (the Keep Loader's, not the broker's) | ${f(signMs)} |
| **the broker's part (release − signing)** | **${f(added)}** |
| one SEV-SNP evidence verification (\`verify\`, same evidence) | ${f(verifyMs)} |
| one TLS 1.3 handshake to the broker on loopback | ${f(handshakeMs)} |
| **goal: verification + handshake** | **${f(goal)}** (${added <= goal ? 'met' : 'not met'}: ratio ${(added / goal).toFixed(2)}) |
| mean verification inside the broker (from its metrics) | ${f(inBroker)} |
| the broker answering \`/kbs/v0/auth\` (its log) | ${f(authMs)} |
| the broker answering \`/kbs/v0/attest\`: verify, token | ${f(attestMs)} |
| the broker answering \`/kbs/v0/resource\`: token check, policy, JWE | ${f(resourceMs)} |
| one JWE (ECDH-ES+A256KW, A256GCM) made by \`jose\` alone | ${f(jweMs)} |

The rest of a release is the Keep's side (opening the JWE costs about what making it does: \`jose\` runs every
step through WebCrypto, several asynchronous calls per JWE) and three HTTP round trips on one connection.

| throughput | releases/s |
|---|---|
| one Keep at a time | ${serial.toFixed(0)} |
| four Keeps at once | ${parallel.toFixed(0)} |
`;
  } finally {
    await b.close();
  }
}
