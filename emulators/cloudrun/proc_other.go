//go:build !linux

package runemu

// waitExited can't wait without reaping here: the waiter reaps at once, leaving a moment in
// which a signal to the group could reach a recycled process group id.
func waitExited(int) {}
