package console_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/audit"
)

// The console verifies audit exports in the page (assets/js/verify.js)
// so an auditor need not trust the server. It must agree with `cleanroom
// audit verify` (audit.ReadExport, then audit.Verify) on every export:
// these tests run both on a log with first-version entries, private
// parts and redacted entries, and on hundreds of tampered copies, and
// want the same verdict and, for the chain's checks, the same words.
// The page's code runs in Node (skipped without it); the browser tests
// run it in Chromium too.

// lengthPrefixed is the audit package's field hashing, to build version
// 2 entries' content hashes here.
func lengthPrefixed(fields ...string) string {
	h := sha256.New()
	for _, s := range fields {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// testLog builds an export of a log: entries 1-3 of the first version,
// then version 2 ones, some with a private part, some redacted for the
// reader; and a head signed with a new key.
func testLog(t *testing.T) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)
	prev := audit.GenesisHash
	var lines []string
	const n = 14
	for seq := int64(1); seq <= n; seq++ {
		e := audit.Entry{Seq: seq, At: at.Add(time.Duration(seq) * time.Minute), Actor: "k_brand", PartnerID: "p_brand",
			CollabID: "c_1", Action: "query.run", PrevHash: prev}
		details := map[string]any{"sql": "SELECT label, COUNT(*) FROM cohort WHERE x < 3 & y > 2", "epsilon": 0.5, "n": seq, "note": "café ☕ \u2028"}
		if seq%4 == 0 {
			// A private part, committed to in the details, as AppendPrivate does.
			e.Private = json.RawMessage(fmt.Sprintf(`{"nonce":"%032x","rows":%d}`, seq, 1000+seq))
			sum := sha256.Sum256(e.Private)
			details[audit.PrivateCommitment] = hex.EncodeToString(sum[:])
		}
		if seq == 7 {
			e.CollabID = "" // an action outside any collaboration
		}
		if seq == 11 || seq == 12 {
			// Large fields: the page's hashing grows its buffers.
			details["sql"] = strings.Repeat("SELECT é ☕ ", 500)
		}
		if seq == 12 {
			e.Private = json.RawMessage(fmt.Sprintf(`{"nonce":"%032x","big":%q}`, seq, strings.Repeat("x", 6000)))
			sum := sha256.Sum256(e.Private)
			details[audit.PrivateCommitment] = hex.EncodeToString(sum[:])
		}
		e.Details, _ = json.Marshal(details)
		if seq > 3 {
			e.Version = 2
			e.ContentHash = lengthPrefixed("cleanroom-audit-content-v2", e.At.UTC().Format(time.RFC3339Nano),
				e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details))
		}
		e.Hash = audit.Hash(&e)
		prev = e.Hash
		if seq == 2 || seq == 6 || seq == 9 || seq == 10 {
			// Another partner's entry: only its place in the chain.
			e = audit.Entry{Version: e.Version, Seq: e.Seq, PrevHash: e.PrevHash, ContentHash: e.ContentHash, Hash: e.Hash, Redacted: true}
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	h := audit.Head{Seq: n, Hash: prev, At: at.Add(time.Hour), V2From: 4}
	msg := fmt.Sprintf("cleanroom-audit-head-v2\n%d\n%s\n%s\n%d", h.Seq, h.Hash, h.At.UTC().Format(time.RFC3339Nano), h.V2From)
	h.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg)))
	hb, _ := json.Marshal(map[string]any{"head": h})
	lines = append(lines, string(hb))
	export := strings.Join(lines, "\n") + "\n"
	if err := goVerify(export, audit.EncodePublicKey(pub)); err != nil {
		t.Fatalf("the test log does not verify in Go: %v", err)
	}
	return export, audit.EncodePublicKey(pub)
}

func goVerify(export, pub string) error {
	key, err := audit.ParsePublicKey(pub)
	if err != nil {
		return err
	}
	entries, head, err := audit.ReadExport(strings.NewReader(export))
	if err != nil {
		return err
	}
	return audit.Verify(entries, head, key)
}

// tampered gives named variants of an export: edits an attacker (or an
// accident) might make, and harmless re-encodings Go accepts.
func tampered(export string) map[string]string {
	lines := strings.Split(strings.TrimSuffix(export, "\n"), "\n")
	join := func(l []string) string { return strings.Join(l, "\n") + "\n" }
	edit := func(i int, from, to string) string {
		l := append([]string(nil), lines...)
		l[i] = strings.Replace(l[i], from, to, 1)
		return join(l)
	}
	last := len(lines) - 1
	cases := map[string]string{
		"as exported":             export,
		"empty":                   "",
		"blank lines":             "\n\n \t\n",
		"not json":                "hello\n",
		"no head":                 join(lines[:last]),
		"head only":               lines[last] + "\n",
		"head twice":              join(append(append([]string(nil), lines...), lines[last])),
		"bracket after head":      export + "]\n",
		"garbage after head":      export + "x\n",
		"truncated":               export[:len(export)/2],
		"one line":                strings.Join(lines, " "),
		"array line":              edit(0, lines[0], "[1,2]"),
		"null line":               edit(0, lines[0], "null"),
		"string line":             edit(0, lines[0], `"x"`),
		"entry removed":           join(append(append([]string(nil), lines[:4]...), lines[5:]...)),
		"entries swapped":         join(append(append(append([]string(nil), lines[:4]...), lines[5], lines[4]), lines[6:]...)),
		"entry duplicated":        join(append(append([]string(nil), lines[:5]...), lines[4:]...)),
		"last entry cut":          join(append(append([]string(nil), lines[:last-1]...), lines[last])),
		"signature altered":       edit(last, `"signature":"`, `"signature":"AA`),
		"signature other bytes":   edit(last, `"signature":"`, `"signature":"B`),
		"head seq":                edit(last, `"seq":14`, `"seq":13`),
		"head hash":               edit(last, `"hash":"`, `"hash":"0`),
		"head v2_from":            edit(last, `"v2_from":4`, `"v2_from":3`),
		"head at":                 edit(last, `"at":"2026`, `"at":"2027`),
		"head null":               edit(last, lines[last], `{"head":null}`),
		"head not object":         edit(last, lines[last], `{"head":5}`),
		"head seq string":         edit(last, `"seq":14`, `"seq":"14"`),
		"head key case":           edit(last, `{"head":`, `{"HEAD":`),
		"head spaced":             edit(last, `{"head":`, "{ \"head\" :\n"),
		"v2 stub made v1":         edit(5, `"v":2,`, ``),
		"v1 made v2":              edit(0, `{"seq"`, `{"v":2,"seq"`),
		"unknown version":         edit(4, `"v":2`, `"v":3`),
		"version float":           edit(4, `"v":2`, `"v":2.0`),
		"seq string":              edit(4, `"seq":5`, `"seq":"5"`),
		"seq negative zero":       edit(4, `"seq":5`, `"seq":-0`),
		"details edited":          edit(4, `"epsilon":0.5`, `"epsilon":0.6`),
		"details spaced":          edit(4, `"details":{"`, `"details":{ "`),
		"details key order":       edit(4, `"details":{"epsilon":0.5,`, `"details":{`),
		"details removed":         edit(4, `"details":`, `"xdetails":`),
		"details null v1":         edit(0, `"details":{`, `"details":null,"x":{`),
		"outer whitespace":        edit(4, `"seq":5,`, "\"seq\" : 5 ,\t"),
		"key upper case":          edit(4, `"actor":`, `"ACTOR":`),
		"key long s":              edit(4, `"seq":`, `"ſeq":`),
		"key kelvin":              edit(4, `"hash":"`, `"hash":"x","\u212aey":1,"hash":"`),
		"duplicate actor":         edit(4, `"actor":"k_brand",`, `"actor":"k_brand","actor":"k_other",`),
		"duplicate actor null":    edit(4, `"actor":"k_brand",`, `"actor":"k_brand","actor":null,`),
		"duplicate details null":  edit(4, `"prev_hash"`, `"details":null,"prev_hash"`),
		"actor escaped":           edit(4, `"actor":"k_brand"`, `"actor":"k\u005fbrand"`),
		"actor escaped wrongly":   edit(4, `"actor":"k_brand"`, `"actor":"k\u005Fbrand\ud800"`),
		"actor number":            edit(4, `"actor":"k_brand"`, `"actor":5`),
		"proto key":               edit(4, `{"v":2,`, `{"__proto__":{"x":1},"constructor":1,"v":2,`),
		"at other zone":           edit(4, `T09:35:00.123456Z`, `T10:35:00.123456+01:00`),
		"at more digits":          edit(4, `T09:35:00.123456Z`, `T09:35:00.1234560000Z`),
		"at ten digits":           edit(4, `T09:35:00.123456Z`, `T09:35:00.1234560009Z`),
		"at other instant":        edit(4, `T09:35:00.123456Z`, `T09:35:00.123457Z`),
		"at escaped":              edit(4, `"at":"2026`, `"at":"\u00326`),
		"at bad":                  edit(4, `T09:35`, `T25:35`),
		"at number":               edit(4, `"at":"2026-03-01T09:35:00.123456Z"`, `"at":5`),
		"at null":                 edit(4, `"at":"2026-03-01T09:35:00.123456Z"`, `"at":null`),
		"content hash edited":     edit(4, `"content_hash":"`, `"content_hash":"0`),
		"content hash dropped":    edit(4, `"content_hash":"`, `"xcontent_hash":"`),
		"private edited":          edit(3, `"rows":1004`, `"rows":1005`),
		"private spaced":          edit(3, `"private":{"`, `"private":{ "`),
		"private removed":         edit(3, `"private":`, `"xprivate":`),
		"private null":            edit(3, `"private":{`, `"private":null,"x":{`),
		"private added":           edit(4, `"details":`, `"private":{"a":1},"details":`),
		"commitment removed":      edit(3, `"private_sha256"`, `"private_sha257"`),
		"commitment upper":        edit(3, `"private_sha256":"`, `"PRIVATE_SHA256":"`),
		"stub with actor":         edit(5, `"redacted":true`, `"redacted":true,"actor":"k_x"`),
		"stub with empty actor":   edit(5, `"redacted":true`, `"redacted":true,"actor":""`),
		"stub with zero at":       edit(5, `"redacted":true`, `"redacted":true,"at":"0001-01-01T00:00:00Z"`),
		"stub with zero at zone":  edit(5, `"redacted":true`, `"redacted":true,"at":"0001-01-01T01:00:00+01:00"`),
		"stub with null details":  edit(5, `"redacted":true`, `"redacted":true,"details":null`),
		"stub with details":       edit(5, `"redacted":true`, `"redacted":true,"details":{}`),
		"stub with collab":        edit(5, `"redacted":true`, `"redacted":true,"collab_id":""`),
		"stub with ACTOR":         edit(5, `"redacted":true`, `"redacted":true,"ACTOR":"k","actor":"j","zz":1`),
		"stub with private":       edit(5, `"redacted":true`, `"redacted":true,"private":1`),
		"stub redacted upper":     edit(5, `"redacted":true`, `"REDACTED":true`),
		"stub unredacted":         edit(5, `,"redacted":true`, ``),
		"stub content hash":       edit(5, `"content_hash":"`, `"content_hash":"1`),
		"v1 stub content hash":    edit(1, `"hash":"`, `"content_hash":"ab","hash":"`),
		"v1 stub hash":            edit(1, `"hash":"`, `"hash":"1`),
		"visible made stub":       edit(4, `"hash":"`, `"redacted":true,"hash":"`),
		"redacted false":          edit(5, `"redacted":true`, `"redacted":false`),
		"redacted string":         edit(5, `"redacted":true`, `"redacted":"true"`),
		"prev hash edited":        edit(4, `"prev_hash":"`, `"prev_hash":"1`),
		"bom":                     "\ufeff" + export,
		"crlf":                    strings.ReplaceAll(export, "\n", "\r\n"),
		"unterminated string":     edit(4, `"actor":"k_brand"`, `"actor":"k_brand`),
		"control in string":       edit(4, `"actor":"k_brand"`, "\"actor\":\"k_\tbrand\""),
		"bad escape":              edit(4, `"actor":"k_brand"`, `"actor":"k\xbrand"`),
		"bad literal":             edit(5, `"redacted":true`, `"redacted":tru`),
		"bad number":              edit(4, `"seq":5`, `"seq":-`),
		"missing colon":           edit(4, `"seq":5`, `"seq" 5`),
		"trailing comma":          edit(4, `"seq":5,`, `"seq":5,,`),
		"invalid utf-8 in actor":  edit(4, `"actor":"k_brand"`, "\"actor\":\"k_\xe2\x82brand\""),
		"invalid utf-8 in detail": edit(4, `"epsilon":0.5`, "\"epsilon\":0.5,\"z\":\"\xff\""),
	}
	// Each line's every byte changed, for a few lines: the verdicts and
	// messages must agree wherever the damage lands.
	r := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < 300; k++ {
		i := r.IntN(len(export))
		b := []byte(export)
		const alphabet = " \n\"{}[],:0123456789abcdefxyzAZ\\.-+eE\x00\xff"
		b[i] = alphabet[r.IntN(len(alphabet))]
		cases[fmt.Sprintf("byte %d changed", i)] = string(b)
	}
	return cases
}

// harness runs the page's verifier in Node on cases, each as base64 of
// its bytes, and prints each result as JSON.
const harness = `
globalThis.window = globalThis;
require(require('path').resolve(process.argv[1]));
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', async () => {
  const {pub, cases} = JSON.parse(input);
  const out = {};
  for (const [name, b64] of Object.entries(cases)) {
    const r = await CR.verifyExport(Buffer.from(b64, 'base64'), pub);
    out[name] = {ok: r.ok, error: r.error || '', entries: r.entries, headSeq: r.headSeq, signatureChecked: r.signatureChecked};
  }
  process.stdout.write(JSON.stringify(out));
});`

type jsResult struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	Entries          int    `json:"entries"`
	HeadSeq          int64  `json:"headSeq"`
	SignatureChecked bool   `json:"signatureChecked"`
}

func runJS(t *testing.T, pub string, cases map[string]string) map[string]jsResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node: the page's verifier is checked against Go's in the browser tests only")
	}
	in := map[string]any{"pub": pub}
	enc := map[string]string{}
	for name, text := range cases {
		enc[name] = base64.StdEncoding.EncodeToString([]byte(text))
	}
	in["cases"] = enc
	b, _ := json.Marshal(in)
	cmd := exec.Command(node, "-e", harness, "assets/js/verify.js")
	cmd.Dir = "."
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

// lineError is an error of ReadExport's JSON parsing: the page names the
// same line, in words of its own.
var lineError = regexp.MustCompile(`^line \d+: `)

func TestVerifierAgreesWithGo(t *testing.T) {
	export, pub := testLog(t)
	cases := tampered(export)
	res := runJS(t, pub, cases)
	var failed, passed int
	for name, text := range cases {
		goErr := goVerify(text, pub)
		js, ok := res[name]
		if !ok {
			t.Errorf("%s: no answer from the page's verifier", name)
			continue
		}
		if goErr == nil {
			passed++
			if !js.OK {
				t.Errorf("%s: Go verifies it, the page says %q", name, js.Error)
			}
			continue
		}
		failed++
		if js.OK {
			t.Errorf("%s: Go says %q, the page says it verifies", name, goErr)
			continue
		}
		g := goErr.Error()
		if m := lineError.FindString(g); m != "" {
			if !strings.HasPrefix(js.Error, m) {
				t.Errorf("%s: Go says %q, the page %q: want the same line", name, g, js.Error)
			}
		} else if js.Error != g {
			t.Errorf("%s:\n Go says   %q\n the page %q", name, g, js.Error)
		}
	}
	t.Logf("%d exports verify in both, %d fail in both", passed, failed)
	if passed < 10 || failed < 50 {
		t.Errorf("the cases are not varied enough: %d verify, %d fail", passed, failed)
	}
	r := res["as exported"]
	if !r.OK || r.Entries != 14 || r.HeadSeq != 14 || !r.SignatureChecked {
		t.Errorf("as exported: %+v, want ok with 14 entries, head 14, signature checked", r)
	}
	if r := res["not json"]; r.OK {
		t.Errorf("not json: the page says it verifies")
	}
}

// TestVerifierOtherKey: an export verified with another server's key
// fails on the signature, as in Go.
func TestVerifierOtherKey(t *testing.T) {
	export, _ := testLog(t)
	other, _, _ := ed25519.GenerateKey(nil)
	pub := audit.EncodePublicKey(other)
	res := runJS(t, pub, map[string]string{"other key": export, "bad key": export})
	if r := res["other key"]; r.OK || r.Error != "the head's signature is not the server's (forged or altered head)" {
		t.Errorf("another server's key: %+v", r)
	}
	res = runJS(t, "cleanroom-audit-ed25519:AAAA", map[string]string{"bad key": export})
	if r := res["bad key"]; r.OK || !strings.Contains(r.Error, "not a cleanroom audit public key") {
		t.Errorf("a malformed key: %+v", r)
	}
}
