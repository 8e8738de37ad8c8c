package fsstore_test

import (
	"fmt"
	"testing"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// A task instance is deleted only if unchanged since it was read: a stale delete is
// ErrConflict and the instance stays.
func TestDeleteTaskInstanceNeedsTheCurrentVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	ti := b.ti(r, "copy[0]", scheduler.TaskFailed)
	must(t, "create", b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{ti}))
	v, err := b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
	must(t, "read", err)
	_, err = b.st.UpdateTaskInstanceIf(b.ctx, ti, v.UpdateTime, map[string]any{"error": "changed"})
	must(t, "someone else's write", err)

	mustIs(t, "delete with the stale version", b.st.DeleteTaskInstance(b.ctx, ti, v.UpdateTime), fsstore.ErrConflict)
	v2, err := b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
	must(t, "instance after a refused delete", err)
	must(t, "delete with the current version", b.st.DeleteTaskInstance(b.ctx, ti, v2.UpdateTime))
	_, err = b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
	mustIs(t, "instance after the delete", err, fsstore.ErrNotFound)
	mustIs(t, "delete of a deleted instance", b.st.DeleteTaskInstance(b.ctx, ti, v2.UpdateTime), fsstore.ErrConflict)
}

// A grant is removed only if unchanged since read.
func TestDeleteUserIfNeedsTheCurrentVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const email = "a@example.com"
	must(t, "grant", b.st.CreateUser(b.ctx, &fsstore.UserGrant{Email: email, Role: "viewer"}))
	v, err := b.st.GetUser(b.ctx, email)
	must(t, "read", err)
	t1, err := b.st.UpdateUserIf(b.ctx, email, v.UpdateTime, map[string]any{"role": "admin"})
	must(t, "someone else's change", err)

	mustIs(t, "revoke with the stale version", b.st.DeleteUserIf(b.ctx, email, v.UpdateTime), fsstore.ErrConflict)
	if g, err := b.st.GetUser(b.ctx, email); err != nil || g.Rec.Role != "admin" {
		t.Fatalf("grant after a refused revoke = %+v, %v; want the admin grant kept", g, err)
	}
	must(t, "revoke with the current version", b.st.DeleteUserIf(b.ctx, email, t1))
	_, err = b.st.GetUser(b.ctx, email)
	mustIs(t, "grant after the revoke", err, fsstore.ErrNotFound)
	// A revoke of a grant already gone fails its precondition like a changed one: the caller
	// re-reads (as it does on any ErrConflict) and finds ErrNotFound.
	mustIs(t, "revoke of a gone grant", b.st.DeleteUserIf(b.ctx, email, t1), fsstore.ErrConflict)
	users, err := b.st.ListUsers(b.ctx)
	must(t, "list users", err)
	if len(users) != 0 {
		t.Fatalf("users after the revoke = %+v; want none", users)
	}
}

// Variables are set unconditionally (the last set wins), listed by name, and deleting one
// that is not set is ErrNotFound.
func TestVariablesSetListDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, v := range []fsstore.Variable{{Name: "b", Value: "1"}, {Name: "a", Value: "2"}, {Name: "b", Value: "3"}} {
		v.UpdatedAt = b.clock
		must(t, "set "+v.Name, b.st.SetVariable(b.ctx, v))
	}
	vs, err := b.st.ListVariables(b.ctx)
	must(t, "list", err)
	if got := fmt.Sprint(vs[0].Name, vs[0].Value, " ", vs[1].Name, vs[1].Value); len(vs) != 2 || got != "a2 b3" {
		t.Fatalf("variables = %+v; want a=2, b=3 in name order", vs)
	}
	mustIs(t, "delete an unset variable", b.st.DeleteVariable(b.ctx, "nope"), fsstore.ErrNotFound)
	must(t, "delete b", b.st.DeleteVariable(b.ctx, "b"))
	_, err = b.st.GetVariable(b.ctx, "b")
	mustIs(t, "b after delete", err, fsstore.ErrNotFound)
}

// DeleteRunTree deletes a run with its task instances and attempts, page by page, and only
// if the run is unchanged since read; another DAG's run with the same run id keeps its own.
func TestDeleteRunTreeIsFencedAndDeletesOnlyItsChildren(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunSuccess)
	other := b.run("e", b.clock, scheduler.RunSuccess) // same run id, another DAG
	if r.RunID != other.RunID {
		t.Fatalf("runs of two DAGs at one date have ids %s and %s; the test needs them equal", r.RunID, other.RunID)
	}
	seed := func(run *scheduler.Run, tis, ats int) {
		must(t, "create run", b.st.CreateRun(b.ctx, run))
		var list []*scheduler.TaskInstance
		for i := range tis {
			list = append(list, b.ti(run, fmt.Sprintf("t%d", i), scheduler.TaskSuccess))
		}
		must(t, "create instances", b.st.CreateTaskInstances(b.ctx, list))
		for i := range ats { // on the first instances, the first with two
			b.putAttempt(t, b.attempt(list[i], fmt.Sprintf("%s-att%d", run.DagID, i)))
			if i == 0 && ats > 1 {
				b.putAttempt(t, b.attempt(list[i], fmt.Sprintf("%s-att%d-2", run.DagID, i)))
			}
		}
	}
	seed(r, 5, 3)
	seed(other, 2, 1)
	tis, ats, err := b.st.CountRunChildren(b.ctx, r.DagID, r.RunID)
	must(t, "count children", err)
	if tis != 5 || ats != 4 {
		t.Fatalf("CountRunChildren = %d, %d; want 5, 4", tis, ats)
	}

	v, err := b.st.GetRun(b.ctx, r.DagID, r.RunID)
	must(t, "read run", err)
	_, err = b.st.UpdateRunIf(b.ctx, r, v.UpdateTime, map[string]any{"state": string(scheduler.RunQueued)})
	must(t, "a clear meanwhile", err)
	_, _, err = b.st.DeleteRunTree(b.ctx, r, v.UpdateTime, 2)
	mustIs(t, "delete with the stale version", err, fsstore.ErrConflict)
	if tis, ats, _ := b.st.CountRunChildren(b.ctx, r.DagID, r.RunID); tis != 5 || ats != 4 {
		t.Fatalf("children after a refused delete = %d, %d; want 5, 4 kept", tis, ats)
	}

	v, err = b.st.GetRun(b.ctx, r.DagID, r.RunID)
	must(t, "re-read run", err)
	tis, ats, err = b.st.DeleteRunTree(b.ctx, r, v.UpdateTime, 2)
	must(t, "delete with the current version", err)
	if tis != 5 || ats != 4 {
		t.Fatalf("DeleteRunTree deleted %d instances, %d attempts; want 5, 4", tis, ats)
	}
	_, err = b.st.GetRun(b.ctx, r.DagID, r.RunID)
	mustIs(t, "run after delete", err, fsstore.ErrNotFound)
	if tis, ats, _ := b.st.CountRunChildren(b.ctx, r.DagID, r.RunID); tis != 0 || ats != 0 {
		t.Fatalf("children left = %d, %d; want none", tis, ats)
	}
	if tis, ats, _ := b.st.CountRunChildren(b.ctx, other.DagID, other.RunID); tis != 2 || ats != 1 {
		t.Fatalf("the other DAG's run has %d, %d children; want 2, 1 untouched", tis, ats)
	}
	if _, err := b.st.GetRun(b.ctx, other.DagID, other.RunID); err != nil {
		t.Fatalf("the other DAG's run: %v", err)
	}
}
