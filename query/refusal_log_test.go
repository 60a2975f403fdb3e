package query

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// A refusal whose audit entry cannot be written still reaches the caller;
// the failed entry is logged at error level and counted.
func TestRefusalAuditFailureLoggedAndCounted(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	var logs bytes.Buffer
	s := &Service{DB: db, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	c := wire.Collaboration{ID: "c_test", State: wire.StateActive, Rules: wire.DefaultRules()}
	actor := partners.Principal{KeyID: "k_analyst", PartnerID: "p_brand", Role: wire.Analyst}
	req := wire.Request{SQL: "SELECT COUNT(*) FROM cohort", Epsilon: 5} // above max_query_epsilon

	// The log works: a refusal is written and nothing is reported.
	_, err := s.Run(ctx, actor, c, req)
	if qe, ok := asError(err); !ok || qe.Kind != errs.EpsilonNotAllowed {
		t.Fatalf("Run: %v, want the %s refusal", err, errs.EpsilonNotAllowed.Code())
	}
	if n := s.RefusalsNotLogged(); n != 0 || logs.Len() != 0 {
		t.Fatalf("%d refusals not logged, log %q", n, logs.String())
	}

	// The log fails.
	if _, err := db.SQL().Exec(`ALTER TABLE audit_log RENAME TO audit_log_away`); err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(ctx, actor, c, req)
	if qe, ok := asError(err); !ok || qe.Kind != errs.EpsilonNotAllowed {
		t.Fatalf("Run with the audit log failing: %v, want the %s refusal", err, errs.EpsilonNotAllowed.Code())
	}
	if n := s.RefusalsNotLogged(); n != 1 {
		t.Errorf("%d refusals counted as not logged, want 1", n)
	}
	line := logs.String()
	for _, want := range []string{"level=ERROR", "query refusal not written to the audit log", "collab=c_test", "code=" + string(errs.EpsilonNotAllowed.Code())} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "FROM cohort") {
		t.Errorf("log %q holds the query's text", line)
	}
}
