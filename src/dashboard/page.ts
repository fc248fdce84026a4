/**
 * The dashboard's HTML shell, rendered on the server. Every value from the store goes through {@link escapeHtml};
 * the page carries no inline script or style, so the Content-Security-Policy can forbid both.
 */
import type { QueueStats } from '../core/types.ts';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c] as string);
}

const COLUMNS = ['pending', 'waiting', 'delayed', 'active', 'completed', 'dead', 'cancelled'] as const;

/** The queues table as first painted; the ES module takes it over and keeps it live. */
function queuesRows(queues: QueueStats[]): string {
  if (queues.length === 0) {
    return `<tr class="empty"><td colspan="${COLUMNS.length + 1}">No queues yet. Send a message: <code>npm run ferry -- send demo '{"hello":1}'</code></td></tr>`;
  }
  return queues
    .map((q) => {
      const name = escapeHtml(q.name);
      const cells = COLUMNS.map((c) => `<td class="num" data-col="${c}">${escapeHtml(q[c])}</td>`).join('');
      const paused = q.paused ? ' <span class="badge paused">paused</span>' : '';
      return `<tr data-queue="${name}"><th scope="row"><a href="#/queues/${escapeHtml(encodeURIComponent(q.name))}">${name}</a>${paused}</th>${cells}</tr>`;
    })
    .join('');
}

/**
 * The page. `queues` is null when the API needs a token: then nothing from the store is rendered, and the
 * script asks for one.
 */
export function renderPage(queues: QueueStats[] | null, assetBase: string): string {
  const head = COLUMNS.map((c) => `<th scope="col" class="num">${c}</th>`).join('');
  const body = queues === null ? '' : queuesRows(queues);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Ferry</title>
<link rel="icon" href="${assetBase}/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${assetBase}/style.css">
<script type="module" src="${assetBase}/app.js"></script>
</head>
<body data-auth="${queues === null ? 'required' : 'open'}">
<header class="top">
  <a class="brand" href="#/">Ferry</a>
  <form id="lookup" class="lookup" role="search">
    <input id="lookup-id" name="id" placeholder="message id" aria-label="message id" autocomplete="off" spellcheck="false">
    <button type="submit">Find</button>
  </form>
  <span id="live" class="live" title="events stream">connecting…</span>
  <button id="sign-out" class="link" type="button" hidden>Sign out</button>
</header>
<main id="view">
  <section id="overview">
    <div class="card">
      <h2>Throughput <small>last 5 minutes</small></h2>
      <div id="chart" class="chart"></div>
    </div>
    <div class="card">
      <h2>Queues</h2>
      <div class="scroll"><table id="queues" class="queues"><thead><tr><th scope="col">queue</th>${head}</tr></thead><tbody>${body}</tbody></table></div>
    </div>
  </section>
</main>
<noscript><p class="notice">The dashboard needs JavaScript for live data; the API is at /v1.</p></noscript>
</body>
</html>
`;
}
