// `files`: zcserve against the usual static servers, same files, same load, side by side.
import * as path from 'node:path';
import type { SuiteContext } from '../context.js';
import { writeFixture } from '../files-fixture.js';
import { runHttpSuite, type HttpCompetitor, type HttpPoint } from '../http-suite.js';
import { ownScript, startAnnouncingScript, startHttpServerPackage, startNginx, startSirv, startZcserve } from '../launch.js';
import type { SuiteResult } from '../results.js';
import { MiB } from '../units.js';

/** zcserve's cache for this suite; the memory target is stated against it. */
export const ZCSERVE_CACHE_BYTES = 256 * MiB;

export async function runFilesSuite(ctx: SuiteContext): Promise<Omit<SuiteResult, 'startedAt' | 'finishedAt' | 'machine' | 'mode'>> {
  const { plan } = ctx;
  const root = path.join(ctx.tmp, 'files');
  const fixture = writeFixture(root, plan.files.sizes);
  const byPath = (point: HttpPoint) => `/${fixture.find((f) => f.size === point.size)!.name}`;

  const competitors: HttpCompetitor[] = [
    { id: 'zcserve', label: 'zcserve', path: byPath, start: (cpu) => startZcserve(root, cpu, { cacheBytes: ZCSERVE_CACHE_BYTES }) },
    {
      id: 'nginx-sendfile',
      label: 'nginx (sendfile on)',
      path: byPath,
      start: (cpu) => startNginx(ctx.tools.nginx, ctx.tools.missing.nginx, root, ctx.tmp, true, cpu),
    },
    {
      id: 'nginx-nosendfile',
      label: 'nginx (sendfile off)',
      path: byPath,
      start: (cpu) => startNginx(ctx.tools.nginx, ctx.tools.missing.nginx, root, ctx.tmp, false, cpu),
    },
    { id: 'sirv-cli', label: 'sirv-cli', path: byPath, start: (cpu) => startSirv(root, cpu) },
    { id: 'http-server', label: 'http-server', path: byPath, start: (cpu) => startHttpServerPackage(root, cpu) },
    {
      id: 'fastify-static',
      label: '@fastify/static',
      path: byPath,
      start: (cpu) => startAnnouncingScript('fastify-static', ownScript('./servers/fastify-static.js'), [root, '0'], cpu),
    },
    {
      id: 'node-stream',
      label: 'node:http + createReadStream',
      path: byPath,
      start: (cpu) => startAnnouncingScript('node-stream', ownScript('./servers/node-stream.js'), [root, '0'], cpu),
    },
    {
      // Not a static server: the ceiling of node:http for these bodies (see servers/node-buffer.ts).
      id: 'node-buffer',
      label: 'node:http + Buffer in memory (ceiling)',
      path: byPath,
      start: (cpu) => startAnnouncingScript('node-buffer', ownScript('./servers/node-buffer.js'), [root, '0'], cpu),
    },
  ];

  const points: HttpPoint[] = [];
  for (const connections of plan.files.connections) {
    for (const file of fixture) points.push({ group: `c${connections}`, size: file.size, connections, sha256: file.sha256, bytes: file.size });
  }
  const out = await runHttpSuite(ctx, competitors, points);
  return {
    suite: 'files',
    title: 'Static files: zcserve vs nginx and Node static servers',
    settings: {
      rounds: plan.rounds,
      seconds: plan.seconds,
      warmupSeconds: plan.warmupSeconds,
      warmupResponses: plan.warmupResponses,
      warmupMaxSeconds: plan.warmupMaxSeconds,
      sizes: plan.files.sizes,
      connections: plan.files.connections,
      loadGenerator: ctx.load?.description ?? null,
    },
    competitors: out.competitors,
    groups: plan.files.connections.map((c) => ({ id: `c${c}`, title: `${c} connections` })),
    cells: out.cells,
    notes: [`zcserve runs with --cache ${ZCSERVE_CACHE_BYTES / MiB}MiB; every file fits in it.`],
  };
}
