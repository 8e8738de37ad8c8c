// Package sdk is a fake cloud SDK.
package sdk

// Client is a fake client.
func Client() {}
