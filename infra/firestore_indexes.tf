# The composite indexes of the queries in fsstore/, one per query shape. firestore_test.go
# derives the shapes from fsstore's source and fails when a query has no index here or an
# index here serves no query (it prints the index to add). Queries on one field (the tick's
# `tick_due_at <= now` ordered by tick_due_at, `sla_due_at`, `next_due_at`, single equality
# lookups) use Firestore's automatic single-field indexes and need nothing here.

# A DAG's runs, newest first (RunsPage, RecentRuns, RunsBetween; AdjacentRun before a date).
resource "google_firestore_index" "runs_by_dag_logical_date_desc" {
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

# AdjacentRun after a date (depends_on_past); RunsAt (dag_id and logical_date equal).
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

# PrevSuccessRun: a DAG's latest successful run before a date.
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

# CountActiveRuns: a DAG's queued and running runs (max_active_runs).
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

# RunProgress: count a run's instances, finished and finished badly.
resource "google_firestore_index" "task_instances_by_run_progress" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path = "finished"
    order      = "ASCENDING"
  }
  fields {
    field_path = "bad"
    order      = "ASCENDING"
  }
}

# CountActiveTasks (max_active_tasks): a run's queued and running instances.
resource "google_firestore_index" "task_instances_by_run_active" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path = "c_active"
    order      = "ASCENDING"
  }
}

# MapInstances: the instances of a run that list a mapped task downstream.
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

# CountUpstream: readiness, the upstream instances of a task counted by state in one aggregation.
resource "google_firestore_index" "task_instances_by_run_downstream_counts" {
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
  fields {
    field_path = "finished"
    order      = "ASCENDING"
  }
  fields {
    field_path = "c_success"
    order      = "ASCENDING"
  }
  fields {
    field_path = "c_failed"
    order      = "ASCENDING"
  }
  fields {
    field_path = "c_upstream_failed"
    order      = "ASCENDING"
  }
  fields {
    field_path = "c_skipped"
    order      = "ASCENDING"
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

# GridInstances: the runs' instances for the UI's grid.
resource "google_firestore_index" "task_instances_by_run_map_index" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path = "map_index"
    order      = "ASCENDING"
  }
}

# FailedTaskInstances (the alerts' digest): instances that ended failed in a time range.
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

# CountRunChildren (`updraft db clean`): a run's task instances and the attempts they hold.
resource "google_firestore_index" "task_instances_by_run_attempt_count" {
  database   = google_firestore_database.updraft.name
  collection = "task_instances"
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path = "attempt_count"
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

# ListAudit: a DAG's audit entries, newest first.
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
