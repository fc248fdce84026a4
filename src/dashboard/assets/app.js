// The dashboard's entry: a hash router over three views, one events stream feeding them all, and sign-in.
import { api, auth, follow } from './api.js';
import { ThroughputChart } from './chart.js';
import { clear, fill, h } from './dom.js';
import { messageView } from './message.js';
import { overview, queueView } from './views.js';

const view = document.getElementById('view');
const live = document.getElementById('live');
const signOut = document.getElementById('sign-out');
const listeners = new Set();
const notice = h('p', { id: 'notice', class: 'notice', role: 'status', hidden: true });
document.querySelector('header.top').after(notice);

const ctx = {
  chart: new ThroughputChart(h('div', { id: 'chart', class: 'chart' })),
  /** The latest events, newest first, for the overview's list. */
  recent: [],
  subscribe(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  notice(text, isError) {
    notice.textContent = text ?? '';
    notice.className = isError ? 'notice bad' : 'notice';
    notice.hidden = !text;
    clearTimeout(ctx.noticeTimer);
    if (text && !isError)
      ctx.noticeTimer = setTimeout(() => {
        notice.hidden = true;
      }, 4000);
  },
};

/**
 * Fills the chart with the minutes before the page opened, at load: the live stream opens with its position
 * (the last seq before it), and the at most SEED_EVENTS events up to that position are replayed, those inside
 * the chart's window kept. The live stream brings everything after it, so nothing counts twice.
 */
const SEED_EVENTS = 5000;
let seeded = false;
function seedChart(position) {
  seeded = true;
  if (position < 1) return;
  const stop = follow({
    after: Math.max(0, position - SEED_EVENTS),
    onEvent: (event) => {
      if (event.seq > position) return stop();
      ctx.chart.record(event, true);
      if (event.seq === position) stop();
    },
  });
}

let stopStream = null;
function startStream() {
  stopStream?.();
  stopStream = follow({
    onState: (state) => {
      live.textContent = state;
      live.className = state === 'live' ? 'live on' : 'live';
    },
    onPosition: (seq) => {
      if (!seeded) seedChart(seq);
    },
    onEvent: (event) => {
      // A stream that showed no position first (an older server): the events before this one are history.
      if (!seeded) seedChart(event.seq - 1);
      ctx.chart.record(event);
      ctx.recent.unshift(event);
      if (ctx.recent.length > 100) ctx.recent.length = 100;
      for (const fn of listeners) fn(event);
    },
  });
}

let cleanup = () => {};
function route() {
  cleanup();
  cleanup = () => {};
  clear(view);
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'queues' && parts[1]) cleanup = queueView(view, ctx, parts[1], params);
  else if (parts[0] === 'messages' && parts[1]) cleanup = messageView(view, ctx, parts[1]);
  else cleanup = overview(view, ctx);
}

function signIn(message) {
  stopStream?.();
  stopStream = null;
  cleanup();
  cleanup = () => {};
  live.textContent = 'signed out';
  live.className = 'live';
  signOut.hidden = true;
  const input = h('input', {
    type: 'password',
    id: 'token',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
    'aria-label': 'token',
  });
  const form = h(
    'form',
    { id: 'sign-in', class: 'card sign-in' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'This server requires a token. It stays in this tab only (sessionStorage).'),
    message ? h('p', { class: 'notice bad' }, message) : null,
    input,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    auth.token = input.value.trim();
    try {
      await api('GET', '/v1/queues');
      start();
    } catch (error) {
      auth.token = null;
      signIn(error.status === 401 ? 'That token was refused.' : error.message);
    }
  });
  fill(view, form);
  input.focus();
}

let signedIn = false;
auth.onUnauthorized = () => {
  if (!signedIn) return;
  signedIn = false;
  auth.token = null;
  signIn('Your token was refused; sign in again.');
};

function start() {
  signedIn = true;
  signOut.hidden = !auth.token;
  startStream();
  route();
}

signOut.addEventListener('click', () => {
  auth.token = null;
  signedIn = false;
  signIn();
});

document.getElementById('lookup').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('lookup-id');
  const id = input.value.trim();
  if (id) location.hash = `#/messages/${encodeURIComponent(id)}`;
});

window.addEventListener('hashchange', () => {
  if (signedIn) route();
});

// Probe once: an open server answers; one with tokens answers 401 unless this tab already holds a token.
api('GET', '/v1/queues').then(
  () => start(),
  (error) => {
    if (error.status === 401) return signIn();
    start();
    ctx.notice(error.message, true);
  },
);
