# Composite indexes for the queries in fsstore/store.go. Single-field range queries (the
# tick's `tick_due_at <= now` and `next_due_at <= now`, ordered by the same field) use
# Firestore's automatic single-field indexes and need nothing here.

# ListRuns: a DAG's runs, newest logical date first.
resource "google_firestore_index" "runs_by_dag_logical_date" {
  database   = google_firestore_database.updraft.name
  collection = "runs"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "logical_date"
    order      = "DESCENDING"
  }
}

# CountActiveRuns: a DAG's queued and running runs.
resource "google_firestore_index" "runs_by_dag_state" {
  database   = google_firestore_database.updraft.name
  collection = "runs"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
}

# CountUpstream: the instances of a run that list a task downstream (readiness counts).
resource "google_firestore_index" "task_instances_by_run_downstream" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path   = "downstream"
    array_config = "CONTAINS"
  }
}

# ListAttempts: the attempts of one task instance.
resource "google_firestore_index" "attempts_by_task" {
  database   = google_firestore_database.updraft.name
  collection = "attempts"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "run_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "task_id"
    order      = "ASCENDING"
  }
}

# AdjacentRun (depends_on_past): the run right after a logical date.
resource "google_firestore_index" "runs_by_dag_logical_date_asc" {
  database   = google_firestore_database.updraft.name
  collection = "runs"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "logical_date"
    order      = "ASCENDING"
  }
}

# CountBackfillRuns: a backfill's runs by state.
resource "google_firestore_index" "runs_by_backfill_state" {
  database   = google_firestore_database.updraft.name
  collection = "runs"
  fields {
    field_path = "backfill_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
}

# ListBackfills: a DAG's backfills, newest first.
resource "google_firestore_index" "backfills_by_dag_created" {
  database   = google_firestore_database.updraft.name
  collection = "backfills"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# ScheduledTasks (max_active_tasks): a run's instances waiting for a slot.
resource "google_firestore_index" "task_instances_by_run_state" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
}

# PrevSuccessRun (.prev_data_interval_start_success): a DAG's latest successful run.
resource "google_firestore_index" "runs_by_dag_state_logical_date" {
  database   = google_firestore_database.updraft.name
  collection = "runs"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "logical_date"
    order      = "DESCENDING"
  }
}

# ListAudit: a DAG's audit entries, newest first (fsstore/audit.go).
resource "google_firestore_index" "audit_by_dag_at" {
  database   = google_firestore_database.updraft.name
  collection = "audit"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = "DESCENDING"
  }
}

# FailedTaskInstances (the alerts' digest): task instances that ended failed in a time range
# (alerts/tick.go). SLADueRuns (`sla_due_at <= now`, ordered by it) needs only the automatic
# single-field index. alert_sent and alert_threads carry expire_at for a TTL policy.
resource "google_firestore_index" "task_instances_by_state_ended_at" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "ended_at"
    order      = "ASCENDING"
  }
}
