package psqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrTopicMissing means Pub/Sub answers but Updraft's tasks topic is not there: on the
// emulator, it restarted and lost its topics (Ensure creates them again); on GCP, Terraform
// has not created them.
var ErrTopicMissing = errors.New("psqueue: topic missing")

// ErrNoAnswer means Pub/Sub did not answer a call within its deadline, or refused the
// connection.
var ErrNoAnswer = errors.New("psqueue: no answer")

// Check is the queue's health probe: one GetTopic on the tasks topic within d. It returns nil
// when the topic is there, an error wrapping ErrTopicMissing when Pub/Sub answers without it,
// and one wrapping ErrNoAnswer when Pub/Sub does not answer.
func (q *Queue) Check(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := q.client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: q.topicName(TopicTasks)})
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%w: %s has no topic %s", ErrTopicMissing, q.where, TopicTasks)
	}
	return q.explain(err, d)
}

// explain turns a call's failure to reach Pub/Sub into an error that says which Pub/Sub did
// not answer and within what time, wrapping ErrNoAnswer; other errors are returned as they are.
func (q *Queue) explain(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s did not answer within %s", ErrNoAnswer, q.where, d)
	case status.Code(err) == codes.Unavailable:
		return fmt.Errorf("%w: %s is unavailable: %v", ErrNoAnswer, q.where, status.Convert(err).Message())
	case status.Code(err) == codes.NotFound:
		return fmt.Errorf("%w (%s lost it: restarted?): %v", ErrTopicMissing, q.where, err)
	}
	return err
}
