// Command go-worker is an example custom Updraft worker: the stock worker plus two Go
// functions that `go` tasks call by name (Airflow's PythonOperator, in Go). Build it, point
// the dispatcher at it (UPDRAFT_WORKER_CMD locally, the worker job's image on GCP) and run
// dags/orders_dedupe_daily.yaml; README.md says how.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/updraft-dev/updraft/tasks"
	"github.com/updraft-dev/updraft/worker"
)

func main() {
	// Register every function before handing over to the worker: a go task naming a function
	// this binary does not register fails at once, listing the ones it has.
	tasks.Register("dedupe_orders", dedupeOrders)
	tasks.Register("check_duplicate_rate", checkDuplicateRate)
	worker.Main()
}

// dedupeSummary is dedupe_orders' XCom.
type dedupeSummary struct {
	Received      int     `json:"received"`
	Unique        int     `json:"unique"`
	Duplicates    int     `json:"duplicates"`
	DuplicateKeys []any   `json:"duplicate_keys"`
	Revenue       float64 `json:"revenue"`
}

// dedupeOrders drops repeated orders (same `key`, default "id"; the first one wins) from a
// partner feed that replays orders, and returns counts and the revenue of the unique orders.
//
//	with:
//	  func: dedupe_orders
//	  orders: '{{ xcom "fetch_orders" "orders" | toJSON }}'   # a list of objects
//	  key: id                                                 # optional
//
// No orders at all ends the task skipped: there is nothing to load or report.
func dedupeOrders(ctx context.Context, tc *tasks.Context) (any, error) {
	var orders []map[string]any
	if err := tc.DecodeArg("orders", &orders); err != nil {
		return nil, err
	}
	key := "id"
	if _, ok := tc.Args["key"]; ok {
		if err := tc.DecodeArg("key", &key); err != nil {
			return nil, err
		}
	}
	if len(orders) == 0 {
		return nil, fmt.Errorf("no orders in the feed: nothing to dedupe: %w", tasks.ErrSkip)
	}
	s := dedupeSummary{Received: len(orders), DuplicateKeys: []any{}}
	seen := map[string]bool{}
	for i, o := range orders {
		if err := ctx.Err(); err != nil { // a long loop checks its context: the task's timeout
			return nil, err
		}
		k, ok := o[key]
		if !ok {
			return nil, fmt.Errorf("order %d has no %q field: %v", i, key, o)
		}
		id := fmt.Sprint(k)
		if seen[id] {
			s.Duplicates++
			s.DuplicateKeys = append(s.DuplicateKeys, k)
			continue
		}
		seen[id] = true
		s.Unique++
		if amount, ok := o["amount"].(float64); ok {
			s.Revenue += amount
		}
	}
	if s.Duplicates > 0 {
		keys := make([]string, len(s.DuplicateKeys))
		for i, k := range s.DuplicateKeys {
			keys[i] = fmt.Sprint(k)
		}
		tc.Log.Info(fmt.Sprintf("dropped %d repeated orders (%s %s)", s.Duplicates, key, strings.Join(keys, ", ")))
	}
	return s, nil
}

// checkDuplicateRate is a data-quality gate: it fails when more than `max_rate` (default 0.1)
// of the feed's orders were repeats, so nothing downstream loads a feed that went wrong.
//
//	with:
//	  func: check_duplicate_rate
//	  summary: '{{ xcom "dedupe_orders" | toJSON }}'   # received and duplicates
//	  max_rate: 0.5
func checkDuplicateRate(ctx context.Context, tc *tasks.Context) (any, error) {
	var s dedupeSummary
	if err := tc.DecodeArg("summary", &s); err != nil {
		return nil, err
	}
	maxRate := 0.1
	if _, ok := tc.Args["max_rate"]; ok {
		if err := tc.DecodeArg("max_rate", &maxRate); err != nil {
			return nil, err
		}
	}
	if s.Received == 0 {
		return nil, fmt.Errorf("the summary counts no orders received: %w", tasks.ErrSkip)
	}
	rate := float64(s.Duplicates) / float64(s.Received)
	if rate > maxRate {
		return nil, fmt.Errorf("duplicate rate %.0f%% (%d of %d orders) is over the %.0f%% limit: the partner feed is replaying orders; check it before loading",
			rate*100, s.Duplicates, s.Received, maxRate*100)
	}
	return map[string]any{"rate": rate, "max_rate": maxRate}, nil
}
