package httpapi

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// chromium finds the browser, or skips the test where it is not installed
// (a developer's machine); under CI it must be there (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI is set: the OAuth install pages must be tested in a real browser (apt-get install chromium)")
	}
	t.Skip("chromium is not installed: skipping the browser test of the OAuth install flow (apt-get install chromium to run it; CI installs it)")
	return ""
}

// TestInstallInBrowser walks the whole install in headless chromium, as an
// installing admin would: the link the administrator made, the install
// page's button, the fake Pipedrive's consent page, Allow, and the page
// saying the company is connected.
func TestInstallInBrowser(t *testing.T) {
	t.Parallel()
	path := chromium(t)
	// The browser must reach the public router at PUBLIC_URL, so it is
	// bound before the options are made.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pub := "http://" + ln.Addr().String()
	e := newEnvWith(t, func(o *subscriptions.Options) { o.OAuthRedirectURL = OAuthRedirectURL(pub) },
		func(o *Options) { o.PublicURL = pub })
	e.run()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	e.fake.SetConsentCompany(55)
	srv := httptest.NewUnstartedServer(Public(e.opts))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	link, _ := e.ticketOf(`{}`)
	if !strings.HasPrefix(link, pub+"/oauth/install?ticket=") {
		t.Fatalf("install link %s is not under PUBLIC_URL %s", link, pub)
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}
	do(chromedp.Navigate(link))
	installTitle := text("h1")
	langAttr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "lang"))
	if err != nil {
		t.Fatal(err)
	}
	lang := langAttr.Value
	do(chromedp.Click(`//button[normalize-space()="Continue to Pipedrive"]`), chromedp.WaitVisible(chromedp.CSS("#allow")))
	consent := text("h1")
	do(chromedp.Click(chromedp.CSS("#allow")), chromedp.WaitVisible(`//h1[contains(., "is connected")]`))
	connected, lines := text("h1"), text("main")
	if installTitle != "Connect a Pipedrive company" || lang != "en" {
		t.Errorf("install page: h1 %q, lang %q", installTitle, lang)
	}
	if !strings.Contains(consent, "Allow app") {
		t.Errorf("consent page: %q", consent)
	}
	if connected != "Pipedrive company 55 is connected" || !strings.Contains(lines, "oauthco.pipedrive.com") || !strings.Contains(lines, "You can close this page") {
		t.Errorf("last page: %q / %q", connected, lines)
	}
	if v := e.company(55); v.Auth != "oauth" || v.State != "ok" {
		t.Errorf("company = %+v", v)
	}
	e.assertOneCorrect(55)

	// The same link a second time: used.
	do(chromedp.Navigate(link))
	if again := text("h1"); again != "This install link cannot be used" {
		t.Errorf("used link in the browser: %q", again)
	}
}
