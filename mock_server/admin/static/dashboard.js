// The dashboard's behaviour: the admin token, the live journal (Server-Sent Events read with
// fetch, so that the token can go in a header), the clock, scenarios and reset. Plain JS, no
// build step; every page is rendered by the server and works for reading without this file.
(() => {
  'use strict';

  const TOKEN_KEY = 'refund-mock-server.admin-token';
  const $ = (id) => document.getElementById(id);
  let stream = null;        // the AbortController of the open stream
  let refreshTimer = null;
  let streamAfter = 0;      // the newest entry id shown

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lasts as long as the page */ }
  }
  function withToken(extra) {
    const headers = Object.assign({}, extra || {});
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    return headers;
  }
  function uiRoot() { return document.body.dataset.uiRoot || './'; }
  function adminUrl(path) { return new URL(uiRoot() + '../' + path, document.baseURI).href; }

  async function api(method, path, body, contentType) {
    const init = { method, cache: 'no-store', headers: withToken(contentType ? { 'Content-Type': contentType } : {}) };
    if (body !== undefined) init.body = body;
    const answer = await fetch(adminUrl(path), init);
    let data = null;
    try { data = await answer.json(); } catch (e) { data = null; }
    if (answer.status === 401) lockOut('The admin token was refused.');
    return { ok: answer.ok, status: answer.status, data };
  }

  async function fetchPage(url) {
    const answer = await fetch(url, { cache: 'no-store', headers: withToken({ Accept: 'text/html' }) });
    if (answer.status === 401) return null;
    const html = await answer.text();
    return new DOMParser().parseFromString(html, 'text/html');
  }

  // -- the token -------------------------------------------------------------------------------

  function lockOut(message) {
    setToken(null);
    if (document.body.hasAttribute('data-locked')) {
      const error = $('token-error');
      if (error) error.textContent = message;
    } else {
      window.location.reload();
    }
  }

  async function unlock() {
    const doc = await fetchPage(window.location.href);
    if (doc === null) { lockOut('That token was refused. Try again.'); return; }
    stopStream();
    document.title = doc.title;
    for (const key of ['view', 'session', 'uiRoot']) document.body.dataset[key] = doc.body.dataset[key];
    document.body.toggleAttribute('data-locked', doc.body.hasAttribute('data-locked'));
    document.querySelector('header.top').replaceWith(document.adoptNode(doc.querySelector('header.top')));
    document.getElementById('main').replaceWith(document.adoptNode(doc.getElementById('main')));
    init();
  }

  function initLocked() {
    const form = $('token-form');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = $('admin-token').value.trim();
      if (!value) return;
      setToken(value);
      unlock();
    });
    if (token()) unlock(); else $('admin-token').focus();
  }

  // -- the live journal ------------------------------------------------------------------------

  function setLive(text, problem) {
    const live = $('live-status');
    if (!live) return;
    live.textContent = 'Live updates: ' + text;
    live.classList.toggle('off', Boolean(problem));
  }

  function stopStream() {
    if (stream) stream.abort();
    stream = null;
  }

  function parseEvent(block) {
    const event = { event: 'message', data: '', id: null };
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event.event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') event.id = value;
    }
    event.data = data.join('\n');
    return event;
  }

  async function startStream() {
    const control = new AbortController();
    stream = control;
    const wait = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
    while (!control.signal.aborted) {
      setLive('connecting…');
      try {
        const answer = await fetch(adminUrl('requests/stream?after=' + streamAfter), {
          cache: 'no-store', signal: control.signal,
          headers: withToken({ Accept: 'text/event-stream' }),
        });
        if (answer.status === 401) { lockOut('The admin token was refused.'); return; }
        if (!answer.ok || !answer.body) { setLive('unavailable (HTTP ' + answer.status + ')', true); return; }
        setLive('on');
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            handleEvent(parseEvent(block));
          }
        }
      } catch (error) {
        if (control.signal.aborted) return;
      }
      setLive('reconnecting…', true);
      await wait(2000);
    }
  }

  function handleEvent(event) {
    if (event.event === 'request') {
      const entry = JSON.parse(event.data);
      streamAfter = Math.max(streamAfter, entry.id);
      addRow(entry);
      scheduleRefresh(false);
    } else if (event.event === 'reset') {
      streamAfter = 0;
      scheduleRefresh(true);
    } else if (event.event === 'dropped') {
      setLive('on (' + JSON.parse(event.data).dropped + ' entries skipped: reload to see all)', true);
    }
  }

  function cell(row, text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function addRow(entry) {
    const rows = $('journal-rows');
    if (!rows) return;
    const row = document.createElement('tr');
    row.dataset.entry = String(entry.id);
    row.classList.add('new');
    const first = cell(row, '', 'num');
    const link = document.createElement('a');
    link.href = new URL(uiRoot() + 'requests/' + entry.id, document.baseURI).href;
    link.className = 'entry-link';
    link.textContent = String(entry.id);
    link.setAttribute('aria-label', 'Open entry ' + entry.id);
    first.appendChild(link);
    const at = document.createElement('time');
    at.dateTime = entry.at;
    at.textContent = entry.at;
    cell(row, '').appendChild(at);
    cell(row, entry.method);
    cell(row, entry.path + (entry.query ? '?' + entry.query : ''), 'path');
    cell(row, entry.operation || '-');
    cell(row, String(entry.status), 'num status s' + (entry.status ? Math.floor(entry.status / 100) : 0));
    cell(row, String(entry.durationMs), 'num');
    cell(row, entry.fault ? entry.fault.rule : '');
    const existing = rows.querySelector('tr[data-entry="' + entry.id + '"]');
    if (existing) {
      existing.replaceWith(row);
    } else {
      let before = null;
      for (const other of rows.children) {
        if (Number(other.dataset.entry) < entry.id) { before = other; break; }
      }
      rows.insertBefore(row, before);
      const total = $('journal-total');
      if (total) total.textContent = String(Number(total.textContent) + 1);
    }
    while (rows.children.length > 200) rows.lastElementChild.remove();
    const empty = $('journal-empty');
    if (empty) empty.hidden = true;
  }

  // -- refreshing what the server renders ------------------------------------------------------

  function scheduleRefresh(full) {
    if (refreshTimer !== null && !full) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { refreshTimer = null; refresh(full); }, full ? 0 : 150);
  }

  async function refresh(full) {
    const doc = await fetchPage(window.location.href);
    if (doc === null) { lockOut('The admin token was refused.'); return; }
    const parts = full ? ['accounts', 'faults', 'journal'] : ['accounts', 'faults'];
    for (const id of parts) {
      const fresh = doc.getElementById(id);
      const current = $(id);
      if (fresh && current) current.replaceWith(document.adoptNode(fresh));
    }
    for (const id of ['clock-now', 'clock-mode', 'clock-offset']) {
      const fresh = doc.getElementById(id);
      if (fresh && $(id)) $(id).textContent = fresh.textContent;
    }
    if (full) {
      streamAfter = Math.max(streamAfter, Number($('journal').dataset.newest || 0));
      wireJournal();
    }
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }

  // -- one entry -------------------------------------------------------------------------------

  async function openEntry(link) {
    const panel = $('entry-panel');
    const doc = await fetchPage(link.href);
    if (doc === null) { lockOut('The admin token was refused.'); return; }
    const detail = doc.getElementById('entry-detail');
    if (!detail) return;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'close';
    close.textContent = 'Close';
    close.addEventListener('click', () => closeEntry(link.closest('tr')));
    panel.replaceChildren(document.adoptNode(detail));
    panel.firstElementChild.prepend(close);
    for (const row of document.querySelectorAll('#journal-rows tr[aria-current]')) row.removeAttribute('aria-current');
    const row = link.closest('tr');
    if (row) row.setAttribute('aria-current', 'true');
    panel.firstElementChild.focus();
  }

  function closeEntry(row) {
    $('entry-panel').replaceChildren();
    if (row) {
      row.removeAttribute('aria-current');
      const link = row.querySelector('a.entry-link');
      if (link) link.focus();
    }
  }

  function wireJournal() {
    const rows = $('journal-rows');
    if (!rows || rows.dataset.wired) return;
    rows.dataset.wired = '1';
    rows.addEventListener('click', (event) => {
      const link = event.target.closest('a.entry-link');
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      openEntry(link);
    });
  }

  // -- the clock, scenarios, reset -------------------------------------------------------------

  function showClock(data) {
    $('clock-now').textContent = data.now;
    $('clock-mode').textContent = data.frozen ? 'frozen' : 'running';
    $('clock-offset').textContent = String(data.offsetSeconds);
    $('freeze-at').value = data.now;
  }

  async function clockCall(method, path, body) {
    const error = $('clock-error');
    error.textContent = '';
    const answer = await api(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
    if (answer.ok) {
      showClock(answer.data);
      scheduleRefresh(false);
    } else if (answer.status !== 401) {
      error.textContent = answer.data ? answer.data.message : 'HTTP ' + answer.status;
    }
  }

  function initClock() {
    $('freeze-form').addEventListener('submit', (event) => {
      event.preventDefault();
      clockCall('PUT', 'clock', { now: $('freeze-at').value.trim() });
    });
    $('advance-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const amount = Number($('advance-by').value);
      clockCall('POST', 'clock/advance', { [$('advance-unit').value]: amount });
    });
    $('real-time').addEventListener('click', () => clockCall('DELETE', 'clock'));
  }

  function initScenario() {
    $('scenario-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const text = $('scenario-text').value;
      const result = $('scenario-result');
      const problems = $('scenario-problems');
      const list = $('scenario-problem-list');
      result.textContent = '';
      problems.hidden = true;
      list.replaceChildren();
      const json = /^\s*[{[]/.test(text);
      const answer = await api('POST', 'scenarios', text, json ? 'application/json' : 'application/yaml');
      if (answer.ok) {
        const seeded = Object.entries(answer.data.seeded || {}).filter(([, v]) => v).map(([k, v]) => k + ' ' + v).join(', ');
        result.textContent = 'Loaded scenario ' + answer.data.name + (seeded ? ': ' + seeded : '') +
          '; ' + answer.data.faults + ' fault rule' + (answer.data.faults === 1 ? '' : 's') + '.';
        scheduleRefresh(false);
      } else if (answer.status !== 401) {
        const found = (answer.data && answer.data.problems) || [answer.data ? answer.data.message : 'HTTP ' + answer.status];
        for (const problem of found) {
          const item = document.createElement('li');
          item.textContent = problem;
          list.appendChild(item);
        }
        problems.hidden = false;
      }
    });
  }

  function initReset() {
    $('reset-session').addEventListener('click', async () => {
      const answer = await api('POST', 'reset');
      if (answer.ok) {
        $('reset-result').textContent = 'Session ' + answer.data.session + ' was reset.';
        scheduleRefresh(true);
      }
    });
  }

  // -- start -----------------------------------------------------------------------------------

  function init() {
    const forget = $('forget-token');
    if (forget) {
      forget.hidden = !token();
      forget.addEventListener('click', () => { setToken(null); window.location.reload(); });
    }
    if (document.body.hasAttribute('data-locked')) { initLocked(); return; }
    if (document.body.dataset.view !== 'session') return;
    streamAfter = Number($('journal').dataset.newest || 0);
    wireJournal();
    initClock();
    initScenario();
    initReset();
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && $('entry-panel') && $('entry-panel').firstElementChild) {
        closeEntry(document.querySelector('#journal-rows tr[aria-current]'));
      }
    });
    startStream();
  }

  init();
})();
