# The Cloud Run services and the worker jobs. Each sets exactly the environment its code
# reads (env_test.go derives that list from the code); optional settings with defaults
# (UPDRAFT_LEASE and friends) are left out unless you set them here.
#
# Auth (docs/auth.md, docs/deploy-iam.md):
#
#   - The scheduler and the Dispatch, Advance and Alerts functions check the caller's Google
#     OIDC token themselves (auth.InvokersFromEnv): Google's signature, the audience
#     (UPDRAFT_OIDC_AUDIENCE, the service's deterministic URL, which the Cloud Scheduler job
#     and the push subscriptions ask for) and the email (UPDRAFT_OIDC_INVOKERS, the invoker
#     service account). Cloud Run's own invoker check is off on them (invoker_iam_disabled,
#     a field of the service, not of its template): when Cloud Run checks roles/run.invoker
#     itself it hands the token on with its signature replaced by SIGNATURE_REMOVED_BY_GOOGLE,
#     which idtoken can't verify, so every request would be refused 401. In its place their
#     ingress is INGRESS_TRAFFIC_INTERNAL_ONLY: Cloud Run's ingress docs
#     (https://cloud.google.com/run/docs/securing/ingress#settings, "Internal") count
#     requests from Cloud Scheduler and Pub/Sub as internal when they are in the same project
#     as the service and call its default run.app URL, which ours do. Two layers, then: the
#     network (nothing from the internet reaches them) and the token (nothing but the
#     invoker's signed token for this audience gets past the handler). iam_test.go's
#     checkPublic allows invoker_iam_disabled only on such a service.
#   - The UI is behind IAP (iap_enabled) and trusts IAP's signed header
#     (UPDRAFT_IAP_AUDIENCE); Cloud Run's invoker check stays on, with IAP's agent the invoker.
#   - The Slack actions function can't get a Google token from Slack: Cloud Run's invoker
#     check is off on it too (no allUsers grant: organisations with domain-restricted sharing
#     refuse one), and its handler verifies Slack's signature (signing secret, timestamp) on
#     every request. iam_test.go's checkPublic allows this on that one service.
#
# UPDRAFT_AUTH is left unset: auth on.

locals {
  ui_url = var.ui_url != "" ? var.ui_url : local.run_url.ui
  # The runner runs one attempt per vCPU (its concurrency), so an attempt gets 1 vCPU and an
  # even share of the memory: the shape Dispatch sends there (runjobs.RunnerConfig.Fits).
  runner_concurrency = var.runner.cpu
  runner_shape       = "cpu=1,memory=${floor(var.runner.memory_mib / var.runner.cpu)}Mi"
}

resource "google_cloud_run_v2_service" "scheduler" {
  name                = local.service_names.scheduler
  location            = var.region
  deletion_protection = var.deletion_protection
  # Internal traffic only, and the app checks the OIDC token (above).
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
  template {
    service_account = google_service_account.scheduler.email
    timeout         = "120s"
    scaling {
      min_instance_count = 0
      max_instance_count = 2
    }
    containers {
      image = local.images.scheduler
      resources {
        limits = { cpu = "1", memory = "512Mi" }
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_OIDC_AUDIENCE"
        value = local.run_url.scheduler
      }
      env {
        name  = "UPDRAFT_OIDC_INVOKERS"
        value = google_service_account.scheduler_invoker.email
      }
      env {
        name  = "UPDRAFT_UI_URL"
        value = local.ui_url
      }
      env {
        name  = "UPDRAFT_ALERT_DIGEST_CHANNEL"
        value = var.alert_digest_channel
      }
      # The lost-worker check asks Cloud Run about the worker jobs' executions.
      env {
        name  = "UPDRAFT_REGION"
        value = var.region
      }
      env {
        name  = "UPDRAFT_WORKER_JOB_PREFIX"
        value = "${var.name_prefix}-worker"
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "ui" {
  name                = local.service_names.ui
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  iap_enabled         = true
  template {
    service_account = google_service_account.ui.email
    timeout         = "60s"
    scaling {
      min_instance_count = 0
      max_instance_count = 4
    }
    containers {
      image = local.images.ui
      resources {
        limits = { cpu = "1", memory = "512Mi" }
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_IAP_AUDIENCE"
        value = "/projects/${local.project_number}/locations/${var.region}/services/${local.service_names.ui}"
      }
      # The CLI's Google ID tokens (updraft --api).
      env {
        name  = "UPDRAFT_ID_TOKEN_AUDIENCE"
        value = local.run_url.ui
      }
      # Attempts older than this show "log expired".
      env {
        name  = "UPDRAFT_LOG_RETENTION"
        value = "${var.log_retention_days * 24}h"
      }
      # Read by the cloudrun.job task type, whose argument check a DAG deploy runs here.
      env {
        name  = "UPDRAFT_REGION"
        value = var.region
      }
      env {
        name  = "UPDRAFT_BUNDLE_BUCKET"
        value = google_storage_bucket.bundles.name
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "dispatch" {
  name                = local.service_names.dispatch
  location            = var.region
  deletion_protection = var.deletion_protection
  # Internal traffic only, and the app checks the OIDC token (above).
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
  template {
    service_account = google_service_account.dispatch.email
    # Inline task types run within the push request: up to the subscription's ack deadline.
    timeout = "600s"
    scaling {
      min_instance_count = 0
      max_instance_count = 20
    }
    containers {
      image = local.images.functions
      resources {
        limits = { cpu = "1", memory = "512Mi" }
      }
      env {
        name  = "FUNCTION_TARGET"
        value = "Dispatch"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_OIDC_AUDIENCE"
        value = local.run_url.dispatch
      }
      env {
        name  = "UPDRAFT_OIDC_INVOKERS"
        value = google_service_account.push_invoker.email
      }
      env {
        name  = "UPDRAFT_REGION"
        value = var.region
      }
      env {
        name  = "UPDRAFT_WORKER_JOB_PREFIX"
        value = "${var.name_prefix}-worker"
      }
      # The warm runner (below): what fits one attempt's share of an instance goes there.
      env {
        name  = "UPDRAFT_RUNNER_TOPIC"
        value = var.runner.enabled ? google_pubsub_topic.runner.name : ""
      }
      env {
        name  = "UPDRAFT_RUNNER_SHAPE"
        value = local.runner_shape
      }
      env {
        name  = "UPDRAFT_BUNDLE_BUCKET"
        value = google_storage_bucket.bundles.name
      }
      # .ti.log_url in templates of inline tasks.
      env {
        name  = "UPDRAFT_UI_URL"
        value = local.ui_url
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "advance" {
  name                = local.service_names.advance
  location            = var.region
  deletion_protection = var.deletion_protection
  # Internal traffic only, and the app checks the OIDC token (above).
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
  template {
    service_account = google_service_account.advance.email
    timeout         = "120s"
    scaling {
      min_instance_count = 0
      max_instance_count = 20
    }
    containers {
      image = local.images.functions
      resources {
        limits = { cpu = "1", memory = "512Mi" }
      }
      env {
        name  = "FUNCTION_TARGET"
        value = "Advance"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_OIDC_AUDIENCE"
        value = local.run_url.advance
      }
      env {
        name  = "UPDRAFT_OIDC_INVOKERS"
        value = google_service_account.push_invoker.email
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "alerts" {
  name                = local.service_names.alerts
  location            = var.region
  deletion_protection = var.deletion_protection
  # Internal traffic only, and the app checks the OIDC token (above).
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
  template {
    service_account = google_service_account.alerts.email
    timeout         = "120s"
    scaling {
      min_instance_count = 0
      max_instance_count = 5
    }
    containers {
      image = local.images.functions
      resources {
        limits = { cpu = "1", memory = "512Mi" }
      }
      env {
        name  = "FUNCTION_TARGET"
        value = "Alerts"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_OIDC_AUDIENCE"
        value = local.run_url.alerts
      }
      env {
        name  = "UPDRAFT_OIDC_INVOKERS"
        value = google_service_account.push_invoker.email
      }
      env {
        name  = "UPDRAFT_UI_URL"
        value = local.ui_url
      }
      env {
        name  = "UPDRAFT_ALERT_DIGEST_CHANNEL"
        value = var.alert_digest_channel
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "slack_actions" {
  name                = local.service_names.slack_actions
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  # Slack calls it from the internet without a Google token; the handler checks Slack's
  # signature instead (above).
  invoker_iam_disabled = true
  template {
    service_account = google_service_account.slack_actions.email
    timeout         = "60s"
    scaling {
      min_instance_count = 0
      max_instance_count = 2
    }
    containers {
      image = local.images.functions
      resources {
        limits = { cpu = "1", memory = "512Mi" }
        # The handler answers Slack at once and clears the task after the response
        # (functions.SlackActions): CPU outside requests.
        cpu_idle = false
      }
      env {
        name  = "FUNCTION_TARGET"
        value = "SlackActions"
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
    }
  }
  depends_on = [google_project_service.apis]
}

# One worker job per resource class. max_retries = 0: Updraft owns retries (a retried
# execution would run an attempt the engine already counted). Dispatch starts executions
# with UPDRAFT_ATTEMPT and the task's timeout as overrides.
resource "google_cloud_run_v2_job" "worker" {
  for_each            = var.worker_classes
  name                = "${var.name_prefix}-worker-${each.key}"
  location            = var.region
  deletion_protection = var.deletion_protection
  template {
    task_count  = 1
    parallelism = 1
    template {
      service_account = google_service_account.worker.email
      max_retries     = 0
      timeout         = each.value.timeout
      containers {
        image = local.images.worker
        resources {
          limits = { cpu = each.value.cpu, memory = each.value.memory }
        }
        env {
          name  = "GOOGLE_CLOUD_PROJECT"
          value = var.project
        }
        env {
          name  = "UPDRAFT_REGION"
          value = var.region
        }
        env {
          name  = "UPDRAFT_BUNDLE_BUCKET"
          value = google_storage_bucket.bundles.name
        }
        # .ti.log_url in templates.
        env {
          name  = "UPDRAFT_UI_URL"
          value = local.ui_url
        }
      }
    }
  }
  depends_on = [google_project_service.apis]
}

# The warm runner: the worker image as a service (`updraft-worker runner`), fed by the push
# subscription updraft-runner-push (pubsub.tf). Each request runs one attempt to its end with
# the worker code, so:
#   - the request timeout is Cloud Run's maximum, a backstop only: Dispatch sends only tasks
#     whose own timeout is at most 9 minutes (the push request's 600 s ack deadline bounds
#     the request from Pub/Sub's side), and the worker enforces that timeout itself;
#   - CPU only during requests (cpu_idle): between attempts an instance costs nothing, and
#     it scales to zero;
#   - one attempt per vCPU (max_instance_request_concurrency = runner_concurrency, the same
#     UPDRAFT_RUNNER_CONCURRENCY the runner bounds itself with).
# It runs as the worker jobs' service account: the same code with the same environment
# needs the same grants (iam.tf), and your grants to the worker reach both. Like the
# functions it checks the push invoker's OIDC token itself, behind internal-only ingress.
resource "google_cloud_run_v2_service" "runner" {
  name                = local.service_names.runner
  location            = var.region
  deletion_protection = var.deletion_protection
  # Internal traffic only, and the app checks the OIDC token (above).
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
  template {
    service_account                  = google_service_account.worker.email
    timeout                          = "3600s"
    max_instance_request_concurrency = local.runner_concurrency
    scaling {
      min_instance_count = 0
      max_instance_count = var.runner.max_instances
    }
    containers {
      image = local.images.worker
      args  = ["runner"]
      resources {
        limits            = { cpu = tostring(var.runner.cpu), memory = "${var.runner.memory_mib}Mi" }
        cpu_idle          = true
        startup_cpu_boost = true
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_REGION"
        value = var.region
      }
      env {
        name  = "UPDRAFT_BUNDLE_BUCKET"
        value = google_storage_bucket.bundles.name
      }
      # .ti.log_url in templates.
      env {
        name  = "UPDRAFT_UI_URL"
        value = local.ui_url
      }
      env {
        name  = "UPDRAFT_OIDC_AUDIENCE"
        value = local.run_url.runner
      }
      env {
        name  = "UPDRAFT_OIDC_INVOKERS"
        value = google_service_account.push_invoker.email
      }
      env {
        name  = "UPDRAFT_RUNNER_CONCURRENCY"
        value = tostring(local.runner_concurrency)
      }
    }
  }
  depends_on = [google_project_service.apis]
}
