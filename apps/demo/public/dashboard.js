// zcsend demo dashboard: reads the server-sent events of /api/events (one sample per second),
// plots them with uPlot and shows the same figures as text. Every figure element carries its raw
// number in data-value (charts: data-max, data-points) so tests read numbers, not formatting.
/* global uPlot */
(() => {
  'use strict';

  const WINDOW_POINTS = 120;
  const $ = (id) => document.getElementById(id);
  const COLORS = {
    blue: '#2563eb', sky: '#0ea5e9', green: '#16a34a', orange: '#e0631a', gray: '#94a3b8',
    slate: '#64748b', purple: '#7c3aed', pink: '#db2777', teal: '#0d9488', cyan: '#0891b2',
  };
  const REASON_COLORS = ['#e0631a', '#7c3aed', '#0d9488', '#db2777', '#b7791f', '#0ea5e9', '#64748b', '#15935a', '#9333ea', '#dc2626'];

  // ---- formatting -------------------------------------------------------------------------
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function fmtBytes(n) {
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${unit === 0 ? value.toFixed(0) : value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
  }
  const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
  const fmtMBps = (n) => `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} MB/s`;
  const pad2 = (n) => String(n).padStart(2, '0');
  const clock = (t) => {
    const d = new Date(t * 1000);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  };
  const fmtShort = (n) => {
    if (n >= 1000) return `${(n / 1000).toFixed(n >= 10000 ? 0 : 1)}k`;
    if (n >= 10 || Number.isInteger(n)) return n.toFixed(0);
    return n >= 1 ? n.toFixed(1) : n.toFixed(2);
  };

  function setFigure(id, value, text) {
    const el = $(id);
    el.dataset.value = String(value);
    el.textContent = text;
  }

  // ---- charts -----------------------------------------------------------------------------
  function niceMax(max) {
    if (!(max > 0)) return 1;
    const magnitude = 10 ** Math.floor(Math.log10(max));
    for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (max * 1.08 <= step * magnitude) return step * magnitude;
    return 10 * magnitude;
  }

  const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];

  const axisStyle = {
    stroke: '#6b7686',
    font: '11px system-ui, sans-serif',
    grid: { stroke: '#eef1f5', width: 1 },
    ticks: { stroke: '#e3e7ee', width: 1, size: 4 },
  };

  class Chart {
    /**
     * series: [{ label, color }]; format: value → text (axis and legend); counts: whole-number
     * ticks and at least 0–4 on the axis (an idle counter reads 0, not 0.25).
     */
    constructor(id, series, format, { counts = false } = {}) {
      this.el = $(id);
      this.format = format;
      this.data = [[], ...series.map(() => [])];
      this.labels = series.map((s) => s.label);
      this.max = 0;
      this.plot = new uPlot(
        {
          width: Math.max(this.el.clientWidth, 200),
          height: 200,
          padding: [10, 24, 0, 2],
          cursor: { drag: { x: false, y: false }, points: { size: 6 } },
          scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, niceMax(counts ? Math.max(hi, 4) : hi)] } },
          axes: [
            { ...axisStyle, space: 70, values: (u, ticks) => ticks.map(clock) },
            { ...axisStyle, size: 52, values: (u, ticks) => ticks.map((v) => this.format(v, true)), ...(counts ? { incrs: COUNT_STEPS } : {}) },
          ],
          series: [
            { label: 'time', value: (u, v, si, idx) => (idx == null ? 'latest' : clock(v)) },
            ...series.map((s) => this.seriesOptions(s)),
          ],
        },
        this.data,
        this.el,
      );
      new ResizeObserver(() => {
        const width = Math.max(this.el.clientWidth, 200);
        if (width !== this.plot.width) this.plot.setSize({ width, height: 200 });
      }).observe(this.el);
    }

    seriesOptions(s) {
      return {
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: `${s.color}1a`,
        points: { show: false },
        // Without a cursor on the chart the legend shows the latest values.
        value: (u, v, si, idx) => {
          const value = idx == null ? this.latest(si) : v;
          return value == null ? '–' : this.format(value, false);
        },
      };
    }

    latest(seriesIndex) {
      const column = this.data[seriesIndex];
      return column && column.length > 0 ? column[column.length - 1] : null;
    }

    has(label) {
      return this.labels.includes(label);
    }

    /** Adds a series, zero for the points already shown. */
    addSeries(label, color) {
      this.labels.push(label);
      this.data.push(this.data[0].map(() => 0));
      this.plot.addSeries(this.seriesOptions({ label, color }), this.data.length - 1);
    }

    clear() {
      for (const column of this.data) column.length = 0;
      this.max = 0;
    }

    /** values: one number per series, in series order. */
    push(t, values, redraw = true) {
      this.data[0].push(t / 1000);
      for (let i = 1; i < this.data.length; i++) {
        const v = values[i - 1] ?? 0;
        this.data[i].push(v);
        this.max = Math.max(this.max, v);
      }
      if (this.data[0].length > WINDOW_POINTS) for (const column of this.data) column.shift();
      if (redraw) this.redraw();
    }

    redraw() {
      this.plot.setData(this.data);
      if (this.plot.cursor.idx == null) this.plot.setLegend({ idx: null });
      this.el.dataset.max = String(this.max);
      this.el.dataset.points = String(this.data[0].length);
      const last = this.data.slice(1).map((column) => column[column.length - 1] ?? 0);
      this.el.dataset.last = String(last.reduce((a, b) => a + b, 0));
    }
  }

  const mbps = (v, axis) => (axis ? fmtShort(v) : fmtMBps(v));
  const count = (v) => fmtShort(v);
  const mib = (v, axis) => (axis ? fmtShort(v) : `${v.toFixed(1)} MiB`);

  const charts = {
    throughput: new Chart('chart-throughput', [
      { label: 'Sender', color: COLORS.blue },
      { label: 'all HTTP bodies', color: COLORS.gray },
    ], mbps),
    zerocopy: new Chart('chart-zerocopy', [
      { label: 'zero-copy', color: COLORS.green },
      { label: 'reported copied', color: COLORS.orange },
      { label: 'spliced', color: COLORS.sky },
      { label: 'plain', color: COLORS.slate },
    ], mbps),
    inflight: new Chart('chart-inflight', [
      { label: 'ops in flight', color: COLORS.purple },
      { label: 'notifications owed', color: COLORS.pink },
    ], count, { counts: true }),
    pinned: new Chart('chart-pinned', [{ label: 'pinned', color: COLORS.teal }], mib, { counts: true }),
    fallbacks: new Chart('chart-fallbacks', [{ label: 'all reasons', color: COLORS.slate }], count, { counts: true }),
    responses: new Chart('chart-responses', [
      { label: 'responses', color: COLORS.blue },
      { label: 'notifications', color: COLORS.pink },
    ], count, { counts: true }),
  };

  function plotSample(sample, redraw) {
    const r = sample.rates;
    charts.throughput.push(sample.t, [r.sentMBps, r.httpMBps], redraw);
    charts.zerocopy.push(sample.t, [r.zeroCopyMBps, r.copiedMBps, r.splicedMBps, r.plainMBps], redraw);
    charts.inflight.push(sample.t, [sample.peaks.inFlightOps, sample.peaks.pendingNotifications], redraw);
    charts.pinned.push(sample.t, [sample.peaks.pinnedBytes / 1048576], redraw);
    // One series per reason seen so far; bodies left to Fastify are labelled "fastify:<reason>".
    const rates = { ...r.fallbacks };
    for (const [reason, n] of Object.entries(r.bypassed)) rates[`fastify:${reason}`] = n;
    const seen = [...Object.keys(sample.totals.fallbacks), ...Object.keys(sample.totals.bypassed).map((k) => `fastify:${k}`)];
    for (const reason of seen) {
      if (!charts.fallbacks.has(reason)) {
        charts.fallbacks.addSeries(reason, REASON_COLORS[(charts.fallbacks.labels.length - 1) % REASON_COLORS.length]);
      }
    }
    const perReason = charts.fallbacks.labels.slice(1).map((reason) => rates[reason] ?? 0);
    charts.fallbacks.push(sample.t, [perReason.reduce((a, b) => a + b, 0), ...perReason], redraw);
    charts.responses.push(sample.t, [r.responsesPerSec, r.notificationsPerSec], redraw);
  }

  // ---- text figures -----------------------------------------------------------------------
  function fillReasons(tableId, counts) {
    const body = $(tableId).querySelector('tbody');
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    body.replaceChildren(
      ...(entries.length === 0
        ? [row(['none yet'], 'empty')]
        : entries.map(([reason, n]) => {
            const tr = row([reason, fmtInt(n)]);
            tr.dataset.reason = reason;
            tr.dataset.value = String(n);
            return tr;
          })),
    );
  }

  function row(cells, className) {
    const tr = document.createElement('tr');
    if (className) tr.className = className;
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cells.length === 1) td.colSpan = 2;
      tr.append(td);
    }
    return tr;
  }

  function showFigures(sample) {
    const { rates, totals, peaks } = sample;
    setFigure('sent-rate', rates.sentMBps, fmtMBps(rates.sentMBps));
    setFigure('sent-total', totals.bytesSent, fmtBytes(totals.bytesSent));
    setFigure('http-total', totals.httpBytes, `${fmtBytes(totals.httpBytes)} over HTTP`);
    setFigure('zc-total', totals.bytesZeroCopy, fmtBytes(totals.bytesZeroCopy));
    setFigure('copied-total', totals.bytesCopied, fmtBytes(totals.bytesCopied));
    setFigure('plain-total', totals.bytesPlain, fmtBytes(totals.bytesPlain));
    setFigure('spliced-total', totals.bytesSpliced, fmtBytes(totals.bytesSpliced));
    setFigure('inflight', peaks.inFlightOps, fmtInt(peaks.inFlightOps));
    setFigure('pinned', peaks.pinnedBytes, fmtBytes(peaks.pinnedBytes));
    setFigure('notifs', peaks.pendingNotifications, fmtInt(peaks.pendingNotifications));
    setFigure('notifs-total', totals.notifications, fmtInt(totals.notifications));
    setFigure('violations', totals.violations, fmtInt(totals.violations));
    setFigure('cancellations', totals.cancellations, fmtInt(totals.cancellations));
    fillReasons('fallbacks', totals.fallbacks);
    fillReasons('bypassed', totals.bypassed);
    showLoad(sample.load);
  }

  // ---- load -------------------------------------------------------------------------------
  const runButton = $('run-load');
  const stopButton = $('stop-load');

  function showLoad(load) {
    const state = $('load-state');
    state.dataset.state = load.state;
    state.textContent = load.state;
    setFigure('load-requests', load.requests, fmtInt(load.requests));
    setFigure('load-bytes', load.bytes, fmtBytes(load.bytes));
    setFigure('load-verified', load.verified, fmtInt(load.verified));
    setFigure('load-errors', load.errors + load.mismatches, fmtInt(load.errors + load.mismatches));
    const running = load.state === 'running';
    runButton.disabled = running || Boolean(load.unavailable);
    stopButton.disabled = !running;
    $('load-detail').textContent = loadDetail(load);
  }

  function loadDetail(load) {
    if (load.unavailable) return load.unavailable;
    if (load.state === 'running') {
      const left = Math.max(0, load.seconds - (Date.now() - load.startedAt) / 1000);
      return `${load.connections} keep-alive connections, about ${Math.ceil(left)} s left`;
    }
    if (load.state === 'idle') return 'Fetches the sample files and API buffers from a worker thread, each body sha256-checked.';
    const took = ((load.finishedAt - load.startedAt) / 1000).toFixed(1);
    const verdict = load.mismatches + load.errors === 0 ? 'every body sha256-verified' : `last problem: ${load.lastError}`;
    return `Run ${load.run} ${load.state} after ${took} s: ${verdict}.`;
  }

  $('load-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    runButton.disabled = true;
    const body = { seconds: Number($('load-seconds').value), connections: Number($('load-connections').value) };
    try {
      const res = await fetch('/api/load', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const answer = await res.json();
      if (!res.ok) throw new Error(answer.message || res.statusText);
      showLoad(answer);
    } catch (err) {
      runButton.disabled = false;
      $('load-detail').textContent = `Could not start: ${err.message}`;
    }
  });

  stopButton.addEventListener('click', async () => {
    stopButton.disabled = true;
    const res = await fetch('/api/load', { method: 'DELETE' });
    if (res.ok) showLoad(await res.json());
  });

  // ---- backend and probe ------------------------------------------------------------------
  function yesNo(id, value, yes = 'yes', no = 'no') {
    const el = $(id);
    el.textContent = value ? yes : no;
    el.className = value ? 'yes' : 'no';
  }

  function showInfo(info) {
    const backend = $('backend');
    backend.textContent = info.backend;
    backend.className = `backend backend-${info.backend}`;
    $('backend-sub').textContent = info.backend === 'io_uring' ? (info.adaptive ? 'adaptive sends' : 'SEND_ZC, adaptive off') : 'fallback';
    $('backend-why').textContent = info.why;
    document.title = `zcsend demo · ${info.backend}`;
    const p = info.probe;
    $('probe-kernel').textContent = p.kernel;
    yesNo('probe-available', p.available, 'usable', p.reason ? 'unusable' : 'no');
    if (!p.available && p.reason) $('probe-available').title = p.reason;
    yesNo('probe-sendzc', p.features.sendZc);
    yesNo('probe-sendmsgzc', p.features.sendmsgZc);
    yesNo('probe-report', p.features.reportUsage);
    yesNo('probe-fixed', p.features.fixedBuffers);
    // Break the flag list at its separators, not inside a flag name.
    $('probe-ring').textContent = info.ring ? info.ring.split('|').join('|\u200b') : `none (${info.fallbackReason ?? p.reason ?? 'copy backend'})`;
    $('probe-adaptive').textContent = info.adaptive ? 'on' : 'off';
    $('probe-threshold').textContent = fmtBytes(info.threshold);
    $('copy-note').hidden = info.backend !== 'copy';
  }

  async function showLinks() {
    const res = await fetch('/api/samples');
    if (!res.ok) return;
    const { files, targets } = await res.json();
    const list = $('links');
    const item = (html) => {
      const li = document.createElement('li');
      li.innerHTML = html;
      list.append(li);
    };
    const names = files.map((f) => f.name);
    item(`Samples: ${names.map((n) => `<a href="/files/${encodeURIComponent(n)}">${n}</a>`).join(', ')} (also under <a href="/static/${encodeURIComponent(names[0])}">/static/</a>, through <code>@fastify/static</code>)`);
    const blobs = targets.filter((t) => t.path.startsWith('/api/blob/'));
    item(`API Buffers: ${blobs.map((b) => `<a href="${b.path}">${b.path.slice('/api/blob/'.length)}</a>`).join(', ')}`);
  }

  // ---- live feed --------------------------------------------------------------------------
  const connection = $('connection');
  const dashboard = { charts, info: null, lastSample: null };
  window.zcsendDashboard = dashboard;

  const events = new EventSource('/api/events');
  events.addEventListener('open', () => {
    connection.dataset.state = 'live';
    connection.textContent = 'live · 1 sample/s';
  });
  events.addEventListener('error', () => {
    connection.dataset.state = 'error';
    connection.textContent = 'disconnected, retrying…';
  });
  events.addEventListener('hello', (event) => {
    const { info, history } = JSON.parse(event.data);
    dashboard.info = info;
    showInfo(info);
    for (const chart of Object.values(charts)) chart.clear();
    for (const sample of history) plotSample(sample, false);
    for (const chart of Object.values(charts)) chart.redraw();
    const last = history[history.length - 1];
    if (last) {
      dashboard.lastSample = last;
      showFigures(last);
    }
  });
  events.addEventListener('sample', (event) => {
    const sample = JSON.parse(event.data);
    dashboard.lastSample = sample;
    plotSample(sample, true);
    showFigures(sample);
  });

  showLinks().catch(() => {});
})();
