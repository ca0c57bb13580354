/**
 * zstd decompression through Debian's `zstd` program: Node.js 20's zlib has no zstd (it arrived in
 * Node 22.15), and OCI images may carry `application/vnd.oci.image.layer.v1.tar+zstd` layers.
 */
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { HostSupportError } from '../common/errors.js';

/** A stream that takes zstd frames and gives the decompressed bytes; errors name zstd's complaint. */
export function zstdDecoder(): Duplex {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (e: NodeJS.ErrnoException) => {
    duplex.destroy(
      e.code === 'ENOENT'
        ? new HostSupportError('zstd-compressed layers need the zstd program: apt-get install zstd')
        : e,
    );
  });
  child.on('close', (code) => {
    if (code !== 0 && code !== null) {
      const err = new Error(
        `bad zstd data: ${stderr.trim().split('\n').pop() || `zstd exited ${code}`}`,
      ) as NodeJS.ErrnoException;
      err.code = 'ZSTD_ERROR';
      duplex.destroy(err);
    }
  });
  duplex.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return duplex;
}
