/** A time-series chart with uPlot, loaded on first use (it is not in the first load's bundle). */
import { useEffect, useRef } from 'preact/hooks';
import type uPlot from 'uplot';

export interface Series {
  label: string;
  color: string;
}

let lib: Promise<typeof uPlot> | undefined;
/** The library, once; a failed fetch (a dropped connection) is tried again on the next use. */
const load = () =>
  (lib ??= Promise.all([import('uplot'), import('uplot/dist/uPlot.min.css')]).then(
    ([m]) => m.default,
    (e: unknown) => {
      lib = undefined;
      throw e;
    },
  ));

/** `data[0]` holds the times (seconds since the epoch), `data[1..]` one array per series. */
export function Chart(props: {
  title: string;
  series: Series[];
  data: number[][];
  height?: number;
  format?: (v: number) => string;
  max?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(props.data);
  latest.current = props.data;
  useEffect(() => {
    let gone = false;
    let ro: ResizeObserver | undefined;
    const retrying = () => load().catch(() => load());
    void retrying().then((UPlot) => {
      if (gone || !box.current) return;
      const fmt = props.format ?? ((v: number) => String(v));
      const width = Math.max(200, box.current.clientWidth);
      plot.current = new UPlot(
        {
          width,
          height: props.height ?? 160,
          legend: { show: true },
          cursor: { drag: { x: false, y: false } },
          scales: { y: { range: (_u, lo, hi) => [Math.min(0, lo), Math.max(props.max ?? 0, hi, 1e-9)] } },
          axes: [
            { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,.2)' } },
            {
              stroke: 'currentColor',
              grid: { stroke: 'rgba(128,128,128,.2)' },
              size: 70,
              values: (_u, ticks) => ticks.map(fmt),
            },
          ],
          series: [
            {},
            ...props.series.map((s) => ({
              label: s.label,
              stroke: s.color,
              width: 1.5,
              value: (_u: uPlot, v: number | null) => (v === null ? '—' : fmt(v)),
            })),
          ],
        },
        latest.current as uPlot.AlignedData,
        box.current,
      );
      ro = new ResizeObserver(() => {
        if (box.current && plot.current)
          plot.current.setSize({ width: Math.max(200, box.current.clientWidth), height: props.height ?? 160 });
      });
      ro.observe(box.current);
    });
    return () => {
      gone = true;
      ro?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(props.data as uPlot.AlignedData);
  }, [props.data]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div
        ref={box}
        class="chart-box"
        role="img"
        aria-label={`${props.title} chart`}
        data-points={props.data[0]?.length ?? 0}
      />
    </figure>
  );
}
