// Node's own HTTP parser as an oracle: when Node rejects a request (a parse error after the
// headers, or in a later pipelined request) its http server destroys the connection, cutting any
// response in progress. A cut body is only acceptable where Node itself would have done that.
import * as http from 'node:http';
import * as net from 'node:net';

export interface ParserVerdict {
  /** Requests Node's parser delivered before the error (or in total). */
  requests: number;
  /** The parser error code (e.g. HPE_INVALID_TRANSFER_ENCODING), or null if every byte parsed. */
  clientError: string | null;
}

export class NodeParserOracle {
  private server: http.Server | null = null;
  private port = 0;
  private current: { requests: number; clientError: string | null } | null = null;
  /** One case at a time: verdicts are read from shared state. */
  private queue: Promise<unknown> = Promise.resolve();

  async start(): Promise<void> {
    this.server = http.createServer((_req, res) => {
      if (this.current) this.current.requests++;
      res.end('x');
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      if (this.current && !this.current.clientError) this.current.clientError = err.code ?? err.message;
      socket.destroy();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Feeds `bytes` to a fresh Node http server connection. */
  judge(bytes: Buffer): Promise<ParserVerdict> {
    const run = this.queue.then(() => this.judgeNow(bytes));
    this.queue = run.catch(() => {});
    return run;
  }

  private async judgeNow(bytes: Buffer): Promise<ParserVerdict> {
    const state = { requests: 0, clientError: null as string | null };
    this.current = state;
    const socket = net.connect(this.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume();
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.end(bytes);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    socket.destroy();
    this.current = null;
    return state;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }
}
