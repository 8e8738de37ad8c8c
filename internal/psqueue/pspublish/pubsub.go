package pspublish

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// PubSubPublish is the `pubsub.publish` task type (Airflow's PubSubPublishMessageOperator):
// publish messages to a topic and wait until Pub/Sub has every one. It runs inline.
// PUBSUB_EMULATOR_HOST, when set, sends them to the emulator.
//
//	with:
//	  topic: orders-ready          # an ID, or projects/P/topics/T
//	  project: my-project          # default: GOOGLE_CLOUD_PROJECT (or the topic's)
//	  messages:
//	    - "plain text data"
//	    - data: {date: "{{ .ds }}", rows: 12}   # an object is sent as JSON
//	      attributes: {source: updraft}
//	      ordering_key: orders
//
// Its XCom is {"message_ids": ["…", …]}, in the order of messages.
//
// It publishes with q's client, the one Pub/Sub client of the process (a topic of another
// project too: the client's project is only a default). With q nil (a registry that only
// checks arguments, or a test) each attempt opens a client of its own and closes it.
func PubSubPublish(q *psqueue.Queue) taskrun.Type {
	return taskrun.Type{Name: "pubsub.publish", Inline: true, Check: checkPubSubPublish,
		Run: func(ctx context.Context, tc *taskrun.Context) engine.Result { return runPubSubPublish(ctx, tc, q) }}
}

var (
	pubsubArgs        = []string{"topic", "project", "messages"}
	pubsubMessageKeys = []string{"data", "attributes", "ordering_key"}
	// pubsubTopicID is Pub/Sub's rule for a topic ID.
	pubsubTopicID   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)
	pubsubTopicName = regexp.MustCompile(`^projects/([^/]+)/topics/([^/]+)$`)
)

const pubsubMessagesHint = `messages: ["text", {data: {any: value}, attributes: {k: v}, ordering_key: key}]`

func checkPubSubPublish(with map[string]any) []dag.ArgProblem {
	var ps []dag.ArgProblem
	ps = append(ps, taskrun.UnknownArgs(with, pubsubArgs)...)
	topic, ok := with["topic"].(string)
	if !ok || strings.TrimSpace(topic) == "" {
		ps = append(ps, dag.ArgProblem{Arg: "topic", Msg: "a pubsub.publish task needs with.topic", Hint: "topic: orders-ready (or projects/P/topics/T)"})
	} else if !strings.Contains(topic, "{{") {
		project, _ := with["project"].(string)
		if strings.Contains(project, "{{") {
			project = ""
		}
		if _, _, err := pubsubTopic(topic, strings.TrimSpace(project)); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "topic", Msg: err.Error(), Hint: "topic: orders-ready (or projects/P/topics/T)"})
		}
	}
	if v, ok := with["project"]; ok {
		if _, isStr := v.(string); !isStr {
			ps = append(ps, dag.ArgProblem{Arg: "project", Msg: fmt.Sprintf("project must be a string, not %v", v)})
		}
	}
	v, ok := with["messages"]
	if !ok {
		return append(ps, dag.ArgProblem{Arg: "messages", Msg: "a pubsub.publish task needs with.messages", Hint: pubsubMessagesHint})
	}
	if s, isStr := v.(string); isStr && strings.Contains(s, "{{") {
		return ps // JSON from a template: read after rendering
	}
	items, err := pubsubList(v)
	if err != nil {
		return append(ps, dag.ArgProblem{Arg: "messages", Msg: err.Error(), Hint: pubsubMessagesHint})
	}
	for i, it := range items {
		if p, bad := pubsubCheckItem(it); bad {
			p.Arg = fmt.Sprintf("messages[%d]%s", i, p.Arg)
			ps = append(ps, p)
		}
	}
	return ps
}

// pubsubCheckItem checks one message's shape; templates are accepted unread.
func pubsubCheckItem(it any) (dag.ArgProblem, bool) {
	switch m := it.(type) {
	case string:
		return dag.ArgProblem{}, false
	case map[string]any:
		if unknown := taskrun.UnknownArgs(m, pubsubMessageKeys); len(unknown) > 0 {
			return dag.ArgProblem{Arg: "." + unknown[0].Arg, Msg: fmt.Sprintf("unknown message field %q", unknown[0].Arg),
				Hint: "message fields: data, attributes, ordering_key"}, true
		}
		if a, ok := m["attributes"]; ok {
			if _, isMap := a.(map[string]any); !isMap {
				return dag.ArgProblem{Arg: ".attributes", Msg: "attributes must be a mapping of names to values"}, true
			}
		}
		if k, ok := m["ordering_key"]; ok {
			if _, isStr := k.(string); !isStr {
				return dag.ArgProblem{Arg: ".ordering_key", Msg: "ordering_key must be a string"}, true
			}
		}
		_, hasData := m["data"]
		a, _ := m["attributes"].(map[string]any)
		if !hasData && len(a) == 0 {
			return dag.ArgProblem{Msg: "a message needs data or attributes", Hint: pubsubMessagesHint}, true
		}
		return dag.ArgProblem{}, false
	}
	return dag.ArgProblem{Msg: fmt.Sprintf("a message is a string (its data) or a mapping with data, attributes, ordering_key, not %v", it),
		Hint: pubsubMessagesHint}, true
}

// pubsubList reads messages: a list, or JSON text of one (from a template).
func pubsubList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil, fmt.Errorf("messages is empty: give at least one")
		}
		return x, nil
	case string:
		var list []any
		if err := json.Unmarshal([]byte(x), &list); err != nil {
			return nil, fmt.Errorf("messages is a string but not JSON text of a list: %v", err)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("messages is empty: give at least one")
		}
		return list, nil
	}
	return nil, fmt.Errorf("messages must be a list, not %v", v)
}

// pubsubTopic splits a topic argument into its project and ID; a bare ID takes project.
func pubsubTopic(topic, project string) (proj, id string, err error) {
	topic = strings.TrimSpace(topic)
	if m := pubsubTopicName.FindStringSubmatch(topic); m != nil {
		if project != "" && project != m[1] {
			return "", "", fmt.Errorf("topic %s is in project %s, but with.project is %s: give one of them", topic, m[1], project)
		}
		proj, id = m[1], m[2]
	} else if strings.Contains(topic, "/") {
		return "", "", fmt.Errorf("topic %q is neither a topic ID nor projects/PROJECT/topics/TOPIC", topic)
	} else {
		proj, id = project, topic
	}
	if !pubsubTopicID.MatchString(id) || strings.HasPrefix(id, "goog") {
		return "", "", fmt.Errorf("%q is not a valid topic ID: 3-255 letters, digits and - _ . ~ + %%, starting with a letter, not with goog", id)
	}
	return proj, id, nil
}

// pubsubMessage builds message i from its rendered form.
func pubsubMessage(i int, it any) (*pubsub.Message, error) {
	if p, bad := pubsubCheckItem(it); bad {
		return nil, fmt.Errorf("messages[%d]%s: %s", i, p.Arg, p.Msg)
	}
	if s, ok := it.(string); ok {
		if s == "" {
			return nil, fmt.Errorf("messages[%d] is empty (after rendering): a message needs data or attributes", i)
		}
		return &pubsub.Message{Data: []byte(s)}, nil
	}
	m := it.(map[string]any)
	msg := &pubsub.Message{}
	switch d := m["data"].(type) {
	case nil:
	case string:
		msg.Data = []byte(d)
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("messages[%d].data: %v", i, err)
		}
		msg.Data = b
	}
	if a, _ := m["attributes"].(map[string]any); len(a) > 0 {
		msg.Attributes = make(map[string]string, len(a))
		for k, v := range a {
			switch x := v.(type) {
			case string:
				msg.Attributes[k] = x
			case map[string]any, []any:
				b, _ := json.Marshal(x)
				msg.Attributes[k] = string(b)
			case nil:
				msg.Attributes[k] = ""
			default:
				msg.Attributes[k] = fmt.Sprint(x)
			}
		}
	}
	msg.OrderingKey, _ = m["ordering_key"].(string)
	if len(msg.Data) == 0 && len(msg.Attributes) == 0 {
		return nil, fmt.Errorf("messages[%d] has no data and no attributes (after rendering)", i)
	}
	return msg, nil
}

func runPubSubPublish(ctx context.Context, tc *taskrun.Context, q *psqueue.Queue) engine.Result {
	a := tc.Args
	topicArg, _ := a["topic"].(string)
	project, _ := a["project"].(string)
	project = strings.TrimSpace(project)
	if project == "" && tc.Getenv != nil && !pubsubTopicName.MatchString(strings.TrimSpace(topicArg)) {
		project = tc.Getenv("GOOGLE_CLOUD_PROJECT")
	}
	project, topicID, err := pubsubTopic(topicArg, project)
	if err != nil {
		return taskrun.Final("pubsub.publish: " + err.Error())
	}
	if project == "" {
		return taskrun.Final(fmt.Sprintf("pubsub.publish: no project for topic %s: set with.project, GOOGLE_CLOUD_PROJECT, or give projects/P/topics/%s", topicID, topicID))
	}
	topic := "projects/" + project + "/topics/" + topicID
	items, err := pubsubList(a["messages"])
	if err != nil {
		return taskrun.Final("pubsub.publish: " + err.Error())
	}
	msgs := make([]*pubsub.Message, len(items))
	ordered := false
	for i, it := range items {
		if msgs[i], err = pubsubMessage(i, it); err != nil {
			return taskrun.Final("pubsub.publish: " + err.Error())
		}
		ordered = ordered || msgs[i].OrderingKey != ""
	}

	var client *pubsub.Client
	if q != nil {
		client = q.Client()
	} else {
		if client, err = pubsub.NewClient(ctx, project); err != nil {
			return taskrun.Failed(nil, fmt.Sprintf("pubsub.publish: connect: %v", err))
		}
		defer client.Close()
	}
	pub := client.Publisher(topic)
	pub.EnableMessageOrdering = ordered
	defer pub.Stop()

	tc.Log.Info(fmt.Sprintf("publishing %d messages to %s", len(msgs), topic))
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = pub.Publish(ctx, m)
	}
	ids := make([]string, 0, len(msgs))
	var firstErr error
	firstFailed := -1
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			if firstErr == nil {
				firstErr, firstFailed = err, i
			}
			continue
		}
		ids = append(ids, id)
	}
	if firstErr != nil {
		return pubsubFailure(ctx, firstErr, topic, project, topicID, firstFailed, len(ids), len(msgs))
	}
	tc.Log.Info(fmt.Sprintf("published %d messages to %s", len(ids), topic))
	x, _ := json.Marshal(map[string][]string{"message_ids": ids})
	return engine.Result{State: scheduler.AttemptSuccess, XCom: x}
}

// pubsubFailure turns a publish error into the attempt's failure: a missing topic or a missing
// permission is final; anything else is retried by the task's retries (which publish every
// message again).
func pubsubFailure(ctx context.Context, err error, topic, project, topicID string, firstFailed, ok, total int) engine.Result {
	switch status.Code(err) {
	case codes.NotFound:
		return taskrun.Final(fmt.Sprintf("pubsub.publish: topic %s not found: create it (gcloud pubsub topics create %s --project %s) or fix with.topic",
			topic, topicID, project))
	case codes.PermissionDenied:
		return taskrun.Final(fmt.Sprintf("pubsub.publish: permission denied on topic %s: grant roles/pubsub.publisher on it to the service account Updraft runs as (%v)",
			topic, err))
	case codes.InvalidArgument:
		return taskrun.Final(fmt.Sprintf("pubsub.publish: Pub/Sub rejected messages[%d] for %s: %v", firstFailed, topic, err))
	}
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return taskrun.Failed(nil, fmt.Sprintf("pubsub.publish: %d of %d messages published to %s; messages[%d] failed: %v",
		ok, total, topic, firstFailed, err))
}
