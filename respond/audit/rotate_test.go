package audit

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rotatedLog writes 60 events into files of about 2 KB.
func rotatedLog(t *testing.T, keep int) (Options, []string) {
	t.Helper()
	priv, _ := testKey(t)
	o := testOptions(t.TempDir(), priv)
	o.RotateSize, o.Keep = 2000, keep
	writeLog(t, o, 60)
	files, err := Files(o.Path, o.Instance)
	if err != nil {
		t.Fatal(err)
	}
	return o, files
}

func TestRotationCompressesAndChains(t *testing.T) {
	o, files := rotatedLog(t, 0)
	if len(files) < 5 {
		t.Fatalf("only %d files: %v", len(files), files)
	}
	for _, f := range files[:len(files)-1] {
		if !strings.HasSuffix(f, ".gz") || !strings.HasPrefix(filepath.Base(f), "audit.web1-") {
			t.Fatalf("rotated file %s not compressed", f)
		}
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, st.Mode().Perm())
		}
	}
	if files[len(files)-1] != filepath.Join(filepath.Dir(o.Path), "audit.web1.jsonl") {
		t.Fatalf("live file last: %v", files)
	}
	rep := mustVerify(t, files, pubOf(o))
	if rep.Records < 60+2*uint64(len(files)) || len(rep.Warnings) != 0 {
		t.Fatalf("report %+v", rep)
	}
	// every rotated file verifies alone too, ending with its rotate checkpoint
	rep = mustVerify(t, files[1:2], pubOf(o))
	if len(rep.Warnings) != 1 {
		t.Fatalf("a later file alone should warn that the chain's start is not given: %v", rep.Warnings)
	}
}

func TestMissingRotatedFileIsNamed(t *testing.T) {
	o, files := rotatedLog(t, 0)
	gap := slices.Delete(slices.Clone(files), 2, 3)
	p := firstProblem(t, gap, pubOf(o))
	if p.File != files[3] || p.Line != 1 || !strings.Contains(p.Reason, "missing") {
		t.Fatalf("problem %v, want line 1 of %s", p, files[3])
	}
	// the newest file lost: the rotated files still end in a signed
	// checkpoint, which is all the files alone can say (docs/audit.md)
	mustVerify(t, files[:len(files)-1], pubOf(o))
}

func TestKeepDeletesTheOldest(t *testing.T) {
	o, files := rotatedLog(t, 2)
	if len(files) != 3 {
		t.Fatalf("keep 2: files %v", files)
	}
	rep := mustVerify(t, files, pubOf(o))
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0].Reason, "not given") {
		t.Fatalf("warnings %v", rep.Warnings)
	}
}

// TestResumeAfterRotationWithoutLiveFile: a live file lost right after a
// rotation is recreated and chained to the newest rotated file.
func TestResumeAfterRotationWithoutLiveFile(t *testing.T) {
	o, files := rotatedLog(t, 0)
	live := files[len(files)-1]
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}
	o.RotateSize = 0
	writeLog(t, o, 2)
	rs := records(t, live)
	if rs[0].Reason != segRotate || rs[0].Previous != strings.TrimSuffix(filepath.Base(files[len(files)-2]), ".gz") {
		t.Fatalf("first record %+v", rs[0])
	}
	mustVerify(t, files, pubOf(o))
}

func pubOf(o Options) ed25519.PublicKey {
	return o.SignKey.Public().(ed25519.PublicKey)
}
