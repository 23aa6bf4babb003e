// `fastify`: one Fastify app, with and without `fastify.register(zcSend)`: Buffer replies and
// @fastify/static files.
import * as path from 'node:path';
import { patternBody, sha256 } from '../body.js';
import type { SuiteContext } from '../context.js';
import { writeFixture } from '../files-fixture.js';
import { runHttpSuite, type HttpCompetitor, type HttpPoint } from '../http-suite.js';
import { ownScript, startAnnouncingScript } from '../launch.js';
import type { SuiteResult } from '../results.js';

export async function runFastifySuite(ctx: SuiteContext): Promise<Omit<SuiteResult, 'startedAt' | 'finishedAt' | 'machine' | 'mode'>> {
  const { plan } = ctx;
  const sizes = plan.fastify.sizes;
  const root = path.join(ctx.tmp, 'fastify-static');
  const fixture = writeFixture(root, sizes);
  const app = ownScript('./servers/fastify-app.js');
  const pathOf = (point: HttpPoint) =>
    point.group === 'buffer' ? `/buf/${point.size}` : `/static/${fixture.find((f) => f.size === point.size)!.name}`;

  const competitors: HttpCompetitor[] = [
    { id: 'fastify', label: 'Fastify', path: pathOf, start: (cpu) => startAnnouncingScript('fastify', app, [root, '0', sizes.join(',')], cpu) },
    // A second plain Fastify process measured like the others: its ratio to the first is the
    // noise floor of this run (A/A), what a "no measurable loss" verdict has to be read against.
    {
      id: 'fastify-control',
      label: 'Fastify (A/A control)',
      path: pathOf,
      start: (cpu) => startAnnouncingScript('fastify-control', app, [root, '0', sizes.join(',')], cpu),
    },
    {
      id: 'fastify-zcsend',
      label: 'Fastify + zcSend',
      path: pathOf,
      start: (cpu) => startAnnouncingScript('fastify-zcsend', app, [root, '0', sizes.join(','), '--zc'], cpu),
    },
  ];

  const connections = plan.fastify.connections;
  const points: HttpPoint[] = [];
  for (const size of sizes) {
    points.push({ group: 'buffer', size, connections, sha256: sha256(patternBody(size)), bytes: size });
  }
  for (const file of fixture) points.push({ group: 'static', size: file.size, connections, sha256: file.sha256, bytes: file.size });

  const out = await runHttpSuite(ctx, competitors, points);
  return {
    suite: 'fastify',
    title: 'Fastify with and without zcSend',
    settings: {
      rounds: plan.rounds,
      seconds: plan.seconds,
      warmupSeconds: plan.warmupSeconds,
      warmupResponses: plan.warmupResponses,
      warmupMaxSeconds: plan.warmupMaxSeconds,
      sizes,
      connections: [connections],
      loadGenerator: ctx.load?.description ?? null,
    },
    competitors: out.competitors,
    groups: [
      { id: 'buffer', title: `Buffer replies (reply.send(buffer)), ${connections} connections` },
      { id: 'static', title: `@fastify/static files, ${connections} connections` },
    ],
    cells: out.cells,
    notes: [
      'Fastify (A/A control) is a second, identical plain Fastify process: its ratio to Fastify shows how far two equal servers differ in this run.',
    ],
  };
}
