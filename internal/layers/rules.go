package layers

// Module is the module whose rules Rules states.
const Module = "github.com/updraft-dev/updraft"

// Groups names the sets of packages the rules share; a rule refers to one as "$name".
var groups = []Group{
	{
		Name:     "core",
		Patterns: []string{"./internal/dag", "./internal/render", "./scheduler", "./scheduler/schedule"},
		Doc:      "the pure core: the DAG file format, templates, the run and task state machine with its planning, the schedule maths",
	},
	{
		Name: "sdks",
		Patterns: []string{
			"cloud.google.com/go/...", "google.golang.org/api/...", "google.golang.org/grpc/...",
			"google.golang.org/genproto/...", "google.golang.org/protobuf/...",
			"github.com/slack-go/slack/...", "github.com/GoogleCloudPlatform/functions-framework-go/...",
		},
		Doc: "the clients of outside services: Google Cloud's with the gRPC and protobuf under them, Slack's, the Functions Framework",
	},
	{
		Name: "adapters",
		Patterns: []string{
			"./internal/cloudlog", "./internal/fsstore", "./internal/gcsbundles", "./internal/psqueue",
			"./internal/runjobs", "./internal/secrets", "./internal/slackapi",
		},
		Doc: "thin packages that translate between Updraft's values and one outside service each",
	},
	{
		Name: "production",
		Patterns: []string{
			"./cmd/updraft-worker", "./cmd/updraft-scheduler", "./cmd/updraft-functions", "./cmd/updraft-ui",
			"./functions/...", "./worker",
		},
		Doc: "what deployed binaries are built from: their main packages, the functions, and the worker package every worker binary (custom ones too) runs",
	},
	{
		Name: "testhelpers",
		Patterns: []string{
			"./emulators/emutest", "./internal/auth/authtest", "./internal/console/consoletest",
			"./internal/local/localtest", "./internal/taskrun/taskruntest",
		},
		Doc: "packages that only tests import",
	},
	{
		Name: "devonly",
		Patterns: []string{
			"./emulators/...", "./internal/local/...", "./internal/cli", "$testhelpers",
			"github.com/fsouza/fake-gcs-server/...", "testing",
		},
		Doc: "what exists for one machine and for tests: the emulators and stand-ins, the local stack, the CLI, the test helpers",
	},
}

// Rules is Updraft's table of import rules. docs/architecture.md shows it; TestDocTable keeps
// the two in step.
var Rules = Table{Module: Module, Groups: groups, Rules: []Rule{
	{
		Name:   "core-no-sdk",
		From:   []string{"$core"},
		Reach:  true,
		Forbid: []string{"$sdks", "net", "net/http/...", "os/exec", "database/sql/..."},
		Why:    "the core takes values and the current time and returns decisions: no cloud SDK, no network, no subprocess, so it is tested with plain values",
	},
	{
		Name:   "core-only-core",
		From:   []string{"$core"},
		Reach:  true,
		Forbid: []string{"./..."},
		Allow:  []string{"$core"},
		Why:    "the core imports no adapter, no engine and nothing above them: they apply its decisions, not the other way round",
	},
	{
		Name:   "schedule-std-only",
		From:   []string{"./scheduler/schedule"},
		Reach:  true,
		Forbid: []string{"..."},
		Allow:  []string{"std"},
		Why:    "the schedule maths (cron, timezones, data intervals) uses the standard library only",
	},
	{
		Name:  "adapters-below-engine",
		From:  []string{"$adapters"},
		Reach: true,
		Forbid: []string{
			"./internal/engine", "./internal/backend", "./internal/console", "./internal/web",
			"./internal/api", "./internal/cli", "./internal/local", "./scheduler/service",
			"./functions/...", "./cmd/...", "./worker",
		},
		Why: "adapters translate between the core's values and one service; the engine uses them, so they must not use it (or anything built on it)",
		Exempt: []Edge{
			{From: "./internal/runjobs", To: "./internal/engine", Why: "runjobs implements engine.Executor and maps gRPC codes to engine.ErrCannotStart; goes when the executor interface and its errors move to the core"},
			{From: "./internal/runjobs", To: "./internal/taskrun", Why: "runjobs carries the cloudrun.job task type beside its one Cloud Run client, and task types run in the worker runtime, which claims through the engine; goes when a task type's contract leaves the runtime"},
			{From: "./internal/secrets", To: "./internal/taskrun", Why: "secrets.Factory returns the runtime's SecretResolver type; goes when the resolver interface moves to the core"},
		},
	},
	{
		Name:   "runjobs-no-callers",
		From:   []string{"./internal/runjobs"},
		Reach:  true,
		Forbid: []string{"./functions/...", "./internal/local/...", "./internal/cli", "./cmd/...", "./worker"},
		Why:    "the Cloud Run adapter is used by the functions and the local stack, not the other way round",
	},
	{
		Name:   "production-no-dev",
		From:   []string{"$production"},
		Reach:  true,
		Forbid: []string{"$devonly"},
		Why:    "a deployed binary carries no dev-only code: no emulator or stand-in, no local stack, no CLI, no test helper (a worker binary links none of them)",
	},
	{
		Name:   "production-no-web",
		From:   []string{"$production"},
		Except: []string{"./cmd/updraft-ui"},
		Reach:  true,
		Forbid: []string{"./internal/web"},
		Why:    "only the UI serves the pages (their templates and assets are embedded in whatever links them)",
	},
	{
		Name:   "functions-undeclared",
		From:   []string{"./cmd/updraft-functions"},
		Reach:  true,
		Forbid: []string{"./functions/declared"},
		Why:    "the functions binary builds its one target eagerly to wrap it; a name registered by functions/declared's init would shadow it",
	},
	{
		Name:   "worker-only-from-mains",
		From:   []string{"./..."},
		Except: []string{"./cmd/...", "./examples/...", "./internal/cli"},
		Forbid: []string{"./worker"},
		Why:    "worker is a process's entry point: only main packages (the stock and custom workers) and the CLI's `updraft worker` import it",
	},
	{
		Name:   "test-helpers-only-in-tests",
		From:   []string{"./..."},
		Except: []string{"./emulators/...", "$testhelpers"},
		Reach:  true,
		Forbid: []string{"$testhelpers", "testing"},
		Why:    "test helpers (and the testing package) are imported by tests only",
	},
	{
		Name:   "leaves-know-no-updraft",
		From:   []string{"./internal/auth/...", "./internal/proctree", "./internal/slackapi"},
		Reach:  true,
		Forbid: []string{"./..."},
		Why:    "auth knows requests and tokens, not DAGs or roles; proctree knows processes; slackapi knows where Slack is: each imports nothing of Updraft",
	},
	{
		Name:   "bundle-no-sdk",
		From:   []string{"./internal/bundle"},
		Reach:  true,
		Forbid: []string{"$sdks", "./internal/gcsbundles"},
		Why:    "bundles do file I/O only: the store is a two-method interface that gcsbundles implements against Cloud Storage",
	},
	{
		Name:   "secrets-imports",
		From:   []string{"./internal/secrets"},
		Forbid: []string{"./internal/engine", "./scheduler/...", "./internal/fsstore", "./internal/psqueue"},
		Why:    "the Secret Manager adapter uses no engine, scheduler or store of its own (its import of tasks, for the Resolver and Connection types, is debt under adapters-below-engine)",
	},
	{
		Name:   "secrets-no-standin",
		From:   []string{"./internal/secrets"},
		Reach:  true,
		Forbid: []string{"./emulators/..."},
		Why:    "the Secret Manager stand-in is started by the adapter's tests only; the adapter finds it through UPDRAFT_SECRETMANAGER_EMULATOR_HOST",
	},
	{
		Name:   "alerts-apart",
		From:   []string{"./internal/alerts"},
		Reach:  true,
		Forbid: []string{"./internal/engine", "./tasks/...", "./internal/secrets", "./internal/psqueue"},
		Why:    "alerts get DAG specs through Specs, bot tokens through a Tokens function and events as bytes; a slow or down Slack never touches the engine",
	},
	{
		Name:   "slackactions-no-alerts",
		From:   []string{"./internal/slackactions"},
		Forbid: []string{"./internal/alerts"},
		Why:    "the Retry button's action_id and value are the contract between the alert messages and the actions endpoint, not shared code",
	},
	{
		Name:   "access-no-engine",
		From:   []string{"./internal/access"},
		Reach:  true,
		Forbid: []string{"./internal/engine", "./internal/slackapi", "./internal/slackactions", "./internal/alerts", "github.com/slack-go/slack/...", "./internal/web", "./internal/api"},
		Why:    "who may do what is decided over the store alone: no engine, no Slack, no HTTP layer",
	},
	{
		Name:   "access-sdk-via-fsstore",
		From:   []string{"./internal/access"},
		Forbid: []string{"$sdks", "net/http"},
		Why:    "access reaches Firestore only through fsstore, and knows no HTTP",
	},
	{
		Name:   "console-below-http",
		From:   []string{"./internal/console"},
		Forbid: []string{"net/http"},
		Why:    "the console is the operations the UI and the API call; HTTP sits on top of it",
	},
	{
		Name:   "console-below-web-api",
		From:   []string{"./internal/console"},
		Reach:  true,
		Forbid: []string{"./internal/web", "./internal/api"},
		Why:    "the web pages and the REST API sit on top of the console, not the other way round",
	},
	{
		Name:   "api-no-web",
		From:   []string{"./internal/api"},
		Reach:  true,
		Forbid: []string{"./internal/web"},
		Why:    "the REST API stands alone (docs/openapi.yaml documents every route); the pages use it",
	},
	{
		Name:   "web-through-console",
		From:   []string{"./internal/web"},
		Forbid: []string{"$sdks", "./internal/engine", "./internal/fsstore", "./internal/psqueue"},
		Why:    "the pages read and act through the console, which authorises every call: no engine, store or cloud SDK of their own",
	},
	{
		Name:   "standins-not-updraft",
		From:   []string{"./emulators/cloudrun", "./emulators/secretmanager"},
		Reach:  true,
		Forbid: []string{"./..."},
		Allow:  []string{"./emulators/internal/..."},
		Why:    "a stand-in plays Google's service (its protos and gRPC), not Updraft's view of it",
	},
	{
		Name:   "slackfake-std-only",
		From:   []string{"./emulators/slack"},
		Reach:  true,
		Forbid: []string{"..."},
		Allow:  []string{"std"},
		Why:    "the fake Slack uses the standard library only, so the CLI, the dev server and any test can embed it",
	},
	{
		Name:   "bqemu-runs-binary",
		From:   []string{"./emulators/bigquery"},
		Reach:  true,
		Forbid: []string{"github.com/goccy/..."},
		Why:    "the BigQuery emulator is built from its own tools module and run as a binary; the main module neither depends on it nor builds it",
	},
	{
		Name:   "infra-unimported",
		From:   []string{"./..."},
		Forbid: []string{"./infra", "./deploy"},
		Why:    "infra and deploy hold Terraform and build files and their offline checks; no Go code imports them",
	},
}}
