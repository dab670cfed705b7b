// Reading a registry's answers: bodies under a size limit checked before and while they stream, and the
// registry's own explanation of an error.
import { RegistryError } from './errors.ts';

/** The whole body of `response`, refused (ERR_REGISTRY_PROTOCOL) as soon as it exceeds `maxBytes`. */
export async function readBounded(response: Response, maxBytes: number, url: string): Promise<Uint8Array> {
  const tooLarge = (): RegistryError =>
    new RegistryError('ERR_REGISTRY_PROTOCOL', `Cannot fetch ${url}: the answer exceeds ${maxBytes} bytes`, {
      url,
    });
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  if (reader !== undefined) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The registry's own explanation (`{"errors":[{"code","message"}]}`), when its body holds one. */
export function registryReason(body: Uint8Array): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(body).toString('utf8')) as {
      errors?: { code?: unknown; message?: unknown }[];
    };
    const first = parsed.errors?.[0];
    if (first && typeof first.code === 'string') {
      return typeof first.message === 'string' && first.message !== ''
        ? `${first.code}: ${first.message}`
        : first.code;
    }
  } catch {}
  return undefined;
}
