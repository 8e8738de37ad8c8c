package engine

import "context"

// RecordOnly does only Finish's first step (the attempt's result), as a worker that dies
// right after it would.
func (e *Engine) RecordOnly(ctx context.Context, c *Claim, res Result) error {
	return c.record(ctx, res)
}

// SettleRun settles a run's state from its instances (maybeFinishRun) and nothing else, as
// the end of any cascade does.
func (e *Engine) SettleRun(ctx context.Context, dagID, runID string) error {
	rc, err := e.loadRun(ctx, dagID, runID)
	if err != nil {
		return err
	}
	return e.maybeFinishRun(ctx, rc)
}
