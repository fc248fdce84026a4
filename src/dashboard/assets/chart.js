// Throughput of the last minutes, drawn as inline SVG from the events stream: completed and failed per bucket.
import { fill, h, svg } from './dom.js';

const BUCKET_MS = 5_000;
const BUCKETS = 60; // 5 minutes
const WIDTH = 600;
const HEIGHT = 150;
const RATE_BUCKETS = 6; // the "now" rate: the last 30 s

export class ThroughputChart {
  constructor(container) {
    this.container = container;
    /** bucket start (ms) → { completed, failed, sent } */
    this.buckets = new Map();
    this.timer = setInterval(() => this.draw(), 1000);
    this.draw();
  }

  /**
   * Counts an event in its bucket. A live event stamped outside the window (a skewed clock) counts now;
   * a `seed` event (replayed history) outside the window is dropped.
   */
  record(event, seed = false) {
    const kind =
      event.type === 'completed'
        ? 'completed'
        : event.type === 'dead' || event.type === 'retrying'
          ? 'failed'
          : event.type === 'sent'
            ? 'sent'
            : null;
    if (!kind) return;
    const at = Date.parse(event.at);
    const oldest = Date.now() - BUCKETS * BUCKET_MS;
    if (seed && (Number.isNaN(at) || at < oldest)) return;
    const when = Number.isNaN(at) || at < oldest ? Date.now() : Math.min(at, Date.now());
    const start = Math.floor(when / BUCKET_MS) * BUCKET_MS;
    const bucket = this.buckets.get(start) ?? { completed: 0, failed: 0, sent: 0 };
    bucket[kind]++;
    this.buckets.set(start, bucket);
  }

  stop() {
    clearInterval(this.timer);
  }

  draw() {
    if (!this.container.isConnected) return;
    const now = Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS;
    const first = now - (BUCKETS - 1) * BUCKET_MS;
    for (const start of this.buckets.keys()) if (start < first) this.buckets.delete(start);
    const series = [];
    let totals = { completed: 0, failed: 0, sent: 0 };
    let peak = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const b = this.buckets.get(first + i * BUCKET_MS) ?? { completed: 0, failed: 0, sent: 0 };
      series.push(b);
      totals = {
        completed: totals.completed + b.completed,
        failed: totals.failed + b.failed,
        sent: totals.sent + b.sent,
      };
      peak = Math.max(peak, b.completed + b.failed, b.sent);
    }
    const top = niceCeiling(peak);
    const barWidth = WIDTH / BUCKETS;
    const y = (n) => HEIGHT - (n / top) * (HEIGHT - 14);
    const bars = [];
    const sentLine = [];
    series.forEach((b, i) => {
      const x = i * barWidth;
      if (b.completed > 0) {
        bars.push(
          svg('rect', {
            class: 'bar completed',
            x: x + 1,
            y: y(b.completed),
            width: barWidth - 2,
            height: HEIGHT - y(b.completed),
          }),
        );
      }
      if (b.failed > 0) {
        const base = y(b.completed);
        bars.push(
          svg('rect', {
            class: 'bar failed',
            x: x + 1,
            y: base - (HEIGHT - y(b.failed)),
            width: barWidth - 2,
            height: HEIGHT - y(b.failed),
          }),
        );
      }
      sentLine.push(`${(x + barWidth / 2).toFixed(1)},${y(b.sent).toFixed(1)}`);
    });
    const recent = series.slice(-RATE_BUCKETS).reduce((sum, b) => sum + b.completed, 0);
    const rate = (recent / ((RATE_BUCKETS * BUCKET_MS) / 1000)).toFixed(recent > 0 && recent < 30 ? 2 : 1);
    const chart = svg(
      'svg',
      {
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        preserveAspectRatio: 'none',
        role: 'img',
        'aria-label': `throughput: ${totals.completed} completed, ${totals.failed} failed in the last 5 minutes`,
      },
      svg('line', { class: 'axis', x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5 }),
      svg('line', { class: 'grid', x1: 0, y1: y(top), x2: WIDTH, y2: y(top) }),
      ...bars,
      svg('polyline', { class: 'sent', points: sentLine.join(' '), fill: 'none' }),
    );
    const figure = h(
      'figure',
      { class: 'throughput', dataset: { completed: totals.completed, failed: totals.failed, sent: totals.sent } },
      h('div', { class: 'scale' }, `${top} per 5 s`),
      chart,
      h(
        'figcaption',
        {},
        h('span', { class: 'key completed' }, `${totals.completed} completed`),
        h('span', { class: 'key failed' }, `${totals.failed} failed`),
        h('span', { class: 'key sent' }, `${totals.sent} sent`),
        h('span', { class: 'muted' }, `≈ ${rate}/s completed over the last 30 s`),
      ),
    );
    fill(this.container, figure);
  }
}

function niceCeiling(n) {
  if (n <= 5) return 5;
  const magnitude = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= n) return step * magnitude;
  return 10 * magnitude;
}
