// One scenario's result as text: the figures, then each check.
import type { ScenarioResult } from './run.js';

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(0)} MiB`;
}

export function summary(r: ScenarioResult): string {
  const lines = [
    `${r.passed ? 'PASS' : 'FAIL'} ${r.server}${r.engine ? ` --engine ${r.engine}` : ''} / ${r.mode} (${r.backend}) seed ${r.seed}: ${r.requests.planned} requests over ${r.config.connections} connections in ${r.seconds.toFixed(1)} s (server CPU ${r.serverCpuSeconds.toFixed(1)} s)`,
    `  completed ${r.requests.completed}, aborted ${r.requests.aborted}, stalled ${r.requests.stalled}, ranges ${r.requests.ranges}, retried ${r.requests.retried}; ${(r.bodyBytesVerified / 2 ** 30).toFixed(2)} GiB verified`,
    `  rss start ${mib(r.rss.start)}, warm-up peak ${mib(r.rss.warmUpPeak)}, early peak ${mib(r.rss.earlyPeak)}, late peak ${mib(r.rss.latePeak)} (${r.rss.lateGrowthPct.toFixed(1)}%), after quiesce ${mib(r.rss.afterQuiesce)}`,
    `  fds baseline ${r.fds.baseline}, peak ${r.fds.peak}, after ${r.fds.afterQuiesce}`,
  ];
  if (r.senderAfter) {
    const s = r.senderAfter;
    lines.push(`  sender: ops ${s.opsSubmitted} (zc ${s.zcOpsSubmitted}, fixed-buffer ${s.fixedOpsSubmitted ?? 0}), notifications ${s.notifications}, cancellations ${s.cancellations}, bytes ${mib(s.bytesSent)} (zc-copied ${mib(s.bytesCopied)}, plain ${mib(s.bytesPlain)}), violations ${s.violations}, CQ overflows ${s.cqOverflows}`);
  }
  if (r.httpAfter) {
    const verdicts = r.httpAfter.timeoutVerdicts ? `, timeout verdicts ${JSON.stringify(r.httpAfter.timeoutVerdicts)}` : '';
    lines.push(`  server http: ${r.httpAfter.timeouts} connections reset by the timeout, ${r.httpAfter.aborted} responses not finished${verdicts}`);
  }
  if (r.byEngine) {
    lines.push(`  file bodies by engine: ${Object.entries(r.byEngine).map(([e, v]) => `${e} ${v.sends} (${mib(v.bytes)})`).join(', ')}; ${r.fileErrors ?? 0} rejected sends ${JSON.stringify(r.fileErrorCodes ?? {})}, fallbacks ${JSON.stringify(r.fileFallbacks ?? {})}`);
  }
  for (const c of r.checks) lines.push(`  [${c.ok ? 'ok' : 'FAIL'}] ${c.name}: ${c.detail}`);
  for (const f of r.failures.slice(0, 10)) lines.push(`  failure: ${f}`);
  return lines.join('\n');
}
