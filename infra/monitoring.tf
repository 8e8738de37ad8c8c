# Log retention, log-based metrics (named after Airflow's) and alert policies.
#
# The metrics read structured log lines (JSON on stdout, see README.md "Log contract"):
# jsonPayload.event names what happened, with the fields below. The tick's failures come
# from Cloud Scheduler's own logs, the dead-letter backlog from Pub/Sub's metrics.

resource "google_logging_project_bucket_config" "default" {
  project        = var.project
  location       = "global"
  bucket_id      = "_Default"
  retention_days = var.log_retention_days

  depends_on = [google_project_service.apis]
}

locals {
  updraft_logs = "resource.type=(\"cloud_run_revision\" OR \"cloud_run_job\") AND jsonPayload.event"
}

# ti.finish / ti.failures: one line per finished attempt, with dag_id, task_id, state and
# duration_ms.
resource "google_logging_metric" "task_failures" {
  name   = "updraft/task_failures"
  filter = "${local.updraft_logs}=\"task_finished\" AND jsonPayload.state=\"failed\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key = "dag_id"
    }
    labels {
      key = "task_id"
    }
  }
  label_extractors = {
    dag_id  = "EXTRACT(jsonPayload.dag_id)"
    task_id = "EXTRACT(jsonPayload.task_id)"
  }

  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "task_successes" {
  name   = "updraft/task_successes"
  filter = "${local.updraft_logs}=\"task_finished\" AND jsonPayload.state=\"success\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key = "dag_id"
    }
  }
  label_extractors = {
    dag_id = "EXTRACT(jsonPayload.dag_id)"
  }

  depends_on = [google_project_service.apis]
}

# dag.<dag_id>.<task_id>.duration
resource "google_logging_metric" "task_duration" {
  name            = "updraft/task_duration"
  filter          = "${local.updraft_logs}=\"task_finished\""
  value_extractor = "EXTRACT(jsonPayload.duration_ms)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key = "dag_id"
    }
    labels {
      key = "state"
    }
  }
  label_extractors = {
    dag_id = "EXTRACT(jsonPayload.dag_id)"
    state  = "EXTRACT(jsonPayload.state)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 10
    }
  }

  depends_on = [google_project_service.apis]
}

# dagrun.schedule_delay: a scheduled run's start minus its schedule's due time.
resource "google_logging_metric" "schedule_delay" {
  name            = "updraft/schedule_delay"
  filter          = "${local.updraft_logs}=\"dagrun_started\" AND jsonPayload.schedule_delay_ms:*"
  value_extractor = "EXTRACT(jsonPayload.schedule_delay_ms)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key = "dag_id"
    }
  }
  label_extractors = {
    dag_id = "EXTRACT(jsonPayload.dag_id)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 1.6
      scale              = 100
    }
  }

  depends_on = [google_project_service.apis]
}

# Attempts failed as lost workers by the tick (lease expired, execution gone).
resource "google_logging_metric" "lost_workers" {
  name   = "updraft/lost_workers"
  filter = "${local.updraft_logs}=\"lost_worker\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.apis]
}

# Messages handled from a dead-letter subscription.
resource "google_logging_metric" "dead_lettered" {
  name   = "updraft/dead_lettered"
  filter = "${local.updraft_logs}=\"dead_lettered\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.apis]
}

# Ticks Cloud Scheduler could not complete (the scheduler answered an error, or not in time).
resource "google_logging_metric" "tick_failures" {
  name   = "updraft/tick_failures"
  filter = "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=\"${google_cloud_scheduler_job.tick.name}\" AND severity>=ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_monitoring_notification_channel" "email" {
  count        = var.alert_email != "" ? 1 : 0
  display_name = "Updraft alerts (${var.alert_email})"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.apis]
}

# An alert policy on a log-based metric created in the same apply fails with 404 ("Cannot
# find metric(s) ... could take up to 10 minutes"): the metric's descriptor appears a while
# after the metric. The policies wait here; the wait runs again whenever the set of metrics
# changes (triggers). If a slow project still answers 404, apply again: it is idempotent.
resource "time_sleep" "log_metrics" {
  create_duration = "180s"
  triggers = {
    metrics = join(",", [
      google_logging_metric.task_failures.id,
      google_logging_metric.task_successes.id,
      google_logging_metric.task_duration.id,
      google_logging_metric.schedule_delay.id,
      google_logging_metric.lost_workers.id,
      google_logging_metric.dead_lettered.id,
      google_logging_metric.tick_failures.id,
    ])
  }
}

locals {
  notification_channels = concat(var.notification_channels, google_monitoring_notification_channel.email[*].id)
}

resource "google_monitoring_alert_policy" "tick_failing" {
  display_name          = "Updraft: the tick is failing"
  combiner              = "OR"
  notification_channels = local.notification_channels
  documentation {
    content = "Cloud Scheduler's calls to the scheduler's /tick failed 3 times in 5 minutes: nothing new is scheduled, retried or recovered. Check the ${local.service_names.scheduler} service's logs."
  }
  conditions {
    display_name = "tick failures > 2 in 5 minutes"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.tick_failures.name}\" AND resource.type=\"cloud_scheduler_job\""
      comparison      = "COMPARISON_GT"
      threshold_value = 2
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }
  depends_on = [time_sleep.log_metrics]
}

resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  display_name          = "Updraft: dead-lettered messages"
  combiner              = "OR"
  notification_channels = local.notification_channels
  documentation {
    content = "Messages Dispatch, Advance or Alerts failed to handle ${local.max_delivery_attempts} times wait in ${google_pubsub_subscription.tasks_dead.name} or ${google_pubsub_subscription.events_dead.name}. Read them, fix the cause, and let the tick recover the runs."
  }
  conditions {
    display_name = "dead-letter subscriptions have undelivered messages"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND (resource.labels.subscription_id=\"${google_pubsub_subscription.tasks_dead.name}\" OR resource.labels.subscription_id=\"${google_pubsub_subscription.events_dead.name}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }
}

resource "google_monitoring_alert_policy" "schedule_delay" {
  display_name          = "Updraft: runs start late"
  combiner              = "OR"
  notification_channels = local.notification_channels
  documentation {
    content = "The 95th percentile of dagrun.schedule_delay over 10 minutes is above ${var.schedule_delay_threshold_seconds}s: the tick is slow, failing, or behind."
  }
  conditions {
    display_name = "schedule delay p95 > ${var.schedule_delay_threshold_seconds}s"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.schedule_delay.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.schedule_delay_threshold_seconds * 1000
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }
      trigger {
        count = 1
      }
    }
  }
  depends_on = [time_sleep.log_metrics]
}
