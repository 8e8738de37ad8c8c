#!/usr/bin/env bash
# Builds Updraft's images and pushes them to Artifact Registry (`make images`, and the first
# step of `make deploy`). Run from anywhere; the build context is the repository root.
#
#   PROJECT=my-project REGION=asia-northeast3 deploy/build.sh          # build and push
#   deploy/build.sh tag                                                # print the tag it would use
#   deploy/build.sh list                                               # print image=Dockerfile[:cmd]
#
# Environment:
#   PROJECT, REGION  required for a build; the images go to
#                    REGION-docker.pkg.dev/PROJECT/REPO/NAME:TAG (as infra/main.tf expects)
#   REPO             the Artifact Registry repository (default updraft; Terraform's artifact_repository)
#   TAG              the image tag (default: the commit, with -dirty-TIMESTAMP for uncommitted changes)
#   BUILDER          cloudbuild (default: Cloud Build, no local Docker needed) or docker
#   REQUIREMENTS     the python tasks' requirements.txt, a path inside this repository, installed
#                    into the worker image's venv (default deploy/requirements.txt: none)
#   MACHINE_TYPE     a Cloud Build machine type, e.g. e2-highcpu-8 for faster builds
#                    (the default machine is the one in Cloud Build's free tier)
set -euo pipefail
cd "$(dirname "$0")/.."

# What gets built, by cmd/ folder. Every folder of cmd/ is in exactly one list
# (deploy/deploy_test.go checks it against the file system and infra/).
SERVICE_IMAGES=(updraft-scheduler updraft-ui updraft-functions)
WORKER_IMAGES=(updraft-worker)
# updraft-supervise has no image of its own: Dockerfile.worker builds it into the worker image.
NOT_DEPLOYED=(updraft updraft-bench updraft-supervise)

dockerfile_of() {
  case " ${WORKER_IMAGES[*]} " in
    *" $1 "*) echo deploy/Dockerfile.worker ;;
    *) echo deploy/Dockerfile.service ;;
  esac
}

default_tag() {
  local sha
  sha=$(git rev-parse --short=12 HEAD 2>/dev/null) || { echo "not a git checkout: set TAG" >&2; return 1; }
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    sha="$sha-dirty-$(date -u +%Y%m%d%H%M%S)"
  fi
  echo "$sha"
}

cmd=${1:-build}
case "$cmd" in
  tag) default_tag; exit ;;
  list)
    for i in "${SERVICE_IMAGES[@]}"; do echo "$i=deploy/Dockerfile.service:$i"; done
    for i in "${WORKER_IMAGES[@]}"; do echo "$i=deploy/Dockerfile.worker"; done
    exit ;;
  build) ;;
  *) echo "usage: deploy/build.sh [build|tag|list]" >&2; exit 2 ;;
esac

: "${PROJECT:?set PROJECT to your GCP project id}"
: "${REGION:?set REGION to the region of the Artifact Registry repository, e.g. asia-northeast3}"
REPO=${REPO:-updraft}
TAG=${TAG:-$(default_tag)}
BUILDER=${BUILDER:-cloudbuild}
REQUIREMENTS=${REQUIREMENTS:-deploy/requirements.txt}
[ -f "$REQUIREMENTS" ] || { echo "REQUIREMENTS=$REQUIREMENTS is not a file in this repository" >&2; exit 1; }
base="$REGION-docker.pkg.dev/$PROJECT/$REPO"

for name in "${SERVICE_IMAGES[@]}" "${WORKER_IMAGES[@]}"; do
  [ -d "cmd/$name" ] || { echo "cmd/$name does not exist: deploy/build.sh lists an image without its entry point" >&2; exit 1; }
done

echo "building ${SERVICE_IMAGES[*]} ${WORKER_IMAGES[*]} as $base/NAME:$TAG with $BUILDER"

case "$BUILDER" in
cloudbuild)
  # One build, the images one after another so they share the module-download layer.
  config=$(mktemp --suffix=.yaml)
  trap 'rm -f "$config"' EXIT
  {
    echo "steps:"
    for name in "${SERVICE_IMAGES[@]}" "${WORKER_IMAGES[@]}"; do
      echo "  - name: gcr.io/cloud-builders/docker"
      echo "    id: $name"
      echo "    args: [build, -f, $(dockerfile_of "$name"), --build-arg, CMD=$name, --build-arg, REQUIREMENTS=$REQUIREMENTS, -t, '$base/$name:$TAG', .]"
    done
    echo "images:"
    for name in "${SERVICE_IMAGES[@]}" "${WORKER_IMAGES[@]}"; do
      echo "  - '$base/$name:$TAG'"
    done
    echo "timeout: 3600s"
  } > "$config"
  gcloud builds submit --project "$PROJECT" --config "$config" --ignore-file deploy/gcloudignore \
    ${MACHINE_TYPE:+--machine-type "$MACHINE_TYPE"} .
  ;;
docker)
  command -v docker >/dev/null || { echo "BUILDER=docker needs docker; or use BUILDER=cloudbuild" >&2; exit 1; }
  gcloud auth configure-docker "$REGION-docker.pkg.dev" --quiet
  for name in "${SERVICE_IMAGES[@]}" "${WORKER_IMAGES[@]}"; do
    ref="$base/$name:$TAG"
    if docker buildx version >/dev/null 2>&1; then
      # Cloud Run runs linux/amd64, whatever this machine is.
      docker buildx build --platform linux/amd64 -f "$(dockerfile_of "$name")" --build-arg "CMD=$name" --build-arg "REQUIREMENTS=$REQUIREMENTS" -t "$ref" --push .
    else
      docker build --platform linux/amd64 -f "$(dockerfile_of "$name")" --build-arg "CMD=$name" --build-arg "REQUIREMENTS=$REQUIREMENTS" -t "$ref" .
      docker push "$ref"
    fi
  done
  ;;
*)
  echo "BUILDER must be cloudbuild or docker, not '$BUILDER'" >&2; exit 2 ;;
esac
echo "pushed $base/{$(IFS=,; echo "${SERVICE_IMAGES[*]},${WORKER_IMAGES[*]}")}:$TAG"
