package loadgen

import (
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Plot draws a histogram of the run's latencies to path, a .png or .svg.
func Plot(s Summary, title, path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("loadgen: plot %s: want a .png or .svg file", path)
	}
	if len(s.Samples) == 0 {
		return fmt.Errorf("loadgen: plot %s: no deliveries to plot", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "write → receipt (ms)"
	p.Y.Label.Text = "deliveries"
	h, err := plotter.NewHist(plotter.Values(s.Samples), 50)
	if err != nil {
		return fmt.Errorf("loadgen: plot: %w", err)
	}
	p.Add(h)
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}
