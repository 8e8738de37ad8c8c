package slackfake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The fake workspace, as auth.test and posted messages name it.
const (
	TeamID    = "T0FAKE0000"
	BotUserID = "U0FAKEBOT0"
	BotID     = "B0FAKEBOT0"
)

// tokenPrefix is what a bot token starts with; the fake accepts any token that does.
const tokenPrefix = "xoxb-"

// maxRecords bounds the calls and the messages kept (the oldest go first), so a long dev
// session doesn't grow without end.
const maxRecords = 10000

// maxBody bounds a request body.
const maxBody = 10 << 20

// User is a member of the fake workspace, for users.lookupByEmail, users.info and
// chat.postEphemeral.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Call is one request to the fake, whatever its outcome.
type Call struct {
	// Method is the Web API method, e.g. "chat.postMessage".
	Method string    `json:"method"`
	Time   time.Time `json:"time"`
	// Params are the request's arguments (query, form or JSON body), without the token. Values
	// of blocks, attachments and metadata are decoded from their JSON text.
	Params map[string]any `json:"params"`
	// Token is the token's type and last four characters ("xoxb-…abcd"), never the token.
	Token string `json:"token,omitempty"`
	// Status is the HTTP status answered, and Error the Slack error code ("" when ok).
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Message is a message as it would appear in Slack, with its updates applied.
type Message struct {
	// Channel is the channel's ID, and ChannelName the name it was posted to, if any.
	Channel     string `json:"channel"`
	ChannelName string `json:"channel_name,omitempty"`
	TS          string `json:"ts"`
	// ThreadTS is the parent's ts for a reply in a thread, "" otherwise.
	ThreadTS    string `json:"thread_ts,omitempty"`
	Text        string `json:"text"`
	Blocks      any    `json:"blocks,omitempty"`
	Attachments any    `json:"attachments,omitempty"`
	// Updated counts the chat.update calls applied to the message.
	Updated int `json:"updated"`
	// EphemeralTo is the user an ephemeral message (chat.postEphemeral) was shown to.
	EphemeralTo string    `json:"ephemeral_to,omitempty"`
	Time        time.Time `json:"time"`
}

// fault is an injected answer for a method's next call.
type fault struct {
	status     int
	retryAfter time.Duration
	code       string // an API error, answered with HTTP 200
}

// Server is a running fake (Start) or a handler to mount (New).
type Server struct {
	// URL is the server's base URL, "http://127.0.0.1:PORT", set by Start. slack-go's API URL is
	// URL + "/api/" (APIURL).
	URL string

	now func() time.Time

	mu       sync.Mutex
	users    []User
	calls    []Call
	messages []*Message
	names    map[string]string // channel ID → the name it was posted to
	faults   map[string][]fault
	down     bool
	lastTS   int64 // microseconds of the last ts handed out

	srv  *http.Server
	done chan struct{}
}

// New returns a fake that is not listening: serve its Handler yourself (httptest.NewServer, or
// under a path of the dev server).
func New(users []User) *Server {
	return &Server{
		now:    time.Now,
		users:  append([]User(nil), users...),
		names:  map[string]string{},
		faults: map[string][]fault{},
	}
}

// Start starts a fake on 127.0.0.1 on a free port. Stop it with Stop.
func Start(users []User) (*Server, error) {
	s := New(users)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slackfake: listen: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Stop stops a fake started with Start, waiting up to 5 s for requests in flight.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// APIURL is the URL to give slack-go: slack.OptionAPIURL(s.APIURL()).
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Handler serves the Web API under /api/METHOD, and the records as JSON: GET /_calls (every
// call) and GET /_messages (the messages, updates applied), for `updraft slack inbox` and the
// dev UI.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("GET /_calls", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Calls()) })
	mux.HandleFunc("GET /_messages", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Messages()) })
	return mux
}

// Calls returns every call so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call{}, s.calls...)
}

// Messages returns the messages posted so far (replies and ephemeral ones included), oldest
// first, with their updates applied.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

// FailNext makes the next call of method ("" for any method) answer with HTTP status, without
// doing anything. A 429 carries Slack's rate-limit body and, when retryAfter > 0, a Retry-After
// header in whole seconds (rounded up), which slack-go turns into a *slack.RateLimitedError.
// Other statuses answer an HTML body, as Slack's front end does. Calls queue up: FailNext twice
// fails the next two calls.
func (s *Server) FailNext(method string, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], fault{status: status, retryAfter: retryAfter})
}

// FailNextError makes the next call of method ("" for any method) answer the Slack API error
// code, e.g. "channel_not_found" (HTTP 200, {"ok": false, "error": code}), without doing
// anything.
func (s *Server) FailNextError(method, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], fault{status: http.StatusOK, code: code})
}

// SetDown makes every API call answer 503 until SetDown(false). The calls are still recorded.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// answer is the outcome of one call.
type answer struct {
	status     int
	retryAfter time.Duration
	body       map[string]any // the JSON body of a 200 or a 429
}

func ok(fields map[string]any) answer {
	body := map[string]any{"ok": true}
	for k, v := range fields {
		body[k] = v
	}
	return answer{status: http.StatusOK, body: body}
}

func apiError(code string) answer {
	return answer{status: http.StatusOK, body: map[string]any{"ok": false, "error": code}}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	params, token, perr := readParams(w, r)
	s.mu.Lock()
	a := s.answer(method, token, params, perr)
	code, _ := a.body["error"].(string)
	if a.status != http.StatusOK && a.status != http.StatusTooManyRequests {
		code = ""
	}
	s.calls = appendBounded(s.calls, Call{Method: method, Time: s.now(), Params: params, Token: redact(token),
		Status: a.status, Error: code})
	s.mu.Unlock()

	switch {
	case a.status == http.StatusTooManyRequests:
		if a.retryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int64(math.Ceil(a.retryAfter.Seconds()))))
		}
		writeJSON(w, a.status, a.body)
	case a.status != http.StatusOK:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(a.status)
		fmt.Fprintf(w, "<html><body>fake Slack: %d %s</body></html>\n", a.status, http.StatusText(a.status))
	default:
		writeJSON(w, a.status, a.body)
	}
}

// answer decides a call's outcome and applies it. s.mu is held.
func (s *Server) answer(method, token string, params map[string]any, perr error) answer {
	if s.down {
		return answer{status: http.StatusServiceUnavailable}
	}
	if f, found := s.popFault(method); found {
		if f.code != "" {
			return apiError(f.code)
		}
		if f.status == http.StatusTooManyRequests {
			return answer{status: f.status, retryAfter: f.retryAfter, body: map[string]any{"ok": false, "error": "ratelimited"}}
		}
		return answer{status: f.status}
	}
	if perr != nil {
		return apiError(perr.Error())
	}
	if method == "api.test" {
		return ok(map[string]any{"args": params})
	}
	switch {
	case token == "":
		return apiError("not_authed")
	case !strings.HasPrefix(token, tokenPrefix):
		return apiError("invalid_auth")
	}
	switch method {
	case "auth.test":
		return ok(map[string]any{"url": "https://updraft-fake.slack.com/", "team": "Updraft (fake Slack)", "user": "updraft",
			"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID})
	case "chat.postMessage":
		return s.postMessage(params, "")
	case "chat.postEphemeral":
		user := str(params["user"])
		if _, found := s.user(func(u User) bool { return u.ID == user }); !found {
			return apiError("user_not_found")
		}
		return s.postMessage(params, user)
	case "chat.update":
		return s.update(params)
	case "users.lookupByEmail":
		email := strings.TrimSpace(str(params["email"]))
		u, found := s.user(func(u User) bool { return email != "" && strings.EqualFold(u.Email, email) })
		if !found {
			return apiError("users_not_found")
		}
		return ok(map[string]any{"user": userJSON(u)})
	case "users.info":
		return s.usersInfo(params)
	case "conversations.info":
		id, name, found := s.channel(str(params["channel"]))
		if !found {
			return apiError("channel_not_found")
		}
		return ok(map[string]any{"channel": map[string]any{"id": id, "name": name, "is_channel": id[0] == 'C',
			"is_im": id[0] == 'D', "is_member": true, "is_archived": false}})
	}
	return apiError("unknown_method")
}

func (s *Server) popFault(method string) (fault, bool) {
	for _, m := range []string{method, ""} {
		if q := s.faults[m]; len(q) > 0 {
			s.faults[m] = q[1:]
			return q[0], true
		}
	}
	return fault{}, false
}

// postMessage answers chat.postMessage, or chat.postEphemeral when ephemeralTo is set.
func (s *Server) postMessage(params map[string]any, ephemeralTo string) answer {
	id, name, found := s.channel(str(params["channel"]))
	if !found {
		return apiError("channel_not_found")
	}
	text := str(params["text"])
	blocks, hasBlocks := params["blocks"]
	atts, hasAtts := params["attachments"]
	if code := checkBlocks(blocks, hasBlocks); code != "" {
		return apiError(code)
	}
	if code := checkAttachments(atts, hasAtts); code != "" {
		return apiError(code)
	}
	if text == "" && isEmpty(blocks) && isEmpty(atts) {
		return apiError("no_text")
	}
	m := &Message{Channel: id, ChannelName: name, TS: s.nextTS(), Text: text, EphemeralTo: ephemeralTo, Time: s.now()}
	if !isEmpty(blocks) {
		m.Blocks = blocks
	}
	if !isEmpty(atts) {
		m.Attachments = atts
	}
	// As Slack does: a reply to a reply goes to the thread's parent, and a thread_ts that names
	// no message of the channel posts the message un-threaded.
	if ts := str(params["thread_ts"]); ts != "" {
		if p := s.message(id, ts); p != nil && p.EphemeralTo == "" {
			m.ThreadTS = p.TS
			if p.ThreadTS != "" {
				m.ThreadTS = p.ThreadTS
			}
		}
	}
	s.messages = appendBounded(s.messages, m)
	if ephemeralTo != "" {
		return ok(map[string]any{"message_ts": m.TS})
	}
	return ok(map[string]any{"channel": id, "ts": m.TS, "message": messageJSON(m)})
}

func (s *Server) update(params map[string]any) answer {
	id, _, found := s.channel(str(params["channel"]))
	if !found {
		return apiError("channel_not_found")
	}
	m := s.message(id, str(params["ts"]))
	if m == nil || m.EphemeralTo != "" {
		return apiError("message_not_found")
	}
	blocks, hasBlocks := params["blocks"]
	atts, hasAtts := params["attachments"]
	if code := checkBlocks(blocks, hasBlocks); code != "" {
		return apiError(code)
	}
	if code := checkAttachments(atts, hasAtts); code != "" {
		return apiError(code)
	}
	// Fields left out keep their value, as in Slack.
	if t, has := params["text"]; has {
		m.Text = str(t)
	}
	if hasBlocks {
		m.Blocks = blocks
		if isEmpty(blocks) {
			m.Blocks = nil
		}
	}
	if hasAtts {
		m.Attachments = atts
		if isEmpty(atts) {
			m.Attachments = nil
		}
	}
	m.Updated++
	return ok(map[string]any{"channel": id, "ts": m.TS, "text": m.Text, "message": messageJSON(m)})
}

func (s *Server) usersInfo(params map[string]any) answer {
	find := func(id string) (User, bool) { return s.user(func(u User) bool { return u.ID == id }) }
	if list := str(params["users"]); list != "" { // slack-go's GetUsersInfo
		var out []any
		for _, id := range strings.Split(list, ",") {
			u, found := find(strings.TrimSpace(id))
			if !found {
				return apiError("user_not_found")
			}
			out = append(out, userJSON(u))
		}
		return ok(map[string]any{"users": out})
	}
	u, found := find(str(params["user"]))
	if !found {
		return apiError("user_not_found")
	}
	return ok(map[string]any{"user": userJSON(u)})
}

func (s *Server) user(match func(User) bool) (User, bool) {
	for _, u := range s.users {
		if match(u) {
			return u, true
		}
	}
	return User{}, false
}

func (s *Server) message(channel, ts string) *Message {
	if ts == "" {
		return nil
	}
	for i := len(s.messages) - 1; i >= 0; i-- {
		if m := s.messages[i]; m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

var (
	channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{8,}$`)
	userID    = regexp.MustCompile(`^[UW][A-Z0-9]{8,}$`)
)

// channel resolves a channel argument: an ID is taken as it is; a user ID is the direct-message
// channel with that user; "#name" or "name" is a channel whose ID derives from the name, so it
// is the same in every run.
func (s *Server) channel(ref string) (id, name string, found bool) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "" || ref == "#":
		return "", "", false
	case channelID.MatchString(ref):
		return ref, s.names[ref], true
	case userID.MatchString(ref):
		id = "D" + hashID(ref)
		s.names[id] = "@" + ref
		return id, s.names[id], true
	}
	name = strings.TrimPrefix(ref, "#")
	id = "C" + hashID(name)
	s.names[id] = name
	return id, name, true
}

func hashID(s string) string {
	h := sha256.Sum256([]byte(s))
	return strings.ToUpper(hex.EncodeToString(h[:5]))
}

// nextTS hands out a message ts like Slack's ("1700000000.000100"): the time in microseconds,
// unique and increasing.
func (s *Server) nextTS() string {
	us := s.now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

func messageJSON(m *Message) map[string]any {
	out := map[string]any{"type": "message", "subtype": "bot_message", "text": m.Text, "user": BotUserID,
		"bot_id": BotID, "team": TeamID, "ts": m.TS}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.Attachments != nil {
		out["attachments"] = m.Attachments
	}
	if m.Updated > 0 {
		out["edited"] = map[string]any{"user": BotUserID, "ts": m.TS}
	}
	return out
}

func userJSON(u User) map[string]any {
	return map[string]any{"id": u.ID, "team_id": TeamID, "name": u.Name, "real_name": u.Name, "deleted": false,
		"is_bot": false, "tz": "UTC", "profile": map[string]any{"email": u.Email, "real_name": u.Name, "display_name": u.Name}}
}

// checkBlocks returns Slack's error code for blocks that are not a list of objects with a type.
func checkBlocks(v any, present bool) string {
	if !present {
		return ""
	}
	list, isList := v.([]any)
	if !isList {
		return "invalid_blocks_format"
	}
	for _, b := range list {
		obj, isObj := b.(map[string]any)
		if !isObj {
			return "invalid_blocks_format"
		}
		if t, _ := obj["type"].(string); t == "" {
			return "invalid_blocks"
		}
	}
	return ""
}

// checkAttachments returns Slack's error code for attachments that are not a list of objects.
func checkAttachments(v any, present bool) string {
	if !present {
		return ""
	}
	list, isList := v.([]any)
	if !isList {
		return "invalid_attachments"
	}
	for _, a := range list {
		if _, isObj := a.(map[string]any); !isObj {
			return "invalid_attachments"
		}
	}
	return ""
}

func isEmpty(v any) bool {
	list, isList := v.([]any)
	return v == nil || (isList && len(list) == 0)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// jsonParams are the arguments whose value is JSON text in a form.
var jsonParams = []string{"blocks", "attachments", "metadata"}

// readParams reads a call's arguments (query, form, multipart form or JSON body) and its token
// (the Authorization header, else the token argument, which it removes from the arguments).
// The error is a Slack error code for a body it can't read.
func readParams(w http.ResponseWriter, r *http.Request) (map[string]any, string, error) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		token = h
		if t, found := strings.CutPrefix(h, "Bearer "); found {
			token = strings.TrimSpace(t)
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	params := map[string]any{}
	var perr error
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		b, err := io.ReadAll(r.Body)
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			err = json.Unmarshal(b, &params)
		}
		if err != nil {
			perr = errors.New("invalid_json")
		}
		addValues(params, r.URL.Query())
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxBody); err != nil {
			perr = errors.New("invalid_form_data")
		}
		addValues(params, r.Form)
	default:
		if err := r.ParseForm(); err != nil {
			perr = errors.New("invalid_form_data")
		}
		addValues(params, r.Form)
	}
	if t, found := params["token"]; found {
		if token == "" {
			token = str(t)
		}
		delete(params, "token")
	}
	for _, k := range jsonParams {
		if s, isStr := params[k].(string); isStr {
			var v any
			if json.Unmarshal([]byte(s), &v) == nil {
				params[k] = v
			}
		}
	}
	return params, token, perr
}

func addValues(params map[string]any, vs url.Values) {
	for k, v := range vs {
		if _, taken := params[k]; taken || len(v) == 0 {
			continue
		}
		if len(v) == 1 {
			params[k] = v[0]
			continue
		}
		list := make([]any, len(v))
		for i, e := range v {
			list[i] = e
		}
		params[k] = list
	}
}

// redact keeps a token's type and, for a long enough token, its last four characters:
// "xoxb-…abcd".
func redact(token string) string {
	if token == "" {
		return ""
	}
	prefix := ""
	if i := strings.IndexByte(token, '-'); i >= 0 && i <= 4 {
		prefix = token[:i+1]
	}
	rest := token[len(prefix):]
	if len(rest) >= 12 {
		return prefix + "…" + rest[len(rest)-4:]
	}
	return prefix + "…"
}

func appendBounded[T any](s []T, v T) []T {
	if len(s) >= maxRecords {
		s = append(s[:0:0], s[len(s)-maxRecords+1:]...)
	}
	return append(s, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
