// Sums the vitest JSON reports every package wrote in each mode and prints "N passed, N failed".
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

let passed = 0, failed = 0, skipped = 0;
const seen = [];
// Named here because CI keeps only the tail of the log: which test failed, and its message.
const failures = [];
for (const group of ['packages', 'apps']) {
  if (!existsSync(group)) continue;
  for (const pkg of readdirSync(group)) {
    const dir = join(group, pkg, '.vitest-report');
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const report = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      const where = `${pkg}:${file.replace('.json', '')}`;
      passed += report.numPassedTests;
      failed += report.numFailedTests;
      skipped += report.numPendingTests + (report.numTodoTests ?? 0);
      // A file that failed to load has no failed test to count: count the file.
      for (const result of report.testResults ?? []) {
        const failedTests = (result.assertionResults ?? []).filter((t) => t.status === 'failed');
        for (const t of failedTests) failures.push(`${where} ${t.fullName}: ${messageSummary(t.failureMessages)}`);
        if (result.status === 'failed' && failedTests.length === 0) {
          failed += 1;
          failures.push(`${where} ${result.name}: ${messageSummary([result.message])}`);
        }
      }
      seen.push(where);
    }
  }
}
console.error(`reports: ${seen.join(' ') || 'none'}`);
for (const line of failures) console.error(`FAILED ${line}`);
if (seen.length === 0) failed += 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);

function messageSummary(messages) {
  const text = String((messages ?? []).find(Boolean) ?? 'no message');
  // Stack frames say little here; the message's lines, joined, say what went wrong.
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at '));
  return lines.join(' | ').slice(0, 900) || 'no message';
}
