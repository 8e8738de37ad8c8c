package scheduler

import "time"

// RetryPolicy is a task's retry settings.
type RetryPolicy struct {
	Retries       int
	Delay         time.Duration
	Exponential   bool
	MaxRetryDelay time.Duration // 0: no cap
}

// ShouldRetry reports whether a task whose try number failedTry failed gets another try.
// Try numbers start at 1; a task with Retries r has at most r+1 tries.
func (p RetryPolicy) ShouldRetry(failedTry int) bool { return failedTry <= p.Retries }

// DelayAfter is the wait before the try that follows failed try n (n ≥ 1):
// min(Delay × 2^(n−1), MaxRetryDelay) with exponential backoff, else Delay.
func (p RetryPolicy) DelayAfter(n int) time.Duration {
	d := p.Delay
	if p.Exponential && n > 1 {
		for i := 1; i < n; i++ {
			if p.MaxRetryDelay > 0 && d >= p.MaxRetryDelay {
				break
			}
			if d > time.Duration(1<<62)/2 {
				break
			}
			d *= 2
		}
	}
	if p.MaxRetryDelay > 0 && d > p.MaxRetryDelay {
		d = p.MaxRetryDelay
	}
	return d
}
