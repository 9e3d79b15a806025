/**
 * What the `pes` commands touch of their process: output streams and termination signals. Passed in,
 * so a command can run inside a test process as well as from the `pes` bin.
 */

/** Termination signals a long-running command stops on. */
export type StopSignal = 'SIGTERM' | 'SIGINT';

/** The process a command runs in. */
export interface CliIo {
  /** Writes one line (a newline is added) to standard output. */
  out(line: string): void;
  /** Writes one line (a newline is added) to standard error. */
  err(line: string): void;
  /** Calls `handler` on SIGTERM and SIGINT until the returned function is called. */
  onStop(handler: (signal: StopSignal) => void): () => void;
}

/** The real process: stdout, stderr, and signal listeners on `process`. */
export function processIo(): CliIo {
  return {
    out: (line) => {
      process.stdout.write(`${line}\n`);
    },
    err: (line) => {
      process.stderr.write(`${line}\n`);
    },
    onStop: (handler) => {
      const term = (): void => handler('SIGTERM');
      const int = (): void => handler('SIGINT');
      process.on('SIGTERM', term);
      process.on('SIGINT', int);
      return () => {
        process.off('SIGTERM', term);
        process.off('SIGINT', int);
      };
    },
  };
}
