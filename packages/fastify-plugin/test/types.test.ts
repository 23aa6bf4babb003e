// The type tests are programs that must compile (with their @ts-expect-error lines failing as
// expected) against the built declarations, as a consumer sees them through package.json exports.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe('types', () => {
  it('ESM and CommonJS consumers type-check: declaration merging, options, stats', async () => {
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(process.execPath, [tsc, '-p', path.join(here, 'types/tsconfig.json')], { timeout: 120_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
      });
    });
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  }, 120_000);
});
