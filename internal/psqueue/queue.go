package psqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/updraft-dev/updraft/scheduler"
)

// Topic and subscription ids. Terraform creates the same names on GCP.
const (
	TopicTasks  = "updraft-tasks"
	TopicEvents = "updraft-events"
	SubDispatch = "updraft-tasks-dispatch"
	SubAdvance  = "updraft-events-advance"
	// SubAlerts feeds the alerter (package alerts) the same task events as the advancer, so
	// a slow or down Slack never delays a task.
	SubAlerts = "updraft-events-alerts"
	// Messages a subscription failed to handle MaxDeliveryAttempts times go to its
	// dead-letter topic, read by its own subscription.
	TopicTasksDead      = "updraft-tasks-dead"
	TopicEventsDead     = "updraft-events-dead"
	SubTasksDead        = "updraft-tasks-dead-fail"
	SubEventsDead       = "updraft-events-dead-log"
	MaxDeliveryAttempts = 5
	ackDeadlineS        = 60
	// PublishTimeout bounds one publish, retries included: past it the publish fails with an
	// error naming Pub/Sub, and the tick republishes what was queued (it never hangs a worker
	// or a tick for long while Pub/Sub is down).
	PublishTimeout = 5 * time.Second
	// callWithin bounds one admin call (create, get, pull).
	callWithin = 5 * time.Second
)

// ErrBadMessage marks a message that can never be handled: it is acknowledged (and logged and
// counted by the caller), never redelivered. It is the scheduler's sentinel, so handlers can
// return the core's decode errors as they are.
var ErrBadMessage = scheduler.ErrBadMessage

// Queue publishes to and receives from Updraft's topics.
type Queue struct {
	client  *pubsub.Client
	project string
	where   string
	tasks   *pubsub.Publisher
	events  *pubsub.Publisher

	// OnReceiveError, when set before Receive, is told each time a subscription's stream
	// fails (the subscription is gone, or Pub/Sub is down) before Receive subscribes again.
	OnReceiveError func(sub string, err error)
}

// Open connects to Pub/Sub for the project (the emulator when PUBSUB_EMULATOR_HOST is set);
// opts are more client options (e.g. the local stack's faster reconnects).
func Open(ctx context.Context, project string, opts ...option.ClientOption) (*Queue, error) {
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("psqueue: connect to project %s: %w", project, err)
	}
	where := "Pub/Sub (project " + project + ")"
	if h := os.Getenv("PUBSUB_EMULATOR_HOST"); h != "" {
		where = "Pub/Sub emulator at " + h
	}
	q := &Queue{client: c, project: project, where: where, tasks: c.Publisher(TopicTasks), events: c.Publisher(TopicEvents)}
	for _, p := range []*pubsub.Publisher{q.tasks, q.events} {
		// Latency over batching: a ready task should leave at once.
		p.PublishSettings.DelayThreshold = time.Millisecond
		p.PublishSettings.Timeout = PublishTimeout
	}
	return q, nil
}

// Where names the Pub/Sub this queue talks to, for messages: "Pub/Sub emulator at
// 127.0.0.1:PORT" or "Pub/Sub (project P)".
func (q *Queue) Where() string { return q.where }

// Client is the queue's Pub/Sub client, for the pubsub.publish task type
// (internal/psqueue/pspublish): a process publishes with the one client it opened. Nothing
// else outside this adapter uses it.
func (q *Queue) Client() *pubsub.Client { return q.client }

// Close flushes publishers and releases the client.
func (q *Queue) Close() error {
	q.tasks.Stop()
	q.events.Stop()
	return q.client.Close()
}

// Ensure creates the topics and subscriptions if they are missing (local stacks and tests;
// on GCP Terraform owns them).
func (q *Queue) Ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*callWithin)
	defer cancel()
	if err := q.ensure(ctx); err != nil {
		return q.explain(err, 4*callWithin)
	}
	return nil
}

func (q *Queue) ensure(ctx context.Context) error {
	for _, t := range []string{TopicTasks, TopicEvents, TopicTasksDead, TopicEventsDead} {
		_, err := q.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: q.topicName(t)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("psqueue: create topic %s: %w", t, err)
		}
	}
	subs := []struct{ sub, topic, dead string }{
		{SubDispatch, TopicTasks, TopicTasksDead},
		{SubAdvance, TopicEvents, TopicEventsDead},
		{SubAlerts, TopicEvents, TopicEventsDead},
		{SubTasksDead, TopicTasksDead, ""},
		{SubEventsDead, TopicEventsDead, ""},
	}
	for _, s := range subs {
		sub := &pubsubpb.Subscription{Name: q.subName(s.sub), Topic: q.topicName(s.topic), AckDeadlineSeconds: ackDeadlineS}
		if s.dead != "" {
			sub.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{DeadLetterTopic: q.topicName(s.dead), MaxDeliveryAttempts: MaxDeliveryAttempts}
		}
		_, err := q.client.SubscriptionAdminClient.CreateSubscription(ctx, sub)
		if status.Code(err) == codes.AlreadyExists && sub.DeadLetterPolicy != nil {
			// Made by an older version: make sure it dead-letters.
			_, err = q.client.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
				Subscription: sub, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dead_letter_policy"}},
			})
		}
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("psqueue: create subscription %s: %w", s.sub, err)
		}
	}
	return nil
}

func (q *Queue) topicName(id string) string { return "projects/" + q.project + "/topics/" + id }
func (q *Queue) subName(id string) string   { return "projects/" + q.project + "/subscriptions/" + id }

// PublishTask publishes a ready attempt to the tasks topic and waits for the server's ack.
func (q *Queue) PublishTask(ctx context.Context, data []byte) error {
	return q.publish(ctx, q.tasks, data)
}

// PublishEvent publishes a task event to the events topic and waits for the server's ack.
func (q *Queue) PublishEvent(ctx context.Context, data []byte) error {
	return q.publish(ctx, q.events, data)
}

func (q *Queue) publish(ctx context.Context, p *pubsub.Publisher, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
	if _, err := p.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
		return fmt.Errorf("psqueue: publish to %s: %w", p.ID(), q.explain(err, PublishTimeout))
	}
	return nil
}

// Handler handles one message. A nil error or one wrapping ErrBadMessage acknowledges it;
// any other error asks for redelivery.
type Handler func(ctx context.Context, data []byte) error

// Receive streams messages from a subscription (streaming pull) to h, with up to maxInFlight
// handled at once, until ctx ends. A stream that fails (the subscription was deleted, e.g. by
// an emulator restart, or Pub/Sub is down) is reported to OnReceiveError and opened again
// after a short pause, so a subscription recreated meanwhile is read again without a restart.
func (q *Queue) Receive(ctx context.Context, sub string, maxInFlight int, h Handler) error {
	pause := 100 * time.Millisecond
	for {
		err := q.receive(ctx, sub, maxInFlight, h)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("the stream ended")
		}
		if q.OnReceiveError != nil {
			q.OnReceiveError(sub, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func (q *Queue) receive(ctx context.Context, sub string, maxInFlight int, h Handler) error {
	s := q.client.Subscriber(sub)
	s.ReceiveSettings.MaxOutstandingMessages = maxInFlight
	s.ReceiveSettings.NumGoroutines = 1
	err := s.Receive(ctx, func(ctx context.Context, m *pubsub.Message) {
		if err := h(ctx, m.Data); err != nil && !errors.Is(err, ErrBadMessage) {
			m.Nack()
			return
		}
		m.Ack()
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("psqueue: receive from %s: %w", sub, err)
	}
	return nil
}

// pullWithin bounds one synchronous pull, in case the server holds an empty pull open.
const pullWithin = 2 * callWithin

// PullOnce takes up to max messages waiting in a subscription with one synchronous pull,
// hands each to h in turn, acknowledges those h handled (nil, or an error wrapping
// ErrBadMessage) and returns their number. Messages h failed on are made available again at
// once. With nothing waiting it returns at once with 0: it is for draining a subscription
// nobody streams from (the dead-letter subscriptions on GCP, from the tick).
func (q *Queue) PullOnce(ctx context.Context, sub string, max int, h Handler) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, pullWithin)
	defer cancel()
	res, err := q.client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{
		Subscription: q.subName(sub), MaxMessages: int32(max),
		// Deprecated by Pub/Sub for throughput, and exactly what a periodic drain wants: an
		// empty subscription answers at once instead of holding the tick.
		ReturnImmediately: true, //nolint:staticcheck // see above
	})
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded) {
			return 0, nil // nothing came within pullWithin
		}
		return 0, fmt.Errorf("psqueue: pull from %s: %w", sub, err)
	}
	var acks, nacks []string
	for _, m := range res.GetReceivedMessages() {
		if err := h(ctx, m.GetMessage().GetData()); err != nil && !errors.Is(err, ErrBadMessage) {
			nacks = append(nacks, m.GetAckId())
			continue
		}
		acks = append(acks, m.GetAckId())
	}
	if len(nacks) > 0 {
		// Best effort: if this fails the messages come back after the ack deadline anyway.
		_ = q.client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
			Subscription: q.subName(sub), AckIds: nacks, AckDeadlineSeconds: 0,
		})
	}
	if len(acks) == 0 {
		return 0, nil
	}
	if err := q.client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{
		Subscription: q.subName(sub), AckIds: acks,
	}); err != nil {
		return 0, fmt.Errorf("psqueue: acknowledge %d message(s) from %s: %w", len(acks), sub, err)
	}
	return len(acks), nil
}
