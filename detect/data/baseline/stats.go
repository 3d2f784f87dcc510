package baseline

import "math"

// epsilon is added to a variance before dividing by its root: a perfectly
// steady history has no variance, and one unit of noise keeps z finite
// (the ratio test against Factor is what then decides).
const epsilon = 1

// minPeerMembers is how many distinct members a peer aggregate needs before
// it is trusted: with fewer, "the peers" are mostly the subject themself.
const minPeerMembers = 3

// ewma folds one closed window's total x into mean and variance:
//
//	mean' = mean + α(x − mean); var' = (1−α)(var + α(x − mean)²)
func ewma(mean, vari, x, alpha float64) (float64, float64) {
	d := x - mean
	return mean + alpha*d, (1 - alpha) * (vari + alpha*d*d)
}

// decay folds n zero windows at once. With β = 1−α, n zeros give
//
//	mean_n = βⁿ·mean;  var_n = βⁿ·(var + mean²·(1 − βⁿ))
//
// (the recurrence var' = β·var + αβ·mean², mean' = β·mean summed as a
// geometric series), so a subject back after a year of hourly windows
// costs one math.Pow, not 8,760 steps.
func decay(mean, vari, alpha float64, n int64) (float64, float64) {
	if n <= 0 {
		return mean, vari
	}
	bn := math.Pow(1-alpha, float64(n))
	return bn * mean, bn * (vari + mean*mean*(1-bn))
}

// roll closes the open window of s when idx is a later window: its total is
// folded in (the very first window seeds the mean), the silent windows in
// between count as zeros, and idx becomes the open window. It returns the
// closed window's total, or -1 when nothing closed. An idx before the open
// window (a late answer, a skewed clock) leaves s alone: its volume joins
// the open window, since a closed one cannot be reopened.
func roll(s *series, idx int64, alpha float64) int64 {
	if idx <= s.open {
		return -1
	}
	x := float64(s.total)
	if s.windows == 0 {
		s.mean, s.vari = x, 0
	} else {
		s.mean, s.vari = ewma(s.mean, s.vari, x, alpha)
	}
	gap := idx - s.open - 1 // > 0 unless idx - s.open overflowed
	if gap < 0 {
		gap = math.MaxInt64
	}
	s.mean, s.vari = decay(s.mean, s.vari, alpha, gap)
	s.windows = addWindows(s.windows, gap+1)
	closed := s.total
	s.open, s.total = idx, 0
	return closed
}

// addWindows adds n to a window count, saturating: past four billion
// windows the count only gates MinHistory.
func addWindows(w uint32, n int64) uint32 {
	if n >= int64(math.MaxUint32-w) {
		return math.MaxUint32
	}
	return w + uint32(n)
}

// addTotal adds v to a window total, saturating rather than wrapping.
func addTotal(t, v int64) int64 {
	if v > math.MaxInt64-t {
		return math.MaxInt64
	}
	return t + v
}

// foldPeer adds one member's closed window to a peer aggregate: the first
// sample seeds it, later ones are the subject's EWMA with α divided by the
// number of members. A group of m members closes about m windows per
// window of time, so the aggregate then forgets at the pace of one
// subject's baseline, and no member's run of windows (folded in the order
// they close, which is the order members come back) can swing it alone.
func foldPeer(p *peerSeries, x float64, member uint32, alpha float64) {
	known := false
	for _, m := range p.members {
		known = known || m == member
	}
	if !known && len(p.members) < maxMembers {
		p.members = append(p.members, member)
	}
	if p.samples == 0 {
		p.mean, p.vari = x, 0
	} else {
		p.mean, p.vari = ewma(p.mean, p.vari, x, alpha/float64(max(1, len(p.members))))
	}
	if p.samples < math.MaxUint32 {
		p.samples++
	}
}

// memberTag is a short fingerprint of a subject (FNV-1a), enough to count a
// handful of distinct members without storing their keys.
func memberTag(subject string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(subject); i++ {
		h ^= uint32(subject[i])
		h *= 16777619
	}
	return h
}

// floorDiv is ⌊a/b⌋ for b > 0, also for times before 1970.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
