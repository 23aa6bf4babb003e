// Loader for the zcsend native addon. load() never throws: when the addon
// cannot be used it says why, and callers fall back to copying sends.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const packageDir = path.dirname(fileURLToPath(import.meta.url));
const defaultAddonPath = path.join(packageDir, 'build', 'Release', 'zcsend_native.node');
const unavailablePath = path.join(packageDir, 'build', 'unavailable.txt');

/** @type {import('./index.d.ts').LoadResult | undefined} */
let cached;

function notBuiltReason(addonPath) {
  let why = '';
  try {
    why = fs.readFileSync(unavailablePath, 'utf8').split('\n')[0].trim();
  } catch {
    // no record of a failed build: the build simply has not run
  }
  if (addonPath !== defaultAddonPath) return `zcsend native addon not found at ${addonPath} (ZCSEND_NATIVE_PATH)`;
  return why
    ? `zcsend native addon not built: ${why}`
    : 'zcsend native addon not built (run the @zcsend/native build script: node scripts/build.mjs)';
}

function tryLoad() {
  if (process.platform !== 'linux') {
    return { binding: null, reason: `zcsend native addon unavailable: platform ${process.platform} is not Linux (io_uring is Linux-only)` };
  }
  const override = process.env.ZCSEND_NATIVE_PATH;
  const addonPath = override ? path.resolve(override) : defaultAddonPath;
  if (!fs.existsSync(addonPath)) return { binding: null, reason: notBuiltReason(addonPath) };
  let binding;
  try {
    binding = require(addonPath);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { binding: null, reason: `zcsend native addon failed to load (${addonPath}): ${message}` };
  }
  if (!binding || typeof binding.probe !== 'function' || typeof binding.Ring !== 'function' || !binding.constants) {
    return { binding: null, reason: `zcsend native addon at ${addonPath} does not export probe/Ring/constants` };
  }
  return { binding, reason: null };
}

/** Load the addon. Never throws: returns the reason when it is absent or unusable. Cached. */
export function load() {
  if (cached === undefined) {
    try {
      cached = tryLoad();
    } catch (error) {
      cached = { binding: null, reason: `zcsend native addon unavailable: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  return cached;
}
