package statuspage_test

import (
	"context"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var updateScreenshot = flag.Bool("update", false, "rewrite docs/status-page.png, the README's screenshot")

// chromium is Debian's browser, or a skip outside CI (where .ci/run
// installs it and its absence fails).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run should have installed it")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// browse runs headless Chromium on url with args (as root it needs
// --no-sandbox; its own profile directory keeps runs apart).
func browse(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// artifacts is where screenshots are kept: SITREP_ARTIFACTS, else
// test-artifacts/ at the repository's root.
func artifacts(t *testing.T) string {
	dir := os.Getenv("SITREP_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageInARealBrowser loads the page in headless Chromium: what
// the visitor's DOM holds (component states, the published update, hostile
// text as text, nothing unpublished), and screenshots at desktop and
// phone width, kept as artifacts.
func TestStatusPageInARealBrowser(t *testing.T) {
	bin := chromium(t)
	f := newFixture(t)
	dom := browse(t, bin, f.srv.URL+"/status", "--dump-dom")
	for _, want := range []string{"Acme status", "Partial outage", "Degraded performance", "Operational",
		"Checkout &lt;script&gt;alert(1)&lt;/script&gt; errors", "&lt;b&gt;some&lt;/b&gt; EU cards &amp; we're on it", "Search is back to normal."} {
		if !strings.Contains(dom, want) {
			t.Errorf("the browser's DOM lacks %q", want)
		}
	}
	for _, leak := range []string{"<script", "<b>some", "<img", "SECRET", "PRIVATE", "DRILL", "payment gateway"} {
		if strings.Contains(dom, leak) {
			t.Errorf("the browser's DOM holds %q", leak)
		}
	}
	if n := strings.Count(dom, `class="operational" title=`) + strings.Count(dom, `class="degraded" title=`) + strings.Count(dom, `class="partial_outage" title=`); n != 270 {
		t.Errorf("%d history bars, want 3 components × 90 days", n)
	}
	dir := artifacts(t)
	for _, shot := range []struct {
		name string
		w, h int
	}{{"status-page.png", 1280, 1100}, {"status-page-phone.png", 390, 844}} {
		path, _ := filepath.Abs(filepath.Join(dir, shot.name))
		browse(t, bin, f.srv.URL+"/status", "--screenshot="+path, "--window-size="+strconv.Itoa(shot.w)+","+strconv.Itoa(shot.h), "--force-device-scale-factor=1")
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(file)
		file.Close()
		if err != nil || cfg.Width != shot.w || cfg.Height != shot.h {
			t.Errorf("%s: %v %dx%d, want %dx%d", shot.name, err, cfg.Width, cfg.Height, shot.w, shot.h)
		}
		t.Logf("screenshot: %s", path)
		if *updateScreenshot && shot.w == 1280 {
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "status-page.png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
