package slackpost

import (
	"fmt"
	"strings"
)

// ReservedSlackPrefix starts the action and block ids of Updraft's own alert messages
// (updraft_retry, updraft_view_log, updraft_actions). Only Updraft's alerts may carry them:
// a DAG posting a button with action_id updraft_retry would make the Retry endpoint act on
// a click on its message, for whatever task its value names.
const ReservedSlackPrefix = "updraft_"

// reservedSlackIDs refuses blocks or attachments (decoded Block Kit) holding an action_id or
// block_id of Updraft's own, at any depth (attachments carry blocks and actions too).
func reservedSlackIDs(items []any, name string) error {
	var found string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range []string{"action_id", "block_id"} {
				if id, ok := x[k].(string); ok && found == "" && strings.HasPrefix(strings.TrimSpace(id), ReservedSlackPrefix) {
					found = k + " " + id
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(items)
	if found != "" {
		return fmt.Errorf("%s carry %s: ids starting with %q are Updraft's own alerts' (its Retry button), which a DAG's message may not imitate; name yours otherwise, e.g. action_id: my_approve",
			name, found, ReservedSlackPrefix)
	}
	return nil
}
