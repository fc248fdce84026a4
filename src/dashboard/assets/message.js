// One message: its fields, payload, result or error, progress, the timeline of its attempts, and actions.
import { api, follow, q } from './api.js';
import { brief, clear, clock, fill, h, pretty, throttle, time } from './dom.js';
import { messageLink, notify, stateBadge } from './views.js';

function progressView(progress) {
  if (progress === null || progress === undefined) return null;
  if (typeof progress === 'number' && progress >= 0 && progress <= 100) {
    return h('div', { class: 'progress' }, h('progress', { max: 100, value: progress }), ` ${progress}%`);
  }
  return h('pre', {}, pretty(progress));
}

function field(label, value) {
  return value === null || value === undefined || value === '' ? null : [h('dt', {}, label), h('dd', {}, value)];
}

function timelineItem(e) {
  const detail = e.error
    ? e.error.message
    : e.result !== undefined
      ? JSON.stringify(e.result)
      : e.progress !== undefined
        ? `progress ${JSON.stringify(e.progress)}`
        : '';
  return h(
    'li',
    { class: `event ${e.type}`, dataset: { seq: e.seq } },
    h('time', { datetime: e.at, title: time(e.at) }, clock(e.at)),
    h('span', { class: `badge ${e.type}` }, e.type),
    e.attempt ? h('span', { class: 'muted' }, `attempt ${e.attempt}`) : null,
    detail ? h('span', { class: 'detail' }, detail) : null,
  );
}

/** A flow's children: each with its queue, state, and result or error. */
function childrenCard(children) {
  if (children.length === 0) return null;
  return h(
    'div',
    { class: 'card', id: 'children' },
    h('h2', {}, `Children (${children.length})`),
    h(
      'table',
      { class: 'children' },
      h(
        'thead',
        {},
        h('tr', {}, ...['id', 'queue', 'state', 'result or error'].map((c) => h('th', { scope: 'col' }, c))),
      ),
      h(
        'tbody',
        {},
        ...children.map((c) =>
          h(
            'tr',
            { dataset: { id: c.id } },
            h('td', {}, messageLink(c.id, true)),
            h('td', {}, h('a', { href: `#/queues/${q(c.queue)}` }, c.queue)),
            h('td', {}, stateBadge(c.state)),
            h('td', { class: 'detail' }, c.error ? c.error.message : c.state === 'completed' ? brief(c.result) : ''),
          ),
        ),
      ),
    ),
  );
}

export function messageView(root, ctx, id) {
  const body = h('div', { class: 'message-body' });
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  root.append(
    h(
      'section',
      { id: 'message', dataset: { id } },
      h('h1', {}, 'Message ', h('span', { class: 'mono' }, id)),
      body,
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Timeline'),
        timeline,
        h('p', { class: 'muted small' }, 'From the events the store still keeps, live.'),
      ),
    ),
  );
  let stopTimeline = () => {};
  let following = null;

  const load = async () => {
    let m;
    let children = [];
    try {
      m = await api('GET', `/v1/messages/${q(id)}`);
      children = (await api('GET', `/v1/messages/${q(id)}/children`)).messages;
    } catch (error) {
      if (error.status === 404) fill(body, h('p', { class: 'notice' }, `No message ${id}.`));
      else notify(ctx, error);
      return;
    }
    const act = (fn) => async () => {
      try {
        notify(ctx, null, await fn());
      } catch (error) {
        notify(ctx, error);
      }
      void load();
    };
    fill(
      body,
      h('p', {}, h('a', { href: `#/queues/${q(m.queue)}` }, `← ${m.queue}`), ' ', stateBadge(m.state)),
      h(
        'div',
        { class: 'actions' },
        ['dead', 'cancelled', 'delayed'].includes(m.state)
          ? h(
              'button',
              {
                type: 'button',
                id: 'retry',
                onclick: act(async () => `${id} ${(await api('POST', `/v1/messages/${q(id)}/retry`)).state}`),
              },
              'Retry',
            )
          : null,
        ['pending', 'waiting', 'delayed', 'active'].includes(m.state)
          ? h(
              'button',
              {
                type: 'button',
                id: 'cancel',
                class: 'danger',
                onclick: act(async () => `${id} ${(await api('DELETE', `/v1/messages/${q(id)}`)).state}`),
              },
              'Cancel',
            )
          : null,
      ),
      h(
        'dl',
        { class: 'fields' },
        field('state', m.state),
        field('parent', m.parentId ? messageLink(m.parentId) : null),
        field('attempts', `${m.attempts} of ${m.maxAttempts}`),
        field('priority', String(m.priority)),
        field('key', m.key),
        field('dedupe id', m.dedupeId),
        field('sent', time(m.sentAt)),
        field('run at', time(m.runAt)),
        field('started', time(m.startedAt)),
        field('finished', time(m.finishedAt)),
        field('lease until', time(m.leaseUntil)),
        field('progress', progressView(m.progress)),
        Object.keys(m.headers ?? {}).length ? field('headers', h('pre', {}, pretty(m.headers))) : null,
      ),
      h('div', { class: 'card' }, h('h2', {}, 'Payload'), h('pre', { class: 'payload' }, pretty(m.payload))),
      m.error
        ? h(
            'div',
            { class: 'card error' },
            h('h2', {}, 'Error'),
            h('pre', { class: 'error-text' }, m.error.name ? `${m.error.name}: ${m.error.message}` : m.error.message),
            m.error.data !== undefined ? h('pre', {}, pretty(m.error.data)) : null,
          )
        : null,
      m.state === 'completed'
        ? h('div', { class: 'card' }, h('h2', {}, 'Result'), h('pre', { class: 'result' }, pretty(m.result)))
        : null,
      childrenCard(children),
    );
    if (following !== m.queue) {
      // The events API filters by queue, not by message: replay the queue's kept events and keep this one's.
      stopTimeline();
      following = m.queue;
      clear(timeline);
      stopTimeline = follow({
        queue: m.queue,
        after: 0,
        onEvent: (e) => {
          if (e.id !== id) return;
          timeline.append(timelineItem(e));
          later();
        },
      });
    }
  };
  const later = throttle(load, 300);
  void load();
  return () => stopTimeline();
}
