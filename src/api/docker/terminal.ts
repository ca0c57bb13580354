/** A remote terminal's size, as docker's clients report it (`/resize?h=&w=`), for a driver's attach or exec. */
export class Terminal {
  private size = { rows: 24, cols: 80 };
  private readonly listeners: (() => void)[] = [];

  resize(q: URLSearchParams): void {
    const rows = Number(q.get('h'));
    const cols = Number(q.get('w'));
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) return;
    this.size = { rows, cols };
    for (const l of this.listeners) l();
  }

  stdio(): { size: () => { rows: number; cols: number }; onResize: (cb: () => void) => void } {
    return { size: () => this.size, onResize: (cb) => this.listeners.push(cb) };
  }
}
