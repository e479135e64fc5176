// Command benchplot draws benchmark results (CSV rows of series,x,y) as a
// line plot, PNG or SVG: the plots of docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pushgate/pushgate/internal/testkit/benchplot"
)

func main() {
	out := flag.String("o", "plot.svg", "the plot to write, .png or .svg")
	title := flag.String("title", "", "title")
	x := flag.String("x", "recipients", "x axis label")
	y := flag.String("y", "seconds", "y axis label")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: benchplot [flags] results.csv   (rows: series,x,y)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err == nil {
		var series []benchplot.Series
		if series, err = benchplot.Read(f); err == nil {
			err = benchplot.Plot(series, *title, *x, *y, *out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}
