package lambdatest

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// TestSAMValidate runs `sam validate --lint` (SAM's translator and its
// cfn-lint) on the template.
func TestSAMValidate(t *testing.T) {
	sam := testenv.Required(t, "sam")
	out := runIn(t, RepoRoot(t), sam, "validate", "--lint", "--template", "template.yaml")
	if !strings.Contains(out, "is a valid SAM Template") {
		t.Errorf("sam validate --lint:\n%s", out)
	}
}

// TestSAMBuildIsMakeBuild runs the real `sam build` and `make build` and
// holds every .aws-sam/build/<Function>/bootstrap to be the very file make
// builds: byte for byte, a static linux/arm64 executable built with
// -tags lambda.norpc, -trimpath, CGO off and no VCS stamp.
func TestSAMBuildIsMakeBuild(t *testing.T) {
	sam := testenv.Required(t, "sam")
	makeBin := testenv.Required(t, "make")
	goBin := testenv.Required(t, "go")
	root := RepoRoot(t)
	samDir, makeDir := t.TempDir(), t.TempDir()
	runIn(t, root, sam, "build", "--template", "template.yaml", "--build-dir", samDir)
	runIn(t, root, makeBin, "build", "BIN="+makeDir)

	for _, fn := range Functions() {
		t.Run(fn.Name, func(t *testing.T) {
			built := filepath.Join(samDir, fn.Name, "bootstrap")
			want := filepath.Join(makeDir, filepath.Base(fn.Dir), "bootstrap")
			if entries, err := os.ReadDir(filepath.Dir(built)); err != nil || len(entries) != 1 {
				t.Errorf("%s holds %v (%v), want the bootstrap alone", filepath.Dir(built), entries, err)
			}
			if a, b := digest(t, built), digest(t, want); a != b {
				t.Errorf("sam build's bootstrap (%x) differs from make build's (%x)", a, b)
			}
			settings := buildSettings(t, goBin, built)
			for _, s := range []string{"-tags=lambda.norpc", "-trimpath=true", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64"} {
				if !slices.Contains(settings, s) {
					t.Errorf("build settings %v lack %s", settings, s)
				}
			}
			for _, s := range settings {
				if strings.HasPrefix(s, "vcs") {
					t.Errorf("the binary carries a VCS stamp: %s", s)
				}
			}
			if mainPkg := buildPath(t, goBin, built); mainPkg != "github.com/pushgate/pushgate/"+fn.Dir {
				t.Errorf("built from %s, want ./%s", mainPkg, fn.Dir)
			}
			f, err := elf.Open(built)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
				t.Errorf("machine %v, type %v; want EM_AARCH64 ET_EXEC", f.Machine, f.Type)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("asks for a dynamic loader; it must be static")
				}
			}
		})
	}
}

func runIn(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SAM_CLI_TELEMETRY=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func digest(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// buildSettings lists the `build` lines of `go version -m`: -tags=…,
// CGO_ENABLED=…, vcs.revision=… and the like.
func buildSettings(t *testing.T, goBin, path string) []string {
	t.Helper()
	var settings []string
	for _, line := range strings.Split(versionM(t, goBin, path), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "build" {
			settings = append(settings, strings.Join(f[1:], " "))
		}
	}
	return settings
}

// buildPath is the main package's import path, from `go version -m`.
func buildPath(t *testing.T, goBin, path string) string {
	t.Helper()
	for _, line := range strings.Split(versionM(t, goBin, path), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "path" {
			return f[1]
		}
	}
	return ""
}

func versionM(t *testing.T, goBin, path string) string {
	t.Helper()
	out, err := exec.Command(goBin, "version", "-m", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", path, err, out)
	}
	return string(out)
}
