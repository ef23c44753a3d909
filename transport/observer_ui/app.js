/*
 * troupe observer: the single page (docs/observer.md, "The web page").
 * Plain JavaScript, no framework and nothing loaded from elsewhere. It
 * asks the node's observer for JSON every REFRESH_MS and draws it; every
 * request carries the token of the page's own URL (?token=) as a bearer
 * header, and ?node=NAME when another node of the cluster is shown. The
 * token lives in this script's memory only. The pane and the node shown
 * are kept in the URL's fragment (#supervision&node=beta), which never
 * reaches the server: the page itself is always this node's.
 */
'use strict';

(function () {
  const REFRESH_MS = 1500;
  const HISTORY_MS = 5 * 60 * 1000; /* what the plots show */
  const RECENT_MS = 10 * 1000;      /* a restart this recent is marked */
  const COLOURS = ['#2060a0', '#c0392b', '#27ae60', '#8e44ad', '#d35400',
    '#16a085', '#7f8c8d', '#b7950b'];

  const query = new URLSearchParams(location.search);
  const token = query.get('token');
  const fragment = new URLSearchParams(location.hash.slice(1));
  const TABS = ['overview', 'supervision', 'actors'];

  const state = {
    local: null,          /* this observer's node name */
    node: fragment.get('node') || null, /* the node shown; null: local */
    tab: 'overview',
    history: new Map(),   /* node name -> [{t, node json}] */
    actors: {sort: 'mailbox', limit: 50, after: null, back: [], next: null},
    actor: null,          /* the pid whose page is open */
    seen: new Map(),      /* "sup|id" -> {pid, restarts} last drawn */
    marked: new Map(),    /* "sup|id" -> time until which it is marked */
    busy: false,
  };

  /* ---- small helpers ---- */

  function $(sel) { return document.querySelector(sel); }

  /* An element: h('td', {class: 'num'}, 'text', child, ...). Text is set
   * as text, never parsed as HTML. */
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function setStatus(text, ok) {
    const s = $('#status');
    s.textContent = text;
    s.dataset.state = ok ? 'ok' : 'error';
  }

  /* path with ?node= for the node shown (or `node` if given). */
  function apiPath(path, node) {
    const n = node === undefined ? state.node : node;
    if (!n || n === state.local) return path;
    return path + (path.includes('?') ? '&' : '?') + 'node=' +
      encodeURIComponent(n);
  }

  async function api(path, opts) {
    const o = opts || {};
    const r = await fetch(apiPath(path, o.node), {
      method: o.method || 'GET',
      headers: {'Authorization': 'Bearer ' + token},
      cache: 'no-store',
    });
    let body = null;
    const text = await r.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!r.ok && !(o.allow || []).includes(r.status)) {
      const why = body && body.error ? body.error
        : text.trim().startsWith('<') ? r.statusText : text.trim();
      const err = new Error(r.status + ' ' + (why || r.statusText));
      err.status = r.status;
      throw err;
    }
    return {status: r.status, body: body};
  }

  function fmtNum(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v !== 'number') return String(v);
    if (Math.abs(v) >= 1e9) return (v / 1e9).toFixed(2) + ' G';
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + ' M';
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + ' k';
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  function fmtDuration(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.floor(s / 60) + ' min';
    return Math.floor(s / 3600) + ' h';
  }

  function pidLink(pid) {
    return h('a', {class: 'pid', 'data-pid': pid,
      onclick: () => { showTab('actors'); openActor(pid); }}, pid);
  }

  /* ---- tabs and the node switcher ---- */

  function showTab(name) {
    state.tab = name;
    for (const b of document.querySelectorAll('[data-tab]'))
      b.classList.toggle('active', b.dataset.tab === name);
    for (const p of document.querySelectorAll('[data-pane]'))
      p.hidden = p.dataset.pane !== name;
    writeFragment();
    refresh();
  }

  function writeFragment() {
    const f = state.tab + (state.node ? '&node=' +
      encodeURIComponent(state.node) : '');
    if (location.hash !== '#' + f)
      history.replaceState(null, '', location.pathname + location.search +
        '#' + f);
  }

  function switchNode(name) {
    state.node = name === state.local ? null : name;
    state.actor = null;
    state.actors.after = null;
    state.actors.back = [];
    state.seen.clear();
    state.marked.clear();
    $('#actor-page').hidden = true;
    writeFragment();
    refresh();
  }

  function drawSwitcher(local) {
    const sel = $('#node-switch');
    const names = [local.node.name].concat(
      ((local.dist && local.dist.peers) || []).map(p => p.name));
    const shown = state.node || local.node.name;
    if (!names.includes(shown)) names.push(shown); /* gone: keep it */
    const now = Array.from(sel.options).map(o => o.value);
    if (now.join('\n') !== names.join('\n')) {
      sel.replaceChildren(...names.map(n => h('option', {value: n},
        n === local.node.name ? n + ' (this node)' : n)));
    }
    sel.value = shown;
    $('#node-name').textContent = shown;
    document.title = 'troupe ' + shown;
  }

  /* ---- Overview: counters, plots, peers ---- */

  function remember(name, j) {
    let hs = state.history.get(name);
    if (!hs) { hs = []; state.history.set(name, hs); }
    const t = performance.now();
    hs.push({t: t, j: j});
    while (hs.length > 2 && t - hs[0].t > HISTORY_MS + REFRESH_MS) hs.shift();
  }

  /* Per-second rates between successive samples: [{t, values[]}]. */
  function rates(hs, pick) {
    const out = [];
    for (let i = 1; i < hs.length; i++) {
      const dt = (hs[i].t - hs[i - 1].t) / 1000;
      if (dt <= 0) continue;
      const a = pick(hs[i - 1].j), b = pick(hs[i].j);
      if (a.length !== b.length) continue; /* a restarted node */
      out.push({t: hs[i].t,
        v: b.map((x, k) => Math.max(0, (x - a[k]) / dt))});
    }
    return out;
  }

  /* `unit` follows each value in the legend; `fixed` fixes the scale's
   * top (a percentage's 100), else it follows the values. */
  function plot(canvas, series, names, legend, unit, fixed) {
    unit = unit || '/s';
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 900, hgt = canvas.clientHeight || 200;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(hgt * dpr)) canvas.height = Math.round(hgt * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const left = 56, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = hgt - top - bottom;
    const now = performance.now();
    let max = 1;
    for (const s of series) for (const v of s.v) max = Math.max(max, v);
    max = fixed || max * 1.1;
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#6b6f73';
    g.strokeStyle = '#e3e5e7';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
      g.textAlign = 'right';
      g.fillText(fmtNum((max * i) / 4), left - 4, y + 4);
    }
    g.textAlign = 'center';
    for (let m = 0; m <= HISTORY_MS / 60000; m++) {
      const x = left + pw - (pw * m * 60000) / HISTORY_MS;
      g.fillText(m === 0 ? 'now' : '-' + m + ' min', x, hgt - 5);
    }
    for (let k = 0; k < names.length; k++) {
      g.strokeStyle = COLOURS[k % COLOURS.length];
      g.lineWidth = 1.5;
      g.beginPath();
      let first = true;
      for (const s of series) {
        const x = left + pw - (pw * (now - s.t)) / HISTORY_MS;
        if (x < left) continue;
        const y = top + ph - (ph * s.v[k]) / max;
        if (first) { g.moveTo(x, y); first = false; } else g.lineTo(x, y);
      }
      g.stroke();
    }
    const last = series.length ? series[series.length - 1].v : [];
    legend.replaceChildren(...names.map((n, k) => {
      const i = h('i');
      i.style.background = COLOURS[k % COLOURS.length];
      return h('span', {}, i, n + ': ' + fmtNum(last[k] || 0) + unit);
    }));
  }

  function drawOverview(j) {
    const rt = j.runtime || {}, d = j.dist || {};
    const cards = [
      ['uptime', fmtDuration((j.node.uptime_s || 0) * 1000)],
      ['actors', fmtNum(rt.actors_alive)],
      ['spawned', fmtNum(rt.actors_spawned)],
      ['messages sent', fmtNum(rt.msgs_sent)],
      ['dropped', fmtNum(rt.msgs_dropped)],
      ['crashes', fmtNum(rt.crashes)],
      ['schedulers', (j.schedulers || []).length],
      ['peers up', fmtNum(d.peers_up)],
    ];
    $('#summary').replaceChildren(...cards.map(([k, v]) =>
      h('div', {class: 'card', 'data-card': k},
        h('div', {class: 'v'}, v), h('div', {class: 'k'}, k))));

    const hs = state.history.get(j.node.name) || [];
    const ns = (j.schedulers || []).length;
    /* A scheduler's load: the share of the time it was awake, from the
     * time it spent asleep (parked_ns) between samples. */
    const load = rates(hs, x => (x.schedulers || []).map(s => s.parked_ns || 0))
      .map(r => ({t: r.t, v: r.v.map(ns => Math.round(
        Math.min(100, Math.max(0, 100 - ns / 1e7))))}));
    plot($('#plot-sched'), load,
      Array.from({length: ns}, (_, i) => 'scheduler ' + i),
      $('#legend-sched'), '%', 100);
    plot($('#plot-msgs'),
      rates(hs, x => [x.runtime.msgs_sent, x.runtime.msgs_dropped,
        x.runtime.actors_spawned]),
      ['sent', 'dropped', 'spawned'], $('#legend-msgs'));

    const peers = d.peers || [];
    $('#peers tbody').replaceChildren(...(peers.length ? peers.map(p =>
      h('tr', {'data-peer': p.name},
        h('td', {}, h('a', {class: 'pid', onclick: () => {
          $('#node-switch').value = p.name; switchNode(p.name);
        }}, p.name)),
        h('td', {class: 'num'}, p.incarnation),
        h('td', {}, p.url),
        h('td', {}, fmtDuration(p.up_ms)),
        h('td', {class: 'num'}, fmtNum(p.msgs_out)),
        h('td', {class: 'num'}, fmtNum(p.msgs_in)),
        h('td', {class: 'num'}, fmtNum(p.bytes_out)),
        h('td', {class: 'num'}, fmtNum(p.bytes_in)),
        h('td', {class: 'num'}, fmtNum(p.queue_bytes)),
        h('td', {class: 'num'}, p.last_rx_ms === undefined ? '-'
          : fmtDuration(p.last_rx_ms) + ' ago'),
        h('td', {class: 'num'}, fmtNum(p.refused_in)))) :
      [h('tr', {}, h('td', {colspan: 11, class: 'hint'},
        'no peer connected'))]));
  }

  /* ---- Supervision: the tree ---- */

  function childAction(sup, child, what) {
    if (what === 'terminate' &&
        !confirm('Terminate child ' + child.id + ' of ' + sup.pid + '?'))
      return;
    api('/api/supervisor/' + encodeURIComponent(sup.pid) + '/child/' +
        encodeURIComponent(child.id) + '/' + what,
      {method: 'POST', allow: [400, 404, 409]})
      .then(r => {
        if (r.body && r.body.ok === false)
          setStatus(what + ' ' + child.id + ': ' + r.body.error, false);
        refresh();
      })
      .catch(e => setStatus(what + ' ' + child.id + ': ' + e.message, false));
  }

  function drawChild(sup, c, bySup, drawn) {
    const key = sup.pid + '|' + c.id;
    const was = state.seen.get(key);
    const now = performance.now();
    if (was && (was.restarts !== c.restarts ||
        (c.pid && was.pid && was.pid !== c.pid)))
      state.marked.set(key, now + RECENT_MS);
    state.seen.set(key, {pid: c.pid, restarts: c.restarts});
    const recent = (state.marked.get(key) || 0) > now ||
      (sup.recent || []).some(r => r.id === c.id &&
        Date.now() - r.at_ms < RECENT_MS);
    const st = c.pid ? 'running' : c.restarting ? 'restarting' : 'stopped';
    const li = h('li', {class: 'child' + (recent ? ' recent' : ''),
      'data-child': c.id, 'data-pid': c.pid || '', 'data-type': c.type,
      'data-restarts': c.restarts, 'data-state': st,
      'data-recent': recent ? '1' : null},
      h('div', {class: 'row'},
        h('span', {class: 'id'}, c.id),
        c.pid ? pidLink(c.pid) : h('span', {class: 'pid'}, '-'),
        h('span', {class: 'type'}, c.type + ', ' + c.restart),
        h('span', {class: 'state-' + st}, st),
        h('span', {class: 'restarted'}, 'restarts ' + c.restarts +
          (recent ? ' (just restarted)' : '')),
        h('button', {type: 'button', 'data-action': 'restart',
          onclick: () => childAction(sup, c, 'restart')}, 'restart'),
        h('button', {type: 'button', 'data-action': 'terminate',
          onclick: () => childAction(sup, c, 'terminate')}, 'terminate')));
    if (c.type === 'supervisor' && c.pid && bySup.has(c.pid) &&
        !drawn.has(c.pid))
      li.append(drawSup(bySup.get(c.pid), bySup, drawn));
    return li;
  }

  function drawSup(s, bySup, drawn) {
    drawn.add(s.pid);
    const box = h('div', {class: 'sup', 'data-sup': s.pid,
      'data-name': s.name || null, 'data-restarts': s.restarts},
      h('div', {class: 'head'}, s.name || 'supervisor', ' ', pidLink(s.pid),
        h('span', {class: 'meta'}, s.strategy + ', at most ' + s.intensity +
          ' restarts in ' + s.period_ms + ' ms; restarts: ' + s.restarts)));
    const recent = s.recent || [];
    if (recent.length)
      box.append(h('ul', {class: 'recent-list'}, ...recent.map(r =>
        h('li', {}, new Date(r.at_ms).toLocaleTimeString() + ' ' + r.id +
          ': ' + r.reason + ' (' + r.old + ' \u2192 ' + (r.new || 'none') +
          ')'))));
    box.append(h('ul', {class: 'children'},
      ...(s.children || []).map(c => drawChild(s, c, bySup, drawn))));
    return box;
  }

  function drawTree(j) {
    const sups = j.supervisors || [];
    const bySup = new Map(sups.map(s => [s.pid, s]));
    const drawn = new Set();
    const roots = sups.filter(s => !s.parent || !bySup.has(s.parent));
    const out = roots.map(s => drawSup(s, bySup, drawn));
    /* A nested supervisor whose parent lists it under another pid (it
     * is being restarted): drawn at the top rather than lost. */
    for (const s of sups) if (!drawn.has(s.pid)) out.push(drawSup(s, bySup, drawn));
    $('#sup-tree').replaceChildren(...(out.length ? out :
      [h('p', {class: 'hint'}, 'no supervisor on this node')]));
  }

  /* ---- Actors: the table and one actor's page ---- */

  function actorsPath() {
    const a = state.actors;
    let p = '/api/actors?sort=' + a.sort + '&limit=' + a.limit;
    if (a.sort === 'pid' && a.after) p += '&after=' + encodeURIComponent(a.after);
    return p;
  }

  function drawActors(j) {
    const a = state.actors;
    a.next = j.next || null;
    $('#actors-total').textContent = fmtNum(j.total) + ' actors; ' +
      (a.sort === 'pid' ? 'by pid, page ' + (a.back.length + 1)
        : 'top ' + a.limit + ' by ' + a.sort);
    for (const th of document.querySelectorAll('#actors th[data-sort]'))
      th.classList.toggle('sorted', th.dataset.sort === a.sort);
    $('#actors-prev').disabled = a.sort !== 'pid' || a.back.length === 0;
    $('#actors-first').disabled = a.sort !== 'pid' || a.back.length === 0;
    $('#actors-next').disabled = a.sort !== 'pid' || !a.next;
    $('#actors tbody').replaceChildren(...(j.actors || []).map(x =>
      h('tr', {class: 'clickable' + (x.pid === state.actor ? ' selected' : ''),
        'data-actor': x.pid, onclick: () => openActor(x.pid)},
        h('td', {}, x.pid), h('td', {}, x.name || ''),
        h('td', {}, x.behaviour || ''), h('td', {}, x.kind),
        h('td', {}, x.state), h('td', {class: 'num'}, fmtNum(x.mailbox)),
        h('td', {class: 'num'}, fmtNum(x.handled)))));
  }

  function payloadBox() {
    const box = h('input', {type: 'checkbox', 'data-action': 'payload',
      onchange: () => { state.payload = box.checked; loadActor(); }});
    box.checked = !!state.payload;
    return box;
  }

  function openActor(pid) {
    state.actor = pid;
    loadActor();
  }

  function pidList(v) {
    if (!v || !v.length) return 'none';
    const span = h('span');
    v.forEach((p, i) => { if (i) span.append(', '); span.append(pidLink(p)); });
    return span;
  }

  function loadActor() {
    const pid = state.actor;
    if (!pid) return Promise.resolve();
    return api('/api/actor/' + encodeURIComponent(pid) +
      (state.payload ? '?payload=1' : ''), {allow: [404]})
      .then(r => { if (state.actor === pid) drawActor(pid, r); })
      .catch(e => setStatus('actor ' + pid + ': ' + e.message, false));
  }

  function drawActor(pid, r) {
    const page = $('#actor-page');
    page.hidden = false;
    page.dataset.actor = pid;
    const close = h('button', {type: 'button', onclick: () => {
      state.actor = null; page.hidden = true; }}, 'close');
    if (r.status === 404 || !r.body) {
      page.dataset.alive = '0';
      page.replaceChildren(h('h3', {}, pid), h('p', {class: 'error'},
        'no such actor (it has exited)'), close);
      return;
    }
    const a = r.body;
    page.dataset.alive = '1';
    const kill = h('button', {type: 'button', 'data-action': 'kill',
      onclick: () => {
        if (!confirm('Kill actor ' + pid + '?')) return;
        api('/api/actor/' + encodeURIComponent(pid) + '/kill',
          {method: 'POST', allow: [404]})
          .then(() => loadActor())
          .catch(e => setStatus('kill ' + pid + ': ' + e.message, false));
      }}, 'kill');
    const mons = (v) => !v || !v.length ? 'none' :
      h('span', {}, ...v.map((m, i) => h('span', {},
        i ? ', ' : '', pidLink(m.pid), ' (ref ' + m.ref + ')')));
    const head = a.mailbox_head || [];
    page.replaceChildren(
      h('h3', {}, a.name ? a.name + ' ' : '', pid),
      h('dl', {},
        h('dt', {}, 'behaviour'), h('dd', {}, a.behaviour || '-'),
        h('dt', {}, 'state'), h('dd', {}, a.state),
        h('dt', {}, 'mailbox'), h('dd', {}, fmtNum(a.mailbox)),
        h('dt', {}, 'handled'), h('dd', {}, fmtNum(a.handled)),
        h('dt', {}, 'traps exits'), h('dd', {}, a.trap_exit ? 'yes' : 'no'),
        h('dt', {}, 'links'), h('dd', {'data-field': 'links'}, pidList(a.links)),
        h('dt', {}, 'monitors'), h('dd', {'data-field': 'monitors'}, mons(a.monitors)),
        h('dt', {}, 'monitored by'), h('dd', {'data-field': 'monitored_by'},
          mons(a.monitored_by))),
      h('h4', {}, 'mailbox head' + (head.length ? '' : ': empty')),
      /* Payloads are the application's data: shown only when the
       * operator asks, for this page. */
      h('label', {class: 'hint'}, payloadBox(), ' show payload bytes'),
      head.length ? h('table', {'data-field': 'mailbox_head'},
        h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'type'),
          h('th', {}, 'size'), h('th', {}, 'payload'))),
        h('tbody', {}, ...head.map((m, i) => h('tr', {},
          h('td', {class: 'num'}, i), h('td', {}, m.type),
          h('td', {class: 'num'}, m.size),
          h('td', {class: 'bytes'}, m.bytes || ''))))) : '',
      h('p', {}, kill, ' ', close));
  }

  /* ---- the refresh loop ---- */

  async function refresh() {
    if (state.busy || !token) return;
    state.busy = true;
    try {
      const local = (await api('/api/node', {node: null})).body;
      state.local = local.node.name;
      remember(local.node.name, local);
      drawSwitcher(local);
      let shown = local;
      if (state.node && state.node !== state.local) {
        shown = (await api('/api/node')).body;
        remember(shown.node.name, shown);
      }
      if (state.tab === 'overview') drawOverview(shown);
      if (state.tab === 'supervision') {
        const j = (await api('/api/supervisors')).body;
        drawTree(j);
      }
      if (state.tab === 'actors') {
        drawActors((await api(actorsPath())).body);
        await loadActor();
      }
      setStatus('live, ' + new Date().toLocaleTimeString(), true);
    } catch (e) {
      setStatus(e.status === 401 ? 'the token was refused' : e.message, false);
    } finally {
      state.busy = false;
    }
  }

  /* Overview samples are taken whatever the tab, so the plots have their
   * minutes when one comes back to them. */
  async function tick() {
    await refresh();
    setTimeout(tick, REFRESH_MS);
  }

  function start() {
    for (const b of document.querySelectorAll('[data-tab]'))
      b.addEventListener('click', () => showTab(b.dataset.tab));
    $('#node-switch').addEventListener('change',
      e => switchNode(e.target.value));
    for (const th of document.querySelectorAll('#actors th[data-sort]'))
      th.addEventListener('click', () => {
        const a = state.actors;
        a.sort = th.dataset.sort; a.after = null; a.back = [];
        refresh();
      });
    $('#actors-limit').addEventListener('change', e => {
      const a = state.actors;
      a.limit = Number(e.target.value); a.after = null; a.back = [];
      refresh();
    });
    $('#actors-next').addEventListener('click', () => {
      const a = state.actors;
      if (!a.next) return;
      a.back.push(a.after); a.after = a.next; refresh();
    });
    $('#actors-prev').addEventListener('click', () => {
      const a = state.actors;
      if (!a.back.length) return;
      a.after = a.back.pop(); refresh();
    });
    $('#actors-first').addEventListener('click', () => {
      const a = state.actors;
      a.after = null; a.back = []; refresh();
    });
    if (!token) {
      setStatus('no token: open this page as /?token=TOKEN', false);
      return;
    }
    const tab = Array.from(fragment.keys())[0];
    showTab(TABS.includes(tab) ? tab : 'overview');
    /* A fragment typed in or from history (writeFragment's own changes
     * fire no event). */
    window.addEventListener('hashchange', () => {
      const f = new URLSearchParams(location.hash.slice(1));
      const t = Array.from(f.keys())[0];
      const n = f.get('node') || null;
      if (n !== state.node && !(n === state.local && !state.node))
        switchNode(n || state.local);
      showTab(TABS.includes(t) ? t : 'overview');
    });
    setTimeout(tick, REFRESH_MS);
  }

  start();
})();
