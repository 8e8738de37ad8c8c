// Package smemu is a local stand-in for Google Cloud Secret Manager, which has no emulator
// from Google. It is a small gRPC server implementing the v1 SecretManagerService methods
// Updraft uses (secrets, versions, access, enable/disable/destroy), so the official
// cloud.google.com/go/secretmanager/apiv1 client talks to it unchanged when pointed at it with
// option.WithEndpoint, option.WithoutAuthentication and insecure transport credentials.
//
// It follows Google's documented behaviour where Updraft can observe it: resource names
// projects/P/secrets/S and projects/P/secrets/S/versions/N with N counting from 1; the alias
// latest naming the most recently created version whatever its state; FAILED_PRECONDITION
// when accessing a disabled or destroyed version; NOT_FOUND, ALREADY_EXISTS and
// INVALID_ARGUMENT where Google returns them; CRC32C (Castagnoli) checksums on payloads.
// Projects are isolated and any project id is accepted. It does not enforce IAM, expiration,
// rotation, delayed destruction, filters or regional secrets (projects/P/locations/L/...), and
// resource names keep the project id the caller used where Google would put the project number.
//
// State is kept in memory and, when Start is given a data file, rewritten atomically to that
// file after every change. The file holds secret values in clear: it is created with mode
// 0600 and belongs in a private directory.
//
// Clients find it through the variable named by EnvVar. It stands for Google's service, not
// for Updraft's view of it. Its import rules are rows of the table in internal/layers (rules.go).
package smemu
