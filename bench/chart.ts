/** A small SVG line chart: billed milliseconds per message against round-trip time, ours and the two peers. */
export function renderChart(
  points: Array<{ rttMs: number; ours: number; peer: number; strawman: number }>,
): string {
  const width = 640;
  const height = 360;
  const pad = { left: 64, right: 24, top: 32, bottom: 48 };
  const maxX = Math.max(...points.map((p) => p.rttMs), 1);
  const maxY = Math.max(...points.map((p) => Math.max(p.strawman, p.peer, p.ours)), 1) * 1.1;
  const x = (value: number) => Math.round(pad.left + (value / maxX) * (width - pad.left - pad.right));
  const y = (value: number) =>
    Math.round(height - pad.bottom - (value / maxY) * (height - pad.top - pad.bottom));
  const line = (key: 'ours' | 'peer' | 'strawman', color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${points.map((p) => `${x(p.rttMs)},${y(p[key])}`).join(' ')}"/>` +
    points
      .map(
        (p) =>
          `<circle cx="${x(p.rttMs)}" cy="${y(p[key])}" r="3.5" fill="${color}"><title>${key} at ${p.rttMs} ms: ${p[key]} ms</title></circle>`,
      )
      .join('');
  const ticksY = Array.from({ length: 5 }, (_, index) => (maxY / 4) * index);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img">
<title>Billed milliseconds per message against round-trip time: oauth-mailer, a competent hand-written sender and the per-message transport</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">Billed milliseconds per message</text>
${ticksY.map((tick) => `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#eee"/><text x="${pad.left - 8}" y="${y(tick) + 4}" text-anchor="end">${Math.round(tick)}</text>`).join('')}
${points.map((p) => `<text x="${x(p.rttMs)}" y="${height - pad.bottom + 18}" text-anchor="middle">${p.rttMs}</text>`).join('')}
<text x="${width / 2}" y="${height - 10}" text-anchor="middle">round-trip time to the provider, ms</text>
${line('strawman', '#c0392b')}${line('peer', '#2c5aa0')}${line('ours', '#1e7a3c')}
<text x="${pad.left + 16}" y="${pad.top + 10}" fill="#c0392b">transport and token refresh per message</text>
<text x="${pad.left + 16}" y="${pad.top + 28}" fill="#2c5aa0">competent peer (pooled transport, cached token; no idempotency, no limits)</text>
<text x="${pad.left + 16}" y="${pad.top + 46}" fill="#1e7a3c">oauth-mailer (exactly once, provider limits)</text>
</svg>
`;
}
