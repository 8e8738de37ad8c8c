package engine

import "context"

// RecordOnly does only Finish's first step (the attempt's result), as a worker that dies
// right after it would.
func (e *Engine) RecordOnly(ctx context.Context, c *Claim, res Result) error {
	return c.record(ctx, res)
}
