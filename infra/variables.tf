variable "project" {
  description = "The GCP project id."
  type        = string
}

variable "region" {
  description = "The region for Firestore, Cloud Run, Cloud Scheduler and Artifact Registry, e.g. asia-northeast3."
  type        = string
  default     = "asia-northeast3"
}

variable "name_prefix" {
  description = "Prefix of the service accounts, Cloud Run services and jobs, and the Cloud Scheduler job (topics, subscriptions and secrets keep the names the code uses)."
  type        = string
  default     = "updraft"
  validation {
    # Service account ids are 6-30 characters: the shortest is PREFIX-ui, the longest
    # PREFIX-slack-actions (deploy_test.go checks these bounds against iam.tf).
    condition     = can(regex("^[a-z][a-z0-9-]{2,14}$", var.name_prefix))
    error_message = "name_prefix must be 3 to 15 lower-case letters, digits and dashes, starting with a letter (service account ids are 6-30 characters)."
  }
}

variable "artifact_repository" {
  description = "The Artifact Registry (Docker) repository the images are pushed to."
  type        = string
  default     = "updraft"
}

# No default: nothing pushes a floating tag. make deploy passes the tag it built
# (deploy/build.sh tag: the commit); by hand, pass the tag you pushed.
variable "image_tag" {
  description = "The tag of the updraft-scheduler, updraft-ui, updraft-functions and updraft-worker images to run, as make images pushed them (the commit). Required."
  type        = string
  validation {
    condition     = var.image_tag != "" && var.image_tag != "latest"
    error_message = "image_tag must be the tag make images pushed (deploy/build.sh tag prints it); nothing pushes :latest."
  }
}

variable "worker_image" {
  description = "A full image reference for the worker jobs (your image extending the stock worker); empty for the stock updraft-worker image."
  type        = string
  default     = ""
}

variable "worker_classes" {
  description = "The worker Cloud Run jobs, one per resource class: CPU, memory, and the default task timeout (Dispatch overrides it per task)."
  type = map(object({
    cpu     = string
    memory  = string
    timeout = string
  }))
  default = {
    small  = { cpu = "1", memory = "512Mi", timeout = "3600s" }
    medium = { cpu = "2", memory = "2Gi", timeout = "3600s" }
    large  = { cpu = "4", memory = "8Gi", timeout = "3600s" }
  }
}

variable "runner" {
  description = "The warm runner service (docs/execution.md): its instances' vCPUs and memory (MiB), and how many instances at most. Each instance runs one attempt per vCPU, so each attempt gets 1 vCPU and memory_mib / cpu; tasks that fit that share, and have a timeout of at most 9 minutes, run there instead of in a job. enabled = false sends every attempt to the jobs (the service stays, at zero instances)."
  type = object({
    enabled       = bool
    cpu           = number
    memory_mib    = number
    max_instances = number
  })
  default = {
    enabled       = true
    cpu           = 1
    memory_mib    = 512
    max_instances = 50
  }
  validation {
    condition     = contains([1, 2, 4, 6, 8], var.runner.cpu) && var.runner.memory_mib >= 512 * var.runner.cpu && var.runner.max_instances >= 1
    error_message = "runner.cpu must be 1, 2, 4, 6 or 8, with at least 512 MiB of memory per vCPU; max_instances at least 1."
  }
}

variable "iap_members" {
  description = "Who may open the UI through IAP, e.g. [\"user:ana@example.com\", \"group:data@example.com\"]. Updraft's own roles (viewer, operator, admin) apply after that."
  type        = list(string)
  default     = []
}

variable "ui_url" {
  description = "The UI's public base URL for links in Slack alerts; empty for the UI service's run.app URL."
  type        = string
  default     = ""
}

variable "alert_digest_channel" {
  description = "The Slack channel of the failed-tasks digest; empty for no digest."
  type        = string
  default     = ""
}

variable "alert_email" {
  description = "An email address the alert policies notify; empty for none (use notification_channels)."
  type        = string
  default     = ""
}

variable "notification_channels" {
  description = "Ids of existing Cloud Monitoring notification channels the alert policies notify."
  type        = list(string)
  default     = []
}

variable "schedule_delay_threshold_seconds" {
  description = "Alert when a run starts this long after its schedule said (dagrun.schedule_delay, 95th percentile over 10 minutes)."
  type        = number
  default     = 180
}

variable "log_retention_days" {
  description = "How long Cloud Logging's _Default bucket keeps logs (task logs included)."
  type        = number
  default     = 30
}

variable "deletion_protection" {
  description = "Protect the Firestore database and the Cloud Run services and jobs from terraform destroy. With false, terraform destroy deletes the database and its data (make destroy sets it)."
  type        = bool
  default     = true
}
