package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
)

func duration(start, end *time.Time) string {
	if start == nil {
		return "-"
	}
	e := time.Now()
	if end != nil {
		e = *end
	}
	d := e.Sub(*start).Round(time.Millisecond)
	if d < 0 {
		return "-" // an end left from an earlier try, or clocks apart: no duration to show
	}
	if end == nil {
		return d.String() + "…"
	}
	return d.String()
}

// endedIfFinished is a task's end time while it has finished; a running try (a retry, a
// clear) still carries the end of the try before it, which is not its own.
func endedIfFinished(st scheduler.TaskState, end *time.Time) *time.Time {
	if !st.Finished() {
		return nil
	}
	return end
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func cmdTick(ctx context.Context, a *App, args []string) error {
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	rep, err := eng.Tick(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.Stdout, jsonText(rep, true))
	return nil
}
