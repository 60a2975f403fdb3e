// The analyst's workbench: the rules' columns, a SQL editor, the epsilon
// to spend beside the budget left, answers as a table and a chart with
// their 95% intervals, refusals where they happened in the SQL, the
// key's own history, and downloads.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;

  // exampleSQL is a query the rules allow: the first dimension, a count
  // and the first metric's average. rules holds dimensions and metrics:
  // the collaboration's queryable columns (the rules' own and its
  // declared tables', named as the cohort names them).
  function exampleSQL(rules) {
    var d = (rules.dimensions || [])[0], m = Object.keys(rules.metrics || {})[0];
    var cols = (d ? [d] : []).concat(['COUNT(*) AS people'], m ? ['AVG(' + m + ') AS ' + m] : []);
    return 'SELECT ' + cols.join(', ') + '\nFROM cohort' + (d ? '\nGROUP BY ' + d : '');
  }

  // byteToIndex turns a byte offset in s's UTF-8 (what the API gives as
  // a refusal's position) into an index in the JS string.
  function byteToIndex(s, pos) {
    var bytes = 0;
    for (var i = 0; i < s.length; i++) {
      if (bytes >= pos) return i;
      var c = s.codePointAt(i);
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      if (c >= 0x10000) i++;
    }
    return s.length;
  }

  CR.workbench = function (panel, co, alive) {
    var rules = co.rules || {}, base = '/v1/collaborations/' + encodeURIComponent(co.id);
    var allowed = co.queryable || { dimensions: rules.dimensions || [], metrics: rules.metrics || {} };
    var lo = rules.min_query_epsilon || 0.01, hi = rules.max_query_epsilon || 1;
    // The rules' default epsilon, as a query naming none would spend.
    var start = Math.min(hi, Math.max(lo, rules.default_query_epsilon || 0.5));
    var sql = el('textarea', { test: 'sql', id: 'sql', rows: '7', spellcheck: 'false', 'aria-label': 'SQL' });
    sql.value = exampleSQL(allowed);
    var mark = el('pre', { class: 'sql-mark', hidden: true });
    var eps = el('input', { type: 'number', test: 'epsilon', id: 'epsilon', min: String(lo), max: String(hi), step: 'any', value: String(start) });
    var range = el('input', { type: 'range', min: String(lo), max: String(hi), step: String((hi - lo) / 100 || lo), value: String(start), 'aria-label': 'epsilon' });
    eps.addEventListener('input', function () { range.value = eps.value; budgetNote(); schedulePreview(); });
    range.addEventListener('input', function () { eps.value = String(Math.round(range.value * 1e6) / 1e6); budgetNote(); schedulePreview(); });
    sql.addEventListener('input', function () { schedulePreview(); });
    var gauge = el('div', { class: 'chart gauge', test: 'budget-gauge' });
    var budgetFacts = el('dl', { class: 'facts-list' });
    var note = el('p', { class: 'small muted' });
    // What Run would spend and how precise the answer would be, or why it
    // would be refused: asked of the preview route (which reads no data
    // and spends nothing) as the question and the epsilon change.
    var previewNote = el('p', { class: 'small', test: 'preview', 'aria-live': 'polite' });
    var previewTimer = null, previewSeq = 0;
    var result = el('div', { class: 'result' });
    var history = el('ol', { class: 'history', test: 'history' });
    var dlNote = el('span', { class: 'small muted' });
    var run = el('button', { class: 'primary', test: 'run-query', text: 'Run', onclick: function () { ask(); } });
    var budget = null;

    CR.clear(panel);
    CR.append(panel, el('div', { class: 'workbench' },
      el('aside', { class: 'card rules' },
        el('h3', { text: 'What you may ask' }),
        el('h4', { text: 'Dimensions (GROUP BY, WHERE)' }),
        el('ul', { class: 'chips', test: 'rules-dims' }, (allowed.dimensions || []).length ? allowed.dimensions.map(function (d) {
          return el('li', { class: 'chip', text: d });
        }) : el('li', { class: 'muted', text: 'none' })),
        el('h4', { text: 'Metrics (SUM, AVG), per-person bounds' }),
        el('ul', { class: 'chips', test: 'rules-metrics' }, Object.keys(allowed.metrics || {}).length ? Object.keys(allowed.metrics).sort().map(function (m) {
          var b = allowed.metrics[m];
          return el('li', { class: 'chip', text: m + ' [' + CR.num(b[0]) + ', ' + CR.num(b[1]) + ']' });
        }) : el('li', { class: 'muted', text: 'none' })),
        templatesBox(),
        el('p', { class: 'small muted', text: 'SELECT dimensions, COUNT(*), SUM(metric) or AVG(metric) FROM cohort [WHERE …] [GROUP BY …]. ' +
          'Groups under ' + CR.num(rules.min_group_users) + ' people (noisy) are dropped; ' + (rules.noise || 'laplace') + ' noise; ε per query from ' +
          CR.eps(lo) + ' to ' + CR.eps(hi) + '.' })),
      el('section', { class: 'card editor' },
        el('label', { for: 'sql', class: 'h3', text: 'Question' }), sql, mark,
        el('div', { class: 'controls' },
          el('label', { for: 'epsilon', text: 'ε to spend' }), eps, range, run,
          el('span', { class: 'spacer' }),
          el('button', { test: 'download-csv', text: 'CSV', title: 'Download the answer as CSV', onclick: function () { download('csv'); } }),
          el('button', { test: 'download-arrow', text: 'Arrow', title: 'Download the answer as an Arrow IPC stream', onclick: function () { download('arrow'); } })),
        previewNote,
        el('p', { class: 'small muted' }, 'A download runs the query again: with the same plan it is the stored answer, free; otherwise it is charged like Run. ', dlNote)),
      el('section', { class: 'card budget' }, el('h3', { text: 'Budget' }), gauge, budgetFacts, note)));
    CR.append(panel, [result, el('section', { class: 'card' }, el('h3', { text: 'Your questions' }), history)]);

    loadBudget();
    loadHistory();
    schedulePreview();

    // templatesBox lists the named questions (the rules' and the
    // built-ins) with an input for each parameter, and runs the one
    // chosen: the server checks each value against its type and bounds.
    function templatesBox() {
      var list = allowed.templates || [];
      if (!list.length) return null;
      var pick = el('select', { test: 'template', id: 'template', 'aria-label': 'Template' },
        list.map(function (t) { return el('option', { value: t.name, text: t.name }); }));
      var about = el('p', { class: 'small muted' });
      var inputs = el('div', { class: 'template-params' });
      var fields = {};
      function show() {
        var t = list.filter(function (x) { return x.name === pick.value; })[0] || list[0];
        about.textContent = t.description || '';
        CR.clear(inputs);
        fields = {};
        (t.params || []).forEach(function (p) {
          var id = 'tp-' + p.name;
          var hint = p.type === 'int' ? p.min + ' to ' + p.max : p.type === 'date' ? p.from + ' to ' + p.to :
            p.type === 'string' ? (p.values || []).join(', ') : 'a column';
          var input = el('input', { id: id, test: 'template-param', 'data-name': p.name, value: p.default || '', placeholder: hint });
          fields[p.name] = input;
          CR.append(inputs, [el('label', { for: id, class: 'small', text: p.name + ' (' + hint + ')' }), input]);
        });
      }
      pick.addEventListener('change', show);
      show();
      var go = el('button', { test: 'run-template', text: 'Run template', onclick: function () {
        var params = {};
        Object.keys(fields).forEach(function (k) { if (fields[k].value !== '') params[k] = fields[k].value; });
        ask({ name: pick.value, params: params });
      } });
      return el('div', { class: 'templates' }, el('h4', { text: 'Templates' }), pick, about, inputs, go);
    }

    function schedulePreview() {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(preview, 250);
    }

    async function preview() {
      var seq = ++previewSeq;
      var pv;
      try {
        pv = await CR.api('POST', base + '/queries/preview', { body: { sql: sql.value, epsilon: epsilon() } });
      } catch (e) {
        return; // the preview is advice: Run still answers for itself
      }
      if (!alive() || seq !== previewSeq) return;
      if (pv.refusal) {
        run.disabled = true;
        run.title = pv.refusal.message;
        previewNote.className = 'small refusal-note';
        previewNote.textContent = 'Run would be refused (' + pv.refusal.code + '): ' + pv.refusal.message;
        if (spent(pv.refusal.code)) previewNote.appendChild(budgetAdvice(pv.refusal.code, refreshes(pv.refusal.message)));
        return;
      }
      run.disabled = false;
      run.title = '';
      previewNote.className = 'small muted';
      var widths = (pv.columns || []).map(function (c) {
        return c.name + ' ±' + CR.num(Math.round(c.half_width * 100) / 100) + (c.kind === 'avg' ? ' (for ' + CR.num(pv.group_users) + ' people)' : '');
      }).join(', ');
      previewNote.textContent = (pv.cached ? 'Asked before: Run returns the stored answer, free. ' :
        'Run would spend ε ' + CR.eps(pv.epsilon) + (pv.delta ? ', δ ' + CR.eps(pv.delta) : '') + '. ') +
        (widths ? '95% intervals about ' + widths + '.' : '');
    }

    function epsilon() {
      var v = parseFloat(eps.value);
      return isNaN(v) ? 0 : Math.round(v * 1e6) / 1e6; // the ledger counts millionths
    }

    function loadBudget() {
      return CR.guard(alive, budgetFacts, CR.api('GET', base + '/budget').then(function (b) {
        if (!alive()) return;
        var own = (b.budgets || []).filter(function (x) { return x.partner_id === CR.me.partner_id; })[0] || (b.budgets || [])[0];
        budget = own;
        CR.clear(budgetFacts);
        if (!own) {
          budgetFacts.appendChild(el('dd', { text: 'No budget to show.' }));
          return;
        }
        CR.append(budgetFacts, [
          el('dt', { text: 'Spent' }), el('dd', { text: 'ε ' + CR.eps(own.epsilon_spent) + ' of ' + CR.eps(own.epsilon_budget) + (own.delta_budget ? ' · δ ' + CR.eps(own.delta_spent) + ' of ' + CR.eps(own.delta_budget) : '') }),
          el('dt', { text: 'Left' }), el('dd', { text: 'ε ' + CR.eps(own.epsilon_remaining) + (own.delta_budget ? ' · δ ' + CR.eps(own.delta_remaining) : '') }),
          el('dt', { text: 'In questions' }), el('dd', { test: 'budget-questions', text: own.summary || '' }),
          el('dt', { text: 'Refresh' }), el('dd', { text: own.next_refresh ? CR.date(own.next_refresh) + ' (monthly)' : 'never: one budget for the collaboration\'s life' }),
          el('dt', { text: 'Collaboration' }), el('dd', { text: 'ε ' + CR.eps(b.collaboration_epsilon_spent) + ' spent by both partners, matches included: what a person in the cohort is exposed to' })
        ]);
        budgetNote();
        var used = own.epsilon_budget ? own.epsilon_spent / own.epsilon_budget : 0;
        var opt = {
          series: [{
            type: 'gauge', min: 0, max: own.epsilon_budget, startAngle: 200, endAngle: -20, radius: '95%', center: ['50%', '60%'],
            progress: { show: true, width: 14, itemStyle: { color: used > 0.9 ? '#b8464b' : used > 0.7 ? '#e07b39' : '#2f6fb0' } },
            axisLine: { lineStyle: { width: 14 } }, axisTick: { show: false }, splitLine: { length: 6, distance: 2 },
            axisLabel: { distance: 18, fontSize: 10, formatter: function (v) { return CR.eps(v); } },
            pointer: { show: false }, anchor: { show: false }, title: { offsetCenter: [0, '30%'], fontSize: 12 },
            detail: { valueAnimation: false, offsetCenter: [0, '-5%'], fontSize: 20, formatter: function (v) { return 'ε ' + CR.eps(v); } },
            data: [{ value: own.epsilon_spent, name: 'spent of ' + CR.eps(own.epsilon_budget) }]
          }]
        };
        CR.disposeIn(gauge);
        CR.chart(gauge, opt);
      }));
    }

    function budgetNote() {
      if (!budget) return;
      var left = budget.epsilon_remaining - epsilon();
      note.textContent = left < 0 ? 'Not enough budget left for ε ' + CR.eps(epsilon()) + '.' :
        'Running a new question at ε ' + CR.eps(epsilon()) + ' would leave ε ' + CR.eps(Math.round(left * 1e6) / 1e6) + '; the stored answer of a question asked before is free.';
      if (budget.epsilon_remaining < lo) note.appendChild(budgetAdvice('budget_exhausted', !!budget.next_refresh));
    }

    function spent(code) { return code === 'budget_exhausted' || code === 'delta_budget_exhausted'; }
    // refreshes reads the server's refusal, which says whether the budget
    // refreshes.
    function refreshes(message) { return /refreshes/.test(message || '') && !/does not refresh/.test(message || ''); }
    // budgetAdvice says what a spent budget leaves the analyst: when it
    // comes back, and who can raise it.
    function budgetAdvice(code, monthly) {
      var rule = code === 'delta_budget_exhausted' ? 'delta_budget' : 'epsilon_budget';
      var when = monthly ? 'It refreshes at the start of next month (UTC)' + (budget && budget.next_refresh ? ', on ' + CR.date(budget.next_refresh) : '') + '.' :
        'It does not refresh.';
      return el('span', { class: 'budget-advice', test: 'budget-advice' }, 'Your partner\'s privacy budget here is spent. ' + when +
        ' Your partner\'s admin can raise it by proposing a change of the rules (' + rule + '), which the other partner approves.');
    }

    function loadHistory() {
      return CR.guard(alive, history, CR.api('GET', base + '/queries', { query: { limit: 50 } }).then(function (h) {
        if (!alive()) return;
        CR.clear(history);
        var qs = h.queries || [];
        if (!qs.length) history.appendChild(el('li', { class: 'muted', text: 'No question yet.' }));
        qs.forEach(function (q) {
          var what = q.outcome === 'cached' ? 'free: the stored answer' : q.outcome === 'refused' ? (q.code || 'refused') + (q.reason ? ': ' + q.reason : '') :
            'ε ' + CR.eps(q.epsilon) + (q.rows !== undefined ? ' · ' + CR.plural(q.rows, 'row') : '');
          history.appendChild(el('li', { class: 'history-item ' + q.outcome, test: 'history-item', 'data-outcome': q.outcome, tabindex: '0', title: 'Load this SQL',
            onclick: function () { sql.value = q.sql; sql.focus(); schedulePreview(); } },
            el('span', { class: 'badge ' + q.outcome, text: q.outcome === 'cached' ? 'free' : q.outcome }),
            el('span', { class: 'small muted', text: CR.time(q.at) }),
            el('code', { text: q.sql }),
            el('span', { class: 'small', text: what })));
        });
      }));
    }

    function showRefusal(e) {
      CR.clear(result).appendChild(el('section', { class: 'card' }, CR.errorBox(e, 'refusal'),
        spent(e.code) ? el('p', null, budgetAdvice(e.code, refreshes(e.message))) : null));
      if (e.position === null || e.position === undefined) return;
      var s = sql.value, i = byteToIndex(s, e.position);
      CR.clear(mark);
      CR.append(mark, [s.slice(0, i), el('mark', { text: s.slice(i, i + 1) || ' ' }), s.slice(i + 1)]);
      mark.hidden = false;
      sql.focus();
      sql.setSelectionRange(i, Math.min(s.length, i + 1));
    }

    async function ask(tpl) {
      mark.hidden = true;
      run.disabled = true;
      CR.clear(result).appendChild(el('p', { class: 'muted', text: 'Asking…' }));
      try {
        var body = tpl ? { template: tpl.name, params: tpl.params, epsilon: epsilon() } : { sql: sql.value, epsilon: epsilon() };
        var a = await CR.api('POST', base + '/queries', { body: body });
        if (!alive()) return;
        showAnswer(a);
      } catch (e) {
        if (!alive() || e.status === 401) return;
        showRefusal(e);
      } finally {
        run.disabled = false;
      }
      loadBudget();
      schedulePreview();
      loadHistory();
    }

    async function download(format) {
      dlNote.textContent = 'Downloading…';
      mark.hidden = true;
      try {
        var res = await CR.api('POST', base + '/queries', { query: { format: format }, body: { sql: sql.value, epsilon: epsilon() }, raw: true });
        var blob = await res.blob();
        var cached = res.headers.get('Cleanroom-Cached') === 'true';
        var url = URL.createObjectURL(blob);
        var a = el('a', { href: url, download: 'answer.' + format });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        dlNote.textContent = cached ? 'Downloaded: the stored answer, free.' :
          'Downloaded: a new answer, charged ε ' + CR.eps(parseFloat(res.headers.get('Cleanroom-Epsilon'))) + '.';
      } catch (e) {
        if (e.status === 401) return;
        dlNote.textContent = '';
        showRefusal(e);
      }
      if (!alive()) return;
      loadBudget();
      loadHistory();
    }

    function showAnswer(a) {
      var cols = a.columns || [], iv = a.intervals || [];
      // Rows in the chart's order: grouped by the first dimension.
      var order = answerOrder(cols, a.rows || []);
      var rows = order.map(function (i) { return a.rows[i]; });
      iv = order.map(function (i) { return iv[i]; });
      var chart = el('div', { class: 'chart answer', test: 'answer-chart' });
      var table = CR.table({ class: 'data', test: 'answer-table' }, cols.map(function (c) { return c.name + (c.kind === 'dimension' ? '' : ' (' + c.kind + ')'); }),
        rows.map(function (r, i) {
          return el('tr', null, cols.map(function (c, j) {
            if (c.kind === 'dimension') return CR.td(r[j] === null ? '(null)' : String(r[j]));
            var ci = (iv[i] || [])[j];
            return CR.td([CR.num(r[j], 2), ci ? el('span', { class: 'ci', text: ' 95%: ' + CR.num(ci.lower, 2) + ' – ' + CR.num(ci.upper, 2) }) : null], 'n');
          }));
        }));
      var summary = el('p', { class: 'answer-summary' },
        a.cached ? el('span', { class: 'badge cached', text: 'free' }) : el('span', { class: 'badge answered', text: 'charged' }), ' ',
        a.cached ? 'The stored answer to this question: nothing was charged. ' : 'Charged ε ' + CR.eps(a.epsilon) + (a.delta ? ', δ ' + CR.eps(a.delta) : '') + '. ',
        CR.plural(rows.length, 'row') + ', ' + a.noise + ' noise; your partner has ε ' + CR.eps(a.budget_remaining) + ' left; the collaboration has spent ε ' +
        CR.eps(a.collaboration_epsilon_spent) + ' in all.');
      CR.clear(result);
      CR.append(result, el('section', { class: 'card' }, el('h3', { text: 'Answer' }), summary,
        el('div', { class: 'answer-grid' }, chart, el('div', { class: 'scroll' }, table))));
      drawAnswer(chart, cols, rows, iv);
    }
  };

  // drawAnswer charts an answer: one panel per aggregate, a bar per row
  // grouped by the first dimension, with error bars for the 95% interval
  // (an ECharts custom series).
  function drawAnswer(box, cols, rows, iv) {
    var dims = [], aggs = [];
    cols.forEach(function (c, j) { (c.kind === 'dimension' ? dims : aggs).push(j); });
    if (!aggs.length || !rows.length) {
      CR.chart(box, CR.emptyChart(rows.length ? 'Nothing to chart' : 'No group passed the minimum size'));
      return;
    }
    var order = rows.map(function (r, i) { return i; });
    var cats = order.map(function (i) { return dims.length ? dims.map(function (d) { return String(rows[i][d]); }).join(' · ') : 'all'; });
    var h = 200, gap = 40;
    box.style.height = (aggs.length * (h + gap) + 10) + 'px';
    var option = { grid: [], xAxis: [], yAxis: [], series: [], title: [], tooltip: { trigger: 'axis', renderMode: 'richText', confine: true } };
    aggs.forEach(function (j, k) {
      var top = k * (h + gap) + 28;
      option.title.push({ text: cols[j].name + ' (' + cols[j].kind + ')', top: top - 26, left: 0, textStyle: { fontSize: 13 } });
      option.grid.push({ left: 16, right: 16, top: top, height: h - 40, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' });
      option.xAxis.push({ type: 'category', gridIndex: k, data: cats, axisLabel: { interval: 0, hideOverlap: true } });
      option.yAxis.push({ type: 'value', gridIndex: k, scale: false });
      option.series.push({ type: 'bar', name: cols[j].name, xAxisIndex: k, yAxisIndex: k, barMaxWidth: 56, itemStyle: { color: CR.palette[k % CR.palette.length] },
        data: order.map(function (i) { return rows[i][j]; }) });
      option.series.push({
        type: 'custom', name: '95% interval', xAxisIndex: k, yAxisIndex: k, z: 10,
        encode: { x: 0, y: [1, 2] },
        data: order.map(function (i, x) {
          var ci = (iv[i] || [])[j];
          return ci ? [x, ci.lower, ci.upper] : [x, rows[i][j], rows[i][j]];
        }),
        renderItem: errorBar
      });
    });
    CR.chart(box, option);
  }

  // answerOrder sorts an answer's rows by its first dimension (stably).
  function answerOrder(cols, rows) {
    var d = cols.map(function (c) { return c.kind; }).indexOf('dimension');
    var order = rows.map(function (r, i) { return i; });
    if (d < 0) return order;
    return order.sort(function (x, y) {
      var a = rows[x][d], b = rows[y][d];
      if (typeof a === 'number' && typeof b === 'number') return a - b || x - y;
      a = String(a);
      b = String(b);
      return a < b ? -1 : a > b ? 1 : x - y;
    });
  }

  function errorBar(params, api) {
    var x = api.value(0), lo = api.coord([x, api.value(1)]), hi = api.coord([x, api.value(2)]);
    var w = Math.min(10, api.size([1, 0])[0] * 0.15);
    var style = { stroke: '#222', lineWidth: 1.5 };
    return {
      type: 'group', children: [
        { type: 'line', shape: { x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1] }, style: style },
        { type: 'line', shape: { x1: lo[0] - w, y1: lo[1], x2: lo[0] + w, y2: lo[1] }, style: style },
        { type: 'line', shape: { x1: hi[0] - w, y1: hi[1], x2: hi[0] + w, y2: hi[1] }, style: style }
      ]
    };
  }
})();
