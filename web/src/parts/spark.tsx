/** A sparkline: an inline SVG polyline (no chart library for the table's many small charts). */
export function Spark(props: { values: number[]; max?: number; label: string; text: string }) {
  const w = 80;
  const h = 20;
  const v = props.values;
  const max = Math.max(props.max ?? 0, ...v, 1e-9);
  const pts = v.map(
    (y, i) => `${((i / Math.max(1, v.length - 1)) * w).toFixed(1)},${(h - (y / max) * (h - 2) - 1).toFixed(1)}`,
  );
  return (
    <span class="spark" title={props.label}>
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`${props.label}: ${props.text}`}>
        {v.length > 1 && <polyline points={pts.join(' ')} fill="none" stroke="currentColor" stroke-width="1.5" />}
      </svg>
      <span class="spark-text">{props.text}</span>
    </span>
  );
}
