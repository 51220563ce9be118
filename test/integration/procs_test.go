package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// need returns the path of a program, skipping the test without it (but
// failing under CI, where .ci/run installs it).
func need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run should have installed it", name)
		}
		t.Skipf("%s is not installed (apt-get install prometheus prometheus-alertmanager)", name)
	}
	if testing.Short() {
		t.Skip("-short: skipping the tests with real Prometheus and Alertmanager")
	}
	return path
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run starts a program that lives until the test ends; its output goes to
// a file shown if the test fails.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("last lines of %s:\n%s", name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
	})
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, t testing.TB, url string) {
	t.Helper()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never answered: %v", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// seedAlertRules extracts the alert rules from the team's production guide,
// exactly as written there.
func seedAlertRules(t testing.TB) string {
	f, err := os.Open("../../../shared/seed/production-deployment-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	state := 0 // 0 before the heading, 1 before the block, 2 inside it
	for s := bufio.NewScanner(f); s.Scan(); {
		line := s.Text()
		switch {
		case state == 0 && strings.HasPrefix(line, "### Alert Rules"):
			state = 1
		case state == 1 && strings.HasPrefix(line, "```yaml"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			return b.String()
		case state == 2:
			fmt.Fprintln(&b, line)
		}
	}
	t.Fatal("no alert rules block in the seed guide")
	return ""
}
