// The collaboration, for engineers and admins (and readable by every
// role): its rules, with the change awaiting approval beside the rules in
// force; the audiences with their consent mix; matches; and deletion
// receipts with how long each took.
(function () {
  'use strict';
  var CR = window.CR, el = CR.el;

  var ruleOrder = ['purpose', 'id_type', 'gmail_rule', 'dimensions', 'metrics', 'queriers', 'min_cohort_users', 'min_group_users',
    'epsilon_budget', 'delta_budget', 'delta', 'min_query_epsilon', 'max_query_epsilon', 'budget_refresh', 'noise',
    'max_groups_contributed', 'min_upload_users', 'match_epsilon'];

  // show gives a rule's value as text; objects with sorted keys, so two
  // equal rules read alike.
  function show(v) {
    if (v === undefined) return '–';
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.keys(v).sort().map(function (k) { return k + ': ' + JSON.stringify(v[k]); }).join(', ') || '{}';
    }
    if (Array.isArray(v)) return v.length ? v.join(', ') : '(none)';
    return String(v);
  }
  function ruleKeys(a, b) {
    var keys = ruleOrder.slice();
    Object.keys(a || {}).concat(Object.keys(b || {})).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    return keys.filter(function (k) { return (a && k in a) || (b && k in b); });
  }

  function rulesSection(co, names, rerender) {
    var me = CR.me, s = el('section', { class: 'card' }, el('h3', { text: 'Rules (version ' + co.rules_version + ')' }));
    var pending = co.state === 'proposed';
    var mine = (co.approved_by || []).indexOf(me.partner_id) >= 0;
    var member = co.proposer === me.partner_id || co.partner === me.partner_id;
    if (co.approved_rules) {
      var waiting = [co.proposer, co.partner].filter(function (p) { return (co.approved_by || []).indexOf(p) < 0; }).map(names);
      s.appendChild(el('p', { text: 'A change of the rules awaits approval: the rules in force stay those both partners approved until ' +
        (waiting.join(' and ') || 'both') + ' approve' + (waiting.length === 1 ? 's' : '') + ' the change. Changed rules are marked.' }));
      s.appendChild(CR.table({ class: 'data diff', test: 'rules-diff' }, ['Rule', 'In force (approved by both)', 'Proposed'],
        ruleKeys(co.approved_rules, co.rules).map(function (k) {
          var a = show(co.approved_rules[k]), b = show(co.rules[k]), changed = a !== b;
          return el('tr', { class: changed ? 'changed' : '' }, CR.td(el('code', { text: k })), CR.td(a, 'old'),
            CR.td([b, changed ? el('span', { class: 'badge changed', text: 'changed' }) : null], 'new'));
        })));
    } else {
      s.appendChild(CR.table({ class: 'data rules-table' }, ['Rule', 'Value'], ruleKeys(co.rules).map(function (k) {
        return el('tr', null, CR.td(el('code', { text: k })), CR.td(show(co.rules[k])));
      })));
    }
    if (!pending) return s;
    var who = (co.approved_by || []).map(names).join(' and ') || 'nobody';
    s.appendChild(el('p', { class: 'muted', text: 'Approved so far by ' + who + '.' }));
    if (CR.can('approve') && member && !mine) {
      var msg = el('div');
      var act = function (path, body) {
        return function (ev) {
          ev.target.disabled = true;
          CR.api('POST', '/v1/collaborations/' + encodeURIComponent(co.id) + path, { body: body }).then(rerender, function (e) {
            ev.target.disabled = false;
            if (e.status !== 401) CR.clear(msg).appendChild(CR.errorBox(e));
          });
        };
      };
      s.appendChild(el('div', { class: 'toolbar' },
        el('button', { class: 'primary', test: 'approve', text: 'Approve these rules', onclick: act('/approve', { rules_version: co.rules_version }) }),
        co.approved_rules ? el('button', { test: 'reject', text: 'Reject the change', title: 'Go back to the rules in force', onclick: act('/reject', { rules_version: co.rules_version }) }) : null,
        co.approved_rules ? null : el('span', { class: 'small muted', text: 'To decline a first proposal, delete the collaboration (cleanroom delete --collab ' + co.id + ' --collaboration).' })));
      s.appendChild(msg);
    } else if (mine) {
      s.appendChild(el('p', { class: 'muted', text: 'Your partner approved; waiting for the other partner.' }));
    }
    return s;
  }

  CR.collabView = function (panel, co, alive) {
    var base = '/v1/collaborations/' + encodeURIComponent(co.id), names = CR.partnerNames(co);
    var rerender = function () { if (alive()) CR.route(); };
    var audiences = el('section', { class: 'card', test: 'audiences' }, el('h3', { text: 'Audiences' }), el('p', { class: 'muted', text: 'Loading…' }));
    var matches = el('section', { class: 'card', test: 'matches' }, el('h3', { text: 'Matches' }), el('p', { class: 'muted', text: 'Loading…' }));
    var receipts = el('section', { class: 'card', test: 'receipts' }, el('h3', { text: 'Deletions' }), el('p', { class: 'muted', text: 'Loading…' }));
    CR.clear(panel);
    CR.append(panel, [rulesSection(co, names, rerender), audiences, matches, receipts]);

    var report = CR.api('GET', base + '/report');
    var aud = CR.api('GET', base + '/audiences');
    CR.guard(alive, audiences, Promise.all([aud, report]).then(function (x) {
      if (!alive()) return;
      drawAudiences(audiences, co, x[0].audiences || {}, x[1].data_held || [], names, alive);
    }));
    CR.guard(alive, matches, report.then(function (r) {
      if (!alive()) return;
      var ms = r.matches || [];
      CR.clear(matches).appendChild(el('h3', { text: 'Matches' }));
      matches.appendChild(ms.length ? CR.table({ class: 'data' }, ['Match', 'State', 'Noisy cohort size', 'ε', 'Started'], ms.map(function (m) {
        return el('tr', null, CR.td(m.id, 'mono'), CR.td(el('span', { class: 'state ' + m.state, text: m.state })),
          CR.td(m.cohort_size_noisy === null || m.cohort_size_noisy === undefined ? '–' : CR.num(m.cohort_size_noisy), 'n'),
          CR.td(CR.eps(m.epsilon), 'n'), CR.td(CR.time(m.created_at)));
      })) : el('p', { class: 'muted', text: 'No match yet: an engineer of each partner runs cleanroom match.' }));
      matches.appendChild(el('p', { class: 'small muted', text: 'The cohort size is noisy (Laplace, the rule match_epsilon): the only size either partner ever sees.' }));
    }));
    CR.guard(alive, receipts, Promise.all([CR.api('GET', base + '/receipts'), report]).then(function (x) {
      if (!alive()) return;
      var took = {};
      (x[1].honoured || []).forEach(function (h) { took[h.receipt_id] = h.seconds; });
      var rs = x[0].receipts || [];
      CR.clear(receipts).appendChild(el('h3', { text: 'Deletions' }));
      receipts.appendChild(rs.length ? CR.table({ class: 'data' },
        ['Kind', 'Partner', 'At', 'Identifiers', 'Audience rows', 'Tokens', 'Matches', 'Took', 'Log entry', 'Receipt'], rs.map(function (r) {
          return el('tr', null, CR.td(el('span', { class: 'badge', text: r.kind })), CR.td(names(r.partner_id)), CR.td(CR.time(r.at)),
            CR.td(r.identifiers ? CR.num(r.identifiers) : '–', 'n'), CR.td(CR.num(r.audience_rows), 'n'), CR.td(CR.num(r.tokens), 'n'),
            CR.td(r.matches ? CR.num(r.matches) : '–', 'n'), CR.td(r.id in took ? CR.duration(took[r.id]) : '–', 'n'),
            CR.td('#' + r.audit_seq, 'n'), CR.td(r.id, 'mono small'));
        })) : el('p', { class: 'muted', text: 'No deletion yet.' }));
      receipts.appendChild(el('p', { class: 'small muted', text: 'Each receipt is signed by the server and names its audit log entry: cleanroom receipt verify checks both. ' +
        'Receipts count your own data only; what happened to the cohorts is said in the same words whatever the data.' }));
    }));
  };

  function drawAudiences(box, co, auds, held, names, alive) {
    CR.clear(box).appendChild(el('h3', { text: 'Audiences' }));
    var charts = [], unknown = {};
    var cards = [co.proposer, co.partner].map(function (pid) {
      var a = auds[pid], h = held.filter(function (x) { return x.partner_id === pid; })[0] || {};
      if (!a) return el('div', { class: 'audience' }, el('h4', { text: names(pid) }), el('p', { class: 'muted', text: 'No audience uploaded.' }));
      var mix = h.consent_rows_by_purpose || [];
      var chart = mix.length ? el('div', { class: 'chart small-chart', 'data-chart': 'consent-mix' }) : null;
      if (chart) charts.push([chart, mix]);
      var retention = el('dd', { text: a.expires_at ? 'deleted on ' + CR.time(a.expires_at) : '–' });
      if (!a.expires_at) unknown[a.id] = retention;
      return el('div', { class: 'audience' },
        el('h4', { text: names(pid) }),
        el('dl', { class: 'facts-list' },
          el('dt', { text: 'Audience' }), el('dd', { class: 'mono', text: a.id }),
          el('dt', { text: 'Uploaded' }), el('dd', { text: CR.time(a.created_at) }),
          a.rows ? [el('dt', { text: 'Rows' }), el('dd', { text: CR.num(a.rows) })] : null,
          a.people ? [el('dt', { text: 'People' }), el('dd', { text: CR.num(a.people) + (a.people_matchable !== undefined ? ' (' + CR.num(a.people_matchable) + ' can match)' : '') })] : null,
          el('dt', { text: 'Columns' }), el('dd', { class: 'small', text: CR.columnsText(a.columns) }),
          el('dt', { text: 'Retention' }), retention),
        chart ? [el('h5', { text: 'Consent mix (rows per purpose)' }), chart] :
          el('p', { class: 'small muted', text: pid === CR.me.partner_id || CR.me.operator ? 'No consent column.' : 'Sizes and consent mix are the other partner\'s own business.' }));
    });
    box.appendChild(el('div', { class: 'grid2' }, cards));
    if (Object.keys(unknown).length && CR.can('audit')) findRetention(co.id, unknown, alive);
    charts.forEach(function (c) {
      CR.chart(c[0], {
        tooltip: { trigger: 'axis', renderMode: 'richText', confine: true },
        grid: { left: 16, right: 32, top: 8, bottom: 8, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' },
        xAxis: { type: 'value' }, yAxis: { type: 'category', inverse: true, data: c[1].map(function (p) { return p.purpose; }) },
        series: [{ type: 'bar', data: c[1].map(function (p) { return p.rows; }), barMaxWidth: 28, label: { show: true, position: 'right' } }]
      });
    });
  }

  // findRetention reads the audiences' expiries from their uploads' audit
  // entries, for the roles that read the log (the audience list does not
  // carry them); dds maps audience IDs to where each goes.
  function findRetention(cid, dds, alive) {
    CR.api('GET', '/v1/audit', { query: { collab: cid, action: 'audience.upload', order: 'desc', limit: 100 } }).then(function (l) {
      if (!alive()) return;
      (l.entries || []).forEach(function (e) {
        var dd = e.details && dds[e.details.audience_id];
        if (dd) dd.textContent = e.details.expires_at ? 'deleted on ' + CR.time(e.details.expires_at) : 'none: kept until deleted';
      });
    }, function () { /* the retention stays unknown */ });
  }
})();
