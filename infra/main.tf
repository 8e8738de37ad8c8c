# Updraft on Google Cloud. This first part holds what the code's correctness and cost depend
# on: the Firestore database and the composite indexes of every query the code makes. The
# services, topics, jobs and IAM follow with the deployment work (docs/deploy.md).

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
  }
}

variable "project" {
  description = "The GCP project id."
  type        = string
}

variable "region" {
  description = "The region for Firestore and the services, e.g. asia-northeast3."
  type        = string
  default     = "asia-northeast3"
}

provider "google" {
  project = var.project
  region  = var.region
}

resource "google_firestore_database" "updraft" {
  name        = "(default)"
  location_id = var.region
  type        = "FIRESTORE_NATIVE"
}
