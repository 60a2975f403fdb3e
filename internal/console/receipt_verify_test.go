package console_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/audit"
)

// The engineer's data page verifies a deletion receipt in the page
// (verify.js, CR.verifyReceipt), re-encoding it as Go does before
// checking the server's signature. These tests run it in Node beside
// audit.VerifyReceipt on signed receipts written as the server and the
// console write them, and on altered copies: the verdicts must agree.

const receiptHarness = `
globalThis.window = globalThis;
require(require('path').resolve(process.argv[1]));
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', async () => {
  const {pub, cases} = JSON.parse(input);
  const out = {};
  for (const [name, text] of Object.entries(cases)) {
    const r = await CR.verifyReceipt(text, pub);
    out[name] = {ok: r.ok, error: r.error || ''};
  }
  process.stdout.write(JSON.stringify(out));
});`

func runReceiptJS(t *testing.T, pub string, cases map[string]string) map[string]jsResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node: the page's receipt check runs in the browser tests only")
	}
	b, _ := json.Marshal(map[string]any{"pub": pub, "cases": cases})
	cmd := exec.Command(node, "-e", receiptHarness, "assets/js/verify.js")
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var res map[string]jsResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node's answer: %v\n%s", err, out)
	}
	return res
}

func TestReceiptVerifierAgreesWithGo(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	req := time.Date(2026, 3, 1, 9, 30, 0, 120000000, time.UTC)
	receipts := map[string]audit.Receipt{
		"people": {ID: "r_1", Kind: "identifiers", CollabID: "c_1", PartnerID: "p_1", Identifiers: 2, AudienceRows: 3,
			TableRows: map[string]int64{"purchases": 2, "customers": 1, "café": 0}, Tokens: 2, Cohorts: audit.CohortsRowsRemoved,
			At: req.Add(1500 * time.Millisecond), RequestedAt: &req, AuditSeq: 41, AuditHash: strings.Repeat("ab", 32)},
		// Go escapes <, > and & in strings; the page must too.
		"odd text": {ID: "r_2", Kind: "audience", CollabID: "c_<1>&", PartnerID: "p_1", AudienceID: "a_\u2028x", AudienceRows: 0,
			Tokens: 0, Matches: 1, Cohorts: audit.CohortsDeleted + " \"quoted\" \\ é ☕", At: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), AuditSeq: 7, AuditHash: "00"},
	}
	cases := map[string]string{}
	for name, r := range receipts {
		s := audit.SignReceipt(priv, r)
		compact, _ := json.Marshal(s)
		pretty, _ := json.MarshalIndent(s, "", "  ")
		cases[name+" as signed"] = string(compact)
		cases[name+" as the console saves it"] = string(pretty) + "\n"
		var m map[string]any
		_ = json.Unmarshal(compact, &m)
		alter := func(what string, f func(map[string]any)) {
			c := map[string]any{}
			for k, v := range m {
				c[k] = v
			}
			f(c)
			b, _ := json.Marshal(c)
			cases[name+": "+what] = string(b)
		}
		alter("rows changed", func(c map[string]any) { c["audience_rows"] = 1000 })
		alter("kind changed", func(c map[string]any) { c["kind"] = "optout" })
		alter("time moved", func(c map[string]any) { c["at"] = "2026-03-01T09:30:09Z" })
		alter("log entry changed", func(c map[string]any) { c["audit_seq"] = 40 })
		alter("signature of another", func(c map[string]any) { c["signature"] = "AAAA" })
		alter("field added", func(c map[string]any) { c["note"] = "ignored by Go" })
		alter("key in capitals", func(c map[string]any) { c["ID"] = c["id"]; delete(c, "id") })
		alter("zeros after the fraction", func(c map[string]any) {
			at := c["at"].(string)
			if strings.Contains(at, ".") {
				c["at"] = strings.Replace(at, "Z", "000Z", 1)
			} else {
				c["at"] = strings.Replace(at, "Z", ".000Z", 1)
			}
		})
		alter("rows a string", func(c map[string]any) { c["tokens"] = "2" })
	}
	cases["not json"] = "{"
	cases["an array"] = "[]"
	res := runReceiptJS(t, audit.EncodePublicKey(pub), cases)
	var ok, bad int
	for name, text := range cases {
		var r audit.Receipt
		goErr := json.Unmarshal([]byte(text), &r)
		if goErr == nil {
			goErr = audit.VerifyReceipt(pub, r, nil)
		}
		js := res[name]
		switch {
		case goErr == nil && !js.OK:
			t.Errorf("%s: Go verifies it, the page says %q", name, js.Error)
		case goErr != nil && js.OK:
			t.Errorf("%s: Go says %q, the page says it verifies", name, goErr)
		case goErr == nil:
			ok++
		default:
			bad++
		}
	}
	if ok < 6 || bad < 12 {
		t.Errorf("the cases are not varied enough: %d verify, %d fail", ok, bad)
	}
	if r := res["people: rows changed"]; r.Error != "the receipt's signature is not the server's (forged or altered receipt)" {
		t.Errorf("an altered receipt says %q, want Go's words", r.Error)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	res = runReceiptJS(t, audit.EncodePublicKey(other), map[string]string{"other key": cases["people as signed"]})
	if r := res["other key"]; r.OK {
		t.Error("a receipt verifies with another server's key")
	}
}
