// Sums the vitest JSON reports every package wrote in each mode and prints "N passed, N failed".
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

let passed = 0, failed = 0, skipped = 0;
const seen = [];
for (const group of ['packages', 'apps']) {
  if (!existsSync(group)) continue;
  for (const pkg of readdirSync(group)) {
    const dir = join(group, pkg, '.vitest-report');
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      passed += report.numPassedTests;
      failed += report.numFailedTests;
      skipped += report.numPendingTests + (report.numTodoTests ?? 0);
      // A file that failed to load has no failed test to count: count the file.
      for (const file of report.testResults ?? []) {
        const failedTests = (file.assertionResults ?? []).filter((t) => t.status === 'failed').length;
        if (file.status === 'failed' && failedTests === 0) failed += 1;
      }
      seen.push(`${pkg}:${file.replace('.json', '')}`);
    }
  }
}
console.error(`reports: ${seen.join(' ') || 'none'}`);
if (seen.length === 0) failed += 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
