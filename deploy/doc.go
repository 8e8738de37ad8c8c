// Package deploy holds how Updraft is built into images and deployed to Google Cloud:
// Dockerfile.service (the distroless image of the Go services), Dockerfile.worker (the
// Debian image with a shell that the worker Cloud Run jobs run, and that users extend),
// build.sh (Cloud Build or Docker, called by `make images` and `make deploy`), and the test
// that checks them offline, since base images can't be pulled in CI: every entry point in
// cmd/ is built by an image or declared as not deployed, base images are pinned, the service
// image runs as non-root on distroless, the worker image has a shell, what the Makefile
// passes to Terraform is declared in infra/, and every entry point links statically.
//
// It has no Go code to import, and its test imports nothing of Updraft.
package deploy
