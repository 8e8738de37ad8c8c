package emulators_test

// These tests pin down Firestore-emulator behaviour the store relies on.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/emulators/emutest"
)

func newFirestore(t *testing.T) (context.Context, *firestore.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := firestore.NewClient(ctx, emutest.Project(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

// Create of an existing document fails with AlreadyExists.
func TestFirestoreCreateTwiceIsAlreadyExists(t *testing.T) {
	t.Parallel()
	ctx, c := newFirestore(t)
	doc := c.Collection("runs").Doc("run-1")
	if _, err := doc.Create(ctx, map[string]any{"state": "queued"}); err != nil {
		t.Fatal(err)
	}
	_, err := doc.Create(ctx, map[string]any{"state": "running"})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second Create: %v (code %v), want AlreadyExists", err, status.Code(err))
	}
	t.Logf("second Create: %v", err)
}

// An Update with a stale LastUpdateTime precondition fails with
// FailedPrecondition; with the current one it succeeds.
func TestFirestoreStaleLastUpdateTimeIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx, c := newFirestore(t)
	doc := c.Collection("runs").Doc("run-1")
	wr, err := doc.Create(ctx, map[string]any{"state": "queued", "attempt": 0})
	if err != nil {
		t.Fatal(err)
	}
	stale := wr.UpdateTime
	wr2, err := doc.Update(ctx, []firestore.Update{{Path: "state", Value: "running"}}, firestore.LastUpdateTime(stale))
	if err != nil {
		t.Fatalf("Update with the current update time: %v", err)
	}
	if !wr2.UpdateTime.After(stale) {
		t.Errorf("update time did not advance: %v then %v", stale, wr2.UpdateTime)
	}
	_, err = doc.Update(ctx, []firestore.Update{{Path: "state", Value: "failed"}}, firestore.LastUpdateTime(stale))
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Update with a stale update time: %v (code %v), want FailedPrecondition", err, status.Code(err))
	}
	t.Logf("stale Update: %v", err)
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Data()["state"]; got != "running" {
		t.Errorf("state = %v after the rejected update, want running", got)
	}
	if !snap.UpdateTime.Equal(wr2.UpdateTime) {
		t.Errorf("snapshot UpdateTime %v != WriteResult.UpdateTime %v", snap.UpdateTime, wr2.UpdateTime)
	}
	// A precondition on a missing document.
	_, err = c.Collection("runs").Doc("nope").Update(ctx, []firestore.Update{{Path: "state", Value: "x"}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Update of a missing document: %v, want NotFound", err)
	}
}

// A COUNT aggregation over a query with an array-contains filter and an
// equality filter works (the emulator needs no composite index).
func TestFirestoreCountArrayContainsAndEquality(t *testing.T) {
	t.Parallel()
	ctx, c := newFirestore(t)
	tasks := c.Collection("tasks")
	for i := range 10 {
		state := "queued"
		if i%2 == 1 {
			state = "done"
		}
		tags := []string{"all", fmt.Sprintf("mod3-%d", i%3)}
		if _, err := tasks.Doc(fmt.Sprintf("t%02d", i)).Create(ctx, map[string]any{
			"state": state, "tags": tags, "cost": i, "seconds": float64(i) / 2,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// i in 0..9 with i%3 == 0 and i even: 0, 6.
	q := tasks.Where("tags", "array-contains", "mod3-0").Where("state", "==", "queued")
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		t.Fatalf("count query: %v", err)
	}
	if got := intValue(t, res, "n"); got != 2 {
		t.Errorf("count = %d, want 2", got)
	}

	// SUM (and AVG) next to COUNT, on the same filtered query.
	res, err = q.NewAggregationQuery().WithCount("n").WithSum("cost", "total").WithSum("seconds", "secs").WithAvg("cost", "avg").Get(ctx)
	if err != nil {
		t.Fatalf("count+sum query: %v", err)
	}
	if got := intValue(t, res, "n"); got != 2 {
		t.Errorf("count = %d, want 2", got)
	}
	if got := intValue(t, res, "total"); got != 6 { // 0 + 6, integers sum to an integer
		t.Errorf("sum(cost) = %d, want 6", got)
	}
	if got := doubleValue(t, res, "secs"); got != 3 { // 0 + 3.0, doubles sum to a double
		t.Errorf("sum(seconds) = %v, want 3", got)
	}
	if got := doubleValue(t, res, "avg"); got != 3 {
		t.Errorf("avg(cost) = %v, want 3", got)
	}
	t.Logf("aggregation result: %v", res)

	// An empty match: count 0, sum 0.
	empty := tasks.Where("tags", "array-contains", "none").Where("state", "==", "queued")
	res, err = empty.NewAggregationQuery().WithCount("n").WithSum("cost", "total").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, total := intValue(t, res, "n"), intValue(t, res, "total"); n != 0 || total != 0 {
		t.Errorf("empty match: count %d sum %d, want 0 0", n, total)
	}
}

// Projects are isolated: emutest.Project gives every test its own data.
func TestFirestoreProjectsAreIsolated(t *testing.T) {
	t.Parallel()
	ctx, a := newFirestore(t)
	_, b := newFirestore(t)
	if _, err := a.Collection("c").Doc("d").Create(ctx, map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Collection("c").Doc("d").Get(ctx)
	if status.Code(err) != codes.NotFound {
		t.Fatalf("document of project A read from project B: err %v, want NotFound", err)
	}
}

func intValue(t *testing.T, res firestore.AggregationResult, alias string) int64 {
	t.Helper()
	v, ok := res[alias].(*firestorepb.Value)
	if !ok {
		t.Fatalf("aggregation %q = %#v, want *firestorepb.Value", alias, res[alias])
	}
	if _, ok := v.GetValueType().(*firestorepb.Value_IntegerValue); !ok {
		t.Fatalf("aggregation %q = %v, want an integer", alias, v)
	}
	return v.GetIntegerValue()
}

func doubleValue(t *testing.T, res firestore.AggregationResult, alias string) float64 {
	t.Helper()
	v, ok := res[alias].(*firestorepb.Value)
	if !ok {
		t.Fatalf("aggregation %q = %#v, want *firestorepb.Value", alias, res[alias])
	}
	if _, ok := v.GetValueType().(*firestorepb.Value_DoubleValue); !ok {
		t.Fatalf("aggregation %q = %v, want a double", alias, v)
	}
	return v.GetDoubleValue()
}
