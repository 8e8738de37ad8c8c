package fsstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Every create is a claim: the first writer gets the document, the second gets ErrExists and
// changes nothing. Each case creates with value "first", then again with "second", and reads
// back which one the document holds.
func TestCreateRefusesASecondWriterAndKeepsTheFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	later := b.clock.Add(90 * 24 * time.Hour)
	r := b.run("d", b.clock, scheduler.RunQueued)

	cases := []struct {
		name   string
		create func(v string) error
		read   func() (string, error)
	}{
		{"CreateDAG", func(v string) error {
			return b.st.CreateDAG(ctx, &scheduler.DAGRecord{DagID: "d", Owner: v, Active: true})
		}, func() (string, error) {
			g, err := b.st.GetDAG(ctx, "d")
			return field(g, err, func(r scheduler.DAGRecord) string { return r.Owner })
		}},
		{"CreateRun", func(v string) error {
			rr := b.run("d", b.clock, scheduler.RunQueued)
			rr.Conf = v
			return b.st.CreateRun(ctx, rr)
		}, func() (string, error) {
			g, err := b.st.GetRun(ctx, "d", r.RunID)
			return field(g, err, func(r scheduler.Run) string { return r.Conf })
		}},
		{"CreateRunAt", func(v string) error {
			rr := b.run("d2", b.clock, scheduler.RunQueued)
			rr.Conf = v
			_, err := b.st.CreateRunAt(ctx, rr)
			return err
		}, func() (string, error) {
			g, err := b.st.GetRun(ctx, "d2", r.RunID)
			return field(g, err, func(r scheduler.Run) string { return r.Conf })
		}},
		{"CreateDispatch", func(v string) error {
			_, err := b.st.CreateDispatch(ctx, &fsstore.Dispatch{AttemptID: "att1", Execution: v, ExpireAt: later})
			return err
		}, func() (string, error) {
			g, err := b.st.GetDispatch(ctx, "att1")
			return field(g, err, func(r fsstore.Dispatch) string { return r.Execution })
		}},
		{"CreateBackfill", func(v string) error {
			return b.st.CreateBackfill(ctx, &scheduler.Backfill{ID: "bf1", DagID: "d", From: v})
		}, func() (string, error) {
			g, err := b.st.GetBackfill(ctx, "bf1")
			return field(g, err, func(r scheduler.Backfill) string { return r.From })
		}},
		{"CreateUser", func(v string) error {
			return b.st.CreateUser(ctx, &fsstore.UserGrant{Email: "a@example.com", Role: v})
		}, func() (string, error) {
			g, err := b.st.GetUser(ctx, "a@example.com")
			return field(g, err, func(r fsstore.UserGrant) string { return r.Role })
		}},
		{"CreateAlertClaim", func(v string) error {
			_, err := b.st.CreateAlertClaim(ctx, "al1", &fsstore.AlertClaim{Claim: v, State: fsstore.AlertPending, ExpireAt: later})
			return err
		}, func() (string, error) {
			g, err := b.st.GetAlertClaim(ctx, "al1")
			return field(g, err, func(r fsstore.AlertClaim) string { return r.Claim })
		}},
		{"CreateAlertThread", func(v string) error {
			_, err := b.st.CreateAlertThread(ctx, "th1", &fsstore.AlertThread{Claim: v, State: fsstore.AlertPending, ExpireAt: later})
			return err
		}, func() (string, error) {
			g, err := b.st.GetAlertThread(ctx, "th1")
			return field(g, err, func(r fsstore.AlertThread) string { return r.Claim })
		}},
		{"CreateDigestCursor", func(v string) error {
			_, err := b.st.CreateDigestCursor(ctx, "dg1", &fsstore.DigestCursor{Channel: v})
			return err
		}, func() (string, error) {
			g, err := b.st.GetDigestCursor(ctx, "dg1")
			return field(g, err, func(r fsstore.DigestCursor) string { return r.Channel })
		}},
		{"AppendAudit", func(v string) error {
			return b.st.AppendAudit(ctx, &fsstore.AuditEntry{ID: "req-1", At: b.clock, Who: v, Action: "task.retry"})
		}, func() (string, error) {
			es, err := b.st.ListAudit(ctx, fsstore.AuditQuery{})
			if err != nil {
				return "", err
			}
			if len(es) != 1 {
				return "", fmt.Errorf("%d audit entries; want 1", len(es))
			}
			return es[0].Who, nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			must(t, "first create", c.create("first"))
			err := c.create("second")
			mustIs(t, "second create", err, fsstore.ErrExists)
			got, err := c.read()
			must(t, "read back", err)
			if got != "first" {
				t.Fatalf("document holds %q after a refused second create; want the first writer's value", got)
			}
		})
	}
}

// field returns a string field of a read record, or the read's error.
func field[T any](v *fsstore.Versioned[T], err error, f func(T) string) (string, error) {
	if err != nil {
		return "", err
	}
	return f(v.Rec), nil
}

// Storing a DAG version is idempotent: a second PutVersion of the same version succeeds and
// leaves the version first stored (versions are immutable; runs keep the one they started with).
func TestPutVersionTwiceKeepsTheFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	must(t, "first put", b.st.PutVersion(b.ctx, &scheduler.DAGVersion{DagID: "d", Version: "v1", Source: "first"}))
	must(t, "second put", b.st.PutVersion(b.ctx, &scheduler.DAGVersion{DagID: "d", Version: "v1", Source: "second"}))
	v, err := b.st.GetVersion(b.ctx, "d", "v1")
	must(t, "get version", err)
	if v.Source != "first" {
		t.Fatalf("version source = %q after a second put; want the first", v.Source)
	}
	vs, err := b.st.VersionsOf(b.ctx, [][2]string{{"d", "v1"}, {"d", "v9"}, {"other", "v1"}})
	must(t, "versions of", err)
	if len(vs) != 1 || vs[0].Version != "v1" || vs[0].Source != "first" {
		t.Fatalf("VersionsOf = %+v; want only d v1 (missing versions left out)", vs)
	}
}

// A Slack request is accepted once: the same signature again is ErrExists (a replay), another
// signature is a new request.
func TestClaimSlackRequestRefusesAReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	exp := b.clock.Add(10 * time.Minute)
	must(t, "first claim", b.st.ClaimSlackRequest(b.ctx, "v0=abc", b.clock, exp))
	mustIs(t, "replay", b.st.ClaimSlackRequest(b.ctx, "v0=abc", b.clock.Add(time.Second), exp), fsstore.ErrExists)
	must(t, "other request", b.st.ClaimSlackRequest(b.ctx, "v0=abd", b.clock, exp))
}

// Every read of a document that is not there gives ErrNotFound, and the error names the
// collection and the id that were read.
func TestGetMissingIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	cases := []struct {
		name, where string
		get         func() error
	}{
		{"GetDAG", "dags/nope", func() error { _, err := b.st.GetDAG(ctx, "nope"); return err }},
		{"GetDAGListing", "dags/nope", func() error { _, err := b.st.GetDAGListing(ctx, "nope"); return err }},
		{"GetVersion", "dag_versions/nope~v1", func() error { _, err := b.st.GetVersion(ctx, "nope", "v1"); return err }},
		{"GetRun", "runs/nope~r1", func() error { _, err := b.st.GetRun(ctx, "nope", "r1"); return err }},
		{"GetRunWithCells", "runs/nope~r1", func() error { _, err := b.st.GetRunWithCells(ctx, "nope", "r1"); return err }},
		{"GetTaskInstance", "task_instances/nope~r1~a", func() error { _, err := b.st.GetTaskInstance(ctx, "nope", "r1", "a"); return err }},
		{"GetAttempt", "task_instances/nope~r1~a", func() error {
			_, err := b.st.GetAttempt(ctx, scheduler.AttemptRef{DagID: "nope", RunID: "r1", TaskID: "a", AttemptID: "x"})
			return err
		}},
		{"GetDispatch", "dispatches/nope", func() error { _, err := b.st.GetDispatch(ctx, "nope"); return err }},
		{"GetBackfill", "backfills/nope", func() error { _, err := b.st.GetBackfill(ctx, "nope"); return err }},
		{"GetVariable", "variables/nope", func() error { _, err := b.st.GetVariable(ctx, "nope"); return err }},
		{"GetUser", "users/nope@example.com", func() error { _, err := b.st.GetUser(ctx, "nope@example.com"); return err }},
		{"GetAlertClaim", "alert_sent/nope", func() error { _, err := b.st.GetAlertClaim(ctx, "nope"); return err }},
		{"GetAlertThread", "alert_threads/nope", func() error { _, err := b.st.GetAlertThread(ctx, "nope"); return err }},
		{"GetDigestCursor", "alert_digests/nope", func() error { _, err := b.st.GetDigestCursor(ctx, "nope"); return err }},
	}
	for _, c := range cases {
		err := c.get()
		if !errors.Is(err, fsstore.ErrNotFound) {
			t.Errorf("%s of a missing document: err = %v; want ErrNotFound", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.where) {
			t.Errorf("%s: error %q does not name %s", c.name, err, c.where)
		}
	}
	// The import errors of a deployment that recorded none are empty, not an error.
	ie, err := b.st.GetImportErrors(ctx)
	must(t, "GetImportErrors on an empty store", err)
	if len(ie.Problems) != 0 {
		t.Fatalf("import errors of an empty store = %+v; want none", ie)
	}
}

// An id no document can have (a run id or task id typed with a slash, "..", a reserved
// "__x__" name) is not there: reads and deletes give ErrNotFound naming the id, never
// Firestore's InvalidArgument about document paths (which the CLI showed as an internal
// error).
func TestIDsNoDocumentCanHaveAreNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	for _, id := range []string{"a/b", "../x", "..", ".", "__x__", "", strings.Repeat("x", 1600)} {
		cases := []struct {
			name string
			do   func() error
		}{
			{"GetRun", func() error { _, err := b.st.GetRun(ctx, "etl", id); return err }},
			{"GetTaskInstance", func() error { _, err := b.st.GetTaskInstance(ctx, "etl", "manual__x", id); return err }},
			{"GetAttempt", func() error {
				_, err := b.st.GetAttempt(ctx, scheduler.AttemptRef{DagID: "etl", RunID: "manual__x", TaskID: id, AttemptID: id})
				return err
			}},
			{"GetVariable", func() error { _, err := b.st.GetVariable(ctx, id); return err }},
			{"DeleteVariable", func() error { return b.st.DeleteVariable(ctx, id) }},
			{"GetUser", func() error { _, err := b.st.GetUser(ctx, id); return err }},
		}
		for _, c := range cases {
			err := c.do()
			if !errors.Is(err, fsstore.ErrNotFound) {
				t.Errorf("%s(%.20q): err = %v; want ErrNotFound", c.name, id, err)
			}
		}
	}
}
