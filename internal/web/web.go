package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/console"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SlackMessage is a message the local fake Slack received (what would have been posted).
type SlackMessage struct {
	Channel     string    `json:"channel"`
	ChannelName string    `json:"channel_name,omitempty"`
	TS          string    `json:"ts"`
	ThreadTS    string    `json:"thread_ts,omitempty"`
	Text        string    `json:"text"`
	Blocks      any       `json:"blocks,omitempty"`
	Attachments any       `json:"attachments,omitempty"`
	Updated     int       `json:"updated"`
	EphemeralTo string    `json:"ephemeral_to,omitempty"`
	Time        time.Time `json:"time"`
}

// Config is what the UI is built from.
type Config struct {
	// Console does every read and action.
	Console *console.Console
	// API serves /api/v1/ (mounted as is, behind Auth).
	API http.Handler
	// Auth puts the caller's identity in the request's context (auth.WithIdentity), or
	// answers the request itself when there is none. Nil: no middleware (tests that put the
	// identity in the context themselves).
	Auth func(http.Handler) http.Handler
	// CSRFSecret keys the CSRF tokens the pages hand to their scripts; the API checks them.
	// Every instance of the UI must share it.
	CSRFSecret []byte
	// Dev is local development: the fake Slack inbox page is on.
	Dev bool
	// SlackInbox reads the fake Slack's messages, oldest first (dev only; nil: no inbox).
	SlackInbox func(ctx context.Context) ([]SlackMessage, error)
	// Log receives the errors the pages meet (nil: slog.Default()).
	Log *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// PollInterval is how often live fragments poll (default 2 s).
	PollInterval time.Duration
}

// UI serves the pages. Make one with New.
type UI struct {
	cfg   Config
	pages map[string]*template.Template
}

// New returns the UI's handler: the pages, /static/, and the API under /api/v1/.
func New(cfg Config) http.Handler {
	ui, err := newUI(cfg)
	if err != nil {
		panic(err) // the templates are embedded: a parse error is a bug caught by every test
	}
	return ui.Handler()
}

func newUI(cfg Config) (*UI, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	ui := &UI{cfg: cfg, pages: map[string]*template.Template{}}
	for _, p := range []string{"dags", "dag", "run", "task", "variables", "audit", "slack", "error"} {
		t, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/parts.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse %s.html: %w", p, err)
		}
		ui.pages[p] = t
	}
	return ui, nil
}

// Handler routes the UI's requests.
func (ui *UI) Handler() http.Handler {
	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", ui.dags)
	pages.HandleFunc("GET /dags/{dag}", ui.dag)
	pages.HandleFunc("GET /dags/{dag}/runs/{run}", ui.run)
	pages.HandleFunc("GET /dags/{dag}/runs/{run}/tasks/{task}", ui.task)
	pages.HandleFunc("GET /variables", ui.variables)
	pages.HandleFunc("GET /audit", ui.audit)
	if ui.cfg.Dev && ui.cfg.SlackInbox != nil {
		pages.HandleFunc("GET /slack", ui.slack)
	}
	pages.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ui.fail(w, r, console.Errorf(console.CodeNotFound, "no page at %s", r.URL.Path))
	})
	if ui.cfg.API != nil {
		pages.Handle("/api/v1/", ui.cfg.API)
	}
	var protected http.Handler = pages
	if ui.cfg.Auth != nil {
		protected = ui.cfg.Auth(pages)
	}
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux := http.NewServeMux()
	mux.Handle("GET /static/", cacheFor(time.Hour, files))
	mux.Handle("/", protected)
	return secureHeaders(mux)
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// secureHeaders allows only the UI's own scripts and styles, and no framing.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		}
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// pageData is what every page's layout needs, with the page's own data in Page.
type pageData struct {
	Title   string
	Nav     string
	Me      console.Me
	CSRF    string
	Dev     bool
	Slack   bool
	Poll    int // milliseconds
	Path    string
	Page    any
	Legend  []string
	Version string
}

func (ui *UI) caller(r *http.Request) console.Caller {
	return console.Caller{Email: identityEmail(r.Context()), From: "ui", Addr: clientAddr(r)}
}

// clientAddr is the client's address for the audit log: the rightmost X-Forwarded-For entry,
// the one Cloud Run's front end added (access.ClientAddr), else the connection's peer.
func clientAddr(r *http.Request) string {
	return access.ClientAddr(r.Header.Values("X-Forwarded-For"), r.RemoteAddr)
}

// base returns the layout's data for the caller.
func (ui *UI) base(r *http.Request, title, nav string) (pageData, error) {
	who := ui.caller(r)
	me, err := ui.cfg.Console.Me(r.Context(), who)
	if err != nil {
		return pageData{}, err
	}
	return pageData{
		Title: title, Nav: nav, Me: me, CSRF: csrfToken(ui.cfg.CSRFSecret, me.Email), Dev: ui.cfg.Dev,
		Slack: ui.cfg.Dev && ui.cfg.SlackInbox != nil, Poll: int(ui.cfg.PollInterval / time.Millisecond),
		Path: r.URL.Path, Legend: legendOrder,
	}, nil
}

// render writes a page, or with ?live=1 only its "live" fragment, with an ETag of what it
// wrote: a poll that sends the same ETag back gets 304 Not Modified and no body.
func (ui *UI) render(w http.ResponseWriter, r *http.Request, page string, d pageData) {
	t := ui.pages[page]
	name := "base.html"
	if r.URL.Query().Get("live") != "" {
		name = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, d); err != nil {
		ui.cfg.Log.Error("web: render", "page", page, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(buf.Bytes())
	etag := `W/"` + hex.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.Header().Set("Vary", "Cookie, Authorization")
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	Status  int
	Code    string
	Message string
	Role    string
}

// fail answers with the console error's status and a page saying what was wrong.
func (ui *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	ce := console.AsError(err)
	if ce.Status >= 500 {
		ui.cfg.Log.Error("web: page failed", "path", r.URL.Path, "error", err)
	}
	d := pageData{Title: http.StatusText(ce.Status), Dev: ui.cfg.Dev, Slack: ui.cfg.Dev && ui.cfg.SlackInbox != nil, Path: r.URL.Path}
	d.Me.Email = identityEmail(r.Context())
	d.Page = errorPage{Status: ce.Status, Code: ce.Code, Message: ce.Message}
	var buf bytes.Buffer
	if terr := ui.pages["error"].ExecuteTemplate(&buf, "base.html", d); terr != nil {
		http.Error(w, ce.Message, ce.Status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(ce.Status)
	_, _ = w.Write(buf.Bytes())
}

var errNoIdentity = errors.New("web: no identity in the request")
