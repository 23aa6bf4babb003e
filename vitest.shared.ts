// Shared vitest settings: real sockets and one native ring per process, so run test files in
// forked processes; each mode writes its own JSON report so .ci/run can total both modes.
import { defineConfig } from 'vitest/config';

export function testMode(): 'uring' | 'copy' | 'auto' {
  if (process.env.ZCSEND_DISABLE === '1') return 'copy';
  if (process.env.ZCSEND_REQUIRE_URING === '1') return 'uring';
  return 'auto';
}

export function sharedConfig(overrides: { testTimeout?: number; include?: string[] } = {}) {
  return defineConfig({
    test: {
      pool: 'forks',
      include: overrides.include ?? ['test/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 60_000,
      hookTimeout: 60_000,
      reporters: ['default', 'json'],
      // ZCSEND_REPORT_TAG names extra runs (e.g. the sanitizer run) so they do not overwrite a mode's report.
      outputFile: { json: `.vitest-report/${process.env.ZCSEND_REPORT_TAG ?? testMode()}.json` },
    },
  });
}
