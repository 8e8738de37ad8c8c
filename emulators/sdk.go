package emulators

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SDKRootEnv overrides the gcloud SDK root.
const SDKRootEnv = "UPDRAFT_GCLOUD_SDK_ROOT"

// Install hints, shown by Check.
const (
	firestoreAptPackage = "google-cloud-cli-firestore-emulator"
	pubsubAptPackage    = "google-cloud-cli-pubsub-emulator"
	javaAptPackage      = "openjdk-17-jre-headless"
	sdkInstallDocs      = "https://cloud.google.com/sdk/docs/install#deb"
)

// Paths of the emulators inside the SDK root.
const (
	firestoreDir       = "platform/cloud-firestore-emulator"
	firestoreJarName   = "cloud-firestore-emulator.jar"
	firestoreMainClass = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
	pubsubDir          = "platform/pubsub-emulator"
	pubsubJarGlob      = "lib/cloud-pubsub-emulator-*.jar"
)

// SDKRoot finds the gcloud SDK root: $UPDRAFT_GCLOUD_SDK_ROOT if set, else the
// root of the gcloud found on PATH (as `gcloud info
// --format=value(installation.sdk_root)` reports it), else the first existing
// of the common install locations (/usr/lib/google-cloud-sdk,
// /usr/share/google-cloud-sdk, /google-cloud-sdk, ~/google-cloud-sdk, ...).
func SDKRoot() (string, error) {
	if r := os.Getenv(SDKRootEnv); r != "" {
		if !isDir(r) {
			return "", fmt.Errorf("%s=%s is not a directory", SDKRootEnv, r)
		}
		return r, nil
	}
	return discoverSDKRoot()
}

// discoverSDKRoot is cached: `gcloud info` is a Python program taking ~1 s.
var discoverSDKRoot = sync.OnceValues(func() (string, error) {
	if gcloud, err := exec.LookPath("gcloud"); err == nil {
		// Fast path: <root>/bin/gcloud, usually reached through a symlink
		// (/usr/bin/gcloud -> ../lib/google-cloud-sdk/bin/gcloud).
		if real, err := filepath.EvalSymlinks(gcloud); err == nil {
			root := filepath.Dir(filepath.Dir(real))
			if isFile(filepath.Join(root, "lib", "gcloud.py")) {
				return root, nil
			}
		}
		// Authoritative path: ask gcloud.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, gcloud, "info", "--format=value(installation.sdk_root)").Output()
		if root := strings.TrimSpace(string(out)); err == nil && root != "" && isDir(root) {
			return root, nil
		}
	}
	candidates := commonSDKRoots()
	for _, c := range candidates {
		if isDir(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("gcloud SDK not found: no gcloud on PATH, %s not set, and none of %s exists",
		SDKRootEnv, strings.Join(candidates, ", "))
})

func commonSDKRoots() []string {
	roots := []string{
		"/usr/lib/google-cloud-sdk",
		"/usr/share/google-cloud-sdk",
		"/google-cloud-sdk",
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, "google-cloud-sdk"))
	}
	return append(roots,
		"/opt/google-cloud-sdk",
		"/snap/google-cloud-cli/current",
		"/opt/homebrew/share/google-cloud-sdk",
		"/usr/local/share/google-cloud-sdk",
	)
}

// Check returns nil if java and both emulators are installed, else an error
// saying exactly what to install (one line per missing piece).
func Check() error {
	_, err := resolveAll()
	return err
}

// installation is everything needed to start the emulators.
type installation struct {
	java         string
	javaVersion  int
	sdkRoot      string
	firestoreJar string
	pubsubJar    string
}

func resolveAll() (*installation, error) {
	var problems []error
	inst := &installation{}

	java, jerr := findJava()
	if jerr != nil {
		problems = append(problems, jerr)
	} else {
		inst.java = java
		v, err := javaMajorVersion(java)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s does not run (%v): install a working Java with `sudo apt-get install %s`", java, err, javaAptPackage))
		}
		inst.javaVersion = v
	}

	root, err := SDKRoot()
	if err != nil {
		problems = append(problems, fmt.Errorf("%v: install the emulators with `sudo apt-get install %s %s` (from Google's apt repository, see %s), or set %s to your SDK root",
			err, firestoreAptPackage, pubsubAptPackage, sdkInstallDocs, SDKRootEnv))
		return nil, errors.Join(problems...)
	}
	inst.sdkRoot = root

	fsDir := filepath.Join(root, firestoreDir)
	if jar := filepath.Join(fsDir, firestoreJarName); isFile(jar) {
		inst.firestoreJar = jar
	} else {
		problems = append(problems, fmt.Errorf("Firestore emulator not found under %s: install it with `sudo apt-get install %s` (or `gcloud components install cloud-firestore-emulator`)",
			fsDir, firestoreAptPackage))
	}

	psDir := filepath.Join(root, pubsubDir)
	if jar := findPubSubJar(root); jar != "" {
		inst.pubsubJar = jar
	} else {
		problems = append(problems, fmt.Errorf("Pub/Sub emulator not found under %s: install it with `sudo apt-get install %s` (or `gcloud components install pubsub-emulator`)",
			psDir, pubsubAptPackage))
	}

	// Java recent enough for the emulators' class files?
	if inst.javaVersion > 0 {
		for _, jar := range []struct{ name, path, main string }{
			{"Firestore emulator", inst.firestoreJar, firestoreMainClass},
			{"Pub/Sub emulator", inst.pubsubJar, ""},
		} {
			if jar.path == "" {
				continue
			}
			need := requiredJavaVersion(jar.path, jar.main)
			if need > inst.javaVersion {
				problems = append(problems, fmt.Errorf("the %s needs Java %d or newer but %s is Java %d: install a newer one with `sudo apt-get install openjdk-%d-jre-headless` and put it first on PATH (or set JAVA_HOME)",
					jar.name, need, inst.java, inst.javaVersion, max(need, 17)))
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return inst, nil
}

// findJava returns $JAVA_HOME/bin/java if JAVA_HOME is set (like the SDK's
// Pub/Sub wrapper), else java from PATH.
func findJava() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java := filepath.Join(home, "bin", "java")
		if isExecutable(java) {
			return java, nil
		}
		return "", fmt.Errorf("java not found: JAVA_HOME=%s has no bin/java: fix JAVA_HOME, or unset it and install Java with `sudo apt-get install %s`", home, javaAptPackage)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("java not found on PATH (the emulators are Java programs): install it with `sudo apt-get install %s`", javaAptPackage)
	}
	return java, nil
}

var (
	javaVersionMu    sync.Mutex
	javaVersionCache = map[string]int{}
)

// javaMajorVersion runs `java -version` and returns the feature version
// (8 for "1.8.0_x", 17 for "17.0.15").
func javaMajorVersion(java string) (int, error) {
	javaVersionMu.Lock()
	defer javaVersionMu.Unlock()
	if v, ok := javaVersionCache[java]; ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, "-version").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("`%s -version`: %v: %s", java, err, bytes.TrimSpace(out))
	}
	v, err := parseJavaVersion(string(out))
	if err != nil {
		return 0, err
	}
	javaVersionCache[java] = v
	return v, nil
}

func parseJavaVersion(out string) (int, error) {
	// openjdk version "17.0.15" 2025-04-15
	// java version "1.8.0_381"
	for line := range strings.Lines(out) {
		i := strings.Index(line, "version \"")
		if i < 0 {
			continue
		}
		v := line[i+len("version \""):]
		v, _, _ = strings.Cut(v, "\"")
		v = strings.TrimPrefix(v, "1.")
		v, _, _ = strings.Cut(v, ".")
		v, _, _ = strings.Cut(v, "-")
		v, _, _ = strings.Cut(v, "+")
		n, err := strconv.Atoi(v)
		if err != nil {
			break
		}
		return n, nil
	}
	return 0, fmt.Errorf("cannot parse java version from %q", strings.TrimSpace(out))
}

// findPubSubJar returns the Pub/Sub emulator jar (its name carries the
// version, e.g. cloud-pubsub-emulator-0.8.20-all.jar), or "".
func findPubSubJar(root string) string {
	jars, _ := filepath.Glob(filepath.Join(root, pubsubDir, pubsubJarGlob))
	if len(jars) == 0 {
		return ""
	}
	slices.Sort(jars)
	return jars[len(jars)-1]
}

// PubSubVersion returns the version of the installed Pub/Sub emulator, taken
// from its jar name (e.g. "0.8.20"), or "" if it is not installed.
func PubSubVersion() string {
	root, err := SDKRoot()
	if err != nil {
		return ""
	}
	jar := findPubSubJar(root)
	if jar == "" {
		return ""
	}
	v := strings.TrimPrefix(filepath.Base(jar), "cloud-pubsub-emulator-")
	v = strings.TrimSuffix(v, ".jar")
	return strings.TrimSuffix(v, "-all")
}

// requiredJavaVersion reads the class-file version of the jar's main class
// (mainClass, or the manifest's Main-Class when empty). It returns 11 if
// that cannot be determined.
func requiredJavaVersion(jar, mainClass string) int {
	const fallback = 11
	z, err := zip.OpenReader(jar)
	if err != nil {
		return fallback
	}
	defer z.Close()
	if mainClass == "" {
		mainClass = manifestMainClass(&z.Reader)
		if mainClass == "" {
			return fallback
		}
	}
	f, err := z.Open(strings.ReplaceAll(mainClass, ".", "/") + ".class")
	if err != nil {
		return fallback
	}
	defer f.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || binary.BigEndian.Uint32(hdr[:4]) != 0xCAFEBABE {
		return fallback
	}
	major := int(binary.BigEndian.Uint16(hdr[6:]))
	if major < 52 {
		return 8
	}
	return major - 44 // 52 = Java 8, 55 = Java 11, 61 = Java 17
}

func manifestMainClass(z *zip.Reader) string {
	f, err := z.Open("META-INF/MANIFEST.MF")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Main-Class:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
