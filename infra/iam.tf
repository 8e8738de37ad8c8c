# A service account per component, each with only the roles it needs. docs/deploy-iam.md
# holds the matrix with the reason for every grant; iam_test.go checks that this file and
# that table say the same. No grant uses for_each over a list of roles, so each line here is
# one row there.

resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "Updraft scheduler (tick)"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "ui" {
  account_id   = "${var.name_prefix}-ui"
  display_name = "Updraft UI and API"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "dispatch" {
  account_id   = "${var.name_prefix}-dispatch"
  display_name = "Updraft Dispatch function"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "advance" {
  account_id   = "${var.name_prefix}-advance"
  display_name = "Updraft Advance function"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "alerts" {
  account_id   = "${var.name_prefix}-alerts"
  display_name = "Updraft Alerts function"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "slack_actions" {
  account_id   = "${var.name_prefix}-slack-actions"
  display_name = "Updraft Slack actions (the public Retry button endpoint)"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "worker" {
  account_id   = "${var.name_prefix}-worker"
  display_name = "Updraft worker jobs"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "scheduler_invoker" {
  account_id   = "${var.name_prefix}-tick-invoker"
  display_name = "Cloud Scheduler's identity calling the tick"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "push_invoker" {
  account_id   = "${var.name_prefix}-push-invoker"
  display_name = "Pub/Sub push subscriptions' identity calling the functions"

  depends_on = [google_project_service.apis]
}

# ---- Custom roles: running and watching the worker jobs without roles/run.developer's
# power to change or delete them. Both are granted on the project: besides the class jobs
# Terraform makes, Dispatch makes a job per resource shape a task asks for
# (resources: {cpu, memory}; runjobs/shape.go) at run time, whose names no job-level grant
# can know; and operations are location-level resources, so run.operations.get applies only
# there. Use a project of Updraft's own (docs/deploy-iam.md).

resource "google_project_iam_custom_role" "worker_launcher" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_worker_launcher"
  title       = "Updraft worker launcher"
  description = "Make a worker job of a task's shape from the small job, start executions with overrides (UPDRAFT_ATTEMPT, timeout) and follow or cancel them."
  permissions = [
    "run.executions.cancel",
    "run.executions.get",
    "run.jobs.create",
    "run.jobs.get",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.operations.get",
  ]

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_custom_role" "worker_watcher" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_worker_watcher"
  title       = "Updraft worker watcher"
  description = "Ask whether a worker job execution still runs, and cancel it (the tick's lost-worker check)."
  permissions = [
    "run.executions.cancel",
    "run.executions.get",
  ]

  depends_on = [google_project_service.apis]
}

locals {
  # Secrets tasks may read are named updraft-* (connections updraft-connections-*, variables
  # updraft-variables-*); IAM conditions keep the components to those. Updraft's own secrets
  # (the Slack signing secret, the CSRF key) are named updraftsys-*, outside that prefix, and
  # granted one by one to the service that needs each (secretscope_test.go checks it).
  secrets_prefix     = "projects/${local.project_number}/secrets/updraft-"
  connections_prefix = "projects/${local.project_number}/secrets/updraft-connections-"
}

# ---- scheduler

resource "google_project_iam_member" "scheduler_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.scheduler.member
}

resource "google_pubsub_topic_iam_member" "scheduler_publish_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.scheduler.member
}

resource "google_pubsub_topic_iam_member" "scheduler_publish_events" {
  topic  = google_pubsub_topic.events.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.scheduler.member
}

resource "google_project_iam_member" "scheduler_secrets" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.scheduler.member
  condition {
    title      = "updraft secrets"
    expression = "resource.name.startsWith(\"${local.secrets_prefix}\")"
  }
}

# The tick drains the dead letters: it fails the tasks whose messages Dispatch could not
# handle (updraft-tasks-dead-fail) and logs the events nothing could (updraft-events-dead-log).
# On those two pull subscriptions only, never on the project: it must not be able to pull
# the push subscriptions' messages away from the functions.
resource "google_pubsub_subscription_iam_member" "scheduler_pull_tasks_dead" {
  subscription = google_pubsub_subscription.tasks_dead.name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.scheduler.member
}

resource "google_pubsub_subscription_iam_member" "scheduler_pull_events_dead" {
  subscription = google_pubsub_subscription.events_dead.name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.scheduler.member
}

resource "google_project_iam_member" "scheduler_watch_workers" {
  project = var.project
  role    = google_project_iam_custom_role.worker_watcher.id
  member  = google_service_account.scheduler.member
}

# ---- ui

resource "google_project_iam_member" "ui_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.ui.member
}

resource "google_pubsub_topic_iam_member" "ui_publish_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.ui.member
}

resource "google_pubsub_topic_iam_member" "ui_publish_events" {
  topic  = google_pubsub_topic.events.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.ui.member
}

resource "google_secret_manager_secret_iam_member" "ui_csrf_secret" {
  secret_id = google_secret_manager_secret.csrf_secret.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.ui.member
}

resource "google_project_iam_member" "ui_logs" {
  project = var.project
  role    = "roles/logging.viewer"
  member  = google_service_account.ui.member
}

# ---- dispatch

resource "google_project_iam_member" "dispatch_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.dispatch.member
}

resource "google_pubsub_topic_iam_member" "dispatch_publish_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.dispatch.member
}

resource "google_pubsub_topic_iam_member" "dispatch_publish_events" {
  topic  = google_pubsub_topic.events.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.dispatch.member
}

resource "google_project_iam_member" "dispatch_secrets" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.dispatch.member
  condition {
    title      = "updraft secrets"
    expression = "resource.name.startsWith(\"${local.secrets_prefix}\")"
  }
}

resource "google_pubsub_topic_iam_member" "dispatch_publish_runner" {
  topic  = google_pubsub_topic.runner.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.dispatch.member
}

resource "google_project_iam_member" "dispatch_launch_workers" {
  project = var.project
  role    = google_project_iam_custom_role.worker_launcher.id
  member  = google_service_account.dispatch.member
}

resource "google_service_account_iam_member" "dispatch_act_as_worker" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.dispatch.member
}

# cloudrun.job pokes (inline, here) copy a finished execution's container output from Cloud
# Logging into the attempt's log (internal/joblogs).
resource "google_project_iam_member" "dispatch_job_logs" {
  project = var.project
  role    = "roles/logging.viewer"
  member  = google_service_account.dispatch.member
}

# ---- advance

resource "google_project_iam_member" "advance_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.advance.member
}

resource "google_pubsub_topic_iam_member" "advance_publish_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.advance.member
}

# ---- alerts

resource "google_project_iam_member" "alerts_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.alerts.member
}

resource "google_project_iam_member" "alerts_connections" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.alerts.member
  condition {
    title      = "updraft connections"
    expression = "resource.name.startsWith(\"${local.connections_prefix}\")"
  }
}

# ---- slack actions

resource "google_project_iam_member" "slack_actions_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.slack_actions.member
}

resource "google_pubsub_topic_iam_member" "slack_actions_publish_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.slack_actions.member
}

resource "google_pubsub_topic_iam_member" "slack_actions_publish_events" {
  topic  = google_pubsub_topic.events.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.slack_actions.member
}

resource "google_secret_manager_secret_iam_member" "slack_actions_signing_secret" {
  secret_id = google_secret_manager_secret.slack_signing_secret.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.slack_actions.member
}

resource "google_secret_manager_secret_iam_member" "slack_actions_bot_token" {
  secret_id = google_secret_manager_secret.slack_bot_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.slack_actions.member
}

# ---- worker

resource "google_project_iam_member" "worker_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.worker.member
}

resource "google_pubsub_topic_iam_member" "worker_publish_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.worker.member
}

resource "google_pubsub_topic_iam_member" "worker_publish_events" {
  topic  = google_pubsub_topic.events.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.worker.member
}

resource "google_project_iam_member" "worker_secrets" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.worker.member
  condition {
    title      = "updraft secrets"
    expression = "resource.name.startsWith(\"${local.secrets_prefix}\")"
  }
}

# A cloudrun.job run inside a worker container waits inline and copies its execution's
# container output from Cloud Logging, as Dispatch's pokes do.
resource "google_project_iam_member" "worker_job_logs" {
  project = var.project
  role    = "roles/logging.viewer"
  member  = google_service_account.worker.member
}

# ---- invokers
#
# The tick invoker (Cloud Scheduler) and the push invoker (Pub/Sub) hold no role: the
# scheduler and the push functions have Cloud Run's invoker check off (run.tf says why) and
# check the invokers' OIDC tokens themselves. The accounts are identities only: the tokens'
# email, which UPDRAFT_OIDC_INVOKERS names. Minting them: Pub/Sub's service agent needs
# roles/iam.serviceAccountTokenCreator on the push invoker (below); Cloud Scheduler's agent
# needs nothing on the tick invoker beyond its own roles/cloudscheduler.serviceAgent
# (https://cloud.google.com/scheduler/docs/http-target-auth), and whoever applies this
# needs iam.serviceAccounts.actAs on it to create the job.

# Slack can't send a Google OIDC token, and Updraft grants nothing to allUsers (organisations
# with domain-restricted sharing, the default since May 2024, refuse it anyway): the Slack
# actions service has Cloud Run's invoker check off (invoker_iam_disabled, run.tf) and its
# handler refuses any request whose Slack signature (signing secret, timestamp) does not
# verify.

# ---- Google's service agents

# Pub/Sub mints the push requests' OIDC tokens as the push invoker
# (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions).
resource "google_service_account_iam_member" "pubsub_agent_push_tokens" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

# Dead-lettering: Pub/Sub forwards from the source subscription to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "pubsub_agent_tasks_dead" {
  topic  = google_pubsub_topic.tasks_dead.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_events_dead" {
  topic  = google_pubsub_topic.events_dead.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_dispatch" {
  subscription = google_pubsub_subscription.dispatch.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_runner" {
  subscription = google_pubsub_subscription.runner.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_advance" {
  subscription = google_pubsub_subscription.advance.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_alerts" {
  subscription = google_pubsub_subscription.alerts.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

# IAP, once a user passes it, calls the UI with its own identity.
resource "google_cloud_run_v2_service_iam_member" "iap_agent_ui" {
  name     = google_cloud_run_v2_service.ui.name
  location = var.region
  role     = "roles/run.invoker"
  member   = local.iap_agent

  depends_on = [google_project_service.apis]
}

# Who may pass IAP to the UI.
resource "google_iap_web_cloud_run_service_iam_member" "ui_users" {
  for_each               = toset(var.iap_members)
  project                = var.project
  location               = var.region
  cloud_run_service_name = google_cloud_run_v2_service.ui.name
  role                   = "roles/iap.httpsResourceAccessor"
  member                 = each.value
}
