// What each rule means, in a sentence a partner's admin can agree to:
// the rules display, its diff and the rules form all say it the same way
// (the API's field names stay beside it, for whoever writes rules files).
(function () {
  'use strict';
  var CR = window.CR;

  // Labels name each rule for people; the field name is shown beside.
  CR.ruleLabels = {
    purpose: 'Consent purpose', id_type: 'Identifier', gmail_rule: 'Gmail rule', dimensions: 'Dimensions', metrics: 'Metrics',
    queriers: 'Who may ask', min_cohort_users: 'Smallest cohort', min_group_users: 'Smallest group', epsilon_budget: 'Epsilon budget',
    delta_budget: 'Delta budget', delta: 'Delta a question', min_query_epsilon: 'Least epsilon a question', max_query_epsilon: 'Most epsilon a question',
    default_query_epsilon: 'Default epsilon a question', budget_refresh: 'Budget refresh', noise: 'Noise',
    max_groups_contributed: 'Groups a person adds to', max_rows_per_person: 'Rows a person adds to a count', min_upload_users: 'Smallest table',
    match_epsilon: 'Epsilon a match', public_groups: 'Public groups', templates: 'Templates', tables: 'Declared tables'
  };

  function list(xs) {
    xs = xs || [];
    if (xs.length <= 1) return xs.join('');
    return xs.slice(0, -1).join(', ') + ' and ' + xs[xs.length - 1];
  }
  function n(x) { return typeof x === 'number' ? CR.num(x, 6) : String(x); }
  function people(x) { return CR.plural(x, 'person', 'people'); }

  // explainRule says what rule k at value v lets analysts do, or keeps
  // from them, in one sentence; names maps a partner ID to its name.
  CR.explainRule = function (k, v, names) {
    names = names || function (x) { return x; };
    switch (k) {
      case 'purpose': return 'Only people who consented to "' + v + '" can match.';
      case 'id_type': return 'Both parties match people by ' + ({ email: 'email address', phone: 'phone number', maid: 'mobile advertising ID' }[v] || v) + ', plain or already hashed with SHA-256.';
      case 'gmail_rule': return v ? 'Gmail addresses match whatever their dots and +tags.' : 'Gmail addresses match only with the same dots and +tags.';
      case 'dimensions': return v && v.length ? 'Analysts may group and filter on ' + list(v) + '.' : 'No columns to group or filter on beyond the declared tables\'.';
      case 'metrics': {
        var ms = Object.keys(v || {}).sort();
        return ms.length ? 'Analysts may sum and average ' + list(ms.map(function (m) { return m + ' (each person counted within ' + n(v[m][0]) + ' to ' + n(v[m][1]) + ')'; })) + '.' :
          'No columns to sum or average beyond the declared tables\' metrics.';
      }
      case 'queriers': return v && v.length ? 'Only analysts of ' + list(v.map(names)) + ' may ask questions.' : 'Analysts of both partners may ask questions.';
      case 'min_cohort_users': return 'No question is answered until a match has released a cohort of at least ' + people(v) + ' (its noisy size).';
      case 'min_group_users': return v > 0 ? 'A group of an answer whose noisy count is under ' + people(v) + ' is left out.' : 'No group is left out for being small (partition selection still applies).';
      case 'epsilon_budget': return 'Each partner\'s analysts may spend ε ' + n(v) + ' in all (per budget period): it bounds what all their answers together reveal about any one person.';
      case 'delta_budget': return 'Each partner may spend δ ' + CR.eps(v) + ' in all on questions that need a delta.';
      case 'delta': return 'A question that needs a delta (groups found in the data, or Gaussian noise) spends δ ' + CR.eps(v) + ': the small chance its guarantee does not hold.';
      case 'min_query_epsilon': return 'A question spends at least ε ' + n(v) + ' (less would be mostly noise).';
      case 'max_query_epsilon': return 'A question spends at most ε ' + n(v) + '.';
      case 'default_query_epsilon': return 'A question that names no epsilon spends ε ' + n(v) + '.';
      case 'budget_refresh': return v === 'monthly' ? 'Budgets start over on the first of each month (UTC); what people are exposed to still adds up.' : 'Budgets never start over: what is spent is spent for the collaboration\'s life.';
      case 'noise': return v === 'gaussian' ? 'Answers carry Gaussian noise, which spends the delta on every question.' : 'Answers carry Laplace noise.';
      case 'max_groups_contributed': return 'One person adds to at most ' + CR.plural(v, 'group') + ' of an answer; their other groups are dropped at random.';
      case 'max_rows_per_person': return 'A count of rows counts at most ' + CR.plural(v, 'row') + ' of one person in a group (a declared table may set its own).';
      case 'min_upload_users': return 'Each party\'s data must hold at least ' + people(v) + ' who can match.';
      case 'match_epsilon': return 'Each match spends ε ' + n(v) + ' of both partners\' budgets to release the cohort\'s noisy size.';
      case 'public_groups': {
        var gs = Object.keys(v || {}).sort();
        return gs.length ? 'Answers grouped by ' + list(gs) + ' release every declared value (an empty one as a noisy zero), with no delta spent.' :
          'No public groups: groups found in the data pass partition selection, which spends the delta.';
      }
      case 'templates': return v && v.length ? 'Named questions both partners approve: ' + list(v.map(function (t) { return t.name; })) + ' (beside the built-in ones).' :
        'Only the built-in named questions (overlap, reach and frequency, conversion lift, sales after exposure).';
      case 'tables': {
        if (!v || !v.length) return 'No tables declared: each partner brings one table, named audience, with the columns it uploads.';
        var by = function (p) { return v.filter(function (t) { return t.party === p; }).map(function (t) { return t.name; }); };
        return 'The proposer brings ' + (list(by('proposer')) || 'no table') + ' and the partner ' + (list(by('partner')) || 'no table') + ', each with exactly its declared columns.';
      }
    }
    return '';
  };

  // ruleName is a rule's label with its field name.
  CR.ruleName = function (k) {
    return [CR.ruleLabels[k] || k, ' ', CR.el('code', { class: 'small muted', text: k })];
  };
})();
