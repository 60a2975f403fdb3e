package main

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

const defaultURL = "http://127.0.0.1:8080"

// checkServerURL refuses what is not a server's base URL, saying what to
// pass: without a scheme Go's parser gives a riddle, and with a path (the
// console's /console/, say) every route answers 404 or 405.
func checkServerURL(from, raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		host, _, _ := strings.Cut(raw, "/")
		return "", fmt.Errorf("%s %s has no scheme: give the server's base URL, such as http://%s", from, printable(raw), printable(host))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%s %s is not a URL (%v): give the server's base URL, such as %s", from, printable(raw), err, defaultURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%s %s: the scheme must be http or https, such as %s", from, printable(raw), defaultURL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%s %s has no host: give the server's base URL, such as %s", from, printable(raw), defaultURL)
	}
	base := u.Scheme + "://" + u.Host
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s %s: give the server's base URL alone, %s (no path: the console's /console/ and the API's /v1/ are under it)", from, printable(raw), printable(base))
	}
	return base, nil
}

// collabIDPattern is what the server's collaboration ids look like
// (partners.NewID): such an argument is taken as an id, without asking.
var collabIDPattern = regexp.MustCompile(`^c_[a-z0-9]+$`)

// resolveCollab returns the id of the collaboration s names: s when it is
// an id, else the id of the caller's one collaboration of that name (a
// live one before a deleted one). A name two of them share is refused,
// listing them.
func resolveCollab(ctx context.Context, cl *client.Client, s string) (string, error) {
	if collabIDPattern.MatchString(s) {
		return s, nil
	}
	cs, err := cl.Collaborations(ctx)
	if err != nil {
		return "", fmt.Errorf("finding the collaboration named %s: %w", printable(s), err)
	}
	var live, deleted []wire.Collaboration
	for _, co := range cs {
		switch {
		case co.ID == s:
			return s, nil
		case co.Name != s:
		case co.State == "deleted":
			deleted = append(deleted, co)
		default:
			live = append(live, co)
		}
	}
	hits := live
	if len(hits) == 0 {
		hits = deleted
	}
	switch len(hits) {
	case 0:
		return "", fmt.Errorf("no collaboration of yours has the id or name %s: cleanroom collab show lists them", printable(s))
	case 1:
		return hits[0].ID, nil
	}
	var ids []string
	for _, co := range hits {
		ids = append(ids, fmt.Sprintf("%s (%s, between %s and %s, created %s)", printable(co.ID), printable(co.State),
			printable(firstNonEmpty(co.ProposerName, co.Proposer)), printable(firstNonEmpty(co.PartnerName, co.Partner)), when(co.CreatedAt)))
	}
	return "", fmt.Errorf("%d collaborations are named %s: give the id of the one you mean: %s", len(hits), printable(s), strings.Join(ids, "; "))
}

// version is set by the linker (make build: -X main.version=$(git
// describe --always --dirty)); versionString falls back to what the Go
// toolchain recorded, so --version never says a bare "dev".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel (no build info)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		// go build -buildvcs=false (this module's GOFLAGS) or a build
		// outside a repository: say so rather than pretend.
		return "devel (no VCS info)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return "v0.0.0-" + rev
}

// partnerIDPattern is what the server's partner ids look like.
var partnerIDPattern = regexp.MustCompile(`^p_[a-z0-9]+$`)

// resolvePartner returns the id of the partner s names: s when it is an
// id, else the partner of that name (names are unique, whatever their
// case), from the partner list an admin reads.
func resolvePartner(ctx context.Context, cl *client.Client, s string) (string, error) {
	if partnerIDPattern.MatchString(s) || s == "" {
		return s, nil
	}
	ps, err := cl.ListPartners(ctx)
	if err != nil {
		return "", fmt.Errorf("finding the partner named %s: %w", printable(s), err)
	}
	for _, p := range ps {
		if p.ID == s || strings.EqualFold(p.Name, s) {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("no partner has the id or name %s: cleanroom partners list lists them", printable(s))
}
