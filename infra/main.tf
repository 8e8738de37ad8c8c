# Updraft on Google Cloud: everything a deployment needs, one file per concern (README.md
# lists them). The Go tests in this folder (README.md) check, offline, what can drift
# from the code: Firestore indexes, env vars, roles, topic names, the TTL policy.

terraform {
  required_version = ">= 1.5"
  required_providers {
    # 7.21: iap_enabled on google_cloud_run_v2_service is GA from there (Beta before).
    # deploy_test.go checks this floor against the attributes used.
    google = {
      source  = "hashicorp/google"
      version = ">= 7.21"
    }
    # time_sleep: the alert policies wait for their new log-based metrics (monitoring.tf).
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project
}

locals {
  project_number = data.google_project.this.number

  # Google-managed service agents that act on Updraft's behalf.
  pubsub_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  iap_agent    = "serviceAccount:service-${local.project_number}@gcp-sa-iap.iam.gserviceaccount.com"

  # Cloud Run services' deterministic URLs (https://NAME-PROJECT_NUMBER.REGION.run.app): the
  # OIDC audience the services check and the invokers ask for, known before the services
  # exist, so no service depends on its own URL.
  run_url = {
    for k, name in local.service_names : k => "https://${name}-${local.project_number}.${var.region}.run.app"
  }

  service_names = {
    scheduler     = "${var.name_prefix}-scheduler"
    ui            = "${var.name_prefix}-ui"
    dispatch      = "${var.name_prefix}-dispatch"
    advance       = "${var.name_prefix}-advance"
    alerts        = "${var.name_prefix}-alerts"
    slack_actions = "${var.name_prefix}-slack-actions"
    runner        = "${var.name_prefix}-runner"
  }

  # Container images, built and pushed by `make deploy` into the Artifact Registry
  # repository below.
  image_base = "${var.region}-docker.pkg.dev/${var.project}/${var.artifact_repository}"
  images = {
    scheduler = "${local.image_base}/updraft-scheduler:${var.image_tag}"
    ui        = "${local.image_base}/updraft-ui:${var.image_tag}"
    functions = "${local.image_base}/updraft-functions:${var.image_tag}"
    worker    = var.worker_image != "" ? var.worker_image : "${local.image_base}/updraft-worker:${var.image_tag}"
  }
}
