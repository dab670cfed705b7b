// The Wasm artifact layout: the CNCF TAG-Runtime one (config application/vnd.wasm.config.v0+json, one layer
// application/wasm), which wkg, wasmCloud and containerd's runwasi read. On pull, the older wasm-to-oci
// layer type (application/vnd.wasm.content.layer.v1+wasm) is accepted too. An Enarx.toml travels as an
// annotation of the manifest (see ENARX_TOML_ANNOTATION), so the layout keeps its one layer and the
// configuration is covered by the manifest digest that signatures name.
import { sha256Digest } from './digest.ts';
import { RegistryError } from './errors.ts';
import { isDigest } from './reference.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** The config media type of the CNCF Wasm layout. */
export const WASM_CONFIG = 'application/vnd.wasm.config.v0+json';
/** The layer media type of the CNCF Wasm layout. */
export const WASM_LAYER = 'application/wasm';
/** The layer media type of the older wasm-to-oci layout, read but never written. */
export const WASM_LAYER_LEGACY = 'application/vnd.wasm.content.layer.v1+wasm';
/** The manifest annotation that carries the workload's Enarx.toml, as text. */
export const ENARX_TOML_ANNOTATION = 'vnd.donjon.enarx-toml';
/** The largest Enarx.toml carried (annotations live in the manifest, itself bounded). */
export const MAX_ENARX_TOML_BYTES = 256 * 1024;

/** A content descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An image manifest, checked. */
export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** What a Wasm artifact holds, as {@link wasmArtifactOf} finds it. */
export interface WasmArtifact {
  readonly manifest: ImageManifest;
  readonly layer: Descriptor;
  /** The Enarx.toml the manifest carries, if any. */
  readonly enarxToml?: string;
}

/** The blobs and manifest of a Wasm artifact, ready to push. */
export interface ArtifactParts {
  readonly config: Uint8Array;
  readonly manifest: Uint8Array;
}

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

function annotationsOf(value: unknown, what: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(what, 'its annotations are not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw malformed(what, `annotation ${k} is not a string`);
    out[k] = v;
  }
  return out;
}

function malformed(what: string, why: string): RegistryError {
  return new RegistryError('ERR_REGISTRY_PROTOCOL', `Cannot read ${what}: ${why}`);
}

/** Checks a descriptor's fields (media type, sha256 digest, size). */
export function descriptorOf(value: unknown, what: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw malformed(what, 'a descriptor is not an object');
  const v = value as Record<string, unknown>;
  if (typeof v.mediaType !== 'string' || v.mediaType === '')
    throw malformed(what, 'a descriptor has no media type');
  if (typeof v.digest !== 'string' || !isDigest(v.digest))
    throw malformed(what, `a descriptor's digest ${String(v.digest)} is not sha256`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0)
    throw malformed(what, 'a descriptor has no valid size');
  const annotations = annotationsOf(v.annotations, what);
  return { mediaType: v.mediaType, digest: v.digest, size: v.size, ...(annotations ? { annotations } : {}) };
}

/**
 * Parses an image manifest (OCI or Docker v2). An index or manifest list is refused with a message that
 * says to name one of its manifests; `what` names the manifest in messages.
 */
export function parseManifest(bytes: Uint8Array, contentType: string, what: string): ImageManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw malformed(what, 'it is not JSON');
  }
  if (typeof json !== 'object' || json === null) throw malformed(what, 'it is not a JSON object');
  const m = json as Record<string, unknown>;
  const mediaType = typeof m.mediaType === 'string' ? m.mediaType : contentType;
  if (mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST || Array.isArray(m.manifests)) {
    throw new RegistryError(
      'ERR_ARTIFACT_INVALID',
      `Cannot use ${what}: it is an index of several manifests; name one of them by digest`,
    );
  }
  if (m.schemaVersion !== 2) throw malformed(what, `its schemaVersion is ${String(m.schemaVersion)}, not 2`);
  if (mediaType !== '' && mediaType !== OCI_MANIFEST && mediaType !== DOCKER_MANIFEST) {
    throw new RegistryError(
      'ERR_ARTIFACT_INVALID',
      `Cannot use ${what}: its media type ${mediaType} is not an image manifest`,
    );
  }
  if (!Array.isArray(m.layers)) throw malformed(what, 'it has no layers');
  const annotations = annotationsOf(m.annotations, what);
  return {
    schemaVersion: 2,
    ...(typeof m.mediaType === 'string' ? { mediaType: m.mediaType } : {}),
    config: descriptorOf(m.config, what),
    layers: m.layers.map((l) => descriptorOf(l, what)),
    ...(annotations ? { annotations } : {}),
  };
}

/**
 * Finds the module of a Wasm artifact: exactly one layer of type application/wasm (or the older
 * wasm-to-oci type). ERR_ARTIFACT_INVALID otherwise, e.g. for a container image.
 */
export function wasmArtifactOf(manifest: ImageManifest, what: string): WasmArtifact {
  const wasm = manifest.layers.filter((l) => l.mediaType === WASM_LAYER || l.mediaType === WASM_LAYER_LEGACY);
  if (wasm.length !== 1) {
    throw new RegistryError(
      'ERR_ARTIFACT_INVALID',
      `Cannot use ${what}: ${wasm.length === 0 ? `it has no ${WASM_LAYER} layer (is it a Wasm artifact?)` : `it has ${wasm.length} Wasm layers, not one`}`,
    );
  }
  const toml = manifest.annotations?.[ENARX_TOML_ANNOTATION];
  if (toml !== undefined && Buffer.byteLength(toml, 'utf8') > MAX_ENARX_TOML_BYTES) {
    throw new RegistryError(
      'ERR_ARTIFACT_INVALID',
      `Cannot use ${what}: its Enarx.toml exceeds ${MAX_ENARX_TOML_BYTES} bytes`,
    );
  }
  return { manifest, layer: wasm[0]!, ...(toml === undefined ? {} : { enarxToml: toml }) };
}

/**
 * The config blob and manifest of a Wasm artifact for `wasm` (whose digest is `wasmDigest`), in the CNCF
 * layout. The bytes are deterministic (no creation time), so pushing the same module and Enarx.toml twice
 * gives the same manifest digest. `title` names the file (`org.opencontainers.image.title`).
 */
export function buildWasmArtifact(
  wasm: { readonly digest: string; readonly size: number; readonly title?: string },
  enarxToml?: string,
): ArtifactParts {
  if (enarxToml !== undefined && Buffer.byteLength(enarxToml, 'utf8') > MAX_ENARX_TOML_BYTES) {
    throw new RangeError(`Cannot carry the Enarx.toml: it exceeds ${MAX_ENARX_TOML_BYTES} bytes`);
  }
  const config = utf8(JSON.stringify({ architecture: 'wasm', os: 'wasip1', layerDigests: [wasm.digest] }));
  const configDigest = sha256Digest(config);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: WASM_CONFIG, digest: configDigest, size: config.byteLength },
    layers: [
      {
        mediaType: WASM_LAYER,
        digest: wasm.digest,
        size: wasm.size,
        ...(wasm.title === undefined
          ? {}
          : { annotations: { 'org.opencontainers.image.title': wasm.title } }),
      },
    ],
    ...(enarxToml === undefined ? {} : { annotations: { [ENARX_TOML_ANNOTATION]: enarxToml } }),
  };
  return { config, manifest: utf8(JSON.stringify(manifest)) };
}
