// The transparency report and the public privacy report, drawn from
// their JSON (wire.Report, wire.PrivacyReport). The console's pages and
// the standalone HTML exports (console.Standalone) run this same code,
// so a saved report shows what the console shows.
(function () {
  'use strict';
  var CR = (window.CR = window.CR || {});
  var el = CR.el;

  function section(title, kids, test) {
    return el('section', { class: 'card', test: test }, el('h3', { text: title }), kids);
  }
  function chartBox(name, title, note) {
    return el('figure', { class: 'figure' },
      el('figcaption', { text: title }),
      el('div', { class: 'chart', test: 'report-chart', 'data-chart': name }),
      note ? el('p', { class: 'muted small', text: note }) : null);
  }
  function chartIn(root, name) { return root.querySelector('[data-chart="' + name + '"]'); }

  // barOption is a bar chart of categories with one series per name.
  function barOption(categories, series, opts) {
    opts = opts || {};
    return {
      tooltip: { trigger: 'axis', renderMode: 'richText', confine: true },
      legend: series.length > 1 ? { top: 0 } : undefined,
      grid: { left: 16, right: 24, top: series.length > 1 ? 32 : opts.labels ? 24 : 12, bottom: 8, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' },
      xAxis: opts.horizontal ? { type: 'value', name: opts.valueName } : { type: 'category', data: categories, axisLabel: { interval: 0, hideOverlap: true } },
      yAxis: opts.horizontal ? { type: 'category', data: categories, inverse: true } : { type: 'value', name: opts.valueName },
      series: series.map(function (s) {
        return { type: 'bar', name: s.name, data: s.data, stack: opts.stack ? 'all' : undefined, barMaxWidth: 48,
          label: opts.labels ? { show: true, position: opts.horizontal ? 'right' : 'top' } : undefined };
      })
    };
  }

  // byPartner pivots rows into categories x partners.
  function byPartner(rows, cat, value, name) {
    var cats = [], partners = [], v = {};
    rows.forEach(function (r) {
      var c = cat(r), p = r.partner_id;
      if (cats.indexOf(c) < 0) cats.push(c);
      if (partners.indexOf(p) < 0) partners.push(p);
      v[c + '\u0000' + p] = (v[c + '\u0000' + p] || 0) + value(r);
    });
    return {
      categories: cats,
      series: partners.map(function (p) {
        return { name: name(p), data: cats.map(function (c) { return Math.round((v[c + '\u0000' + p] || 0) * 1e6) / 1e6; }) };
      })
    };
  }

  // epsWords says what an epsilon means for one person, in plain words.
  CR.epsWords = function (eps) {
    var f = Math.exp(eps);
    var times = f < 10 ? f.toFixed(2) : f < 1e6 ? Math.round(f).toLocaleString('en-US') : f.toExponential(1);
    return 'no answer is more than e^' + CR.eps(eps) + ' ≈ ' + times + ' times likelier with any one person in the data than without them';
  };

  // renderReport fills root with a collaboration's transparency report.
  CR.renderReport = function (root, r) {
    var co = r.collaboration || {}, name = CR.partnerNames(co), rules = co.rules || {};
    var spent = (r.exposure || {}).collaboration_epsilon_spent || 0, dspent = (r.exposure || {}).collaboration_delta_spent || 0;
    var held = r.data_held || [];
    var consent = [];
    held.forEach(function (h) {
      (h.consent_rows_by_purpose || []).forEach(function (p) { consent.push({ partner_id: h.partner_id, purpose: p.purpose, rows: p.rows }); });
    });
    var page = el('article', { class: 'report', test: 'report' },
      el('header', { class: 'report-head' },
        el('h2', { text: 'Transparency report: ' + (co.name || co.id) }),
        el('p', { class: 'lead' }, name(co.proposer) + ' and ' + name(co.partner) + ' · purpose ' + (rules.purpose || '–') +
          ' · ' + (co.state || '') + ' · generated ' + CR.time(r.generated_at))),
      section('Exposure', el('p', { class: 'lead' },
        'Over the collaboration\'s life, both partners together have spent ε = ' + CR.eps(spent) +
        (dspent ? ' (δ = ' + CR.eps(dspent) + ')' : '') + ', matches included. That is what any one person in the cohort is exposed to: ' +
        CR.epsWords(spent) + (dspent ? ', except with a chance of at most δ' : '') + '.')),
      el('div', { class: 'grid2' },
        chartBox('budget', 'Privacy budget spent per day (ε)', 'Queries and matches, by partner, by day (UTC).'),
        chartBox('analysts', 'Answers released per analyst', 'Each analyst key, by its label, with the ε its answers spent.'),
        chartBox('refusals', 'Refused queries by reason'),
        chartBox('consent', 'Consent mix of the audience rows, by purpose', 'Only each partner\'s own audience: a partner\'s consent mix is its own business.'),
        chartBox('deletions', 'Deletion receipts by kind')),
      section('Data held', held.length ? el('div', { class: 'scroll' }, CR.table({ class: 'data' }, ['Partner', 'Table', 'Audience', 'Uploaded', 'Rows', 'People', 'Columns'],
        held.map(function (h) {
          // Every table of the partner's (a report before named tables has its one audience).
          var ts = (h.tables || []).length ? h.tables : h.audience ? [h.audience] : [null];
          return ts.map(function (a, i) {
            return el('tr', null, CR.td(i ? '' : name(h.partner_id)), CR.td(a ? a.table || 'audience' : '–', 'mono'), CR.td(a ? a.id : 'none'),
              CR.td(a ? CR.time(a.created_at) : '–'), CR.td(a && a.rows ? CR.num(a.rows) : '–', 'n'), CR.td(a && a.people ? CR.num(a.people) : '–', 'n'),
              CR.td(a ? CR.columnsText(a.columns) : '–', 'small'));
          });
        }))) : el('p', { class: 'muted', text: 'No data held.' })),
      section('Matches', (r.matches || []).length ? CR.table({ class: 'data' }, ['Match', 'State', 'Noisy cohort size', 'ε', 'Started'],
        r.matches.map(function (m) {
          return el('tr', null, CR.td(m.id, 'mono'), CR.td(m.state), CR.td(m.cohort_size_noisy === null ? '–' : CR.num(m.cohort_size_noisy), 'n'),
            CR.td(CR.eps(m.epsilon), 'n'), CR.td(CR.time(m.created_at)));
        })) : el('p', { class: 'muted', text: 'No match yet.' })),
      section('Deletions honoured', (r.honoured || []).length ? CR.table({ class: 'data' }, ['Receipt', 'Kind', 'Partner', 'Requested', 'Honoured', 'Took'],
        r.honoured.map(function (h) {
          return el('tr', null, CR.td(h.receipt_id, 'mono'), CR.td(h.kind), CR.td(name(h.partner_id)), CR.td(CR.time(h.requested_at)),
            CR.td(CR.time(h.honoured_at)), CR.td(CR.duration(h.seconds), 'n'));
        })) : el('p', { class: 'muted', text: 'No deletion of your data yet.' })));
    CR.append(CR.clear(root), page);

    var days = r.budget_spent_by_day || [];
    var b = byPartner(days.slice().sort(function (x, y) { return x.day < y.day ? -1 : x.day > y.day ? 1 : 0; }),
      function (d) { return d.day; }, function (d) { return d.epsilon; }, name);
    CR.chart(chartIn(page, 'budget'), days.length ? barOption(b.categories, b.series, { stack: true, valueName: 'ε' }) : CR.emptyChart('Nothing spent yet'));

    var an = r.queries_by_analyst || [];
    CR.chart(chartIn(page, 'analysts'), an.length ? barOption(an.map(function (a) {
      return (a.analyst_label || a.analyst_key) + ' (' + name(a.partner_id) + ', ε ' + CR.eps(a.epsilon) + ')';
    }), [{ name: 'answers', data: an.map(function (a) { return a.queries; }) }], { horizontal: true, labels: true }) : CR.emptyChart('No answer released yet'));

    var rf = r.refusals_by_reason || [];
    CR.chart(chartIn(page, 'refusals'), rf.length ? barOption(rf.map(function (x) { return x.reason; }),
      [{ name: 'refusals', data: rf.map(function (x) { return x.refusals; }) }], { horizontal: true, labels: true }) : CR.emptyChart('No query refused'));

    var c = byPartner(consent, function (x) { return x.purpose; }, function (x) { return x.rows; }, name);
    CR.chart(chartIn(page, 'consent'), consent.length ? barOption(c.categories, c.series, { valueName: 'rows', labels: true }) :
      CR.emptyChart('No consent column in your audience'));

    var del = r.deletions || [];
    var d = byPartner(del, function (x) { return x.kind; }, function (x) { return x.receipts; }, name);
    CR.chart(chartIn(page, 'deletions'), del.length ? barOption(d.categories, d.series, { stack: true, valueName: 'receipts', labels: true }) :
      CR.emptyChart('No deletion yet'));
    return page;
  };

  // columnsText shows an audience's columns (raw JSON in wire.Audience)
  // as "name type, ...".
  CR.columnsText = function (cols) {
    if (!Array.isArray(cols)) return cols ? JSON.stringify(cols) : '–';
    return cols.map(function (c) { return typeof c === 'object' && c ? c.name + (c.type ? ' ' + c.type : '') : String(c); }).join(', ');
  };

  // renderPrivacy fills root with a partner's public privacy report: in
  // plain words, for the people in its data.
  CR.renderPrivacy = function (root, p) {
    var who = p.partner_name || p.partner_id;
    var cols = p.collaborations || [];
    var period = CR.date(p.since) + ' to ' + CR.date(p.until);
    var honoured = (p.opt_outs_honoured || 0) + (p.deletion_requests_honoured || 0) + (p.expiries_honoured || 0);
    var page = el('article', { class: 'report privacy', test: 'privacy-report' },
      el('header', { class: 'report-head' },
        el('h2', { text: who + ': how your data was used' }),
        el('p', { class: 'lead', text: 'A report for the people in ' + who + '\'s data, ' + period + '.' })),
      section('Where your data was used', cols.length ? [
        el('p', { text: who + '\'s data took part in ' + CR.plural(cols.length, 'collaboration') + ' in this period. In each, ' + who +
          ' and one partner ask questions that only get answers about large groups, never about a person.' }),
        el('ul', { class: 'uses' }, cols.map(function (c) {
          return el('li', null, el('strong', { text: c.name }), ' with ' + c.partner_name + ', for the purpose ',
            el('em', { text: c.purpose }), ': ' + CR.plural(c.queries, 'answer') + ' and ' + CR.plural(c.matches, 'match', 'matches') +
            ' in the period (' + c.state + ').');
        }))
      ] : el('p', { text: who + '\'s data was not used in any collaboration in this period.' })),
      section('No identifier left ' + who + ' in the clear', el('div', { class: 'big-fact' },
        el('span', { class: 'big', text: CR.num(p.identifiers_in_the_clear) }),
        el('p', { text: 'identifiers (email addresses, phone numbers) reached the clean room in the clear. ' + who +
          ' scrambles each one with a secret key of its own before it leaves, and people are matched on these scrambled codes only: ' +
          'the clean room never sees who you are, not even as a hash.' }))),
      section('What the privacy guarantee means', [
        el('p', { text: 'Every answer is about a group of people and has random noise added, so it hardly depends on any one person (differential privacy). ' +
          'How much it may depend on you is bounded by a number, ε (epsilon), summed over every answer and match of a collaboration: ' +
          'the smaller, the better. Whatever anyone asks, no answer is more than e^ε times likelier with you in the data than without you: ' +
          'with ε = 1, at most 2.7 times; with ε = 0.1, at most 1.1 times.' }),
        cols.length ? el('ul', { class: 'uses' }, cols.map(function (c) {
          return el('li', null, el('strong', { text: c.name + ': ε = ' + CR.eps(c.epsilon_spent) }),
            ' so far: ' + CR.epsWords(c.epsilon_spent) + (c.delta_spent ? ' (except with a chance of at most ' + CR.eps(c.delta_spent) + ')' : '') + '.');
        })) : null,
        cols.length ? chartBox('exposure', 'Privacy loss (ε) of each collaboration, over its life') : null,
        // Losses add up for someone in several collaborations: the total,
        // not the highest, is that person's exposure.
        el('p', { test: 'exposure-total' }, el('strong', { text: 'In all: ε = ' + CR.eps(p.total_epsilon_spent || 0) }),
          ' across all of ' + who + '\'s collaborations, for someone in every one of them' +
          (p.total_delta_spent ? ' (except with a chance of at most ' + CR.eps(p.total_delta_spent) + ')' : '') + '.'),
        el('p', { test: 'exposure-cap', text: capWords(who, p.exposure_cap || {}) })
      ]),
      section('Your requests, honoured', [
        el('div', { class: 'facts' },
          fact(p.opt_outs_honoured, 'opt-outs honoured'),
          fact(p.deletion_requests_honoured, 'deletion requests honoured'),
          fact(p.expiries_honoured, 'expiries: data deleted when its time ran out'),
          fact(p.median_seconds_to_honour === null || p.median_seconds_to_honour === undefined ? '–' : CR.duration(p.median_seconds_to_honour),
            'median time to honour one')),
        el('p', { text: honoured ? CR.plural(p.identifiers_submitted || 0, 'person was', 'people were') + ' named in these requests; each request got a signed receipt.' :
          'No request to honour in this period.' }),
        chartBox('honoured', 'Requests honoured, by kind')
      ]),
      el('footer', { class: 'muted small', text: 'Generated ' + CR.time(p.generated_at) + '. Every figure is a total: nothing here is about any one person, nor about the data itself.' }));
    CR.append(CR.clear(root), page);

    CR.chart(chartIn(page, 'honoured'), barOption(['opt-outs', 'deletion requests', 'expiries'],
      [{ name: 'honoured', data: [p.opt_outs_honoured || 0, p.deletion_requests_honoured || 0, p.expiries_honoured || 0] }], { labels: true }));
    if (cols.length) {
      CR.chart(chartIn(page, 'exposure'), barOption(cols.map(function (c) { return c.name + ' (' + c.partner_name + ')'; }),
        [{ name: 'ε', data: cols.map(function (c) { return Math.round(c.epsilon_spent * 1e6) / 1e6; }) }], { horizontal: true, labels: true }));
    }
    return page;
  };

  // capWords states the partner's cap on that total in plain words.
  function capWords(who, c) {
    var capped = function (v) { return v !== null && v !== undefined; };
    if (!capped(c.epsilon) && !capped(c.delta)) {
      return who + ' sets no cap on that total.';
    }
    var parts = [];
    if (capped(c.epsilon)) { parts.push('ε = ' + CR.eps(c.epsilon)); }
    if (capped(c.delta)) { parts.push('δ = ' + CR.eps(c.delta)); }
    var monthly = c.refresh === 'monthly';
    return who + ' caps it at ' + parts.join(' and ') + (monthly ? ' in each calendar month (UTC)' : ' over all time') +
      ', and refuses any question or match that would pass it (' + (monthly ? 'this month: ' : 'so far: ') +
      'ε = ' + CR.eps(c.epsilon_spent || 0) + ').';
  }

  function fact(n, what) {
    return el('div', { class: 'fact' }, el('span', { class: 'big', text: typeof n === 'number' ? CR.num(n) : n }), el('span', { text: what }));
  }
})();
