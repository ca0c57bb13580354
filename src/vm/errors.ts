/** The VM driver's own error classes (each with a stable `code`, as those in src/common/errors.ts). */
import { HullError } from '../common/errors.js';

/** The guest did not come up (kernel panic, agent silent, QEMU failed). */
export class VmBootError extends HullError {
  override readonly code: string = 'HULL_VM_BOOT';
}
