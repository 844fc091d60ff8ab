package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tenantgate/tenantgate/test/internal/echo"
	"github.com/tenantgate/tenantgate/test/internal/proc"
)

// Bounds on every browser action. A step that reaches Keycloak gets the
// longer one: its first page render compiles templates.
const (
	actionTimeout = 15 * time.Second
	idpTimeout    = 45 * time.Second
)

// Desktop window size; mobile shots emulate a phone on top of it.
const (
	windowWidth  = 1100
	windowHeight = 760
)

// browser is one headless Chromium for the whole test binary.
type browser struct {
	ctx context.Context // the first tab's context: the browser's lifetime
}

// startBrowser starts Chromium with a fresh profile in a temporary
// directory, resolving every app.test host to Envoy's TLS port and trusting
// only Envoy's certificate. It is stopped when t ends.
func startBrowser(t *testing.T, s *harness) *browser {
	t.Helper()
	envoy := fmt.Sprintf("127.0.0.1:%d", s.EnvoyPort)
	began := time.Now()
	b := launchChromium(t,
		// Tenant hosts at their default https port land on Envoy; Keycloak
		// (127.0.0.1) is reached directly.
		fmt.Sprintf("MAP *.%[1]s %[2]s, MAP %[1]s %[2]s", baseDomain, envoy),
		// Honoured only with an explicit --user-data-dir, as launchChromium
		// gives it.
		chromedp.Flag("ignore-certificate-errors-spki-list", s.cert.Pin))
	s.timings = append(s.timings, fmt.Sprintf("chromium started in %s", time.Since(began).Round(10*time.Millisecond)))
	return b
}

// launchChromium starts headless Chromium with a fresh profile in a
// temporary directory, resolving host names by hostRules (the syntax of
// --host-resolver-rules), plus any extra options. It is stopped when t
// ends.
func launchChromium(t *testing.T, hostRules string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	exec := chromiumPath(t)
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exec),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // the machines run tests as root
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(windowWidth, windowHeight),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,HttpsUpgrades,MediaRouter,OptimizationHints"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("host-resolver-rules", hostRules),
		chromedp.Env("LANGUAGE=en-US"),
	}, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(string, ...any) {}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for Chromium to exit
	})
	if err := firstRun(ctx, 30*time.Second); err != nil { // starts the browser
		t.Fatalf("start chromium (%s): %v", exec, err)
	}
	return &browser{ctx: ctx}
}

// tab is one browser context (its own cookies and storage) with one page,
// for one test.
type tab struct {
	t     *testing.T
	ctx   context.Context
	shots string // directory for this test's step screenshots, once made
	n     int    // screenshots taken so far

	mu      sync.Mutex
	console []string // the browser's last log entries, for failure messages
	csp     []string // Content-Security-Policy violations on tenantgate's hosts
}

// maxConsole bounds the log entries a tab keeps.
const maxConsole = 40

// newTab opens a fresh browser context; it is closed when t ends.
func (b *browser) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := firstRun(ctx, actionTimeout); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	p := &tab{t: t, ctx: ctx}
	// What the browser itself reports (a navigation refused by CSP, a
	// failed load) goes into the failure message.
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			line := fmt.Sprintf("%s %s: %s (%s)", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			p.mu.Lock()
			if len(p.console) == maxConsole {
				p.console = p.console[1:]
			}
			p.console = append(p.console, line)
			if isCSPViolation(ev.Entry) && len(p.csp) < maxConsole {
				p.csp = append(p.csp, line)
			}
			p.mu.Unlock()
		}
	}()
	// Every page tenantgate serves must render under its own policy: a
	// blocked stylesheet, form or redirect is a bug a person would meet.
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, v := range p.csp {
			t.Errorf("the browser refused something under tenantgate's Content-Security-Policy: %s", v)
		}
	})
	return p
}

// isCSPViolation reports whether e is the browser's report of a
// Content-Security-Policy violation on a page of an app.test host, or of a
// *.localhost one (make run-sso's).
func isCSPViolation(e *cdplog.Entry) bool {
	if e == nil || !strings.Contains(e.Text, "Content Security Policy") {
		return false
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == baseDomain || strings.HasSuffix(h, "."+baseDomain) || strings.HasSuffix(h, ".localhost")
}

// firstRun makes chromedp create ctx's browser or tab, waiting at most
// timeout. The first Run on a chromedp context ties the browser (or tab) to
// the context it is given, so it gets ctx itself, not a shorter-lived
// child; on a timeout the caller fails and its cleanup cancels ctx.
func firstRun(ctx context.Context, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no answer from chromium after %s", timeout)
	}
}

// screenshotDir is where t's step screenshots go: t.ArtifactDir(), or
// $TENANTGATE_SCREENSHOTS/<test name> when that is set (a relative path is
// taken from the repository root, not from this package's directory).
func screenshotDir(t *testing.T) string {
	base := os.Getenv("TENANTGATE_SCREENSHOTS")
	if base == "" {
		return t.ArtifactDir()
	}
	if !filepath.IsAbs(base) {
		base = filepath.Join(proc.RepoRoot(t), base)
	}
	dir := filepath.Join(base, strings.Trim(unsafeName.ReplaceAllString(t.Name(), "-"), "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unsafeName matches what a test name may hold that a file name should not.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// bounded runs f with a context that ends after d.
func (p *tab) bounded(d time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	return f(ctx)
}

// steps runs actions in order within actionTimeout, failing the test with
// what and a screenshot of the page if one fails.
func (p *tab) steps(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.bounded(actionTimeout, func(ctx context.Context) error { return chromedp.Do(ctx, actions...) }); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// value runs one action that returns a value, within actionTimeout.
func value[T any](p *tab, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	var v T
	err := p.bounded(actionTimeout, func(ctx context.Context) error {
		var err error
		v, err = chromedp.Run(ctx, a)
		return err
	})
	if err != nil {
		p.fail("%s: %v", what, err)
	}
	return v
}

// fail saves a screenshot of the page as it is and fails the test.
func (p *tab) fail(format string, args ...any) {
	p.t.Helper()
	where := ""
	_ = p.bounded(5*time.Second, func(ctx context.Context) error {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		where = loc
		return err
	})
	shot := p.shot("failure")
	p.mu.Lock()
	console := strings.Join(p.console, "\n  ")
	p.mu.Unlock()
	if console != "" {
		console = "\nbrowser log:\n  " + console
	}
	p.t.Fatalf("%s (page: %s; screenshot: %s)%s", fmt.Sprintf(format, args...), where, shot, console)
}

// shot saves a full-page PNG of the current page as NN-name.png in the
// test's screenshot directory and returns its path. A screenshot that
// cannot be taken is logged, not fatal: it is evidence, not the check.
func (p *tab) shot(name string) string {
	p.t.Helper()
	var png []byte
	err := p.bounded(actionTimeout, func(ctx context.Context) error {
		var err error
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		return err
	})
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	if p.shots == "" {
		p.shots = screenshotDir(p.t)
	}
	p.n++
	path := filepath.Join(p.shots, fmt.Sprintf("%02d-%s.png", p.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Errorf("save screenshot: %v", err)
	}
	return path
}

// evalString evaluates a JavaScript expression that yields a string.
func evalString(expr string) chromedp.Action[string] { return chromedp.Evaluate[string](expr) }

// clearField empties the form field matching the CSS selector.
func clearField(sel string) chromedp.Action[chromedp.Void] { return chromedp.Clear(chromedp.CSS(sel)) }

// waitVisible waits until the element matching the CSS selector is visible.
func waitVisible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// open navigates to rawURL and waits for the page (after any redirects) to
// load.
func (p *tab) open(rawURL string) {
	p.t.Helper()
	p.steps("open "+rawURL, chromedp.Navigate(rawURL))
}

// location is the page's URL now.
func (p *tab) location() *url.URL {
	p.t.Helper()
	loc := value(p, "read the location", chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil {
		p.fail("location %q: %v", loc, err)
	}
	return u
}

// waitFor waits, up to timeout, until the page's URL satisfies at (a
// navigation, perhaps through several redirects and auto-posted forms, has
// arrived) and its document has loaded. what names the destination.
func (p *tab) waitFor(what string, timeout time.Duration, at func(*url.URL) bool) *url.URL {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		// Mid-navigation the page can have no document to ask; that is
		// not an error, only not yet.
		_ = p.bounded(2*time.Second, func(ctx context.Context) error {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState + " " + location.href`))
			if err == nil {
				last = s
			}
			return err
		})
		if state, href, ok := strings.Cut(last, " "); ok && state == "complete" {
			if u, err := url.Parse(href); err == nil && at(u) {
				return u
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.fail("waited %s for %s; last seen: %q", timeout, what, last)
	return nil
}

// atPath matches a URL on origin o with path path.
func atPath(o, path string) func(*url.URL) bool {
	return func(u *url.URL) bool { return u.Scheme+"://"+u.Host == o && u.Path == path }
}

// onOrigin matches any URL on origin o.
func onOrigin(o string) func(*url.URL) bool {
	return func(u *url.URL) bool { return u.Scheme+"://"+u.Host == o }
}

// typeText types s as key presses into the focused element.
func (p *tab) typeText(what, s string) {
	p.t.Helper()
	p.steps(what, chromedp.KeyEvent(s))
}

// press presses one key (kb.Tab, kb.Enter, …).
func (p *tab) press(what, key string) {
	p.t.Helper()
	p.steps(what, chromedp.KeyEvent(key))
}

// focused describes the focused element as "tag#id[name]".
func (p *tab) focused() string {
	p.t.Helper()
	return value(p, "read the focused element", chromedp.Evaluate[string](
		`(e => e ? e.tagName.toLowerCase() + "#" + e.id + "[" + (e.name || "") + "]" : "")(document.activeElement)`))
}

// waitFocused waits until the focused element matches the CSS selector:
// autofocus lands a moment after the page loads, and a key pressed before
// it does goes nowhere. It fails the test, naming what has focus, after
// actionTimeout.
func (p *tab) waitFocused(what, sel string) {
	p.t.Helper()
	quoted, err := json.Marshal(sel)
	if err != nil {
		p.t.Fatal(err)
	}
	check := chromedp.Evaluate[bool](`(e => !!e && e.matches(` + string(quoted) + `))(document.activeElement)`)
	deadline := time.Now().Add(actionTimeout)
	for !value(p, "read the focus", check) {
		if time.Now().After(deadline) {
			p.fail("%s: focus is on %q, want %s", what, p.focused(), sel)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// text is the visible text of the first element matching the CSS selector,
// waiting for it to be visible.
func (p *tab) text(sel string) string {
	p.t.Helper()
	return value(p, "read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// bodyText is the page's visible text.
func (p *tab) bodyText() string {
	p.t.Helper()
	return value(p, "read the page text", chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// value of the form field matching the CSS selector.
func (p *tab) fieldValue(sel string) string {
	p.t.Helper()
	return value(p, "read "+sel, chromedp.Value(chromedp.CSS(sel)))
}

// click clicks the element matching the CSS selector.
func (p *tab) click(what, sel string) {
	p.t.Helper()
	p.steps(what, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// upstream reads the echo upstream's JSON reply shown on the page: what the
// app received through Envoy.
func (p *tab) upstream() echo.Request {
	p.t.Helper()
	raw := value(p, "read the app's reply", chromedp.Evaluate[string](
		`(e => e ? e.textContent : "")(document.querySelector("pre"))`))
	var r echo.Request
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		p.fail("the page is not the app's JSON reply (%v): %.300q", err, p.bodyText())
	}
	return r
}

// header is the single value of name the app received, or "" if none.
func header(r echo.Request, name string) string {
	v := r.Values(name)
	if len(v) != 1 {
		return strings.Join(v, " | ")
	}
	return v[0]
}

// cookies are the browser's cookies for rawURL, whatever their HttpOnly.
func (p *tab) cookies(rawURL string) []*network.Cookie {
	p.t.Helper()
	var res network.GetCookiesResult
	err := p.bounded(actionTimeout, func(ctx context.Context) error {
		var err error
		res, err = chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{rawURL}})
		return err
	})
	if err != nil {
		p.fail("read cookies of %s: %v", rawURL, err)
	}
	return res.Cookies
}

// cookie is the browser's cookie name for rawURL, or nil.
func (p *tab) cookie(rawURL, name string) *network.Cookie {
	p.t.Helper()
	for _, c := range p.cookies(rawURL) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// mobile makes the page a phone's: 390×844 CSS pixels, touch, mobile
// layout.
func (p *tab) mobile() {
	p.t.Helper()
	p.steps("emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
}
