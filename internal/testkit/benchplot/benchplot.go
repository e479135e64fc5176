// Package benchplot draws benchmark results, one line per series, as the
// plots in docs/benchmarks.md.
package benchplot

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one line: y against x.
type Series struct {
	Name   string
	Points plotter.XYs
}

// Read parses CSV rows of series,x,y (a header row whose x is not a
// number is skipped), keeping the series in order of first appearance.
func Read(r io.Reader) ([]Series, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("benchplot: %w", err)
	}
	var out []Series
	for i, row := range rows {
		if len(row) != 3 {
			return nil, fmt.Errorf("benchplot: row %d has %d fields, want series,x,y", i+1, len(row))
		}
		x, errX := strconv.ParseFloat(strings.TrimSpace(row[1]), 64)
		y, errY := strconv.ParseFloat(strings.TrimSpace(row[2]), 64)
		if i == 0 && errX != nil {
			continue // header
		}
		if errX != nil || errY != nil {
			return nil, fmt.Errorf("benchplot: row %d: x and y must be numbers: %q", i+1, row)
		}
		name := strings.TrimSpace(row[0])
		k := slices.IndexFunc(out, func(s Series) bool { return s.Name == name })
		if k < 0 {
			out = append(out, Series{Name: name})
			k = len(out) - 1
		}
		out[k].Points = append(out[k].Points, plotter.XY{X: x, Y: y})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("benchplot: no rows")
	}
	return out, nil
}

// Plot draws series as lines with points to path, a .png or .svg.
func Plot(series []Series, title, xLabel, yLabel, path string) error {
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".png" && ext != ".svg" {
		return fmt.Errorf("benchplot: %s: want a .png or .svg file", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	// Bottom right: lines that grow with x leave it free.
	p.Legend.Top = false
	p.Legend.Left = false
	var args []any
	for _, s := range series {
		pts := slices.Clone(s.Points)
		slices.SortFunc(pts, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		args = append(args, s.Name, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("benchplot: %w", err)
	}
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
