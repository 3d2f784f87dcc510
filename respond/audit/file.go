package audit

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// names are the file names of one instance's chain: the live file
// (dir/stem.ext) and its rotated predecessors (dir/stem-<seq>.ext.gz,
// <seq> being the last record's, zero-padded so that names sort in chain
// order even when the clock steps back).
type names struct {
	dir, stem, ext string
}

func newNames(path, instance string) names {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if instance != "" {
		stem += "." + instance
	}
	return names{dir: filepath.Clean(dir), stem: stem, ext: ext}
}

func (n names) live() string { return filepath.Join(n.dir, n.stem+n.ext) }

// rotated is the name of a rotated file before compression; the segment
// record that follows it names it so (without ".gz").
func (n names) rotated(lastSeq uint64) string {
	return filepath.Join(n.dir, fmt.Sprintf("%s-%012d%s", n.stem, lastSeq, n.ext))
}

// list returns the rotated files of this chain, oldest first: exactly
// stem-<12 digits>.ext or .ext.gz, so another instance's files (whose
// stem this one is a prefix of) never match.
func (n names) list() ([]string, error) {
	entries, err := os.ReadDir(n.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.Name()] = true
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".gz") && have[strings.TrimSuffix(name, ".gz")] {
			continue // compression was interrupted: the original is the copy to trust
		}
		rest, ok := strings.CutPrefix(name, n.stem+"-")
		if !ok {
			continue
		}
		rest = strings.TrimSuffix(rest, ".gz")
		digits, ok := strings.CutSuffix(rest, n.ext)
		if !ok || len(digits) != 12 {
			continue
		}
		if _, err := strconv.ParseUint(digits, 10, 64); err != nil {
			continue
		}
		out = append(out, filepath.Join(n.dir, name))
	}
	sort.Strings(out)
	return out, nil
}

// openLive opens (creating with 0600 in a 0700 directory) the live file
// for appending. An existing file with looser permissions is tightened:
// audit records name users and addresses (PCI DSS 10.3.1 limits viewing).
func openLive(path string) (*os.File, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, fmt.Errorf("audit log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Mode().Perm() != 0o600 {
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("audit log %s: %w", path, err)
	}
	return f, st.Size(), nil
}

// tail is what Open learns from the end of an existing file.
type tail struct {
	last    record // the last readable record (Seq 0: none)
	hash    string // its line's hash
	damaged int64  // unreadable bytes after it
	newline bool   // the file ends with a newline (or is empty)
}

// maxTailScan bounds how far back Open looks for the last good record, so
// a file of garbage cannot make a start slow.
const maxTailScan = 8 << 20

// readTail finds the last readable record of f (size bytes long),
// reading backwards in blocks.
func readTail(f io.ReaderAt, size int64) (tail, error) {
	t := tail{newline: true}
	if size == 0 {
		return t, nil
	}
	start := max(size-maxTailScan, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return t, err
	}
	t.newline = buf[len(buf)-1] == '\n'
	end := len(buf)
	for end > 0 {
		lineEnd := end
		if buf[lineEnd-1] == '\n' {
			lineEnd--
		}
		i := bytes.LastIndexByte(buf[:lineEnd], '\n')
		if i < 0 && start > 0 {
			break // the line starts before what was read
		}
		line := buf[i+1 : lineEnd]
		if r, err := parseRecord(line); err == nil {
			t.last, t.hash = r, lineHash(line)
			t.damaged = int64(len(buf) - end)
			return t, nil
		}
		end = i + 1
	}
	t.damaged = int64(len(buf))
	return t, nil
}

// readLastOf reads the last record of a rotated file (compressed or not),
// for resuming a chain whose live file was lost or never written after a
// rotation.
func readLastOf(path string) (tail, error) {
	f, err := os.Open(path)
	if err != nil {
		return tail{}, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return tail{}, fmt.Errorf("%s: %w", path, err)
		}
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return tail{}, fmt.Errorf("%s: %w", path, err)
	}
	return readTail(bytes.NewReader(data), int64(len(data)))
}

// compress gzips a rotated file next to itself and removes the original
// once the compressed copy is synced, so a crash leaves one whole copy.
func compress(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compressing %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return os.Remove(path)
}

// syncDir makes a rename or a new file durable (best effort: not every
// platform can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// housekeep compresses rotated files left uncompressed (a crash during
// compression) and deletes the oldest beyond keep (0: keep all).
func housekeep(n names, keep int) error {
	files, err := n.list()
	if err != nil {
		return err
	}
	var errs []error
	for i, f := range files {
		if !strings.HasSuffix(f, ".gz") {
			if err := compress(f); err != nil {
				errs = append(errs, err)
				continue
			}
			files[i] = f + ".gz"
		}
	}
	if keep > 0 && len(files) > keep {
		for _, f := range files[:len(files)-keep] {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Files lists an instance's chain oldest first, the rotated files and then
// the live file (when it exists): what Verify takes to check the whole
// trail kept on this host. instance "" means this host's name, as in Options.
func Files(path, instance string) ([]string, error) {
	if instance == "" {
		instance, _ = os.Hostname()
	}
	n := newNames(path, cleanInstance(instance))
	files, err := n.list()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(n.live()); err == nil {
		files = append(files, n.live())
	}
	return files, nil
}
