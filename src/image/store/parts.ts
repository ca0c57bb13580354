/** What the parts of the image store (names, commits, layers, downloads, gc) share: its directories and its layout. */
import { join } from 'node:path';
import { OciLayout, TempArea } from '../layout.js';
import { rootPaths } from '../../common/paths.js';

export class StoreParts {
  readonly imagesDir: string;
  readonly layersDir: string;
  readonly layout: OciLayout;
  /** scratch space on the layers' file system (extractions in progress, layer directories on their way out) */
  readonly layerTemp: TempArea;

  constructor(
    readonly root: string,
    readonly warn: (message: string) => void,
  ) {
    this.imagesDir = rootPaths(root).images;
    this.layersDir = rootPaths(root).layers;
    this.layout = new OciLayout(this.imagesDir);
    this.layerTemp = new TempArea(join(this.layersDir, '.tmp'));
  }
}
