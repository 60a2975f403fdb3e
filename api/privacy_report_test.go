package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/wire"
)

// TestPrivacyReportCountsDataReceived: a collaboration proposed and
// approved but never sent the partner's data is no use of it, and the
// report neither lists nor counts it; one the other partner alone sent
// data to counts for that partner only.
func TestPrivacyReportCountsDataReceived(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	var only, onlyAudience string
	for _, name := range []string{"idle", "publisher only"} {
		co, err := e.brand.admin.Propose(ctx, name, e.pub.id, json.RawMessage(`{"purpose": "measurement"}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
			t.Fatal(err)
		}
		if name == "publisher only" {
			_, pub, _ := audiences()
			a, err := e.pub.eng.Upload(ctx, co.ID, bytes.NewReader(encode(t, e.pub.key, pub)))
			if err != nil {
				t.Fatal(err)
			}
			only, onlyAudience = co.ID, a.ID
		}
	}
	names := func(r wire.PrivacyReport) []string {
		var out []string
		for _, c := range r.Collaborations {
			out = append(out, c.Name)
		}
		return out
	}
	brand, err := e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(brand); len(got) != 1 || got[0] != "campaign" {
		t.Errorf("the brand's report lists %q, want only campaign, the one its data was sent to", got)
	}
	if want := "Brand Co's data was sent to 1 collaboration in this period."; !strings.HasPrefix(brand.Words.Uses, want) {
		t.Errorf("the brand's report says %q, want it to start %q", brand.Words.Uses, want)
	}
	pub, err := e.pub.admin.PrivacyReport(ctx, e.pub.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(pub); len(got) != 2 || !strings.HasPrefix(pub.Words.Uses, "Publisher's data was sent to 2 collaborations") {
		t.Errorf("the publisher's report lists %q and says %q, want campaign and publisher only", got, pub.Words.Uses)
	}
	// Data deleted before the period did not take part in it.
	if _, err := e.pub.eng.DeleteAudience(ctx, only, onlyAudience); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if pub, err = e.pub.admin.PrivacyReport(ctx, e.pub.id, later, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := names(pub); len(got) != 1 || got[0] != "campaign" {
		t.Errorf("a period after the publisher deleted its data from %q lists %q, want only campaign", "publisher only", got)
	}
}

// TestReportSettings: a partner's admin sets the introduction, privacy
// contact and opt-out link its privacy report shows; nobody else may;
// bad input is refused naming the field; the report carries the text as
// given (the page escapes it).
func TestReportSettings(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	set := wire.ReportSettings{
		Introduction:   "We are Brand Co.\n<script>alert(1)</script> & friends",
		PrivacyContact: "privacy@brand.example",
		OptOutURL:      "https://brand.example/opt-out?x=1&y=2",
	}
	got, err := e.brand.admin.SetReportSettings(ctx, e.brand.id, set)
	if err != nil || got != set {
		t.Fatalf("setting: %+v, %v", got, err)
	}
	rep, err := e.brand.audit.PrivacyReport(ctx, e.brand.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.About != set {
		t.Errorf("the report shows %+v, want %+v", rep.About, set)
	}
	if pub, err := e.pub.admin.PrivacyReport(ctx, e.pub.id, time.Time{}, time.Time{}); err != nil || pub.About != (wire.ReportSettings{}) {
		t.Errorf("the publisher's report shows the brand's settings: %+v, %v", pub.About, err)
	}

	// Admin only, and only of its own partner.
	for _, c := range []struct {
		who    string
		key    string
		pid    string
		status int
	}{
		{"the brand's auditor", e.brand.audit.Key, e.brand.id, http.StatusForbidden},
		{"the brand's engineer", e.brand.eng.Key, e.brand.id, http.StatusForbidden},
		{"the brand's analyst", e.brand.analyst.Key, e.brand.id, http.StatusForbidden},
		{"the operator", e.op.Key, e.brand.id, http.StatusForbidden},
		{"the publisher's admin", e.pub.admin.Key, e.brand.id, http.StatusNotFound},
	} {
		st, _ := e.post(c.key, "/v1/partners/"+c.pid+"/report-settings", wire.ReportSettings{Introduction: "hacked"}, http.MethodPut)
		if st != c.status {
			t.Errorf("%s setting the brand's report settings: %d, want %d", c.who, st, c.status)
		}
	}

	for _, c := range []struct {
		name string
		set  wire.ReportSettings
		want string
	}{
		{"http link", wire.ReportSettings{OptOutURL: "http://brand.example/opt-out"}, "opt_out_url"},
		{"javascript link", wire.ReportSettings{OptOutURL: "javascript:alert(1)"}, "opt_out_url"},
		{"link with a user", wire.ReportSettings{OptOutURL: "https://me@brand.example/"}, "opt_out_url"},
		{"link too long", wire.ReportSettings{OptOutURL: "https://brand.example/" + strings.Repeat("a", 500)}, "opt_out_url: 522 characters, at most 500"},
		{"introduction too long", wire.ReportSettings{Introduction: strings.Repeat("é", 2001)}, "introduction: 2001 characters, at most 2000"},
		{"control character", wire.ReportSettings{PrivacyContact: "privacy\x1b[31m@brand.example"}, "privacy_contact: character U+001B"},
		{"newline in the contact", wire.ReportSettings{PrivacyContact: "a\nb"}, "privacy_contact"},
		{"carriage return in the introduction", wire.ReportSettings{Introduction: "a\r\nb"}, "introduction"},
	} {
		_, err := e.brand.admin.SetReportSettings(ctx, e.brand.id, c.set)
		if status(err) != http.StatusBadRequest || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want 400 naming %q", c.name, err, c.want)
		}
	}
	// A refused change leaves the settings as they were.
	if rep, err := e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Time{}, time.Time{}); err != nil || rep.About != set {
		t.Errorf("after refused changes the report shows %+v, %v", rep.About, err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'partner.report_settings' AND partner_id = ?`, e.brand.id); n != 1 {
		t.Errorf("%d audit entries of report settings, want the 1 accepted change", n)
	}
}
