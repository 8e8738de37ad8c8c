// Package auth establishes who is calling an Updraft service and refuses everyone else.
// Each mode is an HTTP middleware (a Guard) that verifies the caller, then puts an Identity
// in the request's context for the handler (FromContext). Whether that identity may do what
// it asks is package access's business, not this one's.
//
// The three modes:
//
//   - Invokers, for the internal services (the scheduler's /tick, the functions' Pub/Sub
//     push endpoints): a Google-signed OIDC ID token in "Authorization: Bearer", RS256, for
//     the service's audience, issued by accounts.google.com, with a verified email that is
//     one of the configured invoker service accounts (Cloud Scheduler's, Pub/Sub push's).
//     A missing or invalid token is 401; a valid token from anyone else is 403.
//   - UIAuth, for the UI service and its REST API: IAP's signed header
//     x-goog-iap-jwt-assertion (ES256, issuer https://cloud.google.com/iap, audience
//     /projects/NUMBER/locations/REGION/services/NAME for IAP on Cloud Run, or
//     /projects/NUMBER/global/backendServices/ID behind a load balancer); without that
//     header, a Google ID token in "Authorization: Bearer" for a configured audience with
//     any verified email (the CLI's way in). IAP alone is the type IAP.
//   - Dev, local only: every request is the dev identity (UPDRAFT_DEV_USER, default
//     dev@localhost), or the email in the X-Updraft-Dev-User header. It logs a WARN when
//     it is made and on the first request; InvokersFromEnv and UIFromEnv refuse it where
//     Cloud Run runs the code (K_SERVICE or CLOUD_RUN_JOB set).
//
// Configuration is read once, at start, by InvokersFromEnv and UIFromEnv from:
//
//	UPDRAFT_AUTH               "off" for Dev; empty or "on" otherwise
//	UPDRAFT_OIDC_AUDIENCE      Invokers: the audience the invokers' tokens carry (the service URL)
//	UPDRAFT_OIDC_INVOKERS      Invokers: allowed service-account emails, comma-separated
//	UPDRAFT_IAP_AUDIENCE       UIAuth: IAP's audience (see above)
//	UPDRAFT_ID_TOKEN_AUDIENCE  UIAuth: accepted bearer-token audiences, comma-separated
//	UPDRAFT_DEV_USER           Dev: the dev identity's email
//
// Tokens are verified with google.golang.org/api/idtoken against Google's published key
// sets; every constructor takes option.ClientOption so tests serve those key sets locally
// (package auth/authtest). A token whose signature Cloud Run's own IAM invoker check has
// stripped cannot be verified and is refused with a reason that says so. docs/auth.md says
// what a deployment must set.
//
// It knows requests and tokens, not DAGs or roles. Its import rules are rows of the table in
// internal/layers (rules.go).
package auth
