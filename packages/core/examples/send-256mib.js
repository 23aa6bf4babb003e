#!/usr/bin/env node
// Sends 256 MiB over a loopback TCP connection through the core Sender and checks the
// receiver's sha256. adaptive: false so SEND_ZC really runs (loopback would switch to plain sends).
// Usage: node examples/send-256mib.js [MiB]
import * as net from 'node:net';
import { once } from 'node:events';
import { createHash, randomFillSync } from 'node:crypto';
import { Sender, probe } from '../dist/index.js';

const mib = Number(process.argv[2] ?? 256);
const total = mib * 1024 * 1024;
const machine = probe();
const sender = new Sender({ adaptive: false });
console.log(`kernel ${machine.kernel}; backend ${sender.backend}${sender.fallbackReason ? ` (${sender.fallbackReason})` : ` (${sender.ringDescription})`}`);

const server = net.createServer().listen(0, '127.0.0.1');
await once(server, 'listening');
const client = net.connect(server.address().port, '127.0.0.1');
const [socket] = await once(server, 'connection');

const body = randomFillSync(Buffer.allocUnsafe(total));
const expected = createHash('sha256').update(body).digest('hex');
const received = new Promise((resolve) => {
  const hash = createHash('sha256');
  let bytes = 0;
  client.on('data', (chunk) => {
    hash.update(chunk);
    bytes += chunk.length;
    if (bytes === total) resolve(hash.digest('hex'));
  });
});

const started = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const { sent, released } = sender.send(socket, body);
await sent;
const actual = await received;
const report = await released;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuStart);
await sender.close();
const stats = sender.stats();

console.log(`sent ${mib} MiB in ${seconds.toFixed(2)} s (${(mib / seconds).toFixed(0)} MiB/s, process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s incl. receiver and hashing)`);
console.log(`ops ${report.ops} (zero-copy ${report.zcOps}, kernel reported copied ${report.copiedOps})`);
console.log(`sha256 sender   ${expected}\nsha256 receiver ${actual}\n${actual === expected ? 'MATCH' : 'MISMATCH'}`);
console.log(`after close(): inFlightOps=${stats.inFlightOps} pinnedBytes=${stats.pinnedBytes} notifications=${stats.notifications} zcOps=${stats.zcOpsSubmitted} violations=${stats.violations}`);
client.destroy();
socket.destroy();
server.close();
process.exitCode = actual === expected && stats.inFlightOps === 0 && stats.pinnedBytes === 0 ? 0 : 1;
