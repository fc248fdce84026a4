// The page's script: sends each form submission to Ferry's HTTP API with the browser client, follows the
// queue's events for progress, and shows the worker's result (or why it failed) when it is ready.
import { connect, MessageFailedError } from '/ferry/client/index.js';

const QUEUE = 'text-stats';
const form = document.querySelector('#submit');
const button = form.querySelector('button');
const connection = document.querySelector('#connection');
const jobs = document.querySelector('#jobs');

/** An element with text children only: nothing from a payload or a result is ever parsed as HTML. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const { ferryUrl } = await (await fetch('/config.json')).json();
const ferry = await connect(ferryUrl);

/** The list item of each job sent from this page, by message id. */
const items = new Map();
/**
 * The latest state and progress of recent messages, from events. An event may arrive before the send's own
 * answer (the worker can be that quick), so it is kept here until the job's list item exists.
 */
const latest = new Map();

const finished = (item) => item.dataset.state === 'completed' || item.dataset.state === 'dead';

function render(id) {
  const item = items.get(id);
  const known = latest.get(id);
  if (!item || !known || finished(item)) return;
  if (known.state) {
    item.dataset.state = known.state;
    item.querySelector('.state').textContent = known.text;
  }
  if (typeof known.progress === 'number') item.querySelector('progress').value = known.progress;
}

function remember(event) {
  const known = latest.get(event.id) ?? {};
  if (event.type === 'active') Object.assign(known, { state: 'active', text: `working (attempt ${event.attempt})` });
  if (event.type === 'retrying') Object.assign(known, { state: 'retrying', text: 'failed, will retry' });
  if (event.type === 'progress') known.progress = event.progress;
  latest.delete(event.id);
  latest.set(event.id, known);
  if (latest.size > 500) latest.delete(latest.keys().next().value);
  render(event.id);
}

function finish(id, state, text) {
  const item = items.get(id);
  item.dataset.state = state;
  item.querySelector('.state').textContent = text;
  latest.delete(id);
}

// Progress comes from the events stream (server-sent events); the result from sent.result(). The stream is
// opened before the form is enabled, so that it sees the first jobs' events too.
void (async () => {
  for await (const event of ferry.events({ queue: QUEUE, types: ['active', 'progress', 'retrying'] })) {
    remember(event);
  }
})();

try {
  await ferry.stats(QUEUE);
  connection.textContent = `connected to ${ferryUrl}`;
  button.disabled = false;
} catch (error) {
  connection.textContent = `cannot reach Ferry at ${ferryUrl}: ${error.message}`;
}

function showResult(item, stats) {
  const top = stats.topWords.map((w) => `${w.word} (${w.count})`).join(', ') || 'none';
  item.querySelector('progress').value = 100;
  item.append(
    el(
      'p',
      { class: 'result' },
      `${stats.words} words, ${stats.sentences} sentences, about ${stats.readingSeconds} s to read. `,
      `Most used: ${top}.`,
    ),
  );
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = form.elements.text.value;
  button.disabled = true;
  let sent;
  try {
    sent = await ferry.send(QUEUE, { text }, { maxAttempts: 3 });
  } catch (error) {
    connection.textContent = `could not send: ${error.message}`;
    return;
  } finally {
    button.disabled = false;
  }
  const trimmed = text.trim();
  const preview = trimmed.length > 40 ? `${trimmed.slice(0, 40)}…` : trimmed;
  const item = el(
    'li',
    { 'data-id': sent.id, 'data-state': 'waiting' },
    el('strong', {}, preview || '(empty)'),
    ' ',
    el('span', { class: 'state' }, 'waiting'),
    ' ',
    el('progress', { max: '100', value: '0' }),
    el('br'),
    el('code', {}, sent.id),
  );
  items.set(sent.id, item);
  jobs.prepend(item);
  render(sent.id);
  form.reset();

  try {
    const stats = await sent.result({ timeout: '2m' });
    finish(sent.id, 'completed', 'done');
    showResult(item, stats);
  } catch (error) {
    const why = error instanceof MessageFailedError ? (error.info.error?.message ?? error.info.state) : error.message;
    finish(sent.id, 'dead', 'failed');
    item.append(el('p', { class: 'result error' }, why));
  }
});
