// The sample directory the demo serves: files from 4 KiB to 64 MiB, generated on first start
// into a cache folder (never committed) and reused afterwards.
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface SampleSpec {
  name: string;
  bytes: number;
}

export interface SampleFile extends SampleSpec {
  sha256: string;
}

export interface SampleSet {
  dir: string;
  files: SampleFile[];
  /** True when this call wrote the files (first start, or a damaged set). */
  generated: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const SAMPLE_SPECS: readonly SampleSpec[] = [
  { name: '4k.bin', bytes: 4 * KiB },
  { name: '64k.bin', bytes: 64 * KiB },
  { name: '256k.bin', bytes: 256 * KiB },
  { name: '1m.bin', bytes: 1 * MiB },
  { name: '4m.bin', bytes: 4 * MiB },
  { name: '16m.bin', bytes: 16 * MiB },
  { name: '64m.bin', bytes: 64 * MiB },
];

const MANIFEST = 'manifest.json';
/** Bump when the content generator changes, so stale sets are rewritten. */
const MANIFEST_VERSION = 1;
const WRITE_CHUNK = 1 * MiB;

/**
 * Deterministic pseudo-random bytes: AES-128-CTR over zeros, keyed by `seed`. Fast (hardware AES),
 * incompressible, and reproducible, so tests can recompute any sample or API body on their own.
 */
export function deterministicStream(seed: string): (length: number) => Buffer {
  const key = createHash('sha256').update(`zcsend-demo:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

export function deterministicBytes(seed: string, length: number): Buffer {
  return deterministicStream(seed)(length);
}

/** `$XDG_CACHE_HOME/zcsend-demo/samples` or `~/.cache/zcsend-demo/samples`. */
export function defaultSampleDir(env: NodeJS.ProcessEnv = process.env): string {
  const cacheHome = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'zcsend-demo', 'samples');
}

/** Where samples go when the cache folder cannot be written (read-only home). */
export function fallbackSampleDir(): string {
  return path.join(os.tmpdir(), `zcsend-demo-${process.getuid?.() ?? 0}`, 'samples');
}

function readManifest(dir: string): SampleFile[] | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as { version?: unknown; files?: unknown };
    if (parsed.version !== MANIFEST_VERSION || !Array.isArray(parsed.files)) return null;
    return parsed.files as SampleFile[];
  } catch {
    return null;
  }
}

/** The manifest matches the specs and every file has its recorded size (content is not re-hashed: 85 MiB per start). */
function intact(dir: string, files: SampleFile[] | null, specs: readonly SampleSpec[]): files is SampleFile[] {
  if (!files || files.length !== specs.length) return false;
  return specs.every((spec, i) => {
    const f = files[i];
    if (!f || f.name !== spec.name || f.bytes !== spec.bytes || typeof f.sha256 !== 'string') return false;
    try {
      const st = fs.statSync(path.join(dir, spec.name));
      return st.isFile() && st.size === spec.bytes;
    } catch {
      return false;
    }
  });
}

async function writeSample(dir: string, spec: SampleSpec): Promise<SampleFile> {
  const next = deterministicStream(`file:${spec.name}`);
  const hash = createHash('sha256');
  // Write under a private name and rename: a reader (or a second demo) never sees a partial file.
  const tmp = path.join(dir, `.${spec.name}.${process.pid}.tmp`);
  const handle = await fs.promises.open(tmp, 'w');
  try {
    for (let done = 0; done < spec.bytes; ) {
      const chunk = next(Math.min(WRITE_CHUNK, spec.bytes - done));
      hash.update(chunk);
      await handle.write(chunk);
      done += chunk.length;
    }
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, path.join(dir, spec.name));
  return { ...spec, sha256: hash.digest('hex') };
}

/** Makes sure `dir` holds the sample files, writing them when missing or damaged. */
export async function ensureSamples(dir: string, specs: readonly SampleSpec[] = SAMPLE_SPECS): Promise<SampleSet> {
  await fs.promises.mkdir(dir, { recursive: true });
  const existing = readManifest(dir);
  if (intact(dir, existing, specs)) return { dir, files: existing, generated: false };
  const files: SampleFile[] = [];
  for (const spec of specs) files.push(await writeSample(dir, spec));
  const manifestTmp = path.join(dir, `.${MANIFEST}.${process.pid}.tmp`);
  await fs.promises.writeFile(manifestTmp, JSON.stringify({ version: MANIFEST_VERSION, files }, null, 2) + '\n');
  await fs.promises.rename(manifestTmp, path.join(dir, MANIFEST));
  return { dir, files, generated: true };
}

export function totalBytes(files: readonly SampleSpec[]): number {
  return files.reduce((sum, f) => sum + f.bytes, 0);
}
