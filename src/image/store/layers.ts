/**
 * The image store's extracted layers: each layer is extracted once into `<root>/layers/<diffID hex>/` (see
 * ../unpack.ts), on first use; the digest and diffID are verified while extracting (IntegrityError on a
 * mismatch, and nothing is left behind). Extractions in this process are shared by parallel callers.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { digestHex } from '../layout.js';
import type { ImageRecord } from './names.js';
import type { StoreParts } from './parts.js';

const loadUnpack = () => import('../unpack.js');

export class LayerDirs {
  /** extractions running in this process, by diffID, so parallel callers share one */
  private readonly unpacking = new Map<string, Promise<void>>();

  constructor(private readonly s: StoreParts) {}

  /**
   * The image's extracted layer directories, lowest first, extracting those that are
   * missing. Already extracted layers cost one stat each.
   */
  async of(image: ImageRecord): Promise<string[]> {
    const dirs: string[] = [];
    for (const layer of image.layers) {
      const dir = join(this.s.layersDir, digestHex(layer.diffId));
      if (!existsSync(dir)) await this.unpack(layer, dir);
      dirs.push(dir);
    }
    return dirs;
  }

  private async unpack(layer: ImageRecord['layers'][number], dir: string): Promise<void> {
    let running = this.unpacking.get(layer.diffId);
    if (!running) {
      running = (async () => {
        mkdirSync(this.s.layersDir, { recursive: true, mode: 0o700 });
        const { unpackLayer } = await loadUnpack();
        const result = await unpackLayer(this.s.layout.blobPath(layer.digest), layer, dir, this.s.layerTemp);
        if (result.skipped > 0) {
          const more =
            result.skipped > result.warnings.length ? ` (and ${result.skipped - result.warnings.length} more)` : '';
          this.s.warn(
            `layer ${layer.digest}: ${result.skipped} entries not extracted: ${result.warnings.join('; ')}${more}`,
          );
        }
      })().finally(() => this.unpacking.delete(layer.diffId));
      this.unpacking.set(layer.diffId, running);
    }
    await running;
  }
}
