package audit

import (
	"bufio"
	"compress/gzip"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Problem names a record that breaks the chain.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line"` // 1-based, within File (decompressed)
	ID     string `json:"id"`   // the event's id, or "checkpoint:<seq>" / "segment:<seq>"
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d", p.File, p.Line)
	if p.ID != "" {
		s += " (" + p.ID + ")"
	}
	return s + ": " + p.Reason
}

// Report is what Verify found. The trail verifies when Problems is empty.
type Report struct {
	Records        uint64    `json:"records"` // readable records, every kind
	Checkpoints    int       `json:"checkpoints"`
	LastCheckpoint time.Time `json:"last_checkpoint,omitzero"`
	// Problems are evidence of tampering or loss, in file order: the first
	// is the first broken record.
	Problems []Problem `json:"problems,omitempty"`
	// Warnings limit what is proven without being evidence of tampering:
	// a chain that starts after files not given, a writer that stopped
	// without a closing checkpoint (a crash), a torn line it recovered from.
	Warnings []Problem `json:"warnings,omitempty"`
}

// OK reports whether the files verified.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// maxLine bounds one record line when verifying (events are bounded far below).
const maxLine = 16 << 20

// Verify checks the chain across files given oldest first (rotated .gz
// files too, the live file last): every record's seq follows the one
// before, its prev is the hash of the line before, it belongs to the same
// instance, a rotated file is followed by the file its successor names,
// checkpoints commit to the record before them and, with pub, carry a
// valid signature, and (with pub, or once checkpoints are seen) the last
// record is a closing checkpoint. An error means a file could not be
// opened; everything found in the files is in the Report.
func Verify(files []string, pub ed25519.PublicKey) (Report, error) {
	v := &verifier{pub: pub}
	for _, f := range files {
		if err := v.file(f); err != nil {
			return v.rep, err
		}
	}
	v.finish()
	return v.rep, nil
}

// where is one record's place, for naming it in a problem.
type where struct {
	file string
	line int
	id   string
}

type verifier struct {
	pub ed25519.PublicKey
	rep Report

	have     bool   // a record was read
	last     record // the last readable record
	lastHash string
	lastAt   where
	lastCP   where // the last checkpoint (line 0: none)
	prevFile string
	pending  []Problem // unreadable lines, excused if a damaged_tail segment follows
	suspect  *suspect  // a broken link waiting for the next record to say which side broke
}

func (v *verifier) problem(at where, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, Problem{at.file, at.line, at.id, fmt.Sprintf(format, args...)})
}

func (v *verifier) warn(at where, format string, args ...any) {
	v.rep.Warnings = append(v.rep.Warnings, Problem{at.file, at.line, at.id, fmt.Sprintf(format, args...)})
}

// file reads one file's lines.
func (v *verifier) file(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			v.problem(where{file: path}, "not a readable gzip file: %v", err)
			return nil
		}
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	first := true
	for sc.Scan() {
		line++
		at := where{file: path, line: line}
		rec, err := parseRecord(sc.Bytes())
		if err != nil {
			v.pending = append(v.pending, Problem{path, line, "", "unreadable record: " + err.Error()})
			continue
		}
		at.id = eventID(&rec)
		v.record(&rec, sc.Bytes(), at, first)
		first = false
	}
	if err := sc.Err(); err != nil {
		v.problem(where{file: path, line: line + 1}, "file unreadable after this point: %v", err)
	}
	v.prevFile = path
	return nil
}

// record checks one readable record against the one before it.
func (v *verifier) record(r *record, line []byte, at where, firstInFile bool) {
	v.rep.Records++
	v.excuse(r, at)
	if !v.have {
		if r.Seq != 1 || r.Prev != zeroHash {
			v.warn(at, "the chain starts at seq %d: earlier records (older files) were not given, so its beginning is not verified", r.Seq)
		}
	} else {
		v.link(r, at, firstInFile)
	}
	if r.Kind == kindSegment && (r.Reason == segRestart || r.Reason == segDamagedTail) && v.have && v.signing() &&
		(v.last.Kind != kindCheckpoint || v.last.End == "") {
		v.warn(at, "the writer stopped without a closing checkpoint (a crash?): records after %s may have been cut unnoticed", v.cpName())
	}
	if r.Kind == kindCheckpoint {
		v.checkpoint(r, at)
	}
	v.have, v.last, v.lastHash, v.lastAt = true, *r, lineHash(line), at
}

// link checks seq, prev, instance and the file a rotation continues from.
func (v *verifier) link(r *record, at where, firstInFile bool) {
	if firstInFile && r.Kind == kindSegment && r.Previous != "" {
		if want := strings.TrimSuffix(filepath.Base(v.prevFile), ".gz"); r.Previous != want {
			v.problem(at, "continues from %s, but the file before it here is %s: a rotated file is missing or out of order", r.Previous, want)
		}
	}
	chained := r.Prev == v.lastHash
	if s := v.suspect; s != nil {
		// the record before this one did not chain either: it is the one
		// altered (in its prev), not the record before it
		v.suspect = nil
		if chained {
			v.blame(*s)
		} else {
			v.problem(s.next, "altered: its prev matches the hash of neither the record before it nor does its hash match the next record's prev")
			chained = true
		}
	}
	if r.Instance != v.last.Instance {
		v.problem(at, "belongs to instance %q, the chain before it to %q", r.Instance, v.last.Instance)
	}
	switch {
	case r.Seq != v.last.Seq+1:
		v.problem(at, "seq %d follows seq %d (line %s:%d): records missing, reordered or inserted", r.Seq, v.last.Seq, v.lastAt.file, v.lastAt.line)
	case !chained:
		// decided at the next record: the previous record's bytes, or this one's prev
		v.suspect = &suspect{blame: v.lastAt, next: at}
	}
}

// suspect is a broken link not yet attributed: blame was altered unless
// next's own successor does not chain to next either.
type suspect struct{ blame, next where }

func (v *verifier) blame(s suspect) {
	v.problem(s.blame, "altered: its hash does not match the prev recorded by the next record (%s:%d)", s.next.file, s.next.line)
}

// checkpoint checks what a checkpoint commits to and its signature.
func (v *verifier) checkpoint(r *record, at where) {
	v.rep.Checkpoints++
	switch {
	case r.Head != r.Prev || r.Records != r.Seq-1:
		v.problem(at, "checkpoint does not commit to the record before it (head or records wrong)")
	case v.pub != nil && !checkSig(r, v.pub):
		v.problem(at, "checkpoint signature does not verify: forged, altered, or signed with another key")
	}
	v.lastCP = at
	v.rep.LastCheckpoint = r.Time
}

// excuse turns unreadable lines into warnings when the next record is the
// segment a restarted writer wrote about them (a torn write in a crash).
func (v *verifier) excuse(r *record, at where) {
	if len(v.pending) == 0 {
		return
	}
	if r.Kind == kindSegment && r.Reason == segDamagedTail {
		for _, p := range v.pending {
			p.Reason += fmt.Sprintf(" (a torn write, recorded by the damaged_tail segment at line %d)", at.line)
			v.rep.Warnings = append(v.rep.Warnings, p)
		}
	} else {
		v.rep.Problems = append(v.rep.Problems, v.pending...)
	}
	v.pending = nil
}

// signing reports whether checkpoints are expected.
func (v *verifier) signing() bool { return v.pub != nil || v.rep.Checkpoints > 0 }

func (v *verifier) cpName() string {
	if v.lastCP.line == 0 {
		return "the start"
	}
	return fmt.Sprintf("the checkpoint at %s:%d", v.lastCP.file, v.lastCP.line)
}

// finish checks how the chain ends.
func (v *verifier) finish() {
	if v.suspect != nil {
		v.blame(*v.suspect)
	}
	v.rep.Problems = append(v.rep.Problems, v.pending...)
	v.pending = nil
	switch {
	case !v.have:
		v.problem(where{file: v.prevFile}, "no records")
	case v.pub != nil && v.rep.Checkpoints == 0:
		v.problem(v.lastAt, "no signed checkpoint: nothing proves the log complete")
	case v.signing() && (v.last.Kind != kindCheckpoint || v.last.End == ""):
		v.problem(v.lastAt, "the chain ends without a closing checkpoint: records after %s may have been cut (or the log is still being written, or its writer crashed)", v.cpName())
	}
}
