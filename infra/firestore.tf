# The Firestore database and its TTL policies. The composite indexes are in
# firestore_indexes.tf.

resource "google_firestore_database" "updraft" {
  name                    = "(default)"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # terraform destroy deletes the database (the provider's default, ABANDON, would only
  # forget it, and the next apply would fail with "already exists"). The guard is
  # delete_protection_state: while var.deletion_protection is true, Firestore refuses the
  # deletion; make destroy applies deletion_protection = false first (docs/deploy.md, 9).
  deletion_policy = "DELETE"
  depends_on      = [google_project_service.apis]
}

# TTL: Firestore deletes a document within about a day after its expire_at (DESIGN.md,
# Retention). firestore_test.go checks that every collection whose documents the code writes
# with expire_at has its policy here. An attempt lives on its task instance's document and
# goes with it.
resource "google_firestore_field" "ttl" {
  for_each   = toset(["runs", "task_instances", "alert_sent", "alert_threads", "dispatches", "slack_requests"])
  database   = google_firestore_database.updraft.name
  collection = each.value
  field      = "expire_at"
  ttl_config {}
  # Keep expire_at out of the single-field indexes: nothing queries it, and a TTL field
  # with an ever-increasing value indexed would be a write hotspot.
  index_config {}
}

# A task instance holds its attempts (`attempt`, `past_attempts`: worker, lease, result,
# XCom, rendered arguments). Nothing queries them, so they stay out of the single-field
# indexes: fewer index entries per write, and no large string is indexed.
resource "google_firestore_field" "task_instance_attempts" {
  for_each   = toset(["attempt", "past_attempts"])
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  field      = each.value
  index_config {}
}
