# The bundle bucket: each deploy stores the DAG folder as bundles/HASH.tar.gz (package
# gcsbundles) and every DAG version pins its bundle's hash; Dispatch and the workers fetch a
# bundle by hash, verify it and cache it. A deploy sets the object's custom time (again on a
# redeploy of the same files), so the lifecycle rule deletes the bundles no deploy has named
# for longer than runs are kept (their runs have expired; docs/bundles.md).

locals {
  bundle_unreferenced_days = 120 # > the 90 days of run retention
}

resource "google_storage_bucket" "bundles" {
  name                        = "${var.project}-${var.name_prefix}-bundles"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  lifecycle_rule {
    condition {
      days_since_custom_time = local.bundle_unreferenced_days
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "dispatch_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.dispatch.member
}

resource "google_storage_bucket_iam_member" "ui_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.ui.member
}

resource "google_storage_bucket_iam_member" "worker_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.worker.member
}

output "bundle_bucket" {
  description = "Where `updraft dags deploy` stores bundles: export UPDRAFT_BUNDLE_BUCKET=<this>."
  value       = google_storage_bucket.bundles.name
}
