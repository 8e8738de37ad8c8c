package tasks_test

import (
	"fmt"
	"go/types"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// module is this repository's module path: its internal/ packages are what another module's
// custom worker cannot import.
const module = "github.com/updraft-dev/updraft"

// internalLeaks loads the packages named by patterns and lists every exported identifier
// whose API (a declared type, a function's signature, a struct's exported fields, a method,
// an interface's methods) mentions a type from an internal/ package of this module, as
// "pkg.Name: internal/x.T". Errors loading a package are leaks too: an unchecked package
// must not pass.
func internalLeaks(t *testing.T, patterns ...string) []string {
	t.Helper()
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedTypes | packages.NeedDeps | packages.NeedImports}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		t.Fatalf("load %v: %v", patterns, err)
	}
	if len(pkgs) == 0 {
		t.Fatalf("load %v: no packages", patterns)
	}
	var out []string
	for _, p := range pkgs {
		for _, e := range p.Errors {
			out = append(out, fmt.Sprintf("%s: load error: %v", p.PkgPath, e))
		}
		if p.Types == nil {
			continue
		}
		scope := p.Types.Scope()
		for _, name := range scope.Names() {
			obj := scope.Lookup(name)
			if !obj.Exported() {
				continue
			}
			where := p.Types.Name() + "." + name
			seen := map[types.Type]bool{}
			report := func(at string, typ types.Type) {
				for _, bad := range internalTypes(typ, seen) {
					out = append(out, fmt.Sprintf("%s: %s", at, bad))
				}
			}
			switch o := obj.(type) {
			case *types.TypeName:
				if o.IsAlias() {
					report(where, types.Unalias(o.Type()))
					continue
				}
				report(where, o.Type().Underlying())
				if n, ok := o.Type().(*types.Named); ok {
					for i := 0; i < n.NumMethods(); i++ {
						if m := n.Method(i); m.Exported() {
							report(where+"."+m.Name(), m.Type())
						}
					}
				}
			default: // funcs, vars, consts
				report(where, o.Type())
			}
		}
	}
	sort.Strings(out)
	return out
}

// internalTypes lists the internal types an exported API mentions in typ: unexported struct
// fields and unexported interface methods are not part of the API, and are not followed.
func internalTypes(typ types.Type, seen map[types.Type]bool) []string {
	if typ == nil || seen[typ] {
		return nil
	}
	seen[typ] = true
	switch t := typ.(type) {
	case *types.Named:
		if pkg := t.Obj().Pkg(); pkg != nil && isInternal(pkg.Path()) {
			return []string{strings.TrimPrefix(pkg.Path(), module+"/") + "." + t.Obj().Name()}
		}
		var out []string
		if args := t.TypeArgs(); args != nil {
			for i := 0; i < args.Len(); i++ {
				out = append(out, internalTypes(args.At(i), seen)...)
			}
		}
		return out // a public named type: its own API is checked where it is declared
	case *types.Alias:
		return internalTypes(types.Unalias(t), seen)
	case *types.Pointer:
		return internalTypes(t.Elem(), seen)
	case *types.Slice:
		return internalTypes(t.Elem(), seen)
	case *types.Array:
		return internalTypes(t.Elem(), seen)
	case *types.Chan:
		return internalTypes(t.Elem(), seen)
	case *types.Map:
		return append(internalTypes(t.Key(), seen), internalTypes(t.Elem(), seen)...)
	case *types.Signature:
		var out []string
		for _, tup := range []*types.Tuple{t.Params(), t.Results()} {
			for i := 0; i < tup.Len(); i++ {
				out = append(out, internalTypes(tup.At(i).Type(), seen)...)
			}
		}
		return out
	case *types.Struct:
		var out []string
		for i := 0; i < t.NumFields(); i++ {
			if f := t.Field(i); f.Exported() {
				out = append(out, internalTypes(f.Type(), seen)...)
			}
		}
		return out
	case *types.Interface:
		var out []string
		for i := 0; i < t.NumMethods(); i++ {
			if m := t.Method(i); m.Exported() {
				out = append(out, internalTypes(m.Type(), seen)...)
			}
		}
		for i := 0; i < t.NumEmbeddeds(); i++ {
			out = append(out, internalTypes(t.EmbeddedType(i), seen)...)
		}
		return out
	}
	return nil
}

func isInternal(path string) bool {
	rest, ok := strings.CutPrefix(path, module+"/")
	return ok && (rest == "internal" || strings.HasPrefix(rest, "internal/") || strings.Contains(rest, "/internal/") || strings.HasSuffix(rest, "/internal"))
}

// TestPluginAPIExposesNoInternalTypes: a custom worker lives in another Go module, which can
// import tasks and worker but none of Updraft's internal/ packages; every exported name of
// tasks and worker must be usable from there, so none may mention an internal type.
func TestPluginAPIExposesNoInternalTypes(t *testing.T) {
	if leaks := internalLeaks(t, module+"/tasks", module+"/worker"); len(leaks) > 0 {
		t.Errorf("the plug-in API mentions internal types (a custom worker in another module can't use these):\n%s",
			strings.Join(leaks, "\n"))
	}
}

// sdkDeps lists the cloud SDKs (Google Cloud client libraries, gRPC, Slack) among the
// dependencies of the package path, as loaded by packages.Load with NeedDeps.
func sdkDeps(t *testing.T, path string) []string {
	t.Helper()
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedImports | packages.NeedDeps}, path)
	if err != nil || len(pkgs) != 1 {
		t.Fatalf("load %s: %v", path, err)
	}
	var out []string
	seen := map[string]bool{}
	packages.Visit(pkgs, func(p *packages.Package) bool {
		if seen[p.PkgPath] {
			return false
		}
		seen[p.PkgPath] = true
		for _, sdk := range []string{"cloud.google.com/", "google.golang.org/api", "google.golang.org/grpc", "github.com/slack-go/"} {
			if strings.HasPrefix(p.PkgPath, sdk) {
				out = append(out, p.PkgPath)
			}
		}
		return true
	}, nil)
	sort.Strings(out)
	return out
}

// TestPluginAPIImportsNoCloudSDK: what a custom worker's functions compile against carries
// no cloud SDK (the runtime and the SDK-backed task types are internal); the check itself
// finds the SDKs an internal package brings (testdata/leaky imports the engine).
func TestPluginAPIImportsNoCloudSDK(t *testing.T) {
	if sdks := sdkDeps(t, module+"/tasks"); len(sdks) > 0 {
		t.Errorf("package tasks depends on cloud SDKs: %v", sdks)
	}
	if sdks := sdkDeps(t, "./testdata/leaky"); len(sdks) == 0 {
		t.Error("the check found no SDK behind internal/engine (Firestore, Pub/Sub): it checks nothing")
	}
}

// TestPluginAPICheckFindsLeaks: the check above finds each way an exported name can mention
// an internal type (testdata/leaky declares one of each), and passes the clean ones.
func TestPluginAPICheckFindsLeaks(t *testing.T) {
	got := internalLeaks(t, "./testdata/leaky")
	want := []string{
		"leaky.Alias: internal/dag.ArgProblem",
		"leaky.Check: internal/dag.ArgProblem",
		"leaky.Ctx.Engine: internal/engine.Engine",
		"leaky.Ctx: internal/dag.Task",
		"leaky.Func: internal/engine.Result",
		"leaky.Runs: internal/engine.TriggerRequest",
		"leaky.Tasks: internal/dag.Task",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("leaks found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
