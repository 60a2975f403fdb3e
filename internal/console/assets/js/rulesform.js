// The rules form: an admin proposes a collaboration (#/collab/new) or a
// change of its rules (#/collab/ID/rules) through the API the CLI uses
// (POST /v1/collaborations, PUT .../rules). It offers the columns of
// both parties' uploaded tables (GET .../schema), says what each rule
// means, checks as the admin types what the server would refuse (a
// column no party has, with the nearest name; bounds; budgets; who may
// ask; the JSON of public groups and templates, with the line and column
// of a syntax error), and shows the JSON it will send. The server checks
// everything again.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;

  var MAX_BOUND = 1e15; // wire.MaxMetricBound
  var UNIT = 1e-6; // wire.EpsilonUnit: epsilons are whole millionths
  var NAME = /^[a-z][a-z0-9_]{0,62}$/; // wire.ColumnNamePattern

  // prefixOf is partners.prefixOf: a partner's name as a column prefix.
  function prefixOf(name) {
    var s = String(name || '').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 20);
    return /^[a-z]/.test(s) ? s : '';
  }
  // prefixes are partners.NamingOf's: a_ and b_ when a name gives none or
  // both give the same.
  function prefixes(a, b) {
    var p = [prefixOf(a), prefixOf(b)];
    if (!p[0] || !p[1] || p[0] === p[1]) p = ['a', 'b'];
    return [p[0] + '_', p[1] + '_'];
  }

  // editDistance and nearest are partners' (rulecols.go): the same
  // suggestion in the form as in the server's refusal.
  function editDistance(a, b) {
    var prev = [], cur = [], i, j;
    for (j = 0; j <= b.length; j++) prev[j] = j;
    for (i = 1; i <= a.length; i++) {
      cur = [i];
      for (j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1), prev[j] + 1, cur[j - 1] + 1);
      prev = cur;
    }
    return prev[b.length];
  }
  function nearest(name, cands, pre) {
    var bare = function (s) {
      for (var i = 0; i < pre.length; i++) if (s.indexOf(pre[i]) === 0) return s.slice(pre[i].length);
      return s;
    };
    var limit = Math.max(2, Math.floor(bare(name).length / 3));
    return cands.map(function (c) {
      var d = c.slice(-name.length - 1) === '_' + name ? 0 : Math.min(editDistance(name, c), editDistance(bare(name), bare(c)) + 1);
      return { c: c, d: d };
    }).filter(function (x) { return x.d <= limit; }).sort(function (x, y) { return x.d - y.d; }).slice(0, 3).map(function (x) { return x.c; });
  }

  // guessRole is a role for an uploaded column of an Arrow type.
  function guessRole(type) {
    if (/^(date|timestamp)/.test(type || '')) return 'time';
    if (/^(u?int|float|double|decimal)/.test(type || '')) return 'metric';
    return 'dimension';
  }

  function clone(x) { return JSON.parse(JSON.stringify(x)); }
  var uid = 0;
  function id(p) { return 'rf-' + p + '-' + (++uid); }

  // CR.rulesForm draws the form in panel: co is the collaboration whose
  // rules change, or null to propose one.
  CR.rulesForm = function (panel, co, alive) {
    CR.clear(panel).appendChild(el('p', { class: 'muted', text: 'Loading…' }));
    if (!CR.can('approve')) {
      CR.clear(panel).appendChild(el('p', { class: 'card muted', text: 'Only a partner\'s admin proposes and changes rules.' }));
      return Promise.resolve();
    }
    var base = co ? '/v1/collaborations/' + encodeURIComponent(co.id) : '';
    return Promise.all([
      // The defaults of every rule, from the server's own wire.DefaultRules.
      fetch('/console/rules-defaults.json', { cache: 'no-store' }).then(function (r) {
        if (!r.ok) throw new Error('could not load the rules\' defaults (' + r.status + '); reload the page');
        return r.json();
      }),
      co ? CR.api('GET', base + '/schema') : null,
      co ? null : CR.api('GET', '/v1/partners')
    ]).then(function (x) {
      if (!alive()) return;
      draw(panel, co, base, x[0], x[1], x[2] ? (x[2].partners || []).filter(function (p) { return p.id !== CR.me.partner_id; }) : null);
    });
  };

  function draw(panel, co, base, defaults, schema, partners) {
    var rules = clone(co ? co.rules : defaults);
    Object.keys(defaults).forEach(function (k) { if (!(k in rules)) rules[k] = clone(defaults[k]); });
    var meta = { name: '', partner: partners && partners.length ? partners[0].id : '' };
    var fields = []; // {key, input, msg, note}: checked on every change
    var summary = el('div', { class: 'rf-summary', test: 'rules-problems', 'aria-live': 'polite' });
    var preview = el('pre', { class: 'json', test: 'rules-preview', tabindex: '0', 'aria-label': 'The JSON the console will send' });
    var sendBox = el('div');

    // Each party's name, prefix and tables (uploaded, or declared by the
    // rules in force: a change only), each column as its table names it
    // (name) and as rules do (column).
    var party = function (i) {
      var other = (partners || []).filter(function (p) { return p.id === meta.partner; })[0];
      var names = co ? [co.proposer_name || co.proposer, co.partner_name || co.partner] : [CR.me.partner_name || CR.me.partner_id, other ? other.name : ''];
      var pre = prefixes(names[0], names[1]);
      var pid = co ? [co.proposer, co.partner][i] : null;
      var tables = ((schema && schema.tables) || []).filter(function (t) { return t.partner_id === pid; }).map(function (t) {
        return { name: t.table, uploaded: t.uploaded, columns: t.columns.map(function (c) {
          // The server's own prefix, where a column shows it.
          if (c.name.length > c.column.length && c.name.slice(-c.column.length) === c.column) pre[i] = c.name.slice(0, c.name.length - c.column.length);
          return { name: c.column, column: c.name, type: c.type };
        }) };
      });
      return { party: ['proposer', 'partner'][i], partner_name: names[i] || 'the partner', prefix: pre[i], tables: tables };
    };
    var uploaded = function (i) { return (party(i).tables || []).filter(function (t) { return t.uploaded; }); };

    // known is what the server checks names against (partners.checkColumnNames).
    function known() {
      var k = { names: [], open: [false, false], pre: [party(0).prefix, party(1).prefix] };
      var declared = rules.tables.length > 0;
      [0, 1].forEach(function (i) {
        var p = ['proposer', 'partner'][i];
        if (declared) {
          rules.tables.filter(function (t) { return t.party === p; }).forEach(function (t) {
            t.columns.forEach(function (c) { if (c.name) k.names.push(k.pre[i] + c.name); });
          });
        } else {
          var up = uploaded(i);
          up.forEach(function (t) { t.columns.forEach(function (c) { k.names.push(c.column); }); });
          k.open[i] = !up.length;
        }
      });
      return k;
    }
    // columnProblem says why name is no column of the cohort, with the
    // nearest names, or '' when a party has it.
    function columnProblem(name) {
      if (!NAME.test(name)) return '"' + name + '" is not a column name: lower-case letters, digits and _, starting with a letter.';
      var k = known();
      if (k.names.indexOf(name) >= 0) return '';
      for (var i = 0; i < 2; i++) if (k.open[i] && name.indexOf(k.pre[i]) === 0 && name.length > k.pre[i].length) return '';
      var prefixed = name.indexOf(k.pre[0]) === 0 || name.indexOf(k.pre[1]) === 0;
      var cands = k.names.slice();
      [0, 1].forEach(function (i) { if (k.open[i] && !prefixed) cands.push(k.pre[i] + name); });
      var near = nearest(name, cands, k.pre);
      return '"' + name + '" is no column of the cohort' +
        (prefixed ? '' : ': a column is named behind its partner\'s prefix (' + k.pre.join(', ') + ')') +
        (near.length ? '; did you mean ' + near.map(function (s) { return '"' + s + '"'; }).join(' or ') + '?' : k.names.length ? '; the columns are ' + k.names.join(', ') + '.' : '.');
    }

    // openNote says of a name accepted only because its party has
    // uploaded nothing yet that its upload decides; '' otherwise.
    function openNote(name) {
      var k = known();
      if (!name || k.names.indexOf(name) >= 0) return '';
      for (var i = 0; i < 2; i++) {
        if (k.open[i] && name.indexOf(k.pre[i]) === 0) return 'No column yet: ' + party(i).partner_name + ' has uploaded nothing, so its upload must bring ' + name.slice(k.pre[i].length) + '.';
      }
      return '';
    }

    // ---- Inputs ----
    function field(label, input, key, hint) {
      var msg = el('span', { class: 'rf-msg', id: id('msg') });
      var note = el('span', { class: 'small muted rf-note', id: id('note') });
      input.setAttribute('aria-describedby', note.id + ' ' + msg.id);
      if (!input.id) input.id = id('in');
      fields.push({ key: key, input: input, msg: msg, note: note });
      return el('div', { class: 'rf-field' }, el('label', { for: input.id }, label), input, hint ? el('span', { class: 'small muted', text: hint }) : null, note, msg);
    }
    function numberInput(key, step) {
      return el('input', { type: 'number', step: step || 'any', test: 'rf-' + key, value: String(rules[key]), class: 'rf-num',
        oninput: function (e) { rules[key] = e.target.value === '' ? null : Number(e.target.value); refresh(); } });
    }

    var head = co ? null : el('section', { class: 'card' }, el('h3', { text: 'The collaboration' }),
      el('div', { class: 'rf-grid' },
        field('Name', el('input', { type: 'text', test: 'rf-name', maxlength: '200', oninput: function (e) { meta.name = e.target.value; refresh(); } }), 'name'),
        field('Partner', partnerSelect(), 'partner')));
    function partnerSelect() {
      var s = el('select', { test: 'rf-partner', onchange: function (e) { meta.partner = e.target.value; drawTables(); drawQueriers(); syncQueriers(); refresh(); } },
        (partners || []).map(function (p) { return el('option', { value: p.id, text: p.name }); }));
      return s;
    }

    var basics = el('section', { class: 'card' }, el('h3', { text: 'Who matches' }), el('div', { class: 'rf-grid' },
      field(CR.ruleName('purpose'), el('input', { type: 'text', test: 'rf-purpose', value: rules.purpose, oninput: function (e) { rules.purpose = e.target.value.trim(); refresh(); } }), 'purpose'),
      field(CR.ruleName('id_type'), el('select', { test: 'rf-id_type', onchange: function (e) { rules.id_type = e.target.value; refresh(); } },
        ['email', 'phone', 'maid'].map(function (v) { return el('option', { value: v, text: v, selected: v === rules.id_type }); })), 'id_type'),
      field(CR.ruleName('gmail_rule'), el('input', { type: 'checkbox', test: 'rf-gmail_rule', checked: !!rules.gmail_rule, onchange: function (e) { rules.gmail_rule = e.target.checked; refresh(); } }), 'gmail_rule')));

    // ---- Tables ----
    var tablesBox = el('section', { class: 'card', test: 'rf-tables' });
    function drawTables() {
      CR.clear(tablesBox);
      fields = fields.filter(function (f) { return f.key.indexOf('table') !== 0; });
      CR.append(tablesBox, [el('h3', { text: 'Tables each party brings' }),
        el('p', { class: 'small muted', text: 'Declare each table, its columns and what analysts may do with each: group and filter (dimension), ' +
          'group and filter on dates (time), or sum and average within per-person bounds (metric). An upload must have exactly the declared columns. ' +
          'Without declared tables each party brings one table, audience, and analysts use the dimensions and metrics below.' })]);
      var grid = el('div', { class: 'grid2' });
      [0, 1].forEach(function (i) {
        var p = party(i), pname = ['proposer', 'partner'][i];
        var list = 'rf-cols-' + i;
        var dl = el('datalist', { id: list }, uploaded(i).map(function (t) {
          return t.columns.map(function (c) { return el('option', { value: c.name, label: t.name + ': ' + (c.type || '') }); });
        }));
        var card = el('div', { class: 'audience', test: 'rf-party', 'data-party': pname },
          el('h4', null, p.partner_name, el('span', { class: 'muted', text: ' (' + pname + (i === 0 && !co ? ', you' : '') + '; analysts name its columns ' + p.prefix + '…)' })), dl);
        rules.tables.forEach(function (t, ti) {
          if (t.party === pname) card.appendChild(tableEditor(t, ti, list, i));
        });
        uploaded(i).forEach(function (u) {
          if (rules.tables.some(function (t) { return t.party === pname && t.name === u.name; })) return;
          card.appendChild(el('p', { class: 'small' }, 'Uploaded: table ', el('code', { text: u.name }), ' (' + u.columns.map(function (c) { return c.name; }).join(', ') + ') ',
            el('button', { type: 'button', test: 'rf-declare-uploaded', text: 'Declare it', onclick: function () {
              rules.tables.push({ party: pname, name: u.name, columns: u.columns.map(function (c) {
                var r = guessRole(c.type), col = { name: c.name, role: r };
                if (r === 'metric') col.bounds = [0, 100];
                return col;
              }) });
              drawTables(); refresh();
            } })));
        });
        card.appendChild(el('button', { type: 'button', test: 'rf-add-table', text: 'Add a table', onclick: function () {
          rules.tables.push({ party: pname, name: '', columns: [{ name: '', role: 'dimension' }] });
          drawTables(); refresh();
          var ins = card.querySelectorAll('.rf-table-name');
          if (ins.length) ins[ins.length - 1].focus();
        } }));
        grid.appendChild(card);
      });
      tablesBox.appendChild(grid);
    }
    function tableEditor(t, ti, list, side) {
      var tname = el('input', { type: 'text', class: 'rf-table-name', test: 'rf-table-name', value: t.name, oninput: function (e) { t.name = e.target.value.trim(); refresh(); } });
      var box = el('div', { class: 'table-card rf-table', test: 'rf-table' },
        field('Table', tname, 'table:' + ti + ':name'),
        el('div', { class: 'rf-cols' }, t.columns.map(function (c, ci) { return columnEditor(t, c, ci, ti, list); })),
        el('div', { class: 'toolbar' },
          el('button', { type: 'button', test: 'rf-add-column', text: 'Add a column', onclick: function () { t.columns.push({ name: '', role: 'dimension' }); drawTables(); refresh(); } }),
          el('button', { type: 'button', text: 'Remove the table', onclick: function () { rules.tables.splice(rules.tables.indexOf(t), 1); drawTables(); refresh(); } })));
      return box;
    }
    function columnEditor(t, c, ci, ti, list) {
      var where = (t.name || 'new table') + ', column ' + (ci + 1);
      var name = el('input', { type: 'text', list: list, test: 'rf-col-name', value: c.name, 'aria-label': where + ': name',
        oninput: function (e) { c.name = e.target.value.trim(); refresh(); } });
      var lo = el('input', { type: 'number', step: 'any', test: 'rf-col-lo', 'aria-label': where + ': lower bound', value: c.bounds ? String(c.bounds[0]) : '',
        oninput: function (e) { if (c.role === 'metric') c.bounds = [e.target.value === '' ? null : Number(e.target.value), c.bounds ? c.bounds[1] : null]; refresh(); } });
      var hi = el('input', { type: 'number', step: 'any', test: 'rf-col-hi', 'aria-label': where + ': upper bound', value: c.bounds ? String(c.bounds[1]) : '',
        oninput: function (e) { if (c.role === 'metric') c.bounds = [c.bounds ? c.bounds[0] : null, e.target.value === '' ? null : Number(e.target.value)]; refresh(); } });
      var bounds = el('span', { class: 'rf-bounds', hidden: c.role !== 'metric' }, lo, el('span', { 'aria-hidden': 'true', text: ' to ' }), hi);
      var role = el('select', { test: 'rf-col-role', 'aria-label': where + ': role', onchange: function (e) {
        c.role = e.target.value;
        if (c.role === 'metric') { c.bounds = c.bounds || [0, 100]; lo.value = String(c.bounds[0]); hi.value = String(c.bounds[1]); } else delete c.bounds;
        bounds.hidden = c.role !== 'metric';
        refresh();
      } }, ['dimension', 'time', 'metric'].map(function (r) { return el('option', { value: r, text: r, selected: r === c.role }); }));
      var msg = el('span', { class: 'rf-msg', id: id('msg') });
      [name, lo, hi].forEach(function (x) { x.setAttribute('aria-describedby', msg.id); });
      fields.push({ key: 'table:' + ti + ':col:' + ci, input: name, msg: msg, col: c, table: t });
      return el('div', { class: 'rf-col', test: 'rf-col' }, name, role, bounds,
        el('button', { type: 'button', class: 'link-button', text: 'Remove', 'aria-label': 'Remove ' + where, onclick: function () { t.columns.splice(ci, 1); drawTables(); refresh(); } }),
        msg);
    }

    // ---- Dimensions and metrics named as the cohort names them ----
    var colsBox = el('section', { class: 'card', test: 'rf-queryable' });
    var metricList = Object.keys(rules.metrics || {}).map(function (m) { return { name: m, bounds: rules.metrics[m].slice() }; });
    function syncMetrics() {
      rules.metrics = {};
      metricList.forEach(function (m) { if (m.name) rules.metrics[m.name] = m.bounds; });
    }
    function drawCols() {
      CR.clear(colsBox);
      fields = fields.filter(function (f) { return f.key.indexOf('dim') !== 0 && f.key.indexOf('metric') !== 0; });
      var names = el('datalist', { id: 'rf-cohort-names' });
      CR.append(colsBox, [el('h3', { text: 'Dimensions and metrics' }),
        el('p', { class: 'small muted', text: 'Columns as analysts name them, behind their partner\'s prefix. Declared tables\' columns are queryable already; ' +
          'list here the columns of tables the rules do not declare.' }), names,
        el('h4', { text: 'Dimensions (group and filter)' }),
        rules.dimensions.map(function (d, di) {
          var inp = el('input', { type: 'text', list: 'rf-cohort-names', test: 'rf-dimension', value: d, 'aria-label': 'Dimension ' + (di + 1),
            oninput: function (e) { rules.dimensions[di] = e.target.value.trim(); refresh(); } });
          var msg = el('span', { class: 'rf-msg', id: id('msg') }), hint = el('span', { class: 'rf-hint small muted', id: id('hint') });
          inp.setAttribute('aria-describedby', msg.id + ' ' + hint.id);
          fields.push({ key: 'dim:' + di, input: inp, msg: msg, hint: hint, name: function () { return rules.dimensions[di]; } });
          return el('div', { class: 'rf-col' }, inp, el('button', { type: 'button', class: 'link-button', text: 'Remove', 'aria-label': 'Remove dimension ' + (di + 1),
            onclick: function () { rules.dimensions.splice(di, 1); drawCols(); refresh(); } }), msg, hint);
        }),
        el('button', { type: 'button', test: 'rf-add-dimension', text: 'Add a dimension', onclick: function () {
          rules.dimensions.push(''); drawCols(); refresh();
          var ins = colsBox.querySelectorAll(sel('rf-dimension'));
          ins[ins.length - 1].focus();
        } }),
        el('h4', { text: 'Metrics (sum and average, each person within bounds)' }),
        metricList.map(function (m, mi) {
          var where = 'Metric ' + (mi + 1);
          var inp = el('input', { type: 'text', list: 'rf-cohort-names', test: 'rf-metric', value: m.name, 'aria-label': where + ': name',
            oninput: function (e) { m.name = e.target.value.trim(); syncMetrics(); refresh(); } });
          var num = function (j, label) {
            return el('input', { type: 'number', step: 'any', 'aria-label': where + ': ' + label, value: String(m.bounds[j]),
              oninput: function (e) { m.bounds[j] = e.target.value === '' ? null : Number(e.target.value); syncMetrics(); refresh(); } });
          };
          var msg = el('span', { class: 'rf-msg', id: id('msg') }), hint = el('span', { class: 'rf-hint small muted', id: id('hint') });
          inp.setAttribute('aria-describedby', msg.id + ' ' + hint.id);
          fields.push({ key: 'metric:' + mi, input: inp, msg: msg, hint: hint, name: function () { return m.name; } });
          return el('div', { class: 'rf-col' }, inp, el('span', { class: 'rf-bounds' }, num(0, 'lower bound'), el('span', { 'aria-hidden': 'true', text: ' to ' }), num(1, 'upper bound')),
            el('button', { type: 'button', class: 'link-button', text: 'Remove', 'aria-label': 'Remove ' + where, onclick: function () { metricList.splice(mi, 1); syncMetrics(); drawCols(); refresh(); } }), msg, hint);
        }),
        el('button', { type: 'button', test: 'rf-add-metric', text: 'Add a metric', onclick: function () { metricList.push({ name: '', bounds: [0, 100] }); syncMetrics(); drawCols(); refresh(); } })
      ]);
    }

    // ---- Privacy and budgets ----
    var numbers = [['min_upload_users', '1'], ['min_cohort_users', '1'], ['min_group_users', '1'], ['epsilon_budget'], ['min_query_epsilon'],
      ['default_query_epsilon'], ['max_query_epsilon'], ['match_epsilon'], ['delta_budget'], ['delta'], ['max_groups_contributed', '1'], ['max_rows_per_person', '1']];
    var privacy = el('section', { class: 'card' }, el('h3', { text: 'Privacy and budgets' }), el('div', { class: 'rf-grid' },
      numbers.map(function (x) { return field(CR.ruleName(x[0]), numberInput(x[0], x[1]), x[0]); }),
      field(CR.ruleName('budget_refresh'), el('select', { test: 'rf-budget_refresh', onchange: function (e) { rules.budget_refresh = e.target.value; refresh(); } },
        ['none', 'monthly'].map(function (v) { return el('option', { value: v, text: v, selected: v === rules.budget_refresh }); })), 'budget_refresh'),
      field(CR.ruleName('noise'), el('select', { test: 'rf-noise', onchange: function (e) { rules.noise = e.target.value; refresh(); } },
        ['laplace', 'gaussian'].map(function (v) { return el('option', { value: v, text: v, selected: v === rules.noise }); })), 'noise')));

    // ---- Who may ask: each partner ticked; both is the empty list ----
    // ids are the two partners' IDs, proposer first; mine is the index of
    // the signed-in partner (0 when proposing).
    var ids = function () { return co ? [co.proposer, co.partner] : [CR.me.partner_id, meta.partner]; };
    var mine = co ? (co.partner === CR.me.partner_id ? 1 : 0) : 0;
    var asks = (function () {
      var q = rules.queriers || [];
      return ids().map(function (pid) { return !q.length || q.indexOf(pid) >= 0; });
    })();
    function syncQueriers() {
      var x = ids();
      rules.queriers = asks[0] && asks[1] ? [] : x.filter(function (pid, i) { return asks[i] && pid; });
    }
    // names maps a partner ID to its name, for the rules' sentences.
    function names(pid) {
      var x = ids();
      for (var i = 0; i < 2; i++) if (pid === x[i]) return party(i).partner_name;
      return pid;
    }
    var queriersBox = el('div', { class: 'rf-grid' });
    function drawQueriers() {
      CR.clear(queriersBox);
      fields = fields.filter(function (f) { return f.key !== 'queriers'; });
      var msg = el('span', { class: 'rf-msg', id: id('msg') }), note = el('span', { class: 'small muted rf-note', id: id('note') });
      var boxes = [0, 1].map(function (i) {
        var box = el('input', { type: 'checkbox', id: id('asks'), test: 'rf-querier', 'data-party': ['proposer', 'partner'][i], checked: asks[i],
          'aria-describedby': note.id + ' ' + msg.id, onchange: function (e) { asks[i] = e.target.checked; syncQueriers(); refresh(); } });
        return el('label', { class: 'rf-check', for: box.id }, box, ' ' + party(i).partner_name + (i === mine ? ' (you)' : ''));
      });
      fields.push({ key: 'queriers', input: boxes[0].firstChild, msg: msg, note: note });
      queriersBox.appendChild(el('fieldset', { class: 'rf-field rf-queriers', test: 'rf-queriers' },
        el('legend', null, CR.ruleName('queriers')), el('span', { class: 'small muted', text: 'Whose analysts may ask questions: both, or one of you.' }), boxes, note, msg));
    }
    var asksBox = el('section', { class: 'card' }, el('h3', { text: 'Who asks' }), queriersBox);

    // ---- Advanced: public groups and templates, as JSON ----
    // Each textarea holds its rule's JSON; rules[k] takes it whenever it
    // parses and has the right shape, and a problem keeps it from being
    // sent.
    var J = CR.rulesJSON;
    var adv = {
      public_groups: { empty: {}, check: J.publicGroups, problem: '' },
      templates: { empty: [], check: J.templates, problem: '' }
    };
    function readJSON(k, text) {
      var a = adv[k], r = J.parse(text, clone(a.empty));
      a.problem = r.error ? r.error.message + '.' : a.check(r.value);
      if (!a.problem) rules[k] = r.value === null ? clone(a.empty) : r.value;
    }
    // dimensions are the columns the rules let analysts group on, as
    // queries name them: the dimensions, and declared dimension and time
    // columns behind their partner's prefix.
    function dimensions() {
      var out = rules.dimensions.filter(Boolean), pre = [party(0).prefix, party(1).prefix];
      rules.tables.forEach(function (t) {
        t.columns.forEach(function (c) { if (c.name && c.role !== 'metric') out.push(pre[t.party === 'partner' ? 1 : 0] + c.name); });
      });
      return out;
    }
    // publicProblem: a public group names a column no party has (the
    // server refuses it too).
    function publicProblem() {
      var gs = Object.keys(rules.public_groups || {});
      for (var i = 0; i < gs.length; i++) {
        var p = columnProblem(gs[i]);
        if (p) return 'Public group ' + p;
      }
      var ts = rules.templates || [];
      for (i = 0; i < ts.length; i++) {
        var ps = ts[i].params || [];
        for (var j = 0; j < ps.length; j++) {
          if (ps[j].type === 'column' && ps[j].default) {
            var q = columnProblem(ps[j].default);
            if (q) return 'templates: template ' + ts[i].name + ': parameter ' + ps[j].name + ': default ' + q;
          }
        }
      }
      return '';
    }
    // publicNote says of a public group that names a column but no
    // dimension that no question groups by it (the server takes it).
    function publicNote() {
      var dims = dimensions();
      return Object.keys(rules.public_groups || {}).filter(function (g) { return dims.indexOf(g) < 0 && !columnProblem(g); }).map(function (g) {
        var near = nearest(g, dims, [party(0).prefix, party(1).prefix]);
        return '"' + g + '" is no dimension of these rules, so no question groups by it and its public values are never used' +
          (near.length ? '; did you mean ' + near.map(function (s) { return '"' + s + '"'; }).join(' or ') + '?' : dims.length ? '; the dimensions are ' + dims.join(', ') + '.' : ': add it as a dimension.');
      }).concat(Object.keys(rules.public_groups || {}).map(openNote).filter(Boolean)).join(' ');
    }
    function jsonField(k, hint, placeholder) {
      var text = rules[k] && (Array.isArray(rules[k]) ? rules[k].length : Object.keys(rules[k]).length) ? JSON.stringify(rules[k], null, 2) : JSON.stringify(adv[k].empty);
      readJSON(k, text);
      var area = el('textarea', { test: 'rf-' + k, rows: '8', spellcheck: 'false', autocomplete: 'off', placeholder: placeholder,
        oninput: function (e) { readJSON(k, e.target.value); refresh(); } });
      area.value = text;
      var f = field(CR.ruleName(k), area, k, hint);
      var hintEl = el('span', { class: 'rf-hint small muted', id: id('hint') });
      area.setAttribute('aria-describedby', area.getAttribute('aria-describedby') + ' ' + hintEl.id);
      fields[fields.length - 1].hint = hintEl;
      fields[fields.length - 1].hintOf = k === 'public_groups' ? publicNote : function () { return ''; };
      f.appendChild(hintEl);
      return f;
    }
    var hasAdvanced = ['public_groups', 'templates'].some(function (k) {
      var v = rules[k];
      return v && (Array.isArray(v) ? v.length : Object.keys(v).length);
    });
    var advanced = el('details', { class: 'card rf-advanced', test: 'rf-advanced', open: hasAdvanced },
      el('summary', { test: 'rf-advanced-summary' }, el('h3', { class: 'rf-inline', text: 'Advanced: public groups and templates' })),
      el('p', { class: 'small muted', text: 'Each as the JSON of its rule, checked as you type. Public groups: an object of dimension (as queries name it) to ' +
        '{"values": [...]} or {"dates": {"from": "yyyy-mm-dd", "to": "yyyy-mm-dd", "step_days": 1}}. Templates: a list of ' +
        '{"name", "description", "sql", "params": [{"name", "type": int, date, string or column, ...}]}, each {{param}} of the SQL declared.' }),
      el('div', { class: 'rf-json' },
        jsonField('public_groups', null, '{"brand_co_region": {"values": ["north", "south"]}}'),
        jsonField('templates', null, '[{"name": "by_region", "sql": "SELECT {{by}}, COUNT(*) AS people FROM cohort GROUP BY {{by}}", "params": [{"name": "by", "type": "column"}]}]')));

    var submit = el('button', { type: 'submit', class: 'primary', test: 'rf-submit', text: co ? 'Propose the change' : 'Propose the collaboration' });
    var form = el('form', { class: 'rules-form', test: 'rules-form', novalidate: true, onsubmit: send },
      el('h2', { text: co ? 'Change the rules of ' + (co.name || co.id) : 'Propose a collaboration' }),
      el('p', { class: 'muted', text: co ? 'The change goes back to the other partner, who approves or rejects it; until then the rules both approved stay in force.' :
        'Your partner approves at once; the other partner reviews these rules and approves them before any data is matched.' }),
      head, basics, tablesBox, colsBox, asksBox, privacy, advanced,
      el('section', { class: 'card' }, el('h3', { text: 'What the console sends' }),
        el('p', { class: 'small muted', text: co ? 'PUT ' + base + '/rules with this body:' : 'POST /v1/collaborations with this body:' }), preview),
      summary, el('div', { class: 'toolbar' }, submit, el('a', { href: co ? '#/collab/' + encodeURIComponent(co.id) + '/collab' : '#/collabs', text: 'Cancel' })), sendBox);
    CR.clear(panel).appendChild(form);
    drawTables();
    drawCols();
    drawQueriers();
    refresh();

    function body() { return co ? rules : { name: meta.name.trim(), partner: meta.partner, rules: rules }; }

    // problems checks what the server would refuse, field by field.
    function problems() {
      var out = {};
      var put = function (k, m) { if (!out[k]) out[k] = m; };
      var num = function (k) { return typeof rules[k] === 'number' && isFinite(rules[k]); };
      var units = function (k) { return Math.abs(rules[k] / UNIT - Math.round(rules[k] / UNIT)) < 1e-6; };
      if (!co) {
        if (!meta.name.trim()) put('name', 'Give the collaboration a name.');
        if (!meta.partner) put('partner', 'There is no other partner to propose to: the operator creates partners.');
      }
      if (!NAME.test(rules.purpose || '')) put('purpose', 'A purpose is lower-case letters, digits and _, as consent columns carry it.');
      numbers.forEach(function (x) {
        if (!num(x[0])) put(x[0], 'Give a number.');
        else if (x[1] && !Number.isInteger(rules[x[0]])) put(x[0], 'Give a whole number.');
      });
      ['min_upload_users', 'min_cohort_users', 'max_groups_contributed', 'max_rows_per_person'].forEach(function (k) { if (num(k) && rules[k] < 1) put(k, 'At least 1.'); });
      if (num('min_group_users') && rules.min_group_users < 0) put('min_group_users', 'Not negative.');
      ['epsilon_budget', 'min_query_epsilon', 'default_query_epsilon', 'max_query_epsilon', 'match_epsilon'].forEach(function (k) {
        if (!num(k)) return;
        if (!(rules[k] > 0)) put(k, 'A budget or epsilon is more than 0.');
        else if (!units(k)) put(k, 'A whole number of millionths (at most 6 decimals).');
      });
      if (num('max_query_epsilon') && num('epsilon_budget') && rules.max_query_epsilon > rules.epsilon_budget) put('max_query_epsilon', 'At most the epsilon budget (' + rules.epsilon_budget + ').');
      if (num('match_epsilon') && num('epsilon_budget') && rules.match_epsilon > rules.epsilon_budget) put('match_epsilon', 'At most the epsilon budget (' + rules.epsilon_budget + ').');
      if (num('min_query_epsilon') && num('max_query_epsilon') && rules.min_query_epsilon > rules.max_query_epsilon) put('min_query_epsilon', 'At most the most epsilon a question (' + rules.max_query_epsilon + ').');
      if (num('default_query_epsilon') && num('min_query_epsilon') && num('max_query_epsilon') &&
        (rules.default_query_epsilon < rules.min_query_epsilon || rules.default_query_epsilon > rules.max_query_epsilon)) {
        put('default_query_epsilon', 'Between the least (' + rules.min_query_epsilon + ') and the most (' + rules.max_query_epsilon + ') epsilon a question.');
      }
      if (num('delta_budget') && (rules.delta_budget < 0 || rules.delta_budget > 1)) put('delta_budget', 'Between 0 and 1.');
      if (num('delta') && (rules.delta < 0 || rules.delta >= 1e-3)) put('delta', 'At least 0 and under 0.001.');
      else if (num('delta') && num('delta_budget') && rules.delta > rules.delta_budget) put('delta', 'At most the delta budget, or no question needing a delta could run.');
      if (rules.noise === 'gaussian' && !(rules.delta > 0)) put('noise', 'Gaussian noise needs a delta above 0.');
      if (!asks[0] && !asks[1]) put('queriers', 'Tick at least one partner: with neither, no analyst could ask a question (both ticked lets both ask).');
      ['public_groups', 'templates'].forEach(function (k) { if (adv[k].problem) put(k, adv[k].problem); });
      if (!adv.public_groups.problem && !adv.templates.problem) {
        var pp = publicProblem();
        if (pp) put(/^templates/.test(pp) ? 'templates' : 'public_groups', pp);
      }
      var bounds = function (b) {
        if (!b || typeof b[0] !== 'number' || typeof b[1] !== 'number' || !isFinite(b[0]) || !isFinite(b[1])) return 'Give both bounds.';
        // wire's checkBounds: lower <= upper (equal bounds clamp every
        // person to one value).
        if (b[0] > b[1]) return 'The lower bound must not be above the upper.';
        if (Math.abs(b[0]) > MAX_BOUND || Math.abs(b[1]) > MAX_BOUND) return 'Bounds lie within ±10¹⁵, so that no sum overflows; measure in larger units.';
        return '';
      };
      var seenT = {}, seenC = {};
      rules.tables.forEach(function (t, ti) {
        if (!NAME.test(t.name)) put('table:' + ti + ':name', 'A table name is lower-case letters, digits and _, starting with a letter.');
        else if (seenT[t.party + '/' + t.name]) put('table:' + ti + ':name', 'This party already has a table ' + t.name + '.');
        seenT[t.party + '/' + t.name] = true;
        if (!t.columns.length) put('table:' + ti + ':name', 'A table needs a column.');
        t.columns.forEach(function (c, ci) {
          var k = 'table:' + ti + ':col:' + ci;
          if (!NAME.test(c.name)) put(k, 'A column name is lower-case letters, digits and _, starting with a letter.');
          else if (c.name === 'pid' || c.name === 'consent') put(k, c.name + ' is in every table already; declare only the other columns.');
          else if (seenC[t.party + '/' + c.name]) put(k, 'Another of this party\'s tables has a column ' + c.name + '; queries name columns without their table, so name them apart.');
          else if (c.role === 'metric' && bounds(c.bounds)) put(k, c.name + ': ' + bounds(c.bounds));
          seenC[t.party + '/' + c.name] = true;
        });
      });
      var seenD = {};
      rules.dimensions.forEach(function (d, di) {
        var p = d ? columnProblem(d) : 'Give a column, or remove the dimension.';
        if (!p && seenD[d]) p = d + ' is listed twice.';
        seenD[d] = true;
        if (p) put('dim:' + di, p);
      });
      metricList.forEach(function (m, mi) {
        var p = m.name ? columnProblem(m.name) : 'Give a column, or remove the metric.';
        if (!p && seenD[m.name]) p = m.name + ' is also a dimension.';
        if (!p) p = bounds(m.bounds);
        if (p) put('metric:' + mi, p);
      });
      return out;
    }

    function refresh() {
      var bad = problems();
      fields.forEach(function (f) {
        var m = bad[f.key] || '';
        f.msg.textContent = m;
        if (m) f.input.setAttribute('aria-invalid', 'true');
        else f.input.removeAttribute('aria-invalid');
        if (f.note && f.key in CR.ruleLabels) f.note.textContent = CR.explainRule(f.key, rules[f.key], names);
        if (f.hint) f.hint.textContent = m ? '' : f.hintOf ? f.hintOf() : openNote(f.name());
      });
      // The names offered follow the tables as they are declared.
      var dl = document.getElementById('rf-cohort-names');
      if (dl) CR.append(CR.clear(dl), known().names.map(function (x) { return el('option', { value: x }); }));
      preview.textContent = JSON.stringify(body(), null, 2);
      var n = Object.keys(bad).length;
      summary.textContent = n ? CR.plural(n, 'problem') + ' to fix before the rules can be sent.' : '';
      summary.className = 'rf-summary' + (n ? ' error' : '');
      return bad;
    }

    function send(ev) {
      ev.preventDefault();
      var bad = refresh();
      var first = fields.filter(function (f) { return bad[f.key]; })[0];
      if (first) {
        if (advanced.contains(first.input)) advanced.open = true;
        first.input.focus();
        return;
      }
      submit.disabled = true;
      CR.clear(sendBox);
      var req = co ? CR.api('PUT', base + '/rules', { body: rules }) : CR.api('POST', '/v1/collaborations', { body: body() });
      req.then(function (c) {
        location.hash = '#/collab/' + encodeURIComponent(c.id) + '/collab';
      }, function (e) {
        submit.disabled = false;
        if (e.status !== 401) sendBox.appendChild(CR.errorBox(e, 'rf-error'));
      });
    }
  }

  function sel(name) { return '[data-test="' + name + '"]'; }
})();
