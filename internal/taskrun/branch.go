package taskrun

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// Branch is the `branch` task type (Airflow's BranchPythonOperator): its `choose` argument,
// usually a template, names the downstream tasks to run; the engine skips the others, and
// the skip propagates by trigger rules. It runs inline.
//
//   - id: has_rows
//     type: branch
//     needs: [count_rows]
//     with:
//     choose: '{{ if gt (xcom "count_rows").n 0 }}load{{ else }}skip_load{{ end }}'
//
// choose may name several tasks ("a, b" or a list) or none (an empty string skips them all).
func Branch() Type {
	return Type{Name: "branch", Inline: true, Run: runBranch, Check: checkBranch}
}

func checkBranch(with map[string]any) []dag.ArgProblem {
	ps := UnknownArgs(with, []string{"choose"})
	switch v := with["choose"].(type) {
	case string:
	case []any:
		for _, x := range v {
			if _, ok := x.(string); !ok {
				ps = append(ps, dag.ArgProblem{Arg: "choose", Msg: fmt.Sprintf("choose lists task ids, and %v is not one", x)})
			}
		}
	case nil:
		ps = append(ps, dag.ArgProblem{Arg: "choose", Msg: "a branch task needs with.choose: the downstream task(s) to run",
			Hint: `choose: '{{ if gt (xcom "count_rows").n 0 }}load{{ else }}skip_load{{ end }}'`})
	default:
		ps = append(ps, dag.ArgProblem{Arg: "choose", Msg: fmt.Sprintf("choose must be a task id, a comma-separated list or a list, not %v", v)})
	}
	return ps
}

func runBranch(_ context.Context, tc *Context) engine.Result {
	chosen, err := branchChoice(tc.Args["choose"])
	if err != nil {
		return Final("branch: " + err.Error())
	}
	valid := tc.DAG.Downstream()[tc.Task.ID]
	for _, id := range chosen {
		ok := false
		for _, v := range valid {
			ok = ok || v == id
		}
		if !ok {
			return Final(fmt.Sprintf("branch %s chose %q, which is not downstream of it; it can choose: %s",
				tc.Task.ID, id, strings.Join(valid, ", ")))
		}
	}
	skips := tc.DAG.BranchSkips(tc.Task.ID, chosen)
	var skipped []string
	for _, v := range valid {
		if skips[v] {
			skipped = append(skipped, v)
		}
	}
	tc.Log.Info(fmt.Sprintf("branch %s: running [%s], skipping [%s]", tc.Task.ID, strings.Join(chosen, ", "), strings.Join(skipped, ", ")))
	b, _ := json.Marshal(chosen)
	return engine.Result{State: scheduler.AttemptSuccess, XCom: b}
}

// branchChoice reads choose: a task id, ids separated by commas or spaces, a JSON list, or a
// list; "" chooses none.
func branchChoice(v any) ([]string, error) {
	out := []string{}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("choose lists task ids, and %v is not one", e)
			}
			out = append(out, strings.TrimSpace(s))
		}
	case string:
		s := strings.TrimSpace(x)
		if strings.HasPrefix(s, "[") {
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return nil, fmt.Errorf("choose %q looks like a JSON list but is not a list of task ids: %v", s, err)
			}
			break
		}
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			out = append(out, f)
		}
	default:
		return nil, fmt.Errorf("choose must be a task id or a list of them, not %v", v)
	}
	return out, nil
}
