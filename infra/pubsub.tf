# Topics and subscriptions, named as in psqueue/queue.go (pubsub_test.go checks the names,
# which subscription reads which topic, the dead-letter topics and the delivery attempts).
# Push subscriptions are Terraform's, not Eventarc's, so they carry our retry policy and
# dead-letter settings; each pushes with an OIDC token of the push invoker, for the audience
# the function checks (its UPDRAFT_OIDC_AUDIENCE; oidc_test.go checks they are the same).

locals {
  max_delivery_attempts = 5 # psqueue.MaxDeliveryAttempts
}

resource "google_pubsub_topic" "tasks" {
  name       = "updraft-tasks"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "events" {
  name       = "updraft-events"
  depends_on = [google_project_service.apis]
}

# Attempts Dispatch sends to the warm runner (runjobs.RunnerTopic).
resource "google_pubsub_topic" "runner" {
  name       = "updraft-runner"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "tasks_dead" {
  name       = "updraft-tasks-dead"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "events_dead" {
  name       = "updraft-events-dead"
  depends_on = [google_project_service.apis]
}

# Ready attempts → Dispatch. Inline task types run within the push request, so the ack
# deadline is Pub/Sub's maximum; longer work is submitted and polled in reschedule mode.
resource "google_pubsub_subscription" "dispatch" {
  name                       = "updraft-tasks-dispatch"
  topic                      = google_pubsub_topic.tasks.id
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
  push_config {
    push_endpoint = google_cloud_run_v2_service.dispatch.uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.run_url.dispatch
    }
  }
  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "300s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.tasks_dead.id
    max_delivery_attempts = local.max_delivery_attempts
  }
  depends_on = [google_service_account_iam_member.pubsub_agent_push_tokens]
}

# Attempts → the warm runner, which runs each inside the push request: the ack deadline is
# Pub/Sub's maximum (600 s; the runner takes tasks whose timeout is at most 9 minutes).
# A message the runner fails on five times dead-letters with Dispatch's, and the tick fails
# its task with the reason. A redelivery of an attempt already claimed runs nothing.
resource "google_pubsub_subscription" "runner" {
  name                       = "updraft-runner-push"
  topic                      = google_pubsub_topic.runner.id
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
  push_config {
    push_endpoint = google_cloud_run_v2_service.runner.uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.run_url.runner
    }
  }
  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "300s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.tasks_dead.id
    max_delivery_attempts = local.max_delivery_attempts
  }
  depends_on = [google_service_account_iam_member.pubsub_agent_push_tokens]
}

# Task events → Advance (ready downstream tasks, run completion).
resource "google_pubsub_subscription" "advance" {
  name                       = "updraft-events-advance"
  topic                      = google_pubsub_topic.events.id
  ack_deadline_seconds       = 120
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
  push_config {
    push_endpoint = google_cloud_run_v2_service.advance.uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.run_url.advance
    }
  }
  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "300s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.events_dead.id
    max_delivery_attempts = local.max_delivery_attempts
  }
  depends_on = [google_service_account_iam_member.pubsub_agent_push_tokens]
}

# The same task events → Alerts, on their own subscription so Slack never delays a task.
# Slack's rate limits call for patience: a longer backoff.
resource "google_pubsub_subscription" "alerts" {
  name                       = "updraft-events-alerts"
  topic                      = google_pubsub_topic.events.id
  ack_deadline_seconds       = 120
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
  push_config {
    push_endpoint = google_cloud_run_v2_service.alerts.uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.run_url.alerts
    }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.events_dead.id
    max_delivery_attempts = local.max_delivery_attempts
  }
  depends_on = [google_service_account_iam_member.pubsub_agent_push_tokens]
}

# Dead letters, kept for a week (pull subscriptions): the tick drains both (the scheduler's
# subscriber grants in iam.tf), and a backlog here raises the dead-letter alert
# (monitoring.tf).
resource "google_pubsub_subscription" "tasks_dead" {
  name                       = "updraft-tasks-dead-fail"
  topic                      = google_pubsub_topic.tasks_dead.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "events_dead" {
  name                       = "updraft-events-dead-log"
  topic                      = google_pubsub_topic.events_dead.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}
