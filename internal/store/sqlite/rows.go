package sqlite

import "strings"

// maxRows bounds the rows of one multi-row statement (and so its
// parameters, well under SQLite's limit of 32766).
const maxRows = 256

// inChunks calls fn on consecutive chunks of xs whose lengths are powers of
// two no larger than maxRows. A multi-row statement is written for its row
// count, so these few lengths keep every such statement in the writer's
// prepared-statement cache, and one statement replaces a row's worth of
// them: the single writer's cost is per statement far more than per row.
func inChunks[T any](xs []T, fn func([]T) error) error {
	for len(xs) > 0 {
		n := maxRows
		for n > len(xs) {
			n /= 2
		}
		if err := fn(xs[:n]); err != nil {
			return err
		}
		xs = xs[n:]
	}
	return nil
}

// valueRows returns the placeholders of rows rows of cols values each:
// "(?, ?), (?, ?)".
func valueRows(rows, cols int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(row) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}
