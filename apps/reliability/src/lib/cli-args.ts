// Flag parsing shared by the soak and fuzz commands: --help prints the usage, a bad flag gets one
// line and exit code 2 rather than a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The parsed values, or the exit code when the command should stop here (0 for --help, 2 for a bad flag). */
export function parseFlags<T extends Options>(name: string, usage: string, options: T): ReturnType<typeof parseArgs<{ options: T }>>['values'] | number {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }).values as Record<string, unknown>;
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message.split('. ')[0]}\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(usage);
    return 0;
  }
  return values as unknown as ReturnType<typeof parseArgs<{ options: T }>>['values'];
}
