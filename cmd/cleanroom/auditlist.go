package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// auditPage is how many entries one request to /v1/audit asks for while
// audit list filters on what the server cannot (an action prefix, several
// keys of one label).
const auditPage = 1000

// keyIDPattern is what an API key id looks like; "system" is the
// server's own actor.
var keyIDPattern = regexp.MustCompile(`^k_[a-z0-9]+$`)

// auditQuery is what audit list asks for.
type auditQuery struct {
	collab, action, actor, since, until string
	limit                               int
	before, after                       int64
}

func newAuditListCmd() *cobra.Command {
	var c conn
	var f outFormat
	var q auditQuery
	cmd := &cobra.Command{
		Use:   "list [--collab C] [--action PREFIX] [--actor KEY] [--since T] [--until T] [--limit N] [--before SEQ]",
		Short: "List the audit entries your key may read, newest first, filtered",
		Long: `list prints the audit entries your key may read (an auditor's or admin's:
its partner's actions and everything about its collaborations; all for the
operator), newest first, as a table or JSON.

  --collab C       a collaboration's entries, by id or name
  --action PREFIX  entries whose action starts with PREFIX: query matches
                   query.run, query.cached and query.refused
  --actor KEY      entries done by a key, by id (k_...) or label (every key
                   of that label: a rotated key keeps its label)
  --since, --until the period, a day (2026-03-01, UTC) or an RFC 3339 time;
                   a day given to --until means its end
  --limit N        at most N entries (default 50); when more match, the
                   last line says how to see the next page (--before SEQ)

Verify what you read with cleanroom audit export and audit verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.limit < 1 {
				return fmt.Errorf("audit list: --limit %d: want 1 or more", q.limit)
			}
			from, err := parseDate("audit list", "--since", q.since, false)
			if err != nil {
				return err
			}
			to, err := parseDate("audit list", "--until", q.until, true)
			if err != nil {
				return err
			}
			if !from.IsZero() && !to.IsZero() && !from.Before(to) {
				return fmt.Errorf("audit list: --since %s is not before --until %s", q.since, q.until)
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if q.collab != "" {
				if q.collab, err = resolveCollab(ctx, cl, q.collab); err != nil {
					return fmt.Errorf("audit list: --collab: %w", err)
				}
			}
			var labels map[string]string // key id -> label
			var actors map[string]bool
			if q.actor != "" {
				if keyIDPattern.MatchString(q.actor) || q.actor == "system" {
					actors = map[string]bool{q.actor: true}
				} else {
					if labels, err = keyLabels(ctx, cl); err != nil {
						return fmt.Errorf("audit list: --actor %s: reading key labels: %w", printable(q.actor), err)
					}
					actors = map[string]bool{}
					for id, l := range labels {
						if l == q.actor {
							actors[id] = true
						}
					}
					if len(actors) == 0 {
						return fmt.Errorf("audit list: --actor %s: no key of that label among those your key may see; give a key id (k_...), as audit list shows them", printable(q.actor))
					}
				}
			}
			entries, more, err := listAudit(ctx, cl, q, from, to, actors)
			if err != nil {
				return err
			}
			if f == "json" {
				if err := printOut(cmd, struct {
					Entries []audit.Entry `json:"entries"`
				}{entries}); err != nil {
					return err
				}
			} else {
				if labels == nil {
					labels, _ = keyLabels(ctx, cl) // a label is a help, not a need
				}
				names := map[string]string{}
				if cs, err := cl.Collaborations(ctx); err == nil {
					for _, co := range cs {
						names[co.ID] = co.Name
					}
				}
				var b strings.Builder
				auditTable(&b, entries, labels, names)
				if _, err := cmd.OutOrStdout().Write(escapeControls([]byte(b.String()))); err != nil {
					return err
				}
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "more entries match: add --before %d for the next page\n", entries[len(entries)-1].Seq)
			}
			return nil
		},
	}
	c.flags(cmd)
	f.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&q.collab, "collab", "", "only this collaboration's entries (id or name)")
	fl.StringVar(&q.action, "action", "", "only actions starting with this, such as query or key.create")
	fl.StringVar(&q.actor, "actor", "", "only entries done by this key (id, or label)")
	fl.StringVar(&q.since, "since", "", "entries at or after this day or time (UTC)")
	fl.StringVar(&q.until, "until", "", "entries before this time, or up to the end of this day (UTC)")
	fl.IntVar(&q.limit, "limit", 50, "at most this many entries")
	fl.Int64Var(&q.before, "before", 0, "entries before this sequence number (the next page)")
	fl.Int64Var(&q.after, "after", 0, "entries after this sequence number")
	return cmd
}

// listAudit pages through /v1/audit newest first, keeping the entries
// that pass the filters the server lacks, until q.limit are found; more
// says whether others match beyond them.
func listAudit(ctx context.Context, cl *client.Client, q auditQuery, from, to time.Time, actors map[string]bool) (entries []audit.Entry, more bool, err error) {
	v := url.Values{"order": {"desc"}, "limit": {strconv.Itoa(auditPage)}}
	if q.collab != "" {
		v.Set("collab", q.collab)
	}
	if len(actors) == 1 {
		for a := range actors {
			v.Set("actor", a)
		}
	}
	if !from.IsZero() {
		v.Set("since", from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		v.Set("until", to.UTC().Format(time.RFC3339))
	}
	if q.after > 0 {
		v.Set("after", strconv.FormatInt(q.after, 10))
	}
	before := q.before
	for {
		if before > 0 {
			v.Set("before", strconv.FormatInt(before, 10))
		}
		raw, err := cl.AuditLog(ctx, v)
		if err != nil {
			return nil, false, fmt.Errorf("audit list: %w", err)
		}
		var page struct {
			Entries []audit.Entry `json:"entries"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, false, fmt.Errorf("audit list: the server's answer: %w", err)
		}
		for _, e := range page.Entries {
			if !strings.HasPrefix(e.Action, q.action) || (actors != nil && !actors[e.Actor]) {
				continue
			}
			if len(entries) == q.limit {
				return entries, true, nil
			}
			entries = append(entries, e)
		}
		if len(page.Entries) < auditPage {
			return entries, false, nil
		}
		before = page.Entries[len(page.Entries)-1].Seq
	}
}

// keyLabels maps the key ids the caller may see to their labels: its
// partner's keys for an admin, and the keys whose creation is in the log
// it may read (an auditor's, the operator's).
func keyLabels(ctx context.Context, cl *client.Client) (map[string]string, error) {
	labels := map[string]string{}
	me, err := cl.Me(ctx)
	if err != nil {
		return nil, err
	}
	if me.Role == wire.Admin && !me.Operator {
		keys, err := cl.ListKeys(ctx, me.PartnerID)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			labels[k.ID] = k.Label
		}
	}
	if me.Label != "" {
		labels[me.KeyID] = me.Label
	}
	raw, err := cl.AuditLog(ctx, url.Values{"action": {string(audit.KeyCreate)}, "limit": {"10000"}})
	if err != nil {
		return nil, err
	}
	var page struct {
		Entries []audit.Entry `json:"entries"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, err
	}
	for _, e := range page.Entries {
		var d struct {
			KeyID string `json:"key_id"`
			Label string `json:"label"`
		}
		if json.Unmarshal(e.Details, &d) == nil && d.KeyID != "" {
			labels[d.KeyID] = d.Label
		}
	}
	return labels, nil
}

// auditTable prints entries for people: actors with their labels and
// collaborations with their names where known, details as compact JSON.
func auditTable(out io.Writer, entries []audit.Entry, labels, names map[string]string) {
	if len(entries) == 0 {
		fmt.Fprintln(out, "no entry matches")
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tAT (UTC)\tACTION\tACTOR\tCOLLABORATION\tDETAILS")
	for _, e := range entries {
		actor := printable(e.Actor)
		if l := labels[e.Actor]; l != "" {
			actor += " (" + printable(l) + ")"
		}
		collab := "-"
		if e.CollabID != "" {
			collab = printable(e.CollabID)
			if n := names[e.CollabID]; n != "" {
				collab += " (" + printable(n) + ")"
			}
		}
		details := "-"
		if len(e.Details) > 0 {
			var b bytes.Buffer
			if json.Compact(&b, e.Details) == nil {
				details = printable(b.String())
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.UTC().Format("2006-01-02 15:04:05"), printable(e.Action), actor, collab, details)
	}
	w.Flush()
}
