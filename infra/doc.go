// Package infra holds Updraft's Terraform (the *.tf files in this folder) and, in its tests,
// the offline checks that keep it in step with the code: every Firestore query has its
// composite index (and no index is left that nothing needs), every env var a component reads
// is set on its Cloud Run resource, every service account holds exactly the roles
// docs/deploy-iam.md documents, nothing is public but the Slack actions endpoint (Cloud
// Run's invoker check is off only on internal-only services that check OIDC tokens
// themselves, for the audience and invoker their callers send), the topics and
// subscriptions are psqueue's, and every collection written with expire_at has its TTL
// policy. `terraform validate` needs the Google provider and runs on the user's
// machine, not here (README.md).
//
// The package has no code of its own: nothing imports it.
package infra
