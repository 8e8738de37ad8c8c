package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A deploy names its files under the bundle's root: as given for a folder named, absolute
// for a lone file whose bundle folder was found above the working directory's paths.
func TestBundleNamingPutsEveryFileUnderTheRoot(t *testing.T) {
	t.Parallel()
	root, names := bundleNaming("dags", []string{"dags/a.yaml", "dags/team/b.yml"})
	if root != "dags" || strings.Join(names, ",") != "dags/a.yaml,dags/team/b.yml" {
		t.Fatalf("a folder: %q %q; want the names as given", root, names)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	above := filepath.Dir(wd)
	root, names = bundleNaming(above, []string{"testdata/seoul_daily.yaml"})
	want := filepath.ToSlash(filepath.Join(wd, "testdata", "seoul_daily.yaml"))
	if root != filepath.ToSlash(above) || len(names) != 1 || names[0] != want || !strings.HasPrefix(names[0], root+"/") {
		t.Fatalf("a lone file under a root found above: %q %q; want %q under it", root, names, want)
	}
}
