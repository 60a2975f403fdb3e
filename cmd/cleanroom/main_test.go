package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// runCleanroomEnv set makes the test binary the command itself, for tests
// that run a server as a process of its own (to kill it).
const runCleanroomEnv = "CLEANROOM_TEST_RUN_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(runCleanroomEnv) != "" {
		os.Exit(run())
	}
	testscript.Main(m, map[string]func(){
		"cleanroom": func() { os.Exit(run()) },
	})
}

// TestScripts runs the CLI behaviour scripts in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// A free loopback port for scripts that start a server.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			addr := l.Addr().String()
			l.Close()
			env.Setenv("ADDR", addr)
			env.Setenv("CLEANROOM_URL", "http://"+addr)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// waitready waits until the server at $CLEANROOM_URL is ready.
			"waitready": func(ts *testscript.TestScript, neg bool, args []string) {
				url := ts.Getenv("CLEANROOM_URL") + "/readyz"
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if resp, err := http.Get(url); err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							return
						}
					}
				}
				ts.Fatalf("server at %s did not become ready", url)
			},
			// jsonenv VAR FILE a.0.c sets VAR to a field of a JSON file
			// (a number indexes an array).
			"jsonenv": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: jsonenv VAR FILE PATH")
				}
				var v any
				ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &v))
				for _, k := range strings.Split(args[2], ".") {
					switch x := v.(type) {
					case map[string]any:
						v = x[k]
					case []any:
						i, err := strconv.Atoi(k)
						if err != nil || i < 0 || i >= len(x) {
							ts.Fatalf("%s: no element %s in %s", args[1], k, args[2])
						}
						v = x[i]
					default:
						ts.Fatalf("%s: no field %s", args[1], args[2])
					}
				}
				ts.Setenv(args[0], fmt.Sprint(v))
			},
		},
	})
}
