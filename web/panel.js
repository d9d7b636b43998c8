/*
 * tickpipe status panel: plain JS, no framework, no build.
 *
 * Data: the WebSocket `/ws` status channel (about 1 Hz). Until that channel delivers, or whenever it goes
 * quiet for more than 2.5 s, the panel fetches `GET /api/v1/status` once per second with at most one
 * request in flight (no polling storm). Every section is rendered defensively: unknown fields show up in
 * generic key/value lists, missing ones show "—". Rows are created once and then only their text changes.
 * Everything is written with textContent (no HTML injection from data).
 */
/* global uPlot */
'use strict';

(() => {
  const WINDOW_S = 15 * 60; // throughput history kept (seconds)
  const SPARK_POINTS = 300; // ~5 min at 1 Hz
  const SPARK_W = 72;
  const WS_QUIET_MS = 2500; // poll when the WebSocket has not delivered status for this long
  const STALE_MS = 5000; // dim the page when the last status is older than this
  const KEY_STORE = 'tickpipe.apiKey';
  const COLORS = ['#5cc8ff', '#3fcf6b', '#e3b341', '#c084fc', '#ff8a65', '#4dd0e1', '#f06292', '#aed581'];
  const DOWN_STATES = new Set(['stopped', 'failed', 'stopping', 'down', 'error', 'crashed', 'dead']);
  const WARN_STATES = new Set(['starting', 'restarting', 'draining', 'reconnecting', 'degraded', 'connecting']);
  const KNOWN_TOP = new Set(['service', 'startedAt', 'uptimeSeconds', 'mode', 'stages', 'rings', 'consumers', 'symbols', 'recentErrors', 'now', 'generatedAt', 'history', 'throughputHistory']);

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

  // ---------- formatting ----------
  const fmtInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const fmt2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const fmt1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  const DASH = '—';
  const PRICE_KEYS = new Set(['price', 'bid', 'ask', 'open', 'high', 'low', 'close', 'vwap']);
  function compact(v) {
    if (v === null || v === undefined) return DASH;
    const a = Math.abs(v);
    if (a >= 1e9) return fmt1.format(v / 1e9) + 'G';
    if (a >= 1e6) return fmt1.format(v / 1e6) + 'M';
    if (a >= 1e4) return fmt1.format(v / 1e3) + 'k';
    return a >= 100 || Number.isInteger(v) ? fmtInt.format(v) : fmt1.format(v);
  }
  function bytes(v) {
    if (num(v) === null) return DASH;
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    let x = v;
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (i === 0 ? fmtInt.format(x) : fmt1.format(x)) + ' ' + u[i];
  }
  function ago(ms) {
    if (num(ms) === null) return DASH;
    const d = Math.max(0, Date.now() - ms);
    if (d < 1000) return (d / 1000).toFixed(1) + ' s';
    if (d < 60_000) return Math.round(d / 1000) + ' s';
    if (d < 3_600_000) return Math.round(d / 60_000) + ' min';
    return fmt1.format(d / 3_600_000) + ' h';
  }
  function duration(s) {
    if (num(s) === null) return DASH;
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function toMs(v) {
    if (num(v) !== null) return v > 1e14 ? v / 1000 : v > 1e11 ? v : v * 1000; // µs, ms or s
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\d[T ]/.test(v)) { const t = Date.parse(v); return Number.isNaN(t) ? null : t; }
    return null;
  }
  function ms(v) { return (Math.abs(v) < 10 ? fmt2 : fmt1).format(v) + ' ms'; }
  function price(v) { return num(v) === null ? DASH : fmt2.format(v); }
  function humanKey(k) {
    return String(k).replace(/_/g, ' ').replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/\b(ms|us|bytes)$/i, '').trim().toLowerCase();
  }
  /** Format a value by what its key says it is. */
  function fmtValue(key, v) {
    if (v === null || v === undefined || v === '') return DASH;
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    const k = String(key);
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return DASH;
      if (/bytes$/i.test(k)) return bytes(v);
      if (/(Ms|_ms)$/.test(k) && !/^ts_?ms$/i.test(k)) return ms(v);
      if (/(Us|_us|Micros)$/.test(k) && !/^ts_?us$/i.test(k)) return ms(v / 1000);
      if (/(Seconds|_s|Secs)$/.test(k)) return duration(v);
      if (/(fill|ratio|accuracy|rate)$/i.test(k) && v >= 0 && v <= 1) return fmt1.format(v * 100) + ' %';
      if (/(pct|percent)$/i.test(k)) return fmt1.format(v) + ' %';
      if (/(At|Time|^ts|_ts|Ts)$/.test(k) && v > 1e11) return ago(toMs(v)) + ' ago';
      return compact(v);
    }
    if (typeof v === 'string') {
      const t = toMs(v);
      if (t !== null) return ago(t) + ' ago';
      return v;
    }
    if (Array.isArray(v)) {
      if (v.length === 0) return 'none';
      if (v.every((x) => typeof x !== 'object')) return v.slice(0, 6).join(', ') + (v.length > 6 ? ' …' : '');
      return v.length + (v.length === 1 ? ' entry' : ' entries');
    }
    if (isObj(v)) {
      const parts = [];
      for (const [k2, v2] of Object.entries(v)) {
        if (typeof v2 === 'object' && v2 !== null) continue;
        parts.push(humanKey(k2) + ' ' + fmtValue(k2, v2));
        if (parts.length >= 3) break;
      }
      return parts.length ? parts.join(' · ') : Object.keys(v).length + ' fields';
    }
    return String(v);
  }
  /** First value among `names` (case-insensitive), in obj or one level down. */
  function pick(obj, names) {
    if (!isObj(obj)) return undefined;
    const lower = new Map(Object.keys(obj).map((k) => [k.toLowerCase(), k]));
    for (const n of names) {
      const k = lower.get(n.toLowerCase());
      if (k !== undefined && obj[k] !== undefined && obj[k] !== null) return obj[k];
    }
    for (const v of Object.values(obj)) {
      if (!isObj(v)) continue;
      const low2 = new Map(Object.keys(v).map((k) => [k.toLowerCase(), k]));
      for (const n of names) {
        const k = low2.get(n.toLowerCase());
        if (k !== undefined && v[k] !== undefined && v[k] !== null) return v[k];
      }
    }
    return undefined;
  }
  /** Section of the status by candidate paths ("validator.gaps"). */
  function section(st, paths) {
    for (const p of paths) {
      let cur = st;
      let top = null;
      for (const part of p.split('.')) {
        if (!isObj(cur)) { cur = undefined; break; }
        const k = Object.keys(cur).find((x) => x.toLowerCase() === part.toLowerCase());
        if (top === null) top = k ?? part;
        cur = k === undefined ? undefined : cur[k];
      }
      if (cur !== undefined && cur !== null) return { path: p, top, value: cur };
    }
    return null;
  }
  function stateClass(s) {
    const v = String(s ?? '').toLowerCase();
    if (v === '') return 'off';
    if (DOWN_STATES.has(v)) return 'bad';
    if (WARN_STATES.has(v)) return 'warn';
    if (v === 'disabled' || v === 'off' || v === 'idle') return 'off';
    return 'ok';
  }

  // ---------- state ----------
  const S = {
    status: null, at: 0, first: true,
    prevCounts: new Map(), // source -> { n, t }
    rates: new Map(), // source -> records/s
    changedAt: new Map(), // source -> when this page last saw its count move (ms)
    hist: { t: [], series: new Map() }, // time (s) and values per source
    spark: new Map(), // symbol -> prices
    lastPrice: new Map(),
    rows: new Map(), mrows: new Map(), cards: new Map(),
    ws: null, wsAt: 0, wsBackoffMs: 1000, inflight: false, polled: false, transport: 'connecting',
    chart: null, chartKeys: '',
  };

  // ---------- transport ----------
  /**
   * The engine status in a `/ws` message. The hub (api/ws/hub.ts) sends
   * `{ channel: "status", tsMicros, payload: { type: "status", state, metrics: [{ name, value }] }, engine: {…} }`;
   * `engine` is the `/api/v1/status` body. The hub's own metrics (ws.clients, …) fill a `ws` section when the
   * engine's status has none.
   */
  function extractStatus(m) {
    if (!isObj(m)) return null;
    if (m.channel !== 'status' && m.type !== 'status') return Array.isArray(m.stages) ? m : null;
    let st = null;
    for (const k of ['engine', 'data', 'status']) if (isObj(m[k]) && !m[k].error) { st = m[k]; break; }
    if (!st && isObj(m.payload) && Array.isArray(m.payload.stages)) st = m.payload;
    if (!st) return null;
    const metrics = isObj(m.payload) && Array.isArray(m.payload.metrics) ? m.payload.metrics : null;
    if (metrics && st.ws === undefined && st.websocket === undefined) {
      const ws = {};
      for (const x of metrics) if (isObj(x) && typeof x.name === 'string' && x.name.startsWith('ws.')) ws[x.name.slice(3)] = x.value;
      if (Object.keys(ws).length) st = { ...st, ws };
    }
    return st;
  }
  function connectWs() {
    let ws;
    try {
      ws = new WebSocket((window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + '/ws?format=json');
    } catch { scheduleWs(); return; }
    S.ws = ws;
    ws.onopen = () => { ws.send(JSON.stringify({ op: 'subscribe', channels: ['status'] })); };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return; // binary frames are tick data, not for the panel
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      const st = extractStatus(m);
      if (st) { S.wsAt = Date.now(); S.wsBackoffMs = 1000; setTransport('live'); apply(st); }
    };
    ws.onclose = () => { if (S.ws === ws) { S.ws = null; scheduleWs(); } };
    ws.onerror = () => { /* onclose follows */ };
  }
  function scheduleWs() {
    const d = S.wsBackoffMs;
    S.wsBackoffMs = Math.min(30_000, d * 2);
    setTimeout(connectWs, d);
  }
  async function poll() {
    if (S.inflight) return;
    S.inflight = true;
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 5000);
    try {
      // the first request takes the response the page preloaded (<link rel=preload>) while it was parsed
      const first = S.at === 0 && !S.polled;
      S.polled = true;
      const r = await fetch('/api/v1/status', first ? { signal: ctl.signal } : { cache: 'no-store', signal: ctl.signal });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const st = await r.json();
      if (Date.now() - S.wsAt > WS_QUIET_MS) setTransport('polling');
      apply(st);
    } catch {
      if (Date.now() - S.wsAt > WS_QUIET_MS) setTransport('offline');
    } finally {
      clearTimeout(t);
      S.inflight = false;
    }
  }
  function setTransport(t) {
    if (S.transport === t) return;
    S.transport = t;
    const c = $('conn');
    c.textContent = t;
    c.className = 'pill conn ' + (t === 'live' ? 'ok' : t === 'polling' ? 'warn' : 'bad');
    c.title = t === 'live' ? 'WebSocket status channel' : t === 'polling' ? 'GET /api/v1/status once per second' : 'engine unreachable';
  }
  function everySecond() {
    if (Date.now() - S.wsAt > WS_QUIET_MS) void poll();
    document.body.classList.toggle('stale', S.at > 0 && Date.now() - S.at > STALE_MS);
    $('updated').textContent = S.at ? ago(S.at) + ' ago' : DASH;
  }

  // ---------- apply a status snapshot ----------
  function apply(st) {
    if (!isObj(st)) return;
    const now = Date.now();
    S.status = st;
    S.at = now;
    updateRates(st, now);
    renderHeader(st);
    renderServices(st);
    if (S.first) {
      S.first = false;
      performance.mark('tp:services-rendered');
      document.documentElement.dataset.ready = '1';
      loadChartLib();
    }
    renderMarket(st);
    renderHealth(st);
    renderErrors(st);
    renderChart();
    fillSymbols(st);
    $('updated').textContent = '0.0 s ago';
  }

  /** Records counted per source: ring `published`, else a stage/consumer counter. */
  function sourceCounts(st) {
    const out = new Map();
    if (isObj(st.rings)) for (const [k, r] of Object.entries(st.rings)) { const n = num(r && r.published); if (n !== null) out.set(k, n); }
    if (Array.isArray(st.stages)) {
      for (const s of st.stages) {
        if (!isObj(s) || out.has(s.name)) continue;
        const ls = isObj(s.lastStats) ? s.lastStats : {};
        const n = num(pick(ls, ['records', 'published', 'ticks', 'written', 'trades', 'messages']));
        if (n !== null) out.set(s.name, n);
      }
    }
    return out;
  }
  function updateRates(st, now) {
    const counts = sourceCounts(st);
    for (const [k, n] of counts) {
      const p = S.prevCounts.get(k);
      if (p && now > p.t && n >= p.n) {
        const dt = (now - p.t) / 1000;
        // ignore bursts of snapshots closer than 200 ms (poll + WS overlap): keep the last rate
        if (dt >= 0.2) { S.rates.set(k, (n - p.n) / dt); S.prevCounts.set(k, { n, t: now }); }
        if (n !== p.n) S.changedAt.set(k, now);
      } else {
        S.prevCounts.set(k, { n, t: now });
      }
    }
    // history: one point per snapshot, at most one per 0.9 s
    const h = S.hist;
    const ts = now / 1000;
    if (h.t.length && ts - h.t[h.t.length - 1] < 0.9) return;
    if (!S.rates.size) return;
    h.t.push(ts);
    for (const k of S.rates.keys()) if (!h.series.has(k)) h.series.set(k, new Array(h.t.length - 1).fill(null));
    for (const [k, arr] of h.series) arr.push(S.rates.has(k) && counts.has(k) ? S.rates.get(k) : null);
    let drop = 0;
    while (drop < h.t.length && h.t[drop] < ts - WINDOW_S) drop++;
    if (drop) { h.t.splice(0, drop); for (const arr of h.series.values()) arr.splice(0, drop); }
  }

  function renderHeader(st) {
    const mode = $('mode');
    mode.textContent = st.mode ?? DASH;
    mode.className = 'pill ' + (st.mode ? 'ok' : 'off');
    $('uptime').textContent = duration(num(st.uptimeSeconds) ?? (toMs(st.startedAt) ? (Date.now() - toMs(st.startedAt)) / 1000 : null));
  }

  // ---------- services ----------
  function serviceNames(st) {
    const names = [];
    const add = (n) => { if (typeof n === 'string' && !names.includes(n)) names.push(n); };
    if (Array.isArray(st.stages)) for (const s of st.stages) add(s && s.name);
    if (isObj(st.rings)) for (const k of Object.keys(st.rings)) add(k);
    if (Array.isArray(st.consumers)) for (const c of st.consumers) add(c && c.name);
    return names;
  }
  function serviceRow(name) {
    let r = S.rows.get(name);
    if (r) return r;
    const tr = el('tr');
    tr.dataset.service = name;
    const cells = {};
    for (const c of ['name', 'state', 'updated', 'rate', 'fill', 'lag', 'errors', 'act']) { cells[c] = el('td'); tr.append(cells[c]); }
    cells.rate.className = 'num';
    cells.lag.className = 'num';
    const nm = el('span', 'name', name);
    const kind = el('small');
    nm.append(kind);
    cells.name.append(nm);
    const pill = el('span', 'pill');
    cells.state.append(pill);
    const bar = el('span', 'bar');
    const bi = el('i');
    bar.append(bi);
    const fillText = el('span');
    cells.fill.append(bar, fillText);
    const errCount = el('span');
    const errText = el('span', 'errtext');
    cells.errors.append(errCount, errText);
    const btn = el('button', 'small ghost', 'Restart');
    btn.type = 'button';
    btn.hidden = true;
    btn.setAttribute('aria-label', 'Restart ' + name);
    btn.addEventListener('click', () => restart(name, btn));
    cells.act.append(btn);
    r = { tr, cells, kind, pill, bar, bi, fillText, errCount, errText, btn };
    S.rows.set(name, r);
    return r;
  }
  function renderServices(st) {
    const body = $('services-body');
    const names = serviceNames(st);
    const stages = new Map((Array.isArray(st.stages) ? st.stages : []).filter(isObj).map((s) => [s.name, s]));
    const consumers = new Map((Array.isArray(st.consumers) ? st.consumers : []).filter(isObj).map((c) => [c.name, c]));
    const rings = isObj(st.rings) ? st.rings : {};
    const hasKey = !!loadKey();
    if (!names.length) return;
    const empty = body.querySelector('tr.empty');
    if (empty) empty.remove();
    for (const [name, r] of S.rows) if (!names.includes(name)) { r.tr.remove(); S.rows.delete(name); }
    for (const name of names) {
      const s = stages.get(name) ?? {};
      const ring = isObj(rings[name]) ? rings[name] : null;
      const c = consumers.get(name) ?? null;
      const ls = isObj(s.lastStats) ? s.lastStats : {};
      const r = serviceRow(name);
      if (r.tr.parentNode !== body) body.append(r.tr);
      r.kind.textContent = ring ? 'source · ring' : s.kind ?? (stages.has(name) ? 'stage' : 'ring');
      // state: the stage's, else the ring's
      const state = String(s.state ?? s.status ?? (ring && ring.state) ?? 'unknown');
      const cls = stateClass(state);
      const down = cls === 'bad' || (ring && String(ring.state).toLowerCase() === 'stopped' && !stages.has(name));
      r.tr.className = down ? 'down' : cls === 'warn' ? 'warn' : '';
      r.pill.className = 'pill ' + (down ? 'bad' : cls);
      r.pill.textContent = down ? 'down · ' + state : state;
      // last update: consumer's last record, else the stage's own field
      const reported = toMs((c && (c.lastRecordAt ?? c.lastUpdateAt)) ?? s.lastUpdateAt ?? s.lastRecordAt ?? ls.lastRecordAt ?? null);
      const lastMs = reported ?? S.changedAt.get(name) ?? null;
      r.cells.updated.textContent = lastMs ? ago(lastMs) + ' ago' : DASH;
      r.cells.updated.title = reported ? 'last record' : lastMs ? 'last change of its counters seen by this page' : '';
      r.cells.updated.dataset.ms = lastMs ? String(lastMs) : '';
      // throughput
      const rate = num(s.recordsPerSec ?? ls.recordsPerSec) ?? (S.rates.has(name) ? S.rates.get(name) : null);
      r.cells.rate.textContent = rate === null ? DASH : compact(rate) + '/s';
      // ring fill
      const fill = ring ? num(ring.fill) ?? (num(ring.occupancy) !== null && num(ring.slotCount) ? ring.occupancy / ring.slotCount : null) : null;
      r.bar.hidden = fill === null;
      if (fill !== null) {
        r.bi.style.width = Math.min(100, Math.max(fill > 0 ? 2 : 0, fill * 100)).toFixed(1) + '%';
        r.bar.className = 'bar' + (fill > 0.8 ? ' high' : fill > 0.5 ? ' mid' : '');
        r.fillText.textContent = fmt1.format(fill * 100) + ' %';
        r.bar.title = (ring.occupancy ?? '?') + ' of ' + (ring.slotCount ?? '?') + ' slots · ' + (ring.fullStalls ?? 0) + ' full stalls';
      } else r.fillText.textContent = DASH;
      // lag: an explicit lag in ms if reported, else the ring backlog
      const lagMs = num(s.lagMs ?? ls.lagMs ?? (c && c.lagMs));
      if (lagMs !== null) r.cells.lag.textContent = fmt1.format(lagMs) + ' ms';
      else if (ring && num(ring.occupancy) !== null) r.cells.lag.textContent = compact(ring.occupancy) + ' rec';
      else r.cells.lag.textContent = DASH;
      r.cells.lag.title = lagMs !== null ? 'reported lag' : 'records waiting in the ring';
      // errors
      const errs = (num(s.sourceErrors) ?? 0) + (num(s.errors) ?? 0);
      const restarts = num(s.restarts) ?? 0;
      const bits = [];
      bits.push(errs === 0 ? '0' : compact(errs) + (errs === 1 ? ' error' : ' errors'));
      if (restarts) bits.push(restarts + (restarts === 1 ? ' restart' : ' restarts'));
      if (c && num(c.gaps)) bits.push(compact(c.gaps) + ' gaps');
      r.errCount.textContent = bits.join(' · ');
      // an error from before the worker now running (it recovered) is shown as such, not as a current one
      const before = s.lastError && s.state === 'running' && num(s.lastErrorAt) !== null && num(s.startedAt) !== null && s.lastErrorAt < s.startedAt;
      const errLine = s.lastError ? (before ? 'before the last restart: ' : '') + s.lastError : '';
      r.errText.textContent = errLine;
      r.errText.title = errLine;
      r.btn.hidden = !hasKey || !stages.has(name);
    }
  }

  async function restart(name, btn) {
    const msg = $('action-msg');
    const key = loadKey();
    if (!key) { setMsg(msg, 'An admin key is needed to restart a source: press k to enter one.', 'bad'); return; }
    if (!window.confirm('Restart ' + name + '?')) return;
    btn.disabled = true;
    setMsg(msg, 'restarting ' + name + '…', '');
    try {
      const r = await fetch('/api/v1/admin/sources/' + encodeURIComponent(name) + '/restart', { method: 'POST', headers: { authorization: 'Bearer ' + key } });
      if (r.ok) setMsg(msg, name + ': restart requested.', 'ok');
      else if (r.status === 401) setMsg(msg, 'The key was refused (401): it is unknown or revoked. Press k to enter another.', 'bad');
      else if (r.status === 403) setMsg(msg, 'This key may not restart sources (403): an admin key is needed.', 'bad');
      else if (r.status === 404) setMsg(msg, 'Restart is not available on this server (404: ' + (await errorText(r)) + ').', 'bad');
      else setMsg(msg, 'Restart failed: HTTP ' + r.status + ' ' + (await errorText(r)), 'bad');
    } catch (e) {
      setMsg(msg, 'Restart failed: ' + e.message, 'bad');
    } finally {
      btn.disabled = false;
    }
  }

  // ---------- market ----------
  function marketRow(sym) {
    let r = S.mrows.get(sym);
    if (r) return r;
    const tr = el('tr');
    tr.dataset.symbol = sym;
    const c = {};
    for (const k of ['sym', 'last', 'size', 'bid', 'ask', 'age', 'spark']) { c[k] = el('td', k === 'sym' || k === 'spark' ? '' : 'num'); tr.append(c[k]); }
    const nm = el('span', 'name', sym);
    const root = el('small');
    nm.append(root);
    c.sym.append(nm);
    c.last.classList.add('px');
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + SPARK_W + ' 24');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    const pl = document.createElementNS(NS, 'polyline');
    svg.append(pl);
    c.spark.append(svg);
    r = { tr, c, root, svg, pl };
    S.mrows.set(sym, r);
    return r;
  }
  function renderMarket(st) {
    const list = Array.isArray(st.symbols) ? st.symbols.filter(isObj) : [];
    const body = $('market-body');
    if (!list.length) return;
    const empty = body.querySelector('tr.empty');
    if (empty) empty.remove();
    for (const s of list) {
      const sym = String(s.symbol ?? s.id ?? '?');
      const r = marketRow(sym);
      if (r.tr.parentNode !== body) body.append(r.tr);
      const l = isObj(s.latest) ? s.latest : {};
      const b = isObj(s.book) ? s.book : {};
      const trades = num(s.trades) ?? num(l.trade_count);
      r.root.textContent = (s.root ? s.root + ' · ' : '') + (trades === null ? '' : compact(trades) + ' trades');
      const p = num(l.price);
      const prev = S.lastPrice.get(sym);
      r.c.last.textContent = price(p);
      if (p !== null && prev !== undefined && p !== prev) r.c.last.className = 'num px ' + (p > prev ? 'up' : 'dn');
      if (p !== null) S.lastPrice.set(sym, p);
      r.c.size.textContent = num(l.size) === null ? DASH : compact(l.size);
      r.c.size.className = 'num ' + (l.side === 'buy' || l.side === 'B' ? 'side-buy' : l.side === 'sell' || l.side === 'S' ? 'side-sell' : '');
      r.c.size.title = l.side ? 'aggressor: ' + l.side : '';
      r.c.bid.textContent = price(num(l.bid) ?? num(b.bestBid));
      r.c.ask.textContent = price(num(l.ask) ?? num(b.bestAsk));
      r.c.bid.title = num(b.bidLevels) !== null ? 'book: ' + b.bidLevels + ' bid levels, best ' + price(b.bestBid) : '';
      r.c.ask.title = num(b.askLevels) !== null ? 'book: ' + b.askLevels + ' ask levels, best ' + price(b.bestAsk) : '';
      const t = toMs(l.ts_ms ?? l.ts);
      r.c.age.textContent = t ? ago(t) : DASH;
      // sparkline
      let pts = S.spark.get(sym);
      if (!pts) { pts = []; S.spark.set(sym, pts); }
      if (p !== null) { pts.push(p); if (pts.length > SPARK_POINTS) pts.shift(); }
      drawSpark(r, pts);
    }
  }
  function drawSpark(r, pts) {
    if (pts.length < 2) { r.pl.setAttribute('points', ''); return; }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of pts) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const span = hi - lo || 1;
    const stepX = SPARK_W / (pts.length - 1);
    const x0 = 0;
    let s = '';
    for (let i = 0; i < pts.length; i++) s += (x0 + i * stepX).toFixed(1) + ',' + (22 - ((pts[i] - lo) / span) * 20).toFixed(1) + ' ';
    r.pl.setAttribute('points', s);
    r.svg.setAttribute('class', 'spark ' + (pts[pts.length - 1] >= pts[0] ? 'up' : 'dn'));
  }

  // ---------- health cards ----------
  const sumConsumers = (st, k) => (Array.isArray(st.consumers) ? st.consumers.reduce((a, c) => a + (num(c && c[k]) ?? 0), 0) : null);
  const CARDS = [
    { id: 'gaps', title: 'Gaps', paths: ['gaps', 'validator.gaps'],
      kv: (st) => (Array.isArray(st.consumers) ? Object.fromEntries(st.consumers.filter((c) => isObj(c) && num(c.gaps) !== null).map((c) => [c.name + ' ring', c.gaps])) : null),
      head: (v, st) => {
        const n = isObj(v) ? num(pick(v, ['total', 'count', 'gaps', 'open'])) : Array.isArray(v) ? v.length : num(v);
        const c = sumConsumers(st, 'gaps');
        const total = n ?? c;
        return total === null ? null : { text: compact(total), cls: total > 0 ? 'warn' : '', sub: 'detected' };
      } },
    { id: 'quarantine', title: 'Quarantine', paths: ['quarantine', 'validator.quarantine', 'validator.quarantined', 'quarantined'],
      kv: (st) => (isObj(st.validator) ? { quarantined: st.validator.quarantined, flagged: st.validator.flaggedQuarantined, hotRejected: st.validator.hotRejected } : null),
      head: (v) => {
        const n = isObj(v) ? num(pick(v, ['total', 'count', 'records', 'quarantined'])) ?? sumNumbers(v) : Array.isArray(v) ? v.length : num(v);
        return n === null ? null : { text: compact(n), cls: n > 0 ? 'warn' : '', sub: 'records' };
      } },
    { id: 'spot', title: 'Spot checks', paths: ['spotChecks', 'spotCheck', 'spot_checks', 'spot'],
      head: (v) => {
        let a = num(pick(v, ['accuracy', 'accuracyPct', 'matchRate', 'passRate', 'okRatio']));
        if (a === null) {
          const ok = num(pick(v, ['passed', 'ok', 'matched', 'matches']));
          const bad = num(pick(v, ['failed', 'mismatched', 'mismatches', 'bad']));
          const all = num(pick(v, ['checked', 'total', 'checks', 'runs']));
          if (ok !== null && (bad !== null || all)) a = ok / (bad !== null ? ok + bad : all);
        }
        if (a === null || !Number.isFinite(a)) return null;
        const pct = a <= 1 ? a * 100 : a;
        const goal = pick(v, ['goalMet']);
        const bad = typeof goal === 'boolean' ? !goal : pct < 99.9;
        return { text: fmt2.format(pct) + ' %', cls: bad ? 'warn' : '', sub: 'accuracy' };
      } },
    { id: 'storage', title: 'Storage', paths: ['storage', 'compaction', 'compactor', 'parquet'],
      head: (v) => {
        const hours = num(pick(v, ['hoursCompacted', 'compactedHours', 'hours']));
        let disk = num(pick(v, ['diskBytes', 'diskUsedBytes', 'usedBytes', 'totalBytes', 'sizeBytes', 'bytes']));
        const d = isObj(v) ? pick(v, ['disk']) : undefined;
        if (disk === null && isObj(d)) disk = (num(d.ticksBytes) ?? 0) + (num(d.barsBytes) ?? 0) + (num(d.journalBytes) ?? 0);
        if (hours === null && disk === null) return null;
        return { text: disk !== null ? bytes(disk) : compact(hours) + ' h', cls: num(pick(v, ['consecutiveFailures'])) ? 'warn' : '', sub: disk !== null && hours !== null ? compact(hours) + ' h compacted' : disk !== null ? 'on disk' : 'compacted' };
      } },
    { id: 'api', title: 'API', paths: ['api', 'http', 'rest'],
      head: (v) => {
        const rps = num(pick(v, ['requestsPerSec', 'requestsPerSecond', 'rps', 'reqPerSec', 'ratePerSec']));
        const p99 = num(pick(v, ['p99Ms', 'p99', 'latencyP99Ms', 'p99Micros']));
        if (rps === null && p99 === null) return null;
        return { text: (rps === null ? DASH : compact(rps)) + '/s', sub: 'p99 ' + (p99 === null ? DASH : fmt2.format(p99) + ' ms') };
      } },
    { id: 'ws', title: 'WebSocket', paths: ['ws', 'websocket', 'webSocket', 'wsHub'],
      head: (v) => {
        const cl = num(pick(v, ['clients', 'connections', 'connected', 'sockets']));
        const dv = pick(v, ['drops', 'dropped', 'droppedMessages', 'slowConsumerCloses', 'slowClosed', 'backpressureDrops']);
        const dr = isObj(dv) ? sumNumbers(dv) : num(dv);
        if (cl === null && dr === null) return null;
        return { text: (cl === null ? DASH : compact(cl)) + (cl === 1 ? ' client' : ' clients'), cls: dr ? 'warn' : '', sub: (dr === null ? DASH : compact(dr)) + ' drops' };
      } },
    { id: 'redis', title: 'Redis', paths: ['redis'],
      head: (v) => {
        let s = typeof v === 'string' ? v : pick(v, ['state', 'status', 'mode', 'connection']);
        if (s === undefined && isObj(v)) s = Object.values(v).find((x) => typeof x === 'string');
        if (s === undefined && isObj(v) && typeof v.connected === 'boolean') s = v.connected ? 'connected' : 'disconnected';
        if (s === undefined || s === null) return null;
        const cls = stateClass(s);
        return { text: String(s), cls: cls === 'bad' ? 'bad' : cls === 'warn' ? 'warn' : '', sub: '' };
      } },
    { id: 'validator', title: 'Validator', paths: ['validator', 'validation'],
      head: (v) => {
        const n = num(pick(v, ['validated', 'records', 'accepted', 'processed', 'passed']));
        return n === null ? null : { text: compact(n), sub: 'validated' };
      } },
  ];
  function sumNumbers(o) {
    let s = 0;
    let any = false;
    for (const v of Object.values(o)) if (num(v) !== null) { s += v; any = true; }
    return any ? s : null;
  }
  function card(id, title) {
    let c = S.cards.get(id);
    if (c) return c;
    const root = el('article', 'hcard');
    root.id = 'card-' + id;
    root.setAttribute('aria-label', title);
    const h = el('h3', '', title);
    const big = el('div', 'big', DASH);
    const sub = el('small');
    const kv = el('dl', 'kv');
    root.append(h, big, kv);
    $('health').append(root);
    c = { root, big, sub, kv, keys: '' };
    S.cards.set(id, c);
    return c;
  }
  function fillKv(c, v, skip) {
    const entries = [];
    if (isObj(v)) {
      // plain values first, then nested ones
      const all = Object.entries(v).filter(([k]) => !(skip && skip.has(k)));
      for (const e of all) if (e[1] === null || typeof e[1] !== 'object') entries.push(e);
      for (const e of all) if (e[1] !== null && typeof e[1] === 'object') entries.push(e);
      entries.length = Math.min(entries.length, 6);
    } else if (Array.isArray(v)) {
      for (const x of v.slice(0, 4)) entries.push([isObj(x) ? String(x.symbol ?? x.name ?? x.id ?? '') : '', x]);
    }
    const keys = entries.map((e) => e[0]).join('|');
    if (keys !== c.keys) {
      c.kv.replaceChildren();
      c.cells = entries.map(([k]) => {
        const dt = el('dt', '', humanKey(k) || '•');
        const dd = el('dd');
        c.kv.append(dt, dd);
        return dd;
      });
      c.keys = keys;
    }
    entries.forEach(([k, x], i) => {
      const t = fmtValue(k, x);
      c.cells[i].textContent = t;
      c.cells[i].title = t;
    });
  }
  function renderHealth(st) {
    const used = new Set();
    for (const d of CARDS) {
      const c = card(d.id, d.title);
      const sec = section(st, d.paths);
      if (sec) used.add(sec.top);
      const head = d.head(sec ? sec.value : undefined, st);
      c.big.textContent = head ? head.text : DASH;
      if (head && head.sub) { c.sub.textContent = head.sub; c.big.append(c.sub); }
      c.root.className = 'hcard ' + (head ? head.cls ?? '' : 'off');
      c.root.dataset.present = sec ? '1' : '0';
      const extra = d.kv ? d.kv(st) : null;
      if (sec && !isObj(sec.value) && !Array.isArray(sec.value) && isObj(extra)) fillKv(c, extra, null);
      else if (sec) fillKv(c, sec.value, null);
      else { c.kv.replaceChildren(el('dt', '', 'not reported'), el('dd', '', '')); c.keys = '#none'; }
    }
    // Sections this panel does not know yet: shown generically, so new status fields appear.
    const seen = new Set();
    for (const [k, v] of Object.entries(st)) {
      if (KNOWN_TOP.has(k) || used.has(k) || (!isObj(v) && !Array.isArray(v))) continue;
      seen.add('x-' + k);
      const c = card('x-' + k, humanKey(k));
      const n = isObj(v) ? Object.keys(v).length : v.length;
      c.big.textContent = Array.isArray(v) ? compact(n) : DASH;
      c.root.className = 'hcard';
      fillKv(c, v, null);
    }
    for (const [id, c] of S.cards) if (id.startsWith('x-') && !seen.has(id)) { c.root.remove(); S.cards.delete(id); }
  }

  function renderErrors(st) {
    const list = $('errors-list');
    const errs = Array.isArray(st.recentErrors) ? st.recentErrors.slice(-20).reverse() : [];
    const key = errs.join('\n');
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...(errs.length ? errs.map((e) => el('li', '', typeof e === 'string' ? e : JSON.stringify(e))) : [el('li', 'muted', 'none')]));
  }

  // ---------- throughput chart ----------
  function renderChart() {
    const box = $('tp-chart');
    const h = S.hist;
    if (typeof window.uPlot !== 'function' || h.t.length < 1) return;
    const keys = [...h.series.keys()];
    const sig = keys.join('|');
    const data = [h.t, ...keys.map((k) => h.series.get(k))];
    if (!S.chart || S.chartKeys !== sig) {
      if (S.chart) S.chart.destroy();
      box.replaceChildren();
      const axis = { stroke: '#9aa7b4', grid: { stroke: '#1c2531', width: 1 }, ticks: { stroke: '#222d3b', width: 1 }, font: '11px system-ui' };
      S.chart = new uPlot({
        width: Math.max(300, box.clientWidth), height: 190 - 24,
        cursor: { drag: { x: false, y: false } },
        // the last 15 min once there is that much; until then what the page has seen (at least 1 min)
        scales: { x: { time: true, range: (_u, lo, hi) => [Math.min(hi - 60, Math.max(lo, hi - WINDOW_S)), hi] }, y: { range: (_u, _lo, hi) => [0, Math.max(10, hi * 1.1)] } },
        axes: [{ ...axis, space: 80, values: (_u, vals) => vals.map(clock) }, { ...axis, size: 56, values: (_u, vals) => vals.map((v) => compact(v)) }],
        series: [{}, ...keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false }, value: (_u, v) => (v === null ? DASH : compact(v) + '/s') }))],
        legend: { live: true },
      }, data, box);
      S.chartKeys = sig;
    } else {
      S.chart.setData(data);
    }
  }
  /** uPlot is loaded after the first render: its 50 KB do not delay the services. */
  function loadChartLib() {
    const src = document.documentElement.dataset.chartLib;
    if (!src || typeof window.uPlot === 'function') return;
    const sc = document.createElement('script');
    sc.src = src;
    sc.async = true;
    sc.onload = renderChart;
    document.head.append(sc);
  }
  function clock(tsSeconds) {
    const d = new Date(tsSeconds * 1000);
    const p2 = (n) => String(n).padStart(2, '0');
    return p2(d.getHours()) + ':' + p2(d.getMinutes()) + (d.getSeconds() ? ':' + p2(d.getSeconds()) : '');
  }
  function resizeChart() {
    if (S.chart) S.chart.setSize({ width: Math.max(300, $('tp-chart').clientWidth), height: 190 - 24 });
  }

  // ---------- API key ----------
  function loadKey() { try { return window.localStorage.getItem(KEY_STORE) || ''; } catch { return ''; } }
  function saveKey(k) {
    try {
      if (k) window.localStorage.setItem(KEY_STORE, k);
      else window.localStorage.removeItem(KEY_STORE);
    } catch { /* storage disabled: key lives for this page only */ }
    showKeyState();
    if (S.status) renderServices(S.status);
  }
  function showKeyState() {
    const k = loadKey();
    $('key-state').textContent = k ? 'key …' + k.slice(-4) : 'no key';
  }
  function openKeyDialog() {
    const d = $('key-dialog');
    if (d.open) return;
    $('key-input').value = loadKey();
    d.showModal();
    $('key-input').focus();
  }

  // ---------- data sample ----------
  function fillSymbols(st) {
    const sel = $('sample-symbol');
    const syms = (Array.isArray(st.symbols) ? st.symbols : []).filter(isObj).map((s) => String(s.symbol));
    const sig = syms.join(',');
    if (sel.dataset.sig === sig) return;
    sel.dataset.sig = sig;
    const cur = sel.value;
    sel.replaceChildren(...syms.map((s) => { const o = el('option', '', s); o.value = s; return o; }));
    if (syms.includes(cur)) sel.value = cur;
  }
  function setMsg(node, text, cls) { node.textContent = text; node.className = 'msg ' + (cls || ''); }
  async function errorText(r) {
    try { const j = await r.json(); return (j && j.error && (j.error.code + ': ' + j.error.message)) || ''; } catch { return ''; }
  }
  /**
   * The ticks in an answer: `/api/v1/ticks/realtime` says `{ data: [ { symbol, …, ticks: [ {…} ] } ] }`;
   * other shapes are searched for the first array of objects (a list of per-symbol groups is flattened).
   */
  function findRows(v, depth = 0) {
    if (depth > 4) return null;
    if (Array.isArray(v)) {
      if (v.length === 0 || !isObj(v[0])) return v.length === 0 ? v : null;
      const nested = Object.keys(v[0]).find((k) => Array.isArray(v[0][k]));
      if (nested === undefined) return v;
      const out = [];
      for (const g of v) if (isObj(g) && Array.isArray(g[nested])) for (const x of g[nested]) out.push(x);
      return out;
    }
    if (!isObj(v)) return null;
    for (const x of Object.values(v)) { const r = findRows(x, depth + 1); if (r) return r; }
    return null;
  }
  /** Newest first. */
  function newestFirst(rows) {
    const t = (r) => (isObj(r) ? num(r.ts_us) ?? num(r.ts_ms) ?? toMs(r.ts) ?? 0 : 0);
    return rows.length > 1 && t(rows[0]) < t(rows[rows.length - 1]) ? rows.slice().reverse() : rows;
  }
  let sampleBusy = false;
  async function fetchSample() {
    if (sampleBusy) return;
    const msg = $('sample-msg');
    const key = loadKey();
    const sym = $('sample-symbol').value;
    const limit = Math.min(1000, Math.max(1, parseInt($('sample-limit').value, 10) || 20));
    if (!key) { setMsg(msg, 'A key is needed: press k (or the API key button) to enter one.', 'bad'); return; }
    if (!sym) { setMsg(msg, 'No symbol yet.', 'bad'); return; }
    sampleBusy = true;
    try {
      const r = await fetch('/api/v1/ticks/realtime?symbols=' + encodeURIComponent(sym) + '&limit=' + limit, { headers: { authorization: 'Bearer ' + key }, cache: 'no-store' });
      if (r.status === 401) { setMsg(msg, 'The key was refused (401): it is unknown, revoked or mistyped. Press k to enter another.', 'bad'); clearSample(); return; }
      if (r.status === 403) { setMsg(msg, 'This key may not read ' + sym + ' (403): it lacks the realtime scope or this symbol.', 'bad'); clearSample(); return; }
      if (!r.ok) { setMsg(msg, 'HTTP ' + r.status + ' ' + (await errorText(r)), 'bad'); clearSample(); return; }
      const rows = newestFirst(findRows(await r.json()) ?? []).slice(0, limit);
      renderSample(rows);
      setMsg(msg, rows.length + ' ticks of ' + sym + ' · ' + new Date().toLocaleTimeString(), 'ok');
    } catch (e) {
      setMsg(msg, 'Request failed: ' + e.message, 'bad');
    } finally {
      sampleBusy = false;
    }
  }
  function clearSample() { const t = $('sample-table'); t.tHead.replaceChildren(); t.tBodies[0].replaceChildren(); }
  function renderSample(rows) {
    const t = $('sample-table');
    const PREF = ['ts', 'price', 'size', 'side', 'bid', 'ask', 'seq', 'source', 'flags'];
    const seen = new Set();
    for (const r of rows.slice(0, 5)) if (isObj(r)) for (const k of Object.keys(r)) seen.add(k);
    const hide = seen.has('ts') ? new Set(['symbol', 'ts_us', 'ts_ms']) : new Set(['symbol']);
    const cols = PREF.filter((k) => seen.has(k));
    for (const k of seen) if (!cols.includes(k) && !hide.has(k) && cols.length < 9) cols.push(k);
    const hr = el('tr');
    for (const k of cols) { const th = el('th', '', k); th.scope = 'col'; hr.append(th); }
    t.tHead.replaceChildren(hr);
    t.tBodies[0].replaceChildren(...rows.map((r) => {
      const tr = el('tr');
      for (const k of cols) {
        const v = r[k];
        const td = el('td', typeof v === 'number' ? 'num' : '');
        td.textContent = v === null || v === undefined ? DASH : typeof v === 'object' ? JSON.stringify(v)
          : k === 'ts' && typeof v === 'string' && v.length > 19 ? v.slice(11).replace('Z', '')
            : PRICE_KEYS.has(k) && typeof v === 'number' ? price(v) : String(v);
        if (k === 'ts') td.title = String(v);
        tr.append(td);
      }
      return tr;
    }));
  }

  // ---------- wiring ----------
  function init() {
    showKeyState();
    $('key-btn').addEventListener('click', openKeyDialog);
    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      saveKey($('key-input').value.trim());
      $('key-dialog').close();
      setMsg($('sample-msg'), loadKey() ? 'Key saved in this browser.' : 'Key cleared.', 'ok');
      $('key-btn').focus();
    });
    $('key-forget').addEventListener('click', () => { saveKey(''); $('key-input').value = ''; $('key-dialog').close(); setMsg($('sample-msg'), 'Key forgotten.', ''); clearSample(); $('key-btn').focus(); });
    $('key-cancel').addEventListener('click', () => { $('key-dialog').close(); $('key-btn').focus(); });
    $('sample-form').addEventListener('submit', (ev) => { ev.preventDefault(); void fetchSample(); });
    setInterval(() => { if ($('sample-live').checked && !document.hidden) void fetchSample(); }, 2000);
    document.addEventListener('keydown', (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const tag = ev.target && ev.target.tagName;
      if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || $('key-dialog').open) return;
      if (ev.key === 'k') { ev.preventDefault(); openKeyDialog(); }
      else if (ev.key === 's') { ev.preventDefault(); $('sample-symbol').focus(); }
      else if (ev.key === 'g') { ev.preventDefault(); $('services').focus(); }
    });
    if (typeof window.ResizeObserver === 'function') new window.ResizeObserver(resizeChart).observe($('tp-chart'));
    void poll();
    connectWs();
    setInterval(everySecond, 1000);
  }
  init();
})();
