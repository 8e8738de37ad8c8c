// Package bundle turns a DAG folder into a bundle and back: a deterministic archive of every
// file under the folder (minus .updraftignore's patterns and the default ignores), named by
// the SHA-256 of its contents, and a cache that fetches a bundle by hash, verifies it and
// unpacks it once.
//
// A DAG version pins its bundle with a Ref: a hash (a stored bundle) or a local directory
// (`updraft test` and `updraft dev` run the folder itself, so an edit shows at the next try).
//
// It does file I/O; the store is a two-method interface that the gcsbundles package implements
// against Cloud Storage. Its import rules are rows of the table in internal/layers (rules.go).
package bundle
