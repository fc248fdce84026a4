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

try {
  await ferry.stats(QUEUE);
  connection.textContent = `connected to ${ferryUrl}`;
  button.disabled = false;
} catch (error) {
  connection.textContent = `cannot reach Ferry at ${ferryUrl}: ${error.message}`;
}

/** The list item of each job sent from this page, by message id. */
const items = new Map();

function setState(id, state, text) {
  const item = items.get(id);
  if (!item) return;
  item.dataset.state = state;
  item.querySelector('.state').textContent = text ?? state;
}

// Progress comes from the events stream (server-sent events); the result from sent.result().
void (async () => {
  for await (const event of ferry.events({ queue: QUEUE, types: ['active', 'progress', 'retrying'] })) {
    const item = items.get(event.id);
    if (!item || item.dataset.state === 'completed' || item.dataset.state === 'dead') continue;
    if (event.type === 'active') setState(event.id, 'active', `working (attempt ${event.attempt})`);
    if (event.type === 'retrying') setState(event.id, 'retrying', 'failed, will retry');
    if (event.type === 'progress' && typeof event.progress === 'number') {
      item.querySelector('progress').value = event.progress;
    }
  }
})();

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
  form.reset();

  try {
    const stats = await sent.result({ timeout: '2m' });
    setState(sent.id, 'completed', 'done');
    showResult(item, stats);
  } catch (error) {
    const why = error instanceof MessageFailedError ? (error.info.error?.message ?? error.info.state) : error.message;
    setState(sent.id, 'dead', 'failed');
    item.append(el('p', { class: 'result error' }, why));
  }
});
