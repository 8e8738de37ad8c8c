# The Slack app's credentials, and the key of the UI's CSRF tokens. Terraform creates the secrets, never their values: add them
# with `gcloud secrets versions add` (docs/slack-app.md). The names are the code's
# (slackactions.SigningSecretName; the bot token is the connection "slack"). Updraft's own
# secrets are named updraftsys-*, outside the updraft-* prefix the task accounts may read
# (docs/security.md); a deployment made before the rename adds their values again under the
# new names.

resource "google_secret_manager_secret" "slack_signing_secret" {
  secret_id = "updraftsys-slack-signing-secret"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret" "slack_bot_token" {
  secret_id = "updraft-connections-slack"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

# The UI's CSRF key, shared by all its instances (cmd/updraft-ui reads the secret
# updraftsys-csrf-secret when UPDRAFT_CSRF_SECRET is unset): add a random value once, e.g.
# `openssl rand -base64 32 | gcloud secrets versions add updraftsys-csrf-secret --data-file=-`.
resource "google_secret_manager_secret" "csrf_secret" {
  secret_id = "updraftsys-csrf-secret"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}
