# Cloud Scheduler POSTs the tick every minute with an OIDC token of the tick invoker, for the
# audience the scheduler checks (its UPDRAFT_OIDC_AUDIENCE). The scheduler's ingress is
# internal: Cloud Scheduler in the same project, calling the run.app URL, is internal traffic.
# A failed tick is not retried: the next minute's tick does its work.
resource "google_cloud_scheduler_job" "tick" {
  name             = "${var.name_prefix}-tick"
  region           = var.region
  description      = "Updraft's tick: due schedules, retries, lost workers, SLA misses, the alerts' digest."
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"
  retry_config {
    retry_count = 0
  }
  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.scheduler.uri}/tick"
    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = local.run_url.scheduler
    }
  }
}
