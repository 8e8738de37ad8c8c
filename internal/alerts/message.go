package alerts

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/updraft-dev/updraft/scheduler"
)

// Kind is what an alert is about. The first four are the events a DAG file subscribes to.
type Kind string

// Alert kinds.
const (
	KindFailure Kind = "failure"  // a task failed with its retries exhausted
	KindRetry   Kind = "retry"    // a task failed and will be tried again
	KindSuccess Kind = "success"  // a task succeeded (task-level alerts), or the run did (DAG-level)
	KindSLAMiss Kind = "sla_miss" // the run or a task was not finished by its SLA
	// KindRunSuccess and KindRunFailed are the run's own outcome (DAG-level success/failure).
	KindRunSuccess Kind = "run_success"
	KindRunFailed  Kind = "run_failed"
)

// RetryActionID is the action_id of the Retry button. Its value is RetryValue's JSON.
const RetryActionID = "updraft_retry"

// ViewLogActionID is the action_id of the View log button (a link; Slack still sends an
// interaction for it, which the actions endpoint acknowledges and ignores).
const ViewLogActionID = "updraft_view_log"

// RetryValue is the Retry button's value, as JSON: which task instance to clear and re-run.
type RetryValue struct {
	DagID  string `json:"dag_id"`
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
}

// Colours of the attachment bar, by state.
const (
	ColorFailed  = "#E01E5A"
	ColorRetry   = "#ECB22E"
	ColorSuccess = "#2EB67D"
	ColorSLA     = "#8E44AD"
	ColorRunning = "#36C5F0"
)

// Bounds of the error excerpt in a message.
const (
	errorLines = 10
	errorChars = 2500
)

// Alert is what one alert says, as plain values.
type Alert struct {
	Kind                 Kind
	DagID, RunID, TaskID string // TaskID is empty for an alert about the run
	TryNumber, MaxTries  int
	LogicalDate          time.Time
	Loc                  *time.Location `json:"-"` // the DAG's timezone
	Started, Ended       *time.Time     // the try's (or the run's) start and end
	// Error is the try's error, already masked by the worker; the message shows its tail.
	Error string
	// Owner is the DAG owner's mention ("<@U…>") or, when Slack does not know them, the email.
	Owner string
	// SLA and SLADue describe a missed SLA (KindSLAMiss).
	SLA    time.Duration
	SLADue time.Time
	// UIURL is the UI's base URL, for links.
	UIURL string
}

// RunInfo is the run's current state, for the parent message.
type RunInfo struct {
	DagID, RunID   string
	State          scheduler.RunState
	LogicalDate    time.Time
	Loc            *time.Location
	Started, Ended *time.Time
	// Now closes the duration of a run still going.
	Now   time.Time
	Owner string
	UIURL string
}

// Message is a Slack message: the notification text, and one attachment (for the colour
// bar) holding Block Kit blocks.
type Message struct {
	Text   string
	Color  string
	Blocks []slack.Block
}

// options are slack-go's message options for m.
func (m Message) options() []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(m.Text, false),
		slack.MsgOptionAttachments(slack.Attachment{Color: m.Color, Fallback: m.Text, Blocks: slack.Blocks{BlockSet: m.Blocks}}),
	}
}

// LogURL is the UI page of a task's try: base/dags/{dag}/runs/{run}/tasks/{task}?try=N.
func LogURL(base, dagID, runID, taskID string, try int) string {
	u := RunURL(base, dagID, runID) + "/tasks/" + url.PathEscape(taskID)
	if try > 0 {
		u += fmt.Sprintf("?try=%d", try)
	}
	return u
}

// RunURL is the UI page of a run: base/dags/{dag}/runs/{run}.
func RunURL(base, dagID, runID string) string {
	return strings.TrimRight(base, "/") + "/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID)
}

// EventMessage is the message of one alert, as a reply in the run's thread.
func EventMessage(a Alert) Message {
	emoji, title, color := kindLook(a.Kind)
	what := "`" + esc(a.DagID) + "`"
	if a.TaskID != "" {
		what += " › `" + esc(a.TaskID) + "`"
	}
	blocks := []slack.Block{section(fmt.Sprintf("%s *%s* · %s", emoji, title, what))}
	blocks = append(blocks, fieldsBlock(alertFields(a)))
	if e := ErrorTail(a.Error); e != "" {
		blocks = append(blocks, section("```"+esc(e)+"```"))
	}
	if act := actions(a); act != nil {
		blocks = append(blocks, act)
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("Run <%s|%s>", RunURL(a.UIURL, a.DagID, a.RunID), esc(a.RunID)))))
	return Message{Text: notification(emoji, title, a), Color: color, Blocks: blocks}
}

// ParentMessage is the run's parent message: the run's current state and latest alert, and
// the details (error, buttons) of the first alert, the one that posted it.
func ParentMessage(r RunInfo, first, latest Alert) Message {
	emoji, state, color := runLook(r.State, latest.Kind)
	blocks := []slack.Block{
		section(fmt.Sprintf("%s *%s* run %s\n<%s|%s>", emoji, esc(r.DagID), state, RunURL(r.UIURL, r.DagID, r.RunID), esc(r.RunID))),
	}
	end := r.Now
	if r.Ended != nil {
		end = *r.Ended
	}
	fields := [][2]string{{"Logical date", localTime(r.LogicalDate, r.Loc)}}
	if r.Started != nil {
		fields = append(fields, [2]string{"Duration", duration(*r.Started, end)})
	}
	fields = append(fields, [2]string{"Owner", r.Owner})
	_, ltitle, _ := kindLook(latest.Kind)
	if first.Kind != latest.Kind || first.TaskID != latest.TaskID || first.TryNumber != latest.TryNumber {
		fields = append(fields, [2]string{"Latest", alertLine(latest)})
	}
	if first.TaskID != "" {
		fields = append(fields, [2]string{"First", alertLine(first)})
	}
	blocks = append(blocks, fieldsBlock(fields))
	if e := ErrorTail(first.Error); e != "" && first.Kind != KindSuccess {
		blocks = append(blocks, section("```"+esc(e)+"```"))
	}
	if act := actions(first); act != nil {
		blocks = append(blocks, act)
	}
	text := fmt.Sprintf("%s %s run %s (%s)", emoji, r.DagID, state, r.RunID)
	if latest.TaskID != "" {
		text += fmt.Sprintf(": %s %s", latest.TaskID, strings.ToLower(ltitle))
	}
	return Message{Text: text + " · " + r.Owner, Color: color, Blocks: blocks}
}

// alertLine is an alert in one line: ":x: Task failed: `load` (try 3 of 3)".
func alertLine(a Alert) string {
	emoji, title, _ := kindLook(a.Kind)
	l := emoji + " " + title
	if a.TaskID != "" {
		l += ": `" + esc(a.TaskID) + "`"
		if a.TryNumber > 0 && a.Kind != KindSLAMiss {
			l += fmt.Sprintf(" (try %d of %d)", a.TryNumber, max(a.MaxTries, a.TryNumber))
		}
	}
	return l
}

// DigestItem is one failed task instance in a digest.
type DigestItem struct {
	DagID, RunID, TaskID string
	TryNumber            int
	LogicalDate          time.Time
	Loc                  *time.Location
	Error                string
	// OwnerEmail groups the items; Owner is how the message names the owner (a mention or
	// the email).
	OwnerEmail, Owner string
	// Started and Ended bound the failed try; the line says its duration when both are set.
	Started, Ended *time.Time
}

// maxDigestBlocks keeps a digest under Slack's 50 blocks per message.
const maxDigestBlocks = 45

// DigestMessage lists the tasks that failed in [since, until), grouped by owner; more is how
// many failures the query left out.
func DigestMessage(items []DigestItem, since, until time.Time, uiURL string, more int) Message {
	byOwner := map[string][]DigestItem{}
	var owners []string
	for _, it := range items {
		if _, ok := byOwner[it.OwnerEmail]; !ok {
			owners = append(owners, it.OwnerEmail)
		}
		byOwner[it.OwnerEmail] = append(byOwner[it.OwnerEmail], it)
	}
	sort.Strings(owners)
	n := len(items) + more
	window := fmt.Sprintf("%s – %s UTC", since.UTC().Format("15:04"), until.UTC().Format("15:04"))
	text := fmt.Sprintf(":rotating_light: Updraft digest: %d failed task%s (%s)", n, plural(n), window)
	blocks := []slack.Block{section(fmt.Sprintf(":rotating_light: *Updraft digest*: %d failed task%s, %s", n, plural(n), window))}
	left := 0
	for _, o := range owners {
		its := byOwner[o]
		head := fmt.Sprintf("*%s*: %d failed", its[0].Owner, len(its))
		var lines []string
		for _, it := range its {
			// The error's last line: where it ended up.
			first := strings.TrimSpace(it.Error)
			if i := strings.LastIndexByte(first, '\n'); i >= 0 {
				first = strings.TrimSpace(first[i+1:])
			}
			if len(first) > 150 {
				first = first[:150] + "…"
			}
			took := ""
			if it.Started != nil && it.Ended != nil {
				took = ", ran " + duration(*it.Started, *it.Ended)
			}
			line := fmt.Sprintf("• `%s` › `%s`, %s (try %d%s) <%s|View log>", esc(it.DagID), esc(it.TaskID),
				localTime(it.LogicalDate, it.Loc), it.TryNumber, took, LogURL(uiURL, it.DagID, it.RunID, it.TaskID, it.TryNumber))
			if first != "" {
				line += ": " + esc(first)
			}
			lines = append(lines, line)
		}
		for _, chunk := range chunks(head, lines, 2900) {
			if len(blocks) >= maxDigestBlocks {
				left++
				continue
			}
			blocks = append(blocks, section(chunk))
		}
	}
	if left > 0 || more > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("…and more: see the UI (%d not shown)", more+left))))
	}
	return Message{Text: text + " " + strings.Join(mentions(byOwner, owners), " "), Color: ColorFailed, Blocks: blocks}
}

func mentions(byOwner map[string][]DigestItem, owners []string) []string {
	out := make([]string, 0, len(owners))
	for _, o := range owners {
		out = append(out, byOwner[o][0].Owner)
	}
	return out
}

// chunks splits a head line and lines into texts of at most limit characters.
func chunks(head string, lines []string, limit int) []string {
	var out []string
	cur := head
	for _, l := range lines {
		if len(l) > limit-len(head)-1 {
			l = l[:limit-len(head)-2] + "…"
		}
		if len(cur)+1+len(l) > limit {
			out = append(out, cur)
			cur = head + " (cont.)"
		}
		cur += "\n" + l
	}
	return append(out, cur)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ErrorTail is the end of an error for a message: its last 10 lines, at most 2,500
// characters (cut at the front).
func ErrorTail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > errorLines {
		lines = lines[len(lines)-errorLines:]
		lines[0] = "… " + lines[0]
	}
	s = strings.Join(lines, "\n")
	if len(s) > errorChars {
		cut := len(s) - errorChars
		for cut < len(s) && (s[cut]&0xC0) == 0x80 { // not inside a UTF-8 sequence
			cut++
		}
		s = "…" + s[cut:]
	}
	// A ``` inside the error would end the code block.
	return strings.ReplaceAll(s, "```", "'''")
}

func alertFields(a Alert) [][2]string {
	var f [][2]string
	if a.TaskID != "" && a.TryNumber > 0 && a.Kind != KindSLAMiss {
		f = append(f, [2]string{"Try", fmt.Sprintf("%d of %d", a.TryNumber, max(a.MaxTries, a.TryNumber))})
	}
	f = append(f, [2]string{"Logical date", localTime(a.LogicalDate, a.Loc)})
	if a.Kind == KindSLAMiss {
		f = append(f, [2]string{"SLA", fmt.Sprintf("%s after the data interval end (%s)", a.SLA, localTime(a.SLADue, a.Loc))})
	} else if a.Started != nil && a.Ended != nil {
		f = append(f, [2]string{"Duration", duration(*a.Started, *a.Ended)})
	}
	return append(f, [2]string{"Owner", a.Owner})
}

func actions(a Alert) slack.Block {
	var els []slack.BlockElement
	if a.TaskID != "" {
		view := slack.NewButtonBlockElement(ViewLogActionID, "", plain("View log"))
		view.URL = LogURL(a.UIURL, a.DagID, a.RunID, a.TaskID, a.TryNumber)
		els = append(els, view)
	}
	if a.TaskID != "" && a.Kind == KindFailure {
		v, _ := json.Marshal(RetryValue{DagID: a.DagID, RunID: a.RunID, TaskID: a.TaskID})
		retry := slack.NewButtonBlockElement(RetryActionID, string(v), plain("Retry"))
		retry.Style = slack.StylePrimary
		retry.Confirm = slack.NewConfirmationBlockObject(plain("Retry "+a.TaskID+"?"),
			plain("Clears "+a.TaskID+" and its downstream tasks in run "+a.RunID+" and runs them again."), plain("Retry"), plain("Cancel"))
		els = append(els, retry)
	}
	if len(els) == 0 {
		return nil
	}
	return slack.NewActionBlock("updraft_actions", els...)
}

func notification(emoji, title string, a Alert) string {
	s := emoji + " " + title + ": " + a.DagID
	if a.TaskID != "" {
		s += "." + a.TaskID
		if a.TryNumber > 0 && a.Kind != KindSLAMiss {
			s += fmt.Sprintf(" (try %d of %d)", a.TryNumber, max(a.MaxTries, a.TryNumber))
		}
	}
	return s + ", run " + a.RunID + " · " + a.Owner
}

func kindLook(k Kind) (emoji, title, color string) {
	switch k {
	case KindFailure:
		return ":x:", "Task failed", ColorFailed
	case KindRetry:
		return ":repeat:", "Task up for retry", ColorRetry
	case KindSuccess:
		return ":white_check_mark:", "Task succeeded", ColorSuccess
	case KindSLAMiss:
		return ":hourglass:", "SLA missed", ColorSLA
	case KindRunSuccess:
		return ":white_check_mark:", "Run succeeded", ColorSuccess
	case KindRunFailed:
		return ":x:", "Run failed", ColorFailed
	}
	return ":information_source:", string(k), ColorRunning
}

// runLook is the parent's look: by the run's state once finished, else by the latest alert
// (a failure or a missed SLA while the run goes on is what the reader must see).
func runLook(s scheduler.RunState, latest Kind) (emoji, state, color string) {
	switch s {
	case scheduler.RunSuccess:
		return ":white_check_mark:", "succeeded", ColorSuccess
	case scheduler.RunFailed:
		return ":x:", "failed", ColorFailed
	}
	switch latest {
	case KindFailure:
		return ":x:", "running, a task failed", ColorFailed
	case KindRetry:
		return ":repeat:", "running, a task is retrying", ColorRetry
	case KindSLAMiss:
		return ":hourglass:", "running, SLA missed", ColorSLA
	}
	return ":arrows_counterclockwise:", "running", ColorRunning
}

// localTime formats t in the DAG's timezone: "2025-01-10 09:30 KST".
func localTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

func duration(from, to time.Time) string {
	d := to.Sub(from)
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// esc escapes Slack's control characters in mrkdwn text.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(text), nil, nil)
}

func fieldsBlock(fields [][2]string) *slack.SectionBlock {
	objs := make([]*slack.TextBlockObject, 0, len(fields))
	for _, f := range fields {
		objs = append(objs, mrkdwn("*"+f[0]+"*\n"+f[1]))
	}
	return slack.NewSectionBlock(nil, objs, nil)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}
