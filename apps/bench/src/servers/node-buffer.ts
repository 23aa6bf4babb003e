// node:http answering every file of the root from memory with the headers zcserve sends for a
// full 200: no filesystem, no routing, no validation. The most a node:http-based static server can
// do per request, so zcserve's small-file req/s can be stated against it (the "ceiling").
//   node node-buffer.js <root> [port]
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { announce, exitOnSignal } from './announce.js';

const root = path.resolve(process.argv[2] ?? '.');
const port = Number(process.argv[3] ?? 0);

interface Answer {
  headers: string[];
  body: Buffer;
}

const answers = new Map<string, Answer>();
for (const name of fs.readdirSync(root)) {
  const file = path.join(root, name);
  const stat = fs.statSync(file);
  if (!stat.isFile()) continue;
  const body = fs.readFileSync(file);
  // Same names, order and value shapes as zcserve's full 200 (ETag of the same length).
  const etag = `"${stat.ino.toString(36)}-${stat.size.toString(36)}-${Math.floor(stat.mtimeMs * 1000).toString(36)}"`;
  const headers = [
    'Content-Type', 'application/octet-stream',
    'Content-Length', String(body.length),
    'ETag', etag,
    'Last-Modified', new Date(Math.floor(stat.mtimeMs / 1000) * 1000).toUTCString(),
    'Cache-Control', 'public, max-age=0',
    'Accept-Ranges', 'bytes',
  ];
  answers.set(`/${encodeURIComponent(name)}`, { headers, body });
}

const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  const answer = answers.get(req.url ?? '/');
  if (!answer) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, answer.headers);
  res.end(req.method === 'HEAD' ? undefined : answer.body);
});

exitOnSignal();
server.listen(port, '127.0.0.1', () => announce(server.address(), `node ${process.version}, ${answers.size} files in memory`));
