/**
 * Entry point of the VM monitor process (bundled as dist/vm-monitor.cjs; run from source with tsx in
 * development): `vm-monitor <instance dir>`. See ./monitor.ts.
 */
import { monitorMain } from './monitor.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: vm-monitor <instance dir>\n');
  process.exit(2);
}
monitorMain(dir).catch((e: Error) => {
  process.stderr.write(`vm-monitor: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
