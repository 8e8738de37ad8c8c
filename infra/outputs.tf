output "scheduler_url" {
  description = "The scheduler (tick) service's URL: internal ingress, and only the tick invoker's OIDC token passes."
  value       = google_cloud_run_v2_service.scheduler.uri
}

output "ui_url" {
  description = "The UI and API (/api/v1), behind IAP."
  value       = google_cloud_run_v2_service.ui.uri
}

output "dispatch_url" {
  description = "The Dispatch function (push endpoint of updraft-tasks-dispatch)."
  value       = google_cloud_run_v2_service.dispatch.uri
}

output "advance_url" {
  description = "The Advance function (push endpoint of updraft-events-advance)."
  value       = google_cloud_run_v2_service.advance.uri
}

output "alerts_url" {
  description = "The Alerts function (push endpoint of updraft-events-alerts)."
  value       = google_cloud_run_v2_service.alerts.uri
}

output "slack_actions_url" {
  description = "The Slack app's Interactivity Request URL (docs/slack-app.md)."
  value       = google_cloud_run_v2_service.slack_actions.uri
}

output "registry" {
  description = "Where `make deploy` pushes the images: REGISTRY/updraft-scheduler:TAG and so on."
  value       = local.image_base
}

output "worker_jobs" {
  description = "The worker Cloud Run jobs by resource class."
  value       = { for k, j in google_cloud_run_v2_job.worker : k => j.name }
}

output "service_accounts" {
  description = "The components' service accounts (grant the worker and dispatch ones access to your own resources: BigQuery datasets, topics, jobs)."
  value = {
    scheduler     = google_service_account.scheduler.email
    ui            = google_service_account.ui.email
    dispatch      = google_service_account.dispatch.email
    advance       = google_service_account.advance.email
    alerts        = google_service_account.alerts.email
    slack_actions = google_service_account.slack_actions.email
    worker        = google_service_account.worker.email
  }
}

output "slack_signing_secret" {
  description = "The secret to add the Slack app's signing secret to (gcloud secrets versions add)."
  value       = google_secret_manager_secret.slack_signing_secret.secret_id
}

output "slack_bot_token_secret" {
  description = "The secret to add the bot token connection to ({\"conn_type\": \"slack\", \"password\": \"xoxb-…\"})."
  value       = google_secret_manager_secret.slack_bot_token.secret_id
}

output "csrf_secret" {
  description = "The secret to add a random key to, shared by the UI's instances."
  value       = google_secret_manager_secret.csrf_secret.secret_id
}
