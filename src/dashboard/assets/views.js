// The overview (queues, chart, live events) and a queue's page (messages by state, paged, and its actions).
import { api, q } from './api.js';
import { brief, clock, fill, h, throttle, time } from './dom.js';

export const STATES = ['pending', 'waiting', 'delayed', 'active', 'completed', 'dead', 'cancelled'];

const queueLink = (name) => h('a', { href: `#/queues/${q(name)}` }, name);
export const messageLink = (id, short = false) =>
  h('a', { href: `#/messages/${q(id)}`, class: 'mono', title: id }, short && id.length > 16 ? `…${id.slice(-12)}` : id);
export const stateBadge = (state) => h('span', { class: `badge ${state}`, dataset: { state } }, state);

/** Shows a failed action's reason in the page's notice area. */
export function notify(ctx, error, ok) {
  ctx.notice(error ? error.message : ok, Boolean(error));
}

function queuesTable(queues) {
  const rows = queues.length
    ? queues.map((s) =>
        h(
          'tr',
          { dataset: { queue: s.name } },
          h(
            'th',
            { scope: 'row' },
            queueLink(s.name),
            s.paused ? h('span', { class: 'badge paused' }, 'paused') : null,
          ),
          ...STATES.map((c) => h('td', { class: 'num', dataset: { col: c } }, s[c])),
        ),
      )
    : [
        h(
          'tr',
          { class: 'empty' },
          h(
            'td',
            { colspan: STATES.length + 1 },
            'No queues yet. Send a message: ',
            h('code', {}, `npm run ferry -- send demo '{"hello":1}'`),
          ),
        ),
      ];
  return h(
    'table',
    { id: 'queues', class: 'queues' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', { scope: 'col' }, 'queue'), ...STATES.map((c) => h('th', { scope: 'col', class: 'num' }, c))),
    ),
    h('tbody', {}, rows),
  );
}

export function eventRow(e) {
  const extra = e.error
    ? e.error.message
    : e.result !== undefined
      ? brief(e.result, 60)
      : e.progress !== undefined
        ? `progress ${brief(e.progress, 30)}`
        : '';
  return h(
    'li',
    { class: `event ${e.type}`, dataset: { seq: e.seq } },
    h('time', { datetime: e.at }, clock(e.at)),
    h('span', { class: `badge ${e.type}` }, e.type),
    queueLink(e.queue),
    messageLink(e.id, true),
    e.attempt ? h('span', { class: 'muted' }, `#${e.attempt}`) : null,
    extra ? h('span', { class: 'detail' }, extra) : null,
  );
}

export function overview(root, ctx) {
  const tableBox = h('div', { class: 'scroll' });
  const list = h('ol', { id: 'events', class: 'events' }, ctx.recent.map(eventRow));
  root.append(
    h(
      'section',
      { id: 'overview' },
      h('div', { class: 'card' }, h('h2', {}, 'Throughput ', h('small', {}, 'last 5 minutes')), ctx.chart.container),
      h('div', { class: 'card' }, h('h2', {}, 'Queues'), tableBox),
      h('div', { class: 'card' }, h('h2', {}, 'Live events'), list),
    ),
  );
  ctx.chart.draw();
  const refresh = async () => {
    try {
      const { queues } = await api('GET', '/v1/queues');
      fill(tableBox, queuesTable(queues));
    } catch (error) {
      notify(ctx, error);
    }
  };
  const later = throttle(refresh, 500);
  void refresh();
  const timer = setInterval(refresh, 10_000);
  const off = ctx.subscribe((event) => {
    list.prepend(eventRow(event));
    while (list.childElementCount > 100) list.lastElementChild.remove();
    later();
  });
  return () => {
    off();
    clearInterval(timer);
  };
}

export function queueView(root, ctx, name, params) {
  const state = STATES.includes(params.get('state')) ? params.get('state') : null;
  const cursors = [null]; // the cursor of each page visited, to go back
  let page = 0;
  const title = h('h1', {}, 'Queue ', h('span', { class: 'name' }, name));
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'states' });
  const actions = h('div', { class: 'actions' });
  const confirmBox = h('div', { class: 'confirm', hidden: true });
  const tableBox = h('div', { class: 'scroll' });
  const pager = h('div', { class: 'pager' });
  root.append(
    h(
      'section',
      { id: 'queue', dataset: { queue: name } },
      h('p', {}, h('a', { href: '#/' }, '← all queues')),
      title,
      actions,
      confirmBox,
      tabs,
      tableBox,
      pager,
    ),
  );

  const act = async (fn) => {
    try {
      notify(ctx, null, await fn());
    } catch (error) {
      notify(ctx, error);
    }
    await Promise.all([loadStats(), loadPage()]);
  };

  const askPurge = (stats) => {
    const select = h(
      'select',
      { 'aria-label': 'states to delete' },
      h('option', { value: '' }, 'every state but active'),
      ...STATES.filter((s) => s !== 'active').map((s) => h('option', { value: s }, `${s} only (${stats[s]})`)),
    );
    fill(
      confirmBox,
      h('p', {}, 'Delete messages of ', h('strong', {}, name), '? This cannot be undone.'),
      select,
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          id: 'purge-confirm',
          onclick: () => {
            confirmBox.hidden = true;
            const chosen = select.value;
            void act(async () => {
              const r = await api('DELETE', `/v1/queues/${q(name)}/messages${chosen ? `?state=${chosen}` : ''}`);
              return `deleted ${r.purged} messages`;
            });
          },
        },
        'Delete',
      ),
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            confirmBox.hidden = true;
          },
        },
        'Keep them',
      ),
    );
    confirmBox.hidden = false;
  };

  const loadStats = async () => {
    try {
      const stats = await api('GET', `/v1/queues/${q(name)}`);
      fill(
        tabs,
        h('a', { href: `#/queues/${q(name)}`, class: state === null ? 'tab on' : 'tab' }, 'all'),
        ...STATES.map((s) =>
          h(
            'a',
            { href: `#/queues/${q(name)}?state=${s}`, class: s === state ? 'tab on' : 'tab', dataset: { state: s } },
            `${s} `,
            h('span', { class: 'count' }, stats[s]),
          ),
        ),
      );
      fill(
        actions,
        stats.paused ? h('span', { class: 'badge paused' }, 'paused') : null,
        stats.paused
          ? h(
              'button',
              {
                type: 'button',
                id: 'resume',
                onclick: () =>
                  act(async () => {
                    await api('PATCH', `/v1/queues/${q(name)}`, { paused: false });
                    return `${name} resumed`;
                  }),
              },
              'Resume',
            )
          : h(
              'button',
              {
                type: 'button',
                id: 'pause',
                onclick: () =>
                  act(async () => {
                    await api('PATCH', `/v1/queues/${q(name)}`, { paused: true });
                    return `${name} paused`;
                  }),
              },
              'Pause',
            ),
        h(
          'button',
          {
            type: 'button',
            id: 'redrive',
            disabled: stats.dead === 0,
            onclick: () =>
              act(
                'redrive',
                async () =>
                  `moved ${(await api('POST', `/v1/queues/${q(name)}/redrive`)).moved} dead messages back to waiting`,
              ),
          },
          `Redrive dead (${stats.dead})`,
        ),
        h('button', { type: 'button', id: 'purge', class: 'danger', onclick: () => askPurge(stats) }, 'Purge…'),
      );
    } catch (error) {
      notify(ctx, error);
    }
  };

  const rowActions = (m) => [
    ['dead', 'cancelled', 'delayed'].includes(m.state)
      ? h(
          'button',
          {
            type: 'button',
            class: 'small retry',
            onclick: () => act(async () => `${m.id} ${(await api('POST', `/v1/messages/${q(m.id)}/retry`)).state}`),
          },
          'Retry',
        )
      : null,
    ['waiting', 'delayed', 'active'].includes(m.state)
      ? h(
          'button',
          {
            type: 'button',
            class: 'small cancel',
            onclick: () => act(async () => `${m.id} ${(await api('DELETE', `/v1/messages/${q(m.id)}`)).state}`),
          },
          'Cancel',
        )
      : null,
  ];

  const loadPage = async () => {
    try {
      const params = new URLSearchParams({ limit: '25' });
      if (state) params.set('state', state);
      if (cursors[page]) params.set('cursor', cursors[page]);
      const { messages, cursor } = await api('GET', `/v1/queues/${q(name)}/messages?${params}`);
      cursors[page + 1] = cursor;
      const rows = messages.length
        ? messages.map((m) =>
            h(
              'tr',
              { dataset: { id: m.id, state: m.state } },
              h('td', {}, messageLink(m.id)),
              h('td', {}, stateBadge(m.state)),
              h('td', { class: 'num' }, `${m.attempts}/${m.maxAttempts}`),
              h('td', {}, time(m.sentAt)),
              h('td', { class: 'mono clip' }, brief(m.payload)),
              h('td', { class: 'clip error' }, m.error ? m.error.message : ''),
              h('td', { class: 'row-actions' }, rowActions(m)),
            ),
          )
        : [h('tr', { class: 'empty' }, h('td', { colspan: 7 }, state ? `No ${state} messages.` : 'No messages.'))];
      fill(
        tableBox,
        h(
          'table',
          { class: 'messages' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['id', 'state', 'attempts', 'sent', 'payload', 'error', ''].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h('tbody', {}, rows),
        ),
      );
      fill(
        pager,
        h(
          'button',
          {
            type: 'button',
            disabled: page === 0,
            onclick: () => {
              page--;
              void loadPage();
            },
          },
          '← Newer',
        ),
        h('span', { class: 'muted' }, `page ${page + 1}`),
        h(
          'button',
          {
            type: 'button',
            id: 'next-page',
            disabled: !cursor,
            onclick: () => {
              page++;
              void loadPage();
            },
          },
          'Older →',
        ),
      );
    } catch (error) {
      notify(ctx, error);
    }
  };

  void loadStats();
  void loadPage();
  const later = throttle(() => Promise.all([loadStats(), loadPage()]), 1000);
  const off = ctx.subscribe((event) => {
    if (event.queue === name) later();
  });
  return off;
}
