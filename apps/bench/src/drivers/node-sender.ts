// The Node side of the `sender` suite: one TCP connection to the sink, the same buffer sent again
// and again in `chunk`-byte sends, as the C program does.
//   node node-sender.js <host> <port> <mode> <chunk> <seconds> <warmup-seconds>
//   mode: zc        core Sender, adaptive: false (IORING_OP_SEND_ZC, one op in flight per socket)
//         adaptive  core Sender defaults (a loopback peer gets plain IORING_OP_SEND)
//         write     socket.write, waiting for 'drain' when it returns false
// Prints one JSON line (bytes, seconds, cpuSeconds over the measured window, after the warm-up),
// or "skip <reason>" and exits 3 when the core Sender cannot run on io_uring.
import * as net from 'node:net';
import { once } from 'node:events';

interface SendHandle {
  sent: Promise<number>;
  released: Promise<unknown>;
}
interface SenderLike {
  readonly backend: string;
  readonly fallbackReason: string | null;
  readonly ringDescription?: string | null;
  send(socket: net.Socket, data: Uint8Array): SendHandle;
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}
interface CoreModule {
  Sender: new (options: Record<string, unknown>) => SenderLike;
}

const [host = '127.0.0.1', portArg, mode = 'zc', chunkArg, secondsArg, warmupArg] = process.argv.slice(2);
const chunk = Number(chunkArg);
const seconds = Number(secondsArg);
const warmup = Number(warmupArg ?? 0);

function skip(reason: string): never {
  process.stdout.write(`skip ${reason}\n`);
  process.exit(3);
}

async function openSender(): Promise<SenderLike | null> {
  if (mode === 'write') return null;
  // A variable specifier: the harness builds and runs even while core is not built.
  const specifier = '@zcsend/core';
  let core: CoreModule;
  try {
    core = (await import(specifier)) as CoreModule;
  } catch (err) {
    skip(`@zcsend/core unavailable: ${(err as Error).message.split('\n')[0]}`);
  }
  // threshold 0: every chunk, 4 KiB included, goes through the ring; chunkSize = chunk: one op per send, as in C.
  const options: Record<string, unknown> = { threshold: 0, chunkSize: chunk };
  if (mode === 'zc') options.adaptive = false;
  let sender: SenderLike;
  try {
    sender = new core.Sender(options);
  } catch (err) {
    skip(`core Sender: ${(err as Error).message}`);
  }
  if (sender.backend !== 'io_uring') skip(`core Sender has no ring: ${sender.fallbackReason ?? 'unknown'}`);
  return sender;
}

const sender = await openSender();
const socket = net.connect(Number(portArg), host);
await once(socket, 'connect');
socket.setNoDelay(true);
const body = Buffer.alloc(chunk, 'z');

const now = () => Number(process.hrtime.bigint()) / 1e9;
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

let sendOne: () => Promise<void>;
if (sender) {
  sendOne = async () => {
    await sender.send(socket, body).sent;
  };
} else {
  sendOne = async () => {
    if (!socket.write(body)) await once(socket, 'drain');
  };
}

const t0 = now();
while (now() - t0 < warmup) await sendOne();
const start = now();
const cpuStart = cpuNow();
let bytes = 0;
let end = start;
for (;;) {
  await sendOne();
  bytes += chunk;
  end = now();
  if (end - start >= seconds) break;
}
if (!sender) {
  // socket.write accepted the bytes into libuv; count them once the kernel has them too.
  await new Promise<void>((resolve) => socket.write('', () => resolve()));
  end = now();
}
const cpuSeconds = cpuNow() - cpuStart;
// After the window: wait for the last notifications so the counters say what the kernel did.
await sender?.close();
const details = sender ? `backend ${sender.backend}${sender.ringDescription ? ` (${sender.ringDescription})` : ''}` : 'socket.write';
const stats = sender?.stats() ?? null;
process.stdout.write(`${JSON.stringify({ bytes, seconds: end - start, cpuSeconds, mode, details, stats })}\n`);
socket.destroy();
