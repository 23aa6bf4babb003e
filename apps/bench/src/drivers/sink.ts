// Fallback sink for the `sender` suite when the C program cannot be compiled: accepts
// connections on 127.0.0.1, reads and discards. Prints "listening <port>".
//   node sink.js
import * as net from 'node:net';

const server = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.resume();
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port} node sink\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
