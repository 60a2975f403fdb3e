package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/internal/backup"
)

// server is `cleanroom serve` as a process of its own, to be killed.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	data string
	log  *bytes.Buffer
}

func startServer(t *testing.T, data string) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &server{t: t, url: "http://" + addr, data: data, log: &bytes.Buffer{}}
	s.cmd = exec.Command(os.Args[0], "serve", "--data", data, "--addr", addr, "--memory-limit", "256MB")
	s.cmd.Env = append(os.Environ(), runCleanroomEnv+"=1")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.kill() })
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
	}
	t.Fatalf("the server did not become ready: %s", s.log)
	return nil
}

// kill sends SIGKILL: no shutdown, no checkpoint, no cleanup.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_ = s.cmd.Wait()
	}
}

func (s *server) operator() *client.Client {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.data, "operator-admin.key"))
	if err != nil {
		s.t.Fatal(err)
	}
	return client.New(s.url, strings.TrimSpace(string(b)))
}

// killAfter passes a backup stream on and kills the server once n bytes
// have come.
type killAfter struct {
	w    io.Writer
	n    int
	kill func()
}

func (k *killAfter) Write(p []byte) (int, error) {
	if k.n -= len(p); k.n < 0 && k.kill != nil {
		k.kill()
		k.kill = nil
	}
	return k.w.Write(p)
}

// TestBackupKilledMidwayKeepsThePreviousBackup kills the server (SIGKILL)
// in the middle of a backup, twice (while the snapshot is taken, and while
// it streams): the previous backup in DIR is untouched and nothing
// partial is left beside it; the restarted server is healthy, its log
// verifies, it has removed the interrupted snapshot, and its next backup
// restores.
func TestBackupKilledMidwayKeepsThePreviousBackup(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	to := filepath.Join(root, "backup")
	s := startServer(t, data)
	op := s.operator()
	for _, name := range []string{"Brand Co", "Publisher", "Retailer"} {
		if _, err := op.CreatePartner(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	first, err := takeBackup(ctx, to, func(w io.Writer) error { return op.Backup(ctx, true, w) })
	if err != nil {
		t.Fatal(err)
	}
	firstManifest, err := os.ReadFile(filepath.Join(to, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		after int // bytes of the stream before the kill; -1: as the request goes
	}{{"while it streams", 64 << 10}, {"as the snapshot is taken", -1}} {
		if _, err := op.CreatePartner(ctx, "More "+c.name); err != nil {
			t.Fatal(err)
		}
		_, err := takeBackup(ctx, to, func(w io.Writer) error {
			if c.after < 0 {
				go func() { time.Sleep(5 * time.Millisecond); s.kill() }()
				return op.Backup(ctx, false, w)
			}
			return op.Backup(ctx, false, &killAfter{w: w, n: c.after, kill: s.kill})
		})
		if err == nil {
			t.Fatalf("%s: a backup whose server was killed succeeded", c.name)
		}
		got, err := os.ReadFile(filepath.Join(to, backup.ManifestFile))
		if err != nil || !bytes.Equal(got, firstManifest) {
			t.Fatalf("%s: the previous backup's manifest changed (%v)", c.name, err)
		}
		sum, err := backup.FileSHA256(filepath.Join(to, backup.DatabaseFile))
		if err != nil || sum.SHA256 != first.Database.SHA256 {
			t.Fatalf("%s: the previous backup's database changed (%v)", c.name, err)
		}
		if left, _ := filepath.Glob(to + ".*"); len(left) > 0 {
			t.Errorf("%s: left beside the backup: %v", c.name, left)
		}

		s = startServer(t, data)
		op = s.operator()
		if left, _ := filepath.Glob(filepath.Join(data, "backup-tmp", "*")); len(left) > 0 {
			t.Errorf("%s: the restarted server kept the interrupted snapshot %v", c.name, left)
		}
		var export bytes.Buffer
		if err := op.AuditExport(ctx, &export); err != nil {
			t.Fatal(err)
		}
		entries, head, err := audit.ReadExport(&export)
		if err != nil {
			t.Fatal(err)
		}
		pubText, err := op.AuditPublicKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := audit.ParsePublicKey(pubText)
		if err := audit.Verify(entries, head, pub); err != nil {
			t.Fatalf("%s: after the restart the log does not verify: %v", c.name, err)
		}
	}
	// The next backup replaces the first, and restores.
	m, err := takeBackup(ctx, to, func(w io.Writer) error { return op.Backup(ctx, false, w) })
	if err != nil {
		t.Fatal(err)
	}
	if m.AuditHead.Seq <= first.AuditHead.Seq {
		t.Errorf("the new backup's head %d is not after the first's %d", m.AuditHead.Seq, first.AuditHead.Seq)
	}
	if _, err := os.Stat(filepath.Join(to, backup.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the first backup's key file is left in the new backup, taken without keys")
	}
	if _, err := backup.Restore(ctx, to, filepath.Join(root, "restored"), nil); err != nil {
		t.Fatal(err)
	}
}
