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

  // lineCol says where a byte offset of s falls, as a person counts: line
  // and column, from 1.
  function lineCol(s, pos) {
    var i = byteToIndex(s, pos), before = s.slice(0, i).split('\n');
    return 'line ' + before.length + ', column ' + (before[before.length - 1].length + 1);
  }

  // located is a refusal as the workbench shows it: the API's "at
  // position N" (a byte offset) said once, as a line and column of the
  // SQL.
  function located(e, text) {
    if (e.position === null || e.position === undefined) return e;
    var x = Object.create(e);
    x.message = String(e.message || '').replace(/\s*at position \d+/g, '');
    x.where = 'at ' + lineCol(text, e.position);
    return x;
  }

  // digitsApart is the fewest decimals (up to 12) at which each row's
  // value and interval bounds that differ also read differently: "1.52,
  // 95%: 1.47 – 1.57", never "1.5 95%: 1.5 – 1.5". One column shares it,
  // so its figures line up.
  function digitsApart(triples) {
    // At least three significant digits of each value, however close.
    var least = 0;
    triples.forEach(function (t) {
      if (t[0] && isFinite(t[0]) && !Number.isInteger(t[0])) least = Math.max(least, Math.min(12, 2 - Math.floor(Math.log10(Math.abs(t[0])))));
    });
    for (var d = least; d <= 12; d++) {
      var ok = triples.every(function (t) {
        for (var a = 0; a < 3; a++) {
          for (var b = a + 1; b < 3; b++) {
            if (t[a] !== t[b] && fixed(t[a], d) === fixed(t[b], d)) return false;
          }
        }
        return true;
      });
      if (ok) return d;
    }
    return 12;
  }
  function fixed(x, d) {
    return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  }

  // compareCells orders two answer cells: numbers by value, text by code
  // point, nulls last.
  function compareCells(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    a = String(a);
    b = String(b);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // fileName names a download by its collaboration and the time, in UTC:
  // measurement-2026-12-07T0312Z.csv.
  function fileName(co, format, now) {
    var base = String(co.name || co.id).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'answer';
    var t = now.toISOString();
    return base + '-' + t.slice(0, 10) + 'T' + t.slice(11, 13) + t.slice(14, 16) + 'Z.' + format;
  }

  // Arrow's type names as an analyst reads them.
  var typeNames = { utf8: 'text', large_utf8: 'text', int8: 'integer', int16: 'integer', int32: 'integer', int64: 'integer',
    uint8: 'integer', uint16: 'integer', uint32: 'integer', uint64: 'integer', float32: 'number', float64: 'number',
    bool: 'true/false', date32: 'date', date64: 'date' };
  function typeName(t) {
    if (!t) return 'not uploaded yet';
    if (typeNames[t]) return typeNames[t];
    if (/^timestamp/.test(t)) return 'timestamp';
    if (/^decimal/.test(t)) return 'number';
    return t;
  }

  CR.workbench = function (panel, co, alive) {
    var rules = co.rules || {}, base = '/v1/collaborations/' + encodeURIComponent(co.id);
    var allowed = co.queryable || { dimensions: rules.dimensions || [], metrics: rules.metrics || {} };
    var lo = rules.min_query_epsilon || 0.01, hi = rules.max_query_epsilon || 1;
    // The rules' default epsilon, as a query naming none would spend.
    var start = Math.min(hi, Math.max(lo, rules.default_query_epsilon || 0.09));
    // Who is who: one's own company named as such, the other as the
    // other party.
    var names = CR.partnerNames(co), ownID = CR.me.partner_id;
    var otherID = co.proposer === ownID ? co.partner : co.proposer;
    var ownName = names(ownID) + ' (your company)', otherName = 'the other party, ' + names(otherID);
    var sql = el('textarea', { test: 'sql', id: 'sql', rows: '7', spellcheck: 'false', 'aria-label': 'SQL', 'aria-describedby': 'sql-hint' });
    sql.value = exampleSQL(allowed);
    var mark = el('pre', { class: 'sql-mark', hidden: true });
    var epsErr = el('p', { class: 'small field-error', id: 'epsilon-error', test: 'epsilon-error', role: 'alert', hidden: true });
    var eps = el('input', { type: 'number', test: 'epsilon', id: 'epsilon', min: String(lo), max: String(hi), step: 'any', value: String(start),
      'aria-describedby': 'epsilon-bounds epsilon-error' });
    var range = el('input', { type: 'range', min: String(lo), max: String(hi), step: String((hi - lo) / 100 || lo), value: String(start), 'aria-label': 'epsilon' });
    eps.addEventListener('input', function () {
      if (checkEpsilon()) range.value = eps.value;
      budgetNote();
      schedulePreview();
    });
    range.addEventListener('input', function () { eps.value = String(Math.round(range.value * 1e6) / 1e6); checkEpsilon(); budgetNote(); schedulePreview(); });
    sql.addEventListener('input', function () { schedulePreview(); });
    // Ctrl+Enter (Cmd+Enter on a Mac) runs, as in other SQL editors.
    sql.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (!run.disabled) ask();
      }
    });
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
    var schemaBox = el('div', { test: 'schema' }, el('p', { class: 'muted', text: 'Loading…' }));
    var dlNote = el('span', { class: 'small muted', test: 'download-note' });
    // Why Run cannot run now, said beside it (a disabled button's title
    // reaches neither a keyboard nor a phone).
    var runReason = el('p', { class: 'small refusal-note', id: 'run-reason', test: 'run-reason', hidden: true });
    var run = el('button', { class: 'primary', test: 'run-query', text: 'Run', title: 'Run (Ctrl+Enter)', 'aria-describedby': 'run-reason', onclick: function () { ask(); } });
    var dlButtons = [
      el('button', { test: 'download-csv', text: 'CSV', title: 'Download the answer as CSV', onclick: function () { download('csv'); } }),
      el('button', { test: 'download-arrow', text: 'Arrow', title: 'Download the answer as an Arrow IPC stream', onclick: function () { download('arrow'); } })];
    var budget = null;
    // The reasons Run is off, by kind; the first one set is shown.
    var blocked = { state: null, cohort: null, epsilon: null, preview: null, asking: null };
    var tplRun = null;

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
        el('p', { class: 'small muted', id: 'sql-hint', text: 'Ctrl+Enter (⌘+Enter on a Mac) runs the question.' }),
        el('div', { class: 'controls' },
          el('label', { for: 'epsilon', text: 'ε to spend' }), eps, range, run,
          el('span', { class: 'spacer' }), dlButtons),
        el('p', { class: 'small muted', id: 'epsilon-bounds', text: 'From ε ' + CR.eps(lo) + ' to ' + CR.eps(hi) + ' a question, as the rules set (min_query_epsilon, max_query_epsilon); ' +
          'ε ' + CR.eps(start) + ' unless you choose.' }),
        epsErr, runReason, previewNote,
        el('p', { class: 'small muted' }, 'A download asks the question in the editor again: with the same plan and ε it is the stored answer, free; otherwise it is charged like Run. ' +
          'The file states the collaboration, the time, ε, δ and the noise (CSV: # lines before the header; Arrow: its metadata). ', dlNote)),
      el('section', { class: 'card budget' }, el('h3', { text: 'Budget' }), gauge, budgetFacts, note)));
    CR.append(panel, [result,
      el('section', { class: 'card' }, el('h3', { text: 'Your questions' }),
        el('p', { class: 'small muted', text: 'Open one (click, or Enter) to see its answer as it was, at the ε it was asked with: a stored answer is free. A refused one comes back to the editor.' }),
        history),
      el('section', { class: 'card schema' }, el('h3', { text: 'Tables and columns' }), schemaBox)]);

    if (co.state !== 'active') {
      blocked.state = co.state === 'deleted' ? 'This collaboration is deleted: nothing can be asked of it.' :
        'This collaboration is not active: its rules await the approval of both partners, so nothing can be asked yet.';
    }
    checkEpsilon();
    updateRun();
    loadBudget();
    loadHistory();
    loadSchema();
    schedulePreview();

    // updateRun turns Run (and the downloads and templates, which ask too)
    // on or off, saying why not.
    function updateRun() {
      var why = blocked.state || blocked.cohort || blocked.epsilon || blocked.preview || null;
      var off = !!(why || blocked.asking);
      run.disabled = off;
      dlButtons.forEach(function (b) { b.disabled = off; });
      if (tplRun) tplRun.disabled = off;
      runReason.hidden = !why;
      runReason.textContent = why ? 'Run is off: ' + why : '';
    }

    // checkEpsilon refuses an epsilon the rules do not allow, naming the
    // bound, before anything is asked.
    function checkEpsilon() {
      var raw = eps.value.trim(), v = Number(raw), msg = null;
      if (raw === '' || isNaN(v)) msg = 'Give ε as a number from ' + CR.eps(lo) + ' to ' + CR.eps(hi) + '.';
      else if (v < lo) msg = 'ε ' + raw + ' is below the rules\' minimum for one question, ε ' + CR.eps(lo) + ' (min_query_epsilon).';
      else if (v > hi) msg = 'ε ' + raw + ' is above the rules\' maximum for one question, ε ' + CR.eps(hi) + ' (max_query_epsilon).';
      else if (Math.abs(v * 1e6 - Math.round(v * 1e6)) > 1e-6) msg = 'ε is counted in millionths: give at most six decimals.';
      epsErr.hidden = !msg;
      epsErr.textContent = msg || '';
      if (msg) eps.setAttribute('aria-invalid', 'true');
      else eps.removeAttribute('aria-invalid');
      blocked.epsilon = msg ? 'the ε to spend is outside what the rules allow (see above).' : null;
      updateRun();
      return !msg;
    }

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
      tplRun = el('button', { test: 'run-template', text: 'Run template', 'aria-describedby': 'run-reason', onclick: function () {
        var params = {};
        Object.keys(fields).forEach(function (k) { if (fields[k].value !== '') params[k] = fields[k].value; });
        ask({ name: pick.value, params: params });
      } });
      return el('div', { class: 'templates' }, el('h4', { text: 'Templates' }), pick, about, inputs, tplRun);
    }

    function schedulePreview() {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(preview, 250);
    }

    async function preview() {
      var seq = ++previewSeq;
      if (blocked.epsilon || blocked.state) {
        // Nothing to ask: the reason beside Run says why.
        previewNote.textContent = '';
        return;
      }
      var pv;
      try {
        pv = await CR.api('POST', base + '/queries/preview', { body: { sql: sql.value, epsilon: epsilon() } });
      } catch (e) {
        return; // the preview is advice: Run still answers for itself
      }
      if (!alive() || seq !== previewSeq) return;
      if (pv.refusal) {
        var r = located(pv.refusal, sql.value);
        blocked.preview = r.code === 'no_cohort' ? noCohort() : spent(r.code) ? 'the privacy budget of ' + ownName + ' here is spent (below: when it refreshes, and who can raise it).' :
          'the question would be refused (' + r.code + ', below).';
        updateRun();
        if (r.code === 'no_cohort') {
          previewNote.textContent = ''; // the reason beside Run says it
          return;
        }
        previewNote.className = 'small refusal-note';
        previewNote.textContent = 'Run would be refused (' + r.code + '): ' + r.message + (r.where ? ' (' + r.where + ')' : '');
        if (spent(r.code)) previewNote.appendChild(budgetAdvice(r.code, refreshes(r.message)));
        return;
      }
      blocked.preview = null;
      updateRun();
      previewNote.className = 'small muted';
      var widths = (pv.columns || []).map(function (c) {
        return c.name + ' ±' + CR.num(Math.round(c.half_width * 100) / 100) + (c.kind === 'avg' ? ' (for ' + CR.num(pv.group_users) + ' people)' : '');
      }).join(', ');
      previewNote.textContent = (pv.cached ? 'Asked before: Run returns the stored answer, free. ' :
        'Run would spend ε ' + CR.eps(pv.epsilon) + (pv.delta ? ', δ ' + CR.eps(pv.delta) : '') + '. ') +
        (widths ? '95% intervals about ' + widths + '.' : '');
    }

    function noCohort() {
      return 'there is no cohort yet. Both partners\' engineers upload their tables, then one runs the match; questions can be asked once it has completed.';
    }

    function epsilon() {
      var v = parseFloat(eps.value);
      return isNaN(v) ? 0 : Math.round(v * 1e6) / 1e6; // the ledger counts millionths
    }

    // loadSchema shows every table and column questions may name, with
    // its type, role and bounds, and turns Run off until a cohort exists.
    function loadSchema() {
      return CR.guard(alive, schemaBox, CR.api('GET', base + '/schema').then(function (sc) {
        if (!alive()) return;
        blocked.cohort = sc.cohort || blocked.state ? null : noCohort();
        updateRun();
        CR.clear(schemaBox);
        if (!(sc.tables || []).length) {
          schemaBox.appendChild(el('p', { class: 'muted', text: 'No table yet: the rules declare none and neither partner has uploaded one.' }));
          return;
        }
        sc.tables.forEach(function (t) {
          var whose = t.partner_id === ownID ? ownName : names(t.partner_id);
          CR.append(schemaBox, [
            el('h4', null, whose + ' · ', el('code', { text: t.table }), t.uploaded ? null : el('span', { class: 'muted', text: ' (declared, not uploaded yet)' })),
            el('div', { class: 'scroll' }, CR.table({ class: 'data schema-table', test: 'schema-table', 'data-table': t.table }, ['Column (as queries name it)', 'Type', 'Use', 'Per-person bounds'],
              t.columns.map(function (c) {
                return el('tr', { test: 'schema-column', 'data-name': c.name },
                  CR.td(el('code', { text: c.name })),
                  CR.td(el('span', { title: c.type || '', text: typeName(c.type) })),
                  CR.td(c.role === 'metric' ? 'metric: SUM, AVG…' : c.role === 'time' ? 'time: group, filter, date_diff' : c.role === 'dimension' ? 'dimension: group, filter' :
                    el('span', { class: 'muted', text: 'not allowed by the rules' })),
                  CR.td(c.bounds ? CR.num(c.bounds[0]) + ' to ' + CR.num(c.bounds[1]) : '–'));
              })))
          ]);
        });
      }));
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
          el('dt', { text: 'Whose' }), el('dd', { test: 'budget-whose', text: ownName + '; ' + otherName + ', has a budget of its own.' }),
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
            // Four divisions: ten crowd their labels on a budget such as 10.2.
            type: 'gauge', min: 0, max: own.epsilon_budget, splitNumber: 4, startAngle: 200, endAngle: -20, radius: '95%', center: ['50%', '60%'],
            progress: { show: true, width: 14, itemStyle: { color: used > 0.9 ? '#b8464b' : used > 0.7 ? '#e07b39' : '#2f6fb0' } },
            axisLine: { lineStyle: { width: 14 } }, axisTick: { show: false }, splitLine: { length: 6, distance: 2 },
            axisLabel: { distance: 18, fontSize: 10, formatter: function (v) { return CR.eps(Number(v.toPrecision(3))); } },
            pointer: { show: false }, anchor: { show: false }, title: { offsetCenter: [0, '30%'], fontSize: 12 },
            detail: { valueAnimation: false, offsetCenter: [0, '-5%'], fontSize: 20, formatter: function (v) { return 'ε ' + CR.eps(v); } },
            data: [{ value: own.epsilon_spent, name: 'spent of ' + CR.eps(own.epsilon_budget) }]
          }]
        };
        CR.disposeIn(gauge);
        CR.chart(gauge, opt);
      }));
    }

    // budgetNote says what a new question would leave, for an epsilon the
    // rules allow only: an impossible one has its own message.
    function budgetNote() {
      if (!budget) return;
      CR.clear(note);
      if (blocked.epsilon) return;
      var left = budget.epsilon_remaining - epsilon();
      note.textContent = left < 0 ? 'Not enough budget left for ε ' + CR.eps(epsilon()) + ': ' + ownName + ' has ε ' + CR.eps(budget.epsilon_remaining) + ' left.' :
        'Running a new question at ε ' + CR.eps(epsilon()) + ' would leave ' + ownName + ' ε ' + CR.eps(Math.round(left * 1e6) / 1e6) + '; the stored answer of a question asked before is free.';
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
      return el('span', { class: 'budget-advice', test: 'budget-advice' }, 'The privacy budget of ' + ownName + ' here is spent. ' + when +
        ' ' + names(ownID) + '\'s admin can raise it by proposing a change of the rules (' + rule + '), which ' + otherName + ', approves.');
    }

    function loadHistory() {
      return CR.guard(alive, history, CR.api('GET', base + '/queries', { query: { limit: 50 } }).then(function (h) {
        if (!alive()) return;
        CR.clear(history);
        var qs = h.queries || [];
        if (!qs.length) history.appendChild(el('li', { class: 'muted', text: 'No question yet.' }));
        qs.forEach(function (q) {
          var what = q.outcome === 'cached' ? 'ε ' + CR.eps(q.epsilon) + ' · free: the stored answer' : q.outcome === 'refused' ? (q.code || 'refused') + (q.reason ? ': ' + q.reason : '') :
            'ε ' + CR.eps(q.epsilon) + (q.rows !== undefined ? ' · ' + CR.plural(q.rows, 'row') : '');
          var open = function () { reopen(q); };
          history.appendChild(el('li', { class: 'history-item ' + q.outcome, test: 'history-item', 'data-outcome': q.outcome, 'data-seq': String(q.audit_seq), tabindex: '0',
            title: q.outcome === 'refused' ? 'Back to the editor' : 'Open this answer',
            onclick: open, onkeydown: function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } } },
            el('span', { class: 'badge ' + q.outcome, text: q.outcome === 'cached' ? 'free' : q.outcome }),
            el('span', { class: 'small muted', text: CR.time(q.at) }),
            el('code', { text: q.sql }),
            el('span', { class: 'small', text: what })));
        });
      }));
    }

    // reopen shows a past answer as it was, at its own epsilon: the
    // stored answer, free. cached_only makes sure of it: an answer no
    // longer stored (a deletion or a new match changed the cohort since)
    // is refused, never asked again behind the analyst's back, and its
    // question goes back to the editor with what Run would cost. A
    // refused question goes back to the editor.
    async function reopen(q) {
      sql.value = q.sql;
      if (q.epsilon) {
        eps.value = String(q.epsilon);
        if (checkEpsilon()) range.value = eps.value;
        budgetNote();
      }
      schedulePreview();
      if (q.outcome === 'refused') {
        sql.focus();
        return;
      }
      mark.hidden = true;
      CR.clear(result).appendChild(el('p', { class: 'muted', text: 'Opening the answer of ' + CR.time(q.at) + '…' }));
      try {
        var a = await CR.api('POST', base + '/queries', { body: { sql: q.sql, epsilon: q.epsilon, cached_only: true } });
        if (!alive()) return;
        showAnswer(a, q);
      } catch (e) {
        if (!alive() || e.status === 401) return;
        if (e.code !== 'not_stored') return showRefusal(e);
        var gone = el('p', null, 'The question of ' + CR.time(q.at) + ' is back in the editor. The cohort has changed since it was asked (a deletion or a new match), so its answer is no longer stored: Run asks it anew, charged.');
        CR.clear(result).appendChild(el('section', { class: 'card', test: 'reopen-gone' }, el('h3', { text: 'That answer is no longer stored' }), gone));
        sql.focus();
        return;
      }
      loadBudget();
      loadHistory();
    }

    function showRefusal(e) {
      var r = located(e, sql.value);
      CR.clear(result).appendChild(el('section', { class: 'card' }, CR.errorBox(r, 'refusal'),
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
      blocked.asking = true;
      updateRun();
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
        blocked.asking = null;
        updateRun();
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
        var name = fileName(co, format, new Date());
        var a = el('a', { href: url, download: name });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        dlNote.textContent = (cached ? 'Downloaded ' + name + ': the stored answer, free.' :
          'Downloaded ' + name + ': a new answer, charged ε ' + CR.eps(parseFloat(res.headers.get('Cleanroom-Epsilon'))) + '.');
      } catch (e) {
        if (e.status === 401) return;
        dlNote.textContent = '';
        showRefusal(e);
      }
      if (!alive()) return;
      loadBudget();
      loadHistory();
    }

    // showAnswer shows an answer: a table sorted by its grouping columns
    // (a header sorts by its column), each aggregate with its 95%
    // interval at the digits that tell value and bounds apart, and a
    // chart. from is the history entry it was reopened from, if any.
    function showAnswer(a, from) {
      var cols = a.columns || [], allRows = a.rows || [], allIv = a.intervals || [];
      // Rows in the chart's order: grouped by the dimensions.
      var order = answerOrder(cols, allRows);
      var rows = order.map(function (i) { return allRows[i]; });
      var iv = order.map(function (i) { return allIv[i] || []; });
      var digits = cols.map(function (c, j) {
        if (c.kind === 'dimension') return 0;
        return digitsApart(rows.map(function (r, i) {
          var ci = iv[i][j];
          return ci ? [r[j], ci.lower, ci.upper] : [r[j], r[j], r[j]];
        }).filter(function (t) { return typeof t[0] === 'number'; }));
      });
      var chart = el('div', { class: 'chart answer', test: 'answer-chart' });
      var heads = cols.map(function (c) { return c.name + (c.kind === 'dimension' ? '' : ' (' + c.kind + ')'); });
      var sortCol = cols.map(function (c) { return c.kind; }).indexOf('dimension'), sortDir = 1;
      var tbody = el('tbody');
      var ths = heads.map(function (h, j) {
        return el('th', { scope: 'col', 'aria-sort': 'none' },
          el('button', { type: 'button', class: 'sort', test: 'sort-' + cols[j].name, onclick: function () { sortBy(j, sortCol === j ? -sortDir : 1); } },
            h, el('span', { class: 'sort-mark', 'aria-hidden': 'true' })));
      });
      var table = el('table', { class: 'data sortable', test: 'answer-table' }, el('thead', null, el('tr', null, ths)), tbody);
      // A phone shows the table as cards, without its header: a menu sorts.
      var sortPick = el('select', { test: 'answer-sort', 'aria-label': 'Sort the answer by', onchange: function () {
        var v = sortPick.value.split(':');
        sortBy(+v[0], +v[1]);
      } }, cols.map(function (c, j) {
        return [el('option', { value: j + ':1', text: 'Sort by ' + c.name + ', ascending' }), el('option', { value: j + ':-1', text: 'Sort by ' + c.name + ', descending' })];
      }));
      function cellsOf(r, i) {
        return cols.map(function (c, j) {
          if (c.kind === 'dimension') return el('td', { 'data-label': heads[j] }, r[j] === null ? '(null)' : String(r[j]));
          var ci = iv[i][j], v = typeof r[j] === 'number' ? fixed(r[j], digits[j]) : CR.num(r[j]);
          return el('td', { class: 'n', 'data-label': heads[j] }, v,
            ci ? el('span', { class: 'ci', text: ', 95%: ' + fixed(ci.lower, digits[j]) + ' – ' + fixed(ci.upper, digits[j]) }) : null);
        });
      }
      function sortBy(j, dir) {
        var idx = rows.map(function (r, i) { return i; });
        if (j >= 0) {
          idx.sort(function (x, y) { return dir * compareCells(rows[x][j], rows[y][j]) || x - y; });
        }
        sortCol = j;
        sortDir = dir;
        ths.forEach(function (th, k) {
          th.setAttribute('aria-sort', k === j ? (dir > 0 ? 'ascending' : 'descending') : 'none');
          th.querySelector('.sort-mark').textContent = k === j ? (dir > 0 ? ' ▲' : ' ▼') : '';
        });
        if (j >= 0) sortPick.value = j + ':' + dir;
        CR.clear(tbody);
        idx.forEach(function (i) { tbody.appendChild(el('tr', null, cellsOf(rows[i], i))); });
      }
      sortBy(sortCol, 1);
      if (sortCol < 0) ths.forEach(function (th) { th.setAttribute('aria-sort', 'none'); });
      var summary = el('p', { class: 'answer-summary', test: 'answer-summary' },
        a.cached ? el('span', { class: 'badge cached', text: 'free' }) : el('span', { class: 'badge answered', text: 'charged' }), ' ',
        from ? 'The answer of ' + CR.time(from.at) + ', as it was: released at ε ' + CR.eps(a.epsilon) + (a.delta ? ', δ ' + CR.eps(a.delta) : '') + '; opened again free. ' :
          a.cached ? 'The stored answer to this question, released at ε ' + CR.eps(a.epsilon) + ': nothing was charged now. ' :
            'Charged ε ' + CR.eps(a.epsilon) + (a.delta ? ', δ ' + CR.eps(a.delta) : '') + '. ',
        CR.plural(rows.length, 'row') + ', ' + a.noise + ' noise; ' + ownName + ' has ε ' + CR.eps(a.budget_remaining) + ' left; the collaboration has spent ε ' +
        CR.eps(a.collaboration_epsilon_spent) + ' in all, by both partners.');
      CR.clear(result);
      CR.append(result, el('section', { class: 'card', test: 'answer', 'data-epsilon': String(a.epsilon), 'data-cached': String(!!a.cached) },
        el('h3', { text: from ? 'Answer of ' + CR.time(from.at) : 'Answer' }), summary,
        el('div', { class: 'answer-grid' }, chart, el('div', { class: 'scroll' }, el('div', { class: 'phone-only' }, sortPick), table))));
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

  // answerOrder sorts an answer's rows by its grouping columns, in
  // order (stably).
  function answerOrder(cols, rows) {
    var dims = [];
    cols.forEach(function (c, j) { if (c.kind === 'dimension') dims.push(j); });
    return rows.map(function (r, i) { return i; }).sort(function (x, y) {
      for (var k = 0; k < dims.length; k++) {
        var c = compareCells(rows[x][dims[k]], rows[y][dims[k]]);
        if (c) return c;
      }
      return x - y;
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
