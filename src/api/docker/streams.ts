/**
 * docker's stream formats: with a TTY, the raw bytes (`application/vnd.docker.raw-stream`); without one,
 * multiplexed frames (`application/vnd.docker.multiplexed-stream`), each an 8-byte header [stream, 0, 0, 0,
 * size as big-endian u32] (stream 0 stdin, 1 stdout, 2 stderr) and the payload.
 */
import { Writable } from 'node:stream';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

export type StreamId = 1 | 2;

/** One frame of the multiplexed stream. */
export function frame(stream: StreamId, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** What writes into a connection: `write(stream, data)`; false once the peer is gone. */
export interface StreamSink {
  write(stream: StreamId, data: Buffer | string): boolean;
  /** the connection went away (the client disconnected) */
  readonly closed: boolean;
}

/** A sink onto `out`, framed unless `tty`. */
export function sink(
  out: NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean },
  tty: boolean,
): StreamSink {
  return {
    write(stream, data) {
      if (out.destroyed || out.writableEnded) return false;
      const b = typeof data === 'string' ? Buffer.from(data) : data;
      if (b.length === 0) return true;
      out.write(tty ? b : frame(stream, b));
      return true;
    },
    get closed() {
      return !!(out.destroyed || out.writableEnded);
    },
  };
}

/** A Writable that forwards into one stream of a sink (a driver's stdout or stderr). */
export function streamWritable(s: StreamSink, stream: StreamId): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      s.write(stream, chunk);
      cb();
    },
  });
}
