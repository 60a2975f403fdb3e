package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Limits of a partner's report settings, in characters.
const (
	maxIntroduction   = 2000
	maxPrivacyContact = 200
	maxOptOutURL      = 500
)

// CheckSettings refuses settings a public page should not carry, naming
// the field and why.
func CheckSettings(s wire.ReportSettings) error {
	for _, f := range []struct {
		name, value string
		max         int
	}{{"introduction", s.Introduction, maxIntroduction}, {"privacy_contact", s.PrivacyContact, maxPrivacyContact}, {"opt_out_url", s.OptOutURL, maxOptOutURL}} {
		if n := utf8.RuneCountInString(f.value); n > f.max {
			return errs.New(errs.Invalid, "%s: %d characters, at most %d", f.name, n, f.max)
		}
		// The introduction is paragraphs: newlines between them, no
		// other control character anywhere.
		lines := []string{f.value}
		if f.name == "introduction" {
			lines = strings.Split(f.value, "\n")
		}
		for _, l := range lines {
			if err := wire.CheckText(f.name, l); err != nil {
				return errs.New(errs.Invalid, "%v", err)
			}
		}
	}
	if s.OptOutURL != "" {
		u, err := url.Parse(s.OptOutURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return errs.New(errs.Invalid, "opt_out_url: %q is not an https URL with a host and no user name (https://example.com/privacy/opt-out)", s.OptOutURL)
		}
	}
	return nil
}

// SetSettings stores partnerID's report settings, whole, with their
// audit entry.
func (s *Service) SetSettings(ctx context.Context, actor partners.Principal, partnerID string, set wire.ReportSettings, now time.Time) error {
	if err := CheckSettings(set); err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		if _, err := partners.GetPartner(ctx, tx, partnerID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO report_settings (partner_id, introduction, privacy_contact, opt_out_url, updated_at)
			VALUES (?, ?, ?, ?, ?)`, partnerID, set.Introduction, set.PrivacyContact, set.OptOutURL, now.UTC()); err != nil {
			return fmt.Errorf("report settings: %w", err)
		}
		_, err := auditlog.Append(ctx, tx, actor.KeyID, partnerID, "", audit.PartnerReportSettings,
			map[string]any{"introduction": set.Introduction, "privacy_contact": set.PrivacyContact, "opt_out_url": set.OptOutURL})
		return err
	})
}

// settingsOf reads partnerID's report settings (all empty when never set).
func settingsOf(ctx context.Context, q store.Querier, partnerID string) (wire.ReportSettings, error) {
	var set wire.ReportSettings
	err := q.QueryRowContext(ctx, `SELECT introduction, privacy_contact, opt_out_url FROM report_settings WHERE partner_id = ?`, partnerID).
		Scan(&set.Introduction, &set.PrivacyContact, &set.OptOutURL)
	if errors.Is(err, sql.ErrNoRows) {
		return set, nil
	}
	if err != nil {
		return set, fmt.Errorf("report settings: %w", err)
	}
	return set, nil
}
