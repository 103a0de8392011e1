package httpapi

import (
	"bytes"
	"fmt"
	"html/template"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// pageContent is one page of the install flow: what happened, in plain
// words, and what to do next.
type pageContent struct {
	Title string
	Lines []string
	// Form, when set, is a button that posts Ticket to Action.
	Form   bool
	Action string
	Ticket string
	Button string
}

// pageTemplate is small and self-contained: no scripts, no external
// assets, readable without styles and by screen readers.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · pipedrive-gateway</title>
<style>
body{font:1.05rem/1.5 system-ui,sans-serif;margin:0;padding:2rem 1rem;color:#1a1a1a;background:#f6f7f9}
main{max-width:36rem;margin:0 auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;border:1px solid #d8dbe0}
h1{font-size:1.4rem;margin-top:0}
button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#1f5fbf;color:#fff;cursor:pointer}
button:focus{outline:3px solid #f0b400;outline-offset:2px}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>
{{end}}{{if .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="ticket" value="{{.Ticket}}">
<button type="submit">{{.Button}}</button>
</form>
{{end}}</main>
</body>
</html>
`))

// page answers status with p. The headers keep the page out of frames
// (the button cannot be clickjacked), caches and Referer headers (the
// ticket is in the URL).
func page(c echo.Context, status int, p pageContent) error {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, b.Bytes())
}

func installPage(action, ticket, host string) pageContent {
	return pageContent{
		Title: "Connect a Pipedrive company",
		Lines: []string{
			"This connects your Pipedrive company to " + host + ", which then receives the company's events (deals, persons, activities and the rest) through a webhook.",
			"Pipedrive will ask you to allow access. Use an administrator account of the company: webhooks carry only what their owner may see.",
		},
		Form: true, Action: action, Ticket: ticket, Button: "Continue to Pipedrive",
	}
}

func connectedPage(v subscriptions.View, host string) pageContent {
	p := pageContent{Title: fmt.Sprintf("Pipedrive company %d is connected", v.CompanyID)}
	name := "Pipedrive company " + fmt.Sprint(v.CompanyID)
	if v.Domain != "" {
		name += " (" + v.Domain + ".pipedrive.com)"
	}
	switch v.State {
	case "ok":
		p.Lines = []string{name + " is connected: its events now reach " + host + ".", "Nothing else to do. You can close this page."}
	case "error":
		p.Lines = []string{name + " is connected, but its webhook could not be set up yet: " + v.LastError + ".",
			"The gateway keeps trying. If this page is still true in an hour, tell your administrator."}
	default:
		p.Lines = []string{name + " is connected; its webhook is being set up and events will start to arrive in a moment.", "Nothing else to do. You can close this page."}
	}
	return p
}

// The pages that end an install that did not connect; again says how to
// start over.
func badStatePage(again string) pageContent {
	return pageContent{Title: "This install cannot be finished", Lines: []string{
		"It was already finished, has expired (an install must be finished within 10 minutes), or was started in another browser. Nothing was connected.", again}}
}

func deniedPage(again string) pageContent {
	return pageContent{Title: "Access was not allowed", Lines: []string{
		"Pipedrive reports that access was not allowed, so nothing was connected.", again}}
}

func rejectedPage(again string) pageContent {
	return pageContent{Title: "Pipedrive did not accept the authorisation", Lines: []string{
		"Nothing was connected. The authorisation may have taken too long (it is valid for 5 minutes).", again}}
}

func tryLaterPage(again string) pageContent {
	return pageContent{Title: "The company could not be connected", Lines: []string{
		"Something went wrong on the gateway's side, or Pipedrive did not answer in time. The company may not be connected.",
		"Try again in a few minutes. " + again + " If it keeps failing, tell your administrator."}}
}

func apiTokenPage(id int64) pageContent {
	return pageContent{
		Title: "This company is already connected",
		Lines: []string{
			fmt.Sprintf("Pipedrive company %d is already connected to this gateway with an API token, so nothing was changed.", id),
			fmt.Sprintf("To connect it through this app instead, ask your administrator for an install link made for company %d.", id),
		},
	}
}

func wrongCompanyPage(want, got int64) pageContent {
	return pageContent{
		Title: "This link is for another company",
		Lines: []string{
			fmt.Sprintf("The install link was made for Pipedrive company %d, but access was allowed for company %d. Nothing was changed.", want, got),
			"Ask your administrator for a new link for the company you want to connect.",
		},
	}
}

var (
	pageNeedTicket = pageContent{
		Title: "An install link is needed",
		Lines: []string{"Connecting a Pipedrive company to this gateway needs a one-time install link from its administrator.", "Ask your administrator for one, then open it."},
	}
	pageBadTicket = pageContent{
		Title: "This install link cannot be used",
		Lines: []string{"The link was already used, has expired (links are valid for 24 hours) or was copied incompletely.", "Ask your administrator for a new link."},
	}
	pageUnreadable = pageContent{
		Title: "This company cannot be changed right now",
		Lines: []string{"The gateway cannot read what it stored about this company, so nothing was changed.", "Tell your administrator: the gateway's status page names the problem."},
	}
	pageNoPublicURL = pageContent{
		Title: "Installs are not set up",
		Lines: []string{"This gateway has no public address configured (PUBLIC_URL), so Pipedrive cannot send you back here.", "Tell your administrator."},
	}
)
