package deploy

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// root is the repository root, the images' build context.
const root = ".."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, USER...
	Args string
	Line int
}

// stage is one FROM and what follows it.
type stage struct {
	Base, Name string
	Line       int
	Body       []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows comments, line continuations
// and FROM's AS; that is all these files use.
func parseDockerfile(text string) ([]stage, error) {
	var (
		stages []stage
		buf    strings.Builder
		start  int
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	flush := func() error {
		s := strings.TrimSpace(buf.String())
		buf.Reset()
		if s == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			var st stage
			for len(f) > 0 && strings.HasPrefix(f[0], "--") { // --platform=...
				f = f[1:]
			}
			switch {
			case len(f) == 1:
				st = stage{Base: f[0], Line: start}
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st = stage{Base: f[0], Name: f[2], Line: start}
			default:
				return fmt.Errorf("line %d: FROM %s: want FROM IMAGE [AS NAME]", start, in.Args)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" { // an ARG before the first FROM
				return nil
			}
			return fmt.Errorf("line %d: %s before the first FROM", start, in.Cmd)
		}
		last := &stages[len(stages)-1]
		last.Body = append(last.Body, in)
		return nil
	}
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if buf.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if buf.Len() > 0 && strings.HasPrefix(line, "#") { // a comment inside a continuation
			continue
		}
		if buf.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, sc.Err()
}

// imageRole is what an image is for, which decides what its Dockerfile must do.
type imageRole int

const (
	serviceImage imageRole = iota // static binary, distroless or scratch, non-root
	workerImage                   // a shell, non-root, the worker as entry point
)

// checkDockerfile returns what is wrong with a Dockerfile for its role; goVersion is go.mod's.
func checkDockerfile(text string, role imageRole, goVersion string) []string {
	stages, err := parseDockerfile(text)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := map[string]bool{}
	var builder *stage
	for i := range stages {
		st := &stages[i]
		if !names[st.Base] {
			if p := pinProblem(st.Base); p != "" {
				bad("line %d: FROM %s: %s", st.Line, st.Base, p)
			}
		}
		if st.Name != "" {
			names[st.Name] = true
		}
		if strings.HasPrefix(st.Base, "golang:") {
			builder = st
			if v := strings.SplitN(strings.TrimPrefix(st.Base, "golang:"), "-", 2)[0]; v != goVersion {
				bad("line %d: FROM %s: the builder's Go is %s but go.mod says go %s (GOTOOLCHAIN=local would refuse to build)", st.Line, st.Base, v, goVersion)
			}
		}
	}
	if builder == nil {
		bad("no golang builder stage")
	} else {
		build := ""
		for _, in := range builder.Body {
			if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
				build = in.Args
			}
		}
		env := strings.Join(argsOf(builder.Body, "ENV"), " ")
		switch {
		case build == "":
			bad("the builder stage runs no `go build`")
		default:
			if !strings.Contains(env+" "+build, "CGO_ENABLED=0") {
				bad("the builder does not set CGO_ENABLED=0: the binary would need libc")
			}
			if !strings.Contains(build, "-trimpath") {
				bad("`go build` without -trimpath")
			}
			if !strings.Contains(build, "./cmd/${CMD}") {
				bad("`go build` does not build ./cmd/${CMD}, the entry point the build-arg names")
			}
		}
		if !slices.ContainsFunc(argsOf(builder.Body, "ARG"), func(a string) bool { return a == "CMD" || strings.HasPrefix(a, "CMD=") }) {
			bad("the builder stage declares no ARG CMD (deploy/build.sh passes --build-arg CMD=NAME)")
		}
	}
	final := stages[len(stages)-1]
	base := strings.ToLower(final.Base)
	minimal := base == "scratch" || strings.HasPrefix(base, "gcr.io/distroless/")
	switch role {
	case serviceImage:
		if !minimal {
			bad("line %d: the service image's final stage is %s: want gcr.io/distroless/static-* or scratch", final.Line, final.Base)
		}
		if base == "scratch" && !slices.ContainsFunc(argsOf(final.Body, "COPY"), func(a string) bool { return strings.Contains(a, "ca-certificates") }) {
			bad("a scratch image needs the CA certificates copied in (the Google APIs are TLS)")
		}
	case workerImage:
		if minimal || strings.Contains(base, "alpine") {
			bad("line %d: the worker image's final stage is %s: it needs a shell and glibc (debian:12-slim)", final.Line, final.Base)
		}
		run := strings.Join(argsOf(final.Body, "RUN"), " ")
		for _, pkg := range []string{"bash", "ca-certificates", "curl"} {
			if !regexp.MustCompile(`apt-get install[^&;]*\b` + regexp.QuoteMeta(pkg) + `\b`).MatchString(run) {
				bad("the worker image does not apt-get install %s", pkg)
			}
		}
		if ep := argsOf(final.Body, "ENTRYPOINT"); len(ep) == 0 || !strings.Contains(ep[len(ep)-1], "updraft-worker") {
			bad("the worker image's ENTRYPOINT is not updraft-worker")
		}
	}
	if ep := argsOf(final.Body, "ENTRYPOINT"); len(ep) == 0 {
		bad("the final stage has no ENTRYPOINT")
	} else if !strings.HasPrefix(ep[len(ep)-1], "[") {
		bad("ENTRYPOINT %s: use the exec form [\"/path\"], so signals reach the binary", ep[len(ep)-1])
	}
	users := argsOf(final.Body, "USER")
	switch {
	case len(users) > 0:
		if u := strings.SplitN(users[len(users)-1], ":", 2)[0]; u == "root" || u == "0" {
			bad("the final stage runs as %s", users[len(users)-1])
		}
	case strings.HasSuffix(base, ":nonroot") || strings.Contains(base, ":nonroot@"):
	default:
		bad("the final stage sets no USER, so it runs as root")
	}
	return problems
}

// pinProblem says why an image reference is not pinned, or "".
func pinProblem(ref string) string {
	if ref == "scratch" {
		return ""
	}
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	switch {
	case !ok || tag == "":
		return "no tag: pin a version (it would float with latest)"
	case tag == "latest" || strings.HasPrefix(tag, "latest-"):
		return "the latest tag floats: pin a version"
	case strings.Contains(ref, "$"):
		return "a variable base image can't be checked: pin it here"
	}
	return ""
}

func argsOf(body []instruction, cmd string) []string {
	var out []string
	for _, in := range body {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goModVersion is the go directive of go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	gov := goModVersion(t)
	for _, tc := range []struct {
		file string
		role imageRole
	}{
		{"deploy/Dockerfile.service", serviceImage},
		{"deploy/Dockerfile.worker", workerImage},
	} {
		for _, p := range checkDockerfile(readFile(t, tc.file), tc.role, gov) {
			t.Errorf("%s: %s", tc.file, p)
		}
	}
}

// TestCheckDockerfileCatches shows each check failing on a Dockerfile broken its way.
func TestCheckDockerfileCatches(t *testing.T) {
	t.Parallel()
	const good = `FROM golang:1.26.8-bookworm AS build
ARG CMD
ENV CGO_ENABLED=0
RUN go build -trimpath -o /out/app "./cmd/${CMD}"
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
`
	const goodWorker = `FROM golang:1.26.8-bookworm AS build
ARG CMD=updraft-worker
RUN CGO_ENABLED=0 go build -trimpath -o /out/updraft-worker "./cmd/${CMD}"
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates curl \
 && useradd -u 10001 updraft
COPY --from=build /out/updraft-worker /usr/local/bin/updraft-worker
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/updraft-worker"]
`
	for _, tc := range []struct {
		name, text string
		role       imageRole
		want       string // "" means no problem
	}{
		{"service ok", good, serviceImage, ""},
		{"worker ok", goodWorker, workerImage, ""},
		{"unpinned base", strings.Replace(good, "static-debian12:nonroot", "static-debian12", 1), serviceImage, "no tag"},
		{"latest base", strings.Replace(good, "golang:1.26.8-bookworm", "golang:latest", 1), serviceImage, "latest tag floats"},
		{"builder Go differs from go.mod", strings.Replace(good, "1.26.8", "1.25.3", 1), serviceImage, "go.mod says go 1.26.8"},
		{"cgo on", strings.Replace(good, "ENV CGO_ENABLED=0\n", "", 1), serviceImage, "CGO_ENABLED=0"},
		{"no trimpath", strings.Replace(good, "-trimpath ", "", 1), serviceImage, "-trimpath"},
		{"fixed cmd", strings.Replace(good, "./cmd/${CMD}", "./cmd/updraft-scheduler", 1), serviceImage, "./cmd/${CMD}"},
		{"no ARG CMD", strings.Replace(good, "ARG CMD\n", "", 1), serviceImage, "ARG CMD"},
		{"service on debian", strings.Replace(good, "gcr.io/distroless/static-debian12:nonroot", "debian:12-slim", 1), serviceImage, "distroless"},
		{"service as root", strings.Replace(good, ":nonroot", ":debug", 1), serviceImage, "runs as root"},
		{"explicit root user", strings.Replace(good, "ENTRYPOINT", "USER root\nENTRYPOINT", 1), serviceImage, "runs as root"},
		{"shell-form entrypoint", strings.Replace(good, `["/app"]`, "/app", 1), serviceImage, "exec form"},
		{"scratch without certs", strings.Replace(good, "gcr.io/distroless/static-debian12:nonroot", "scratch", 1) + "USER 65532\n", serviceImage, "CA certificates"},
		{"worker without shell", strings.Replace(goodWorker, "debian:12-slim", "gcr.io/distroless/static-debian12:nonroot", 1), workerImage, "needs a shell"},
		{"worker without curl", strings.Replace(goodWorker, " curl", "", 1), workerImage, "install curl"},
		{"worker as root", strings.Replace(goodWorker, "USER 10001:10001\n", "", 1), workerImage, "runs as root"},
		{"worker runs something else", strings.Replace(goodWorker, `["/usr/local/bin/updraft-worker"]`, `["/bin/bash"]`, 1), workerImage, "ENTRYPOINT is not updraft-worker"},
		{"no builder", "FROM debian:12-slim\nENTRYPOINT [\"/x\"]\nUSER 1\n", workerImage, "no golang builder"},
		{"instruction before FROM", "RUN true\n" + good, serviceImage, "before the first FROM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(checkDockerfile(tc.text, tc.role, "1.26.8"), "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("want no problem, got:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("want a problem mentioning %q, got:\n%s", tc.want, got)
			}
		})
	}
}

// buildLists reads the image lists of deploy/build.sh.
func buildLists(t *testing.T, script string) map[string][]string {
	t.Helper()
	lists := map[string][]string{}
	for _, name := range []string{"SERVICE_IMAGES", "WORKER_IMAGES", "NOT_DEPLOYED"} {
		m := regexp.MustCompile(`(?m)^` + name + `=\(([^)]*)\)`).FindStringSubmatch(script)
		if m == nil {
			t.Fatalf("deploy/build.sh has no %s=(...) list", name)
		}
		lists[name] = strings.Fields(m[1])
	}
	return lists
}

// checkEntryPoints says which cmd/ folders no list names, which names have no folder, and
// which are named twice.
func checkEntryPoints(cmds []string, lists map[string][]string) []string {
	var problems []string
	seen := map[string]string{}
	for _, list := range []string{"SERVICE_IMAGES", "WORKER_IMAGES", "NOT_DEPLOYED"} {
		for _, n := range lists[list] {
			if prev, ok := seen[n]; ok {
				problems = append(problems, fmt.Sprintf("%s is in both %s and %s", n, prev, list))
			}
			seen[n] = list
			if !slices.Contains(cmds, n) {
				problems = append(problems, fmt.Sprintf("%s lists %s but there is no cmd/%s", list, n, n))
			}
		}
	}
	for _, c := range cmds {
		if _, ok := seen[c]; !ok {
			problems = append(problems, fmt.Sprintf("cmd/%s is in no list of deploy/build.sh: add it to SERVICE_IMAGES or WORKER_IMAGES (and infra/), or to NOT_DEPLOYED", c))
		}
	}
	return problems
}

func cmdDirs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(root, "cmd", e.Name(), "main.go")); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

func TestEveryEntryPointHasItsImage(t *testing.T) {
	t.Parallel()
	lists := buildLists(t, readFile(t, "deploy/build.sh"))
	for _, p := range checkEntryPoints(cmdDirs(t), lists) {
		t.Error(p)
	}
}

func TestCheckEntryPointsCatches(t *testing.T) {
	t.Parallel()
	lists := map[string][]string{"SERVICE_IMAGES": {"a", "gone"}, "WORKER_IMAGES": {"w"}, "NOT_DEPLOYED": {"a"}}
	got := strings.Join(checkEntryPoints([]string{"a", "w", "new"}, lists), "\n")
	for _, want := range []string{"no cmd/gone", "cmd/new is in no list", "a is in both SERVICE_IMAGES and NOT_DEPLOYED"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
}

// infraText is every infra/*.tf file, concatenated.
func infraText(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "infra", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no infra/*.tf (%v)", err)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String()
}

// checkInfra compares what the Makefile and build.sh hand Terraform with what infra/ declares.
func checkInfra(tf, makefile string, lists map[string][]string) []string {
	var problems []string
	declared := func(kind, name string) bool {
		return regexp.MustCompile(`(?m)^` + kind + ` "` + regexp.QuoteMeta(name) + `"`).MatchString(tf)
	}
	vars := regexp.MustCompile(`-var ['"]?([a-z_]+)=`).FindAllStringSubmatch(makefile, -1)
	for _, m := range vars {
		if !declared("variable", m[1]) {
			problems = append(problems, fmt.Sprintf("the Makefile passes -var %s=… but infra/ declares no variable %q", m[1], m[1]))
		}
	}
	for _, m := range regexp.MustCompile(`output -raw ([a-z_]+)`).FindAllStringSubmatch(makefile, -1) {
		if !declared("output", m[1]) {
			problems = append(problems, fmt.Sprintf("the Makefile reads terraform output %s but infra/ declares no output %q", m[1], m[1]))
		}
	}
	built := append(slices.Clone(lists["SERVICE_IMAGES"]), lists["WORKER_IMAGES"]...)
	for _, m := range regexp.MustCompile(`/(updraft-[a-z-]+):\$\{var\.image_tag\}`).FindAllStringSubmatch(tf, -1) {
		if !slices.Contains(built, m[1]) {
			problems = append(problems, fmt.Sprintf("infra/ runs the image %s, which deploy/build.sh does not build", m[1]))
		}
	}
	for _, n := range built {
		if !strings.Contains(tf, "/"+n+":${var.image_tag}") {
			problems = append(problems, fmt.Sprintf("deploy/build.sh builds %s but infra/ runs no …/%s:${var.image_tag}", n, n))
		}
	}
	if !regexp.MustCompile(`(?m)^resource "google_artifact_registry_repository" "`).MatchString(tf) {
		problems = append(problems, "infra/ declares no google_artifact_registry_repository for the images (make deploy creates it first)")
	}
	if !strings.Contains(tf, `${var.region}-docker.pkg.dev/${var.project}/${var.artifact_repository}`) {
		problems = append(problems, "infra/'s image path is not ${var.region}-docker.pkg.dev/${var.project}/${var.artifact_repository}, where deploy/build.sh pushes")
	}
	return problems
}

func TestMakefileAndBuildMatchInfra(t *testing.T) {
	t.Parallel()
	lists := buildLists(t, readFile(t, "deploy/build.sh"))
	for _, p := range checkInfra(infraText(t), readFile(t, "Makefile"), lists) {
		t.Error(p)
	}
}

func TestCheckInfraCatches(t *testing.T) {
	t.Parallel()
	tf := `variable "project" {}
variable "image_tag" {}
output "ui_url" {}
resource "google_artifact_registry_repository" "images" {}
locals { a = "${var.region}-docker.pkg.dev/${var.project}/${var.artifact_repository}/updraft-ui:${var.image_tag}" }
locals { b = "x/updraft-extra:${var.image_tag}" }
`
	mk := `$(TF) apply -var 'project=$(PROJECT)' -var "image_tag=$$tag" -var deletion_protection=false
	$(TF) output -raw ui_url; $(TF) output -raw registry`
	lists := map[string][]string{"SERVICE_IMAGES": {"updraft-ui", "updraft-scheduler"}}
	got := strings.Join(checkInfra(tf, mk, lists), "\n")
	for _, want := range []string{"no variable \"deletion_protection\"", "no output \"registry\"", "image updraft-extra", "builds updraft-scheduler"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
	for _, notWant := range []string{`variable "project"`, `variable "image_tag"`, `output "ui_url"`, "google_artifact_registry_repository"} {
		if strings.Contains(got, notWant) {
			t.Errorf("did not want %q in:\n%s", notWant, got)
		}
	}
}

// TestEntryPointsLinkStatically builds every entry point as the images do and checks that
// none asks for a dynamic loader, so each runs on distroless/static or scratch.
func TestEntryPointsLinkStatically(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every entry point")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks ELF binaries")
	}
	t.Parallel()
	gobin := "go"
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go"); fileExists(p) {
			gobin = p
		}
	}
	dir := t.TempDir()
	// No -trimpath or -ldflags as in the images: they don't change how a binary links, and
	// without them the build shares more of the build cache with the other tests.
	cmd := exec.Command(gobin, "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/...: %v\n%s", err, out)
	}
	for _, name := range cmdDirs(t) {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("cmd/%s: %v", name, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("cmd/%s is dynamically linked (it has a PT_INTERP program header)", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("cmd/%s needs shared libraries %v", name, libs)
		}
		f.Close()
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
