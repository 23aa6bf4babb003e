// node:http + fs.createReadStream: the static server people write by hand.
//   node node-stream.js <root> [port]
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { pipeline } from 'node:stream';
import { announce, exitOnSignal } from './announce.js';

const root = path.resolve(process.argv[2] ?? '.');
const port = Number(process.argv[3] ?? 0);

const server = http.createServer((req, res) => {
  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  const file = path.join(root, path.normalize(pathname));
  if (!file.startsWith(root + path.sep)) {
    res.writeHead(403).end();
    return;
  }
  fs.stat(file, (err, stat) => {
    if (err || !stat.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': stat.size,
      'last-modified': stat.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    pipeline(fs.createReadStream(file), res, () => {});
  });
});

exitOnSignal();
server.listen(port, '127.0.0.1', () => announce(server.address(), `node ${process.version}`));
